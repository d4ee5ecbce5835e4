"""``--backend auto``: the fastest fp32-exact backend for this device, and the ``Upscaler.from_name`` hook.

The order (fastest first, each exact to float rounding against torch fp32, ≤ 1e-4 on the output):

* CUDA: torch (the ONNX runners are CPU-only here);
* x86 CPU: OpenVINO f32 when installed (measured on a 2-core AVX2 EPYC with the bundled model at 960×540: 3.7×
  eager, 1.8× torch channels-last), then ONNX Runtime (with the exact Sigmoid), then torch channels-last;
* other CPUs: ONNX Runtime, then torch channels-last.

A per-machine choice saved by ``esrkit recommend --save`` (:func:`save_machine_choice`) comes first when it was
measured on this CPU. Precisions other than fp32 go to the first of OpenVINO and torch that runs them natively.
A model without weights (the bicubic/lanczos baselines) runs torch, and one that cannot be exported to ONNX
falls back to torch: the failure is recorded in the cache (:mod:`.cache`), so only the first call pays for it.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ...device import check_precision, cpu_identity, cpu_is_x86, resolve_device
from .base import BackendRunner
from .cache import cache_root
from .errors import BackendError, ExportError
from .table import RUNNERS, check_backend, make_runner, runner_options, split_runner_kwargs, warn_if_unsafe

__all__ = ["AUTO", "auto_candidates", "machine_choice", "runner_for_upscaler", "save_machine_choice"]

AUTO = "auto"
_CHOICE_FILE = "backend-choice.json"


def machine_choice() -> str | None:
    """The backend ``esrkit recommend --save`` chose on this CPU, or None."""
    with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
        saved = json.loads((cache_root() / _CHOICE_FILE).read_text(encoding="utf-8"))
        if saved.get("cpu") == cpu_identity() and saved.get("backend") in RUNNERS:
            return str(saved["backend"])
    return None


def save_machine_choice(backend: str) -> None:
    """Record ``backend`` as this CPU's fp32 choice for ``--backend auto``."""
    from ...fileio import write_text_atomic

    write_text_atomic(cache_root() / _CHOICE_FILE,
                      json.dumps({"cpu": cpu_identity(), "backend": check_backend(backend)}, indent=1) + "\n")


def auto_candidates(model: nn.Module, device: str | torch.device | None, precision: str) -> list[str]:
    """The backends ``auto`` tries for ``model`` on ``device``, in order (the last one is always torch)."""
    dev = resolve_device(device)
    prec = check_precision(precision)
    if dev.type != "cpu" or not any(True for _ in model.parameters()):
        return ["torch"]
    if prec != "fp32":
        fast = [b for b in ("openvino",) if RUNNERS[b].installed() and prec in RUNNERS[b].native_precisions(dev)]
        return [*fast, "torch"]
    order = ["openvino", "onnxruntime"] if cpu_is_x86() else ["onnxruntime"]
    saved = machine_choice()
    if saved == "torch":
        return ["torch"]
    if saved is not None:
        order = [saved] + [b for b in order if b != saved]
    return [b for b in order if b != "torch" and RUNNERS[b].installed()] + ["torch"]


def _build(model: nn.Module, backend: str, precision: str, device: Any, options: dict[str, Any]) -> BackendRunner:
    threads = options.pop("threads", None)
    return make_runner(model, backend, precision=precision, threads=threads, device=device, **options)


def runner_for_upscaler(model: nn.Module, backend: str,
                        kwargs: Mapping[str, Any]) -> tuple[BackendRunner, dict[str, Any]]:
    """The ``Upscaler.from_name(..., backend=...)`` hook: wrap ``model`` and return the Upscaler's own kwargs.

    The runner owns the precision, so the Upscaler is told ``fp32`` (it hands the runner float32 tensors, and its
    cast would otherwise quantize the input to bf16 before the runtime sees it); the runner's ``precision`` says
    what runs. ``threads`` and the runner options are taken out of ``kwargs``; ``device`` is shared. ``auto``
    tries :func:`auto_candidates` in order, passing each only the options it takes.
    """
    options, rest = split_runner_kwargs(kwargs)
    precision = check_precision(str(rest.pop("precision", "fp32")))
    device = rest.get("device", "cpu")
    if str(backend).strip().lower() != AUTO:
        runner = _build(model, backend, precision, device, options)
    else:
        runner = None
        for name in auto_candidates(model, device, precision):
            accepted = {k: v for k, v in options.items() if k == "threads" or k in runner_options(name)}
            if name == "torch":
                runner = _build(model, name, precision, device, accepted)
                break
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # an export's tracer notes: the fallback is torch anyway
                    runner = _build(model, name, precision, device, accepted)
                break
            except (ExportError, BackendError):
                continue
    assert runner is not None  # torch is always the last candidate
    warn_if_unsafe(runner, precision, rest.get("capabilities"))
    rest["precision"] = "fp32"
    return runner, rest
