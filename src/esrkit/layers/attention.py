"""Attention blocks of the efficient-SR families, and one factory to build them by name.

ESA (RFDN's full form and RLFN's reduced one), IMDN's contrast-aware channel attention (CCA) and LKDN's large-kernel
attention (LKA). Attribute names equal the released checkpoints' keys.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .conv import conv


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


class LargeKernelAttention(nn.Module):
    """LKA in LKDN's order: 1×1 → 5×5 depth-wise → 5×5 depth-wise with dilation 3 (a 17×17 receptive field),
    then an element-wise product with the input.

    There is deliberately no sigmoid: the product itself is the gate. The point-wise conv comes first (as in
    VAPSR) so that the two depth-wise convs act on already-mixed channels.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.pointwise = conv(channels, channels, 1)
        self.depthwise = conv(channels, channels, 5, groups=channels)
        self.depthwise_dilated = conv(channels, channels, 5, groups=channels, dilation=3)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.depthwise_dilated(self.depthwise(self.pointwise(x)))


# Every attention by the name a family's hyper-parameters (or a new family) use for it. The ESA forms take
# ``esa_channels``; CCA takes ``reduction``; LKA only the width.
ATTENTIONS: dict[str, Callable[..., nn.Module]] = {
    "esa": lambda channels, esa_channels: ESA(channels, esa_channels, full=True),
    "esa_reduced": lambda channels, esa_channels: ESA(channels, esa_channels, full=False),
    "cca": lambda channels, reduction=16: CCALayer(channels, reduction),
    "lka": lambda channels: LargeKernelAttention(channels),
    "none": lambda channels: nn.Identity(),
}

# Attentions that look at the whole feature map (global statistics, or resampling to the map's own size):
# a network using one cannot be tiled exactly.
GLOBAL_ATTENTIONS = frozenset({"esa", "esa_reduced", "cca"})


def make_attention(kind: str, channels: int, **kwargs: int) -> nn.Module:
    """Build the attention ``kind`` (a key of :data:`ATTENTIONS`) for ``channels`` feature channels."""
    try:
        factory = ATTENTIONS[kind]
    except KeyError:
        raise ValueError(f"unknown attention {kind!r}; known: {', '.join(ATTENTIONS)}") from None
    return factory(channels, **kwargs)
