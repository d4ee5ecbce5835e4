"""SPAN, the swift parameter-free attention network (Xiaomi; NTIRE 2024 Efficient SR winner, team XiaomiMM).

Paper: C. Wan, H. Yu, Z. Li, Y. Chen, Y. Zou, Y. Liu, X. Yin, K. Zuo, "Swift Parameter-free Attention Network for
Efficient Super-Resolution", CVPR Workshops 2024 (arXiv 2311.12770). Code: ``hongyuanyu/SPAN``
(``basicsr/archs/span_arch.py``); the NTIRE 2024 entry: ``Amazingren/NTIRE2024_ESR`` ``models/team38_SPAN.py``
with ``model_zoo/team38_span_ch28_slim.pth``.

The attention has no parameters: a block's conv output ``H`` gates itself through an activation symmetric about
the origin, ``V = sigmoid(H) − ½``, and the block returns ``(x + H) · V``. No pooling, no extra convs, so SPAN is
fully convolutional (tiles are exact) and fast.

Layout (keys as in the authors' checkpoints; every 3×3 is a :class:`~esrkit.layers.reparam.conv3xc.Conv3XC`,
folded to ``*.eval_conv`` in the deploy form):

* ``conv_1``: 3 → ``num_feat`` (no activation after it);
* ``block_1`` … ``block_6`` (SPAB): ``c1_r`` → SiLU → ``c2_r`` → SiLU → ``c3_r`` = ``H``; out ``(x + H)·V``;
* ``conv_cat`` (1×1, 4·``num_feat`` → ``num_feat``) over ``[conv_1 out, conv_2(block_6 out), block_1 out,
  block_6's c1_r output]`` → ``upsampler`` (3×3 to ``3·s²`` then PixelShuffle).

Where the written description (the AIS 2024 survey's §3.8 equations, after the SPAN paper) and the code differ,
this follows the code (it trained the released weights):

* the description writes ``O₀ = σ(W₀ ⊗ I)``; the code applies no activation after ``conv_1``;
* the description's fusion is ``Concat(O₀, O₁, O₅, W_f1 ⊗ O₆)``; the code's third and fourth inputs are block
  1's output and the *pre-activation* output of block 6's first conv (the survey's text also says "2
  consecutive SPABs" while its own equation needs six: the code has six);
* the input is mean-shifted and scaled, ``(x − rgb_mean)·img_range`` with DIV2K's mean (0.4488, 0.4371,
  0.4040) and ``img_range`` 255, but the output is **not** rescaled back: the network learned to emit [0, 1]
  directly. So ``img_range`` here states the input scale only (the released weights need 255; the NTIRE 2024
  test harness runs the 28-channel entry with the class default 255 too).

Variants and their degradation:

* ``span``: the paper's 48-channel model (the code's ``feature_channels`` default), ×2/×3/×4 (the code takes
  any upscale). The paper reports it on the standard bicubic benchmarks, so ``bicubic``;
* ``span_ch28``: the NTIRE 2024 Efficient SR entry, 28 channels, ×4 (150,688 parameters in deploy form; its
  weights are released in deploy form only). NTIRE 2024 ESR is bicubic ×4, so ``bicubic`` too.

The AIS 2024 real-time 4K entry of the same team ("SPANR", 0.026 M parameters, trained on compressed video
frames) is not registered: its figure is lost from the survey text, the text and equations disagree (2 vs 6
blocks), and with this head and tail no integer width of either a 6-block or a 2-block SPAN rounds to 0.026 M
(6 blocks: 22,348 at 10 channels, 26,503 at 11; 2 blocks: 24,688 at 16, 27,367 at 17), so its layout is not
known.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..layers import conv, pixelshuffle_block
from ..layers.reparam.conv3xc import Conv3XC
from .detection import Shapes, count_indexed, has_keys, scale_from_channels
from .registry import Family, ModelConfig, Variant, register_family

# DIV2K's RGB mean, subtracted before scaling (the official default; not a hyper-parameter of any variant).
RGB_MEAN = (0.4488, 0.4371, 0.4040)
NUM_BLOCKS = 6  # the fusion reads blocks 1 and 6 by position, so depth is fixed by the architecture


class SPAB(nn.Module):
    """Swift parameter-free attention block: three 3×3 convs, SiLU between them, self-gated residual."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.c1_r = Conv3XC(channels, channels)
        self.c2_r = Conv3XC(channels, channels)
        self.c3_r = Conv3XC(channels, channels)
        self.act = nn.SiLU(inplace=True)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(block output, ``c1_r`` output before its activation); the network's fusion reads the latter."""
        first = self.c1_r(x)
        h = self.c3_r(self.act(self.c2_r(self.act(first))))
        return (x + h) * (torch.sigmoid(h) - 0.5), first


class SPAN(nn.Module):
    """SPAN network (train form: Conv3XC everywhere; :func:`esrkit.models.reparameterize` folds them)."""

    def __init__(self, scale: int = 4, num_feat: int = 48, img_range: float = 255.0) -> None:
        super().__init__()
        self.img_range = float(img_range)
        self.register_buffer("mean", torch.tensor(RGB_MEAN).view(1, 3, 1, 1), persistent=False)
        self.conv_1: nn.Module = Conv3XC(3, num_feat)
        for i in range(1, NUM_BLOCKS + 1):
            self.add_module(f"block_{i}", SPAB(num_feat))
        self.conv_cat = conv(4 * num_feat, num_feat, 1)
        self.conv_2: nn.Module = Conv3XC(num_feat, num_feat)
        self.upsampler = pixelshuffle_block(num_feat, 3, scale)

    def forward(self, x: Tensor) -> Tensor:
        shallow = self.conv_1((x - self.mean) * self.img_range)
        feat, outputs = shallow, []
        for i in range(1, NUM_BLOCKS + 1):
            feat, first = getattr(self, f"block_{i}")(feat)
            outputs.append((feat, first))
        fused = self.conv_cat(torch.cat([shallow, self.conv_2(feat), outputs[0][0], outputs[-1][1]], dim=1))
        return self.upsampler(fused)  # already [0, 1]: the official network does not undo the input scaling


def detect(s: Shapes) -> ModelConfig | None:
    """``conv_1`` + ``block_{1..6}.c1_r`` as Conv3XC (``sk``/``conv.N`` branches: train form) or as its folded
    ``eval_conv`` (deploy form), ``conv_cat`` and a pixel-shuffle ``upsampler``."""
    if not has_keys(s, "conv_1.eval_conv.weight", "block_1.c1_r.eval_conv.weight", "conv_cat.weight",
                    "upsampler.0.weight"):
        return None
    if count_indexed(s, "block_{i}.c1_r.eval_conv.weight") != NUM_BLOCKS:
        return None
    form = "train" if "conv_1.sk.weight" in s else "deploy"
    return FAMILY.match(scale_from_channels(s["upsampler.0.weight"][0]),
                        {"num_feat": s["conv_1.eval_conv.weight"][0]}, form)


FAMILY = register_family(Family(
    name="span",
    cls=SPAN,
    paper="Swift Parameter-free Attention Network for Efficient Super-Resolution (CVPRW 2024)",
    variants={
        "span": {},
        "span_ch28": Variant({"num_feat": 28}, scales=(4,),
                             note="NTIRE 2024 Efficient SR winner (team XiaomiMM), 28 channels"),
    },
    detect=detect,
))

