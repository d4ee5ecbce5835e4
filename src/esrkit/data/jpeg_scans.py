"""Progressive JPEGs with pathological scan counts: counted from the segment structure and refused before decoding.

A progressive JPEG is decoded in passes ("scans"), and libjpeg visits every block of a scan's component in each
one, whatever the scan holds: a scan of nothing but an end-of-band run is a few bytes of file and a full pass
over the image. So decode time grows as scans × pixels while the file stays small (the issue's 3.2 MB, 13000 ×
13000 file with 10 000 scans took 343 s in ``read_image``; 200 scans still minutes). libjpeg-turbo has a
``-maxscans`` switch for exactly this attack; Pillow exposes none, so esrkit counts the scans itself.

**Why count rather than time-box.** Counting start-of-scan (SOS) markers is a walk over the segment structure:
header segments are skipped by their length and each scan's entropy-coded data by one C-speed regular
expression search to the next marker, so a 35 MB file is counted in milliseconds, the same answer on every
machine, and nothing is decoded. A CPU-time budget in a worker process would need the decoded image shipped
back (hundreds of MB), a fork of a process holding torch, and a limit that depends on the machine's speed.

**The bound** (measured on a 2-core AMD EPYC, Pillow 11's libjpeg-turbo): a normal decode costs about 14 ns per
pixel in all, and each extra full-band refinement scan (the costliest kind per pixel) about 1.2 ns per pixel,
so scans × pixels is the work an attacker controls. A JPEG is refused when

* it has more than :data:`MAX_SCANS` = 500 scans, whatever its size (libjpeg-turbo's own fuzzers use that
  limit; a scan also has a fixed cost, so tiny images with 100 000 scans are slow too), or
* scans × pixels exceeds :data:`SCAN_WORK_PER_PIXEL_LIMIT` = 48 times :func:`esrkit.data.io.max_pixels`
  (8.6 × 10⁹ with the default limit): 48 scans at the largest image esrkit reads, about 10 s of scan passes
  on that machine, and 500 scans up to 17 Mpx.

Encoders write far fewer: libjpeg's and Pillow's progressive script has 10 scans for colour and 6 for
grayscale, mozjpeg's about a dozen. Both bounds follow ``$ESRKIT_MAX_PIXELS``: raising the pixel limit raises the
work allowed in proportion, and ``0`` (no limit) turns the check off as well.

The walk follows libjpeg's rules where a crafted file could hide a scan from a naive count: ``0xFF`` fill bytes
before a marker, garbage between segments (libjpeg skips it to the next marker, and so do we), restart markers
inside entropy-coded data, and nothing after the first end-of-image marker (Pillow decodes only the first image
of a multi-picture file).
"""

from __future__ import annotations

import mmap
import os
import re
from pathlib import Path

from ..errors import ImageReadError

__all__ = ["MAX_SCANS", "SCAN_WORK_PER_PIXEL_LIMIT", "check_jpeg_scans", "count_scans"]

MAX_SCANS = 500
SCAN_WORK_PER_PIXEL_LIMIT = 48  # scans × pixels ≤ this × max_pixels()

_SOI, _EOI, _SOS, _TEM = 0xD8, 0xD9, 0xDA, 0x01
_RST = range(0xD0, 0xD8)
# The next marker anywhere (as libjpeg's next_marker finds it): 0xFF, any 0xFF fill bytes, then a byte that is
# neither a stuffed zero nor another fill byte.
_ANY_MARKER = re.compile(rb"\xff+[^\x00\xff]")
# The end of a scan's entropy-coded data: a marker other than a restart marker (RSTn belongs to the scan).
_SCAN_END = re.compile(rb"\xff+[^\x00\xff\xd0-\xd7]")


def count_scans(data: bytes | mmap.mmap, *, stop_after: int | None = None) -> int:
    """The number of start-of-scan markers libjpeg would meet in ``data`` before the first end-of-image.

    ``stop_after`` ends the walk as soon as the count exceeds it (the caller has its answer). Malformed or
    truncated data ends the walk quietly: the decoder reports it, this only counts.
    """
    size = len(data)
    if size < 4 or data[0] != 0xFF or data[1] != _SOI:
        return 0
    scans = 0
    pos = 2
    while pos + 1 < size:
        if data[pos] != 0xFF or data[pos + 1] in (0x00, 0xFF):
            found = _ANY_MARKER.search(data, pos)  # fill bytes or garbage: skipped to the next marker
            if found is None:
                break
            pos = found.end() - 2
        marker = data[pos + 1]
        if marker == _EOI:
            break
        if marker in (_SOI, _TEM) or marker in _RST:  # markers without a length
            pos += 2
            continue
        if pos + 3 >= size:
            break
        end = pos + 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker != _SOS:
            pos = end
            continue
        scans += 1
        if stop_after is not None and scans > stop_after:
            break
        found = _SCAN_END.search(data, end)
        if found is None:
            break
        pos = found.end() - 2
    return scans


def check_jpeg_scans(path: str | os.PathLike[str], width: int, height: int, pixel_limit: int | None) -> None:
    """Raise :class:`ImageReadError` naming ``path`` when the JPEG's scans would make its decode run for minutes
    (see the module docstring); ``pixel_limit`` is :func:`esrkit.data.io.max_pixels` (None: no check)."""
    if pixel_limit is None:
        return
    pixels = max(1, width * height)
    most = min(MAX_SCANS, SCAN_WORK_PER_PIXEL_LIMIT * pixel_limit // pixels)
    path = Path(path)
    with open(path, "rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            return
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            scans = count_scans(data, stop_after=most)
    if scans > most:
        why = (f"more than {MAX_SCANS} scans" if most == MAX_SCANS else
               f"more than {most} scans at {width}×{height} (scans × pixels is bounded by "
               f"{SCAN_WORK_PER_PIXEL_LIMIT} × the pixel limit)")
        raise ImageReadError(f"{path}: progressive JPEG with {why}: decoding it would take minutes (a "
                             f"decode-time bomb? encoders write about 10 scans; raise $ESRKIT_MAX_PIXELS to "
                             "read it anyway)")
