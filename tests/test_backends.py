"""The backend tests (``backends_cases.py``: ONNX Runtime and OpenVINO parity, export, recommend) in a process of
their own.

ONNX Runtime and OpenVINO bring their own thread pools (OpenMP, TBB) into the process beside torch's. In one long
pytest process that afterwards also trains, forks DataLoader workers and runs video codecs, that mix left an
intermittent segmentation fault in later, unrelated tests (never reproduced in a process of its own), and a
crash would take the whole suite down without a report. In a child, a failure is an ordinary failed test with
the child's output.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def test_backend_cases_pass_in_their_own_process() -> None:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(HERE / "backends_cases.py")]
    proc = subprocess.run(cmd, cwd=HERE.parent, capture_output=True, text=True, timeout=1200, check=False,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent / "src")])})
    tail = proc.stdout[-6000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, tail
    assert " passed" in proc.stdout and " failed" not in proc.stdout, tail
