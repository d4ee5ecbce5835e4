"""RFDN, the residual feature distillation network (AIM 2020 Efficient SR winner, NTIRE 2022/2023 baseline).

Paper: J. Liu, J. Tang, G. Wu, "Residual Feature Distillation Network for Lightweight Image Super-Resolution",
ECCV Workshops 2020 (AIM 2020 Efficient SR, team NJU_MCG). The challenge model implemented here has 50 feature
channels and 4 RFDBs: 433,448 parameters at ×4; keys ``fea_conv``, ``B1…B4``, ``c.0``, ``LR_conv``,
``upsampler.0``.

Layout: 3×3 ``fea_conv`` → RFDB × 4 → concat of all block outputs → 1×1 ``c`` + LeakyReLU(0.05) → 3×3
``LR_conv`` + ``fea_conv`` output (long skip) → conv to ``3·s²`` channels → PixelShuffle(s).

RFDB: three steps of (1×1 "distillation" conv ``cN_d`` → LeakyReLU; 3×3 "shallow residual block" conv ``cN_r``
+ identity → LeakyReLU), a last 3×3 ``c4`` on the refined features, concat of the four distilled parts, 1×1
``c5`` and RFDN's full ESA (``esa_channels`` = ``num_feat // 4`` = 12, with ``conv_max`` and ``conv3_``). The
block output is the ESA output; there is no block-level residual.

Value range and deviations between paper and code, resolved in favour of the released weights:

* The official weights were trained in the EDSR framework on [0, 255] pixels (manifest ``input_range``
  255), so ``img_range`` defaults to 255: the [0, 1] input is multiplied by it and the output divided by it.
* The paper's benchmark RFDN is larger (534K / 550K params at ×2 / ×4 in later comparison tables); the
  challenge model, and this default, is the 4-block RFDN with 50 channels (the AIM 2020 report: "reduced from
  64").
* ESA's internals (conv_max + conv3 + conv3_ on the pooled map, with ReLUs) come from the code; the paper only
  shows them in a figure.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..layers import DistillationBlock, RangeScaledNet, activation, conv, make_attention, pixelshuffle_block
from .detection import Shapes, count_indexed, has_keys, scale_from_channels
from .registry import Capabilities, Family, ModelConfig, register_family


class RFDB(DistillationBlock):
    """Residual feature distillation block.

    Replaces IMDN's channel split by cheap 1×1 distillation convs next to full-width 3×3 refinement convs with
    identity shortcuts; ends in enhanced spatial attention instead of channel attention, which the authors
    found more effective for shallow SR networks. There is no block-level residual.
    """

    def __init__(self, num_feat: int, esa_channels: int, negative_slope: float = 0.05) -> None:
        super().__init__(num_feat, act=activation("lrelu", negative_slope), refine=lambda i, o: conv(i, o, 3),
                         last=lambda i, o: conv(i, o, 3), refine_skip=True)
        self.c5 = conv(self.distilled_channels * 4, num_feat, 1)
        self.esa = make_attention("esa", num_feat, esa_channels=esa_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.esa(self.c5(self.distill(x)))


class RFDN(RangeScaledNet):
    """RFDN with global feature aggregation. Blocks are attributes ``B1…Bn`` so keys match the checkpoint;
    ``esa_channels`` None means ``num_feat // 4``."""

    def __init__(self, scale: int = 4, num_feat: int = 50, num_block: int = 4, esa_channels: int | None = None,
                 negative_slope: float = 0.05, img_range: float = 255.0) -> None:
        super().__init__(img_range)
        esa = num_feat // 4 if esa_channels is None else esa_channels
        self.num_block = num_block
        self.fea_conv = conv(3, num_feat, 3)
        for i in range(1, num_block + 1):
            self.add_module(f"B{i}", RFDB(num_feat, esa, negative_slope))
        self.c = torch.nn.Sequential(conv(num_feat * num_block, num_feat, 1), activation("lrelu", negative_slope))
        self.LR_conv = conv(num_feat, num_feat, 3)
        self.upsampler = pixelshuffle_block(num_feat, 3, scale)

    def forward_scaled(self, x: Tensor) -> Tensor:
        shallow = self.fea_conv(x)
        feats = []
        feat = shallow
        for i in range(1, self.num_block + 1):
            feat = getattr(self, f"B{i}")(feat)
            feats.append(feat)
        fused = self.c(torch.cat(feats, dim=1))
        return self.upsampler(self.LR_conv(fused) + shallow)


def detect(s: Shapes) -> ModelConfig | None:
    """A dense ``fea_conv`` (LKDN's is a BSConv, ``fea_conv.pw``) and ``B{i}.c1_d`` blocks."""
    if not has_keys(s, "fea_conv.weight", "B1.c1_d.weight", "upsampler.0.weight"):
        return None
    nf, esa = s["fea_conv.weight"][0], s["B1.esa.conv1.weight"][0]
    hparams = {"num_feat": nf, "num_block": count_indexed(s, "B{i}.c1_d.weight"),
               "esa_channels": None if esa == nf // 4 else esa}
    return FAMILY.match(scale_from_channels(s["upsampler.0.weight"][0]), hparams)


FAMILY = register_family(Family(
    name="rfdn",
    cls=RFDN,
    paper="Residual Feature Distillation Network for Lightweight Image Super-Resolution (ECCVW 2020); "
    "AIM 2020 Efficient SR winner, NTIRE 2023 baseline",
    variants={"rfdn": {}},
    # ESA: an unpadded stride-2 conv and a 7×7/3 max-pool need 15 px, and its pooled map is resampled to the
    # whole input's size, so tiles differ from the whole image.
    capabilities=Capabilities(min_size=15, tile_exact=False),
    detect=detect,
))
