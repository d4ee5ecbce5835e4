"""Shared fixtures. Tests that need reference material read it from ``../shared`` (beside the checkout) or from
``$ESRKIT_SHARED``, and skip with a reason when it is absent: a user's fresh clone has no ``../shared``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


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


_CHILD_LOAD = """
import json, sys
from esrkit.checkpoints import load_checkpoint
from esrkit.errors import CheckpointError
try:
    load_checkpoint(sys.argv[1])
    outcome = "loaded"
except CheckpointError as exc:
    outcome = str(exc)
hwm_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"outcome": outcome, "peak_mb": hwm_kb / 1024}))
"""


def load_in_child(path: Path) -> tuple[str, float]:
    """``load_checkpoint(path)`` in a fresh interpreter: the CheckpointError's text (or "loaded") and the peak
    resident memory of that process in MiB.

    The peak is ``VmHWM`` (the high-water mark of this process image), not ``ru_maxrss``: Linux folds the RSS of
    the image an exec replaces into ``ru_maxrss``, and subprocess's vfork+exec child starts from pytest's own
    address space, so late in the suite it reported pytest's ~800 MB as the child's peak (a red CI run)."""
    import esrkit

    env = {**os.environ, "PYTHONPATH": str(Path(esrkit.__file__).parents[1])}  # the esrkit under test
    proc = subprocess.run([sys.executable, "-c", _CHILD_LOAD, str(path)], capture_output=True, text=True,
                          timeout=120, cwd=REPO, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result["outcome"], result["peak_mb"]
