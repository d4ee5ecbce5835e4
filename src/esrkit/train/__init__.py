"""Building blocks of ``esrkit train``.

* :mod:`esrkit.train.data` — :class:`HRCropDataset`, :class:`PairedDataset`, :func:`augment`,
  :func:`to_float`, :class:`BicubicDegradation` and :func:`build_degradation`;
* :mod:`esrkit.train.optim` — :func:`build_optimizer`, :func:`build_scheduler` and :class:`EMA`.
"""

from __future__ import annotations

from .data import (
    DEGRADATIONS,
    BicubicDegradation,
    Degradation,
    HRCropDataset,
    PairedDataset,
    augment,
    build_degradation,
    dihedral,
    list_images,
    to_float,
)
from .optim import EMA, IterationScheduler, build_optimizer, build_scheduler

__all__ = [
    "DEGRADATIONS",
    "EMA",
    "BicubicDegradation",
    "Degradation",
    "HRCropDataset",
    "IterationScheduler",
    "PairedDataset",
    "augment",
    "build_degradation",
    "build_optimizer",
    "build_scheduler",
    "dihedral",
    "list_images",
    "to_float",
]
