"""Building blocks shared by several architecture families.

Names of submodules here are chosen so that state-dict keys match the authors' released checkpoints
(``upsampler.0.weight`` for a conv followed by a pixel shuffle, for instance).
"""

from __future__ import annotations

from torch import nn


def conv(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, bias: bool = True,
         groups: int = 1, dilation: int = 1) -> nn.Conv2d:
    """A 2-D convolution with 'same' padding for odd kernels (the convention of every efficient-SR codebase)."""
    padding = (kernel_size - 1) // 2 * dilation
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias,
                     groups=groups, dilation=dilation)


def pixelshuffle_block(in_channels: int, out_channels: int, scale: int, kernel_size: int = 3) -> nn.Sequential:
    """One conv to ``out_channels * scale**2`` channels followed by a pixel shuffle (the 'pixelshuffledirect'
    upsampler of RFDN, RLFN and LKDN). Keys: ``0.weight``, ``0.bias``."""
    return nn.Sequential(conv(in_channels, out_channels * scale * scale, kernel_size), nn.PixelShuffle(scale))
