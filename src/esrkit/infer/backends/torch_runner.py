"""The PyTorch runner: the deploy form in channels-last memory, bf16/fp16 (cast or autocast), optional compile.

Why each lever (measured on a shared 2-core AVX512-BF16 EPYC with the official RLFN-NTIRE ×4 weights at 256×256;
``benchmarks/inference.py`` has the repeatable table and ``benchmarks/README.md`` the figures): channels-last
(NHWC) lets oneDNN run its convolutions natively, with no reorder per convolution (1.4× over the eager train form,
exact); bf16 pays only with native bf16 dot products (:func:`esrkit.device.cpu_runs_natively`), otherwise oneDNN
emulates it through fp32; ``torch.compile`` (inductor) needs a C++ compiler, took ~1.5 minutes per shape and gave
~1.15×, far below OpenVINO, so it stays opt-in.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator

import torch
from torch import nn

from ...device import PRECISIONS, cpu_runs_natively, resolve_device
from ...errors import InputError
from .base import BackendRunner

__all__ = ["DEFAULT_BF16_MODE", "TorchRunner", "torch_threads"]

# "cast" converts weights and input to bf16 once; "autocast" keeps fp32 weights and lets torch cast per op. Measured
# on Set5 ×4 Y-PSNR with the official weights (ΔdB vs fp32, cast / autocast): RLFN-NTIRE -0.0063 / -0.0063, RFDN
# -0.0064 / -0.0064, IMDN -0.0086 / -0.0086, LKDN-S -0.0593 / -0.0590, and the same speed at 256×256 on an
# AVX512-BF16 CPU: the convolutions run in bf16 either way. Cast is the default because it is what a deployment
# ships (half the weight memory, no per-call weight casts) and what esrkit's profiler times.
DEFAULT_BF16_MODE = "cast"

@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """``torch.set_num_threads(threads)`` for the block (None: leave it)."""
    if threads is None or torch.get_num_threads() == threads:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class TorchRunner(BackendRunner):
    """PyTorch with the deploy form, channels-last memory, bf16/fp16 (cast or autocast) and optional compile.

    The wrapped network is held outside the module tree (``runner.net``), so the runner itself has no parameters
    and a later ``.to(dtype)`` by the caller cannot cast it back. Output: float32 (a view in channels-last memory
    when ``channels_last``; its values are what matter, ``.contiguous()`` gives NCHW memory).
    """

    backend = "torch"
    package = ("torch", "torch")

    @classmethod
    def native_precisions(cls, device: torch.device) -> tuple[str, ...]:
        """CPU: bf16 with AVX512-BF16/AMX-BF16, fp16 with AVX512-FP16/AMX-FP16; CUDA: fp16 always, bf16 where the
        GPU has it."""
        if device.type == "cuda":
            return ("fp32", "fp16", "bf16") if torch.cuda.is_bf16_supported() else ("fp32", "fp16")
        return tuple(p for p in ("fp32", "bf16", "fp16") if cpu_runs_natively(p))

    def __init__(self, model: nn.Module, *, precision: str = "fp32", threads: int | None = None,
                 device: str | torch.device | None = "cpu", channels_last: bool = True, compile: bool = False,
                 bf16_mode: str = DEFAULT_BF16_MODE) -> None:
        super().__init__(model, precision, threads)
        if bf16_mode not in ("cast", "autocast"):
            raise InputError(f"expected cast or autocast, got {bf16_mode!r}", param="bf16_mode")
        self.device = resolve_device(device)
        self.dtype = PRECISIONS[precision]
        self.channels_last = channels_last
        self.compiled = compile
        self.autocast = self.dtype != torch.float32 and bf16_mode == "autocast"
        net = copy.deepcopy(model).eval().to(self.device)
        if self.dtype != torch.float32 and not self.autocast:
            net = net.to(self.dtype)
        if channels_last:
            net = net.to(memory_format=torch.channels_last)
        if compile:
            net = torch.compile(net)  # compiles lazily at the first forward of each new shape
        object.__setattr__(self, "net", net)  # not a registered submodule, on purpose (see the class docstring)
        self._input_dtype = torch.float32 if self.autocast else self.dtype

    def describe(self) -> str:
        extras = [e for e, on in (("channels-last", self.channels_last), ("compile", self.compiled),
                                  ("autocast", self.autocast)) if on]
        return f"torch {self.precision}" + (f" ({', '.join(extras)})" if extras else "")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, self._input_dtype)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        ctx = (torch.autocast(self.device.type, dtype=self.dtype) if self.autocast else contextlib.nullcontext())
        with torch_threads(self.threads if self.device.type == "cpu" else None), ctx:
            out = self.net(x)  # type: ignore[operator]
        return out.float()
