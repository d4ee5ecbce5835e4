"""Helpers for the per-family checkpoint detectors.

A family leaves a signature in its key names (``conv_1``/``block_1`` for RLFN, ``fea_conv.pw`` for LKDN …) and
its hyper-parameters in tensor shapes: width is the first conv's output channels, depth is the number of block
prefixes, the scale is ``sqrt(out_channels / 3)`` of the pixel-shuffle conv, and re-parameterization branches
(``rep1x1``, ``upsampler.conv1``) tell a train-time form from a deploy form. Each family module writes a
``detect(shapes) -> ModelConfig | None`` beside its class with these helpers and passes it to its
:class:`~esrkit.models.registry.Family`; :mod:`esrkit.layouts` runs the detectors.

A detector only *proposes* a configuration: the loader builds it and loads the weights strictly, so a wrong guess
fails loudly instead of loading silently. Detectors may therefore index shapes freely; a ``KeyError`` or
``IndexError`` from a half-matching state dict counts as "not this family".
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import torch

from .registry import Shapes

__all__ = ["Shapes", "count_indexed", "has_keys", "scale_from_channels", "state_shapes"]


def state_shapes(state: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    """Key → shape of a state dict (what detectors read)."""
    return {k: tuple(v.shape) for k, v in state.items()}


def has_keys(shapes: Shapes, *keys: str) -> bool:
    """Whether every key is present (a family's signature)."""
    return all(k in shapes for k in keys)


def count_indexed(shapes: Shapes, pattern: str) -> int:
    """Number of distinct integers ``i`` for which some key matches ``pattern`` with ``{i}`` = i
    (``count_indexed(s, "B{i}.c1_d.weight")`` is the number of blocks)."""
    rx = re.compile(re.escape(pattern).replace(re.escape("{i}"), r"(\d+)"))
    return len({m.group(1) for k in shapes if (m := rx.fullmatch(k))})


def scale_from_channels(out_channels: int, colors: int = 3) -> int | None:
    """The pixel-shuffle scale ``s`` with ``colors·s² = out_channels``, or None when there is none."""
    s = math.isqrt(out_channels // colors)
    return s if s >= 1 and s * s * colors == out_channels else None
