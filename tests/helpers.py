"""Helpers the tests share (imported as ``from helpers import …``; pytest puts this folder on ``sys.path``).

Fixtures stay in ``conftest.py``, which pytest loads by itself; plain functions and constants live here, so a test
module never imports ``conftest`` (pytest's own loading of it and a second import could disagree).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]


def _shared_root() -> Path:
    env = os.environ.get("ESRKIT_SHARED")
    return Path(env) if env else REPO.parent / "shared"


#: The shared reference folder (``$ESRKIT_SHARED``, else ``../shared`` beside the checkout).
SHARED = _shared_root()


def shared_path(*parts: str) -> Path:
    """Path under the shared folder, or skip the calling test with a reason naming what is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"reference material not found: {path} (set ESRKIT_SHARED or place shared/ beside the repo)")
    return path


def weights_mirror_folder(folder: Path) -> Path:
    """``folder`` made a weights mirror (``ESRKIT_WEIGHTS_MIRROR=folder``) holding the shared released files under
    their catalogue URL paths (``OWNER/REPO/raw/COMMIT/PATH``; the shared catalogue's ``in_shared`` names them).
    A folder is no network: it serves under ``ESRKIT_OFFLINE=1`` too. Skips without the shared weights."""
    from esrkit.hub import catalogue

    records = json.loads(shared_path("weights", "catalogue.json").read_text())["weights"]
    for record in records:
        if record["in_shared"]:
            target = folder / record["url"].removeprefix(catalogue.GITHUB + "/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(shared_path("weights", "official", record["in_shared"]).read_bytes())
    return folder


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    """What a command wrote to stderr, asserted to be one line (the project's rule for bad input)."""
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def randomize_weights(model: nn.Module, seed: int = 0, gain: float = 0.7, bias: float = 0.1, *,
                      unit_gains: Sequence[str] = (), batchnorm: bool = False) -> nn.Module:
    """Overwrite every parameter of ``model`` with seeded noise, so that no re-parameterization branch or bias is a
    no-op and a fold that dropped one would show; returns ``model``.

    Kernels get ``gain`` × noise / √fan-in (outputs stay O(1): with gain 1 a deep random net reaches |y| ~ 10 and
    float32 rounding alone nears a 1e-5 tolerance), vectors ``bias`` × noise. Parameters whose name ends with one
    of ``unit_gains`` scale a normalised signal (a LayerNorm's gain): they get 1 + 0.3 × noise. ``batchnorm``
    also gives every BatchNorm non-trivial running statistics and a gain around 1, so a fold that ignored them
    would show. The noise is drawn in float64 and cast, so a seed gives the same weights in any dtype.
    """
    gen = torch.Generator().manual_seed(seed)

    def noise(shape: Sequence[int]) -> torch.Tensor:
        return torch.randn(tuple(shape), generator=gen, dtype=torch.float64)

    with torch.no_grad():
        for name, p in model.named_parameters():
            z = noise(p.shape)
            if p.dim() > 1:
                p.copy_(gain * z / math.sqrt(p[0].numel()))
            elif unit_gains and name.endswith(tuple(unit_gains)):
                p.copy_(1.0 + 0.3 * z)
            else:
                p.copy_(bias * z)
        if batchnorm:
            for m in model.modules():
                if isinstance(m, nn.BatchNorm2d):
                    c = m.num_features
                    assert m.running_mean is not None and m.running_var is not None
                    m.running_mean.copy_(0.5 * noise((c,)))
                    m.running_var.copy_(0.5 + torch.rand(c, generator=gen, dtype=torch.float64))
                    if m.weight is not None:
                        m.weight.copy_(1.0 + 0.3 * noise((c,)))
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


def run_cases_in_own_process(cases: str) -> None:
    """Run ``tests/<cases>`` in a pytest process of its own and fail with its output's tail unless every case
    passed (OpenVINO's and ONNX Runtime's thread pools stay out of the long suite's process)."""
    here = Path(__file__).resolve().parent
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(here / cases)]
    proc = subprocess.run(cmd, cwd=here.parent, capture_output=True, text=True, timeout=1200, check=False,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join([str(here), str(here.parent / "src")])})
    tail = proc.stdout[-6000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, tail
    assert " passed" in proc.stdout and " failed" not in proc.stdout, tail


def write_noise_clip(path: Path, frames: int, width: int, height: int, rng: np.random.Generator, *,
                     options: dict[str, str] | None = None) -> Path:
    """An H.264 MP4 of ``frames`` frames of uniform noise at 24 fps (parents created): a video input whose every
    frame costs the encoder something."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=24, options=options or {})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8),
                                               format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path
