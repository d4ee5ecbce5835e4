"""Bicubic++ (NTIRE 2023 Real-Time SR challenge, track 2 ×3 winner; team ASELSAN).

Paper: B. B. Bilecen, M. Ayazoglu, "Bicubic++: Slim, Slimmer, Slimmest — Designing an Industry-Grade
Super-Resolution Network", CVPR Workshops 2023 (arXiv 2305.02126). The AIS 2024 survey cites it only as a
reference point (team ZXVIP's Table 2: Bicubic++ 22.92 dB on their 40-image AVIF validation set, ``seed-ais2024.md``
§2 and §4.2); neither seed gives its parameters or MACs, so the layer facts come from the authors' public code
(``aselsan-research-imaging-team/bicubic-plusplus``, ``models/SR_models.py``), whose key names are kept.

Layout (every conv bias-free: the paper removes biases because they cost runtime for little PSNR): a stride-2
3×3 ``conv0`` (3→32) learns a half-resolution, "reversibly downgraded" representation first, so the whole net
runs at half the LR size; LeakyReLU(0.1) → ``conv1`` → LeakyReLU → ``conv2`` → LeakyReLU, plus the ``conv0``
features (one skip) → 3×3 ``conv_out`` to ``3·(2s)²`` channels → PixelShuffle(2s). At the public ×3 setting that
is 50,400 parameters.

Weights: the authors released ×3 weights (``pretrained/bicubic_pp_x3.pth``, trained on bicubic ×3 LR with JPEG
q=90, the NTIRE 2023 RTSR degradation); none are in this project's reference set, so ``degradation`` records
that training LR, and ×2/×4 are the same design at other scales (the ×4 build is what ZXVIP compared on AVIF).
LR sides must be even: ``conv0`` halves them and the pixel shuffle multiplies by ``2s``.
"""

from __future__ import annotations

from torch import Tensor, nn

from .detection import Shapes, scale_from_channels
from .registry import Capabilities, Family, ModelConfig, Variant, register_family


class BicubicPP(nn.Module):
    """Bicubic++; defaults are the authors' (32 channels, LeakyReLU slope 0.1)."""

    def __init__(self, scale: int = 3, num_feat: int = 32, negative_slope: float = 0.1) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(3, num_feat, 3, stride=2, padding=1, bias=False)
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, padding=1, bias=False)
        self.conv_out = nn.Conv2d(num_feat, 3 * (2 * scale) ** 2, 3, padding=1, bias=False)
        self.depth_to_space = nn.PixelShuffle(2 * scale)
        self.act = nn.LeakyReLU(negative_slope, inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        x0 = self.act(self.conv0(x))
        x2 = self.act(self.conv2(self.act(self.conv1(x0)))) + x0
        return self.depth_to_space(self.conv_out(x2))


_KEYS = {"conv0.weight", "conv1.weight", "conv2.weight", "conv_out.weight"}


def detect(s: Shapes) -> ModelConfig | None:
    """Exactly four bias-free 3×3 convs ``conv0``/``conv1``/``conv2``/``conv_out`` from an RGB input; the
    output width ``3·(2s)²`` gives the scale."""
    if set(s) != _KEYS or s["conv0.weight"][1:] != (3, 3, 3):
        return None
    double = scale_from_channels(s["conv_out.weight"][0])
    if double is None or double % 2:
        return None
    return FAMILY.match(double // 2, {"num_feat": s["conv0.weight"][0]})


FAMILY = register_family(Family(
    name="bicubicpp",
    cls=BicubicPP,
    paper="Bicubic++: Slim, Slimmer, Slimmest - Designing an Industry-Grade Super-Resolution Network (CVPRW 2023)",
    variants={"bicubicpp": Variant(note="NTIRE 2023 RTSR track 2 (×3) winner; AIS 2024 reference baseline")},
    scales=(2, 3, 4),
    capabilities=Capabilities(size_multiple=2),
    detect=detect,
    degradation="bicubic+jpeg",
))
