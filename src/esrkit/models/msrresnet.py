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

from .blocks import activation, conv
from .registry import register_model


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


class MSRResNet(nn.Module):
    """Modified SRResNet with a bilinear global skip (AIM 2020 baseline).

    ``img_range`` multiplies the [0, 1] input before the network and divides the output after it, so weights
    trained on another pixel range can be used unchanged; the official weights use 1.
    """

    def __init__(self, scale: int = 4, num_feat: int = 64, num_block: int = 16,
                 img_range: float = 1.0) -> None:
        super().__init__()
        if scale not in (2, 3, 4):
            raise ValueError(f"MSRResNet supports scales 2, 3 and 4, not {scale}")
        self.scale = scale
        self.img_range = float(img_range)
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

    def forward(self, x: Tensor) -> Tensor:
        if self.img_range != 1.0:
            x = x * self.img_range
        feat = self.recon_trunk(self.lrelu(self.conv_first(x)))
        feat = self.lrelu(self.pixel_shuffle(self.upconv1(feat)))
        if self.scale == 4:
            feat = self.lrelu(self.pixel_shuffle(self.upconv2(feat)))
        out = self.conv_last(self.lrelu(self.HRconv(feat)))
        out = out + F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        if self.img_range != 1.0:
            out = out / self.img_range
        return out


@register_model(
    "msrresnet",
    family="msrresnet",
    paper="AIM 2020 Challenge on Efficient Super-Resolution: Methods and Results (ECCVW 2020), baseline",
    defaults={"num_feat": 64, "num_block": 16, "img_range": 1.0},
    scales=(2, 3, 4),
    input_range=1.0,
    description="MSRResNet: 16 residual blocks, 64 channels, bilinear global skip (AIM 2020 baseline)",
)
def msrresnet(scale: int, num_feat: int = 64, num_block: int = 16, img_range: float = 1.0) -> nn.Module:
    """MSRResNet, the AIM 2020 Efficient SR baseline."""
    return MSRResNet(scale=scale, num_feat=num_feat, num_block=num_block, img_range=img_range)
