"""The ``esrkit quantize`` tests (``quantize_cases.py``) in a process of their own.

They load NNCF, OpenVINO and ONNX Runtime, whose thread pools in the long suite's process are what
``test_backends.py`` keeps out of it (an intermittent segmentation fault in later tests); in a child, a failure is an
ordinary failed test with the child's output.
"""

from __future__ import annotations

from helpers import run_cases_in_own_process


def test_quantize_cases_pass_in_their_own_process() -> None:
    run_cases_in_own_process("quantize_cases.py")
