"""The fleet's options: each one that cannot work, or would do nothing, is one line and
UNKNOWN before any check runs; secrets in them are never shown."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from support.fleet import PREFIX, fleet, fleet_file

if TYPE_CHECKING:
    from pathlib import Path

    from support.servers import HealthServer

PASSWORD = {"ICINGA2_API_PASSWORD": "fleet-pa55word-4c1e"}


@pytest.fixture
def path(tmp_path: Path, server: HealthServer) -> Path:
    return fleet_file(tmp_path, f"web1!grpc-orders: -H {server.address}\n")


def refused(path: Path, *options: str) -> str:
    """The one line the fleet refuses ``options`` with; it checked nothing."""
    done = fleet(str(path), *options, env=PASSWORD)
    assert (done.returncode, done.stdout) == (3, "")
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(PREFIX)
    assert "Traceback" not in done.stderr
    return done.stderr[len(PREFIX) :].rstrip("\n")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--conc", "4"], "unrecognized arguments: --conc 4"),
        (["--form", "json"], "unrecognized arguments: --form json"),
        (["--icinga2-a", "https://x"], "unrecognized arguments: --icinga2-a https://x"),
    ],
)
def test_options_are_never_abbreviated(path: Path, options: list[str], message: str) -> None:
    assert refused(path, *options) == message


def test_options_that_would_do_nothing_are_refused(path: Path, tmp_path: Path) -> None:
    textfile = tmp_path / "grpc_health.txt"
    assert refused(path, "--textfile", str(textfile)) == (
        f"--textfile '{textfile}' does not end in .prom: node_exporter's textfile collector "
        "reads only *.prom files"
    )
    assert not textfile.exists()
    assert refused(path, "--ttl", "60") == "--ttl needs --icinga2-api URL"
    assert refused(path, "--check-source", "fleet-7") == "--check-source needs --icinga2-api URL"


NOT_SHOWN_CREDENTIALS = (
    "--icinga2-api (not shown): it holds user@ or user:password@; give the user with "
    "--icinga2-user and the password with --icinga2-password-file"
)
NOT_SHOWN_QUERY = (
    "--icinga2-api (not shown): it holds a query (?) or a fragment (#); give "
    "https://HOST[:PORT] alone"
)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://grpc-fleet:s3cr3t-pw@127.0.0.1:5665", NOT_SHOWN_CREDENTIALS),
        ("https://s3cr3t-pw@127.0.0.1:5665", NOT_SHOWN_CREDENTIALS),
        ("https://127.0.0.1:5665/?password=s3cr3t-pw", NOT_SHOWN_QUERY),
        ("https://127.0.0.1:5665#s3cr3t-pw", NOT_SHOWN_QUERY),
        (
            "https://127.0.0.1:0",
            "--icinga2-api 'https://127.0.0.1:0' has no usable port: give 1 to 65535, or "
            "leave it out for 5665",
        ),
        (
            "https://127.0.0.1:",
            "--icinga2-api 'https://127.0.0.1:' has no usable port: give 1 to 65535, or "
            "leave it out for 5665",
        ),
        (
            "https://127.0.0.1:70000",
            "--icinga2-api 'https://127.0.0.1:70000' has no usable port: give 1 to 65535, or "
            "leave it out for 5665",
        ),
        (
            "https://[::1",
            "--icinga2-api 'https://[::1' is not https://HOST[:PORT] (the API speaks only HTTPS)",
        ),
        (
            "https://127.0.0.1:5665/v1",
            "--icinga2-api 'https://127.0.0.1:5665/v1' is not https://HOST[:PORT] (the API "
            "speaks only HTTPS)",
        ),
    ],
)
def test_an_api_url_that_cannot_work_is_refused_and_a_secret_in_it_not_shown(
    path: Path, url: str, message: str
) -> None:
    line = refused(path, "--icinga2-api", url, "--icinga2-user", "grpc-fleet")
    assert line == message
    assert "s3cr3t" not in line


def test_a_ca_file_without_a_certificate_is_refused_before_any_check(
    path: Path, tmp_path: Path
) -> None:
    api = ["--icinga2-api", "https://127.0.0.1:5665", "--icinga2-user", "grpc-fleet"]
    key_only = tmp_path / "key.pem"
    key_only.write_text(
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n"
    )
    assert refused(path, *api, "--icinga2-ca", str(key_only)) == (
        f"--icinga2-ca '{key_only}' holds no usable PEM certificate"
    )
    damaged = tmp_path / "damaged.pem"
    damaged.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    assert refused(path, *api, "--icinga2-ca", str(damaged)) == (
        f"--icinga2-ca '{damaged}' holds no usable PEM certificate"
    )
    assert refused(path, *api, "--icinga2-ca", str(tmp_path)) == (
        f"cannot read --icinga2-ca '{tmp_path}': Is a directory"
    )
