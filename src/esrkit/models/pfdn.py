"""PFDN, the partial feature distillation network (team KaiBai_Group): NTIRE 2023 Efficient SR overall winner.

Sources: the NTIRE 2023 report (§4.7) and the team's released inference code (``icandle/PlainUSR``,
``models/team08_PFDN.py``; the weights ``team08_PFDN.pth`` are not in esrkit's reference set, only their
layout, manifest ``zoo2/pfdn_ntire2023_x4.json``, 272,224 parameters).

The report describes PFDN as EFDN without its skip connection, built from "partial local feature distillation
blocks" driven by RLFN: only part of the channels of a block's middle features is processed further (channels
are highly similar, as GhostNet argues), and every 3×3 conv trains as FMEN's RRRB, folded away before the last
fine-tuning stage. Block and channel counts are in the report's figures only; the released code fixes them:

* 3×3 ``conv_first`` → ``block1…block4`` → 3×3 ``conv_last`` + ``conv_first`` output → ``tail`` (3×3 conv
  to ``3·s²`` channels → PixelShuffle). Every conv has a bias; no image-level skip; input range [0, 1];
* a block (``PFDB``) is ``attn`` (RLFN's reduced ESA, 16 channels) **first**, then
  ``conv1`` → LeakyReLU(0.05) → ``conv3`` on the first ``partial_channels`` (32 of 48) channels only →
  LeakyReLU, the other 16 passed through → ``conv2`` → LeakyReLU, plus the block input taken *after* the
  attention. The report says PFDN "removes the skip connection" of EFDN; the released code still has this block
  residual and the ``conv_first`` long skip, and esrkit follows the code (the removed skip is presumably one of
  EFDN's, which the report does not name);
* each of ``conv1``/``conv2``/``conv3`` is a module holding ``rep_conv`` (key ``blockN.convM.rep_conv.weight``),
  the authors' deploy form of RRRB. The same LeakyReLU *module* runs three times per block, and the challenge tool
  adds its output elements to FLOPs on every call.

Train form (esrkit's, since the training code is not released): ``rep_conv`` is an
:class:`~esrkit.layers.reparam.rrrb.RRRB` with biases and FMEN's expansion ratio 2, which
:func:`esrkit.models.reparameterize` folds into exactly the released layout. The report's layer-wise
normalized-cross-correlation loss is a training loss and changes no module.

One deliberate difference from the released code: it writes the partial conv's result back into the feature
tensor in place (``x[:, :32] = ...``), which autograd rejects in training (the in-place LeakyReLU and ``conv3``
both saved that tensor); here the processed and passed-through channels are concatenated, the same values.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import InputError
from ..layers import activation, conv, make_attention, pixelshuffle_block
from ..layers.reparam.rrrb import RRRB
from .detection import Shapes, count_indexed, has_keys, scale_from_channels
from .registry import Capabilities, Family, ModelConfig, Variant, register_family


class RepConv3x3(nn.Module):
    """A 3×3 conv slot under the authors' name ``rep_conv``: an RRRB while training, a plain conv once folded
    (:func:`esrkit.models.reparameterize` replaces the RRRB in place, so the keys become ``rep_conv.weight``)."""

    def __init__(self, channels: int, ratio: int) -> None:
        super().__init__()
        self.rep_conv: nn.Module = RRRB(channels, channels, 3, ratio, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.rep_conv(x)


class PFDB(nn.Module):
    """Partial feature distillation block: ESA gate, then a 3×3 chain whose middle conv sees only the first
    ``partial_channels`` channels, with a residual from the gated input."""

    def __init__(self, channels: int, partial_channels: int, esa_channels: int, negative_slope: float,
                 ratio: int) -> None:
        super().__init__()
        self.partial_channels = partial_channels
        self.attn = make_attention("esa_reduced", channels, esa_channels=esa_channels)
        self.conv1 = RepConv3x3(channels, ratio)
        self.conv2 = RepConv3x3(channels, ratio)
        self.conv3 = RepConv3x3(partial_channels, ratio)
        self.relu = activation("lrelu", negative_slope)

    def forward(self, x: Tensor) -> Tensor:
        x = self.attn(x)
        res = x
        x = self.relu(self.conv1(x))
        p = self.partial_channels
        x = torch.cat([self.relu(self.conv3(x[:, :p])), x[:, p:]], dim=1)
        x = self.relu(self.conv2(x))
        return x + res


class PFDN(nn.Module):
    """PFDN network; defaults are the NTIRE 2023 entry (48 channels, 4 blocks, 32 partial channels)."""

    def __init__(self, scale: int = 4, num_feat: int = 48, num_block: int = 4, partial_channels: int = 32,
                 esa_channels: int = 16, negative_slope: float = 0.05, rrrb_ratio: int = 2) -> None:
        super().__init__()
        if not 0 < partial_channels <= num_feat:
            raise InputError(f"partial_channels must be in 1..num_feat ({num_feat}), not {partial_channels}")
        self.num_block = num_block
        self.conv_first = conv(3, num_feat, 3)
        for i in range(1, num_block + 1):
            self.add_module(f"block{i}", PFDB(num_feat, partial_channels, esa_channels, negative_slope, rrrb_ratio))
        self.conv_last = conv(num_feat, num_feat, 3)
        self.tail = pixelshuffle_block(num_feat, 3, scale)

    def forward(self, x: Tensor) -> Tensor:
        shallow = self.conv_first(x)
        feat = shallow
        for i in range(1, self.num_block + 1):
            feat = getattr(self, f"block{i}")(feat)
        return self.tail(self.conv_last(feat) + shallow)


def detect(s: Shapes) -> ModelConfig | None:
    """``conv_first`` + ``block{i}`` with ``attn`` and ``convM.rep_conv``; ``rep_conv.expand_conv`` marks the
    RRRB train form, a bare ``rep_conv.weight`` the released deploy form."""
    if not has_keys(s, "conv_first.weight", "block1.attn.conv1.weight", "conv_last.weight", "tail.0.weight"):
        return None
    train = "block1.conv1.rep_conv.expand_conv.weight" in s
    if train:
        partial = s["block1.conv3.rep_conv.reduce_conv.weight"][0]
        extra = {"rrrb_ratio": s["block1.conv1.rep_conv.expand_conv.weight"][0] // s["conv_first.weight"][0]}
    elif has_keys(s, "block1.conv1.rep_conv.weight", "block1.conv3.rep_conv.weight"):
        partial, extra = s["block1.conv3.rep_conv.weight"][0], {}
    else:
        return None
    hparams = {"num_feat": s["conv_first.weight"][0], "num_block": count_indexed(s, "block{i}.attn.conv1.weight"),
               "partial_channels": partial, "esa_channels": s["block1.attn.conv1.weight"][0], **extra}
    return FAMILY.match(scale_from_channels(s["tail.0.weight"][0]), hparams, "train" if train else "deploy")


FAMILY = register_family(Family(
    name="pfdn",
    cls=PFDN,
    paper="Partial Feature Distillation Network, in NTIRE 2023 Challenge on Efficient Super-Resolution: Methods and "
          "Results (CVPRW 2023), §4.7",
    variants={"pfdn": Variant({}, note="team KaiBai_Group, NTIRE 2023 Efficient SR overall winner")},
    capabilities=Capabilities(min_size=15, tile_exact=False),  # RLFN's reduced ESA: 15 px minimum, global map
    detect=detect,
))
