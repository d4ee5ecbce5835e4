"""Building blocks shared by several architecture families.

Names of submodules here are chosen so that state-dict keys match the authors' released checkpoints
(``upsampler.0.weight`` for a conv followed by a pixel shuffle, for instance).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def conv(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, bias: bool = True,
         groups: int = 1, dilation: int = 1) -> nn.Conv2d:
    """A 2-D convolution with 'same' padding for odd kernels (the convention of every efficient-SR
    codebase)."""
    padding = (kernel_size - 1) // 2 * dilation
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias,
                     groups=groups, dilation=dilation)


def pixelshuffle_block(in_channels: int, out_channels: int, scale: int,
                       kernel_size: int = 3) -> nn.Sequential:
    """One conv to ``out_channels * scale**2`` channels followed by a pixel shuffle (the 'pixelshuffledirect'
    upsampler of RFDN, RLFN and LKDN). Keys: ``0.weight``, ``0.bias``."""
    return nn.Sequential(conv(in_channels, out_channels * scale * scale, kernel_size), nn.PixelShuffle(scale))


def activation(name: str, negative_slope: float = 0.05, inplace: bool = True) -> nn.Module:
    """Build an activation by name.

    The efficient-SR codebases pick activations by string in their configs (``"lrelu"`` with slope 0.05 in
    IMDN/RFDN/RLFN, 0.1 in MSRResNet); one helper keeps those choices readable and lets a hyper-parameter
    switch them. ``inplace`` defaults to True because the official code runs that way and peak GPU memory is
    a ranked challenge metric; pass False where the pre-activation tensor is still needed.
    """
    key = name.lower()
    if key == "relu":
        return nn.ReLU(inplace=inplace)
    if key in ("lrelu", "leakyrelu"):
        return nn.LeakyReLU(negative_slope, inplace=inplace)
    if key == "prelu":
        return nn.PReLU(init=negative_slope)
    if key == "gelu":
        return nn.GELU()
    if key in ("silu", "swish"):
        return nn.SiLU(inplace=inplace)
    if key in ("identity", "none", "linear"):
        return nn.Identity()
    raise ValueError(f"unknown activation {name!r} (expected relu, lrelu, prelu, gelu, silu or identity)")


class ESA(nn.Module):
    """Enhanced spatial attention (RFANet's ESA as used by RFDN and, reduced, by RLFN).

    A cheap large-receptive-field gate: squeeze to ``esa_channels`` with a 1×1 conv, shrink the map
    (stride-2 3×3 conv, then a 7×7/stride-3 max-pool), process the tiny map, upsample it back bilinearly, add
    a 1×1 skip of the squeezed features, expand with a 1×1 conv and gate the input with a sigmoid.

    ``full=True`` is RFDN's layout: the small map goes through ``conv_max`` → ReLU → ``conv3`` → ReLU →
    ``conv3_``. ``full=False`` is RLFN's pruned layout, which keeps only ``conv3`` (no ReLU at all) because
    the RLFN authors found the other two convs redundant. Attribute names equal the released checkpoints'
    keys.

    Because of the unpadded strided conv and the 7×7 pool, inputs must be at least 15×15 pixels.
    """

    def __init__(self, num_feat: int, esa_channels: int, full: bool = True) -> None:
        super().__init__()
        f = esa_channels
        self.full = full
        self.conv1 = nn.Conv2d(num_feat, f, 1)
        self.conv_f = nn.Conv2d(f, f, 1)
        if full:
            self.conv_max = nn.Conv2d(f, f, 3, padding=1)
        self.conv2 = nn.Conv2d(f, f, 3, stride=2, padding=0)
        self.conv3 = nn.Conv2d(f, f, 3, padding=1)
        if full:
            self.conv3_ = nn.Conv2d(f, f, 3, padding=1)
        self.conv4 = nn.Conv2d(f, num_feat, 1)

    def forward(self, x: Tensor) -> Tensor:
        squeezed = self.conv1(x)
        small = F.max_pool2d(self.conv2(squeezed), kernel_size=7, stride=3)
        if self.full:
            small = F.relu(self.conv_max(small))
            small = F.relu(self.conv3(small))
            small = self.conv3_(small)
        else:
            small = self.conv3(small)
        small = F.interpolate(small, size=x.shape[-2:], mode="bilinear", align_corners=False)
        gate = torch.sigmoid(self.conv4(small + self.conv_f(squeezed)))
        return x * gate


class CCALayer(nn.Module):
    """Contrast-aware channel attention (IMDN).

    Like squeeze-and-excitation, but the per-channel statistic is mean + standard deviation over the spatial
    dimensions: IMDN argues that for low-level vision the contrast (structure, texture) of a channel says more
    than its average. The squeeze/excite MLP lives in ``conv_du`` (keys ``conv_du.0``/``conv_du.2``, as in the
    authors' code).
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.conv_du = nn.Sequential(
            nn.Conv2d(channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1),
            nn.Sigmoid(),
        )

    @staticmethod
    def contrast(x: Tensor) -> Tensor:
        """Per-channel spatial standard deviation (population, not unbiased), shape ``(N, C, 1, 1)``."""
        return x.var(dim=(2, 3), unbiased=False, keepdim=True).sqrt()

    def forward(self, x: Tensor) -> Tensor:
        stats = self.contrast(x) + x.mean(dim=(2, 3), keepdim=True)
        return x * self.conv_du(stats)
