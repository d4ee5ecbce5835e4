"""Interpolation baselines as zero-parameter models, so they go through the same evaluation path as networks.

``bicubic`` is MATLAB's ``imresize`` bicubic upscale of the LR (the "Bicubic" row of every SR table);
``lanczos`` is MATLAB's ``lanczos3`` kernel, the AIS 2024 challenge baseline.
"""

from __future__ import annotations

import torch
from torch import nn

from .registry import Family, Variant, register_family


class ResizeBaseline(nn.Module):
    """Upscale by interpolation with the MATLAB-compatible resizer (``kernel``: cubic, lanczos2 or lanczos3)."""

    def __init__(self, scale: int = 4, kernel: str = "cubic") -> None:
        super().__init__()
        self.scale = scale
        self.kernel = kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from ..data.resize import imresize

        return imresize(x, float(self.scale), kernel=self.kernel)


# No detector: a baseline has no weights to recognise.
FAMILY = register_family(Family(
    name="baseline",
    cls=ResizeBaseline,
    paper="MATLAB imresize",
    variants={
        "bicubic": Variant(note="bicubic (a = -0.5), the universal SR baseline"),
        "lanczos": Variant({"kernel": "lanczos3"}, note="Lanczos-3, the AIS 2024 RTSR baseline"),
    },
    scales=(2, 3, 4, 8),
))
