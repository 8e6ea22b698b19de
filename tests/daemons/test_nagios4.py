"""The shipped Nagios object files pass Nagios 4's own verification (``nagios4 -v``).

The main configuration is written for each test into a temporary folder: the sample
object files of Debian's nagios4-common (commands, contacts, time periods, templates),
the one command a site always has (``check-host-alive``, commented out in Debian's
sample), then contrib/nagios's files. Locally the tests skip when nagios4 is not
installed; with ``CI`` set they fail instead.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from support.paths import ROOT

COMMANDS = ROOT / "contrib" / "nagios" / "check_grpc_health.cfg"
EXAMPLES = ROOT / "contrib" / "nagios" / "check_grpc_health_example.cfg"
SAMPLE = Path("/etc/nagios4/objects")
SITE = """\
define command {
    command_name    check-host-alive
    command_line    $USER1$/check_ping -H '$HOSTADDRESS$' -w 3000.0,80% -c 5000.0,100% -p 5
}
"""


def nagios4() -> str:
    found = shutil.which("nagios4") or next(
        (path for path in ("/usr/sbin/nagios4", "/usr/bin/nagios4") if os.path.exists(path)),
        None,
    )
    if found and (SAMPLE / "templates.cfg").exists():
        return found
    if os.environ.get("CI"):
        pytest.fail("nagios4 is missing, and CI must run this test: apt-get install nagios4-core")
    pytest.skip("nagios4 is not installed (apt-get install --no-install-recommends nagios4-core)")


def verify(tmp_path: Path, *object_files: Path) -> tuple[int, str]:
    """``nagios4 -v`` on a main configuration with the sample objects and ``object_files``."""
    binary = nagios4()
    (tmp_path / "site.cfg").write_text(SITE)
    (tmp_path / "resource.cfg").write_text("$USER1$=/usr/lib/nagios/plugins\n")
    user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout
    group = subprocess.run(["id", "-gn"], capture_output=True, text=True, check=True).stdout
    files = [
        *(SAMPLE / name for name in ("commands.cfg", "contacts.cfg", "timeperiods.cfg")),
        SAMPLE / "templates.cfg",
        tmp_path / "site.cfg",
        *object_files,
    ]
    settings = [
        *(f"cfg_file={path}" for path in files),
        f"resource_file={tmp_path / 'resource.cfg'}",
        f"log_file={tmp_path / 'nagios.log'}",
        f"check_result_path={tmp_path}",
        f"lock_file={tmp_path / 'nagios.lock'}",
        f"temp_file={tmp_path / 'nagios.tmp'}",
        f"status_file={tmp_path / 'status.dat'}",
        f"object_cache_file={tmp_path / 'objects.cache'}",
        f"precached_object_file={tmp_path / 'objects.precache'}",
        f"nagios_user={user.strip()}",
        f"nagios_group={group.strip()}",
        "illegal_macro_output_chars=`~$&|'\"<>",
    ]
    main = tmp_path / "nagios.cfg"
    main.write_text("\n".join(settings) + "\n")
    done = subprocess.run(
        [binary, "-v", str(main)], capture_output=True, text=True, timeout=60, check=False
    )
    return done.returncode, done.stdout + done.stderr


def checked(output: str, what: str) -> int:
    match = re.search(rf"^\tChecked (\d+) {what}\.$", output, re.MULTILINE)
    assert match, output
    return int(match.group(1))


def test_commands_and_examples_pass_nagios_verification(tmp_path: Path) -> None:
    code, output = verify(tmp_path, COMMANDS, EXAMPLES)
    assert code == 0, output
    assert "Total Warnings: 0\n" in output
    assert "Total Errors:   0\n" in output
    assert checked(output, "hosts") == 2
    assert checked(output, "services") == 10


def test_the_command_file_alone_creates_no_host_and_no_service(tmp_path: Path) -> None:
    code, output = verify(tmp_path, COMMANDS)
    # Nagios refuses to run without hosts and services, and says exactly that.
    errors = re.findall(r"^\s*Error: (.*)$", output, re.MULTILINE)
    assert errors == ["There are no services defined!", "There are no hosts defined!"], output
    assert code == 1
    _, sample_only = verify(tmp_path)
    assert checked(output, "commands") - checked(sample_only, "commands") == 10
