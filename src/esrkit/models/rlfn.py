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

from .blocks import ESA, activation, conv, pixelshuffle_block
from .registry import register_model


class RLFB(nn.Module):
    """Residual local feature block: RFDB without the distillation branches (which cost runtime through extra
    1×1 convs and a concat) and with a slimmer ESA."""

    def __init__(self, num_feat: int, mid_channels: int, esa_channels: int,
                 negative_slope: float = 0.05) -> None:
        super().__init__()
        self.c1_r = conv(num_feat, mid_channels, 3)
        self.c2_r = conv(mid_channels, mid_channels, 3)
        self.c3_r = conv(mid_channels, num_feat, 3)
        self.c5 = conv(num_feat, num_feat, 1)
        self.esa = ESA(num_feat, esa_channels, full=False)
        self.act = activation("lrelu", negative_slope)

    def forward(self, x: Tensor) -> Tensor:
        out = self.act(self.c1_r(x))
        out = self.act(self.c2_r(out))
        out = self.act(self.c3_r(out))
        return self.esa(self.c5(out + x))


class RLFN(nn.Module):
    """RLFN family network. ``mid_channels`` None means "same as ``num_feat``" (the unpruned models)."""

    def __init__(self, scale: int = 4, num_feat: int = 52, num_block: int = 6,
                 mid_channels: int | None = None, esa_channels: int = 16, negative_slope: float = 0.05,
                 img_range: float = 255.0) -> None:
        super().__init__()
        mid = num_feat if mid_channels is None else mid_channels
        self.img_range = float(img_range)
        self.num_block = num_block
        self.conv_1 = conv(3, num_feat, 3)
        for i in range(1, num_block + 1):
            self.add_module(f"block_{i}", RLFB(num_feat, mid, esa_channels, negative_slope))
        self.conv_2 = conv(num_feat, num_feat, 3)
        self.upsampler = pixelshuffle_block(num_feat, 3, scale)

    def forward(self, x: Tensor) -> Tensor:
        if self.img_range != 1.0:
            x = x * self.img_range
        shallow = self.conv_1(x)
        feat = shallow
        for i in range(1, self.num_block + 1):
            feat = getattr(self, f"block_{i}")(feat)
        out = self.upsampler(self.conv_2(feat) + shallow)
        if self.img_range != 1.0:
            out = out / self.img_range
        return out


_PAPER = "Residual Local Feature Network for Efficient Super-Resolution (CVPRW 2022)"


def _build(scale: int, num_feat: int, num_block: int, mid_channels: int | None, esa_channels: int,
           negative_slope: float, img_range: float) -> nn.Module:
    return RLFN(scale=scale, num_feat=num_feat, num_block=num_block, mid_channels=mid_channels,
                esa_channels=esa_channels, negative_slope=negative_slope, img_range=img_range)


@register_model(
    "rlfn",
    family="rlfn",
    paper=_PAPER,
    defaults={"num_feat": 52, "num_block": 6, "mid_channels": None, "esa_channels": 16,
              "negative_slope": 0.05, "img_range": 255.0},
    scales=(2, 3, 4),
    input_range=255.0,
    description="RLFN: 6 RLFBs, 52 channels, reduced ESA (paper model)",
)
def rlfn(scale: int, num_feat: int = 52, num_block: int = 6, mid_channels: int | None = None,
         esa_channels: int = 16, negative_slope: float = 0.05, img_range: float = 255.0) -> nn.Module:
    """RLFN, the paper model (52 channels)."""
    return _build(scale, num_feat, num_block, mid_channels, esa_channels, negative_slope, img_range)


@register_model(
    "rlfn_s",
    family="rlfn",
    paper=_PAPER,
    defaults={"num_feat": 48, "num_block": 6, "mid_channels": None, "esa_channels": 16,
              "negative_slope": 0.05, "img_range": 255.0},
    scales=(2, 3, 4),
    input_range=255.0,
    description="RLFN-S: 6 RLFBs, 48 channels (faster paper variant)",
)
def rlfn_s(scale: int, num_feat: int = 48, num_block: int = 6, mid_channels: int | None = None,
           esa_channels: int = 16, negative_slope: float = 0.05, img_range: float = 255.0) -> nn.Module:
    """RLFN-S, the smaller paper model (48 channels)."""
    return _build(scale, num_feat, num_block, mid_channels, esa_channels, negative_slope, img_range)


# The challenge entry was trained and pruned for ×4 only; other scales would be a different, untrained model.
@register_model(
    "rlfn_ntire",
    family="rlfn",
    paper=_PAPER + "; NTIRE 2022 Efficient SR runtime-track winner",
    defaults={"num_feat": 46, "num_block": 4, "mid_channels": 48, "esa_channels": 16, "negative_slope": 0.05,
              "img_range": 255.0},
    scales=(4,),
    input_range=255.0,
    description="RLFN NTIRE 2022 entry: 4 RLFBs, 46 channels pruned (48 inside blocks), x4",
)
def rlfn_ntire(scale: int, num_feat: int = 46, num_block: int = 4, mid_channels: int | None = 48,
               esa_channels: int = 16, negative_slope: float = 0.05, img_range: float = 255.0) -> nn.Module:
    """RLFN's pruned NTIRE 2022 challenge model (46 feature channels, 48 mid channels)."""
    return _build(scale, num_feat, num_block, mid_channels, esa_channels, negative_slope, img_range)
