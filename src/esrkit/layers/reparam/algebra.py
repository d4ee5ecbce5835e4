"""Kernel algebra of structural re-parameterization: the exact folds every multi-branch block is built from.

Several efficient-SR families (LKDN-S, ECBSR, RepVGG-style RepConv, ...) train a block with parallel or
sequential linear branches and identity skips, then collapse it into a single convolution for inference.
Because every branch is linear up to the point where the branches are summed, the folded convolution computes
*exactly* the same function; only rounding differs.

The functions work on :class:`Kernel` ``(weight, bias)`` pairs and know nothing about any one architecture, so
a new block only has to describe its branches in terms of them:

- :func:`conv_params` reads a ``Conv2d`` (optionally upcast, so folds can be done in float64);
- :func:`pad_kernel` centres a small kernel inside a larger one;
- :func:`identity_kernel` / :func:`identity_branch` express a skip connection as a convolution;
- :func:`grouped_to_dense` rewrites a grouped (e.g. depth-wise) kernel as an equivalent dense one;
- :func:`sum_branches` folds parallel branches (padding them to a common size), with
  :func:`fold_1x1_into_kxk` as the common two-branch case;
- :func:`fuse_sequential_1x1_kxk` folds a 1×1 conv followed by a k×k conv, and
  :func:`fuse_sequential_kxk_1x1` a k×k conv followed by a 1×1 conv;
- :func:`fuse_conv_bn` folds an eval-mode BatchNorm into the conv before it;
- :func:`to_conv2d` materializes a :class:`Kernel` as a plain ``nn.Conv2d``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..conv import conv

# Folding is done in float64 and cast back: the fold itself then adds no visible error, so any train/deploy
# mismatch a test sees comes from the (unavoidable) float32 evaluation of the two graphs, not the algebra.
FOLD_DTYPE = torch.float64


class Kernel(NamedTuple):
    """Weight ``(out, in/groups, kh, kw)`` and bias ``(out,)`` of one convolution-shaped linear branch.

    The bias is always a tensor (zeros when the branch has none) so that branches can be summed without
    special cases.
    """

    weight: Tensor
    bias: Tensor


def conv_params(module: nn.Conv2d, dtype: torch.dtype | None = None) -> Kernel:
    """Detached ``(weight, bias)`` of ``module``; a missing bias becomes zeros.

    ``dtype`` lets callers fold in higher precision than the module is stored in.
    """
    weight = module.weight.detach()
    bias = module.bias.detach() if module.bias is not None else weight.new_zeros(weight.shape[0])
    if dtype is not None:
        weight, bias = weight.to(dtype), bias.to(dtype)
    return Kernel(weight, bias)


def pad_kernel(weight: Tensor, kernel_size: int | tuple[int, int]) -> Tensor:
    """Zero-pad ``weight`` symmetrically to ``kernel_size`` so it can be added to a larger kernel.

    Centring is what keeps the fold exact: a k×k conv with 'same' padding ``(k-1)//2`` and a smaller odd
    kernel with its own 'same' padding look at the same pixel grid aligned on the centre tap. Even size
    differences only: an odd difference has no centre and is rejected rather than silently shifting output.
    """
    th, tw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    kh, kw = weight.shape[-2:]
    dh, dw = th - kh, tw - kw
    if dh < 0 or dw < 0 or dh % 2 or dw % 2:
        raise ValueError(f"cannot centre a {kh}x{kw} kernel in {th}x{tw}")
    if dh == 0 and dw == 0:
        return weight
    return F.pad(weight, (dw // 2, dw // 2, dh // 2, dh // 2))


def identity_kernel(channels: int, kernel_size: int = 1, groups: int = 1, *,
                    dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> Tensor:
    """Weight of a ``channels → channels`` conv (with ``groups``) that returns its input unchanged.

    A skip connection ``y = x`` is the convolution with a single 1 at the centre tap of each channel's own
    input slot; expressing it this way lets :func:`sum_branches` treat skips like any other branch. ``groups``
    must match the conv the identity is added to (``groups=channels`` for a depth-wise conv).
    """
    if kernel_size % 2 == 0:
        raise ValueError("an identity kernel needs an odd size (a centre tap)")
    if channels % groups:
        raise ValueError(f"channels={channels} is not divisible by groups={groups}")
    per_group = channels // groups
    weight = torch.zeros(channels, per_group, kernel_size, kernel_size, dtype=dtype, device=device)
    centre = kernel_size // 2
    out_idx = torch.arange(channels, device=device)
    weight[out_idx, out_idx % per_group, centre, centre] = 1.0
    return weight


def identity_branch(channels: int, kernel_size: int = 1, groups: int = 1, *,
                    like: Tensor | None = None) -> Kernel:
    """:func:`identity_kernel` with a zero bias, on the dtype/device of ``like`` when given."""
    dtype = like.dtype if like is not None else torch.float32
    device = like.device if like is not None else None
    weight = identity_kernel(channels, kernel_size, groups, dtype=dtype, device=device)
    return Kernel(weight, weight.new_zeros(channels))


def grouped_to_dense(weight: Tensor, groups: int) -> Tensor:
    """Rewrite a grouped kernel ``(out, in/groups, kh, kw)`` as the dense ``(out, in, kh, kw)`` it equals.

    Needed when a grouped branch (say a depth-wise 3×3) must be summed with or composed into a dense one; the
    dense kernel is block-diagonal over the groups.
    """
    if groups == 1:
        return weight
    out_ch, in_per_group, kh, kw = weight.shape
    if out_ch % groups:
        raise ValueError(f"out channels {out_ch} not divisible by groups={groups}")
    out_per_group = out_ch // groups
    dense = weight.new_zeros(out_ch, in_per_group * groups, kh, kw)
    for g in range(groups):
        rows = slice(g * out_per_group, (g + 1) * out_per_group)
        cols = slice(g * in_per_group, (g + 1) * in_per_group)
        dense[rows, cols] = weight[rows]
    return dense


def sum_branches(*branches: Kernel) -> Kernel:
    """Fold parallel branches ``y = Σ conv_i(x)`` into one kernel.

    Every branch must have the same ``groups`` layout (convert with :func:`grouped_to_dense` first if not) and
    its own 'same' padding; smaller kernels are centred with :func:`pad_kernel` to the largest size.
    """
    if not branches:
        raise ValueError("sum_branches needs at least one branch")
    kh = max(b.weight.shape[-2] for b in branches)
    kw = max(b.weight.shape[-1] for b in branches)
    shape = branches[0].weight.shape[:2]
    weight = torch.zeros(*shape, kh, kw, dtype=branches[0].weight.dtype, device=branches[0].weight.device)
    bias = torch.zeros_like(branches[0].bias)
    for branch in branches:
        if branch.weight.shape[:2] != shape:
            raise ValueError(f"branch shapes differ: {tuple(branch.weight.shape)} vs {tuple(shape)}")
        weight = weight + pad_kernel(branch.weight, (kh, kw))
        bias = bias + branch.bias
    return Kernel(weight, bias)


def fold_1x1_into_kxk(kxk: Kernel, one: Kernel) -> Kernel:
    """Fold a parallel 1×1 branch into a k×k branch (both 'same'-padded, same ``groups``)."""
    if one.weight.shape[-2:] != (1, 1):
        raise ValueError(f"expected a 1x1 kernel, got {tuple(one.weight.shape[-2:])}")
    return sum_branches(kxk, one)


def fuse_sequential_1x1_kxk(first: Kernel, second: Kernel) -> Kernel:
    """Fold ``conv_k×k(conv_1×1(x))`` into one k×k conv (both dense, ``groups=1``).

    Exact only when the intermediate feature map is padded with the 1×1 conv's *bias* rather than zeros,
    i.e. when the pair computes ``conv_k×k_valid(conv_1×1(zero_pad(x)))``; that is what :class:`RepUpsampler`
    and ECB-style blocks do. The folded conv is then applied with ordinary zero 'same' padding.

    ``W[o, i] = Σ_m W2[o, m] · W1[m, i]`` and ``b[o] = b2[o] + Σ_{m, u, v} W2[o, m, u, v] · b1[m]``.
    """
    w1, b1 = first
    w2, b2 = second
    if w1.shape[-2:] != (1, 1):
        raise ValueError(f"first conv must be 1x1, got {tuple(w1.shape[-2:])}")
    if w2.shape[1] != w1.shape[0]:
        raise ValueError(f"second conv takes {w2.shape[1]} channels but the first produces {w1.shape[0]} "
                         "(expand grouped kernels with grouped_to_dense first)")
    weight = torch.einsum("omhw,mi->oihw", w2, w1[:, :, 0, 0])
    bias = b2 + torch.einsum("omhw,m->o", w2, b1)
    return Kernel(weight, bias)


def fuse_sequential_kxk_1x1(first: Kernel, second: Kernel) -> Kernel:
    """Fold ``conv_1×1(conv_k×k(x))`` into one k×k conv (both dense, ``groups=1``).

    Exact whatever the k×k's padding: a 1×1 mixes channels pixel by pixel, so it commutes with the border
    (CASR's expand-squeeze RepBlocks, FMEN-style reduce convs).
    ``W[o, i] = Σ_m W2[o, m] · W1[m, i]`` and ``b = W2 · b1 + b2``.
    """
    w1, b1 = first
    w2, b2 = second
    if w2.shape[-2:] != (1, 1):
        raise ValueError(f"second conv must be 1x1, got {tuple(w2.shape[-2:])}")
    if w2.shape[1] != w1.shape[0]:
        raise ValueError(f"second conv takes {w2.shape[1]} channels but the first produces {w1.shape[0]} "
                         "(expand grouped kernels with grouped_to_dense first)")
    weight = torch.einsum("om,mihw->oihw", w2[:, :, 0, 0], w1)
    bias = b2 + w2[:, :, 0, 0] @ b1
    return Kernel(weight, bias)


def fuse_conv_bn(kernel: Kernel, bn: nn.BatchNorm2d) -> Kernel:
    """Fold an eval-mode ``BatchNorm2d`` that follows a conv into that conv's weight and bias.

    Uses the running statistics, which is what the network computes at inference.
    """
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("a BatchNorm without running statistics normalizes by batch statistics; cannot fold")
    dtype = kernel.weight.dtype
    mean = bn.running_mean.detach().to(dtype)
    var = bn.running_var.detach().to(dtype)
    gamma = bn.weight.detach().to(dtype) if bn.weight is not None else torch.ones_like(mean)
    beta = bn.bias.detach().to(dtype) if bn.bias is not None else torch.zeros_like(mean)
    scale = gamma / torch.sqrt(var + bn.eps)
    weight = kernel.weight * scale.reshape(-1, 1, 1, 1)
    bias = (kernel.bias - mean) * scale + beta
    return Kernel(weight, bias)


def to_conv2d(kernel: Kernel, *, groups: int = 1, dilation: int = 1, bias: bool = True,
              dtype: torch.dtype | None = None) -> nn.Conv2d:
    """A 'same'-padded ``nn.Conv2d`` holding ``kernel`` (cast to ``dtype`` if given)."""
    weight, b = kernel
    out_ch, in_per_group, kh, kw = weight.shape
    if kh != kw:
        raise ValueError("only square kernels are supported")
    if not bias and b.device.type != "meta" and bool(torch.any(b != 0)):  # meta (shape-only) folds have no values
        raise ValueError("the folded kernel has a non-zero bias but bias=False was requested")
    module = conv(in_per_group * groups, out_ch, kh, bias=bias, groups=groups, dilation=dilation)
    target = dtype or weight.dtype
    module = module.to(device=weight.device, dtype=target)
    with torch.no_grad():
        module.weight.copy_(weight.to(target))
        if bias:
            module.bias.copy_(b.to(target))  # type: ignore[union-attr]
    return module
