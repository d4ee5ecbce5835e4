"""Augmentation of training crops: the 8 symmetries of the square (flips and 90° rotations), one definition of
the transform index ``k`` for the datasets (which apply it to numpy views while cropping) and for tensors."""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch
from torch import Tensor

from ..errors import InputError

__all__ = ["augment", "dihedral", "dihedral_ops", "draw_transform"]

T = TypeVar("T", Tensor, tuple[Tensor, ...])


def dihedral_ops(k: int) -> tuple[bool, bool, bool]:
    """``(transpose, flip_w, flip_h)`` of transform ``k``, applied in that order (the one definition of ``k``)."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 0 <= k < 8:
        raise InputError(f"must be an integer in 0..7, got {k!r}", param="k")
    return bool(k & 4), bool(k & 1), bool(k & 2)


def draw_transform(generator: torch.Generator) -> int:
    """One uniform draw from ``generator``: the index of a :func:`dihedral` transform."""
    return int(torch.randint(8, (1,), generator=generator))


def dihedral(x: Tensor, k: int) -> Tensor:
    """Apply the ``k``-th of the 8 symmetries of the square (``k`` in 0..7) to the last two axes of ``x``.

    Bit 2 of ``k`` transposes H and W, then bit 0 flips horizontally and bit 1 vertically. The 2 × 2 × 2
    combinations are exactly the dihedral group D4: the 4 rotations by multiples of 90° and their mirror images
    (a transpose followed by one flip is a 90° rotation). ``k`` = 0 is the identity. Non-square inputs swap H
    and W for ``k`` >= 4. Returns a new contiguous tensor.
    """
    transpose, flip_w, flip_h = dihedral_ops(k)
    if transpose:
        x = x.transpose(-2, -1)
    dims = [d for on, d in ((flip_w, -1), (flip_h, -2)) if on]
    return x.flip(dims).contiguous() if dims else x.contiguous()


def augment(images: T, generator: torch.Generator) -> T:
    """Random flip/rotation: one of the 8 :func:`dihedral` transforms, drawn uniformly from ``generator``.

    ``images`` is one tensor or a tuple of tensors (e.g. ``(lr, hr)``); a tuple gets the *same* transform on
    every member, which keeps paired crops aligned. Exactly one number is drawn from ``generator``. The
    datasets draw and apply the same transform while cropping (on numpy views, see
    :func:`esrkit.train.sampling.crop`), so ``augment(crop, g)`` of an un-augmented crop equals the augmented
    crop for the same generator state.
    """
    k = draw_transform(generator)
    if isinstance(images, Tensor):
        return dihedral(images, k)
    return tuple(dihedral(t, k) for t in images)
