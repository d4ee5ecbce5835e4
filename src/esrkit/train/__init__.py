"""Building blocks of ``esrkit train``: crop datasets and degradations, losses, optimizers and schedules.

* :mod:`esrkit.train.data` — :class:`HRCropDataset`, :class:`PairedDataset`, :func:`augment`,
  :func:`to_float`, :class:`BicubicDegradation` and :func:`build_degradation`;
* :mod:`esrkit.train.losses` — pixel, FFT, contrastive and distillation losses and :func:`build_loss`;
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
from .losses import (
    LOSSES,
    CharbonnierLoss,
    CompositeLoss,
    ContrastiveLoss,
    DistillationLoss,
    FFTLoss,
    L1Loss,
    MSELoss,
    build_loss,
)
from .optim import EMA, IterationScheduler, build_optimizer, build_scheduler

__all__ = [
    "DEGRADATIONS",
    "EMA",
    "LOSSES",
    "BicubicDegradation",
    "CharbonnierLoss",
    "CompositeLoss",
    "ContrastiveLoss",
    "Degradation",
    "DistillationLoss",
    "FFTLoss",
    "HRCropDataset",
    "IterationScheduler",
    "L1Loss",
    "MSELoss",
    "PairedDataset",
    "augment",
    "build_degradation",
    "build_loss",
    "build_optimizer",
    "build_scheduler",
    "dihedral",
    "list_images",
    "to_float",
]
