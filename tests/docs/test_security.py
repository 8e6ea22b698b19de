"""docs/security.md works as written: its commands, its playbook, its links and its test list.

Layer: tests (docs). The page speaks of a server on ``localhost:50051`` and a token in
``$HEALTH_TOKEN``. The test starts a real server that records the headers it receives,
runs each ``$`` command of each console block with bash in one scratch directory (in
order, as a reader would), compares the output with the page (measured durations
aside), and checks that the token reached the server but no output.
"""

from __future__ import annotations

import re
import subprocess
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
from support.ansible_tools import tool as ansible_tool
from support.hardening import ansible_env, cli_env
from support.paths import BIN, ROOT
from support.servers import HeaderRecordingServicer

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from support.servers import HealthServer

PAGE = ROOT / "docs" / "security.md"
DOCUMENTED = "localhost:50051"
TOKEN = f"s3cr3t-{uuid.uuid4().hex}"


@dataclass
class Block:
    """One console block: its ``$`` commands and the output below them, in order."""

    commands: list[str]
    output: list[str]
    line: int


def console_blocks() -> list[Block]:
    blocks: list[Block] = []
    inside = False
    for number, line in enumerate(PAGE.read_text("utf-8").splitlines(), start=1):
        if line.startswith("```"):
            inside = line == "```console"
            if inside:
                blocks.append(Block([], [], number))
            continue
        if not inside:
            continue
        if line.startswith("$ "):
            blocks[-1].commands.append(line[2:])
        else:
            blocks[-1].output.append(line)
    return blocks


def yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", PAGE.read_text("utf-8"), flags=re.DOTALL)


def normalized(text: str) -> str:
    """Measured durations vary from run to run."""
    return re.sub(r"(?<![\w.])[0-9]+(\.[0-9]+)?(ns|\u00b5s|ms|s)\b", "<d>", text)


@pytest.fixture
def recording(start_server: Callable[..., HealthServer]) -> tuple[HeaderRecordingServicer, str]:
    servicer = HeaderRecordingServicer()
    return servicer, start_server(servicer=servicer).address


def test_the_console_examples_run_as_documented(
    recording: tuple[HeaderRecordingServicer, str], tmp_path: Path
) -> None:
    servicer, address = recording
    blocks = console_blocks()
    assert len(blocks) == 3
    env = cli_env(HEALTH_TOKEN=TOKEN)
    env["PATH"] = f"{BIN}:{env['PATH']}"
    for block in blocks:
        # One shell per block, as a reader types it: exports carry over to later lines.
        script = "set -e\n" + "\n".join(block.commands).replace(DOCUMENTED, address)
        done = subprocess.run(
            ["bash", "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            cwd=tmp_path,
            check=False,
        )
        assert done.returncode == 0, (block.line, done.stdout, done.stderr)
        output = (done.stdout + done.stderr).replace(address, DOCUMENTED)
        assert TOKEN not in output
        expected = "".join(f"{line}\n" for line in block.output)
        assert normalized(output) == normalized(expected), f"docs/security.md:{block.line}"
        assert servicer.seen[-1]["authorization"] == f"Bearer {TOKEN}"


def test_the_header_file_is_readable_only_by_its_owner(tmp_path: Path) -> None:
    commands = console_blocks()[0].commands[:2]
    assert commands[0].startswith("install -m 600 ")
    script = "set -e\n" + "\n".join(commands)
    subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=cli_env(HEALTH_TOKEN=TOKEN), check=True
    )
    headers = tmp_path / "grpc-headers"
    assert headers.stat().st_mode & 0o777 == 0o600
    assert headers.read_text() == f"authorization: Bearer {TOKEN}\n"


def test_the_playbook_sends_the_vault_token_and_never_shows_it(
    recording: tuple[HeaderRecordingServicer, str], tmp_path: Path
) -> None:
    servicer, address = recording
    (playbook,) = yaml_blocks()
    (tmp_path / "gate.yml").write_text(playbook.replace(DOCUMENTED, address), "utf-8")
    # An encrypted vars file decrypts to this; Ansible reads a plain one the same way.
    (tmp_path / "vault.yml").write_text(f"health_token: {TOKEN}\n", "utf-8")
    done = subprocess.run(
        [ansible_tool("ansible-playbook"), "-vvv", "gate.yml"],
        capture_output=True,
        text=True,
        timeout=300,
        env=ansible_env(),
        cwd=tmp_path,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "ok=1 " in output
    assert TOKEN not in output
    assert servicer.seen[-1]["authorization"] == f"Bearer {TOKEN}"


def test_links_and_named_tests_exist() -> None:
    text = PAGE.read_text("utf-8")
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        assert (PAGE.parent / target).exists(), target
    for anchor_page, anchor in re.findall(r"\]\(([^)#]+)#([^)]+)\)", text):
        headings = (PAGE.parent / anchor_page).read_text("utf-8").splitlines()
        slugs = {
            re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
            for line in headings
            if line.startswith("#")
        }
        assert anchor in slugs, (anchor_page, anchor)
    for path in re.findall(r"`((?:tests|bench)/[\w/]+\.py)`", text):
        assert (ROOT / path).is_file(), path
