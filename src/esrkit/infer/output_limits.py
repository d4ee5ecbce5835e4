"""Output sizes checked before any work: an upscale's output size is the input's header size times the scale,
so a format that cannot hold it, or an output too large to hold in memory, is refused before a pixel is decoded.

* **Format limits.** WebP stores each side in 14 bits (at most 16383 pixels); libjpeg refuses sides over 65500
  (``JPEG_MAX_DIMENSION``; the format's own field would take 65535); AV1, so AVIF, stops at 65536. Pillow only
  finds out in the encoder, after the whole image has been upscaled, and raises a traceback. The side limits
  hold whichever way round the image is turned, so an EXIF rotation applied on read does not change the answer.
* **Output pixels.** The input is within :func:`esrkit.data.io.max_pixels`, but ×4 makes it sixteen times larger:
  a 13000 × 13000 input (169 Mpx, admitted) would start tiling into a 52000 × 52000 output, an 8.1 GB buffer. The
  output limit is :data:`OUTPUT_PIXELS_FACTOR` = 4 times the input limit (716 Mpx, 2.1 GB as 8-bit RGB with the
  default): a 24-megapixel photograph ×4 (384 Mpx) and an 8K frame ×4 (531 Mpx) pass, a 13400² bomb ×4 does
  not. ``$ESRKIT_MAX_PIXELS`` moves it with the input limit (``0``: no limit).

Headers that cannot be read are left to the reader, which reports them in their turn with its own message.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from PIL import Image

from ..data.io import max_pixels
from ..errors import EsrkitError, InputError

__all__ = ["MAX_SIDE", "OUTPUT_PIXELS_FACTOR", "check_output_size", "check_output_sizes", "max_output_pixels"]

OUTPUT_PIXELS_FACTOR = 4
# output extension → (largest side in pixels, format name)
MAX_SIDE: dict[str, tuple[int, str]] = {".webp": (16383, "WebP"), ".jpg": (65500, "JPEG"), ".jpeg": (65500, "JPEG"),
                                        ".avif": (65536, "AVIF")}


def max_output_pixels() -> int | None:
    """The largest output (width × height) an upscale writes: :data:`OUTPUT_PIXELS_FACTOR` × the input limit."""
    limit = max_pixels()
    return None if limit is None else OUTPUT_PIXELS_FACTOR * limit


def check_output_size(src: object, dst: object, width: int, height: int, scale: int) -> None:
    """Raise :class:`InputError` when ``src`` (``width`` × ``height``) upscaled ×``scale`` cannot be written as
    ``dst`` (its format's side limit) or exceeds :func:`max_output_pixels`."""
    out_w, out_h = width * scale, height * scale
    suffix = str(dst)[str(dst).rfind("."):].lower()
    side = MAX_SIDE.get(suffix)
    if side is not None and max(out_w, out_h) > side[0]:
        raise InputError(f"{src}: its ×{scale} output would be {out_w}×{out_h}, over {side[1]}'s limit of "
                         f"{side[0]} pixels a side; write it as PNG (--format png)", param="format")
    limit = max_output_pixels()
    if limit is not None and out_w * out_h > limit:
        raise InputError(f"{src}: its ×{scale} output would be {out_w}×{out_h} = {out_w * out_h / 1e6:,.0f} Mpx, "
                         f"over the output limit of {limit / 1e6:,.0f} Mpx ({OUTPUT_PIXELS_FACTOR} × the input "
                         "pixel limit; raise $ESRKIT_MAX_PIXELS to write it anyway)", param="inputs")


class PlannedOutput(Protocol):
    """What the check reads of a planned job (:class:`esrkit.infer.jobs.Job`, which imports this module)."""

    src: Path
    dst: Path
    kind: str


def check_output_sizes(jobs: Sequence[PlannedOutput], scale: int) -> None:
    """:func:`check_output_size` for every job, from the image headers and video stream headers alone."""
    from ..data.video import probe_video

    for job in jobs:
        size = None
        if job.kind == "image":
            with contextlib.suppress(Exception), warnings.catch_warnings():  # unreadable: the reader reports it
                warnings.simplefilter("ignore")
                with Image.open(job.src) as img:
                    size = img.size
        else:
            with contextlib.suppress(EsrkitError):
                info = probe_video(job.src)
                size = (info.width, info.height)
        if size is not None:
            check_output_size(job.src, job.dst, size[0], size[1], scale)
