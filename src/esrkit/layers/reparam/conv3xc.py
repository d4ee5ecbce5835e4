"""SPAN's ``Conv3XC``: a 3×3 conv trained as an expand-conv-squeeze chain plus a 1×1 skip, folded to one 3×3.

Train form (``Conv3XC``, keys as in ``hongyuanyu/SPAN``): ``y = conv.2(conv.1(conv.0(pad₀(x)))) + sk(x)`` with
``conv.0`` a 1×1 (``in → gain·in``), ``conv.1`` an *unpadded* 3×3 (``gain·in → gain·out``), ``conv.2`` a 1×1
(``gain·out → out``) and ``sk`` a 1×1 (``in → out``), all with bias. The input is zero-padded by one pixel
*before* the first 1×1, so the 3×3 sees the first 1×1's bias (not zeros) on the border ring. That is exactly the
condition under which ``1×1 → 3×3`` folds into one zero-padded 3×3 (:func:`~.algebra.fuse_sequential_1x1_kxk`),
so the official train form and the folded conv agree everywhere, borders included: nothing had to be changed
to make the fold exact.

Deploy form (``Conv3XCDeploy``): one 'same'-padded 3×3 under the key ``eval_conv``, the name the authors'
deploy checkpoints use (``conv_1.eval_conv.weight`` …).

The official train module also stores an ``eval_conv`` (a frozen ``nn.Conv2d`` it recomputes from the branches
before every eval forward), so the authors' training checkpoints carry ``eval_conv.weight``/``.bias`` next to
the branches. :class:`Conv3XC` keeps those two tensors as *buffers* under the same key so such checkpoints load
strictly; they are never read (the fold always recomputes the kernel from the branches, as the official eval
path does) and, being buffers, do not count as parameters.

:func:`fold_1x1_kxk_1x1` folds the chain (from :mod:`.algebra`'s sequential folds); RVSR's ``RepConv`` trains
the same expand-conv-squeeze branch and folds it with this function too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..conv import conv
from .algebra import (
    FOLD_DTYPE,
    Kernel,
    conv_params,
    fuse_sequential_1x1_kxk,
    fuse_sequential_kxk_1x1,
    sum_branches,
)


def fold_1x1_kxk_1x1(expand: Kernel, middle: Kernel, squeeze: Kernel) -> Kernel:
    """Fold the expand (1×1) → k×k → squeeze (1×1) chain into one zero-padded k×k.

    Exact when the chain's k×k runs unpadded on the expanded features of a zero-padded input (their border ring
    is then the expand bias), which is how both SPAN's ``Conv3XC`` and RVSR's ``RepConv`` train.
    """
    return fuse_sequential_kxk_1x1(fuse_sequential_1x1_kxk(expand, middle), squeeze)


class _StoredKernel(nn.Module):
    """Holds the official train module's stale ``eval_conv`` tensors as buffers (see the module docstring)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.register_buffer("weight", torch.zeros(out_channels, in_channels, kernel_size, kernel_size))
        self.register_buffer("bias", torch.zeros(out_channels))


class Conv3XCDeploy(nn.Module):
    """The deploy form of :class:`Conv3XC`: one 'same'-padded 3×3 with bias, key ``eval_conv``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.eval_conv = conv(in_channels, out_channels, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.eval_conv(x)


class Conv3XC(nn.Module):
    """SPAN's re-parameterizable 3×3: ``conv.2(conv.1(conv.0(zero_pad(x)))) + sk(x)`` (see the module docstring).

    ``gain`` widens the chain's hidden channels (SPAN uses 2): it adds capacity during training only, since the
    whole block folds into an ``in → out`` 3×3 whatever the gain.
    """

    def __init__(self, in_channels: int, out_channels: int, gain: int = 2) -> None:
        super().__init__()
        if gain < 1:
            raise ValueError(f"gain must be at least 1, not {gain}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.sk = conv(in_channels, out_channels, 1)
        self.conv = nn.Sequential(
            conv(in_channels, in_channels * gain, 1),
            nn.Conv2d(in_channels * gain, out_channels * gain, 3, padding=0),
            conv(out_channels * gain, out_channels, 1),
        )
        self.eval_conv = _StoredKernel(in_channels, out_channels, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, (1, 1, 1, 1))) + self.sk(x)

    def fused(self) -> Conv3XCDeploy:
        """The equivalent :class:`Conv3XCDeploy` (folded in float64, returned in this module's dtype and mode)."""
        chain = fold_1x1_kxk_1x1(*(conv_params(c, FOLD_DTYPE) for c in self.conv))  # type: ignore[arg-type]
        kernel = sum_branches(chain, conv_params(self.sk, FOLD_DTYPE))
        weight = self.sk.weight
        out = Conv3XCDeploy(self.in_channels, self.out_channels).to(device=weight.device, dtype=weight.dtype)
        with torch.no_grad():
            out.eval_conv.weight.copy_(kernel.weight.to(weight.dtype))
            out.eval_conv.bias.copy_(kernel.bias.to(weight.dtype))  # type: ignore[union-attr]
        return out.train(self.training)
