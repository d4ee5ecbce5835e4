"""The training-data names in one place, as ``esrkit.train.data`` offered them before it was split by concept.

Their homes: :mod:`.sampling` (image listing, the image store, crops, :class:`~.sampling.EpochDataset`),
:mod:`.augment` (flips and rotations), :mod:`.datasets` (HR crops, paired crops, AIS 2024 paired crops,
:func:`~.datasets.to_float`) and :mod:`.degradations` (bicubic, Lanczos + AVIF, the registry).
"""

from __future__ import annotations

from .augment import augment, dihedral
from .datasets import AvifPairedDataset, HRCropDataset, PairedDataset, to_float
from .degradations import DEGRADATIONS, BicubicDegradation, Degradation, LanczosAvifDegradation, build_degradation
from .sampling import MEMORY_BUDGET_BYTES, list_images

__all__ = [
    "DEGRADATIONS",
    "MEMORY_BUDGET_BYTES",
    "AvifPairedDataset",
    "BicubicDegradation",
    "Degradation",
    "HRCropDataset",
    "LanczosAvifDegradation",
    "PairedDataset",
    "augment",
    "build_degradation",
    "dihedral",
    "list_images",
    "to_float",
]
