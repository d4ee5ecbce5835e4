"""Light SAFMN++ (VPEG-S): the AIS 2024 real-time 4K SR entry of team VPEG (NJUST), best fidelity of the challenge.

Sources: the AIS 2024 RTSR survey (§3.3; Table 1: Δ 0.735 dB, 34.2 GMACs, 0.066 M parameters; team Table 3:
0.0662 M parameters, 34.1587 GFLOPs at a 540×960 LR input) and the authors' code ``sunny2109/SAFMN``
(``AIS-RTSR/light_safmnpp_arch.py``, ``SAFMN_VIS24(dim=32, n_blocks=2, ffn_scale=1.5)`` in its ``inference.py``).
The survey's text gives only the idea of the SAFM++ layer (a 3×3 conv for local features, single-scale modulation
on a part of the channels, concat, 1×1 fusion); the order, widths and activations below are the code's.

Layout: 3×3 ``to_feat`` (3 → ``dim``) → ``n_blocks`` blocks ``feats.i`` → + ``to_feat`` output (the only skip)
→ ``to_img`` (3×3 to 3·s², pixel shuffle). No conv has a bias. A block is ``ccm(safm(x))`` with **no residual
inside** (the released code has none; only the long skip around all blocks):

* ``conv1`` (:class:`SimpleSAFM`): a 3×3 ``proj`` splits into two halves; the first is max-pooled to 1/8 of the
  map (adaptive pooling to ``(h // 8, w // 8)``), filtered by a depth-wise 3×3, upsampled back bilinearly and,
  through a GELU, multiplies that same half (the modulation); the other half passes unchanged; the concat goes
  through a GELU and the 1×1 ``out``;
* ``conv2`` (:class:`CCM`): 3×3 to ``dim·ffn_scale`` channels, GELU, 1×1 back.

Consequences: the pooling window depends on the image size (the map is pooled to a fixed fraction of itself), so
the network has image-level context and tiles are not exact, and sides below 8 pixels have nothing to pool
(``min_size`` 8). The official file holds ``params`` and ``params_ema`` (different tensors); the authors'
``inference.py`` loads ``params`` (the manifest's wrapper key), so :attr:`SAFMNPP.checkpoint_key` makes esrkit's
loader take it too instead of its usual ``params_ema``: ``params`` scores the expected Set5/Set14 Y-PSNR
30.40/27.46 dB on bicubic LR, ``params_ema`` 30.43/27.49.

The NTIRE 2023 SAFMN (``models/safmn.py``) shares the idea but not the layers: a multi-level SAFM, a GRN after
the first conv and residuals around SAFM and CCM inside each block; the two checkpoints have disjoint key names
(``feats.i.safm.*`` / ``norm.*`` there, ``feats.i.conv1.*`` here), so their detectors cannot collide. Input range
is [0, 1].
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import InputError
from ..layers import conv
from .detection import Shapes, count_indexed, has_keys, scale_from_channels
from .registry import Capabilities, Family, ModelConfig, register_family

POOL = 8  # the modulation branch works at 1/8 of the feature map


class SimpleSAFM(nn.Module):
    """Single-scale spatially-adaptive feature modulation (the SAFM++ layer of light SAFMN++).

    Half of the ``proj`` output is modulated by a coarse (1/8) max-pooled, depth-wise filtered copy of itself; the
    other half is kept as the local path. ``dim`` must be even.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        half = dim // 2
        self.proj = conv(dim, dim, 3, bias=False)
        self.dwconv = conv(half, half, 3, bias=False, groups=half)
        self.out = conv(dim, dim, 1, bias=False)
        self.act = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        modulated, local = self.proj(x).chunk(2, dim=1)
        coarse = self.dwconv(F.adaptive_max_pool2d(modulated, (h // POOL, w // POOL)))
        gate = self.act(F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False))
        return self.out(self.act(torch.cat([local, gate * modulated], dim=1)))


class CCM(nn.Module):
    """Convolutional channel mixer: 3×3 expansion to ``dim·ffn_scale``, GELU, 1×1 back (keys ``conv.0``,
    ``conv.2``)."""

    def __init__(self, dim: int, ffn_scale: float) -> None:
        super().__init__()
        hidden = int(dim * ffn_scale)
        self.conv = nn.Sequential(conv(dim, hidden, 3, bias=False), nn.GELU(), conv(hidden, dim, 1, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class SAFMPPBlock(nn.Module):
    """One light SAFMN++ block: SAFM++ then CCM, no skip (as released)."""

    def __init__(self, dim: int, ffn_scale: float) -> None:
        super().__init__()
        self.conv1 = SimpleSAFM(dim)
        self.conv2 = CCM(dim, ffn_scale)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2(self.conv1(x))


class SAFMNPP(nn.Module):
    """Light SAFMN++ network; the defaults are the AIS 2024 submission (32 channels, 2 blocks, FFN ×1.5)."""

    # The released file holds both BasicSR weight sets; the authors' inference.py (and so the challenge
    # submission) runs ``params``, so :func:`esrkit.checkpoints.load_checkpoint` takes that one, not ``params_ema``.
    checkpoint_key: ClassVar[str] = "params"

    def __init__(self, scale: int = 4, dim: int = 32, n_blocks: int = 2, ffn_scale: float = 1.5) -> None:
        super().__init__()
        if dim < 2 or dim % 2:
            raise InputError(f"dim must be a positive even number (SAFM++ splits it in halves), not {dim}")
        if n_blocks < 1:
            raise InputError("n_blocks must be at least 1")
        self.to_feat = conv(3, dim, 3, bias=False)
        self.feats = nn.Sequential(*(SAFMPPBlock(dim, ffn_scale) for _ in range(n_blocks)))
        self.to_img = nn.Sequential(conv(dim, 3 * scale * scale, 3, bias=False), nn.PixelShuffle(scale))

    def forward(self, x: Tensor) -> Tensor:
        feat = self.to_feat(x)
        return self.to_img(self.feats(feat) + feat)


def detect(s: Shapes) -> ModelConfig | None:
    """``to_feat`` + ``feats.i.conv1.proj`` / ``conv1.dwconv`` (the single-scale SAFM++) + ``to_img.0``."""
    if not has_keys(s, "to_feat.weight", "feats.0.conv1.proj.weight", "feats.0.conv1.dwconv.weight",
                    "feats.0.conv2.conv.0.weight", "to_img.0.weight"):
        return None
    dim = s["to_feat.weight"][0]
    hidden = s["feats.0.conv2.conv.0.weight"][0]
    ffn_scale = hidden / dim
    if int(dim * ffn_scale) != hidden:
        return None
    hparams = {"dim": dim, "n_blocks": count_indexed(s, "feats.{i}.conv1.proj.weight"), "ffn_scale": ffn_scale}
    return FAMILY.match(scale_from_channels(s["to_img.0.weight"][0]), hparams)


FAMILY = register_family(Family(
    name="safmnpp",
    cls=SAFMNPP,
    paper="Light SAFMN++ (VPEG-S), AIS 2024 Real-Time 4K Super-Resolution of Compressed AVIF Images, team VPEG",
    variants={"light_safmnpp": {}},
    # A ×4-only challenge (540p → 4K); the class builds other scales, but no such model was trained.
    scales=(4,),
    # Half precision keeps fidelity: the official weights score Set5 ×4 Y-PSNR (bicubic LR, AIS crop, CPU) 30.400 dB
    # in fp32, 30.400 in fp16 and 30.385 in bf16 (−0.015).
    capabilities=Capabilities(min_size=POOL, tile_exact=False),
    detect=detect,
    degradation="lanczos+avif",
))
