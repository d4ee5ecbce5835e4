"""RVSR: re-parameterization + ViT-style (RepViT) blocks, AIS 2024 real-time 4K SR (team XJTU-AIR, 2nd fidelity).

Source: the AIS 2024 RTSR survey §3.5 (Z. Li, H. Wei, C. Ge) and the team's code ``huai-chang/RVSR``
(``models/train_arch.py``, ``models/inference_arch.py``, ``reparameterize.py``; weights ``RVSR_rep.pth``, deploy
form, 32,960 parameters; Table 1 of the survey: 0.033 M).

Layout (keys as in the released deploy checkpoint):

* ``head.0``: 3×3, 3 → ``num_feat`` (16);
* ``body.0`` … ``body.7``: RepViT-style blocks, ``channel_mixer(attn(token_mixer(x)))`` where the token mixer is
  a re-parameterizable 3×3 (:class:`RepConv`, deploy key ``token_mixer.rep_conv``), ``attn`` is timm's
  squeeze-excite (mean pool → 1×1 ``fc1`` → ReLU → 1×1 ``fc2`` → sigmoid gate; ``SqueezeExcite(N, 0.25)``
  rounds the hidden width up to a multiple of 8, so 8 for N = 16) and the channel mixer is a residual 1×1 FFN
  (``ffn.0`` N → 2N, GELU, ``ffn.2`` 2N → N). As in RepViT, the token mixer's residual lives inside RepConv;
  there is no other skip around it;
* ``body(head) + head``, then ``tail.0`` (a RepConv) → ``tail.1`` (1×1 to 48 channels) → PixelShuffle(4);
* plus the input upsampled bilinearly (``align_corners=False``) as an image-level skip.

Train-form ``RepConv`` (keys of ``train_arch.py``): two expand-conv-squeeze chains (``expand_conv`` 1×1 N → 2N,
``fea_conv`` unpadded 3×3, ``reduce_conv`` 1×1 2N → N, and the same with a ``1`` suffix) whose 3×3 sees the
expand bias on its border ring, plus a 3×3 ``res_conv3x3``, a 1×1 ``res_conv1x1`` and the identity. Every branch is
linear, so it folds exactly into one 3×3 (the authors' ``reparameterize.py`` does the same, adding the identity as
a centre tap). The official code pads the expanded map with its bias explicitly; zero-padding the input before the
expand 1×1 gives the same tensor and is what :func:`~esrkit.layers.reparam.conv3xc.fold_1x1_kxk_1x1` assumes.

Value range: the team trained on images normalized to [-1, 1] (``(x − 0.5)/0.5`` in, ``y/2 + 0.5`` out in
``tools/trainer.py``); :class:`RVSR` does that around the network, so it takes and returns [0, 1] like every esrkit
model. Trained on Lanczos ×4 + AVIF (QP 31–63) LR, hence ``degradation="lanczos+avif"``. Squeeze-excite averages over
the whole map, so tiles are not exact. ×4 only (the released code hard-codes ``PixelShuffle(4)``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers import conv, pixelshuffle_block
from ..layers.reparam.algebra import FOLD_DTYPE, conv_params, identity_branch, sum_branches
from ..layers.reparam.conv3xc import fold_1x1_kxk_1x1
from .detection import Shapes, count_indexed, has_keys, scale_from_channels
from .registry import Capabilities, Family, ModelConfig, register_family


def se_width(channels: int, ratio: float = 0.25, divisor: int = 8) -> int:
    """Hidden width of timm's ``SqueezeExcite(channels, ratio)``: ``channels·ratio`` rounded to a multiple of
    ``divisor`` (half up), at least ``divisor``."""
    return max(divisor, int(channels * ratio + divisor / 2) // divisor * divisor)


class RepConvDeploy(nn.Module):
    """The folded :class:`RepConv`: one 3×3 under the key ``rep_conv``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.rep_conv = conv(channels, channels, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.rep_conv(x)


class RepConv(nn.Module):
    """RVSR's train-time 3×3: two expand-conv-squeeze chains + 3×3 + 1×1 + identity (see the module docstring)."""

    def __init__(self, channels: int, ratio: int = 2) -> None:
        super().__init__()
        hidden = channels * ratio
        self.channels = channels
        for suffix in ("", "1"):
            self.add_module(f"expand{suffix}_conv", conv(channels, hidden, 1))
            self.add_module(f"fea{suffix}_conv", nn.Conv2d(hidden, hidden, 3, padding=0))
            self.add_module(f"reduce{suffix}_conv", conv(hidden, channels, 1))
        self.res_conv3x3 = conv(channels, channels, 3)
        self.res_conv1x1 = conv(channels, channels, 1)

    def _chains(self) -> list[tuple[nn.Conv2d, nn.Conv2d, nn.Conv2d]]:
        return [(getattr(self, f"expand{s}_conv"), getattr(self, f"fea{s}_conv"), getattr(self, f"reduce{s}_conv"))
                for s in ("", "1")]

    def forward(self, x: Tensor) -> Tensor:
        padded = F.pad(x, (1, 1, 1, 1))  # expand(padded) has the expand bias on its border, as the official code
        out = x + self.res_conv3x3(x) + self.res_conv1x1(x)
        for expand, middle, squeeze in self._chains():
            out = out + squeeze(middle(expand(padded)))
        return out

    def fused(self) -> RepConvDeploy:
        """The equivalent :class:`RepConvDeploy` (folded in float64, returned in this module's dtype and mode)."""
        chains = [fold_1x1_kxk_1x1(*(conv_params(c, FOLD_DTYPE) for c in chain)) for chain in self._chains()]
        res3 = conv_params(self.res_conv3x3, FOLD_DTYPE)
        kernel = sum_branches(*chains, res3, conv_params(self.res_conv1x1, FOLD_DTYPE),
                              identity_branch(self.channels, 3, like=res3.weight))
        dtype = self.res_conv3x3.weight.dtype
        out = RepConvDeploy(self.channels).to(device=self.res_conv3x3.weight.device, dtype=dtype)
        with torch.no_grad():
            out.rep_conv.weight.copy_(kernel.weight.to(dtype))
            out.rep_conv.bias.copy_(kernel.bias.to(dtype))  # type: ignore[union-attr]
        return out.train(self.training)


class SqueezeExcite(nn.Module):
    """Channel gate from globally averaged features (timm's ``SEModule`` layout: keys ``fc1``, ``fc2``)."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = conv(channels, hidden, 1)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = conv(hidden, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True)))))


class FFN(nn.Module):
    """Residual 1×1 feed-forward: ``x + ffn.2(GELU(ffn.0(x)))`` with a 2× hidden width."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.ffn = nn.Sequential(conv(channels, 2 * channels, 1), nn.GELU(), conv(2 * channels, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.ffn(x) + x


class RepViTBlock(nn.Module):
    """Token mixer (RepConv) → squeeze-excite → channel mixer (FFN), as RVSR's ``RepViT``."""

    def __init__(self, channels: int, se_channels: int) -> None:
        super().__init__()
        self.token_mixer = RepConv(channels)
        self.channel_mixer = FFN(channels)
        self.attn = SqueezeExcite(channels, se_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.channel_mixer(self.attn(self.token_mixer(x)))


class RVSR(nn.Module):
    """RVSR network on [0, 1] (normalized to the authors' [-1, 1] inside). ``se_channels`` None: timm's rule."""

    def __init__(self, scale: int = 4, num_feat: int = 16, num_block: int = 8, se_channels: int | None = None) -> None:
        super().__init__()
        self.scale = scale
        se = se_width(num_feat) if se_channels is None else se_channels
        self.head = nn.Sequential(conv(3, num_feat, 3))
        self.body = nn.Sequential(*(RepViTBlock(num_feat, se) for _ in range(num_block)))
        tail = pixelshuffle_block(num_feat, 3, scale, kernel_size=1)
        self.tail = nn.Sequential(RepConv(num_feat), *tail)

    def forward(self, x: Tensor) -> Tensor:
        x = (x - 0.5) / 0.5
        head = self.head(x)
        out = self.tail(self.body(head) + head)
        out = out + F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return out * 0.5 + 0.5


def detect(s: Shapes) -> ModelConfig | None:
    """``head.0`` + ``body.{i}`` RepViT blocks (``token_mixer``/``channel_mixer.ffn``/``attn.fc1``) + ``tail.1``;
    ``token_mixer.expand_conv`` marks the train form, ``token_mixer.rep_conv`` the deploy form."""
    if not has_keys(s, "head.0.weight", "body.0.channel_mixer.ffn.0.weight", "body.0.attn.fc1.weight",
                    "tail.1.weight"):
        return None
    if "body.0.token_mixer.expand_conv.weight" in s:
        form, mixer = "train", "expand_conv"
    elif "body.0.token_mixer.rep_conv.weight" in s:
        form, mixer = "deploy", "rep_conv"
    else:
        return None
    nf, se = s["head.0.weight"][0], s["body.0.attn.fc1.weight"][0]
    hparams = {"num_feat": nf, "num_block": count_indexed(s, f"body.{{i}}.token_mixer.{mixer}.weight"),
               "se_channels": None if se == se_width(nf) else se}
    return FAMILY.match(scale_from_channels(s["tail.1.weight"][0]), hparams, form)


FAMILY = register_family(Family(
    name="rvsr",
    cls=RVSR,
    paper="AIS 2024 Real-Time 4K Super-Resolution of Compressed AVIF Images (CVPRW 2024), team XJTU-AIR (RVSR)",
    variants={"rvsr": {}},
    scales=(4,),
    capabilities=Capabilities(tile_exact=False),  # squeeze-excite pools over the whole map
    detect=detect,
    degradation="lanczos+avif",
))
