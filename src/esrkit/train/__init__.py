"""Building blocks of ``esrkit train``: crop datasets and degradations, losses, optimizers and schedules.

* :mod:`esrkit.train.sampling` — image listing, the decoded-image store, crops and the seeded epoch dataset base;
* :mod:`esrkit.train.augment` — :func:`augment` and :func:`dihedral`;
* :mod:`esrkit.train.datasets` — :class:`HRCropDataset`, :class:`PairedDataset`, :class:`AvifPairedDataset` and
  :func:`to_float`;
* :mod:`esrkit.train.degradations` — :class:`BicubicDegradation`, :class:`LanczosAvifDegradation` and
  :func:`build_degradation`;
* :mod:`esrkit.train.losses` — pixel, FFT, contrastive and distillation losses and :func:`build_loss`;
* :mod:`esrkit.train.optim` — :func:`build_optimizer`, :func:`build_scheduler` and :class:`EMA`.
"""

from __future__ import annotations

from .augment import augment, dihedral
from .datasets import HRCropDataset, PairedDataset, to_float
from .degradations import DEGRADATIONS, BicubicDegradation, Degradation, build_degradation
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
from .sampling import list_images

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
