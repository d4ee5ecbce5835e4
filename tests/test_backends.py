"""The backend tests (``backends_cases.py``: ONNX Runtime and OpenVINO parity, export, recommend) in a process of
their own.

ONNX Runtime and OpenVINO bring their own thread pools (OpenMP, TBB) into the process beside torch's. In one long
pytest process that afterwards also trains, forks DataLoader workers and runs video codecs, that mix left an
intermittent segmentation fault in later, unrelated tests (never reproduced in a process of its own), and a
crash would take the whole suite down without a report. In a child, a failure is an ordinary failed test with
the child's output.
"""

from __future__ import annotations

from helpers import run_cases_in_own_process


def test_backend_cases_pass_in_their_own_process() -> None:
    run_cases_in_own_process("backends_cases.py")
