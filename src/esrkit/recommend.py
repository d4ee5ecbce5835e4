"""Which model, backend and precision to run on *this* machine: measured, never assumed.

For every candidate model (zoo names and/or checkpoints) :func:`recommend`

1. scores the model in fp32 through :class:`esrkit.infer.Upscaler` and :mod:`esrkit.evaluate`, the path of
   ``esrkit evaluate`` (so the fp32 figure equals that command's);
2. builds every backend × precision this machine runs natively (:func:`esrkit.infer.backends.supported_precisions`;
   ONNX Runtime and OpenVINO only where installed) and scores each the same way; a combination more than
   ``tolerance_db`` (0.02 dB) below the model's fp32 figure is dropped, as is one that cannot run (an export the
   model does not survive, say), with the reason;
3. times each kept combination at ``input_size`` with :func:`esrkit.profile.runtime.time_forward` (the one timing
   loop), same thread count for all backends.

The PSNR figure is the Y-channel PSNR (scale-pixel border, the papers' protocol), averaged over the datasets' means
when several are given. The Pareto front is the set of kept combinations that no other beats on both PSNR (higher)
and runtime (lower); the recommendation is the fastest kept combination whose PSNR meets ``min_psnr``: the
fastest model that meets the floor, with its best backend and precision.

Timing defaults are quick (two warm-ups, the median of five forwards, one trial): enough to order backends that
differ by tens of percent, which is what the choice needs. The two warm-ups matter: OpenVINO compiles a static-shape
model the second time it sees a shape, and ``torch.compile`` on its first call.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from .errors import EsrkitError, InputError

__all__ = ["Candidate", "Measurement", "Recommendation", "candidate_combos", "choose", "pareto_front", "recommend"]


@dataclass(frozen=True)
class Candidate:
    """A model to consider: a zoo ``name``, a checkpoint ``weights``, or both (the name then checks the file)."""

    name: str | None = None
    weights: Path | None = None
    random_weights: bool = False  # a zoo name with random weights, only when asked for (tests, timing)

    @property
    def label(self) -> str:
        return self.weights.stem if self.weights is not None else str(self.name)


@dataclass
class Measurement:
    """One model × backend × precision: its fidelity, its runtime and whether it stays in the running."""

    model: str
    backend: str
    precision: str
    psnr_y: float | None = None
    delta_db: float | None = None  # vs the model's fp32 PSNR (``esrkit evaluate``)
    median_ms: float | None = None
    status: str = "ok"  # "ok", "dropped" (fidelity) or "unavailable" (cannot run)
    reason: str = ""
    pareto: bool = False
    meets_floor: bool = False

    @property
    def kept(self) -> bool:
        return self.status == "ok" and self.psnr_y is not None and self.median_ms is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Recommendation:
    """What :func:`recommend` measured and chose."""

    measurements: list[Measurement]
    fp32_psnr: dict[str, float]
    front: list[Measurement]
    best: Measurement | None
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "fp32_psnr_y": self.fp32_psnr,
            "measurements": [m.to_dict() for m in self.measurements],
            "pareto_front": [m.to_dict() for m in self.front],
            "recommendation": None if self.best is None else self.best.to_dict(),
        }

    def fastest_fp32_backend(self) -> str | None:
        """The backend that ran the recommended model (else the first candidate) fastest in fp32, among those
        kept (within the tolerance of the module's own fp32): what ``--backend auto`` should use on this machine
        (``esrkit recommend --save``); None when no fp32 row was kept."""
        model = self.best.model if self.best is not None else next(iter(self.fp32_psnr), None)
        rows = [m for m in self.measurements if m.model == model and m.precision == "fp32" and m.kept]
        return min(rows, key=lambda m: m.median_ms).backend if rows else None  # type: ignore[arg-type,return-value]


def candidate_combos(device: str | torch.device | None = "cpu") -> list[tuple[str, str]]:
    """Every (backend, precision) this machine runs natively on ``device``, installed backends only."""
    from .infer.backends import available_backends, supported_precisions

    dev = torch.device("cpu") if device is None else torch.device(device)
    combos = []
    for backend in available_backends():
        if dev.type != "cpu" and backend != "torch":
            continue  # ONNX Runtime and OpenVINO run on the CPU in esrkit
        combos += [(backend, p) for p in supported_precisions(backend, dev)]
    return combos


# PSNRs closer than this are the same fidelity: exact fp32 backends of one model differ by float rounding in the
# fifth decimal, and without it the slower one (31.20001 dB at 433 ms) stayed on the front beside the faster one
# (31.20000 dB at 263 ms), the same row twice as printed. Half the 0.001 dB the tables print.
PSNR_RESOLUTION_DB = 0.0005


def pareto_front(measurements: Sequence[Measurement]) -> list[Measurement]:
    """The kept measurements no other kept one dominates (PSNR ≥ and runtime ≤, one of them strictly; PSNRs
    within :data:`PSNR_RESOLUTION_DB` count as equal), fastest first; of exact ties the first is kept. Pure, so
    it is tested on its own."""
    kept = [m for m in measurements if m.kept]
    eps = PSNR_RESOLUTION_DB

    def dominates(o: Measurement, m: Measurement) -> bool:
        same_psnr = abs(o.psnr_y - m.psnr_y) <= eps  # type: ignore[operator]
        at_least = same_psnr or o.psnr_y > m.psnr_y  # type: ignore[operator]
        return at_least and o.median_ms <= m.median_ms and (  # type: ignore[operator]
            not same_psnr or o.median_ms < m.median_ms)  # type: ignore[operator]

    front: list[Measurement] = []
    for m in kept:
        if any(o is not m and dominates(o, m) for o in kept):
            continue
        if any(abs(f.psnr_y - m.psnr_y) <= eps and f.median_ms == m.median_ms for f in front):  # type: ignore[operator]
            continue  # an exact tie with one already on the front
        front.append(m)
    return sorted(front, key=lambda m: (m.median_ms, -m.psnr_y))  # type: ignore[operator]


def choose(measurements: Sequence[Measurement], min_psnr: float) -> tuple[list[Measurement], Measurement | None]:
    """Mark the Pareto front and the kept measurements meeting ``min_psnr``; return the front and the fastest
    measurement meeting the floor (None when none does; ties go to the higher PSNR). Pure, so it is tested on
    its own."""
    front = pareto_front(measurements)
    for m in measurements:
        m.pareto = any(m is f for f in front)
        m.meets_floor = m.kept and m.psnr_y >= min_psnr  # type: ignore[operator]
    meeting = [m for m in measurements if m.meets_floor]
    best = min(meeting, key=lambda m: (m.median_ms, -m.psnr_y)) if meeting else None  # type: ignore[arg-type,operator]
    return front, best


def _mean_psnr_y(upscaler: Any, datasets: Sequence[str | os.PathLike[str]], scale: int, data_root: Any,
                 crop_multiple: int | None) -> float:
    from .evaluate import evaluate_model

    results = evaluate_model(upscaler, datasets, scale, data_root=data_root, crop_multiple=crop_multiple)
    return float(sum(r.psnr_y for r in results) / len(results))


def _timing_input(caps: Any, size: tuple[int, int]) -> torch.Tensor:
    """A random 1×3×H×W input at ``size`` grown to what the model accepts (the Upscaler would pad the same)."""
    sides = []
    for side in size:
        side = max(side, caps.min_size)
        sides.append(side + -side % caps.size_multiple)
    return torch.rand(1, 3, *sides, generator=torch.Generator().manual_seed(0))


def recommend(
    candidates: Sequence[Candidate],
    datasets: Sequence[str | os.PathLike[str]],
    *,
    min_psnr: float,
    scale: int = 4,
    device: str = "cpu",
    threads: int | None = None,
    input_size: tuple[int, int] = (256, 256),
    combos: Sequence[tuple[str, str]] | None = None,
    tolerance_db: float = 0.02,
    warmup: int = 2,
    repeats: int = 5,
    trials: int = 1,
    data_root: str | os.PathLike[str] | None = None,
    crop_multiple: int | None = None,
    on_step: Callable[[str], None] | None = None,
) -> Recommendation:
    """Measure every candidate × combination and choose (see the module docstring).

    ``combos`` defaults to :func:`candidate_combos` for ``device``. ``threads`` is the same for every backend
    (None on CPU: torch's current count, passed explicitly to all of them). ``on_step`` is told what is being
    measured, for a progress display. Raises :class:`InputError` on bad settings before any model is built.
    """
    from .data.datasets import resolve_benchmark
    from .device import resolve_device
    from .hub import check_choice
    from .infer import Upscaler
    from .infer.backends import BackendError, ExportError
    from .profile.runtime import check_timing_counts, time_forward

    if not candidates:
        raise InputError("give at least one model (--model NAME or --weights FILE)")
    if not datasets:
        raise InputError("give at least one benchmark", param="data")
    if not math.isfinite(min_psnr):
        raise InputError(f"must be a number, got {min_psnr}", param="min_psnr")
    if tolerance_db < 0:
        raise InputError(f"must be >= 0, got {tolerance_db}", param="tolerance_db")
    check_timing_counts(warmup=warmup, repeats=repeats, trials=trials, threads=threads)
    for cand in candidates:  # an unknown name, or one without released weights, fails before anything is scored
        check_choice(cand.name, scale, cand.weights, cand.random_weights)
    dev = resolve_device(device)
    if threads is None and dev.type == "cpu":
        threads = torch.get_num_threads()  # one explicit count for every backend, not each runtime's default
    for d in datasets:  # a typo fails before any model is scored
        resolve_benchmark(d, scale, data_root, crop_multiple=crop_multiple)
    combos = list(candidate_combos(dev) if combos is None else combos)
    step = on_step or (lambda _text: None)

    measurements: list[Measurement] = []
    fp32: dict[str, float] = {}
    labels = [c.label for c in candidates]
    labels = [f"{lab}#{i + 1}" if labels.count(lab) > 1 else lab for i, lab in enumerate(labels)]
    for cand, label in zip(candidates, labels, strict=True):
        step(f"{label} fp32 (reference)")
        reference = Upscaler.from_name(cand.name, scale=scale, weights=cand.weights, device=str(dev),
                                       random_weights=cand.random_weights,
                                       backend=None)  # the plain module: the reference every row is held to
        fp32[label] = base = _mean_psnr_y(reference, datasets, scale, data_root, crop_multiple)
        x = _timing_input(reference.capabilities, input_size)
        del reference
        own = _quantized_combo(cand.weights)  # an int8 file from esrkit quantize runs only as what it is
        for backend, precision in combos if own is None else [own]:
            row = Measurement(label, backend, precision)
            measurements.append(row)
            step(f"{label} {backend} {precision}")
            try:
                with _quiet_precision_warnings():
                    up = Upscaler.from_name(cand.name, scale=scale, weights=cand.weights, device=str(dev),
                                            backend=backend, precision=precision, threads=threads,
                                            random_weights=cand.random_weights)
                row.psnr_y = _mean_psnr_y(up, datasets, scale, data_root, crop_multiple)
            except (BackendError, ExportError) as exc:
                row.status, row.reason = "unavailable", exc.message
                continue
            row.delta_db = row.psnr_y - base
            if row.delta_db < -tolerance_db:
                row.status, row.reason = "dropped", f"{row.delta_db:+.3f} dB vs fp32 (limit -{tolerance_db:g})"
                continue
            try:
                timing = time_forward(up.model, [x], device=dev, dtype=torch.float32, warmup=warmup,
                                      repeats=repeats, trials=trials, threads=threads)
            except (RuntimeError, EsrkitError) as exc:  # e.g. torch.compile without a working C++ compiler
                row.status, row.reason = "unavailable", str(exc).strip().splitlines()[0][:200]
                continue
            row.median_ms = timing.timing.median_ms

    front, best = choose(measurements, min_psnr)
    settings = {
        "datasets": [str(d) for d in datasets], "scale": scale, "min_psnr": min_psnr, "device": str(dev),
        "threads": threads,
        "input_size": list(input_size), "tolerance_db": tolerance_db, "warmup": warmup, "repeats": repeats,
        "trials": trials, "metric": "psnr_y",
    }  # fmt: skip
    return Recommendation(measurements, fp32, front, best, settings)


def _quantized_combo(weights: Path | None) -> tuple[str, str] | None:
    """(runtime, "int8") for a model file written by ``esrkit quantize``, else None: such a candidate is measured
    once, in its own runtime, against the same ``min_psnr`` floor as every fp32/bf16 combination."""
    from .quantize.runtime import backend_of, is_quantized_path

    return (backend_of(weights), "int8") if weights is not None and is_quantized_path(weights) else None


@contextlib.contextmanager
def _quiet_precision_warnings() -> Iterator[None]:
    """Silence the "not marked safe" precision warning while measuring: the measured PSNR says it better."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".* is not marked safe for this model", category=RuntimeWarning)
        yield
