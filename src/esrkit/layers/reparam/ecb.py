"""Edge-oriented convolution block (ECB) of ECBSR (X. Zhang, H. Zeng, L. Zhang, ACM MM 2021).

ECB trains a 3×3 convolution as five parallel linear paths and folds them into one 3×3 conv for inference:

* ``conv3x3``: a plain 3×3 conv;
* ``conv1x1_3x3``: a 1×1 conv expanding to ``int(out · depth_multiplier)`` channels, then a 3×3 conv squeezing
  back ("expand-and-squeeze");
* ``conv1x1_sbx`` / ``conv1x1_sby`` / ``conv1x1_lpl``: a 1×1 conv, then a *fixed* depth-wise Sobel-x, Sobel-y or
  Laplacian filter with a learnable per-channel scale and bias (first- and second-order spatial derivatives of
  the intermediate features);
* an identity, when asked for and ``in == out``;

summed, then the activation (PReLU by default, one slope per channel). The activation is not linear, so it is not
folded: the deploy module is :class:`ConvAct`, a 3×3 conv followed by the same activation.

Borders, and why the fold is exact there. A 1×1 conv with bias ``b0`` followed by a zero-padded 3×3 conv is *not*
a single 3×3 conv at the image border: the single conv sees zero-padded *input*, i.e. an intermediate border of
``b0``, while the pair would see an intermediate border of zeros. The official code therefore pads the 1×1
output with ``b0`` before a padding-free 3×3 conv. Here the sequential branches zero-pad the *input* and then run
the 1×1 conv and a padding-free 3×3: the 1×1 conv maps the zero border to exactly ``b0``, so the result is
identical to the official one (same values, no explicit border writes) and to the folded conv
(:func:`~esrkit.layers.reparam.algebra.fuse_sequential_1x1_kxk`) everywhere, borders included.

Parameter names follow the official code (``xindongzhang/ECBSR``, ``models/ecb.py``): ``conv3x3.{weight,bias}``,
``conv1x1_3x3.{k0,b0,k1,b1}``, ``conv1x1_{sbx,sby,lpl}.{k0,b0,scale,bias,mask}`` and ``act.weight``; the deploy
module has the keys of its ``models/plainsr.py`` (``conv3x3.{weight,bias}``, ``act.weight``). The fixed edge
``mask`` is a (persistent) buffer here, where the official code stores a frozen ``nn.Parameter``: it is saved and
loaded under the same key but is not counted as a parameter, because nothing learns it.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..conv import activation, conv
from .algebra import (
    FOLD_DTYPE,
    Kernel,
    conv_params,
    fuse_sequential_1x1_kxk,
    identity_branch,
    sum_branches,
    to_conv2d,
)

# The fixed 3×3 filters, as F.conv2d (cross-correlation) applies them — the orientation of the official masks.
EDGE_FILTERS: dict[str, tuple[tuple[float, ...], ...]] = {
    "sobel_x": ((1.0, 0.0, -1.0), (2.0, 0.0, -2.0), (1.0, 0.0, -1.0)),
    "sobel_y": ((1.0, 2.0, 1.0), (0.0, 0.0, 0.0), (-1.0, -2.0, -1.0)),
    "laplacian": ((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0)),
}

_NO_ACTIVATION = ("linear", "identity", "none")


def _conv_init(weight: Tensor, bias: Tensor) -> None:
    """PyTorch's default ``Conv2d`` initialization (the official branches are built from fresh ``Conv2d``s)."""
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
    fan_in = weight[0].numel()
    bound = 1.0 / math.sqrt(fan_in) if fan_in else 0.0
    nn.init.uniform_(bias, -bound, bound)


def ecb_activation(name: str | None, channels: int) -> nn.Module | None:
    """The activation after an ECB by the official names (None for ``"linear"``, which has no module).

    ``"prelu"`` has one learnable slope per channel (PyTorch's initial 0.25), as in the official code, unlike
    :func:`esrkit.layers.activation`'s single shared slope; ``"rrelu"`` is the official ``RReLU(-0.05, 0.05)``.
    Other names (``relu``, ``gelu`` — ANUNet's choice —, ``lrelu``, ``silu``) go through
    :func:`esrkit.layers.activation`.
    """
    if name is None or name.lower() in _NO_ACTIVATION:
        return None
    key = name.lower()
    if key == "prelu":
        return nn.PReLU(num_parameters=channels)
    if key == "rrelu":
        return nn.RReLU(lower=-0.05, upper=0.05)
    if key == "softplus":
        return nn.Softplus()
    return activation(key)



def _small_random(*shape: int) -> Tensor:
    """``randn(shape) · 10⁻³``, the edge branches' initial scale and bias; zeros on the ``meta`` device, where a
    model is built for its shapes only (checkpoint checks): torch's meta ``randn`` imports ``torch._dynamo`` on its
    first call, seconds that a checkpoint load would otherwise pay for values that do not exist."""
    out = torch.empty(shape)
    return out.zero_() if out.is_meta else torch.randn(shape) * 1e-3

class ExpandSqueeze(nn.Module):
    """1×1 conv to ``mid_channels`` then a padding-free 3×3 conv, on the zero-padded input (see module docstring).

    Parameters ``k0``/``b0`` (1×1) and ``k1``/``b1`` (3×3), the official names.
    """

    def __init__(self, in_channels: int, out_channels: int, mid_channels: int) -> None:
        super().__init__()
        if mid_channels < 1:
            raise ValueError(f"the expand-squeeze branch needs at least one channel, got {mid_channels}")
        self.k0 = nn.Parameter(torch.empty(mid_channels, in_channels, 1, 1))
        self.b0 = nn.Parameter(torch.empty(mid_channels))
        self.k1 = nn.Parameter(torch.empty(out_channels, mid_channels, 3, 3))
        self.b1 = nn.Parameter(torch.empty(out_channels))
        _conv_init(self.k0, self.b0)
        _conv_init(self.k1, self.b1)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(F.conv2d(F.pad(x, (1, 1, 1, 1)), self.k0, self.b0), self.k1, self.b1)

    def kernel(self, dtype: torch.dtype = FOLD_DTYPE) -> Kernel:
        """The single zero-padded 3×3 conv this branch equals."""
        first = Kernel(self.k0.detach().to(dtype), self.b0.detach().to(dtype))
        second = Kernel(self.k1.detach().to(dtype), self.b1.detach().to(dtype))
        return fuse_sequential_1x1_kxk(first, second)


class EdgeBranch(nn.Module):
    """1×1 conv then a fixed depth-wise edge filter scaled per channel, with a per-channel bias.

    The 3×3 filter of output channel ``c`` is ``scale[c] · mask`` (``mask`` from :data:`EDGE_FILTERS`): the filter
    shape is fixed and only its gain is learned, which is what keeps these paths edge detectors. Parameters
    ``k0``/``b0`` (1×1), ``scale`` ``(out, 1, 1, 1)`` and ``bias`` ``(out,)``; buffer ``mask`` ``(out, 1, 3, 3)``.
    Scale and bias start at N(0, 1e-3²) as in the official code, so the edge paths begin almost silent.
    """

    def __init__(self, in_channels: int, out_channels: int, edge: str) -> None:
        super().__init__()
        if edge not in EDGE_FILTERS:
            raise ValueError(f"unknown edge filter {edge!r}; choose one of {sorted(EDGE_FILTERS)}")
        self.edge = edge
        self.k0 = nn.Parameter(torch.empty(out_channels, in_channels, 1, 1))
        self.b0 = nn.Parameter(torch.empty(out_channels))
        _conv_init(self.k0, self.b0)
        self.scale = nn.Parameter(_small_random(out_channels, 1, 1, 1))
        self.bias = nn.Parameter(_small_random(out_channels))
        mask = torch.tensor(EDGE_FILTERS[edge], dtype=torch.float32)
        self.register_buffer("mask", mask.expand(out_channels, 1, 3, 3).clone())

    def forward(self, x: Tensor) -> Tensor:
        mid = F.conv2d(F.pad(x, (1, 1, 1, 1)), self.k0, self.b0)
        return F.conv2d(mid, self.scale * self.mask, self.bias, groups=self.k0.shape[0])

    def kernel(self, dtype: torch.dtype = FOLD_DTYPE) -> Kernel:
        """The single zero-padded 3×3 conv this branch equals.

        :func:`fuse_sequential_1x1_kxk` with the depth-wise filter as its (diagonal) second conv, written out:
        output channel ``c`` only reads intermediate channel ``c``, so ``W[c, i] = f_c · k0[c, i]`` and
        ``b[c] = bias[c] + b0[c] · Σ f_c`` with ``f_c = scale[c] · mask``; no dense ``C×C×3×3`` detour.
        """
        depthwise = self.scale.detach().to(dtype) * self.mask.to(dtype)  # (C, 1, 3, 3)
        weight = depthwise * self.k0.detach().to(dtype)  # (C, 1, 3, 3) · (C, in, 1, 1) -> (C, in, 3, 3)
        bias = self.bias.detach().to(dtype) + self.b0.detach().to(dtype) * depthwise.sum(dim=(1, 2, 3))
        return Kernel(weight, bias)


class ConvAct(nn.Module):
    """A 3×3 conv and an optional activation: ECB's deploy form (the official ``Conv3X3`` of ``plainsr.py``).

    Keys ``conv3x3.weight``, ``conv3x3.bias`` and, for PReLU, ``act.weight``.
    """

    def __init__(self, in_channels: int, out_channels: int, act: nn.Module | None = None) -> None:
        super().__init__()
        self.conv3x3 = conv(in_channels, out_channels, 3)
        self.act = act

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv3x3(x)
        return y if self.act is None else self.act(y)


class ECB(nn.Module):
    """Edge-oriented convolution block: five linear 3×3-equivalent paths (+ identity), summed, then activated.

    ``with_idt`` adds the identity only where ``in_channels == out_channels`` and is silently ignored otherwise,
    as in the official code: ECBSR passes one flag to every block, including the head (colors → C) and the tail
    (C → colors·s²), whose shapes admit no identity. :attr:`with_idt` holds the effective value.

    :meth:`fused` returns the equivalent :class:`ConvAct` (the activation copied, not folded); the fold is exact
    at the borders too (module docstring).
    """

    def __init__(self, in_channels: int, out_channels: int, depth_multiplier: float = 2.0,
                 act: str | None = "prelu", with_idt: bool = False) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.with_idt = bool(with_idt) and in_channels == out_channels
        self.conv3x3 = conv(in_channels, out_channels, 3)
        self.conv1x1_3x3 = ExpandSqueeze(in_channels, out_channels, int(out_channels * depth_multiplier))
        self.conv1x1_sbx = EdgeBranch(in_channels, out_channels, "sobel_x")
        self.conv1x1_sby = EdgeBranch(in_channels, out_channels, "sobel_y")
        self.conv1x1_lpl = EdgeBranch(in_channels, out_channels, "laplacian")
        self.act = ecb_activation(act, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        y = (self.conv3x3(x) + self.conv1x1_3x3(x) + self.conv1x1_sbx(x) + self.conv1x1_sby(x)
             + self.conv1x1_lpl(x))
        if self.with_idt:
            y = y + x
        return y if self.act is None else self.act(y)

    def kernel(self, dtype: torch.dtype = FOLD_DTYPE) -> Kernel:
        """The single zero-padded 3×3 conv the five paths (and the identity) sum to, before the activation."""
        branches = [conv_params(self.conv3x3, dtype), self.conv1x1_3x3.kernel(dtype), self.conv1x1_sbx.kernel(dtype),
                    self.conv1x1_sby.kernel(dtype), self.conv1x1_lpl.kernel(dtype)]
        if self.with_idt:
            branches.append(identity_branch(self.out_channels, 3, like=branches[0].weight))
        return sum_branches(*branches)

    def fused(self) -> ConvAct:
        """The deploy form: one 3×3 conv (keys ``conv3x3.*``) and a copy of the activation (``act.*``)."""
        weight = self.conv3x3.weight
        out = ConvAct(self.in_channels, self.out_channels, copy.deepcopy(self.act))
        out.conv3x3 = to_conv2d(self.kernel(), dtype=weight.dtype).to(weight.device)
        return out.train(self.training)
