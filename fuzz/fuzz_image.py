"""Fuzz target: image decoding into esrkit's RGB form (:func:`esrkit.data.io.read_image`).

``read_image`` has no bytes entry point, so every input is written to one scratch file and read back in both
dtypes, the way ``esrkit evaluate``/``upscale`` read user files. Pillow picks the decoder from the content, not the
name, so the seeds (one small image per format Pillow can write, and several modes of PNG) lead the fuzzer into
every decoder a downloaded file could reach. Contract: an array of shape H×W×3 (uint8 or float32 in [0, 1]), or
an :class:`~esrkit.errors.EsrkitError`.
"""

from __future__ import annotations

import _harness
import atheris
import numpy as np
from PIL import Image

# Pillow's format plugins are Python, imported by Image.init(): instrumenting them too lets the fuzzer see which
# decoder branches an input reaches (esrkit's reader alone has a handful), and keep inputs that reach new ones.
with atheris.instrument_imports(include=["esrkit", "PIL"]):
    from esrkit.data.io import read_image, set_max_pixels

    Image.init()

MAX_LEN = 16384
_PATH = _harness.scratch_dir() / "input.img"
# A 43-byte GIF can promise 62,735 × 1,856 pixels, which the documented default limit (178,956,970 pixels,
# Pillow's own) admits and which decodes to 1.4 GB in uint8 plus float32: a legitimate image, but over the
# runner's 2 GB RSS bound (the first campaign's only image "finding"). The target fuzzes the decoders and the limit
# path, so it lowers the limit to 4 M pixels (48 MB as float32); tests/test_hostile_input.py covers the default.
set_max_pixels(4_000_000)


def seeds() -> dict[str, bytes]:
    """Small images in every format and mode the reader documents (and a few it does not)."""
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (7, 9, 3), dtype=np.uint8))
    out: dict[str, bytes] = {}

    def save(name: str, img: Image.Image, fmt: str, **kw: object) -> None:
        _harness.save_seed(out, name, img, fmt, **kw)

    for fmt in ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP", "PPM", "TGA", "PCX", "ICO", "SGI", "DDS", "QOI"):
        save(fmt.lower(), rgb, fmt)
    save("avif", rgb, "AVIF", quality=50)
    save("png_rgba", rgb.convert("RGBA"), "PNG")
    save("png_l", rgb.convert("L"), "PNG")
    save("png_la", rgb.convert("LA"), "PNG")
    save("png_p", rgb.convert("P"), "PNG")
    save("png_p_trns", rgb.convert("P"), "PNG", transparency=0)
    save("png_i16", Image.fromarray(rng.integers(0, 65536, (5, 6), dtype=np.uint16)), "PNG")
    save("png_1", rgb.convert("1"), "PNG")
    save("tiff_cmyk", rgb.convert("CMYK"), "TIFF")
    save("tiff_i16", Image.fromarray(rng.integers(0, 65536, (5, 6), dtype=np.uint16)), "TIFF")
    save("jpeg_cmyk", rgb.convert("CMYK"), "JPEG")
    save("jpeg_progressive", rgb, "JPEG", progressive=True)
    save("gif_anim", rgb, "GIF", save_all=True, append_images=[rgb.rotate(90, expand=True)])
    save("webp_lossless", rgb.convert("RGBA"), "WEBP", lossless=True)
    return out


def test_one_input(data: bytes) -> None:
    _PATH.write_bytes(data)
    for dtype in ("uint8", "float32"):
        array = read_image(_PATH, dtype=dtype)
        if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.dtype(dtype):
            raise AssertionError(f"read_image returned {array.dtype} {array.shape}, not H×W×3 {dtype}")
        if dtype == "float32" and array.size and not (float(array.min()) >= 0.0 and float(array.max()) <= 1.0):
            raise AssertionError(f"float32 image outside [0, 1]: {array.min()}..{array.max()}")


if __name__ == "__main__":
    _harness.main(test_one_input, seeds, MAX_LEN)
