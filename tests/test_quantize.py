"""The ``esrkit quantize`` tests (``quantize_cases.py``) in a process of their own.

They load NNCF, OpenVINO and ONNX Runtime, whose thread pools in the long suite's process are what
``test_backends.py`` keeps out of it (an intermittent segmentation fault in later tests); in a child, a failure is an
ordinary failed test with the child's output.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def test_quantize_cases_pass_in_their_own_process() -> None:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(HERE / "quantize_cases.py")]
    proc = subprocess.run(cmd, cwd=HERE.parent, capture_output=True, text=True, timeout=1200, check=False,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent / "src")])})
    tail = proc.stdout[-6000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, tail
    assert " passed" in proc.stdout and " failed" not in proc.stdout, tail
