"""Image I/O: every input form maps to the documented RGB uint8 form; writes are atomic."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import esrkit.data.io
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


@pytest.mark.parametrize("name", ["out.png", "out.tif"])
def test_write_is_atomic_and_leaves_nothing_on_failure(tmp_path, monkeypatch, name):
    target = tmp_path / name
    write_image(target, RGB)
    before = target.read_bytes()

    def boom(fh, *_a, **_k):
        if hasattr(fh, "write"):
            fh.write(b"\x89PNG partial")  # a part written before the failure must not survive either
        raise RuntimeError("encoder failed")

    if name.endswith(".png"):  # PNG is esrkit's own encoder (png_encode), the rest Pillow's
        monkeypatch.setattr(esrkit.data.io, "encode_png", boom)
    else:
        monkeypatch.setattr(Image.Image, "save", lambda _self, *a, **k: boom(None))
    with pytest.raises(RuntimeError):
        write_image(target, np.zeros_like(RGB))
    assert target.read_bytes() == before  # old file untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temp file left


def test_write_rejects_unknown_extension(tmp_path):
    with pytest.raises(InputError, match="xyz"):
        write_image(tmp_path / "a.xyz", RGB)
    assert not list(tmp_path.iterdir())
    with pytest.raises(InputError, match=r"a\.png: expected an H×W×3 uint8 image, got uint8 \(2, 2, 5\)"):
        write_image(tmp_path / "a.png", np.zeros((2, 2, 5), np.uint8))
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


def _reference_to_image(tensor: torch.Tensor, value_range: float = 1.0) -> np.ndarray:
    """The formula tensor_to_image had before it worked in bands (a new tensor per step): the reference."""
    scaled = tensor[0].float() * (255.0 / value_range)
    return np.ascontiguousarray(scaled.clamp_(0, 255).round_().to(torch.uint8).permute(1, 2, 0).numpy())


@pytest.mark.parametrize("value_range", [1.0, 255.0, 3.7])
def test_tensor_to_image_matches_the_whole_tensor_formula(monkeypatch, value_range):
    monkeypatch.setattr(esrkit.data.io, "_TO_IMAGE_BAND", 3 * 37 * 5)  # 5 rows a band: 41 rows end in a part band
    gen = torch.Generator().manual_seed(5)
    scaled = torch.rand(1, 3, 41, 37, generator=gen) * 384 - 64  # after scaling: a sixth below 0, a sixth above 255
    scaled.view(-1)[::3] = torch.randint(-3, 259, (-(-scaled.numel() // 3),), generator=gen).float() + 0.5
    x = scaled * (value_range / 255.0)  # at 255 the ties are exactly k + 0.5, elsewhere within float rounding
    before = x.clone()
    expected = _reference_to_image(x, value_range)
    assert np.array_equal(tensor_to_image(x, value_range), expected)
    assert torch.equal(x, before)  # the caller's tensor is not touched
    if value_range == 255.0:
        hwc = scaled[0].permute(1, 2, 0).numpy()
        ties = (hwc % 1 == 0.5) & (hwc > 0) & (hwc < 255)
        assert ties.sum() > 1000 and (expected[ties] % 2 == 0).all()  # k + 0.5 went to the even neighbour
        assert (expected[hwc < 0] == 0).all() and (expected[hwc > 255] == 255).all()
    half = x.half()
    assert np.array_equal(tensor_to_image(half, value_range), _reference_to_image(half, value_range))


def test_tensor_to_image_fills_out_in_place():
    t = image_to_tensor(RGB)
    rgba = np.full((12, 10, 4), 7, np.uint8)
    assert tensor_to_image(t, out=rgba[..., :3]) is not None
    assert np.array_equal(rgba[..., :3], RGB) and (rgba[..., 3] == 7).all()
    with pytest.raises(InputError, match="out must be"):
        tensor_to_image(t, out=np.zeros((12, 10, 4), np.uint8))


def test_mod_crop():
    assert mod_crop(np.zeros((13, 10, 3)), 4).shape == (12, 8, 3)
