"""MSRResNet, the reference baseline of the AIM 2020 Efficient SR challenge.

Paper: K. Zhang, M. Danelljan, Y. Li, R. Timofte et al., "AIM 2020 Challenge on Efficient
Super-Resolution: Methods and Results", ECCV Workshops 2020 (the baseline is the "modified SRResNet" of
ESRGAN, Wang et al. 2018, as distributed in KAIR / ``znsc/MSRResNet``). 1,517,571 parameters at ×4,
[0, 1] input.

Layout: ``conv_first`` → LeakyReLU(0.1) → 16 residual blocks (conv-ReLU-conv + identity, no BN) in
``recon_trunk`` → upsampling (×4: two conv→PixelShuffle(2)→LeakyReLU stages ``upconv1``/``upconv2``;
×2 and ×3: one stage ``upconv1``) → ``HRconv`` → LeakyReLU → ``conv_last``, plus the bilinearly upsampled
input as a global skip. Key names follow the released ``MSRResNet`` checkpoints.

Deviations between the report's prose and the code, resolved in favour of the code (that is what the released
weights were trained with):

* The report says the residual blocks have a Leaky ReLU between their convs; the code uses a plain ReLU there
  (LeakyReLU, slope 0.1, is used only outside the trunk).
* The report describes the upsampler as "PixelShuffle → Conv → Leaky ReLU"; the code convolves first
  (64 → 256 channels), then shuffles, then applies the activation.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ..layers import RangeScaledNet, activation, conv
from .detection import Shapes, count_indexed, has_keys
from .registry import Family, ModelConfig, register_family


class ResidualBlockNoBN(nn.Module):
    """``x + conv2(relu(conv1(x)))``: the SRResNet block without batch norm (BN hurts PSNR-oriented SR)."""

    def __init__(self, num_feat: int) -> None:
        super().__init__()
        self.conv1 = conv(num_feat, num_feat, 3)
        self.conv2 = conv(num_feat, num_feat, 3)

    def forward(self, x: Tensor) -> Tensor:
        # Functional ReLU as in the official block: the challenges' FLOP counter sees only activation *modules*,
        # so a module here would add 67 M MACs and miss the published 166.36 G.
        return x + self.conv2(F.relu(self.conv1(x)))


class MSRResNet(RangeScaledNet):
    """Modified SRResNet with a bilinear global skip (AIM 2020 baseline); official weights use [0, 1]."""

    def __init__(self, scale: int = 4, num_feat: int = 64, num_block: int = 16, img_range: float = 1.0) -> None:
        super().__init__(img_range)
        if scale not in (2, 3, 4):
            raise ValueError(f"MSRResNet supports scales 2, 3 and 4, not {scale}")
        self.scale = scale
        self.conv_first = conv(3, num_feat, 3)
        self.recon_trunk = nn.Sequential(*(ResidualBlockNoBN(num_feat) for _ in range(num_block)))
        # ×4 is two ×2 stages (cheaper than one 16× channel expansion); ×2/×3 use a single stage.
        stage_factor = 3 if scale == 3 else 2
        self.upconv1 = conv(num_feat, num_feat * stage_factor**2, 3)
        if scale == 4:
            self.upconv2 = conv(num_feat, num_feat * 4, 3)
        self.pixel_shuffle = nn.PixelShuffle(stage_factor)
        self.HRconv = conv(num_feat, num_feat, 3)
        self.conv_last = conv(num_feat, 3, 3)
        self.lrelu = activation("lrelu", negative_slope=0.1)

    def forward_scaled(self, x: Tensor) -> Tensor:
        feat = self.recon_trunk(self.lrelu(self.conv_first(x)))
        feat = self.lrelu(self.pixel_shuffle(self.upconv1(feat)))
        if self.scale == 4:
            feat = self.lrelu(self.pixel_shuffle(self.upconv2(feat)))
        out = self.conv_last(self.lrelu(self.HRconv(feat)))
        return out + F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)


def detect(s: Shapes) -> ModelConfig | None:
    """``conv_first`` + ``recon_trunk``; ×4 has ``upconv2``, else ``upconv1``'s width gives ×2 (4·nf) or ×3."""
    if not has_keys(s, "conv_first.weight", "recon_trunk.0.conv1.weight"):
        return None
    nf = s["conv_first.weight"][0]
    scale = 4 if "upconv2.weight" in s else {4 * nf: 2, 9 * nf: 3}.get(s["upconv1.weight"][0])
    return FAMILY.match(scale, {"num_feat": nf, "num_block": count_indexed(s, "recon_trunk.{i}.conv1.weight")})


FAMILY = register_family(Family(
    name="msrresnet",
    cls=MSRResNet,
    paper="AIM 2020 Challenge on Efficient Super-Resolution: Methods and Results (ECCVW 2020), baseline",
    variants={"msrresnet": {}},
    detect=detect,
))
