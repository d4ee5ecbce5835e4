"""SRN, the single residual network (NTIRE 2023 Efficient SR, team Zapdos, runtime 2nd).

Paper: Y. Wang, M. Cai, "A Single Residual Network with ESA Modules and Distillation", CVPR Workshops 2023. The
challenge report (``seed-ntire2023.md`` §4.2) describes the submitted student: **four non-residual blocks (NRB),
64 feature channels, ESA with 16 channels** ("ESA modify"), distilled from an EDSR-like teacher (128 channels, 20
residual blocks). Table 1: **0.352 M parameters, 21.97 G FLOPs, 63.01 M activations, 26 convs** (256×256 input).
No code or weights are public; the block diagrams (RB vs NRB, the modified ESA) were figures that did not survive,
so the layer order below is the reading of the text that reproduces every one of those four figures.

Layout: 3×3 ``fea_conv`` → ``body.0…body.3`` NRBs → add the ``fea_conv`` output (the network's *single*
residual connection, which gives the name) → ``upsampler`` (3×3 conv to ``3·s²`` channels, pixel shuffle).

NRB: EDSR's residual block (3×3 conv, ``nn.ReLU``, 3×3 conv) *without* its identity skip, followed by the
modified ESA. Modified ESA: RLFN's reduced ESA (1×1 squeeze to 16 channels, stride-2 3×3 without padding, 7×7/3
max-pool, one 3×3 conv, bilinear resampling, 1×1 expansion, sigmoid gate) with the 1×1 ``conv_f`` on the skip
removed: the squeezed map is added unchanged.

Choices where the text is silent, each forced by the published counts:

* no conv after the blocks (EDSR's body-end conv) and no mean-shift convs: with them the count is 27 or 28 convs,
  not 26, and the parameters exceed 0.352 M;
* ``conv_f`` removed from ESA (with it: 0.353 M parameters, 30 convs); the skip is kept as an identity, the
  most literal reading of "modify" that keeps ESA's two-branch structure;
* exactly one ReLU module per block (the challenge tool counts module activations: one per block gives 21.97 G,
  two give 21.99 G; ESA itself has none, as in RLFN);
* input range [0, 1] (the report does not say; without released weights it only fixes the convention).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers import conv, pixelshuffle_block
from .detection import Shapes, count_indexed, has_keys, scale_from_channels
from .registry import Capabilities, Family, ModelConfig, Variant, register_family


class ModifiedESA(nn.Module):
    """RLFN's reduced ESA without ``conv_f``: the squeezed features join the upsampled branch unchanged."""

    def __init__(self, num_feat: int, esa_channels: int) -> None:
        super().__init__()
        f = esa_channels
        self.conv1 = nn.Conv2d(num_feat, f, 1)
        self.conv2 = nn.Conv2d(f, f, 3, stride=2, padding=0)
        self.conv3 = nn.Conv2d(f, f, 3, padding=1)
        self.conv4 = nn.Conv2d(f, num_feat, 1)

    def forward(self, x: Tensor) -> Tensor:
        squeezed = self.conv1(x)
        small = self.conv3(F.max_pool2d(self.conv2(squeezed), kernel_size=7, stride=3))
        small = F.interpolate(small, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return x * torch.sigmoid(self.conv4(small + squeezed))


class NRB(nn.Module):
    """Non-residual block: conv → ReLU → conv (EDSR's RB without the skip), then the modified ESA."""

    def __init__(self, num_feat: int, esa_channels: int) -> None:
        super().__init__()
        self.conv1 = conv(num_feat, num_feat, 3)
        self.act = nn.ReLU(inplace=True)
        self.conv2 = conv(num_feat, num_feat, 3)
        self.esa = ModifiedESA(num_feat, esa_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.esa(self.conv2(self.act(self.conv1(x))))


class SRN(nn.Module):
    """SRN student; defaults are the NTIRE 2023 entry (64 channels, 4 NRBs, ESA 16)."""

    def __init__(self, scale: int = 4, num_feat: int = 64, num_block: int = 4, esa_channels: int = 16) -> None:
        super().__init__()
        self.fea_conv = conv(3, num_feat, 3)
        self.body = nn.Sequential(*(NRB(num_feat, esa_channels) for _ in range(num_block)))
        self.upsampler = pixelshuffle_block(num_feat, 3, scale)

    def forward(self, x: Tensor) -> Tensor:
        shallow = self.fea_conv(x)
        return self.upsampler(self.body(shallow) + shallow)


def detect(s: Shapes) -> ModelConfig | None:
    """``fea_conv`` + ``body.{i}`` NRBs whose ESA has no ``conv_f``."""
    if not has_keys(s, "fea_conv.weight", "body.0.conv1.weight", "body.0.conv2.weight", "body.0.esa.conv4.weight",
                    "upsampler.0.weight") or "body.0.esa.conv_f.weight" in s:
        return None
    hparams = {"num_feat": s["fea_conv.weight"][0], "num_block": count_indexed(s, "body.{i}.conv1.weight"),
               "esa_channels": s["body.0.esa.conv1.weight"][0]}
    return FAMILY.match(scale_from_channels(s["upsampler.0.weight"][0]), hparams)


FAMILY = register_family(Family(
    name="srn",
    cls=SRN,
    paper="A Single Residual Network with ESA Modules and Distillation (CVPRW 2023)",
    variants={"srn": Variant(note="NTIRE 2023 Efficient SR runtime 2nd (team Zapdos); no released weights")},
    # ESA's unpadded stride-2 conv and 7×7/3 pool need 15 px and resample over the whole map.
    capabilities=Capabilities(min_size=15, tile_exact=False),
    detect=detect,
))
