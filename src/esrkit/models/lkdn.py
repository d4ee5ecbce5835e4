"""LKDN: Large Kernel Distillation Network (Xie et al., CVPR 2023 Workshops / NTIRE 2023 Efficient SR).

Structure (BSRN framework): the RGB input is repeated ``num_in`` times along channels, a BSConv extracts
shallow features, ``num_block`` large-kernel distillation blocks (LKDB) run in sequence, all block outputs are
fused by a 1×1 conv + GELU + BSConv with a long skip from the shallow features, and one 3×3 conv + pixel
shuffle upsamples.

Two registered configurations:

* ``lkdn`` — the paper model (C = A = 56, 8 blocks), trained with plain BSConv refinement convs ("BSB") and
  the direct pixel-shuffle upsampler; it has no train/deploy distinction.
* ``lkdn_s`` — the NTIRE 2023 entry (C = A = 42, 5 blocks) in its *train* form: refinement convs are
  :class:`~esrkit.models.reparam.BSConvURep` ("RBSB") and the upsampler is the three-branch
  :class:`~esrkit.models.reparam.RepUpsampler`. :func:`esrkit.models.reparameterize` folds it into the
  deploy form, which is the same network with ``conv="BSConvU"`` and ``upsampler="pixelshuffledirect"``.

Submodule names (``fea_conv``, ``B1``..``Bm``, ``c1``, ``c2``, ``upsampler``; inside blocks ``c1_d``,
``c1_r``, ..., ``atten``, ``pixel_norm``) match the official checkpoints key for key. Value range is [0, 1] in
and out, as in the official code (no mean shift, no 255 scaling).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import InputError
from .blocks import conv, pixelshuffle_block
from .registry import register_model
from .reparam import BSConvU, BSConvURep, RepUpsampler

_PAPER = "Large Kernel Distillation Network for Efficient Single Image Super-Resolution (CVPR 2023 Workshops)"

# Refinement-conv choices by the official config names, so hyper-parameters read like the authors' YAML files.
_CONVS: dict[str, type[nn.Module]] = {"BSConvU": BSConvU, "BSConvU_rep": BSConvURep}
_UPSAMPLERS = ("pixelshuffledirect", "pixelshuffle_rep")

# LKDN's ``conv`` hyper-parameter (kept under the official name) shadows the helper inside ``LKDN.__init__``.
_conv = conv


class LargeKernelAttention(nn.Module):
    """LKA in LKDN's order: 1×1 → 5×5 depth-wise → 5×5 depth-wise with dilation 3 (a 17×17 receptive field),
    then an element-wise product with the input.

    There is deliberately no sigmoid: the product itself is the gate. The point-wise conv comes first (as in
    VAPSR) so that the two depth-wise convs act on already-mixed channels.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.pointwise = conv(channels, channels, 1)
        self.depthwise = conv(channels, channels, 5, groups=channels)
        self.depthwise_dilated = conv(channels, channels, 5, groups=channels, dilation=3)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.depthwise_dilated(self.depthwise(self.pointwise(x)))


class LKDB(nn.Module):
    """Large kernel distillation block.

    Three distillation stages each split the features into a cheap 1×1 "distilled" part (``c{i}_d``, C/2
    channels) and a refined part (``c{i}_r``, C channels, BSConv or its re-parameterizable variant) passed on
    to the next stage; a last BSConv (``c4``) distils the final refined features. The four distilled parts are
    concatenated, fused by a 1×1 conv to the attention width, gated by LKA, projected back by a 1×1 conv and
    normalized per pixel over channels (LayerNorm, the paper's "pixel normalization", added for training
    stability) before the block residual. Every distillation/refinement output goes through GELU; nothing
    after ``c5`` is activated.
    """

    def __init__(self, channels: int, atten_channels: int, refine: type[nn.Module] = BSConvU) -> None:
        super().__init__()
        dc = channels // 2
        self.c1_d = conv(channels, dc, 1)
        self.c1_r = refine(channels, channels, 3)
        self.c2_d = conv(channels, dc, 1)
        self.c2_r = refine(channels, channels, 3)
        self.c3_d = conv(channels, dc, 1)
        self.c3_r = refine(channels, channels, 3)
        self.c4 = BSConvU(channels, dc, 3)
        self.act = nn.GELU()
        self.c5 = conv(4 * dc, atten_channels, 1)
        self.atten = LargeKernelAttention(atten_channels)
        self.c6 = conv(atten_channels, channels, 1)
        self.pixel_norm = nn.LayerNorm(channels)

    def forward(self, x: Tensor) -> Tensor:
        d1 = self.act(self.c1_d(x))
        r1 = self.act(self.c1_r(x))
        d2 = self.act(self.c2_d(r1))
        r2 = self.act(self.c2_r(r1))
        d3 = self.act(self.c3_d(r2))
        r3 = self.act(self.c3_r(r2))
        d4 = self.act(self.c4(r3))
        out = self.c6(self.atten(self.c5(torch.cat([d1, d2, d3, d4], dim=1))))
        # LayerNorm normalizes the last dimension, so move channels there and back.
        out = self.pixel_norm(out.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return out + x


class LKDN(nn.Module):
    """LKDN / LKDN-S network, parameterized by width, depth, input repetition and block variants.

    ``num_in`` copies of the input are concatenated before the first conv: it costs a few parameters in
    ``fea_conv.pw`` (``3·num_in`` input channels) and, per the authors, helps the shallow extractor.
    """

    def __init__(self, scale: int = 4, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 56,
                 num_atten: int = 56, num_block: int = 8, num_in: int = 4, conv: str = "BSConvU",
                 upsampler: str = "pixelshuffledirect") -> None:
        super().__init__()
        if conv not in _CONVS:
            raise InputError(f"conv must be one of {sorted(_CONVS)}, not {conv!r}")
        if upsampler not in _UPSAMPLERS:
            raise InputError(f"upsampler must be one of {list(_UPSAMPLERS)}, not {upsampler!r}")
        if num_block < 1 or num_in < 1:
            raise InputError("num_block and num_in must be at least 1")
        self.scale = scale
        self.num_in = num_in
        self.fea_conv = BSConvU(num_in_ch * num_in, num_feat, 3)
        # Blocks are plain attributes B1..Bm (not a ModuleList) so state-dict keys match the released weights.
        self._block_names = [f"B{i + 1}" for i in range(num_block)]
        for name in self._block_names:
            self.add_module(name, LKDB(num_feat, num_atten, _CONVS[conv]))
        self.c1 = _conv(num_feat * num_block, num_feat, 1)
        self.act = nn.GELU()
        self.c2 = BSConvU(num_feat, num_feat, 3)
        self.upsampler: nn.Module
        if upsampler == "pixelshuffle_rep":
            self.upsampler = RepUpsampler(num_feat, num_out_ch, scale)
        else:
            self.upsampler = pixelshuffle_block(num_feat, num_out_ch, scale)

    def forward(self, x: Tensor) -> Tensor:
        shallow = self.fea_conv(torch.cat([x] * self.num_in, dim=1))
        outs = []
        feat = shallow
        for name in self._block_names:
            feat = getattr(self, name)(feat)
            outs.append(feat)
        fused = self.c2(self.act(self.c1(torch.cat(outs, dim=1))))
        return self.upsampler(fused + shallow)


@register_model(
    "lkdn",
    family="lkdn",
    paper=_PAPER,
    defaults={"num_feat": 56, "num_atten": 56, "num_block": 8, "num_in": 4, "conv": "BSConvU",
              "upsampler": "pixelshuffledirect"},
    scales=(2, 3, 4),
    input_range=1.0,
    deploy="none",
)
def build_lkdn(scale: int, **hparams: object) -> nn.Module:
    """LKDN (paper model): 8 LKDBs, 56 distillation/attention channels, plain BSConv, direct upsampler."""
    return LKDN(scale=scale, **hparams)  # type: ignore[arg-type]


@register_model(
    "lkdn_s",
    family="lkdn",
    paper=_PAPER,
    defaults={"num_feat": 42, "num_atten": 42, "num_block": 5, "num_in": 4, "conv": "BSConvU_rep",
              "upsampler": "pixelshuffle_rep"},
    scales=(2, 3, 4),
    input_range=1.0,
    deploy="reparameterize",
)
def build_lkdn_s(scale: int, **hparams: object) -> nn.Module:
    """LKDN-S (NTIRE 2023 entry), train form: 5 LKDBs, 42 channels, re-parameterizable convs and upsampler."""
    return LKDN(scale=scale, **hparams)  # type: ignore[arg-type]
