"""RepTCN, team CameraAI's three-conv network (AIS 2024 real-time 4K SR of AVIF images, §3.1 "Simple Baselines").

Survey text (``seed-ais2024.md`` §4.1a): **three conv layers, each without bias, a ReLU between every two**;
during training the **middle conv is a RepBlock** (citing RepVGG and RepRFN), re-parameterized into one conv
for inference. Table 1: **0.010 M parameters, 5.02 GMACs** (the challenge's 960×540 LR input), Δ +0.355 dB over
Lanczos. The channel count and the upsampling operator were only in Fig. 2, which did not survive; no code or
weights are public.

Reading (the one that reproduces the table): ``conv_head`` 3×3 (3→16) → ReLU → ``conv_body`` 3×3 (16→16, the
RepBlock) → ReLU → ``conv_tail`` 3×3 (16→3·s²) → PixelShuffle(s). Width 16 gives 9,648 parameters (0.010 M;
24 channels would be 0.016 M) and 9,648 MACs + 2·16 ReLU elements per LR pixel, i.e. 5.018 G at 960×540 — the
5.02 G of Table 1, counted the challenge way (ReLU modules included).

Train form: the RepBlock is a RepVGG-style :class:`~esrkit.layers.reparam.repconv.RepConv` (3×3 + 1×1 +
identity) *without BatchNorm and without biases*, so it folds into exactly the bias-free 3×3 of the inference
model. The authors' schedule differs in one respect this cannot reproduce: they trained the RepBlock with
biases (stage 1), trained the folded net with biases (stage 2), and only then removed every bias and fine-tuned
(stage 3); the bias-free block is the train form whose fold *is* their final layout.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..layers import conv
from ..layers.reparam.repconv import RepConv
from .detection import Shapes, scale_from_channels
from .registry import Family, ModelConfig, Variant, register_family


class RepTCN(nn.Module):
    """RepTCN; ``channels`` is the width of the two hidden layers (16 for the challenge entry)."""

    def __init__(self, scale: int = 4, channels: int = 16) -> None:
        super().__init__()
        self.conv_head = conv(3, channels, 3, bias=False)
        self.conv_body = RepConv(channels, channels, 3, one_by_one=True, identity=True, bn=False, bias=False)
        self.conv_tail = conv(channels, 3 * scale * scale, 3, bias=False)
        self.act1 = nn.ReLU(inplace=True)
        self.act2 = nn.ReLU(inplace=True)
        self.upsample = nn.PixelShuffle(scale)

    def forward(self, x: Tensor) -> Tensor:
        return self.upsample(self.conv_tail(self.act2(self.conv_body(self.act1(self.conv_head(x))))))


_TRAIN_KEYS = {"conv_head.weight", "conv_body.rbr_dense.conv.weight", "conv_body.rbr_1x1.conv.weight",
               "conv_tail.weight"}
_DEPLOY_KEYS = {"conv_head.weight", "conv_body.weight", "conv_tail.weight"}


def detect(s: Shapes) -> ModelConfig | None:
    """Exactly the three bias-free convs ``conv_head``/``conv_body``/``conv_tail``; the middle one's RepConv
    branches mark the train form."""
    keys = set(s)
    if keys not in (_TRAIN_KEYS, _DEPLOY_KEYS) or s["conv_head.weight"][1] != 3:
        return None
    form = "train" if keys == _TRAIN_KEYS else "deploy"
    return FAMILY.match(scale_from_channels(s["conv_tail.weight"][0]), {"channels": s["conv_head.weight"][0]}, form)


FAMILY = register_family(Family(
    name="reptcn",
    cls=RepTCN,
    paper="RepTCN, team CameraAI, AIS 2024 Real-Time 4K Super-Resolution of Compressed AVIF Images (CVPRW 2024)",
    variants={"reptcn": Variant(note="AIS 2024 RTSR entry (§3.1); no released weights")},
    scales=(4,),  # the challenge is ×4 only
    detect=detect,
    degradation="lanczos+avif",
))
