"""Fast inference backends behind one interface: PyTorch (deploy form, channels-last, bf16, ``torch.compile``),
ONNX Runtime and OpenVINO, and ``auto``, the fastest fp32-exact one for the device.

One module per concern: :mod:`.base` (what a runner is), :mod:`.export` (ONNX export with its verification),
:mod:`.cache` (exports and compiled models kept on disk), one module per runtime (:mod:`.torch_runner`,
:mod:`.onnxruntime_runner`, :mod:`.openvino_runner`), :mod:`.table` (the ``{name: runner}`` table and the factory)
and :mod:`.auto` (the default choice and the ``Upscaler.from_name`` hook).

Nothing is assumed about the machine: precisions are asked of the CPU (:mod:`esrkit.device`) and of OpenVINO's own
capability list, and asking for something else is a :class:`PrecisionNotSupportedError`, not a silent fallback.
Which combination is fastest is measured (``esrkit recommend``, ``benchmarks/inference.py``; the figures and why
each lever matters are in ``benchmarks/README.md``). Thread count: one ``threads`` parameter for all backends
(``None`` is each runtime's default: all cores for ONNX Runtime and OpenVINO, torch's current setting for torch).
"""

from __future__ import annotations

from ...device import cpu_features
from ...errors import InputError
from .auto import AUTO, auto_candidates, machine_choice, runner_for_upscaler, save_machine_choice
from .base import BackendRunner
from .cache import cache_root, cached_onnx
from .errors import (
    BackendError,
    BackendNotInstalledError,
    ExportError,
    PrecisionNotSupportedError,
    UnknownBackendError,
)
from .export import DEFAULT_OPSET, export_onnx
from .onnxruntime_runner import ONNXRuntimeRunner, exact_sigmoid_graph
from .openvino_runner import OpenVINORunner
from .table import (
    BACKENDS,
    RUNNERS,
    available_backends,
    backend_installed,
    make_runner,
    runner_options,
    supported_precisions,
)
from .torch_runner import DEFAULT_BF16_MODE, TorchRunner

__all__ = [
    "AUTO",
    "BACKENDS",
    "DEFAULT_BF16_MODE",
    "DEFAULT_OPSET",
    "RUNNERS",
    "BackendError",
    "BackendNotInstalledError",
    "BackendRunner",
    "ExportError",
    "InputError",
    "ONNXRuntimeRunner",
    "OpenVINORunner",
    "PrecisionNotSupportedError",
    "TorchRunner",
    "UnknownBackendError",
    "auto_candidates",
    "available_backends",
    "backend_installed",
    "cache_root",
    "cached_onnx",
    "cpu_features",
    "exact_sigmoid_graph",
    "export_onnx",
    "machine_choice",
    "make_runner",
    "runner_for_upscaler",
    "runner_options",
    "save_machine_choice",
    "supported_precisions",
]
