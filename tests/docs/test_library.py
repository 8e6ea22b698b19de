"""The Python examples in docs/library.md run against a real server."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from support.paths import ROOT

if TYPE_CHECKING:
    import pytest
    from support.servers import HealthServer

DOC = ROOT / "docs" / "library.md"


def test_library_examples_run(server: HealthServer, capsys: pytest.CaptureFixture[str]) -> None:
    server.set("shop.v1.Orders", 1)
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 3
    first = blocks[0].replace('"api.internal:50051"', repr(server.address))
    # The example's CA file and token are placeholders; the test server is plaintext.
    first = first.replace('    tls=TlsOptions(ca_cert="/etc/ssl/internal-ca.pem"),\n', "")
    namespace: dict[str, object] = {}
    exec(first, namespace)
    exec(blocks[1].replace("timeout=60", "timeout=0.5"), namespace)
    exec(blocks[2].replace("range(1000)", "range(5)"), namespace)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("(overall) SERVING ")
    assert lines[1].startswith("shop.v1.Orders SERVING ")
    assert lines[2].startswith("connect 0.")
    assert lines[3] == "still {'': 'SERVING', 'shop.v1.Orders': 'SERVING'}"
    assert lines[4].startswith("watch ")
