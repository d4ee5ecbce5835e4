"""ANUNet: Anchor-based Nested UnshuffleNet (AIS 2024 real-time 4K SR, team LeRTSR / Lenovo Research).

Sources: the AIS 2024 RTSR survey (§3.6, Figs. 10–11 lost in extraction; Table 1: 0.072 M parameters, 9.40 GMACs
at 540p, 1.642 ms, Δ 0.545 dB) and the authors' inference code ``zhoumenghan/AIS2024_ANUNet``
(``models/LeRTSR.py``: ``ANUNet(upscale=4, num_block=3, num_feat=28, act_type='gelu', deploy=True)``). Its weights
are not shared here; the deploy layout is the manifest's (72,880 parameters = the table's 0.072 M).

Layout (× ``scale``, LR sides multiples of 2):

* the *anchor*: every RGB channel repeated ``scale²`` times (``repeat_interleave``), which the final pixel
  shuffle turns into a nearest-neighbour upscaling of the input: the network only learns a residual;
* pixel-unshuffle by 2 (12 channels at half resolution, where every conv runs), ``backbone.0`` = ECB (12 → 28)
  + GELU, ``backbone.1..n`` = NRB + GELU (28 → 28), ``backbone.n+1`` = linear ECB (28 → 4·3·s²), pixel shuffle by
  2 back to LR size, + anchor, pixel shuffle by ``scale``.

Deploy keys: ``backbone.{0,n+1}.rbr_reparam`` (a folded ECB) and ``backbone.i.nrb.rep_conv`` (a folded NRB),
exactly as in ``ANUNet_x4.pth``.

Train form. The ECB is ECBSR's edge-oriented convolution block (Zhang et al., ACM MM 2021), as the survey cites
and the authors' code implements (``depth_multiplier`` 2): esrkit's shared
:class:`~esrkit.layers.reparam.ecb.ECB`, whose fold is renamed to the authors' ``rbr_reparam``. The NRB's
training structure exists only in the lost Fig. 10 and is not in the released code (which has the deploy conv
only). The survey says its outer structure is FMEN's ERB RepBlock (the RRRB: 1×1 expansion, a 3×3 at the wide
width with an identity skip, 1×1 reduction, outer identity skip) and its inner one an "enhanced ECB" (eECB)
with several branches, all folding into one conv. esrkit therefore builds :class:`NRB` as an RRRB whose inner
3×3 (and inner skip) is an ECB with its identity path (ECBSR's ``with_idt``), at FMEN's expansion ratio
``nrb_ratio`` = 2 and the ECBs' ``depth_multiplier``. The branch set and widths of that train form are ours; what
it folds into is exactly the authors' deploy layout.

Exactness of the NRB fold: FMEN pads the expanded map with the expansion's bias so that its unpadded 3×3 sees
what a zero-padded input would give; the shared ECB zero-pads its input instead, so here the expansion has no
bias (its bias would only add a constant that the ECB's biases already provide). Then expand → ECB → reduce with
both skips is a linear map of the zero-padded input, i.e. one 'same' 3×3 conv, borders included.
Input range is [0, 1].
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from ..errors import InputError
from ..layers import activation, conv
from ..layers.reparam.algebra import (
    FOLD_DTYPE,
    conv_params,
    fuse_sequential_1x1_kxk,
    fuse_sequential_kxk_1x1,
    identity_branch,
    sum_branches,
    to_conv2d,
)
from ..layers.reparam.ecb import ECB
from .detection import Shapes, count_indexed, has_keys, scale_from_channels
from .registry import Capabilities, Family, ModelConfig, register_family

UNSHUFFLE = 2  # "the scale of pixel unshuffle and pixel shuffle in the sub-branch is set to 2"


class RepConvAct(nn.Module):
    """A folded ECB under the authors' deploy name: one 'same' 3×3 ``rbr_reparam`` and the block's activation."""

    def __init__(self, in_channels: int, out_channels: int, act: nn.Module | None = None) -> None:
        super().__init__()
        self.rbr_reparam = conv(in_channels, out_channels, 3)
        self.act = act

    def forward(self, x: Tensor) -> Tensor:
        y = self.rbr_reparam(x)
        return y if self.act is None else self.act(y)


class AnchorECB(ECB):
    """The shared ECB, folding into :class:`RepConvAct` (keys ``rbr_reparam.*``) instead of ``conv3x3.*``."""

    def fused(self) -> RepConvAct:
        weight = self.conv3x3.weight
        out = RepConvAct(self.in_channels, self.out_channels, copy.deepcopy(self.act))
        out.rbr_reparam = to_conv2d(self.kernel(), dtype=weight.dtype).to(weight.device)
        return out.train(self.training)


class RepConv(nn.Module):
    """A folded NRB: the single 3×3 ``rep_conv`` of the authors' inference code."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.rep_conv = conv(channels, channels, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.rep_conv(x)


class NRB(nn.Module):
    """Nested re-parameterization block, train form: ``x + reduce(eECB(expand(x)))``.

    ``expand`` is a bias-free 1×1 to ``ratio``·C, ``eECB`` an ECB at that width with its identity path (the RRRB's
    inner skip), ``reduce`` a 1×1 back to C. All linear, so :meth:`fused` returns one :class:`RepConv`.
    """

    def __init__(self, channels: int, ratio: int = 2, depth_multiplier: float = 2.0) -> None:
        super().__init__()
        wide = ratio * channels
        self.channels = channels
        self.expand = conv(channels, wide, 1, bias=False)
        self.eecb = ECB(wide, wide, depth_multiplier, act=None, with_idt=True)
        self.reduce = conv(wide, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.reduce(self.eecb(self.expand(x))) + x

    def fused(self) -> RepConv:
        # reparameterize() folds children first, so the eECB may already be its deploy ConvAct.
        inner = self.eecb.fused() if isinstance(self.eecb, ECB) else self.eecb
        kernel = fuse_sequential_1x1_kxk(conv_params(self.expand, FOLD_DTYPE), conv_params(inner.conv3x3, FOLD_DTYPE))
        kernel = fuse_sequential_kxk_1x1(kernel, conv_params(self.reduce, FOLD_DTYPE))
        kernel = sum_branches(kernel, identity_branch(self.channels, 3, like=kernel.weight))
        out = RepConv(self.channels)
        out.rep_conv = to_conv2d(kernel, dtype=self.expand.weight.dtype).to(self.expand.weight.device)
        return out.train(self.training)


class NRBAct(nn.Module):
    """An NRB and its activation (the authors' ``NRBACT``: keys ``nrb.*``)."""

    def __init__(self, channels: int, ratio: int, depth_multiplier: float, act: str) -> None:
        super().__init__()
        self.nrb = NRB(channels, ratio, depth_multiplier)
        self.act = activation(act)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.nrb(x))


class ANUNet(nn.Module):
    """ANUNet in its train form; :func:`esrkit.models.reparameterize` gives the authors' deploy network."""

    def __init__(self, scale: int = 4, num_feat: int = 28, num_block: int = 3, depth_multiplier: float = 2.0,
                 nrb_ratio: int = 2, act: str = "gelu") -> None:
        super().__init__()
        if num_block < 1:
            raise InputError("num_block must be at least 1")
        if act not in ("gelu", "relu", "silu"):
            raise InputError(f"act must be gelu, relu or silu, not {act!r}")
        colors, folded = 3, UNSHUFFLE * UNSHUFFLE
        self.scale = scale
        self.backbone = nn.Sequential(
            AnchorECB(folded * colors, num_feat, depth_multiplier, act),
            *(NRBAct(num_feat, nrb_ratio, depth_multiplier, act) for _ in range(num_block)),
            AnchorECB(num_feat, folded * colors * scale * scale, depth_multiplier, "linear"),
        )
        self.down = nn.PixelUnshuffle(UNSHUFFLE)
        self.up = nn.PixelShuffle(UNSHUFFLE)
        self.upsampler = nn.PixelShuffle(scale)

    def forward(self, x: Tensor) -> Tensor:
        anchor = torch.repeat_interleave(x, self.scale * self.scale, dim=1)
        return self.upsampler(self.up(self.backbone(self.down(x))) + anchor)


def detect(s: Shapes) -> ModelConfig | None:
    """ECB / NRB backbone: ``rbr_reparam`` and ``nrb.rep_conv`` keys are the deploy form, ``conv3x3`` and
    ``nrb.expand`` the train form. The first ECB takes the 12 unshuffled channels; the last gives 12·s²."""
    folded = 3 * UNSHUFFLE * UNSHUFFLE
    if has_keys(s, "backbone.0.rbr_reparam.weight", "backbone.1.nrb.rep_conv.weight"):
        nb = count_indexed(s, "backbone.{i}.nrb.rep_conv.weight")
        first, last = s["backbone.0.rbr_reparam.weight"], s[f"backbone.{nb + 1}.rbr_reparam.weight"]
        hparams: dict[str, object] = {"num_feat": first[0], "num_block": nb}
        form = "deploy"
    elif has_keys(s, "backbone.0.conv3x3.weight", "backbone.0.conv1x1_3x3.k0", "backbone.1.nrb.expand.weight"):
        nb = count_indexed(s, "backbone.{i}.nrb.expand.weight")
        first, last = s["backbone.0.conv3x3.weight"], s[f"backbone.{nb + 1}.conv3x3.weight"]
        hparams = {"num_feat": first[0], "num_block": nb,
                   "depth_multiplier": s["backbone.0.conv1x1_3x3.k0"][0] / first[0],
                   "nrb_ratio": s["backbone.1.nrb.expand.weight"][0] // first[0]}
        form = "train"
    else:
        return None
    if first[1] != folded:
        return None
    return FAMILY.match(scale_from_channels(last[0], colors=folded), hparams, form)


FAMILY = register_family(Family(
    name="anunet",
    cls=ANUNet,
    paper="ANUNet: Anchor-based Nested UnshuffleNet (AIS 2024 Real-Time 4K SR of Compressed AVIF Images, "
          "team LeRTSR)",
    variants={"anunet": {}},
    # A ×4-only challenge (540p → 4K); the class builds other scales, but no such model was trained.
    scales=(4,),
    # Pixel-unshuffle by 2. Tiles are not exact: the tiler starts tiles at any offset, which regroups the
    # unshuffled pixels. No released weights: fp16/bf16 keep the registry's default (unchecked) True.
    capabilities=Capabilities(size_multiple=UNSHUFFLE, tile_exact=False),
    detect=detect,
    degradation="lanczos+avif",
))
