"""Fuzz target: what ``esrkit upscale`` keeps of an image (:func:`esrkit.data.image_meta.read_source`, then
:func:`esrkit.data.image_save.save_image` of the frames as read, no model).

``read_source`` reaches code ``read_image`` never runs: frame seeking in animated WebP, APNG, GIF and AVIF, the
page count of a TIFF, EXIF parsing and the in-place orientation rewrite, 16-bit PNG/TIFF decoding through FFmpeg,
and the writers' ICC, EXIF, timing and 16-bit PNG paths. Seeds are small files of each kind (animated, with EXIF
orientation and an ICC profile, 16-bit colour and grey, transparent palette). The first byte of an input picks
the output format (PNG, WebP or JPEG; AVIF's encoder is too slow for a fuzz loop). Contract: frames of one shape
and dtype (C = 1, 3 or 4) with a duration each when animated, a written file, or an
:class:`~esrkit.errors.EsrkitError`.
"""

from __future__ import annotations

import struct
import zlib

import _harness
import atheris
import numpy as np
from PIL import Image, ImageCms

with atheris.instrument_imports(include=["esrkit", "PIL"]):
    from esrkit.data.image_meta import read_source
    from esrkit.data.image_save import save_image
    from esrkit.data.io import set_max_pixels

    Image.init()

MAX_LEN = 16384
_DIR = _harness.scratch_dir()
_PATH = _DIR / "input.img"
_OUTPUTS = (".png", ".webp", ".jpg")
set_max_pixels(1_000_000)  # every frame counts, and the writers hold them all: keep a mutated size affordable


def _png16(array: np.ndarray) -> bytes:
    height, width, channels = array.shape
    raw = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, {1: 0, 3: 2, 4: 6}[channels], 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def seeds() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    frames = [Image.fromarray(np.roll(rgb, k, axis=1)) for k in range(3)]
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "fuzz"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    out: dict[str, bytes] = {}

    def save(name: str, img: Image.Image, fmt: str, **kw: object) -> None:
        _harness.save_seed(out, name, img, fmt, **kw)

    anim = {"save_all": True, "append_images": frames[1:], "duration": [10, 20, 30], "loop": 2}
    save("webp_anim", frames[0], "WEBP", **anim)
    save("apng", frames[0].convert("RGBA"), "PNG", **anim)
    save("gif_anim", frames[0], "GIF", transparency=0, **anim)
    save("avif_anim", frames[0], "AVIF", quality=50, **anim)
    save("tiff_pages", frames[0], "TIFF", save_all=True, append_images=frames[1:])
    for fmt in ("JPEG", "PNG", "WEBP"):
        save(f"{fmt.lower()}_exif_icc", frames[0], fmt, exif=exif, icc_profile=icc)
    save("png_p_trns", frames[0].quantize(8), "PNG", transparency=0)
    save("png_rgb_trns", frames[0], "PNG", transparency=tuple(int(v) for v in rgb[0, 0]))
    save("png_la", frames[0].convert("LA"), "PNG")
    save("png_i16", Image.fromarray(rng.integers(0, 65536, (5, 6), dtype=np.uint16)), "PNG")
    out["png_rgb16"] = _png16(rng.integers(0, 65536, (5, 6, 3)).astype(np.uint16))
    out["png_rgba16"] = _png16(rng.integers(0, 65536, (5, 6, 4)).astype(np.uint16))
    return {name: bytes([i % len(_OUTPUTS)]) + data for i, (name, data) in enumerate(out.items())}


def test_one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    _PATH.write_bytes(data[1:])
    source = read_source(_PATH)
    shapes = {(f.shape[2], f.dtype) for f in source.frames}
    sizes = {f.shape[:2] for f in source.frames}
    if len(shapes) != 1 or len(sizes) != 1 or next(iter(shapes))[0] not in (1, 3, 4):
        raise AssertionError(f"frames differ or have odd channels: {shapes} {sizes}")
    if source.animated and len(source.durations) != len(source.frames):
        raise AssertionError(f"{len(source.frames)} frames but {len(source.durations)} durations")
    target = _DIR / f"output{_OUTPUTS[data[0] % len(_OUTPUTS)]}"
    save_image(target, source.frames, source, quality=90)
    if not target.is_file():
        raise AssertionError("save_image returned without writing")


if __name__ == "__main__":
    _harness.main(test_one_input, seeds, MAX_LEN)
