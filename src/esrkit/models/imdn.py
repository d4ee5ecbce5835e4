"""IMDN as the NTIRE 2022 Efficient SR baseline (the AIM 2019 constrained-SR winner).

Paper: Z. Hui, X. Gao, Y. Yang, X. Wang, "Lightweight Image Super-Resolution with Information
Multi-distillation Network", ACM MM 2019. The layout implemented here is the challenge re-implementation
used as the AIM 2020 / NTIRE 2022 reference (KAIR ``IMDN``): 893,936 parameters at ×4, [0, 1] input, keys
``model.0…``.

Layout: ``model.0`` 3×3 head conv → ``model.1`` = a shortcut around (``num_block`` information
multi-distillation blocks + one 3×3 conv) → ``model.2`` conv to ``3·s²`` channels → ``model.3``
PixelShuffle(s). Each block: three conv3×3 + LeakyReLU(0.05) steps that each split off a quarter of the
channels ("distilled") and pass on the rest, a fourth conv3×3 producing the last quarter, concat, a 1×1 fusion
conv and a residual add.

Deviations between the paper and the baseline code, resolved in favour of the released checkpoint:

* The paper's IMDB applies contrast-aware channel attention (CCA) before the 1×1 fusion; the baseline has
  no CCA (its checkpoint holds no CCA weights). ``use_cca=True`` restores the paper's block (adds
  ``cca.conv_du`` keys).
* The paper's network uses 6 blocks (715K params at ×4) and fuses all block outputs; the baseline uses 8
  blocks, a plain long skip around the trunk, and no global feature aggregation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor, nn

from ..layers import RangeScaledNet, activation, conv, make_attention
from .detection import Shapes, count_indexed, has_keys, scale_from_channels
from .registry import Capabilities, Family, ModelConfig, register_family


class IMDBlock(nn.Module):
    """Information multi-distillation block (progressive channel split, then 1×1 fusion and a residual add).

    Splitting keeps a quarter of every step's channels untouched ("distilled") while only the rest is refined
    further, so the block sees several depths at the cost of one conv chain.
    """

    def __init__(self, num_feat: int, distill_rate: float = 0.25, negative_slope: float = 0.05,
                 use_cca: bool = False) -> None:
        super().__init__()
        self.distilled = int(num_feat * distill_rate)
        self.remaining = num_feat - self.distilled
        if self.distilled < 1 or self.remaining < 1:
            raise ValueError(f"distill_rate {distill_rate} leaves nothing to split at num_feat={num_feat}")
        self.conv1 = nn.Sequential(conv(num_feat, num_feat, 3), activation("lrelu", negative_slope))
        self.conv2 = nn.Sequential(conv(self.remaining, num_feat, 3), activation("lrelu", negative_slope))
        self.conv3 = nn.Sequential(conv(self.remaining, num_feat, 3), activation("lrelu", negative_slope))
        self.conv4 = conv(self.remaining, self.distilled, 3)
        self.cca = make_attention("cca" if use_cca else "none", self.distilled * 4)
        self.conv1x1 = conv(self.distilled * 4, num_feat, 1)

    def forward(self, x: Tensor) -> Tensor:
        split = (self.distilled, self.remaining)
        d1, r1 = torch.split(self.conv1(x), split, dim=1)
        d2, r2 = torch.split(self.conv2(r1), split, dim=1)
        d3, r3 = torch.split(self.conv3(r2), split, dim=1)
        d4 = self.conv4(r3)
        return x + self.conv1x1(self.cca(torch.cat((d1, d2, d3, d4), dim=1)))


class ShortcutBlock(nn.Module):
    """``x + sub(x)``; the attribute is called ``sub`` so keys read ``model.1.sub.…`` as in the checkpoint."""

    def __init__(self, sub: nn.Module) -> None:
        super().__init__()
        self.sub = sub

    def forward(self, x: Tensor) -> Tensor:
        return x + self.sub(x)


class IMDN(RangeScaledNet):
    """IMDN (NTIRE 2022 baseline layout); the official weights use [0, 1]."""

    def __init__(self, scale: int = 4, num_feat: int = 64, num_block: int = 8, negative_slope: float = 0.05,
                 distill_rate: float = 0.25, use_cca: bool = False, img_range: float = 1.0) -> None:
        super().__init__(img_range)
        trunk = [IMDBlock(num_feat, distill_rate, negative_slope, use_cca) for _ in range(num_block)]
        trunk.append(conv(num_feat, num_feat, 3))
        self.model = nn.Sequential(
            conv(3, num_feat, 3),
            ShortcutBlock(nn.Sequential(*trunk)),
            conv(num_feat, 3 * scale * scale, 3),
            nn.PixelShuffle(scale),
        )

    def forward_scaled(self, x: Tensor) -> Tensor:
        return self.model(x)

    @staticmethod
    def adjust_capabilities(caps: Capabilities, hparams: Mapping[str, Any]) -> Capabilities:
        """The paper's CCA averages over the whole map, so only the CCA-free baseline tiles exactly."""
        return replace(caps, tile_exact=False) if hparams.get("use_cca") else caps


def detect(s: Shapes) -> ModelConfig | None:
    """``model.0`` head + ``model.1.sub`` trunk; the last ``model.N`` conv's width gives the scale."""
    if not has_keys(s, "model.0.weight", "model.1.sub.0.conv1.0.weight"):
        return None
    nf = s["model.0.weight"][0]
    last = max((k for k in s if re.fullmatch(r"model\.\d+\.weight", k)), key=lambda k: int(k.split(".")[1]))
    return FAMILY.match(scale_from_channels(s[last][0]), {
        "num_feat": nf,
        "num_block": count_indexed(s, "model.1.sub.{i}.conv1.0.weight"),
        "distill_rate": s["model.1.sub.0.conv4.weight"][0] / nf,
        "use_cca": any(".cca." in k for k in s),
    })


FAMILY = register_family(Family(
    name="imdn",
    cls=IMDN,
    paper="Lightweight Image Super-Resolution with Information Multi-distillation Network (ACM MM 2019); "
    "NTIRE 2022 Efficient SR baseline layout",
    variants={"imdn": {}},
    detect=detect,
))
