"""Encoder options that bound a video upscale's memory at any output size.

An encoder holds frames it has been given but not yet written: x264's look-ahead (``rc-lookahead``, 40 frames in
the ``medium`` preset) and libvpx's ``lag-in-frames`` (25). Each x264 look-ahead frame costs about twice the 4:2:0
frame (the padded picture, its half-resolution copies and rate-control tables): about 94 MB at 7680 × 4320, so an
8K output buffered about 5 GB with the defaults (issue 18). Threads add no frames here: PyAV opens encoders with
slice threading, so x264 runs ``sliced-threads`` (every thread works on slices of the same frame; checked in the
options x264 writes into its stream), and libvpx-vp9 threads over tiles and rows. The thread count is still capped
at 16 (x264's default is 1.5 × the CPUs) because each thread has its own scratch buffers.

:func:`bounded_options` sizes the look-ahead to :data:`ENCODER_BUDGET_BYTES` (1 GiB) of frames: with ``F`` the
number of frames the budget holds (:func:`frame_cost` each), x264 gets ``rc-lookahead = min(40, F - 4)`` (at least
2; the 4 are its reference and B-frames) and libvpx ``lag-in-frames = min(25, F)``. So up to 4K output almost
nothing changes (1080p keeps x264's own 40-frame look-ahead, 4K gets 39), and an 8K output keeps a 6-frame
look-ahead. The possible cost is compression efficiency at 8K, where rate control plans bit allocation over fewer
frames; below that the preset is untouched.

Measured with ``benchmarks/video_memory.py`` (child ``VmHWM``; 60 frames, nearest-neighbour ×4 as the model, x264
``medium`` CRF 17, 2-core AMD EPYC, PyAV's slice threads): a 3840 × 2160 output peaks at 1,772 MiB (1,797 before
the bound), a 7680 × 4320 output at 2,356 MiB (5,658 MiB before); the 8K file was 87.3 MiB against 91.7 MiB
before, so on that clip the shorter look-ahead cost no size. What is left above the 1 GiB budget is the interpreter
with torch, x264's reference and B-frames, and the frames in flight (decoded, upscaled, converted to YUV).
"""

from __future__ import annotations

import os

__all__ = ["ENCODER_BUDGET_BYTES", "bounded_options", "frame_cost"]

ENCODER_BUDGET_BYTES = 1 << 30
_X264_LOOKAHEAD = 40  # the medium preset's own
_VPX_LAG = 25  # libvpx's default lag-in-frames
_HELD = 4  # reference and B-frames the encoder keeps besides its look-ahead
_MAX_THREADS = 16


def frame_cost(width: int, height: int, pix_fmt: str = "yuv420p") -> int:
    """Bytes an encoder holds per buffered frame: about twice the planar frame (padding, half-resolution copies
    and rate-control tables beside the picture)."""
    planes = 1.5 if pix_fmt == "yuv420p" else 3.0
    return int(2 * planes * width * height)


def bounded_options(encoder: str, options: dict[str, str], width: int, height: int, pix_fmt: str,
                    cpus: int | None = None) -> dict[str, str]:
    """``options`` with the look-ahead and thread count that keep ``encoder``'s frames within
    :data:`ENCODER_BUDGET_BYTES` (see the module docstring); other encoders' options unchanged."""
    frames = ENCODER_BUDGET_BYTES // frame_cost(width, height, pix_fmt)
    threads = str(min(cpus or os.cpu_count() or 1, _MAX_THREADS))
    out = dict(options)
    if encoder == "libx264":
        out["rc-lookahead"] = str(max(2, min(_X264_LOOKAHEAD, frames - _HELD)))
        out["threads"] = threads
    elif encoder in ("libvpx-vp9", "libvpx"):
        out["lag-in-frames"] = str(max(1, min(_VPX_LAG, frames)))
        out["threads"] = threads
    return out
