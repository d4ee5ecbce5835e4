"""RLFN, the residual local feature network (NTIRE 2022 Efficient SR, runtime track winner, team ByteESR).

Paper: F. Kong, M. Li, S. Liu, D. Liu, J. He, Y. Bai, F. Chen, L. Fu, "Residual Local Feature Network for
Efficient Super-Resolution", CVPR Workshops 2022 (arXiv 2205.07514). Official code: ``bytedance/RLFN``.

One class covers the family; the registered variants differ only in hyper-parameters:

* ``rlfn``: 6 RLFBs, 52 channels (543,740 params at ×4, 526,856 at ×2);
* ``rlfn_s``: 6 RLFBs, 48 channels (470,208 at ×4, 454,620 at ×2);
* ``rlfn_ntire``: the pruned challenge entry, 4 RLFBs, 46 feature channels and 48 channels inside each block's
  3×3 chain (317,218 at ×4).

Layout: 3×3 ``conv_1`` → RLFBs ``block_1…block_n`` → 3×3 ``conv_2`` + ``conv_1`` output (the only long
skip; no image-level skip, no mean shift) → ``upsampler`` (conv to ``3·s²`` channels → PixelShuffle(s)).
RLFB: three 3×3 convs ``c1_r``/``c2_r``/``c3_r`` each followed by the activation, identity add, 1×1 ``c5``,
reduced ESA (16 channels). The block output is the ESA output.

Deviations between paper and code, resolved in favour of the released code and weights:

* The paper says the refinement convs are followed by ReLU; the code uses LeakyReLU with slope 0.05
  (``negative_slope`` hyper-parameter).
* ESA's structure (stride-2 3×3 without padding, 7×7/3 max-pool, a single 3×3 conv, bilinear upsampling, 1×1
  ``conv_f`` skip, no ReLU) is known only from the code; RFDN's ``conv_max`` and ``conv3_`` are absent.
* The weights were trained in the EDSR framework on [0, 255] pixels (manifest ``input_range`` 255), so
  ``img_range`` defaults to 255: the [0, 1] input is multiplied by it and the output divided by it.
* The paper calls the challenge model 48-channel "RLFN-cut"; after its pruning step the released model has 46
  feature channels and a 46→48→48→46 conv chain in every block (``mid_channels`` = 48).
"""

from __future__ import annotations

from torch import Tensor, nn

from ..layers import RangeScaledNet, activation, conv, make_attention, pixelshuffle_block
from .detection import Shapes, count_indexed, has_keys, scale_from_channels
from .registry import Capabilities, Family, ModelConfig, Variant, register_family


class RLFB(nn.Module):
    """Residual local feature block: RFDB without the distillation branches (which cost runtime through extra
    1×1 convs and a concat) and with a slimmer ESA."""

    def __init__(self, num_feat: int, mid_channels: int, esa_channels: int, negative_slope: float = 0.05) -> None:
        super().__init__()
        self.c1_r = conv(num_feat, mid_channels, 3)
        self.c2_r = conv(mid_channels, mid_channels, 3)
        self.c3_r = conv(mid_channels, num_feat, 3)
        self.c5 = conv(num_feat, num_feat, 1)
        self.esa = make_attention("esa_reduced", num_feat, esa_channels=esa_channels)
        self.act = activation("lrelu", negative_slope)

    def forward(self, x: Tensor) -> Tensor:
        out = self.act(self.c1_r(x))
        out = self.act(self.c2_r(out))
        out = self.act(self.c3_r(out))
        return self.esa(self.c5(out + x))


class RLFN(RangeScaledNet):
    """RLFN family network. ``mid_channels`` None means "same as ``num_feat``" (the unpruned models)."""

    def __init__(self, scale: int = 4, num_feat: int = 52, num_block: int = 6, mid_channels: int | None = None,
                 esa_channels: int = 16, negative_slope: float = 0.05, img_range: float = 255.0) -> None:
        super().__init__(img_range)
        mid = num_feat if mid_channels is None else mid_channels
        self.num_block = num_block
        self.conv_1 = conv(3, num_feat, 3)
        for i in range(1, num_block + 1):
            self.add_module(f"block_{i}", RLFB(num_feat, mid, esa_channels, negative_slope))
        self.conv_2 = conv(num_feat, num_feat, 3)
        self.upsampler = pixelshuffle_block(num_feat, 3, scale)

    def forward_scaled(self, x: Tensor) -> Tensor:
        shallow = self.conv_1(x)
        feat = shallow
        for i in range(1, self.num_block + 1):
            feat = getattr(self, f"block_{i}")(feat)
        return self.upsampler(self.conv_2(feat) + shallow)


def detect(s: Shapes) -> ModelConfig | None:
    """``conv_1`` + ``block_{i}`` RLFBs; ``c1_r``'s width differing from ``conv_1``'s is a pruned model."""
    if not has_keys(s, "conv_1.weight", "block_1.c1_r.weight", "upsampler.0.weight"):
        return None
    nf, mid = s["conv_1.weight"][0], s["block_1.c1_r.weight"][0]
    hparams = {"num_feat": nf, "num_block": count_indexed(s, "block_{i}.c1_r.weight"),
               "mid_channels": None if mid == nf else mid, "esa_channels": s["block_1.esa.conv1.weight"][0]}
    return FAMILY.match(scale_from_channels(s["upsampler.0.weight"][0]), hparams)


FAMILY = register_family(Family(
    name="rlfn",
    cls=RLFN,
    paper="Residual Local Feature Network for Efficient Super-Resolution (CVPRW 2022)",
    variants={
        "rlfn": {},
        "rlfn_s": {"num_feat": 48},
        # The challenge entry was trained and pruned for ×4 only; other scales would be a different, untrained
        # model.
        "rlfn_ntire": Variant({"num_feat": 46, "num_block": 4, "mid_channels": 48}, scales=(4,),
                              note="NTIRE 2022 Efficient SR runtime-track winner"),
    },
    capabilities=Capabilities(min_size=15, tile_exact=False),  # reduced ESA: see rfdn
    detect=detect,
))
