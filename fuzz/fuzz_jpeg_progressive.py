"""Fuzz target: progressive JPEGs and the scan-count bound (:mod:`esrkit.data.jpeg_scans`) in front of
:func:`esrkit.data.io.read_image`.

The danger here is time, not an exception: a scan libjpeg decodes but the count misses is a full pass over the
image the bound did not pay for, and enough of them are minutes (the issue's 10 000-scan file: 343 s). So the
target claims large sizes and many scans, and a miscount shows up as libFuzzer's ``-timeout`` finding. Two kinds
of input, picked by the first byte:

* **raw** (even): the rest is a JPEG file; the seeds are progressive JPEGs with repeated scans, ``0xFF`` fill
  bytes, garbage and stray restart markers between scans, a thumbnail full of scans inside an APP1 segment, restart
  intervals, grayscale, and the baseline and CMYK files the image target starts from;
* **built** (odd): the rest chooses a claimed size (up to 4096 × 4096), a number of extra copies of the last scan
  (up to 3000) and one of the separators libjpeg skips; the target builds the file, checks that
  :func:`~esrkit.data.jpeg_scans.count_scans` counts exactly the scans it put in (an ``AssertionError`` otherwise:
  a finding), then reads it.

Contract: an H×W×3 array or an :class:`~esrkit.errors.EsrkitError`. The pixel limit is lowered to 16 M pixels (the
scan bound follows it: at most 48 × 16 M scan-pixels, about a second), so memory stays far below the runner's bound
and a decode that runs for ``-timeout`` seconds can only be a scan the bound did not see.
"""

from __future__ import annotations

import io
import struct

import _harness
import atheris
import numpy as np
from PIL import Image

with atheris.instrument_imports(include=["esrkit", "PIL.JpegImagePlugin"]):
    from esrkit.data.io import read_image, set_max_pixels
    from esrkit.data.jpeg_scans import count_scans

    Image.init()

MAX_LEN = 65536
_PATH = _harness.scratch_dir() / "input.jpg"
SEPARATORS = (b"", b"\xff", b"\xff\xff\xff", b"junk", b"\x00\xff\x00", b"\xff\xd3", b"\xff\x00\xff\xff")
set_max_pixels(16_000_000)


def _jpeg(img: Image.Image, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", **kw)
    return buf.getvalue()


def _last_scan(data: bytes) -> tuple[int, int]:
    """Start and end of the last scan of a well-formed JPEG (plain walk: segments by length, entropy data to the
    next non-restart marker)."""
    pos, found = 2, (0, 0)
    while pos < len(data) and data[pos + 1] != 0xD9:
        end = pos + 2 + struct.unpack(">H", data[pos + 2:pos + 4])[0]
        if data[pos + 1] == 0xDA:
            while not (data[end] == 0xFF and data[end + 1] not in (0,) and not 0xD0 <= data[end + 1] <= 0xD7):
                end += 1
            found = (pos, end)
        pos = end
    return found


def _repeat(data: bytes, times: int, between: bytes = b"") -> bytes:
    start, end = _last_scan(data)
    return data[:end] + (between + data[start:end]) * times + data[end:]


def _resize(data: bytes, width: int, height: int) -> bytes:
    out = bytearray(data)
    sof = out.find(b"\xff\xc2")
    struct.pack_into(">HH", out, sof + 5, height, width)
    return bytes(out)


_RNG = np.random.default_rng(0)
_BASE = Image.fromarray(_RNG.integers(0, 256, (5, 6, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1))
_PROGRESSIVE = _jpeg(_BASE, progressive=True, quality=80)


def seeds() -> dict[str, bytes]:
    plain = _PROGRESSIVE
    thumb = _repeat(_jpeg(_BASE.resize((16, 16)), progressive=True), 600)
    app1 = b"\xff\xe1" + struct.pack(">H", len(thumb) + 2) + thumb
    out = {
        "progressive": plain,
        "gray": _jpeg(_BASE.convert("L"), progressive=True),
        "restart": _jpeg(_BASE, progressive=True, restart_marker_blocks=2),
        "baseline": _jpeg(_BASE),
        "cmyk": _jpeg(_BASE.convert("CMYK"), progressive=True),
        "repeated": _repeat(plain, 40),
        "many": _repeat(plain, 600),
        "thumbnail": plain[:2] + app1 + plain[2:],
        "large": _resize(_repeat(plain, 30), 4000, 4000),
    }
    for i, sep in enumerate(SEPARATORS[1:]):
        out[f"sep{i}"] = _repeat(plain, 30, sep)
    return {name: bytes([0]) + data for name, data in out.items()} | {"built": bytes([1, 40, 0, 0, 100, 0, 2])}


def _built(fdp: atheris.FuzzedDataProvider) -> bytes:
    width = fdp.ConsumeIntInRange(1, 4096)
    height = fdp.ConsumeIntInRange(1, 4096)
    times = fdp.ConsumeIntInRange(0, 3000)
    between = SEPARATORS[fdp.ConsumeIntInRange(0, len(SEPARATORS) - 1)]
    data = _resize(_repeat(_PROGRESSIVE, times, between), width, height)
    expected = 10 + times
    counted = count_scans(data)
    if counted != expected:
        raise AssertionError(f"count_scans: {counted} scans counted, {expected} built (separator {between!r})")
    return data


def test_one_input(data: bytes) -> None:
    if not data:
        return
    payload = _built(atheris.FuzzedDataProvider(data[1:])) if data[0] % 2 else data[1:]
    count_scans(payload)  # never raises, whatever the bytes
    _PATH.write_bytes(payload)
    array = read_image(_PATH)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise AssertionError(f"read_image returned {array.dtype} {array.shape}, not H×W×3 uint8")


if __name__ == "__main__":
    _harness.main(test_one_input, seeds, MAX_LEN)
