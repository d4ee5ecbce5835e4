"""Blueprint separable convolution (BSConv-U) and its re-parameterizable train-time form (LKDN's RBSB).

Submodule names follow the LKDN authors' checkpoints (``pw``, ``dw``, ``rep1x1``) so released weights load
without renaming.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..conv import conv
from .algebra import FOLD_DTYPE, conv_params, identity_branch, sum_branches


class BSConvU(nn.Module):
    """Blueprint separable convolution (BSConv-U): point-wise 1×1 (no bias) then depth-wise k×k (with bias).

    Splitting a dense k×k into these two costs ``in·out + out·k²`` parameters instead of ``in·out·k²``, which
    is where LKDN's parameter budget comes from. It is also the deploy form of :class:`BSConvURep`.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, dilation: int = 1,
                 bias: bool = True) -> None:
        super().__init__()
        self.pw = conv(in_channels, out_channels, 1, bias=False)
        self.dw = conv(out_channels, out_channels, kernel_size, bias=bias, groups=out_channels,
                       dilation=dilation)

    def forward(self, x: Tensor) -> Tensor:
        return self.dw(self.pw(x))


class BSConvURep(nn.Module):
    """Train-time BSConv with re-parameterizable skips (LKDN's "RBSB"; ``BSConvU_rep`` in the official code).

    Computes ``f1 = pw(x) + x`` and ``y = dw(f1) + rep1x1(f1) + f1`` where ``rep1x1`` is a depth-wise 1×1
    with bias. The extra branches ease optimisation but, being linear, fold into a plain :class:`BSConvU` with
    ``pw' = pw + I`` and ``dw' = dw + pad(rep1x1) + δ_centre``, ``b' = b_dw + b_rep`` — so the skip
    connections cost nothing (no extra memory traffic) at inference.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, dilation: int = 1,
                 bias: bool = True) -> None:
        super().__init__()
        if in_channels != out_channels:
            raise ValueError("BSConvURep has identity skips, so in_channels must equal out_channels")
        if kernel_size % 2 == 0:
            raise ValueError("BSConvURep needs an odd kernel (identity and 1x1 branches sit at its centre)")
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.pw = conv(in_channels, out_channels, 1, bias=False)
        self.dw = conv(out_channels, out_channels, kernel_size, bias=bias, groups=out_channels,
                       dilation=dilation)
        self.rep1x1 = conv(out_channels, out_channels, 1, bias=bias, groups=out_channels)

    def forward(self, x: Tensor) -> Tensor:
        f1 = self.pw(x) + x
        return self.dw(f1) + self.rep1x1(f1) + f1

    def fused(self) -> BSConvU:
        """The equivalent plain :class:`BSConvU` (keys ``pw.weight``, ``dw.weight``, ``dw.bias``)."""
        channels = self.pw.out_channels
        dtype = self.pw.weight.dtype
        pw = conv_params(self.pw, FOLD_DTYPE)
        pw = sum_branches(pw, identity_branch(channels, 1, like=pw.weight))
        dw = conv_params(self.dw, FOLD_DTYPE)
        dw = sum_branches(dw, conv_params(self.rep1x1, FOLD_DTYPE),
                          identity_branch(channels, self.kernel_size, groups=channels, like=dw.weight))
        has_bias = self.dw.bias is not None
        out = BSConvU(channels, channels, self.kernel_size, self.dilation, bias=has_bias)
        out = out.to(device=self.pw.weight.device, dtype=dtype)
        with torch.no_grad():
            out.pw.weight.copy_(pw.weight.to(dtype))
            out.dw.weight.copy_(dw.weight.to(dtype))
            if has_bias:
                out.dw.bias.copy_(dw.bias.to(dtype))  # type: ignore[union-attr]
        return out.train(self.training)
