"""The runner table and the factory: ``{name: runner class}``, and the options each takes read from its signature.

Adding a runtime (or an int8 runner) is one :class:`~esrkit.infer.backends.base.BackendRunner` subclass and one
entry in :data:`RUNNERS`; :func:`make_runner`, :func:`supported_precisions`, :func:`available_backends` and the
``Upscaler.from_name`` hook know it from there.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ...device import check_precision, resolve_device
from ...errors import InputError
from .base import BackendRunner
from .errors import UnknownBackendError
from .onnxruntime_runner import ONNXRuntimeRunner
from .openvino_runner import OpenVINORunner
from .torch_runner import TorchRunner

__all__ = ["BACKENDS", "RUNNERS", "available_backends", "backend_installed", "check_backend", "make_runner",
           "runner_class", "runner_options", "supported_precisions"]

RUNNERS: dict[str, type[BackendRunner]] = {"torch": TorchRunner, "onnxruntime": ONNXRuntimeRunner,
                                           "openvino": OpenVINORunner}
BACKENDS = tuple(RUNNERS)

# Parameters every runner takes that are not runner options (the factory passes them itself).
_COMMON = ("self", "model", "precision", "threads", "device")


def check_backend(backend: str) -> str:
    """The canonical backend name, or :class:`UnknownBackendError` listing the table's names."""
    name = str(backend).strip().lower()
    if name not in RUNNERS:
        raise UnknownBackendError(f"unknown backend {backend!r}; use auto, {', '.join(BACKENDS)}", param="backend")
    return name


def runner_class(backend: str) -> type[BackendRunner]:
    return RUNNERS[check_backend(backend)]


def runner_options(backend: str) -> tuple[str, ...]:
    """The keyword options ``backend``'s runner takes besides precision, threads and device (its signature's)."""
    params = inspect.signature(runner_class(backend).__init__).parameters.values()
    return tuple(p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name not in _COMMON)


def backend_installed(backend: str) -> bool:
    """Whether the Python package behind ``backend`` can be imported (without importing it)."""
    return runner_class(backend).installed()


def available_backends() -> list[str]:
    """The backends of :data:`BACKENDS` whose package is installed, in that order."""
    return [b for b in BACKENDS if backend_installed(b)]


def supported_precisions(backend: str, device: str | torch.device | None = "cpu") -> tuple[str, ...]:
    """Precisions ``backend`` runs natively on ``device`` of this machine, fp32 first (each runner's
    ``native_precisions``: torch asks the CPU's dot-product instructions or the GPU, ONNX Runtime is fp32 only,
    OpenVINO asks its CPU plugin). ONNX Runtime and OpenVINO run on the CPU only here; raises
    :class:`~esrkit.infer.backends.errors.BackendNotInstalledError` when the package is missing."""
    cls = runner_class(backend)
    dev = resolve_device(device)
    if cls.backend != "torch":
        cls.require()
    return cls.native_precisions(dev)


def make_runner(model: nn.Module, backend: str = "torch", *, precision: str = "fp32", threads: int | None = None,
                device: str | torch.device | None = "cpu", **options: Any) -> BackendRunner:
    """Wrap ``model`` (ideally already in deploy form) for ``backend`` at ``precision`` with ``threads``.

    ``options`` are the runner's own keyword parameters (:func:`runner_options`; e.g. torch ``channels_last``,
    ``compile``, ``bf16_mode``; ONNX Runtime ``onnx_path``, ``opset``, ``exact_sigmoid``, ``cache``; OpenVINO
    also ``static_after``, ``max_static``). Typed errors: ``UnknownBackendError``, ``BackendNotInstalledError``,
    ``PrecisionNotSupportedError`` (checked before any export), ``ExportError``.
    """
    cls = runner_class(backend)
    prec = check_precision(precision)
    dev = resolve_device(device)
    cls.require()
    cls.check_precision(prec, dev)
    allowed = runner_options(cls.backend)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise InputError(f"{cls.backend} has no option {', '.join(unknown)}; valid: {', '.join(sorted(allowed))}",
                         param="backend")
    takes_device = "device" in inspect.signature(cls.__init__).parameters
    extra = {"device": dev} if takes_device else {}
    return cls(model, precision=prec, threads=threads, **extra, **options)


def split_runner_kwargs(kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``kwargs`` of ``Upscaler.from_name`` split into (runner options incl. ``threads``, the Upscaler's own)."""
    keys = {"threads"} | {k for name in BACKENDS for k in runner_options(name)}
    rest = dict(kwargs)
    return {k: rest.pop(k) for k in list(rest) if k in keys}, rest


def warn_if_unsafe(runner: BackendRunner, precision: str, capabilities: Any = None) -> None:
    """Warn, like the Upscaler, when ``precision`` is not marked safe for the model."""
    caps = capabilities or runner.capabilities
    if not caps.safe_precision(precision):
        warnings.warn(f"{precision} is not marked safe for this model (its registry capabilities); "
                      "expect lower fidelity than fp32", RuntimeWarning, stacklevel=4)
