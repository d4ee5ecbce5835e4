"""``esrkit upscale`` keeps what makes an image itself: EXIF orientation (applied, then reset), alpha, ICC profile,
EXIF, 16 bits and animation, or refuses with one line (JPEG with transparency, animation to JPEG, multi-page
TIFF). Inputs are made with Pillow, raw bytes or tifffile, and outputs read back with Pillow and PyAV, so what is
checked is what a viewer finds in the files; images are tiny (16×12) so each run takes a fraction of a second."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

from esrkit.cli import main
from esrkit.data.image_meta import orient, read_source, reset_orientation
from esrkit.data.png_encode import encode_png
from esrkit.data.resize import imresize
from esrkit.infer import Upscaler
from esrkit.infer.image_job import upscale_alpha
from esrkit.models import create_model

RNG = np.random.default_rng(18)
H, W = 12, 16
ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.fixture(scope="module")
def bicubic() -> Upscaler:
    return Upscaler(create_model("bicubic", scale=4), 4)


def _run(src: Path, out: Path, *extra: str, model: tuple[str, ...] = ("--model", "bicubic")) -> int:
    return main(["upscale", str(src), "-o", str(out), *model, "--device", "cpu", *extra])


def _smooth(h: int = H, w: int = W) -> np.ndarray:
    """A smooth colour picture (compresses well, survives lossy formats)."""
    yy, xx = np.mgrid[0:h, 0:w]
    return np.dstack([yy * 255 // (h - 1), xx * 255 // (w - 1), (yy + xx) * 255 // (h + w - 2)]).astype(np.uint8)


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "esrkit test camera"  # Make: must travel unchanged
    return exif


def _png16(array: np.ndarray) -> bytes:
    """A 16-bit PNG written by hand (filter 0), independent of the encoder under test."""
    h, w = array.shape[:2]
    channels = 1 if array.ndim == 2 else array.shape[2]
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    raw = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _one_line_exit_2(code: int, capsys: pytest.CaptureFixture[str], needle: str) -> None:
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and needle in err, err


# ------------------------------------------------------------------------------------------------ orientation


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orient_matches_pillows_exif_transpose(orientation: int) -> None:
    stored = RNG.integers(0, 256, (H, W, 3), dtype=np.uint8)
    img = Image.fromarray(stored)
    img.info["exif"] = _exif(orientation).tobytes()
    expected = np.asarray(ImageOps.exif_transpose(img))
    assert np.array_equal(orient(stored, orientation), expected)


def test_exif_orientation_6_comes_out_upright_with_exif_kept(tmp_path: Path, bicubic: Upscaler) -> None:
    """Orientation 6 (rotate 90° clockwise to display): a bright block stored top-left shows top-right."""
    stored = np.full((H, W, 3), 20, np.uint8)
    stored[:4, :4] = 240
    src = tmp_path / "phone.jpg"
    Image.fromarray(stored).save(src, quality=100, exif=_exif(6))
    for fmt in ("png", "jpg", "webp", "avif"):
        assert _run(src, tmp_path / fmt, "--format", fmt) == 0
        with Image.open(tmp_path / fmt / f"phone.{fmt}") as out:
            assert out.size == (4 * H, 4 * W)  # width × height: the displayed way round
            exif = out.getexif()
            # Pillow's AVIF writer moves an orientation into the container (none, for 1) and drops the tag
            assert exif.get(0x0112) == (None if fmt == "avif" else 1) and exif.get(0x010F) == "esrkit test camera"
            sr = np.asarray(out.convert("RGB")).astype(int)
        quadrants = {"top-left": sr[:32, :24], "top-right": sr[:32, 24:], "bottom-left": sr[32:, :24],
                     "bottom-right": sr[32:, 24:]}
        brightest = max(quadrants, key=lambda q: quadrants[q].mean())
        assert brightest == "top-right", (fmt, {q: round(a.mean()) for q, a in quadrants.items()})
    with Image.open(src) as img:
        upright = np.asarray(ImageOps.exif_transpose(img).convert("RGB"))
    png = np.asarray(Image.open(tmp_path / "png" / "phone.png").convert("RGB"))
    assert np.array_equal(png, bicubic(upright))


@pytest.mark.parametrize("fmt", ["png", "webp", "tiff"])
def test_orientation_is_applied_from_png_webp_and_tiff_too(tmp_path: Path, fmt: str, bicubic: Upscaler) -> None:
    stored = RNG.integers(0, 256, (H, W, 3), dtype=np.uint8)
    src = tmp_path / f"a.{fmt}"
    Image.fromarray(stored).save(src, exif=_exif(8), **({"lossless": True} if fmt == "webp" else {}))
    with Image.open(src) as img:
        upright = np.asarray(ImageOps.exif_transpose(img).convert("RGB"))
    assert upright.shape == (W, H, 3)
    assert _run(src, tmp_path / "out") == 0
    with Image.open(tmp_path / "out" / "a.png") as out:
        assert np.array_equal(np.asarray(out), bicubic(upright))
        assert out.getexif().get(0x0112) == (None if fmt == "tiff" else 1)  # a TIFF's tags are not carried


def test_reset_orientation_changes_two_bytes_only() -> None:
    for order in ("<", ">"):
        exif = _exif(8)
        raw = exif.tobytes()[6:] if order == ">" else _little_endian_exif(8)
        patched = reset_orientation(raw)
        assert patched is not None and len(patched) == len(raw)
        assert sum(a != b for a, b in zip(raw, patched, strict=True)) == 1  # 8 → 1 in one byte of the SHORT
        reread = Image.Exif()
        reread.load(b"Exif\x00\x00" + patched)
        assert reread[0x0112] == 1 and reread[0x010F] == "esrkit test camera"
    assert reset_orientation(b"not exif") is None


def _little_endian_exif(orientation: int) -> bytes:
    """An EXIF block in Intel byte order (Pillow writes Motorola): header, one IFD with Make and Orientation."""
    make = b"esrkit test camera\x00"
    entries = 2
    data_at = 8 + 2 + 12 * entries + 4
    ifd = struct.pack("<H", entries)
    ifd += struct.pack("<HHII", 0x010F, 2, len(make), data_at)
    ifd += struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + make


# ------------------------------------------------------------------------------------------------------ alpha


def _rgba() -> np.ndarray:
    """A disc of opaque colour, soft rim, on alpha 0 over saturated hidden colours."""
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[..., :3] = _smooth()
    rgba[:, :, 0] = np.where(np.arange(W) < 3, 255, rgba[:, :, 0])  # hidden red down the left edge
    yy, xx = np.mgrid[0:H, 0:W]
    radius = np.hypot(yy - 5.5, xx - 9.5)
    rgba[..., 3] = np.clip((5.0 - radius) * 128, 0, 255).astype(np.uint8)
    return rgba


def test_rgba_comes_out_rgba_with_alpha_upscaled(tmp_path: Path, bicubic: Upscaler) -> None:
    rgba = _rgba()
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert _run(tmp_path / "a.png", tmp_path / "out") == 0
    with Image.open(tmp_path / "out" / "a.png") as out:
        assert out.mode == "RGBA" and out.size == (4 * W, 4 * H)
        sr = np.asarray(out)
    # colour: the model's output on the stored colour, hidden colours included (never premultiplied)
    assert np.array_equal(sr[..., :3], bicubic(np.ascontiguousarray(rgba[..., :3])))
    # alpha: close to an independent bicubic (Pillow's, with its own border handling and fixed-point weights)
    pillow = np.asarray(Image.fromarray(rgba[..., 3]).resize((4 * W, 4 * H), Image.Resampling.BICUBIC)).astype(int)
    assert np.abs(sr[..., 3].astype(int) - pillow).mean() < 2.0
    # far from the disc the alpha stays exactly 0 (hidden colours stay hidden) and its centre fully opaque
    assert (sr[:, :8, 3] == 0).all() and sr[22, 38, 3] == 255


def test_rgba_through_the_bundled_model(tmp_path: Path) -> None:
    """The default model (esrkit_x4) too: colour by the model, alpha flat where the input's is."""
    rgba = _rgba()
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.webp", lossless=True)
    assert _run(tmp_path / "a.webp", tmp_path / "out", model=()) == 0
    with Image.open(tmp_path / "out" / "a.png") as out:
        assert out.mode == "RGBA" and out.size == (4 * W, 4 * H)
        alpha = np.asarray(out)[..., 3]
    assert (alpha[:, :8] == 0).all() and alpha[22, 38] == 255
    assert np.array_equal(alpha, imresize(rgba[..., 3], 4))


def test_transparent_palette_grey_alpha_and_colour_key_come_out_rgba(tmp_path: Path) -> None:
    rgba = _rgba()
    palette = Image.fromarray(rgba[..., :3]).quantize(colors=8)
    palette.save(tmp_path / "p.png", transparency=0)
    Image.fromarray(np.dstack([rgba[..., 1], rgba[..., 3]]), "LA").save(tmp_path / "la.png")
    keyed = _smooth()
    Image.fromarray(keyed).save(tmp_path / "key.png", transparency=tuple(int(v) for v in keyed[0, 0]))
    with Image.open(tmp_path / "p.png") as img:
        hidden = np.asarray(img.convert("RGBA"))[..., 3] == 0  # where the palette's transparent entry is used
    expected_alpha = {"p": np.where(hidden, 0, 255), "la": rgba[..., 3], "key": np.where(
        (keyed == keyed[0, 0]).all(axis=2), 0, 255)}
    for name, alpha in expected_alpha.items():
        assert _run(tmp_path / f"{name}.png", tmp_path / "out") == 0
        with Image.open(tmp_path / "out" / f"{name}.png") as out:
            assert out.mode == "RGBA" and out.size == (4 * W, 4 * H), name
            assert np.array_equal(np.asarray(out.getchannel("A")), imresize(alpha.astype(np.uint8), 4)), name


def test_upscale_alpha_in_bands_equals_the_whole_plane() -> None:
    alpha = RNG.integers(0, 256, (37, 11), dtype=np.uint8)
    assert np.array_equal(upscale_alpha(alpha, 3, band=5), imresize(alpha, 3))
    deep = RNG.integers(0, 65536, (9, 7), dtype=np.uint16)
    assert np.array_equal(upscale_alpha(deep, 4, band=2), imresize(deep, 4))


def test_jpeg_output_of_a_transparent_input_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Image.fromarray(_rgba(), "RGBA").save(tmp_path / "a.png")
    _one_line_exit_2(_run(tmp_path / "a.png", tmp_path / "out", "--format", "jpg"), capsys,
                     "a.png has transparency (alpha), which JPEG cannot hold")
    assert not (tmp_path / "out").exists()
    opaque = _rgba()
    opaque[..., 3] = 255  # an alpha that hides nothing is dropped: nothing to refuse
    Image.fromarray(opaque, "RGBA").save(tmp_path / "b.png")
    assert _run(tmp_path / "b.png", tmp_path / "out", "--format", "jpg") == 0
    assert Image.open(tmp_path / "out" / "b.jpg").mode == "RGB"


# -------------------------------------------------------------------------------------------------------- ICC


@pytest.mark.parametrize("fmt", ["png", "jpg", "webp", "avif"])
def test_icc_profile_is_kept_byte_for_byte(tmp_path: Path, fmt: str) -> None:
    profile = bytearray(ICC)
    profile[-8:] = b"esrkit18"  # a profile of our own, so that no encoder default could pass for it
    Image.fromarray(_smooth()).save(tmp_path / "a.png", icc_profile=bytes(profile))
    assert _run(tmp_path / "a.png", tmp_path / "out", "--format", fmt) == 0
    with Image.open(tmp_path / "out" / f"a.{fmt}") as out:
        assert out.info.get("icc_profile") == bytes(profile)


# ----------------------------------------------------------------------------------------------------- 16 bits


def test_sixteen_bit_grey_png_comes_out_sixteen_bit(tmp_path: Path) -> None:
    yy, xx = np.mgrid[0:H, 0:W]
    grey = (yy * W + xx) * 65535 // (H * W - 1)  # 0 … 65535, far from multiples of 257
    Image.fromarray(grey.astype(np.uint16)).save(tmp_path / "g16.png", icc_profile=_grey_icc())
    Image.fromarray(((grey + 128) // 257).astype(np.uint8)).save(tmp_path / "g8.png")
    assert _run(tmp_path / "g16.png", tmp_path / "out") == 0 and _run(tmp_path / "g8.png", tmp_path / "out") == 0
    with Image.open(tmp_path / "out" / "g16.png") as out:
        assert out.mode == "I;16" and out.size == (4 * W, 4 * H)
        assert out.info.get("icc_profile") == _grey_icc()
        deep = np.asarray(out).astype(int)
    eight = np.asarray(Image.open(tmp_path / "out" / "g8.png")).astype(int)
    assert deep.min() < 1000 and deep.max() > 64500  # the full range
    assert len(np.unique(deep & 0xFF)) > 100 and (deep % 257 != 0).mean() > 0.9  # low-order bits carry detail
    assert np.abs(deep / 257 - eight).max() < 1.5  # the same picture as the 8-bit run, at 256× the precision


def _grey_icc() -> bytes:
    grey = bytearray(ICC)
    grey[16:20] = b"GRAY"  # a grey profile's colour-space field: only such a profile may travel with grey pixels
    return bytes(grey)


def test_sixteen_bit_rgb_png_and_tiff_come_out_sixteen_bit(tmp_path: Path, bicubic: Upscaler) -> None:
    """Pillow reduces 16-bit colour to 8 bits; esrkit decodes it through FFmpeg and writes a 16-bit PNG."""
    rgb = RNG.integers(0, 65536, (H, W, 3)).astype(np.uint16)
    (tmp_path / "c16.png").write_bytes(_png16(rgb))
    tifffile = pytest.importorskip("tifffile")
    tifffile.imwrite(tmp_path / "t16.tif", rgb, photometric="rgb")
    rgba = np.dstack([rgb, RNG.integers(0, 65536, (H, W)).astype(np.uint16)])
    (tmp_path / "c16a.png").write_bytes(_png16(rgba))
    for name, channels in (("c16", 3), ("t16", 3), ("c16a", 4)):
        assert _run(tmp_path / (name + (".tif" if name == "t16" else ".png")), tmp_path / "out") == 0
        with av.open(str(tmp_path / "out" / f"{name}.png")) as container:
            frame = next(container.decode(video=0))
            assert frame.format.name == ("rgb48be" if channels == 3 else "rgba64be")
            sr = frame.to_ndarray()
        expected = (bicubic.upscale_tensor(_as_tensor(rgb))[0].permute(1, 2, 0).numpy() * 65535).round()
        assert sr.shape == (4 * H, 4 * W, channels)
        assert np.abs(sr[..., :3] - expected).max() <= 1, name
        if channels == 4:
            assert np.array_equal(sr[..., 3], imresize(rgba[..., 3], 4))


def _as_tensor(array: np.ndarray) -> object:
    import torch

    return torch.from_numpy(array.astype(np.float32) / 65535).permute(2, 0, 1)[None]


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_encode_png_16_bit_round_trips(channels: int) -> None:
    image = RNG.integers(0, 65536, (70, 9, channels)).astype(np.uint16)  # 70 rows: two bands and a part
    buffer = io.BytesIO()
    encode_png(buffer, image, icc_profile=ICC, band=32)
    buffer.seek(0)
    with av.open(buffer, format="png_pipe") as container:
        frame = next(container.decode(video=0))
        decoded = frame.reformat(format="rgba64le").to_ndarray()
    expected = image[..., [0, 0, 0, 1][:channels + 2]] if channels <= 2 else image  # grey replicated to RGB
    assert np.array_equal(decoded[..., : expected.shape[2]], expected)
    buffer.seek(0)
    with Image.open(buffer) as img:
        assert img.info["icc_profile"] == ICC


# ------------------------------------------------------------------------------------------------- animation


def _frames(count: int = 3, alpha: bool = False) -> list[Image.Image]:
    frames = []
    for k in range(count):
        array = np.roll(_smooth(), 5 * k, axis=1)
        array[..., 2] = 60 * k  # each frame told apart by its blue level
        frames.append(Image.fromarray(np.dstack([array, np.full((H, W), 255 - 80 * k, np.uint8)]) if alpha
                                      else array))
    return frames


@pytest.mark.parametrize(("src_fmt", "out_fmt"), [("webp", "webp"), ("png", "png"), ("gif", "png"),
                                                   ("webp", "png"), ("png", "avif")])
def test_animation_keeps_frames_durations_and_loop(tmp_path: Path, src_fmt: str, out_fmt: str) -> None:
    frames = _frames(3, alpha=src_fmt != "gif")
    durations = [100, 150, 250]
    params = {"lossless": True} if src_fmt == "webp" else {}
    frames[0].save(tmp_path / f"anim.{src_fmt}", save_all=True, append_images=frames[1:], duration=durations,
                   loop=3, **params)
    assert _run(tmp_path / f"anim.{src_fmt}", tmp_path / "out", "--format", out_fmt) == 0
    with Image.open(tmp_path / "out" / f"anim.{out_fmt}") as out:
        assert out.format == out_fmt.upper() and out.n_frames == 3
        assert out.info.get("loop") == (None if out_fmt == "avif" else 3)  # Pillow's AVIF has no loop count
        seen = []
        for k in range(3):
            out.seek(k)
            out.load()
            assert out.size == (4 * W, 4 * H)
            assert out.info.get("duration") == durations[k]
            seen.append(np.asarray(out.convert("RGBA")))
    for k, sr in enumerate(seen):
        assert abs(sr[..., 2].mean() - 60 * k) < 4  # frame k is input frame k
        if src_fmt != "gif":
            assert abs(sr[..., 3].mean() - (255 - 80 * k)) < 2  # and keeps its alpha


def test_gif_with_transparency_comes_out_as_apng_with_alpha(tmp_path: Path) -> None:
    frames = []
    for k in range(2):
        frame = Image.fromarray(np.roll(_smooth(), 4 * k, axis=0)).quantize(colors=16)
        frame.info["transparency"] = 3
        frames.append(frame)
    frames[0].save(tmp_path / "t.gif", save_all=True, append_images=frames[1:], duration=[70, 90], loop=0,
                   transparency=3, disposal=2)
    with Image.open(tmp_path / "t.gif") as img:
        expected = []
        for k in range(2):
            img.seek(k)
            expected.append(np.asarray(img.convert("RGBA"))[..., 3])
    assert any((a == 0).any() for a in expected)
    assert _run(tmp_path / "t.gif", tmp_path / "out") == 0
    with Image.open(tmp_path / "out" / "t.png") as out:
        assert out.n_frames == 2 and out.info.get("loop") == 0
        for k in range(2):
            out.seek(k)
            out.load()
            assert out.mode == "RGBA" and out.info.get("duration") == [70, 90][k]
            assert np.array_equal(np.asarray(out.getchannel("A")), imresize(expected[k], 4)), k


def test_animation_to_jpeg_and_multipage_tiff_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frames = _frames(2)
    frames[0].save(tmp_path / "anim.webp", save_all=True, append_images=frames[1:], duration=[100, 100])
    _one_line_exit_2(_run(tmp_path / "anim.webp", tmp_path / "out", "--format", "jpg"), capsys,
                     "anim.webp is an animation of 2 frames, and JPEG holds one picture")
    frames[0].save(tmp_path / "pages.tif", save_all=True, append_images=frames[1:])
    _one_line_exit_2(_run(tmp_path / "pages.tif", tmp_path / "out"), capsys, "pages.tif: a multi-page TIFF (2 pages)")
    assert not (tmp_path / "out").exists()


def test_frames_count_against_the_pixel_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from esrkit.errors import ImageReadError

    frames = _frames(3)
    frames[0].save(tmp_path / "anim.webp", save_all=True, append_images=frames[1:], duration=100)
    monkeypatch.setenv("ESRKIT_MAX_PIXELS", str(2 * H * W))  # one frame fits, three do not
    with pytest.raises(ImageReadError, match="3 frames of 16×12"):
        read_source(tmp_path / "anim.webp")


@pytest.mark.filterwarnings("ignore")  # Pillow warns about each truncated TIFF tag it skips
@pytest.mark.parametrize("fmt", ["GIF", "TIFF", "WEBP", "PNG"])
def test_damaged_later_frames_are_one_line_errors(tmp_path: Path, fmt: str) -> None:
    """A multi-frame file cut anywhere: Pillow's frame seeking raised IndexError, struct.error, TypeError or
    KeyError on such files (a mutation run found them); each is now an ImageReadError naming the file."""
    from esrkit.errors import ImageReadError

    frames = _frames(3)
    buffer = io.BytesIO()
    frames[0].save(buffer, fmt, save_all=True, append_images=frames[1:], duration=[10, 20, 30])
    data = buffer.getvalue()
    path = tmp_path / "cut.img"
    for end in range(len(data) // 3, len(data), 7):
        path.write_bytes(data[:end])
        try:
            read_source(path)
        except ImageReadError as exc:
            assert str(exc).startswith(f"{path}: ") and "\n" not in str(exc)


def test_a_frame_longer_than_apng_can_state_is_refused_for_png(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    frames = _frames(2)
    frames[0].save(tmp_path / "slow.webp", save_all=True, append_images=frames[1:], duration=[70_000, 100],
                   lossless=True)
    _one_line_exit_2(_run(tmp_path / "slow.webp", tmp_path / "out"), capsys,
                     "a frame lasts 70000 ms, longer than APNG can state (65535 ms); use --format webp")
    assert not (tmp_path / "out").exists()
    assert _run(tmp_path / "slow.webp", tmp_path / "out", "--format", "webp") == 0
    with Image.open(tmp_path / "out" / "slow.webp") as out:
        out.load()
        assert out.n_frames == 2 and out.info["duration"] == 70_000


def test_an_encoder_refusal_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """AVIF (AV1) sides stop at 65 536 pixels: a 4× output 65 600 pixels tall is refused by the encoder, reported
    on one line naming the output, and leaves nothing behind."""
    Image.fromarray(np.zeros((16_400, 4, 3), np.uint8)).save(tmp_path / "tall.png")
    code = _run(tmp_path / "tall.png", tmp_path / "out", "--format", "avif")
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "tall" in err, err
    assert not [p for p in tmp_path.rglob("*") if p.suffix in (".avif", ".part")]


def _gif_image_block(data: bytes) -> bytes:
    """The first image block (descriptor, local palette, LZW data) of a GIF Pillow wrote."""
    at = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)  # header, screen, global palette
    while data[at] == 0x21:  # extensions: introducer, label, sub-blocks
        at += 2
        while data[at]:
            at += data[at] + 1
        at += 1
    start, flags = at, data[at + 9]
    at += 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0) + 1  # descriptor, local palette, LZW code size
    while data[at]:
        at += data[at] + 1
    return data[start:at + 1]


def test_a_gif_frame_outgrowing_its_screen_is_refused(tmp_path: Path) -> None:
    """Pillow grows a GIF's canvas for a frame that reaches past the screen (a mutation run made one 3 602 pixels
    wide from 9): frames of different sizes would pass the pixel limit unseen and fail in the encoder."""
    from esrkit.errors import ImageReadError

    def gif(width: int) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(np.zeros((4, width), np.uint8)).save(buffer, "GIF")
        return buffer.getvalue()

    small = gif(4)
    screen = small[:small.index(_gif_image_block(small))]
    (tmp_path / "grow.gif").write_bytes(screen + _gif_image_block(small) + _gif_image_block(gif(300)) + b";")
    with Image.open(tmp_path / "grow.gif") as img:
        assert img.n_frames == 2  # a file Pillow reads
    with pytest.raises(ImageReadError, match=r"grow\.gif: frame 2 of 2 is 300×4, not the 4×4 of the first"):
        read_source(tmp_path / "grow.gif")
