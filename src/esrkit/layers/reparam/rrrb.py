"""The reparameterized residual-in-residual block (RRRB) of FMEN, used at train time by DIPNet and PFDN.

FMEN (Du et al., "Fast and Memory-Efficient Network Towards Efficient Image Super-Resolution", NTIRE 2022)
replaces a plain k×k conv by a wider linear sub-network while training: a 1×1 conv expands the channels, a k×k
conv works at that width with an identity skip around it, a 1×1 conv squeezes back, and an outer identity skip
spans the whole block. Everything is linear, so after training it collapses into the one k×k conv it stands in
for, and the deploy network is as fast as the plain one.

Submodule names follow FMEN's code (``expand_conv``, ``fea_conv``, ``reduce_conv``), so FMEN-style train-time
checkpoints keep their keys; :meth:`RRRB.fused` returns a bare ``nn.Conv2d`` that takes the place (and the keys)
of the block.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .algebra import (
    FOLD_DTYPE,
    conv_params,
    fuse_sequential_1x1_kxk,
    fuse_sequential_kxk_1x1,
    identity_branch,
    sum_branches,
    to_conv2d,
)


class RRRB(nn.Module):
    """FMEN's RRRB: ``y = reduce(fea(pad_b(expand(x))) + expand(x)) + x``, folding exactly into one k×k conv.

    ``pad_b`` pads the expanded map with the expand conv's *bias* instead of zeros, and ``fea_conv`` runs
    unpadded. A zero-padded input ``x`` would give exactly that border after the 1×1 expand, so the
    block computes the same function as its folded k×k conv with ordinary zero padding, border pixels included
    (see :func:`~esrkit.layers.reparam.algebra.fuse_sequential_1x1_kxk`). A zero-padded expanded map would not fold
    exactly at the borders.

    Two generalisations of FMEN's square block, both needed by the networks that use it:

    * ``in_channels`` may differ from ``out_channels`` (DIPNet's pruned blocks go 44→38→38→44). The inner skip
      (at the expanded width) is always there. The outer skip ``+ x`` is only possible, and so only present,
      when the widths match. FMEN defines only the square case, so this choice is esrkit's;
    * ``bias=False`` makes all three convs bias-free. The bias padding is then plain zero padding and the folded
      conv has no bias either, which is what DIPNet's deploy checkpoint holds.

    The expanded width is ``ratio · in_channels`` (FMEN and the PFDN authors' related blocks use ratio 2).
    """

    def __init__(self, in_channels: int, out_channels: int | None = None, kernel_size: int = 3, ratio: int = 2,
                 bias: bool = True) -> None:
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        if kernel_size % 2 == 0:
            raise ValueError("RRRB needs an odd kernel (its identity skips sit at the centre tap)")
        if ratio < 1:
            raise ValueError(f"RRRB expansion ratio must be at least 1, got {ratio}")
        mid = ratio * in_channels
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.has_bias = bias
        self.expand_conv = nn.Conv2d(in_channels, mid, 1, bias=bias)
        self.fea_conv = nn.Conv2d(mid, mid, kernel_size, padding=0, bias=bias)
        self.reduce_conv = nn.Conv2d(mid, out_channels, 1, bias=bias)

    @property
    def outer_skip(self) -> bool:
        """Whether the block-spanning identity ``+ x`` is present (only when the widths match)."""
        return self.in_channels == self.out_channels

    def _pad_with_bias(self, expanded: Tensor) -> Tensor:
        p = self.kernel_size // 2
        bias = self.expand_conv.bias
        if bias is None:
            return F.pad(expanded, (p, p, p, p))
        # Zero-pad, then write the bias into the border ring (what a zero-padded input looks like after the 1×1).
        inner = F.pad(torch.ones_like(expanded[:1, :1]), (p, p, p, p))
        return F.pad(expanded, (p, p, p, p)) + (1 - inner) * bias.view(1, -1, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        expanded = self.expand_conv(x)
        out = self.reduce_conv(self.fea_conv(self._pad_with_bias(expanded)) + expanded)
        return out + x if self.outer_skip else out

    def fused(self) -> nn.Conv2d:
        """The equivalent 'same'-padded k×k ``nn.Conv2d`` (keys ``weight`` and, with ``bias``, ``bias``).

        Folds in float64: expand→(fea + identity) by :func:`fuse_sequential_1x1_kxk` (exact thanks to the bias
        padding), then the squeeze 1×1 by :func:`fuse_sequential_kxk_1x1` (exact at any border), then the outer
        identity. The result has the block's dtype, device and train/eval mode.
        """
        dtype = self.fea_conv.weight.dtype
        k, mid = self.kernel_size, self.fea_conv.in_channels
        fea = conv_params(self.fea_conv, FOLD_DTYPE)
        fea = sum_branches(fea, identity_branch(mid, k, like=fea.weight))
        kernel = fuse_sequential_1x1_kxk(conv_params(self.expand_conv, FOLD_DTYPE), fea)
        kernel = fuse_sequential_kxk_1x1(kernel, conv_params(self.reduce_conv, FOLD_DTYPE))
        if self.outer_skip:
            kernel = sum_branches(kernel, identity_branch(self.in_channels, k, like=kernel.weight))
        return to_conv2d(kernel, bias=self.has_bias, dtype=dtype).train(self.training)
