"""Where things are: the checkout, and the console scripts installed next to this Python.

Layer: tests (support). The console scripts are the ones ``pip install -e .`` put in this
venv's bin folder, so a test runs what a user runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
BIN = Path(sys.executable).parent
PLUGIN = str(BIN / "check_grpc_health")
PROBE = str(BIN / "grpc_health_probe")
FLEET = str(BIN / "check_grpc_health_fleet")
DEMO = str(BIN / "check-grpc-health-demo")
