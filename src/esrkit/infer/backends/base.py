"""What every runner shares: the module shape, the package it needs and the precisions it runs natively.

A runner is an :class:`torch.nn.Module` without parameters whose ``forward`` takes and returns NCHW float32
tensors in [0, 1], exactly like an esrkit model, and carries the wrapped model's ``esrkit_config``; so
:class:`esrkit.infer.Upscaler`, :mod:`esrkit.evaluate` and :func:`esrkit.profile.runtime.time_forward` run any
backend unchanged, and a PSNR or a runtime measured through one path is what the others give.

A new runtime (or precision family, such as int8) is one subclass that sets :attr:`BackendRunner.backend` and
:attr:`BackendRunner.package`, answers :meth:`BackendRunner.native_precisions` and takes its options as
keyword-only ``__init__`` parameters, plus one entry in :data:`esrkit.infer.backends.table.RUNNERS`: the option
names the factory accepts are read from that signature.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
from typing import Any, ClassVar

import torch
from torch import nn

from ...errors import InputError
from ...models.registry import capabilities_of, get_config
from .errors import BackendNotInstalledError, PrecisionNotSupportedError

__all__ = ["BackendRunner", "require_package", "to_numpy"]


def require_package(module: str, pip_name: str, backend: str) -> Any:
    """Import ``module`` or raise :class:`BackendNotInstalledError` naming what to install."""
    if importlib.util.find_spec(module) is None:
        raise BackendNotInstalledError(f"{backend} is not installed (pip install {pip_name})", param="backend")
    return importlib.import_module(module)


def to_numpy(x: torch.Tensor) -> Any:
    """A float32 C-contiguous NumPy array of ``x`` on the CPU (what ONNX runtimes take)."""
    return x.detach().to("cpu", torch.float32).contiguous().numpy()


class BackendRunner(nn.Module):
    """Base of the runners: an esrkit-model-shaped module (NCHW float32 [0, 1] → NCHW float32) with no parameters.

    It copies the wrapped model's ``esrkit_config`` (so :func:`esrkit.models.registry.capabilities_of` and
    ``info_of`` answer for the runner exactly as for the model) and keeps its :class:`Capabilities` in
    ``capabilities``, and its parameter count in ``parameter_count``. ``backend``/``precision``/``threads`` say
    what runs. Having no parameters matters:
    ``Upscaler`` calls ``model.to(device, dtype)``, which must not undo a runner's own precision.
    """

    backend: ClassVar[str] = "?"
    package: ClassVar[tuple[str, str]] = ("torch", "torch")  # (import name, pip name)
    exact: ClassVar[bool] = True  # whether fp32 on this runner matches torch fp32 to float rounding (≤ 1e-4)

    def __init__(self, model: nn.Module, precision: str, threads: int | None) -> None:
        super().__init__()
        if threads is not None and int(threads) < 1:
            raise InputError(f"must be >= 1, got {threads}", param="threads")
        config = get_config(model)
        if config is not None:
            self.esrkit_config = copy.deepcopy(config)
        self.capabilities = capabilities_of(model)
        # the wrapped model's size: the runner itself has no parameters (see the class docstring)
        self.parameter_count = sum(p.numel() for p in model.parameters())
        self.precision = precision
        self.threads = None if threads is None else int(threads)

    @classmethod
    def installed(cls) -> bool:
        """Whether the runner's package can be imported (without importing it)."""
        return importlib.util.find_spec(cls.package[0]) is not None

    @classmethod
    def require(cls) -> Any:
        """The runner's package, imported, or :class:`BackendNotInstalledError`."""
        return require_package(cls.package[0], cls.package[1], cls.backend)

    @classmethod
    def native_precisions(cls, device: torch.device) -> tuple[str, ...]:
        """Precisions this runner runs natively on ``device`` of this machine, fp32 first."""
        raise NotImplementedError

    @classmethod
    def check_precision(cls, precision: str, device: torch.device) -> None:
        """:class:`PrecisionNotSupportedError` unless ``precision`` is native here (checked before any export)."""
        allowed = cls.native_precisions(device)
        if precision not in allowed:
            where = "this GPU" if device.type == "cuda" else "this CPU"
            raise PrecisionNotSupportedError(f"{cls.backend} cannot run {precision} natively on {where} "
                                             f"(supported: {', '.join(allowed)})", param="precision")

    def describe(self) -> str:
        """A short label such as ``openvino bf16`` (what tables print)."""
        return f"{self.backend} {self.precision}"

    def extra_repr(self) -> str:
        return f"precision={self.precision}, threads={self.threads}"
