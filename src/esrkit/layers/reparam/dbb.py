"""DBB: the Diverse Branch Block (X. Ding, X. Zhang, J. Han, G. Ding, CVPR 2021), as used by efficient-SR entries.

Four branches, each ending in a BatchNorm, summed:

* ``dbb_origin``: k×k conv → BN;
* ``dbb_1x1``: 1×1 conv → BN;
* ``dbb_avg``: 1×1 conv → BN → k×k average pooling → BN;
* ``dbb_1x1_kxk``: 1×1 conv (to ``internal_channels``, initialized to the identity when that equals
  ``in_channels``) → BN → k×k conv → BN.

NTIRE 2023's Sissie_Lab LEDBB (3×3 / 1×1 / 1×1→3×3, each with BN) is a subset of it. Every path is linear once
BN uses its running statistics, and :meth:`DBB.fused` returns the single k×k ``nn.Conv2d``.

Borders. The two sequential paths put a zero-padded k×k operation after a 1×1 conv + BN, whose output at a
zero-padded *input* pixel is the folded BN shift ``t = β − μ·γ/√(σ²+ε)``, not zero. A single conv sees the
zero-padded input, so — as DBB's own ``BNAndPadLayer`` does — the intermediate map is padded with ``t`` (from the
running statistics, in train mode too) and the k×k conv / pool then runs without padding. The fold is then exact
at the borders (:func:`~esrkit.layers.reparam.algebra.fuse_sequential_1x1_kxk`).

Choices where DBB's code differs or is silent: only ``groups=1`` is built (the sequential folds here work on dense
kernels); the average path always has its 1×1 conv (DBB's code drops it when ``groups >= out_channels``); the
identity-initialized 1×1 is a plain conv whose weight starts at the identity, instead of DBB's
``IdentityBasedConv1x1`` (weight + a fixed identity): the same function space, one key less. No DBB checkpoint is
released for an SR model, so key names are this module's own.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .algebra import (
    FOLD_DTYPE,
    Kernel,
    conv_params,
    fuse_conv_bn,
    fuse_sequential_1x1_kxk,
    identity_kernel,
    sum_branches,
    to_conv2d,
)
from .repconv import ConvBN


def _bn_shift(bn: nn.BatchNorm2d) -> Tensor:
    """What ``bn`` (eval statistics) outputs for a zero input: the value a conv+BN pair shows on a zero border."""
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)  # type: ignore[operator]
    return bn.bias.detach() - bn.running_mean * scale  # type: ignore[operator]


def pad_with(x: Tensor, values: Tensor, pad: int) -> Tensor:
    """``x`` padded by ``pad`` pixels on every side with one constant per channel (``values``, shape ``(C,)``).

    Built by writing ``x`` into a filled tensor rather than as ``pad(x − v) + v``, so the interior is bit-exact.
    """
    if pad == 0:
        return x
    n, c, h, w = x.shape
    out = values.to(x.dtype).reshape(1, c, 1, 1).expand(n, c, h + 2 * pad, w + 2 * pad).clone()
    out[:, :, pad:pad + h, pad:pad + w] = x
    return out


def avg_pool_kernel(channels: int, kernel_size: int, *, dtype: torch.dtype = FOLD_DTYPE,
                    device: torch.device | str | None = None) -> Tensor:
    """A k×k average pooling (each channel on its own) as a dense ``(C, C, k, k)`` conv kernel: ``1/k²`` at every
    tap of the diagonal channel pairs. It equals ``AvgPool2d(k, stride=1, padding=0)``; :class:`DBB` pads the map
    itself (with the BN shift) before pooling, so the pooled border averages those pad values in."""
    eye = torch.eye(channels, dtype=dtype, device=device)
    return eye[:, :, None, None].expand(channels, channels, kernel_size, kernel_size) / (kernel_size * kernel_size)


class _PadThen(nn.Module):
    """1×1 conv → BN, padded with the BN shift, then a padding-free k×k operation → BN."""

    def __init__(self, first: ConvBN, second: nn.Module, bn: nn.BatchNorm2d, pad: int) -> None:
        super().__init__()
        self.first, self.second, self.bn, self.pad = first, second, bn, pad

    def forward(self, x: Tensor) -> Tensor:
        mid = pad_with(self.first(x), _bn_shift(self.first.bn), self.pad)  # type: ignore[arg-type]
        return self.bn(self.second(mid))


class DBB(nn.Module):
    """Diverse Branch Block (module docstring); ``fused()`` is the equivalent k×k ``nn.Conv2d`` with bias."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 internal_channels: int | None = None) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"DBB needs an odd kernel size, got {kernel_size}")
        k, pad = kernel_size, kernel_size // 2
        mid = in_channels if internal_channels is None else internal_channels
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, k
        self.dbb_origin = ConvBN(in_channels, out_channels, k)
        self.dbb_1x1 = ConvBN(in_channels, out_channels, 1)
        self.dbb_avg = _PadThen(ConvBN(in_channels, out_channels, 1), nn.AvgPool2d(k, stride=1, padding=0),
                                nn.BatchNorm2d(out_channels), pad)
        self.dbb_1x1_kxk = _PadThen(ConvBN(in_channels, mid, 1), nn.Conv2d(mid, out_channels, k, bias=False),
                                    nn.BatchNorm2d(out_channels), pad)
        if mid == in_channels:
            with torch.no_grad():
                first = self.dbb_1x1_kxk.first.conv
                first.weight.copy_(identity_kernel(mid, 1, dtype=first.weight.dtype, device=first.weight.device))

    def forward(self, x: Tensor) -> Tensor:
        return self.dbb_origin(x) + self.dbb_1x1(x) + self.dbb_avg(x) + self.dbb_1x1_kxk(x)

    def kernel(self, dtype: torch.dtype = FOLD_DTYPE) -> Kernel:
        """The single k×k kernel the four branches sum to (BN folded with eval statistics)."""
        k, c = self.kernel_size, self.out_channels
        pool = avg_pool_kernel(c, k, dtype=dtype, device=self.dbb_origin.conv.weight.device)  # type: ignore[union-attr]
        avg = fuse_sequential_1x1_kxk(self.dbb_avg.first.kernel(dtype),
                                      fuse_conv_bn(Kernel(pool, pool.new_zeros(c)), self.dbb_avg.bn))
        seq = fuse_sequential_1x1_kxk(self.dbb_1x1_kxk.first.kernel(dtype),
                                      fuse_conv_bn(conv_params(self.dbb_1x1_kxk.second, dtype),  # type: ignore[arg-type]
                                                   self.dbb_1x1_kxk.bn))
        return sum_branches(self.dbb_origin.kernel(dtype), self.dbb_1x1.kernel(dtype), avg, seq)

    def fused(self) -> nn.Conv2d:
        """The equivalent plain k×k ``nn.Conv2d`` (weight and bias)."""
        weight = self.dbb_origin.conv.weight  # type: ignore[union-attr]
        return to_conv2d(self.kernel(), dtype=weight.dtype).to(weight.device).train(self.training)
