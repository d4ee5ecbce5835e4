"""Video memory bounded at any output size (issue 18, deliver 6): the encoder's look-ahead is sized to a fixed
budget of frames (:mod:`esrkit.data.encoder_memory`). Before the fix (main at 2871929) x264 kept its preset's
40-frame look-ahead at every size (``rc_lookahead=40`` in the options it writes into the stream; about 5 GB at 8K
output, measured by ``benchmarks/video_memory.py``), so both tests here failed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import esrkit.data.encoder_memory as encoder_memory
from esrkit.data.encoder_memory import ENCODER_BUDGET_BYTES, bounded_options, frame_cost
from esrkit.data.video import upscale_video
from helpers import REPO, write_noise_clip

RNG = np.random.default_rng(6)


def _clip(path: Path, frames: int, width: int, height: int) -> Path:
    return write_noise_clip(path, frames, width, height, RNG, options={"preset": "ultrafast"})


def _x264_settings(path: Path) -> dict[str, str]:
    """The settings x264 writes into its stream (an SEI message: ``options: key=value …``)."""
    found = re.search(rb"x264 - core .*? options: ([^\x00]*)", path.read_bytes())
    assert found is not None, "no x264 settings in the stream"
    return dict(item.split("=", 1) for item in found[1].decode().split() if "=" in item)


def test_the_budget_reaches_the_encoder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A budget of five 256×192 frames: x264 runs a 2-frame look-ahead (not its preset's 40), and every frame is
    still written."""
    src = _clip(tmp_path / "in.mp4", 12, 64, 48)
    monkeypatch.setattr(encoder_memory, "ENCODER_BUDGET_BYTES", 5 * frame_cost(256, 192))
    result = upscale_video(src, tmp_path / "out.mp4", lambda f: f.repeat(4, 0).repeat(4, 1))
    assert result.frames == 12
    settings = _x264_settings(tmp_path / "out.mp4")
    assert settings["rc_lookahead"] == "2"
    assert settings["sliced_threads"] == "1"  # PyAV's slice threading: threads hold no frames of their own


@pytest.mark.parametrize(("width", "height", "lookahead"), [(1920, 1080, 40), (3840, 2160, 39), (7680, 4320, 6)])
def test_lookahead_frames_fit_the_budget(width: int, height: int, lookahead: int) -> None:
    options = bounded_options("libx264", {"crf": "17"}, width, height, "yuv420p", cpus=64)
    assert options["crf"] == "17" and options["threads"] == "16"
    assert int(options["rc-lookahead"]) == lookahead
    assert int(options["rc-lookahead"]) * frame_cost(width, height) <= ENCODER_BUDGET_BYTES


@pytest.mark.slow
def test_8k_output_peak_stays_within_the_budget(tmp_path: Path) -> None:
    """1920×1080 ×4 = 7680×4320, 30 frames (more than the 6-frame look-ahead plus what x264 holds besides), in a
    child whose VmHWM is its own peak: under 3 GiB (measured 2.3 GiB with 60 frames: the look-ahead's budget, x264's
    reference and B-frames, the frames in flight and the interpreter with torch; the unbounded encoder peaked far
    higher, see benchmarks/video_memory.py). Slow: x264 at 8K on two cores is about 0.1-0.5 frames a second."""
    src = _clip(tmp_path / "in.mp4", 30, 1920, 1080)
    code = ("import sys\nfrom esrkit.data.video import upscale_video\n"
            "r = upscale_video(sys.argv[1], sys.argv[2], lambda f: f.repeat(4, 0).repeat(4, 1))\n"
            "print(r.frames, next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')))\n")
    proc = subprocess.run([sys.executable, "-c", code, str(src), str(tmp_path / "out.mp4")], capture_output=True,
                          text=True, env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"}, timeout=1800)
    assert proc.returncode == 0, proc.stderr
    frames, peak_kib = map(int, proc.stdout.split())
    assert frames == 30 and peak_kib < 3 * 1024 * 1024, f"peak {peak_kib / 1024:.0f} MiB"
