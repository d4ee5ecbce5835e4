"""LKDN-S's re-parameterizable pixel-shuffle upsampler.

Submodule names follow the LKDN authors' checkpoints (``conv1``, ``conv3``, ``conv1x1``, ``conv3x3``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..conv import conv
from ..upsample import pixelshuffle_block
from .algebra import FOLD_DTYPE, conv_params, fuse_sequential_1x1_kxk, sum_branches


class RepUpsampler(nn.Module):
    """Re-parameterizable pixel-shuffle upsampler of LKDN-S (``Upsampler_rep`` in the official code).

    Three branches producing ``out_channels · scale²`` maps are summed before the pixel shuffle: a 1×1 conv
    (``conv1``), a 3×3 conv (``conv3``) and an expand-then-squeeze pair, 1×1 to ``2·in`` (``conv1x1``) then an
    unpadded 3×3 (``conv3x3``). The pair sees a zero-padded *input*, so its intermediate border equals the 1×1
    bias and the pair folds exactly (see :func:`fuse_sequential_1x1_kxk`). :meth:`fused` returns the single
    3×3 conv + pixel shuffle that LKDN uses (``0.weight``/``0.bias``).
    """

    def __init__(self, in_channels: int, out_channels: int, scale: int, expand: int = 2) -> None:
        super().__init__()
        mapped = out_channels * scale * scale
        self.in_channels, self.out_channels, self.scale = in_channels, out_channels, scale
        self.conv1 = conv(in_channels, mapped, 1)
        self.conv3 = conv(in_channels, mapped, 3)
        self.conv1x1 = conv(in_channels, in_channels * expand, 1)
        self.conv3x3 = nn.Conv2d(in_channels * expand, mapped, 3, padding=0)
        self.pixel_shuffle = nn.PixelShuffle(scale)

    def forward(self, x: Tensor) -> Tensor:
        # Padding the input (not the 1x1 output) with zeros makes the intermediate border equal to the 1x1
        # bias, which is the condition for the sequential pair to fold into one zero-padded 3x3.
        seq = self.conv3x3(self.conv1x1(F.pad(x, (1, 1, 1, 1))))
        return self.pixel_shuffle(self.conv1(x) + self.conv3(x) + seq)

    def fused(self) -> nn.Sequential:
        """The equivalent ``Sequential(Conv2d 3×3, PixelShuffle)``."""
        dtype = self.conv3.weight.dtype
        seq = fuse_sequential_1x1_kxk(conv_params(self.conv1x1, FOLD_DTYPE),
                                      conv_params(self.conv3x3, FOLD_DTYPE))
        kernel = sum_branches(conv_params(self.conv3, FOLD_DTYPE), conv_params(self.conv1, FOLD_DTYPE), seq)
        out = pixelshuffle_block(self.in_channels, self.out_channels, self.scale, kernel_size=3)
        out = out.to(device=self.conv3.weight.device, dtype=dtype)
        with torch.no_grad():
            out[0].weight.copy_(kernel.weight.to(dtype))
            out[0].bias.copy_(kernel.bias.to(dtype))
        return out.train(self.training)
