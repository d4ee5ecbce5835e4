"""One profile of one model: complexity counts plus (optionally) runtime, as a JSON-ready record."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .counters import AIM2020_RULES, ComplexityCounts, CountingRules, count_complexity
from .runtime import RuntimeResult, measure_runtime

__all__ = ["ProfileResult", "profile_model"]


@dataclass(frozen=True)
class ProfileResult:
    """Counts and timing of one model. Raw integers are kept; the unit-scaled figures are derived properties
    so a JSON consumer can compare with the challenges' tables (M = 1e6, G = 1e9, memory in MiB) without
    re-deriving."""

    model: str
    form: str  # "deploy", "train" or "as-loaded"
    scale: int | None
    counts: ComplexityCounts
    runtime: RuntimeResult | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def params_m(self) -> float:
        return self.counts.params / 1e6

    @property
    def flops_g(self) -> float:
        return self.counts.flops / 1e9

    @property
    def activations_m(self) -> float:
        return self.counts.activations / 1e6

    @property
    def runtime_median_ms(self) -> float | None:
        return None if self.runtime is None else self.runtime.timing.median_ms

    @property
    def memory_mib(self) -> float | None:
        return None if self.runtime is None else self.runtime.memory.peak_mib

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only (``json.dumps`` works on the result as is)."""
        return {
            "model": self.model,
            "form": self.form,
            "scale": self.scale,
            "params": self.counts.params,
            "flops": self.counts.flops,
            "conv_flops": self.counts.conv_flops,
            "activations": self.counts.activations,
            "num_conv": self.counts.num_conv,
            "params_m": self.params_m,
            "flops_g": self.flops_g,
            "activations_m": self.activations_m,
            "memory_mib": self.memory_mib,
            "runtime_median_ms": self.runtime_median_ms,
            "counts": self.counts.to_dict(),
            "runtime": None if self.runtime is None else self.runtime.to_dict(),
            "torch_version": torch.__version__,
            **self.extra,
        }


def profile_model(
    model: nn.Module,
    *,
    name: str = "model",
    form: str = "as-loaded",
    scale: int | None = None,
    input_size: tuple[int, int] = (256, 256),
    in_channels: int = 3,
    rules: CountingRules | str = AIM2020_RULES,
    runtime: bool = True,
    device: str | None = "cpu",
    precision: str = "fp32",
    warmup: int = 3,
    repeats: int = 10,
    trials: int = 3,
    threads: int | None = 1,
    memory_on_warmup: bool = False,
) -> ProfileResult:
    """Count complexity (always at fp32 shapes, on a meta copy where possible) and optionally time ``model``.

    The caller decides the form: the CLI passes the deploy form (``reparameterize``), because that is what the
    challenges count and time.
    """
    requested = (int(input_size[0]), int(input_size[1]))
    input_size = valid_input_size(model, requested)
    counts = count_complexity(model, input_size, in_channels=in_channels, rules=rules)
    timing = None
    if runtime:
        timing = measure_runtime(model, input_size, in_channels=in_channels, device=device, precision=precision,
                                 warmup=warmup, repeats=repeats, trials=trials, threads=threads,
                                 memory_on_warmup=memory_on_warmup)
    extra = {} if input_size == requested else {"input_size": list(input_size), "requested_input_size": list(requested)}
    return ProfileResult(model=name, form=form, scale=scale, counts=counts, runtime=timing, extra=extra)


def valid_input_size(model: nn.Module, size: tuple[int, int]) -> tuple[int, int]:
    """``size`` raised to the model's minimum and rounded up to its size multiple (registry capabilities).

    A model that unshuffles by 3 (CASR, Lanczos++) cannot run at the challenges' 256×256 at all; it is counted
    at the nearest size it accepts (258×258), and the result records both sizes, rather than failing the whole
    ``profile --all`` table.
    """
    from ..models.registry import capabilities_of

    caps = capabilities_of(model)

    def fit(v: int) -> int:
        v = max(v, caps.min_size)
        return v + -v % caps.size_multiple

    return fit(size[0]), fit(size[1])
