"""What the checkpoint checks share: the element cap every format is held to, sizes for messages, and the
NaN/Inf check that runs on the loaded tensors."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ..errors import CheckpointError

__all__ = ["MAX_CHECKPOINT_ELEMENTS", "check_finite", "human_size"]

# 2³⁰ ≈ 1.07 × 10⁹ elements (4 GiB as float32) for all tensors of a file together: esrkit's models have well
# under 10⁷ parameters, so only a corrupt or hostile file reaches it.
MAX_CHECKPOINT_ELEMENTS = 1 << 30


def human_size(nbytes: int) -> str:
    """``nbytes`` for a message: "4.2 GB", "512 bytes"."""
    for unit, factor in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= factor:
            return f"{nbytes / factor:.1f} {unit}"
    return f"{nbytes} bytes"


def check_finite(state: Mapping[str, torch.Tensor], source: str) -> None:
    """Refuse a state dict with NaN or Inf in a floating-point tensor, naming the first such tensor: a diverged
    training run saves them silently, and the model then returns black or NaN images rather than an error."""
    for key, value in state.items():
        if not (value.is_floating_point() or value.is_complex()) or value.numel() == 0:
            continue
        finite = torch.isfinite(value)
        if not bool(finite.all()):
            bad = int(finite.numel() - finite.sum())
            nan = int(torch.isnan(value).sum())
            raise CheckpointError(f"{source}: tensor {key!r} has {bad:,} non-finite value(s) of {value.numel():,} "
                                  f"({nan:,} NaN, {bad - nan:,} ±Inf): a diverged or corrupt training run? "
                                  "(allow_nonfinite=True loads it anyway)")
