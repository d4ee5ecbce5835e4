"""Profiling: the efficient-SR challenges' complexity counters (#Params, FLOPs, #Activations, #Conv) and a
runtime/peak-memory harness following their timing protocol.

``count_complexity`` reproduces the published figures; ``measure_runtime`` times a model; ``profile_model``
does both and returns a :class:`ProfileResult` whose ``to_dict()`` is JSON-ready.
"""

from __future__ import annotations

from .counters import (
    AIM2020_RULES,
    COUNTING_RULES,
    NTIRE2024_RULES,
    ComplexityCounts,
    CountingRules,
    count_complexity,
    count_params,
)
from .result import ProfileResult, profile_model
from .runtime import (
    PRECISIONS,
    ForwardTiming,
    MemoryStats,
    RuntimeResult,
    TimingStats,
    measure_runtime,
    resolve_device,
    resolve_precision,
    summarize_timings,
    time_forward,
)

__all__ = [
    "AIM2020_RULES",
    "COUNTING_RULES",
    "NTIRE2024_RULES",
    "PRECISIONS",
    "ComplexityCounts",
    "CountingRules",
    "ForwardTiming",
    "MemoryStats",
    "ProfileResult",
    "RuntimeResult",
    "TimingStats",
    "count_complexity",
    "count_params",
    "measure_runtime",
    "profile_model",
    "resolve_device",
    "resolve_precision",
    "summarize_timings",
    "time_forward",
]
