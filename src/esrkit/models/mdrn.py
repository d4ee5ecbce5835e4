"""MDRN, the multi-level dispersion residual network (NTIRE 2023 Efficient SR, team TelunXupt).

Paper: Y. Mao, N. Zhang, Q. Wang et al., "Multi-level Dispersion Residual Network for Efficient Image
Super-Resolution", CVPR Workshops 2023. The challenge report (``seed-ntire2023.md`` §4.4) gives the entry: 8
enhanced attention distillation blocks (EADB), 28 channels; Table 1: **0.095 M parameters, 5.58 G FLOPs** (256×256
input), 220.88 M activations, **317 convs** — the model-complexity winner. No weights were released with the
report; the authors' public code (``bbbolt/MDRN``, ``basicsr/archs/mdrn_arch.py``, the paper model with 56
channels) gives the layer-level facts used here, and key names follow it.

Layout: mean shift (DIV2K RGB mean subtracted, added back at the end), 3×3 ``fea_conv`` → ``B1…B8`` EADBs → all
block outputs concatenated → 1×1 ``c1`` → GELU → BSConv ``c2`` + ``fea_conv`` output → ``upsampler`` (3×3 conv to
``3·s²`` channels, pixel shuffle).

EADB (IMDN/RFDN/BSRN distillation trunk): three stages of a 1×1 distilled conv ``c{i}_d`` (C/2 channels) and a
BSConv refinement ``c{i}_r`` with the stage input added before the GELU, a last BSConv ``c4`` to C/2, the four
parts concatenated and fused by a 1×1 ``c5``, then MDSA (spatial) and ECCA (channel) attention and the block
residual.

* **MDSA** (``esa``): ESA's single dispersion branch made multi-level. A 1×1 squeeze to C/4 channels feeds four
  stride-2 BSConvs; three are max-pooled (3×3/3 padded, 5×5/3, 7×7/3 padded: the D3, D5, D7 branches) and the
  fourth gives the 7×7/3 local variance (L-var) that is added to D7 only. Each branch is one BSConv, GELU, BSConv
  (ESA's conv group made shallower), resampled bilinearly to the input size; the three plus the 1×1 ``conv_f``
  skip are expanded by ``conv4`` into a sigmoid gate, and the block adds the gated map to its input.
* **ECCA** (``cca``): 1×1 conv → GELU → IMDN's contrast-aware channel attention → 3×3 depth-wise conv, plus the
  input (BSRN's BSRB with its residual removed and CCA moved between the point-wise and depth-wise convs).

What the code fixes and the report leaves out (followed here): the BSConvs inside MDSA and the block are
*reflect*-padded in their depth-wise part, which is why they are not :class:`esrkit.layers.reparam.BSConvU`;
the attention's convs are BSConvs too (that is what makes 317 convs: 29 + 10 per block); MDSA's width is
``num_feat // 4`` (7 at 28 channels) and CCA's hidden width ``num_feat // 16`` (1). The only activation module the
challenge tool counts is CCA's ReLU (GELUs are not counted), which the published FLOPs agree with.

The network has no re-parameterization, so train and deploy forms are one layout.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers import CCALayer
from .detection import Shapes, count_indexed, has_keys, scale_from_channels
from .registry import Capabilities, Family, ModelConfig, Variant, register_family

_DIV2K_MEAN = (0.4488, 0.4371, 0.4040)


class ReflectBSConv(nn.Module):
    """BSConv-U (1×1 point-wise without bias, then k×k depth-wise with bias) whose depth-wise conv pads by
    reflection and may be strided, as in MDRN's code. Keys ``pw.weight``, ``dw.weight``, ``dw.bias``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1) -> None:
        super().__init__()
        self.pw = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.dw = nn.Conv2d(out_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2,
                            groups=out_channels, padding_mode="reflect")

    def forward(self, x: Tensor) -> Tensor:
        return self.dw(self.pw(x))


def local_variance(x: Tensor, kernel_size: int = 7, stride: int = 3, padding: int = 1) -> Tensor:
    """Unbiased variance over each ``kernel_size²`` window (reflect-padded), on a ``stride`` grid: MDSA's
    L-var, which is large where the features have structure."""
    padded = F.pad(x, (padding,) * 4, mode="reflect")
    windows = padded.unfold(2, kernel_size, stride).unfold(3, kernel_size, stride)
    return windows.var(dim=(-1, -2), unbiased=True)


class MDSA(nn.Module):
    """Multi-level dispersion spatial attention with the block-local residual (``x + x·gate``).

    Attributes sit under ``body.0`` so that keys equal the authors' (``esa.body.0.conv1.weight`` …).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_MDSAGate(channels))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class _MDSAGate(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        f = channels // 4
        self.conv1 = nn.Conv2d(channels, f, 1)
        self.conv_f = nn.Conv2d(f, f, 1)
        for i in range(4):
            self.add_module(f"conv2_{i}", ReflectBSConv(f, f, 3, stride=2))
        for i in range(3):
            self.add_module(f"conv_max_{i}", ReflectBSConv(f, f, 3))
            self.add_module(f"conv3_{i}", ReflectBSConv(f, f, 3))
        self.conv4 = nn.Conv2d(f, channels, 1)
        self.act = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:
        squeezed = self.conv1(x)
        d3 = F.max_pool2d(self.conv2_0(squeezed), 3, stride=3, padding=1)
        d5 = F.max_pool2d(self.conv2_1(squeezed), 5, stride=3)
        d7 = F.max_pool2d(self.conv2_2(squeezed), 7, stride=3, padding=1) + local_variance(self.conv2_3(squeezed))
        size = x.shape[-2:]
        gate = self.conv_f(squeezed)
        for i, small in enumerate((d3, d5, d7)):
            refined = getattr(self, f"conv3_{i}")(self.act(getattr(self, f"conv_max_{i}")(small)))
            gate = gate + F.interpolate(refined, size=size, mode="bilinear", align_corners=False)
        return x * torch.sigmoid(self.conv4(gate))


class ECCA(nn.Module):
    """Enhanced contrast-aware channel attention: 1×1 → GELU → CCA → 3×3 depth-wise, plus the input."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.GELU(), CCALayer(channels, reduction),
                                  nn.Conv2d(channels, channels, 3, padding=1, groups=channels))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class EADB(nn.Module):
    """Enhanced attention distillation block (keys ``c1_d`` … ``c5``, ``esa``, ``cca`` as in the authors' code)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        dc = channels // 2
        for i in (1, 2, 3):
            self.add_module(f"c{i}_d", nn.Conv2d(channels, dc, 1))
            self.add_module(f"c{i}_r", ReflectBSConv(channels, channels, 3))
        self.c4 = ReflectBSConv(channels, dc, 3)
        self.c5 = nn.Conv2d(4 * dc, channels, 1)
        self.esa = MDSA(channels)
        self.cca = ECCA(channels)
        self.act = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:
        parts = []
        feat = x
        for i in (1, 2, 3):
            parts.append(self.act(getattr(self, f"c{i}_d")(feat)))
            feat = self.act(getattr(self, f"c{i}_r")(feat) + feat)
        parts.append(self.act(self.c4(feat)))
        return self.cca(self.esa(self.c5(torch.cat(parts, dim=1)))) + x


class _Upsampler(nn.Module):
    """3×3 conv to ``3·s²`` channels and a pixel shuffle, under the authors' key ``upsampleOneStep``."""

    def __init__(self, num_feat: int, out_channels: int, scale: int) -> None:
        super().__init__()
        self.upsampleOneStep = nn.Sequential(nn.Conv2d(num_feat, out_channels * scale * scale, 3, padding=1),
                                             nn.PixelShuffle(scale))

    def forward(self, x: Tensor) -> Tensor:
        return self.upsampleOneStep(x)


class MDRN(nn.Module):
    """MDRN; defaults are the NTIRE 2023 entry (28 channels, 8 EADBs). ``num_feat=56`` is the paper model."""

    def __init__(self, scale: int = 4, num_feat: int = 28, num_block: int = 8) -> None:
        super().__init__()
        if num_feat < 16 or num_feat % 4:
            raise ValueError(f"num_feat must be a multiple of 4 and at least 16 (MDSA and CCA widths), not {num_feat}")
        self.num_block = num_block
        self.register_buffer("mean", torch.tensor(_DIV2K_MEAN).view(1, 3, 1, 1), persistent=False)
        self.fea_conv = nn.Conv2d(3, num_feat, 3, padding=1)
        for i in range(1, num_block + 1):
            self.add_module(f"B{i}", EADB(num_feat))
        self.c1 = nn.Conv2d(num_feat * num_block, num_feat, 1)
        self.act = nn.GELU()
        self.c2 = ReflectBSConv(num_feat, num_feat, 3)
        self.upsampler = _Upsampler(num_feat, 3, scale)

    def forward(self, x: Tensor) -> Tensor:
        shallow = self.fea_conv(x - self.mean)
        outs = []
        feat = shallow
        for i in range(1, self.num_block + 1):
            feat = getattr(self, f"B{i}")(feat)
            outs.append(feat)
        fused = self.c2(self.act(self.c1(torch.cat(outs, dim=1))))
        return self.upsampler(fused + shallow) + self.mean


def detect(s: Shapes) -> ModelConfig | None:
    """A plain ``fea_conv``, ``B{i}`` blocks with BSConv refinements and MDSA's ``conv2_3`` (the L-var branch)."""
    if not has_keys(s, "fea_conv.weight", "B1.c1_r.pw.weight", "B1.esa.body.0.conv2_3.pw.weight",
                    "B1.cca.body.2.conv_du.0.weight", "upsampler.upsampleOneStep.0.weight"):
        return None
    hparams = {"num_feat": s["fea_conv.weight"][0], "num_block": count_indexed(s, "B{i}.c1_d.weight")}
    return FAMILY.match(scale_from_channels(s["upsampler.upsampleOneStep.0.weight"][0]), hparams)


FAMILY = register_family(Family(
    name="mdrn",
    cls=MDRN,
    paper="Multi-level Dispersion Residual Network for Efficient Image Super-Resolution (CVPRW 2023)",
    variants={
        "mdrn": Variant(note="NTIRE 2023 Efficient SR model-complexity winner (team TelunXupt); no released weights"),
    },
    # MDSA: a stride-2 conv, then a 5×5/3 pool and a reflect-padded conv on its output need 15 px; its pooled maps
    # are resampled to the whole input, and CCA averages over it, so tiling is not exact.
    capabilities=Capabilities(min_size=15, tile_exact=False),
    detect=detect,
))
