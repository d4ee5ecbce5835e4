"""ECBSR: edge-oriented convolution block network for real-time SR on mobile devices.

Paper: X. Zhang, H. Zeng, L. Zhang, "Edge-oriented Convolution Block for Real-time Super Resolution on Mobile
Devices", ACM Multimedia 2021. Official code: ``xindongzhang/ECBSR`` (``models/ecbsr.py``, ``models/ecb.py``,
``models/plainsr.py``, ``configs/*.yml``). ECB is the block several AIS 2024 real-time entries build on
(PixelArtAI, ANUNet, RESR, the China Mobile teams, MegastudyEdu's ETDS variant; ``docs/notes/seed-ais2024.md``
§4.1b, §4.6, §4.7, §4.10, §4.11).

Layout (``backbone`` is one ``nn.Sequential``, so keys are ``backbone.{i}.…``): an ECB from ``colors`` to C
channels, M ECBs at C channels, and an ECB from C to ``colors·s²`` channels with no activation; the input is added
to every group of s² output channels (an image-level residual that the pixel shuffle turns into a nearest-
neighbour upscale of the input), then ``PixelShuffle(s)``. The other ECBs are followed by PReLU with one slope per
channel. Train form: :class:`~esrkit.layers.reparam.ecb.ECB` blocks; deploy form (:func:`esrkit.models.reparameterize`):
each becomes a 3×3 conv + the same activation, exactly the official ``PlainSR`` keys ``backbone.{i}.conv3x3.*`` and
``backbone.{i}.act.weight``.

Variants (M blocks, C channels): ``ecbsr_m4c8``, ``ecbsr_m4c16``, ``ecbsr_m10c32``, ``ecbsr_m16c64``, at ×2/×3/×4.
Deploy parameters, with k = ``colors`` and PReLU slopes counted: ``(9kC + 2C) + M·(9C² + 2C) + (9C + 1)·k·s²``;
M16C64 (k = 1) has 594,884 at ×2 and 601,808 at ×4, where the RLFN paper's Table 1 lists ECBSR with 596K (×2)
and 603K (×4) (``docs/notes/seed-rlfn.md``): 0.19 % and 0.20 % apart. The train form adds per ECB (``in`` → ``out``
channels) the expand-squeeze path (``2·out·in + 2·out + 18·out² + out`` with ``depth_multiplier`` 2) and three edge
paths (``out·in + 3·out`` each).

Where paper, code and esrkit's conventions meet — resolved as follows:

* **One colour channel.** ECBSR is trained and tested on the Y channel (README: "trained and tested with
  colors=1"; every config has ``colors: 1``; ``datas/div2k.py`` takes Y of ``skimage.color.rgb2ycbcr``, i.e.
  BT.601 Y in [16, 235], on the 0..255 scale, with no division by 255). The published sizes are those of the
  one-channel network (with ``colors=3`` M16C64 would have 621K at ×4). esrkit models take and return RGB in
  [0, 1], so with ``colors=1`` (the default) the model converts RGB to YCbCr (MATLAB ``rgb2ycbcr``'s BT.601
  coefficients, as :mod:`esrkit.metrics`), super-resolves Y with the network on the 0..255 scale
  (``img_range=255``), upscales Cb and Cr with MATLAB bicubic (:func:`esrkit.data.resize.imresize`) and converts
  back. The official code trains and scores Y only and has no chroma path, so the chroma choice is esrkit's.
  ``colors=3`` is the plain RGB network of BasicSR's ``train_ECBSR_x4_m4c16_prelu_RGB.yml`` (BasicSR works on
  [0, 1] pixels, so its weights need ``img_range=1``).
* **The RGB residual.** The official forward adds the ``colors``-channel input to the ``colors·s²``-channel
  output by broadcasting, which works only for one channel; for three channels the input is repeated s² times
  per channel (``repeat_interleave``, as BasicSR does), which is the same nearest-neighbour residual.
* **Identity branches** (``with_idt``) leave no trace in a state dict, so a train-form checkpoint is detected with
  the default ``with_idt=False`` (all official configs use ``idt_ecbsr: 0``); the deploy form has it folded in
  either way. Likewise ``act`` is read as ``"prelu"`` when ``act.weight`` keys exist and as ``"relu"`` otherwise.
* The fixed Sobel/Laplacian masks are buffers (saved under the official ``mask`` keys, not counted as
  parameters); see :mod:`esrkit.layers.reparam.ecb`.
"""

from __future__ import annotations

import re

import torch
from torch import Tensor, nn

from ..errors import InputError
from ..layers import RangeScaledNet
from ..layers.reparam.ecb import ECB
from .detection import Shapes, scale_from_channels
from .registry import Capabilities, Family, ModelConfig, Variant, register_family

# MATLAB rgb2ycbcr (BT.601, "studio swing"): coefficients for R, G, B in [0, 1] and Y, Cb, Cr on the 0..255 scale
# (divided by 255 below, where R, G, B are on the 0..255 scale too).
_YCBCR = ((65.481, 128.553, 24.966), (-37.797, -74.203, 112.0), (112.0, -93.786, -18.214))
_YCBCR_OFFSET = (16.0, 128.0, 128.0)


def _rgb_to_ycbcr(x: Tensor) -> Tensor:
    matrix = torch.tensor(_YCBCR, dtype=torch.float64) / 255.0
    offset = torch.tensor(_YCBCR_OFFSET, dtype=torch.float64)
    return (torch.einsum("ij,njhw->nihw", matrix.to(x), x) + offset.to(x).reshape(1, 3, 1, 1))


def _ycbcr_to_rgb(x: Tensor) -> Tensor:
    inverse = torch.linalg.inv(torch.tensor(_YCBCR, dtype=torch.float64) / 255.0)
    offset = torch.tensor(_YCBCR_OFFSET, dtype=torch.float64)
    return torch.einsum("ij,njhw->nihw", inverse.to(x), x - offset.to(x).reshape(1, 3, 1, 1))


class ECBSR(RangeScaledNet):
    """ECBSR-M{num_block}C{num_feat}: ``num_block`` ECBs of ``num_feat`` channels between a head and a tail ECB.

    ``colors`` 1 runs the network on Y (the paper's models) and 3 on RGB (module docstring); ``act`` names the
    activation after every ECB but the tail (``prelu``, ``relu``, ``rrelu``, ``softplus``, ``gelu``, ...).
    """

    def __init__(self, scale: int = 4, num_block: int = 4, num_feat: int = 16, colors: int = 1,
                 act: str = "prelu", with_idt: bool = False, depth_multiplier: float = 2.0,
                 img_range: float = 255.0) -> None:
        super().__init__(img_range)
        if colors not in (1, 3):
            raise InputError(f"colors must be 1 (Y) or 3 (RGB), not {colors}")
        if num_block < 0 or num_feat < 1:
            raise InputError("num_block must be >= 0 and num_feat >= 1")
        self.scale, self.colors = scale, colors
        out = colors * scale * scale
        blocks = [ECB(colors, num_feat, depth_multiplier, act, with_idt)]
        blocks += [ECB(num_feat, num_feat, depth_multiplier, act, with_idt) for _ in range(num_block)]
        blocks.append(ECB(num_feat, out, depth_multiplier, "linear", with_idt))
        self.backbone = nn.Sequential(*blocks)
        self.upsampler = nn.PixelShuffle(scale)

    def _network(self, x: Tensor) -> Tensor:
        """The authors' network on ``colors`` channels in [0, 255]."""
        residual = x if self.colors == 1 else x.repeat_interleave(self.scale * self.scale, dim=1)
        return self.upsampler(self.backbone(x) + residual)

    def forward_scaled(self, x: Tensor) -> Tensor:
        if x.shape[1] != 3:
            raise InputError(f"ECBSR takes RGB input (3 channels), got {x.shape[1]}")
        if self.colors == 3:
            return self._network(x)
        from ..data.resize import imresize

        ycbcr = _rgb_to_ycbcr(x)
        luma = self._network(ycbcr[:, :1])
        chroma = imresize(ycbcr[:, 1:], float(self.scale))
        return _ycbcr_to_rgb(torch.cat([luma, chroma], dim=1))  # type: ignore[list-item]


_KEY = re.compile(r"backbone\.(\d+)\.(conv3x3\.(?:weight|bias)|act\.weight|conv1x1_3x3\.(?:k0|b0|k1|b1)"
                  r"|conv1x1_(?:sbx|sby|lpl)\.(?:k0|b0|scale|bias|mask))")


def detect(s: Shapes) -> ModelConfig | None:
    """Every key is ``backbone.{i}.`` + an ECB parameter (train form: ``conv1x1_*`` branches) or a plain
    ``conv3x3``/``act`` (deploy form), for contiguous ``i``; nothing else may be present.

    The whole-layout match matters for the deploy form, whose keys (``backbone.0.conv3x3.weight``) also occur in
    other families' checkpoints (CASR's deploy model has ``backbone.0.conv3x3`` beside ``head.*`` and
    ``transition.*``): a state dict with any foreign key is not ECBSR.
    """
    indices = set()
    for key in s:
        match = _KEY.fullmatch(key)
        if match is None:
            return None
        indices.add(int(match.group(1)))
    if len(indices) < 2 or indices != set(range(len(indices))):
        return None
    last = len(indices) - 1
    head, tail = s["backbone.0.conv3x3.weight"], s[f"backbone.{last}.conv3x3.weight"]
    if head[2:] != (3, 3) or f"backbone.{last}.act.weight" in s:
        return None
    colors, num_feat = head[1], head[0]
    if colors not in (1, 3):
        return None
    scale = scale_from_channels(tail[0], colors)
    hparams: dict[str, object] = {"num_block": last - 1, "num_feat": num_feat, "colors": colors,
                                  "act": "prelu" if "backbone.0.act.weight" in s else "relu"}
    train = "backbone.0.conv1x1_3x3.k0" in s
    if train:
        hparams["depth_multiplier"] = s["backbone.0.conv1x1_3x3.k0"][0] / num_feat
    return FAMILY.match(scale, hparams, "train" if train else "deploy")


FAMILY = register_family(Family(
    name="ecbsr",
    cls=ECBSR,
    paper="Edge-oriented Convolution Block for Real-time Super Resolution on Mobile Devices (ACM MM 2021)",
    variants={
        # The class defaults first: a detected layout that matches no variant is named after it, with the
        # differences spelled out.
        "ecbsr_m4c16": Variant({}, note="ECBSR-M4C16"),
        "ecbsr_m4c8": Variant({"num_feat": 8}, note="ECBSR-M4C8"),
        "ecbsr_m10c32": Variant({"num_block": 10, "num_feat": 32}, note="ECBSR-M10C32"),
        "ecbsr_m16c64": Variant({"num_block": 16, "num_feat": 64}, note="ECBSR-M16C64"),
    },
    # No released checkpoint in esrkit's reference set, so fp16/bf16 keep the unverified default (True). Only
    # 3x3 convs and a bicubic chroma resize (4 taps): no global context, tiles reproduce the whole image.
    capabilities=Capabilities(),
    detect=detect,
    # The detector accepts only a complete ECBSR layout, so running it before the default-order families costs
    # nothing and keeps a looser detector that looks for ``backbone.{i}.conv3x3`` from claiming ECBSR's deploy form.
    detect_order=90,
))
