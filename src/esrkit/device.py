"""Device and precision names, resolved in one place.

Evaluation, inference, profiling and the challenge runner all accept the same spellings, so ``--device auto``
cannot work in one command and fail in another: ``None``/``"auto"`` (CUDA when available, else CPU), ``"cpu"``,
``"cuda"`` and ``"cuda:N"``; precisions ``fp32``, ``fp16`` and ``bf16``. Anything else is an
:class:`~esrkit.errors.InputError` naming the argument (``param="device"``/``"precision"``).
"""

from __future__ import annotations

import torch

from .errors import InputError

__all__ = ["PRECISIONS", "resolve_device", "resolve_precision"]

PRECISIONS: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}

_DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The :class:`torch.device` for a user's device choice.

    ``None``/``"auto"`` picks CUDA when available, else CPU. An explicit CUDA request on a machine without one
    (or naming a GPU index that does not exist) is a user error rather than a crash deep inside a forward pass;
    other device types (``mps``, ``xla``, …) are refused because nothing here times or tests them.
    """
    if device is None or (isinstance(device, str) and device.strip().lower() == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = device if isinstance(device, torch.device) else torch.device(device.strip().lower())
    except (RuntimeError, TypeError, AttributeError):
        raise InputError(f"unknown device {device!r}; use {_DEVICE_CHOICES}", param="device") from None
    if dev.type not in ("cpu", "cuda") or (dev.type == "cpu" and dev.index not in (None, 0)):
        raise InputError(f"unsupported device {device!r}; use {_DEVICE_CHOICES}", param="device")
    if dev.type == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise InputError(f"{device!s} requested but no CUDA device is available", param="device")
    count = torch.cuda.device_count()
    if dev.index is not None and dev.index >= count:
        raise InputError(f"{device!s} requested but this machine has {count} CUDA device(s)", param="device")
    return dev


def resolve_precision(precision: str) -> torch.dtype:
    """Map ``fp32``/``fp16``/``bf16`` (any case) to a dtype, rejecting anything else with a one-line error."""
    try:
        return PRECISIONS[precision.strip().lower()]
    except (KeyError, AttributeError):
        raise InputError(f"expected one of {', '.join(PRECISIONS)}, got {precision!r}", param="precision") from None
