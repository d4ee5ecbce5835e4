"""Device and precision names, resolved in one place.

Evaluation, inference, profiling and the challenge runner all accept the same spellings, so ``--device auto``
cannot work in one command and fail in another: ``None``/``"auto"`` (CUDA when available, else CPU), ``"cpu"``,
``"cuda"`` and ``"cuda:N"``; precisions ``fp32``, ``fp16`` and ``bf16``. Anything else is an
:class:`~esrkit.errors.InputError` naming the argument (``param="device"``/``"precision"``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform

import torch

from .errors import InputError

__all__ = [
    "PRECISIONS",
    "check_precision",
    "cpu_features",
    "cpu_identity",
    "cpu_is_x86",
    "cpu_runs_natively",
    "distributed_env",
    "resolve_device",
    "resolve_precision",
]

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


def check_precision(precision: str) -> str:
    """The canonical name (``fp32``/``fp16``/``bf16``) of a precision given in any case, or a one-line error."""
    name = str(precision).strip().lower()
    if name not in PRECISIONS:
        raise InputError(f"expected one of {', '.join(PRECISIONS)}, got {precision!r}", param="precision")
    return name


def resolve_precision(precision: str) -> torch.dtype:
    """Map ``fp32``/``fp16``/``bf16`` (any case) to a dtype, rejecting anything else with a one-line error."""
    return PRECISIONS[check_precision(precision)]


# ------------------------------------------------------------------------------------------------ machine facts
# Every question about the machine (what the CPU runs natively, who this process is under torchrun) is answered
# here and only here, so the trainer, the backends and the upscale jobs cannot disagree about it.


def cpu_features() -> frozenset[str]:
    """Instruction-set features of this CPU, lower case (``avx2``, ``avx512_bf16``, ``amx_bf16``, ...).

    ``torch.cpu.get_capabilities()`` (cpuinfo-based, torch ≥ 2.6) is asked first because it sees what the
    process may use; ``/proc/cpuinfo``'s flags are the fallback. ``torch.backends.cpu.get_cpu_capability()`` only
    names the widest SIMD level (``AVX512``) and says nothing about bf16, so it is not enough on its own.
    """
    getter = getattr(getattr(torch, "cpu", None), "get_capabilities", None)
    if callable(getter):
        with contextlib.suppress(Exception):
            caps = getter()
            return frozenset(k.lower() for k, v in caps.items() if v is True)
    flags = _cpuinfo_field("flags")
    return frozenset(flags.split()) if flags else frozenset()


def cpu_runs_natively(precision: str) -> bool:
    """Whether this CPU has dot-product instructions for ``precision`` (fp32 always; bf16 with AVX512-BF16 or
    AMX-BF16, fp16 with AVX512-FP16 or AMX-FP16). Without them oneDNN emulates the type through fp32 and gains
    nothing, which is why bf16 training, inference and the backends all ask this one function."""
    name = check_precision(precision)
    if name == "fp32":
        return True
    feats = cpu_features()
    wanted = {"bf16": {"avx512_bf16", "amx_bf16"}, "fp16": {"avx512_fp16", "amx_fp16"}}[name]
    return bool(wanted & feats)


def cpu_is_x86() -> bool:
    """Whether this is an x86-64 CPU (where OpenVINO's CPU plugin is the fastest exact runtime measured)."""
    return platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")


def cpu_identity() -> str:
    """A short stable name for this CPU model and its feature set (a cache key: a compiled model is only valid for
    the instruction set it was compiled for)."""
    model = _cpuinfo_field("model name") or platform.processor() or platform.machine()
    digest = hashlib.sha256(" ".join(sorted(cpu_features())).encode()).hexdigest()[:12]
    return f"{model.strip()} [{digest}]"


def _cpuinfo_field(name: str) -> str | None:
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
        for line in fh:
            if line.split(":", 1)[0].strip() == name:
                return line.split(":", 1)[1].strip()
    return None


def distributed_env() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from the environment ``torchrun`` sets (0, 1, 0 outside it); values
    that are not integers, or a rank outside the world, are an :class:`InputError`."""
    try:
        rank = int(os.environ.get("RANK", "0"))
        world = int(os.environ.get("WORLD_SIZE", "1"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise InputError("RANK, WORLD_SIZE and LOCAL_RANK must be integers") from None
    if world < 1 or not 0 <= rank < world:
        raise InputError(f"RANK={rank} is not in a world of WORLD_SIZE={world}")
    return rank, world, local
