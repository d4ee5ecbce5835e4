"""NoahESR (NESR) and MobileNoahESR: Huawei Noah's Ark NTIRE 2023 Efficient SR entries (NoahTerminalCV A and B).

Report sections (``seed-ntire2023.md`` §4.8, §4.9): NESR "follows one of the canonical SR architectures" with
**4 residual edge-oriented convolutional blocks (RECB), 48 channels**; a RECB is **3 convolutions followed by
simplified enhanced spatial attention (SESA, 16 channels)**, and **every second RECB has no attention**. Each conv
trains as an ECBSR edge-oriented block (ECB, five parallel paths) and is merged into one 3×3 conv for inference.
MobileNoahESR shares blocks and widths with NESR, then merges its ECBs and **Tucker-decomposes** the convs
(−25–30 % parameters) and fine-tunes. Table 1 (256×256 input): NESR **0.310 M, 19.99 G FLOPs, 68.38 M
activations, 25 convs**; MobileNoahESR **0.209 M, 13.34 G, 118.71 M, 49 convs**. No code or weights are public and
Figs. 14–15 (the network and SESA) did not survive, so the layout below is the canonical reading of the text
(RLFN's layout, the network NESR compares itself with) that reproduces all eight figures exactly:

* ``conv_in`` 3×3 (3→48) → ``recb_1…recb_4`` → 3×3 ``conv_out`` + ``conv_in`` output (the global skip) →
  ``upsampler`` (3×3 conv to ``3·s²``, pixel shuffle); ``conv_in``, ``conv_out`` and the upsampler are plain
  convs, as RLFN's are.
* RECB = RLFN's RLFB with ECB convs: ``conv1``/``conv2``/``conv3`` (3×3 ECBs, each with ECBSR's per-channel
  PReLU), the block input added, a 1×1 ``c5``, then SESA in blocks 1 and 3 only. The PReLUs are what make
  19.99 G (the challenge tool counts their elements; without them 19.95 G) and cost 48 parameters each.
* SESA = ESA without its stride-2 conv and without ``conv_f``: 1×1 squeeze to 16 channels, 7×7/3 max-pool
  *of the squeezed map itself* (84×84 at 256², which is what gives 68.38 M activations), one 3×3 conv,
  bilinear resampling, the squeezed map added back (kept as an identity skip: the figure is lost), 1×1
  expansion, sigmoid gate. The count also fixes ``c5`` in every block: 25 convs = 15 + 4 ``c5`` + 2×3 SESA.
* MobileNoahESR: each of the 12 RECB convs becomes a Tucker-2 factorization — 1×1 (48→32, no bias), 3×3
  (32→32, no bias), 1×1 (32→48, the original bias) — and keeps its PReLU. Rank 32 is what the counts give:
  +2·32 channels of activations per conv (68.38 → 118.71 M), −8,448 MACs per pixel each (19.99 → 13.34 G)
  and 0.209 M parameters; the other convs are not decomposed (49 = 25 + 2·12).

Forms. ``noahesr`` trains with ECBs (train form) and folds into 3×3 convs + PReLU (deploy form, the submitted
NESR). ``mobilenoahesr`` *is* the fine-tuned decomposed network (its ECB stage happened before decomposition, as a
NESR), so it has one form. The report's "adaptive precision control" (−1.5 ms) is a runtime setting, not a layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers import conv, pixelshuffle_block
from ..layers.reparam.ecb import ECB, ecb_activation
from .detection import Shapes, count_indexed, has_keys, scale_from_channels
from .registry import Capabilities, Family, ModelConfig, Variant, register_family


class SESA(nn.Module):
    """Simplified ESA: squeeze, pool the squeezed map, one 3×3 conv, resample, add the squeezed map, expand, gate."""

    def __init__(self, num_feat: int, esa_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, esa_channels, 1)
        self.conv3 = nn.Conv2d(esa_channels, esa_channels, 3, padding=1)
        self.conv4 = nn.Conv2d(esa_channels, num_feat, 1)

    def forward(self, x: Tensor) -> Tensor:
        squeezed = self.conv1(x)
        small = self.conv3(F.max_pool2d(squeezed, kernel_size=7, stride=3))
        small = F.interpolate(small, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return x * torch.sigmoid(self.conv4(small + squeezed))


class TuckerConv(nn.Module):
    """A 3×3 conv as its Tucker-2 factorization (1×1 → 3×3 core → 1×1), then the conv's PReLU.

    Keys ``first.weight``, ``core.weight``, ``last.weight``/``last.bias`` and ``act.weight``: only the last factor
    carries the bias, as when a trained conv is decomposed (the bias is the original conv's).
    """

    def __init__(self, in_channels: int, out_channels: int, rank: int, act: str = "prelu") -> None:
        super().__init__()
        self.first = nn.Conv2d(in_channels, rank, 1, bias=False)
        self.core = nn.Conv2d(rank, rank, 3, padding=1, bias=False)
        self.last = nn.Conv2d(rank, out_channels, 1)
        self.act = ecb_activation(act, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        y = self.last(self.core(self.first(x)))
        return y if self.act is None else self.act(y)


class RECB(nn.Module):
    """Residual edge-oriented convolutional block: three activated 3×3 convs, input added, 1×1 ``c5``, optional
    SESA. The convs are ECBs (train), their folded conv + PReLU (deploy) or Tucker factorizations (mobile)."""

    def __init__(self, num_feat: int, esa_channels: int, attention: bool, tucker_rank: int | None,
                 depth_multiplier: float, act: str) -> None:
        super().__init__()
        for i in (1, 2, 3):
            layer: nn.Module
            if tucker_rank is None:
                layer = ECB(num_feat, num_feat, depth_multiplier, act=act)
            else:
                layer = TuckerConv(num_feat, num_feat, tucker_rank, act)
            self.add_module(f"conv{i}", layer)
        self.c5 = conv(num_feat, num_feat, 1)
        self.sesa = SESA(num_feat, esa_channels) if attention else None

    def forward(self, x: Tensor) -> Tensor:
        out = self.c5(self.conv3(self.conv2(self.conv1(x))) + x)
        return out if self.sesa is None else self.sesa(out)


class NoahESR(nn.Module):
    """NESR / MobileNoahESR. ``tucker_rank`` None builds NESR's ECB convs; an integer the decomposed convs.

    ``attention_every`` 2 puts SESA in blocks 1, 3, …; 1 in every block.
    """

    def __init__(self, scale: int = 4, num_feat: int = 48, num_block: int = 4, esa_channels: int = 16,
                 attention_every: int = 2, tucker_rank: int | None = None, depth_multiplier: float = 2.0,
                 act: str = "prelu") -> None:
        super().__init__()
        if attention_every < 1:
            raise ValueError(f"attention_every must be at least 1, not {attention_every}")
        self.num_block = num_block
        self.conv_in = conv(3, num_feat, 3)
        for i in range(1, num_block + 1):
            self.add_module(f"recb_{i}", RECB(num_feat, esa_channels, (i - 1) % attention_every == 0, tucker_rank,
                                              depth_multiplier, act))
        self.conv_out = conv(num_feat, num_feat, 3)
        self.upsampler = pixelshuffle_block(num_feat, 3, scale)

    def forward(self, x: Tensor) -> Tensor:
        shallow = self.conv_in(x)
        feat = shallow
        for i in range(1, self.num_block + 1):
            feat = getattr(self, f"recb_{i}")(feat)
        return self.upsampler(self.conv_out(feat) + shallow)


def detect(s: Shapes) -> ModelConfig | None:
    """``conv_in`` + ``recb_{i}`` blocks: ECB branches (``conv1.conv1x1_3x3``) are the train form, a bare
    ``conv1.conv3x3`` the folded deploy form, ``conv1.core`` the Tucker-decomposed MobileNoahESR."""
    if not has_keys(s, "conv_in.weight", "recb_1.c5.weight", "conv_out.weight", "upsampler.0.weight"):
        return None
    num_block = count_indexed(s, "recb_{i}.c5.weight")
    with_attention = [i for i in range(1, num_block + 1) if f"recb_{i}.sesa.conv1.weight" in s]
    if not with_attention:
        return None
    every = with_attention[1] - with_attention[0] if len(with_attention) > 1 else num_block
    hparams: dict[str, object] = {"num_feat": s["conv_in.weight"][0], "num_block": num_block,
                                  "esa_channels": s["recb_1.sesa.conv1.weight"][0], "attention_every": every}
    scale = scale_from_channels(s["upsampler.0.weight"][0])
    if "recb_1.conv1.core.weight" in s:
        return FAMILY.match(scale, {**hparams, "tucker_rank": s["recb_1.conv1.core.weight"][0]})
    if "recb_1.conv1.conv1x1_3x3.k0" in s:
        depth = s["recb_1.conv1.conv1x1_3x3.k0"][0] / s["conv_in.weight"][0]
        return FAMILY.match(scale, {**hparams, "depth_multiplier": depth})
    if "recb_1.conv1.conv3x3.weight" in s:
        return FAMILY.match(scale, hparams, "deploy")
    return None


FAMILY = register_family(Family(
    name="noahesr",
    cls=NoahESR,
    paper="NoahESRNet: All You Need is to Optimize Attention (NTIRE 2023 Efficient SR, Huawei Noah's Ark)",
    variants={
        "noahesr": Variant(note="NESR, team NoahTerminalCV A (memory 2nd); no released weights"),
        "mobilenoahesr": Variant({"tucker_rank": 32},
                                 note="MobileNoahESR, team NoahTerminalCV B (memory winner, overall 3rd); "
                                      "no released weights"),
    },
    # SESA pools the whole map 7×7/3 and resamples it to the input size.
    capabilities=Capabilities(min_size=7, tile_exact=False),
    detect=detect,
))
