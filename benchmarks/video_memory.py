"""Peak memory of a video upscale at 4K and 8K output (prints a table; not a test).

    PYTHONPATH=src python benchmarks/video_memory.py [--frames 60] [--sizes 4k,8k] [--before OLD_SRC]

The input clips are made here, untimed: 960×540 and 1920×1080 H.264 at 24 fps with moving, textured content (so the
encoder has real work and real reference frames), and ``--frames`` frames, more than any encoder look-ahead (x264's
``medium`` preset looks 40 frames ahead), so the peak is the steady state, not the start. ``file MiB`` is the
output's size (x264 CRF 17): what a shorter look-ahead costs in compression. Each is upscaled ×4 (to 3840×2160 and
7680×4320) by :func:`esrkit.data.video.upscale_video` in a child process whose per-frame function is a nearest-
neighbour ×4 (``numpy.repeat``): the model's own memory is the image path's business, and this measures what the
video path holds (decoder, frames in flight, encoder look-ahead and threads). The child reports its own ``VmHWM``
(peak resident set, from ``/proc/self/status``; a fresh address space after ``exec``, so the parent's size is not
counted) and the frame rate.

``--before SRC`` runs the same children on another esrkit source tree (e.g. the commit before the bound, ``git
archive 2871929 src | tar -x -C /tmp/before`` then ``--before /tmp/before/src``), in the same run on the same clips,
for the before/after table.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import numpy as np

SIZES = {"4k": (960, 540), "8k": (1920, 1080)}
CHILD = r"""
import sys, time, numpy as np
from esrkit.data.video import upscale_video
t = time.perf_counter()
result = upscale_video(sys.argv[1], sys.argv[2], lambda f: f.repeat(4, 0).repeat(4, 1))
seconds = time.perf_counter() - t
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(result.frames, result.width, result.height, hwm, seconds)
"""


def make_clip(path: Path, width: int, height: int, frames: int) -> None:
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (height // 4 + 1, width // 4 + 1, 3), dtype=np.uint8).repeat(4, 0).repeat(4, 1)
    texture = texture[:height, :width]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=24, options={"preset": "veryfast", "crf": "20"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            moved = np.roll(texture, (3 * i, 5 * i), axis=(0, 1))
            frame = av.VideoFrame.from_ndarray(moved, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def measure(src_tree: Path, clip: Path, out: Path) -> tuple[int, int, int, float, float, float]:
    env = {"PYTHONPATH": str(src_tree), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(clip), str(out)], env=env, capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"child failed:\n{proc.stderr[-2000:]}")
    frames, width, height, hwm_kb, seconds = proc.stdout.split()
    return int(frames), int(width), int(height), int(hwm_kb) / 1024, float(seconds), out.stat().st_size / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--sizes", default="4k,8k")
    parser.add_argument("--before", type=Path, help="another esrkit src/ folder to measure on the same clips")
    opts = parser.parse_args()
    here = Path(__file__).resolve().parents[1] / "src"
    trees = {"this tree": here} | ({"before": opts.before.resolve()} if opts.before else {})
    header = ("output", "tree", "frames", "peak RSS MiB", "fps", "file MiB")
    widths = (9, max(9, *(len(t) for t in trees)), 6, 12, 5, 8)

    def line(cells: tuple[str, ...]) -> None:
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)), flush=True)

    line(header)
    line(tuple("-" * w for w in widths))
    with tempfile.TemporaryDirectory() as tmp:
        for size in opts.sizes.split(","):
            width, height = SIZES[size]
            clip = Path(tmp) / f"in_{size}.mp4"
            make_clip(clip, width, height, opts.frames)
            for label, tree in trees.items():
                frames, w, h, peak, seconds, mib = measure(tree, clip, Path(tmp) / f"out_{size}.mp4")
                line((f"{w}×{h}", label, str(frames), f"{peak:,.0f}", f"{frames / seconds:.2f}", f"{mib:.1f}"))


if __name__ == "__main__":
    main()
