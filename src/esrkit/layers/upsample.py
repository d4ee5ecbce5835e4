"""Upsamplers: the sub-pixel (pixel-shuffle) tails of the efficient-SR networks.

Submodule names are chosen so that state-dict keys match the authors' released checkpoints (``upsampler.0.weight``
for a conv followed by a pixel shuffle).
"""

from __future__ import annotations

from torch import nn

from .conv import conv


def pixelshuffle_block(in_channels: int, out_channels: int, scale: int,
                       kernel_size: int = 3) -> nn.Sequential:
    """One conv to ``out_channels * scale**2`` channels followed by a pixel shuffle (the 'pixelshuffledirect'
    upsampler of RFDN, RLFN and LKDN). Keys: ``0.weight``, ``0.bias``."""
    return nn.Sequential(conv(in_channels, out_channels * scale * scale, kernel_size), nn.PixelShuffle(scale))
