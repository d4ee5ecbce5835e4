"""PAN, the pixel attention network (AIM 2020 Efficient SR, team XPixel: fewest parameters, 272,419 at ×4).

Paper: H. Zhao, X. Kong, J. He, Y. Qiao, C. Dong, "Efficient Image Super-Resolution Using Pixel Attention",
ECCV Workshops 2020. Official code and weights: ``zhaohengyuan1/PAN`` (``codes/models/archs/PAN_arch.py``,
``PANx{2,3,4}_DF2K.pth``).

Pixel attention (PA) is a 1×1 conv and a sigmoid that give a full C×H×W gate (not a per-channel vector like
SE/CCA, not a per-pixel map like spatial attention), so the attention costs ``C²+C`` parameters and no pooling.

Layout (key names as in the released checkpoints):

* ``conv_first`` (3×3, 3 → ``num_feat``);
* ``SCPA_trunk``: ``num_block`` self-calibrated PA blocks. Each splits into two halves with bias-free 1×1 convs
  ``conv1_a``/``conv1_b`` (+ LeakyReLU): the lower half is a plain 3×3 ``k1.0``, the upper half is ``PAConv``
  (``k3`` 3×3 gated by ``sigmoid(k2 1×1)``, then ``k4`` 3×3); both get a LeakyReLU, are concatenated, fused by
  the bias-free 1×1 ``conv3`` and added to the block input;
* ``trunk_conv`` (3×3) + the ``conv_first`` output (long skip);
* U-PA reconstruction: nearest-neighbour upsampling → ``upconvN`` (3×3, to ``num_up_feat`` channels) → PA
  ``attN`` → LeakyReLU → ``HRconvN`` (3×3) → LeakyReLU. ×2 and ×3 have one such stage that interpolates by
  the whole scale; ×4 has two ×2 stages (``upconv2``/``att2``/``HRconv2``), hence its extra 11,016 parameters
  (272,419 vs 261,403 at ×2/×3);
* ``conv_last`` (3×3 to RGB) plus the input upsampled **bilinearly** (``align_corners=False``) as an image-level
  skip.

Facts the paper leaves out, taken from the released code (the weights were trained with it):

* LeakyReLU slope 0.2 everywhere; the SCPA branch convs and ``conv3`` have no bias, ``PAConv.k2`` has one;
* the U-PA stage is conv → PA → LeakyReLU → conv → LeakyReLU (the report says "conv → PA → conv");
* the image skip is bilinear, not bicubic, and the feature upsampling is nearest, not pixel shuffle;
* [0, 1] input (no mean shift, no 255 scaling).

A ×2 and a ×3 checkpoint have identical tensor shapes (the interpolation factor carries no weights), so the
detector cannot tell them apart: it proposes ×2, and a ×3 file needs its scale given explicitly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import InputError
from ..layers import activation, conv
from .detection import Shapes, count_indexed, has_keys
from .registry import Family, ModelConfig, register_family


class PixelAttention(nn.Module):
    """``x · sigmoid(conv1×1(x))``: a full C×H×W attention map from one 1×1 conv (key ``conv``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = conv(channels, channels, 1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        return x * self.sigmoid(self.conv(x))


class PAConv(nn.Module):
    """A 3×3 conv gated by pixel attention computed from its *input*, then a second 3×3 (keys ``k2``-``k4``).

    The gate comes from the block input rather than the conv output, so the attention and the 3×3 run in
    parallel; only ``k2`` (the attention 1×1) has a bias.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.k2 = conv(channels, channels, 1)
        self.sigmoid = nn.Sigmoid()
        self.k3 = conv(channels, channels, 3, bias=False)
        self.k4 = conv(channels, channels, 3, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.k4(self.k3(x) * self.sigmoid(self.k2(x)))


class SCPA(nn.Module):
    """Self-calibrated convolution with pixel attention (after SCNet): two half-width branches, one plain 3×3 and
    one :class:`PAConv`, fused by a 1×1 and added to the input."""

    def __init__(self, num_feat: int, negative_slope: float = 0.2) -> None:
        super().__init__()
        half = num_feat // 2
        self.conv1_a = conv(num_feat, half, 1, bias=False)
        self.conv1_b = conv(num_feat, half, 1, bias=False)
        self.k1 = nn.Sequential(conv(half, half, 3, bias=False))  # a Sequential only for the key ``k1.0``
        self.PAConv = PAConv(half)
        self.conv3 = conv(2 * half, num_feat, 1, bias=False)
        self.lrelu = activation("lrelu", negative_slope)

    def forward(self, x: Tensor) -> Tensor:
        a = self.lrelu(self.k1(self.lrelu(self.conv1_a(x))))
        b = self.lrelu(self.PAConv(self.lrelu(self.conv1_b(x))))
        return self.conv3(torch.cat([a, b], dim=1)) + x


class PAN(nn.Module):
    """PAN network: ``num_block`` SCPA blocks at ``num_feat`` channels, U-PA reconstruction at ``num_up_feat``."""

    def __init__(self, scale: int = 4, num_feat: int = 40, num_up_feat: int = 24, num_block: int = 16,
                 negative_slope: float = 0.2) -> None:
        super().__init__()
        if scale not in (2, 3, 4):
            raise InputError(f"PAN supports scales 2, 3 and 4, not {scale}", param="scale")
        if num_feat % 2:
            raise InputError(f"PAN splits its features in halves, so num_feat must be even, not {num_feat}")
        self.scale = scale
        self.conv_first = conv(3, num_feat, 3)
        self.SCPA_trunk = nn.Sequential(*(SCPA(num_feat, negative_slope) for _ in range(num_block)))
        self.trunk_conv = conv(num_feat, num_feat, 3)
        # ×4 is two nearest-×2 stages; ×2/×3 one stage that interpolates by the whole scale.
        self._stages = [(2, "1"), (2, "2")] if scale == 4 else [(scale, "1")]
        in_ch = num_feat
        for _, suffix in self._stages:
            self.add_module(f"upconv{suffix}", conv(in_ch, num_up_feat, 3))
            self.add_module(f"att{suffix}", PixelAttention(num_up_feat))
            self.add_module(f"HRconv{suffix}", conv(num_up_feat, num_up_feat, 3))
            in_ch = num_up_feat
        self.conv_last = conv(num_up_feat, 3, 3)
        self.lrelu = activation("lrelu", negative_slope)

    def forward(self, x: Tensor) -> Tensor:
        feat = self.conv_first(x)
        feat = feat + self.trunk_conv(self.SCPA_trunk(feat))
        for factor, suffix in self._stages:
            feat = getattr(self, f"upconv{suffix}")(F.interpolate(feat, scale_factor=factor, mode="nearest"))
            feat = self.lrelu(getattr(self, f"att{suffix}")(feat))
            feat = self.lrelu(getattr(self, f"HRconv{suffix}")(feat))
        skip = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return self.conv_last(feat) + skip


def detect(s: Shapes) -> ModelConfig | None:
    """``conv_first`` + ``SCPA_trunk``; ``upconv2`` marks ×4. Without it the layout is ×2 or ×3 (same shapes):
    ×2 is proposed."""
    if not has_keys(s, "conv_first.weight", "SCPA_trunk.0.PAConv.k2.weight", "upconv1.weight", "conv_last.weight"):
        return None
    hparams = {"num_feat": s["conv_first.weight"][0], "num_up_feat": s["upconv1.weight"][0],
               "num_block": count_indexed(s, "SCPA_trunk.{i}.conv1_a.weight")}
    return FAMILY.match(4 if "upconv2.weight" in s else 2, hparams)


FAMILY = register_family(Family(
    name="pan",
    cls=PAN,
    paper="Efficient Image Super-Resolution Using Pixel Attention (ECCVW 2020); AIM 2020 Efficient SR, "
    "fewest parameters (team XPixel)",
    variants={"pan": {}},
    # Default capabilities, all checked: purely local (convs, nearest and bilinear resampling), so overlapping
    # tiles reproduce the whole image; the official ×4 weights score Set5 Y-PSNR 32.140 dB in fp32, 32.139 in
    # fp16 and 32.137 in bf16 (measured on CPU), so both half precisions keep fidelity.
    detect=detect,
))
