"""Image I/O: every input form maps to the documented RGB uint8 form; writes are atomic."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from esrkit.data.io import image_to_tensor, mod_crop, read_image, tensor_to_image, write_image
from esrkit.errors import ImageReadError, InputError

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (12, 10, 3), dtype=np.uint8)


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tiff", ".webp"])
def test_lossless_roundtrip(tmp_path, ext):
    path = tmp_path / f"a{ext}"
    Image.fromarray(RGB).save(path, **({"lossless": True} if ext == ".webp" else {}))
    out = read_image(path)
    assert out.dtype == np.uint8 and out.shape == (12, 10, 3)
    np.testing.assert_array_equal(out, RGB)


def test_jpeg_and_avif_read_as_rgb(tmp_path):
    yy, xx = np.mgrid[0:32, 0:40]
    smooth = np.dstack([yy * 6, xx * 5, (yy + xx) * 3]).astype(np.uint8)  # compressible, unlike noise
    for ext in (".jpg", ".avif"):
        path = write_image(tmp_path / f"a{ext}", smooth, quality=95)
        out = read_image(path)
        assert out.shape == (32, 40, 3) and out.dtype == np.uint8
        assert np.abs(out.astype(int) - smooth.astype(int)).mean() < 4  # lossy, but the same picture


def test_grayscale_is_replicated(tmp_path):
    gray = RGB[..., 0]
    Image.fromarray(gray, "L").save(tmp_path / "g.png")
    out = read_image(tmp_path / "g.png")
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], gray)


def test_rgba_drops_alpha_without_compositing(tmp_path):
    rgba = np.dstack([RGB, np.zeros((12, 10), np.uint8)])  # fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), RGB)


def test_palette_expands_through_palette(tmp_path):
    img = Image.fromarray(RGB).quantize(colors=16)
    img.save(tmp_path / "p.png")
    expected = np.asarray(img.convert("RGB"))
    np.testing.assert_array_equal(read_image(tmp_path / "p.png"), expected)


def test_sixteen_bit_gray_maps_by_257(tmp_path):
    values = np.array([[0, 257, 65535, 128 * 257 + 128]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    np.testing.assert_array_equal(read_image(tmp_path / "g16.png")[..., 0], [[0, 1, 255, 128]])
    np.testing.assert_allclose(read_image(tmp_path / "g16.png", dtype="float32")[..., 0],
                               values / 65535.0, rtol=1e-6)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(InputError, match="no such image"):
        read_image(tmp_path / "nope.png")
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    with pytest.raises(ImageReadError, match=r"junk\.png"):
        read_image(tmp_path / "junk.png")
    good = write_image(tmp_path / "ok.png", RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    data = good.read_bytes()
    (tmp_path / "trunc.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=r"trunc\.png"):
        read_image(tmp_path / "trunc.png")


def test_write_is_atomic_and_leaves_nothing_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    write_image(target, RGB)
    before = target.read_bytes()

    def boom(*_a, **_k):
        raise RuntimeError("encoder failed")

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(RuntimeError):
        write_image(target, np.zeros_like(RGB))
    assert target.read_bytes() == before  # old file untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]  # no temp file left


def test_write_rejects_unknown_extension(tmp_path):
    with pytest.raises(InputError, match="xyz"):
        write_image(tmp_path / "a.xyz", RGB)
    assert not list(tmp_path.iterdir())


def test_tensor_helpers_value_ranges():
    t1 = image_to_tensor(RGB)
    t255 = image_to_tensor(RGB, value_range=255.0)
    assert t1.shape == (1, 3, 12, 10) and float(t1.max()) <= 1.0
    torch.testing.assert_close(t1 * 255.0, t255)
    np.testing.assert_array_equal(tensor_to_image(t1), RGB)
    np.testing.assert_array_equal(tensor_to_image(t255, value_range=255.0), RGB)


def test_tensor_to_image_clamps_and_rounds_half_to_even():
    t = torch.tensor([[-0.5, 0.5 / 255, 1.5 / 255, 2.0]]).view(1, 1, 1, 4).repeat(1, 3, 1, 1)
    assert tensor_to_image(t)[0, :, 0].tolist() == [0, 0, 2, 255]  # numpy-style round: 0.5→0, 1.5→2


def test_mod_crop():
    assert mod_crop(np.zeros((13, 10, 3)), 4).shape == (12, 8, 3)
