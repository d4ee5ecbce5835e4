"""Progressive JPEGs built for the scan-count tests and the ``jpeg_progressive`` fuzz seeds.

Pillow writes libjpeg's standard progression (10 scans for colour); the helpers here walk its segments in the
plainest way (every header segment by its length, a scan's data to the next non-restart marker), repeat one scan
and patch the frame header's size. Repeating the last scan (luma AC refinement, a few bytes of end-of-band run)
is what a decode-time bomb does: each copy costs libjpeg a full pass over the image and the file almost nothing.
"""

from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image


def progressive_jpeg(width: int, height: int, seed: int = 0) -> bytes:
    """A blocky random colour image written by Pillow as a progressive JPEG (10 scans)."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    pixels = blocks.repeat(8, 0).repeat(8, 1)[:height, :width]
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", progressive=True, quality=80)
    return buf.getvalue()


def segments(data: bytes) -> list[tuple[int, int, int]]:
    """``(marker, start, end)`` of every segment of a well-formed JPEG up to and including EOI."""
    out, pos = [], 2
    while pos < len(data):
        assert data[pos] == 0xFF, f"no marker at {pos}"
        marker = data[pos + 1]
        if marker == 0xD9:
            out.append((marker, pos, pos + 2))
            break
        end = pos + 2 + struct.unpack(">H", data[pos + 2:pos + 4])[0]
        if marker == 0xDA:  # entropy-coded data: to the next 0xFF not followed by a stuffed zero or RSTn
            while not (data[end] == 0xFF and data[end + 1] != 0 and not 0xD0 <= data[end + 1] <= 0xD7):
                end += 1
        out.append((marker, pos, end))
        pos = end
    return out


def scan_count(data: bytes) -> int:
    return sum(1 for marker, _, _ in segments(data) if marker == 0xDA)


def with_repeated_scan(data: bytes, times: int, *, between: bytes = b"") -> bytes:
    """``data`` with its last scan repeated ``times`` more times, ``between`` put before each copy."""
    _, start, end = [s for s in segments(data) if s[0] == 0xDA][-1]
    return data[:end] + (between + data[start:end]) * times + data[end:]


def with_size(data: bytes, width: int, height: int) -> bytes:
    """``data`` with its progressive frame header (SOF2) claiming ``width`` × ``height``: the scans then hold
    far too little data, which libjpeg fills with zeros after a warning, as a crafted file would."""
    _, start, _ = next(s for s in segments(data) if s[0] == 0xC2)
    patched = bytearray(data)
    struct.pack_into(">HH", patched, start + 5, height, width)
    return bytes(patched)
