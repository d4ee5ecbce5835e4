"""Lanczos++, team ZXVIP's (ZTE) ultra-lightweight network (AIS 2024 real-time 4K SR of AVIF images, §3.2).

Survey text (``seed-ais2024.md`` §4.2): **PixelShuffle-style 3× down-sampling** of the LR input (space-to-depth,
3 → 27 channels), a **RepBlock** that trains as *1×1 conv expanding the channels ×4 → 3×3 conv → 1×1 conv to the
output channels, plus a 1×1 residual branch* and merges into **one standard 3×3 conv**, **no conv biases**, a
**1×1 instead of 3×3 reconstruction conv**, and a **PixelShuffle ×12** up-sampling (3× back, then ×4). Table 1:
**0.022 M parameters, 1.25 GMACs**, 0.399 ms (the fastest entry). The network configuration came from a NAS
and its result was only in Fig. 4; no code or weights are public.

Reading (the one that reproduces the table): ``PixelUnshuffle(3)`` → ``rep_block`` (27→32; 3×3 at inference)
→ ReLU → ``recon`` 1×1 (32→3·(3s)²) → ``PixelShuffle(3s)``. That is 21,600 parameters (0.022 M) and, at the
challenge's 960×540 LR (320×180 after the unshuffle), 21,600 MACs + 32 ReLU elements per position = 1.246 G
(1.25 G, counted the challenge way). A second 3×3 layer at any width, or another width, misses one of the two
figures; the activation (a counted ReLU module; the text names none) is what makes 1.25 rather than 1.24.

RepBlock details the text leaves open: the expanded width is 4 × the *input* channels (108) and the 3×3 keeps
it; every branch is bias-free (the authors remove biases in their second training stage), so the fold is exact,
borders included, and lands on the bias-free 3×3 of the inference model. The bare name suggests a Lanczos skip
connection, but the text describes none, so there is none.

LR sides must be multiples of 3 (the unshuffle); 540 and 960 are.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..layers import conv
from ..layers.reparam.algebra import (
    FOLD_DTYPE,
    conv_params,
    fuse_sequential_1x1_kxk,
    fuse_sequential_kxk_1x1,
    sum_branches,
    to_conv2d,
)
from .detection import Shapes, scale_from_channels
from .registry import Capabilities, Family, ModelConfig, Variant, register_family


class ZTERepBlock(nn.Module):
    """Lanczos++'s train-time block: ``squeeze(conv3x3(expand(x))) + skip(x)``, all bias-free.

    :meth:`fused` returns the single bias-free 3×3 conv it equals: a bias-free 1×1 commutes with zero padding, so
    ``W[o, i] = Σ_{n, m} S[o, n] · K[n, m] · E[m, i]`` plus the 1×1 skip at the centre tap, exactly (the
    algebra's sequential 1×1→k×k and k×k→1×1 folds, then a parallel sum).
    """

    def __init__(self, in_channels: int, out_channels: int, expand: int = 4) -> None:
        super().__init__()
        mid = in_channels * expand
        self.expand = conv(in_channels, mid, 1, bias=False)
        self.conv3x3 = conv(mid, mid, 3, bias=False)
        self.squeeze = conv(mid, out_channels, 1, bias=False)
        self.skip = conv(in_channels, out_channels, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.squeeze(self.conv3x3(self.expand(x))) + self.skip(x)

    def fused(self) -> nn.Conv2d:
        dtype = self.conv3x3.weight.dtype
        chain = fuse_sequential_kxk_1x1(
            fuse_sequential_1x1_kxk(conv_params(self.expand, FOLD_DTYPE), conv_params(self.conv3x3, FOLD_DTYPE)),
            conv_params(self.squeeze, FOLD_DTYPE))
        kernel = sum_branches(chain, conv_params(self.skip, FOLD_DTYPE))
        out = to_conv2d(kernel, bias=False, dtype=dtype)
        return out.to(self.conv3x3.weight.device).train(self.training)


class LanczosPP(nn.Module):
    """Lanczos++; defaults are the reading above (unshuffle 3, one 32-channel RepBlock, ReLU, 1×1 recon)."""

    def __init__(self, scale: int = 4, down: int = 3, channels: int = 32, expand: int = 4) -> None:
        super().__init__()
        self.unshuffle = nn.PixelUnshuffle(down)
        self.rep_block = ZTERepBlock(3 * down * down, channels, expand)
        self.act = nn.ReLU(inplace=True)
        self.recon = conv(channels, 3 * (down * scale) ** 2, 1, bias=False)
        self.shuffle = nn.PixelShuffle(down * scale)

    @staticmethod
    def adjust_capabilities(caps: Capabilities, hparams: dict) -> Capabilities:
        """The LR size multiple is the unshuffle factor."""
        return Capabilities(caps.min_size, int(hparams["down"]), caps.tile_exact, caps.fp16, caps.bf16)

    def forward(self, x: Tensor) -> Tensor:
        return self.shuffle(self.recon(self.act(self.rep_block(self.unshuffle(x)))))


_TRAIN_KEYS = {"rep_block.expand.weight", "rep_block.conv3x3.weight", "rep_block.squeeze.weight",
               "rep_block.skip.weight", "recon.weight"}
_DEPLOY_KEYS = {"rep_block.weight", "recon.weight"}


def detect(s: Shapes) -> ModelConfig | None:
    """Exactly a ``rep_block`` (branches: train; one 3×3: deploy) and a 1×1 ``recon``; the input width 3·d² gives
    the unshuffle factor d and the output width 3·(d·s)² the scale."""
    keys = set(s)
    if keys not in (_TRAIN_KEYS, _DEPLOY_KEYS) or s["recon.weight"][2:] != (1, 1):
        return None
    train = keys == _TRAIN_KEYS
    first = s["rep_block.skip.weight" if train else "rep_block.weight"]
    down = scale_from_channels(first[1])
    total = scale_from_channels(s["recon.weight"][0])
    if down is None or total is None or total % down:
        return None
    hparams: dict[str, int] = {"down": down, "channels": first[0]}
    if train:
        hparams["expand"] = s["rep_block.expand.weight"][0] // first[1]
    return FAMILY.match(total // down, hparams, "train" if train else "deploy")


FAMILY = register_family(Family(
    name="lanczospp",
    cls=LanczosPP,
    paper="Lanczos++, team ZXVIP (ZTE), AIS 2024 Real-Time 4K Super-Resolution of Compressed AVIF Images "
          "(CVPRW 2024)",
    variants={"lanczospp": Variant(note="AIS 2024 RTSR entry (§3.2), fastest runtime; no released weights")},
    scales=(4,),
    capabilities=Capabilities(size_multiple=3),
    detect=detect,
    degradation="lanczos+avif",
))
