"""The feature-distillation trunk shared by the IMDN descendants (RFDN's RFDB, LKDN's LKDB, ...)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from .conv import conv


class DistillationBlock(nn.Module):
    """Three distillation stages and a last distilled conv, concatenated: the common body of RFDB and LKDB.

    Stage ``i`` splits its input into a cheap 1×1 "distilled" part ``c{i}_d`` (``distilled`` channels, kept)
    and a full-width refinement ``c{i}_r`` passed on to the next stage; ``c4`` distils the last refinement.
    Every output goes through ``act``. With ``refine_skip`` the refinement adds its input before the
    activation (RFDN's shallow residual block); LKDN's re-parameterizable refinement carries its skips inside.

    :meth:`distill` returns the concatenation of the four distilled parts (``4·distilled`` channels); a
    subclass adds its own fusion and attention tail after it. Attribute names equal the released checkpoints'
    keys (``c1_d``, ``c1_r``, …, ``c4``).
    """

    def __init__(self, channels: int, *, act: nn.Module, refine: Callable[[int, int], nn.Module],
                 last: Callable[[int, int], nn.Module], refine_skip: bool, distilled: int | None = None) -> None:
        super().__init__()
        dc = channels // 2 if distilled is None else distilled
        self.distilled_channels = dc
        self.refine_skip = refine_skip
        self.c1_d = conv(channels, dc, 1)
        self.c1_r = refine(channels, channels)
        self.c2_d = conv(channels, dc, 1)
        self.c2_r = refine(channels, channels)
        self.c3_d = conv(channels, dc, 1)
        self.c3_r = refine(channels, channels)
        self.c4 = last(channels, dc)
        self.act = act

    def distill(self, x: Tensor) -> Tensor:
        parts = []
        for distil, refine in ((self.c1_d, self.c1_r), (self.c2_d, self.c2_r), (self.c3_d, self.c3_r)):
            parts.append(self.act(distil(x)))
            x = self.act(refine(x) + x) if self.refine_skip else self.act(refine(x))
        parts.append(self.act(self.c4(x)))
        return torch.cat(parts, dim=1)
