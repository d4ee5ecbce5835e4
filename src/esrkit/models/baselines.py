"""Interpolation baselines as zero-parameter models, so they go through the same evaluation path as networks.

``bicubic`` is MATLAB's ``imresize`` bicubic upscale of the LR (the "Bicubic" row of every SR table);
``lanczos`` is MATLAB's ``lanczos3`` kernel, the AIS 2024 challenge baseline.
"""

from __future__ import annotations

import torch
from torch import nn

from .registry import register_model


class ResizeBaseline(nn.Module):
    """Upscale by interpolation with the MATLAB-compatible resizer."""

    def __init__(self, scale: int, kernel: str) -> None:
        super().__init__()
        self.scale = scale
        self.kernel = kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from ..data.resize import imresize

        return imresize(x, float(self.scale), kernel=self.kernel)


@register_model("bicubic", family="baseline", paper="MATLAB imresize (bicubic)", scales=(2, 3, 4, 8))
def bicubic(scale: int) -> nn.Module:
    """MATLAB bicubic interpolation (a = -0.5), the universal SR baseline."""
    return ResizeBaseline(scale, "cubic")


@register_model("lanczos", family="baseline", paper="AIS 2024 RTSR baseline (Lanczos)", scales=(2, 3, 4, 8))
def lanczos(scale: int) -> nn.Module:
    """Lanczos-3 interpolation, the AIS 2024 real-time 4K SR baseline."""
    return ResizeBaseline(scale, "lanczos3")
