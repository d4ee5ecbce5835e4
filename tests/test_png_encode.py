"""esrkit's PNG encoder (``esrkit.data.png_encode``): what it writes is read back by Pillow's and FFmpeg's (PyAV)
decoders, pixel for pixel, at 8 and 16 bits, 1-4 channels, odd sizes and band boundaries; chunks carry valid
CRCs; the banded, threaded zlib stream is one valid stream (zlib checks its Adler-32); ICC and EXIF are read back.
Images are small, so every case takes milliseconds."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image, ImageCms

from esrkit.data.image_meta import read_source
from esrkit.data.image_save import save_image
from esrkit.data.io import write_image
from esrkit.data.png_encode import adler32_combine, encode_png
from esrkit.errors import InputError

RNG = np.random.default_rng(20)
ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


def _encode(image: np.ndarray, **options: object) -> bytes:
    buffer = io.BytesIO()
    encode_png(buffer, image, **options)  # type: ignore[arg-type]
    return buffer.getvalue()


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, data) of every chunk, checking each CRC and the signature independently of any decoder."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + body), kind
        chunks.append((kind, body))
        pos += 12 + length
    assert pos == len(data) and chunks[-1] == (b"IEND", b"")
    return chunks


def _pillow(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        array = np.asarray(img)
    return array if array.ndim == 3 else array[:, :, None]


def _ffmpeg16(data: bytes, channels: int) -> np.ndarray:
    """A 16-bit PNG decoded by FFmpeg (Pillow reads 16-bit colour as 8 bits), back to ``channels``."""
    with av.open(io.BytesIO(data), format="png_pipe") as container:
        rgba = next(container.decode(video=0)).reformat(format="rgba64le").to_ndarray()
    return rgba[..., [0, 3][:channels]] if channels <= 2 else rgba[..., :channels]


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize(("band", "threads"), [(None, None), (1, 2), (7, 3), (23, 2), (24, 1)])
def test_eight_bit_round_trips_through_pillow(channels: int, band: int | None, threads: int | None) -> None:
    image = RNG.integers(0, 256, (23, 13, channels), dtype=np.uint8)  # 23 rows: 7 makes three bands and a part
    data = _encode(image, band=band, threads=threads)
    assert np.array_equal(_pillow(data), image)
    with Image.open(io.BytesIO(data)) as img:
        assert img.mode == MODES[channels]
    idat = b"".join(body for kind, body in _chunks(data) if kind == b"IDAT")
    raw = zlib.decompress(idat)  # one zlib stream: header, the bands' deflate pieces, the combined Adler-32
    assert len(raw) == 23 * (1 + 13 * channels)
    assert set(raw[:: 1 + 13 * channels]) == {2}  # every row filtered Up


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("band", [None, 1, 5])
def test_sixteen_bit_round_trips_through_ffmpeg(channels: int, band: int | None) -> None:
    image = RNG.integers(0, 65536, (17, 9, channels)).astype(np.uint16)
    image[3] = image[2]  # a repeated row and flat runs: Paeth's other branches
    image[:, 4] = image[:, 3]
    data = _encode(image, band=band, threads=2)
    assert np.array_equal(_ffmpeg16(data, channels), image)
    if channels == 1:  # Pillow keeps 16-bit grey
        with Image.open(io.BytesIO(data)) as img:
            assert np.array_equal(np.asarray(img).astype(np.uint16), image[..., 0])


def test_strided_views_and_two_dimensional_grey() -> None:
    rgba = RNG.integers(0, 256, (30, 11, 4), dtype=np.uint8)
    assert np.array_equal(_pillow(_encode(rgba[..., :3], band=4)), rgba[..., :3])  # the colour of an RGBA buffer
    assert np.array_equal(_pillow(_encode(rgba[::2, ::3, 0]))[..., 0], rgba[::2, ::3, 0])
    big_endian = RNG.integers(0, 65536, (6, 5, 3)).astype(">u2")
    assert np.array_equal(_ffmpeg16(_encode(big_endian), 3), big_endian)
    one = np.array([[[255, 0, 7]]], np.uint8)
    assert np.array_equal(_pillow(_encode(one)), one)


def test_icc_and_exif_chunks_are_read_back_by_pillow() -> None:
    exif = Image.Exif()
    exif[0x010F] = "esrkit test camera"
    tiff = exif.tobytes()[6:]  # without the "Exif\0\0" prefix, as the eXIf chunk stores it
    for image in (RNG.integers(0, 256, (5, 6, 3), dtype=np.uint8), RNG.integers(0, 65536, (5, 6, 1)).astype(np.uint16)):
        data = _encode(image, icc_profile=ICC, exif=tiff)
        kinds = [kind for kind, _ in _chunks(data)]
        assert kinds.index(b"iCCP") < kinds.index(b"IDAT") and kinds.index(b"eXIf") < kinds.index(b"IDAT")
        with Image.open(io.BytesIO(data)) as img:
            assert img.info["icc_profile"] == ICC
            assert img.getexif()[0x010F] == "esrkit test camera"


def test_refuses_what_png_cannot_hold() -> None:
    with pytest.raises(InputError, match="1 to 4 channels"):
        encode_png(io.BytesIO(), np.zeros((2, 2, 5), np.uint8))
    with pytest.raises(InputError, match="float32"):
        encode_png(io.BytesIO(), np.zeros((2, 2, 3), np.float32))
    with pytest.raises(InputError, match="empty"):
        encode_png(io.BytesIO(), np.zeros((0, 2, 3), np.uint8))


@pytest.mark.parametrize("lengths", [(0, 5), (1, 0), (70_000, 3), (5, 200_000), (65_521, 65_522)])
def test_adler32_combine_equals_the_checksum_of_the_joined_bytes(lengths: tuple[int, int]) -> None:
    first, second = (RNG.integers(0, 256, n, dtype=np.uint8).tobytes() for n in lengths)
    assert adler32_combine(zlib.adler32(first), zlib.adler32(second), len(second)) == zlib.adler32(first + second)


def test_save_image_and_write_image_give_the_pixels_pillows_encoder_gave(tmp_path: Path) -> None:
    """The switch from Pillow's PNG encoder changes the bytes, not the pixels: both files decode alike."""
    for channels in (1, 2, 3, 4):
        image = RNG.integers(0, 256, (37, 29, channels), dtype=np.uint8)
        Image.fromarray(image[..., 0] if channels == 1 else image, MODES[channels]).save(tmp_path / "pil.png")
        save_image(tmp_path / "ours.png", [image], read_source(tmp_path / "pil.png"))  # the source: metadata only
        assert np.array_equal(_read(tmp_path / "ours.png"), _read(tmp_path / "pil.png"))
    rgb = RNG.integers(0, 256, (21, 19, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "pil.png")
    write_image(tmp_path / "ours.png", rgb)
    assert np.array_equal(_read(tmp_path / "ours.png"), _read(tmp_path / "pil.png"))


def _read(path: Path) -> np.ndarray:
    return _pillow(path.read_bytes())
