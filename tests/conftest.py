"""Shared fixtures. Tests that need reference material read it from ``../shared`` (beside the checkout) or from
``$ESRKIT_SHARED``, and skip with a reason when it is absent: a user's fresh clone has no ``../shared``."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# The backends keep ONNX exports and compiled models in $XDG_CACHE_HOME/esrkit: the tests use a folder of their
# own (inherited by the CLI subprocesses they start), never the user's ~/.cache, and remove it at the end.
_TEST_CACHE = tempfile.mkdtemp(prefix="esrkit-test-cache-")
os.environ["XDG_CACHE_HOME"] = _TEST_CACHE
atexit.register(shutil.rmtree, _TEST_CACHE, ignore_errors=True)


def _shared_root() -> Path:
    env = os.environ.get("ESRKIT_SHARED")
    return Path(env) if env else REPO.parent / "shared"


SHARED = _shared_root()


def shared_path(*parts: str) -> Path:
    """Path under the shared folder, or skip the calling test with a reason naming what is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"reference material not found: {path} (set ESRKIT_SHARED or place shared/ beside the repo)")
    return path


@pytest.fixture
def shared() -> Path:
    """Root of the shared reference folder (skips when absent)."""
    return shared_path()


def randomize_weights(model, seed: int = 0, gain: float = 0.7, bias: float = 0.1):
    """Overwrite every parameter of ``model`` with seeded noise (kernels scaled by fan-in, vectors by ``bias``), so
    that no re-parameterization branch or bias is a no-op and a fold that dropped one would show."""
    import math

    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            noise = torch.randn(p.shape, generator=gen, dtype=p.dtype)
            p.copy_(gain * noise / math.sqrt(p[0].numel()) if p.dim() > 1 else bias * noise)
    return model
