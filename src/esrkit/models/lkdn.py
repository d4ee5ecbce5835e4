"""LKDN: Large Kernel Distillation Network (Xie et al., CVPR 2023 Workshops / NTIRE 2023 Efficient SR).

Structure (BSRN framework): the RGB input is repeated ``num_in`` times along channels, a BSConv extracts
shallow features, ``num_block`` large-kernel distillation blocks (LKDB) run in sequence, all block outputs are
fused by a 1×1 conv + GELU + BSConv with a long skip from the shallow features, and one 3×3 conv + pixel
shuffle upsamples.

Two registered configurations:

* ``lkdn`` — the paper model (C = A = 56, 8 blocks), trained with plain BSConv refinement convs ("BSB") and
  the direct pixel-shuffle upsampler; it has no train/deploy distinction.
* ``lkdn_s`` — the NTIRE 2023 entry (C = A = 42, 5 blocks) in its *train* form: refinement convs are
  :class:`~esrkit.layers.reparam.BSConvURep` ("RBSB") and the upsampler is the three-branch
  :class:`~esrkit.layers.reparam.RepUpsampler`. :func:`esrkit.models.reparameterize` folds it into the
  deploy form, which is the same network with ``conv="BSConvU"`` and ``upsampler="pixelshuffledirect"``.

Submodule names (``fea_conv``, ``B1``..``Bm``, ``c1``, ``c2``, ``upsampler``; inside blocks ``c1_d``,
``c1_r``, ..., ``atten``, ``pixel_norm``) match the official checkpoints key for key. Value range is [0, 1] in
and out, as in the official code (no mean shift, no 255 scaling).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import InputError
from ..layers import DistillationBlock, conv, make_attention, pixelshuffle_block
from ..layers.reparam import BSConvU, BSConvURep, RepUpsampler
from .detection import Shapes, count_indexed, has_keys, scale_from_channels
from .registry import Capabilities, Family, ModelConfig, Variant, model_info, register_family

# Refinement-conv choices by the official config names, so hyper-parameters read like the authors' YAML files.
_CONVS: dict[str, type[nn.Module]] = {"BSConvU": BSConvU, "BSConvU_rep": BSConvURep}
_UPSAMPLERS = ("pixelshuffledirect", "pixelshuffle_rep")


class LKDB(DistillationBlock):
    """Large kernel distillation block.

    The distillation trunk (1×1 ``c{i}_d`` to C/2 channels, refinement ``c{i}_r`` by BSConv or its
    re-parameterizable variant, a last BSConv ``c4``; GELU after each) is followed by a 1×1 fusion to the
    attention width, large-kernel attention, a 1×1 projection back and a per-pixel LayerNorm over channels
    (the paper's "pixel normalization", added for training stability) before the block residual. Nothing after
    ``c5`` is activated.
    """

    def __init__(self, channels: int, atten_channels: int, refine: type[nn.Module] = BSConvU) -> None:
        super().__init__(channels, act=nn.GELU(), refine=lambda i, o: refine(i, o, 3),
                         last=lambda i, o: BSConvU(i, o, 3), refine_skip=False)
        self.c5 = conv(4 * self.distilled_channels, atten_channels, 1)
        self.atten = make_attention("lka", atten_channels)
        self.c6 = conv(atten_channels, channels, 1)
        self.pixel_norm = nn.LayerNorm(channels)

    def forward(self, x: Tensor) -> Tensor:
        out = self.c6(self.atten(self.c5(self.distill(x))))
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
        self.c1 = nn.Conv2d(num_feat * num_block, num_feat, 1)
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


def detect(s: Shapes) -> ModelConfig | None:
    """A BSConv ``fea_conv`` (``fea_conv.pw``) and ``B{i}`` LKDBs; ``rep1x1`` and ``upsampler.conv3`` keys mark
    the re-parameterizable train form.

    A folded train-form variant (LKDN-S after re-parameterization) has plain LKDN's layout; its widths tell it
    apart, and it loads as that variant's deploy form.
    """
    if not has_keys(s, "fea_conv.pw.weight", "B1.c1_d.weight"):
        return None
    rep_conv = "B1.c1_r.rep1x1.weight" in s
    rep_up = "upsampler.conv3.weight" in s
    scale = scale_from_channels(s["upsampler.conv3.weight" if rep_up else "upsampler.0.weight"][0])
    if scale is None:
        return None
    shape = {"num_feat": s["fea_conv.pw.weight"][0], "num_atten": s["B1.atten.pointwise.weight"][0],
             "num_block": count_indexed(s, "B{i}.c1_d.weight"), "num_in": s["fea_conv.pw.weight"][1] // 3}
    if not rep_conv and not rep_up:
        for name in FAMILY.variants:
            info = model_info(name)
            if (info.reparameterizable and scale in info.scales
                    and all(info.defaults[k] == v for k, v in shape.items())):
                return ModelConfig(name, scale, {}, "deploy")
    return FAMILY.match(scale, {**shape, "conv": "BSConvU_rep" if rep_conv else "BSConvU",
                                "upsampler": "pixelshuffle_rep" if rep_up else "pixelshuffledirect"})


FAMILY = register_family(Family(
    name="lkdn",
    cls=LKDN,
    paper="Large Kernel Distillation Network for Efficient Single Image Super-Resolution (CVPR 2023 Workshops)",
    variants={
        # The paper model: plain BSConv refinement ("BSB") and the direct upsampler; no deploy distinction.
        "lkdn": {},
        # The NTIRE 2023 entry in its train form: re-parameterizable refinement ("RBSB") and upsampler.
        "lkdn_s": Variant({"num_feat": 42, "num_atten": 42, "num_block": 5, "conv": "BSConvU_rep",
                           "upsampler": "pixelshuffle_rep"}, note="LKDN-S, NTIRE 2023 Efficient SR entry"),
    },
    # Half precision breaks it: the official LKDN-S ×4 weights score Set5 Y-PSNR 32.10 dB in fp32, 32.04 in bf16
    # (-0.06) and 23.00 in fp16 (the LKA product and the LayerNorm statistics leave fp16's range).
    capabilities=Capabilities(fp16=False, bf16=False),
    detect=detect,
))
