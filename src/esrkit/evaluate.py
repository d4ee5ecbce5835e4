"""Fidelity evaluation on benchmarks, the papers' protocol end to end.

LR comes from the benchmark's LR folder or from MATLAB-bicubic downscaling of the mod-cropped HR; the SR output
is rounded to uint8; PSNR/SSIM are computed on RGB and Y with a ``scale``-pixel border crop
(:mod:`esrkit.metrics`). Dataset means are plain means over images, as every SR table reports.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .data.datasets import Benchmark, resolve_benchmark
from .data.io import write_image
from .infer import Upscaler
from .metrics import calculate_metrics

__all__ = ["DatasetResult", "evaluate_benchmark", "evaluate_model", "results_document"]

METRIC_KEYS = ("psnr_rgb", "ssim_rgb", "psnr_y", "ssim_y")


@dataclass
class DatasetResult:
    """Mean metrics of one model on one benchmark, with the per-image values behind them."""

    dataset: str
    scale: int
    n: int
    psnr_rgb: float
    ssim_rgb: float
    psnr_y: float
    ssim_y: float
    images: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The JSON row (without per-image values)."""
        row = asdict(self)
        row.pop("images")
        return row


def evaluate_benchmark(upscaler: Upscaler | Callable[[np.ndarray], np.ndarray], bench: Benchmark, *,
                       border: int | None = None, save_dir: Path | None = None,
                       on_image: Callable[[str], None] | None = None) -> DatasetResult:
    """Score ``upscaler`` (uint8 LR → uint8 SR) on one benchmark; optionally save SR PNGs to ``save_dir``."""
    per_image: list[dict[str, Any]] = []
    for stem, lr, hr in bench.pairs():
        sr = upscaler(lr)
        scores = calculate_metrics(sr, hr, bench.scale, border=border)
        per_image.append({"image": stem, **scores})
        if save_dir is not None:
            write_image(save_dir / bench.name / f"{stem}.png", sr)
        if on_image is not None:
            on_image(stem)
    means = {k: float(np.mean([row[k] for row in per_image])) for k in METRIC_KEYS}
    return DatasetResult(dataset=bench.name, scale=bench.scale, n=len(per_image), images=per_image, **means)


def evaluate_model(upscaler: Upscaler | Callable[[np.ndarray], np.ndarray], datasets: Iterable[str | os.PathLike[str]],
                   scale: int, *, data_root: str | os.PathLike[str] | None = None, border: int | None = None,
                   save_dir: str | os.PathLike[str] | None = None,
                   crop_multiple: int | None = None) -> list[DatasetResult]:
    """Evaluate on several benchmarks (folder paths or standard names under ``data_root``).

    Every dataset is resolved before any image is processed, so a typo fails fast.
    """
    benches = [resolve_benchmark(d, scale, data_root, crop_multiple=crop_multiple) for d in datasets]
    out = Path(save_dir) if save_dir is not None else None
    return [evaluate_benchmark(upscaler, b, border=border, save_dir=out) for b in benches]


def results_document(model: str, results: Sequence[DatasetResult], **extra: Any) -> dict[str, Any]:
    """The JSON document ``esrkit evaluate --json`` writes: ``model``, then ``extra`` (the CLI's ``weights``, the
    path as given, and ``weights_provenance``, the record of :mod:`esrkit.hub.provenance`: which file with which
    sha256, the released file's catalogue record, or random weights), then one row per dataset."""
    return {"model": model, **extra, "results": [r.summary() for r in results]}
