"""SAFMN as entered in the NTIRE 2023 Efficient SR challenge (team NJUST_R, report §4.17).

SAFMN is Sun et al., "Spatially-Adaptive Feature Modulation for Efficient Image Super-Resolution" (ICCV 2023,
arXiv 2302.13800). The challenge entry is a sped-up variant, and esrkit implements *that* network, following
the authors' NTIRE code (``sunny2109/SAFMN``, ``NTIRE2023_ESR/models/team15_SAFMN.py``) and the layout in
manifest ``zoo2/safmn_ntire2023_x4.json`` (237,000 parameters; the weights are not in esrkit's reference set).
It is not the ICCV model; the report lists what the team changed:

* no LayerNorm inside the blocks; the features after the first conv are normalized once by ConvNeXt V2's
  Global Response Normalization (``norm.gamma``/``norm.beta``, both zero-initialized, so GRN starts as the
  identity);
* no biases, except in the first conv (``to_feat``) and the upsampler conv (``to_img.0``). The report says
  those two convs were trained RepVGG-style; the released file holds them folded, and the branches are not in the
  code, so esrkit has only this deploy form;
* the global skip moves to image space: the output is added to a bilinear ×s upscale of the input
  (``align_corners=False``), and there is no feature-space long skip.

Layout: ``to_feat`` (3×3) → ``norm`` (GRN) → ``feats.0…feats.{n-1}`` → ``to_img`` (3×3 to ``3·s²`` → PixelShuffle)
+ bilinear(input). Block: ``x + SAFM(x)`` then ``x + CCM(x)``. SAFM splits the channels into ``n_levels``
chunks. Chunk 0 gets a depth-wise 3×3 at full resolution. Chunk ``i ≥ 1`` is adaptively max-pooled to
``(h // 2^(i+1), w // 2^(i+1))``, depth-wise 3×3'd and nearest-upsampled back. The NTIRE code pools one octave
further than the ICCV code's ``2^i``. ``aggr`` (1×1) mixes the chunks, and the result gates the input through
GELU. CCM is a 3×3 expansion to ``ffn_scale·dim`` channels, GELU, and a 1×1 back. Activations are
``nn.GELU`` modules, which the challenge's counting tool does not count in FLOPs.

Size limits: the coarsest level pools by ``2^n_levels`` (16 for 4 levels), so smaller inputs would pool to an
empty map; GRN and the adaptive pooling read the whole image, so tiles do not reproduce whole-image output.
fp16/bf16 keep the registry's default (True): there are no weights here to check them. GRN's spatial L2 norm is
the part most likely to overflow fp16 on large inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import InputError
from ..layers import conv, pixelshuffle_block
from .detection import Shapes, count_indexed, has_keys, scale_from_channels
from .registry import Capabilities, Family, ModelConfig, Variant, register_family


class GRN(nn.Module):
    """Global Response Normalization (ConvNeXt V2) on NCHW maps: ``x + γ·(x·N(x)) + β``, where ``N`` is each
    channel's spatial L2 norm divided by its mean over channels."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.zeros(1, dim, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, dim, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        gx = torch.linalg.vector_norm(x, ord=2, dim=(2, 3), keepdim=True)
        nx = gx / (gx.mean(dim=1, keepdim=True) + self.eps)
        return self.gamma * (x * nx) + self.beta + x


class SAFM(nn.Module):
    """Spatially-adaptive feature modulation: multi-scale depth-wise features over channel chunks, aggregated
    and used as a GELU gate on the input."""

    def __init__(self, dim: int, n_levels: int = 4) -> None:
        super().__init__()
        if dim % n_levels:
            raise InputError(f"dim ({dim}) must be divisible by n_levels ({n_levels})")
        chunk = dim // n_levels
        self.n_levels = n_levels
        self.mfr = nn.ModuleList(conv(chunk, chunk, 3, groups=chunk, bias=False) for _ in range(n_levels))
        self.aggr = conv(dim, dim, 1, bias=False)
        self.act = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        levels = []
        for i, chunk in enumerate(x.chunk(self.n_levels, dim=1)):
            if i == 0:
                levels.append(self.mfr[0](chunk))
                continue
            pooled = F.adaptive_max_pool2d(chunk, (h // 2 ** (i + 1), w // 2 ** (i + 1)))
            levels.append(F.interpolate(self.mfr[i](pooled), size=(h, w), mode="nearest"))
        return self.act(self.aggr(torch.cat(levels, dim=1))) * x


class CCM(nn.Module):
    """Convolutional channel mixer: 3×3 expansion, GELU, 1×1 projection (keys ``ccm.0``/``ccm.2``)."""

    def __init__(self, dim: int, ffn_scale: float = 2.0) -> None:
        super().__init__()
        hidden = int(dim * ffn_scale)
        self.ccm = nn.Sequential(conv(dim, hidden, 3, bias=False), nn.GELU(), conv(hidden, dim, 1, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        return self.ccm(x)


class FMM(nn.Module):
    """Feature mixing module (``AttBlock`` in the code): SAFM then CCM, each with a residual, no normalization."""

    def __init__(self, dim: int, ffn_scale: float, n_levels: int) -> None:
        super().__init__()
        self.safm = SAFM(dim, n_levels)
        self.ccm = CCM(dim, ffn_scale)

    def forward(self, x: Tensor) -> Tensor:
        x = self.safm(x) + x
        return self.ccm(x) + x


class SAFMN(nn.Module):
    """The NTIRE 2023 SAFMN (GRN after the first conv, bias-free blocks, image-space bilinear skip)."""

    def __init__(self, scale: int = 4, dim: int = 36, n_blocks: int = 8, ffn_scale: float = 2.0,
                 n_levels: int = 4) -> None:
        super().__init__()
        self.scale = scale
        self.norm = GRN(dim)
        self.to_feat = conv(3, dim, 3)
        self.feats = nn.Sequential(*(FMM(dim, ffn_scale, n_levels) for _ in range(n_blocks)))
        self.to_img = pixelshuffle_block(dim, 3, scale)

    @staticmethod
    def adjust_capabilities(caps: Capabilities, hparams: Mapping[str, Any]) -> Capabilities:
        """The coarsest SAFM level pools by ``2^n_levels``: that is the smallest input side."""
        return replace(caps, min_size=2 ** int(hparams["n_levels"]))

    def forward(self, x: Tensor) -> Tensor:
        skip = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        feat = self.feats(self.norm(self.to_feat(x)))
        return self.to_img(feat) + skip


def detect(s: Shapes) -> ModelConfig | None:
    """``to_feat`` + GRN ``norm.gamma`` + ``feats.{i}.safm.mfr`` blocks. The GRN and the multi-level SAFM keys
    tell it from the AIS 2024 light SAFMN++ (``feats.{i}.conv1``…, no ``norm``)."""
    if not has_keys(s, "norm.gamma", "to_feat.weight", "feats.0.safm.aggr.weight", "feats.0.ccm.ccm.0.weight",
                    "to_img.0.weight"):
        return None
    dim = s["to_feat.weight"][0]
    hparams = {"dim": dim, "n_blocks": count_indexed(s, "feats.{i}.safm.aggr.weight"),
               "ffn_scale": s["feats.0.ccm.ccm.0.weight"][0] / dim,
               "n_levels": count_indexed(s, "feats.0.safm.mfr.{i}.weight")}
    return FAMILY.match(scale_from_channels(s["to_img.0.weight"][0]), hparams)


FAMILY = register_family(Family(
    name="safmn",
    cls=SAFMN,
    paper="Spatially-Adaptive Feature Modulation for Efficient Image Super-Resolution (ICCV 2023)",
    variants={
        "safmn_ntire2023": Variant({}, note="as entered in NTIRE 2023 Efficient SR by team NJUST_R (GRN, no "
                                            "block LayerNorm, image-space skip)"),
    },
    capabilities=Capabilities(min_size=16, tile_exact=False),
    detect=detect,
))
