"""RepConv: the RepVGG / ACNet family of parallel-branch convolutions, chosen by constructor flags.

RepVGG (Ding et al., CVPR 2021) trains a k×k conv as k×k-BN + 1×1-BN + identity-BN; ACNet (Ding et al., ICCV
2019) adds asymmetric 1×k and k×1 branches ("asymmetric convolution", AIM 2020's AiRiA_CG FIMDN). Many efficient-SR
entries use one of these combinations (RepTCN's RepBlock, NJUST_R's first/last conv, URPNet's and RVSR's
RepConv), with or without BatchNorm. Every branch is linear and 'same'-padded around the same centre tap, so the
sum is exactly one k×k conv: :meth:`RepConv.fused` returns that plain ``nn.Conv2d``.

BatchNorm folds with its running statistics (what the block computes in eval mode); in train mode a BN branch
normalizes by batch statistics, which no fixed conv can reproduce — compare the two forms in eval mode.

Submodule names follow RepVGG's (``rbr_dense``, ``rbr_1x1``, ``rbr_identity``, each conv branch a ``conv``/``bn``
pair); the asymmetric branches are ``rbr_hor`` (1×k) and ``rbr_ver`` (k×1).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn

from .algebra import FOLD_DTYPE, Kernel, conv_params, fuse_conv_bn, identity_branch, sum_branches, to_conv2d


class ConvBN(nn.Sequential):
    """A conv (bias only when there is no BN after it) and an optional BatchNorm: one RepConv branch.

    ``kernel_size`` may be asymmetric (``(1, k)``); padding is 'same' along each axis (``k // 2``), so every
    branch lines up with the k×k branch's centre tap.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int], groups: int = 1,
                 bn: bool = True, bias: bool = True) -> None:
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        layers: OrderedDict[str, nn.Module] = OrderedDict(
            conv=nn.Conv2d(in_channels, out_channels, (kh, kw), padding=(kh // 2, kw // 2), groups=groups,
                           bias=bias and not bn))
        if bn:
            layers["bn"] = nn.BatchNorm2d(out_channels)
        super().__init__(layers)

    def kernel(self, dtype: torch.dtype = FOLD_DTYPE) -> Kernel:
        """``(weight, bias)`` of the branch with its BN (eval statistics) folded in."""
        kernel = conv_params(self.conv, dtype)  # type: ignore[arg-type]
        return fuse_conv_bn(kernel, self.bn) if "bn" in self._modules else kernel  # type: ignore[arg-type]


class RepConv(nn.Module):
    """k×k conv trained with optional 1×1, identity and asymmetric 1×k / k×1 branches, each optionally with BN.

    Args:
        kernel_size: odd k of the main branch (and of the fused conv).
        groups: groups of every branch (``groups=channels`` gives a depth-wise RepConv).
        one_by_one: add the 1×1 branch (RepVGG).
        identity: add the identity branch; needs ``in_channels == out_channels``. With ``bn`` it is a bare BN of
            the input (RepVGG's ``rbr_identity``), otherwise a plain skip with no parameters.
        asymmetric: add the 1×k and k×1 branches (ACNet); needs k ≥ 3.
        bn: a BatchNorm after every branch (convs then have no bias, since BN's shift replaces it).
        bias: conv biases when there is no BN; ``bn=False, bias=False`` is the "bias turned off" block of
            CASR (AIS 2024), whose fused conv has no bias either.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, *, groups: int = 1,
                 one_by_one: bool = True, identity: bool = True, asymmetric: bool = False, bn: bool = True,
                 bias: bool = True) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"RepConv needs an odd kernel size (a centre tap), got {kernel_size}")
        if identity and in_channels != out_channels:
            raise ValueError(f"an identity branch needs in_channels == out_channels, got {in_channels}→{out_channels}")
        if asymmetric and kernel_size < 3:
            raise ValueError("asymmetric 1×k / k×1 branches need kernel_size ≥ 3")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.groups = kernel_size, groups
        self.has_bias = bn or bias
        self.identity = identity
        k = kernel_size
        self.rbr_dense = ConvBN(in_channels, out_channels, k, groups, bn, bias)
        self.rbr_1x1 = ConvBN(in_channels, out_channels, 1, groups, bn, bias) if one_by_one else None
        self.rbr_hor = ConvBN(in_channels, out_channels, (1, k), groups, bn, bias) if asymmetric else None
        self.rbr_ver = ConvBN(in_channels, out_channels, (k, 1), groups, bn, bias) if asymmetric else None
        self.rbr_identity = nn.BatchNorm2d(in_channels) if identity and bn else None

    def _branches(self) -> list[ConvBN]:
        return [b for b in (self.rbr_dense, self.rbr_1x1, self.rbr_hor, self.rbr_ver) if b is not None]

    def forward(self, x: Tensor) -> Tensor:
        y = sum(branch(x) for branch in self._branches())
        if self.rbr_identity is not None:
            y = y + self.rbr_identity(x)
        elif self.identity:
            y = y + x
        return y  # type: ignore[return-value]

    def kernel(self, dtype: torch.dtype = FOLD_DTYPE) -> Kernel:
        """The single k×k kernel all branches sum to (BN folded with eval statistics)."""
        kernels = [branch.kernel(dtype) for branch in self._branches()]
        if self.identity:
            skip = identity_branch(self.in_channels, 1, self.groups, like=kernels[0].weight)
            kernels.append(fuse_conv_bn(skip, self.rbr_identity) if self.rbr_identity is not None else skip)
        return sum_branches(*kernels)

    def fused(self) -> nn.Conv2d:
        """The equivalent plain ``nn.Conv2d`` (k×k, same groups; no bias only for ``bn=False, bias=False``)."""
        weight = self.rbr_dense.conv.weight  # type: ignore[union-attr]
        out = to_conv2d(self.kernel(), groups=self.groups, bias=self.has_bias, dtype=weight.dtype)
        return out.to(weight.device).train(self.training)
