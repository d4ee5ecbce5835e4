"""Regression tests for what the fuzz targets in ``fuzz/`` found (see ``fuzz/README.md``).

Each test rebuilds the input that made a reader raise something other than an :class:`~esrkit.errors.EsrkitError`
(or run out of memory): as the text the fuzzer produced, or generated deterministically with the same defect (a
tiny clip made here with PyAV and patched at a known place) when the fuzzer's bytes were a mutated binary seed. Where
an input is built, the test first checks that it has the defect (PyAV itself fails on it the way the fuzzer saw),
so it cannot pass by testing a harmless file. None of them needs atheris.
"""

from __future__ import annotations

import base64
import io
import pickle
import struct
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

import esrkit
from esrkit.checkpoints import load_checkpoint
from esrkit.data.io import read_image
from esrkit.data.video import probe_video, upscale_video
from esrkit.errors import CheckpointError, ImageReadError, InputError
from esrkit.train.recipe import load_recipe
from helpers import load_in_child

# ----------------------------------------------------------------------------------------------------
# images (fuzz target `image`): Pillow decoders that raise RuntimeError / NotImplementedError


def _dds(flags: int, fourcc: bytes = b"\0\0\0\0") -> bytes:
    """A 9×7 RGB DDS written by Pillow, with its pixel-format flags (file offset 80: 4 bytes of magic, 72 bytes of
    header before the DDS_PIXELFORMAT, then its size) and FourCC (offset 84) replaced."""
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (7, 9, 3), dtype=np.uint8))
    buf = io.BytesIO()
    img.save(buf, format="DDS")
    data = bytearray(buf.getvalue())
    assert data[:4] == b"DDS " and struct.unpack_from("<I", data, 76)[0] == 32  # the pixel format's own size
    struct.pack_into("<I", data, 80, flags)
    data[84:88] = fourcc
    return bytes(data)


# The fuzzer's AVIF (398 bytes, a mutated 9×7 seed): its AV1 payload is damaged, so libavif fails while decoding
# the colour planes, which Pillow raises as RuntimeError from load().
_AVIF_BAD_PLANES = base64.b64decode(
    "AAAAIGZ0eXBhdmlmAAAAAGF2aWZtaWYxbWlhZk1BMUIAAADrbWV0YQAAAAAAAAAhaGRscgAAAAAAAAAAcGljdAAAAAAAAAAAAAAAAAAAAAAO"
    "cGl0bQAAAAAAAQAAAB5pbG9jAAAAAEQAAAEAAQAAAAEAAAETAAAAagAAAChpaW5mAAAAAAABAAAAGmluZmUCAAAAAAEAAGF2MDFDb2xvcgAA"
    "AABqaXBycAAAAEtpcGNvAAAAFGlzcGUAAAAAAAAACQAAAAcAAAAQcGl4aQAAAAADCAgIAAAADGF2MUOBAAwAAAAAE2NvbHJuY2x4AAEADQAG"
    "gAAAABdpcG1hAAAAAAAAAAEAAQQBAoMEAAAAcm1mMW1pYWZNQTFCAAAA621ldGRhdBIACggYDKM0QENBoTJcGUeHhiGHnnnmgAEA/9FLSb8S"
    "YZV8Jh5kAbd2uKi48jtQJB+1uiP41rOMXb3cJTF5rDqVOxOOj52iCoPRkPQX/rQPMjkfn7+evWe9993vvEI7vkwi9/HnRg/fZKI="
)


@pytest.mark.parametrize(("name", "data", "pillow_error"), [
    ("flags.dds", _dds(0x400000), NotImplementedError),  # "Unknown pixel format flags 4194304"
    ("fourcc.dds", _dds(0x4, b"ZZZZ"), NotImplementedError),  # DDPF_FOURCC with an unknown code
    ("planes.avif", _AVIF_BAD_PLANES, RuntimeError),  # "Decoding of color planes failed", from load()
    # the same file with the item type av01 changed to av00: "Missing or empty image item", from Image.open
    ("item.avif", _AVIF_BAD_PLANES.replace(b"av01Color", b"av00Color"), RuntimeError),
], ids=["dds-flags", "dds-fourcc", "avif-planes", "avif-item"])
def test_a_decoder_runtime_error_is_an_image_read_error(tmp_path: Path, name: str, data: bytes,
                                                        pillow_error: type[Exception]) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(pillow_error), Image.open(path) as img:  # the defect: what Pillow itself raises on it
        img.load()
    for dtype in ("uint8", "float32"):
        with pytest.raises(ImageReadError, match="cannot decode image") as info:
            read_image(path, dtype=dtype)
        assert str(path) in str(info.value)


def _tiff(image: np.ndarray, rows_per_strip: int, height: int | None = None) -> bytes:
    """An uncompressed TIFF in strips of ``rows_per_strip`` rows, its ImageLength tag (257) optionally replaced."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="TIFF", tiffinfo={278: rows_per_strip})
    data = bytearray(buf.getvalue())
    if height is not None:
        ifd = struct.unpack_from("<I", data, 4)[0]
        for i in range(struct.unpack_from("<H", data, ifd)[0]):
            entry = ifd + 2 + 12 * i
            tag, kind, count = struct.unpack_from("<HHI", data, entry)
            if tag == 257:
                assert (kind, count) == (4, 1)  # one LONG, stored in the entry itself
                struct.pack_into("<I", data, entry + 8, height)
    return bytes(data)


def test_a_tiff_whose_strips_do_not_cover_it_is_an_image_read_error(tmp_path: Path) -> None:
    """The fuzzer's ``timeout-*`` input: a 419-byte TIFF stating 9 × 7 823 730 pixels with one 9 × 7 strip. Pillow
    decodes the strips it lists and leaves the rest blank, so it read without an error as a 70-megapixel, all but
    black image (1 GB, seconds). Here a 23 × 37 image in one strip, its stated height made 370; a real multi-strip
    file (ten strips, the last one running past the bottom, as TIFF allows) still reads exactly."""
    image = np.random.default_rng(1).integers(0, 256, (37, 23, 3), dtype=np.uint8)
    good = tmp_path / "strips.tif"
    good.write_bytes(_tiff(image, rows_per_strip=4))
    with Image.open(good) as img:
        assert len(img.tile) == 10  # a real multi-strip file (the last strip runs past the bottom)
    assert np.array_equal(read_image(good), image)
    bad = tmp_path / "cut.tif"
    bad.write_bytes(_tiff(image, rows_per_strip=37, height=370))
    with Image.open(bad) as img:  # the defect: Pillow decodes it, blank below row 37
        img.load()
        assert img.size == (23, 370) and not np.asarray(img)[40:].any()
    with pytest.raises(ImageReadError, match=r"strips cover 851 of its 23×370 pixels") as info:
        read_image(bad)
    assert str(bad) in str(info.value)


# The fuzzer's 182-byte TIFF: RowsPerStrip is a RATIONAL (type 5), so Pillow's strip extents are Fractions and the
# strip check (above) formatted a Fraction with ``:,`` (TypeError). Its one strip covers 6 × 2304/1025 of 6 × 5.
# And its 95-byte one: StripOffsets is a RATIONAL, and Pillow's decoder fails on the offset 2.2478 (TypeError).
_TIFF_RATIONAL_ROWS = base64.b64decode(
    "SUkqAAgAAAAJAAABBAABAAAABgAAAAEBBAABAAAABQAAAAIBAwABAAAAEAAAAAMBAwABAAAAAQAAAAYBAwABAAAAAQAAABEBBAABAAAAegAA"
    "ABYBBQABAAAABQAAABcBBAABAAAAPAAAABwBAwABAAAAAQAAAAAAAAC8WpBjujsK4D6vlSIVBDOUuXWzuDtqcdjxnn2GGE4bYPUCbE8YDUds"
    "wbRffEOzBLiGebXjkqasEtJ5He8="
)
# The fuzzer's 403-byte McIDAS area file: a row stride of 55 009 345 604 bytes in its header, which Pillow hands to
# its C raw decoder as an int: OverflowError ("signed integer is greater than maximum") from load().
_TIFF_RATIONAL_OFFSET = base64.b64decode(
    "SUkqAAgAAAAJAAABBAABAAAABgAAAAEBBAABAAAABQAAAAIBAwABAAAAEAAAAAMBAwABAAAAAQAAAAYBAwABAAAAAQAAABEBBQABAAAABQAA"
    "ABcBBLXjkqasEtJ5He8="
)
_MCIDAS_HUGE_STRIDE = base64.b64decode(
    "AAAAAAAAAARxb2ksE3h6Mv7QTkREUyB8AAAADxAwAAcAAAAJAAAAGwAAAAEAAAAAAABmdHlwAAAAAABERFMgfAAAAA8QAAAHAAAACQAAABsA"
    "AAAAAAAGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYG"
    "BgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAACAAAABAAAAAAAAAABgAAAAAAP8AAP8AAP8AAAAAAAAAABAAAAAAAAAAAAB45vXw2L9kH9t+jeeVmRBz03kIB8PP"
    "usqzuSemxEnYDiz3Ftt/+Us6eS7c2QWoip0zlRI463sU8Uy5eybWNTrZTJtF/s+jDGw9moJnOgc/9V7KaAdgAagf0QIe664KqeK7qzqGjg=="
)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")  # Pillow's, on the 95-byte file
@pytest.mark.parametrize(("data", "field"), [(_TIFF_RATIONAL_ROWS, "extents"), (_TIFF_RATIONAL_OFFSET, "offset")],
                         ids=["rows", "offset"])
def test_a_tiff_with_rational_strip_geometry_is_an_image_read_error(tmp_path: Path, data: bytes, field: str) -> None:
    path = tmp_path / "rational.tif"
    path.write_bytes(data)
    with Image.open(path) as img:  # the defect: fractional strip geometry
        tile = img.tile[0]
        value = tile[1][3] if field == "extents" else tile[2]
        assert img.size == (6, 5) and not isinstance(value, int)
    with pytest.raises(ImageReadError, match="not whole numbers") as info:
        read_image(path)
    assert str(path) in str(info.value)


def test_a_decoder_overflow_is_an_image_read_error(tmp_path: Path) -> None:
    path = tmp_path / "stride.area"
    path.write_bytes(_MCIDAS_HUGE_STRIDE)
    with pytest.raises(OverflowError), Image.open(path) as img:  # the defect: Pillow's own error
        img.load()
    with pytest.raises(ImageReadError, match="cannot decode image") as info:
        read_image(path)
    assert str(path) in str(info.value)


# ----------------------------------------------------------------------------------------------------
# recipes (fuzz target `recipe`): YAML gives any key any type, and the checks compared numbers


_RECIPE = """\
model: rlfn_s
scale: 2
ema: 0.999
stages:
  - iters: 10
    patch: 64
    batch: 2
    loss: {l1: 1.0}
    optimizer: {name: adam, lr: 1.0e-3}
"""


def test_the_recipe_template_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(_RECIPE, encoding="utf-8")
    assert load_recipe(path).stages[0].batch == 2


@pytest.mark.parametrize(("old", "new", "message"), [
    # TypeError '>' between int and None: an empty value is YAML null
    ("    batch: 2\n", "    batch: \n", r"stages\.0: batch must be an integer, not None"),
    # TypeError '<' between str and int
    ("    patch: 64\n", "    patch: 6+\n", r"stages\.0: patch must be an integer, not '6\+'"),
    # ValueError from float('0)999')
    ("ema: 0.999\n", "ema: 0)999\n", r"ema must be a number, not '0\)999'"),
    # TypeError inside difflib: the whole value became a comment, so the model name was None
    ("model: rlfn_s\n", "model: ###rlfn_s\n", r"model must be text, not None"),
    # TypeError from sorted(): an anchor where a key should be leaves a None key, beside a misspelt string key
    ("  - iters: 10\n", "  - &ters: 10\n    sched%ler: {}\n", r"stages\.0: unknown key None, 'sched%ler'"),
    ("scale: 2\n", "scale: true\n", r"scale must be an integer, not True"),  # a bool is not a count
    # ValueError from int('2adan') in smoke(): the fuzzer's schedule (campaign of 2026-12-03), whose stray lr
    # key is refused first, then the same schedule without it
    ("    optimizer: {name: adam, lr: 1.0e-3}\n", "    optimizer: {name: adam, lr: 1.0e-3}\n"
     "    scheduler: {name: cosine, warmup_iters: 2adan, lr: 5.0e-4}\n", r"stages\.0: scheduler 'cosine' takes no lr"),
    ("    optimizer: {name: adam, lr: 1.0e-3}\n", "    optimizer: {name: adam, lr: 1.0e-3}\n"
     "    scheduler: {name: cosine, warmup_iters: 2adan}\n", r"stages\.0: 'warmup_iters' must be an integer"),
    # TypeError from sorted() and str.join() over the spec's keys once those specs were checked at load time
    # (the second campaign): YAML makes `0` an int key and `.0e-4` (no digit before the e) the float key 0.0
    ("    optimizer: {name: adam, lr: 1.0e-3}\n", "    optimizer: {name: adam, lr: 1.0e-3}\n"
     "    scheduler: {name: step, step_size: 10, 0: 1, step_zsize: 2}\n", r"scheduler 'step' takes no 0, step_zsize"),
    ("    optimizer: {name: adam, lr: 1.0e-3}\n", "    optimizer: {name: adan, .0e-4}\n",
     r"stages\.0: optimizer 'adan' takes no 0\.0 "),
    ("    optimizer: {name: adam, lr: 1.0e-3}\n", "    optimizer: {name: [adam]}\n", r"unknown optimizer \['adam'\]"),
    ("    loss: {l1: 1.0}\n", "    loss: {l1:0,.1}\n", r"stages\.0: weight of 'l1:0' must be a finite number"),
])
def test_a_mistyped_recipe_value_is_an_input_error(tmp_path: Path, old: str, new: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(_RECIPE.replace(old, new), encoding="utf-8")
    with pytest.raises(InputError, match=message) as info:
        load_recipe(path)
    assert str(path) in str(info.value) and info.value.param == "recipe"


def test_a_later_stages_bad_schedule_is_refused_when_the_recipe_loads(tmp_path: Path) -> None:
    """The loss, optimizer and schedule of every stage are built at load time (the optimizer on a stand-in
    parameter), so a warm-up as long as stage 2, or a loss it does not know, is refused before stage 1 trains
    (the trainer builds them only when a stage starts)."""
    path = tmp_path / "two.yaml"
    second = "  - iters: 5\n    patch: 64\n    batch: 2\n    loss: {l1: 1.0}\n    optimizer: {name: adam, lr: 1.0e-4}\n"
    path.write_text(_RECIPE + second + "    scheduler: {name: cosine, warmup_iters: 5}\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"stages\.1: 'warmup_iters' \(5\) must be below") as info:
        load_recipe(path)
    assert str(path) in str(info.value) and info.value.param == "recipe"
    path.write_text(_RECIPE + second + "    scheduler: {name: cosine, warmup_iters: 4}\n", encoding="utf-8")
    assert load_recipe(path).stages[1].scheduler == {"name": "cosine", "warmup_iters": 4}
    path.write_text(_RECIPE + second.replace("{l1: 1.0}", "{l1: 1.0, ssim: 0.1}"), encoding="utf-8")
    with pytest.raises(InputError, match=r"stages\.1: unknown loss 'ssim'"):
        load_recipe(path)


@pytest.mark.parametrize("index", ["--------1", "²", "1_0", " 1"])
def test_an_override_index_that_is_not_a_plain_integer_is_an_input_error(tmp_path: Path, index: str) -> None:
    """ValueError from int('--------1') in the --set path (third campaign): the index check took any run of
    leading minus signs, and str.isdigit() takes superscripts that int() refuses."""
    path = tmp_path / "ok.yaml"
    path.write_text(_RECIPE, encoding="utf-8")
    with pytest.raises(InputError, match="is not an index into a list of 1") as info:
        load_recipe(path, [f"stages.{index}.iters=3"])
    assert info.value.param == "set"
    assert load_recipe(path, ["stages.-1.iters=3"]).stages[0].iters == 3  # a negative index still counts back


def test_a_recipe_that_is_not_utf8_is_an_input_error(tmp_path: Path) -> None:
    """UnicodeDecodeError from read_text: a byte 0xff in an otherwise valid recipe."""
    path = tmp_path / "latin.yaml"
    path.write_bytes(_RECIPE.encode().replace(b"rlfn_s", b"rlfn_s\xff"))
    with pytest.raises(InputError, match="cannot be read as UTF-8") as info:
        load_recipe(path)
    assert str(path) in str(info.value)


# ----------------------------------------------------------------------------------------------------
# .pth checkpoints (fuzz target `checkpoint_pth`): a 14-byte pickle that allocates gigabytes


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak memory is read from /proc (Linux)")
def test_a_pickle_memo_bomb_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    """The fuzzer's ``oom-*`` input: a legacy-format checkpoint whose object pickle stores one value under memo
    index 1.3·10⁹ (``LONG_BINPUT``). The C unpickler that the pre-load inspection used sizes its memo array by the
    index and zeroes it (2.7 GB at that index, about 1 GB at the 2²⁶ used here), before torch.load ever ran. Loaded
    in a child process so its peak memory can be measured: it must stay near the cost of importing torch."""
    magic = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER: the legacy format's first pickle
    bomb = b"\x80\x02N" + b"r" + struct.pack("<I", 1 << 26) + b"."  # PROTO 2, None, LONG_BINPUT 2**26, STOP
    path = tmp_path / "memo_bomb.pth"
    path.write_bytes(pickle.dumps(magic, protocol=2) + pickle.dumps(1001, protocol=2)
                     + pickle.dumps({"little_endian": True}, protocol=2) + bomb)
    outcome, peak_mb = load_in_child(path)
    assert outcome.startswith(str(path)), outcome
    assert peak_mb < 800, peak_mb  # importing torch and esrkit costs ~230 MB; the bomb costs 0.5-1 GB more


def _zip_checkpoint(offset: int, value: int) -> bytes:
    """A one-tensor torch.save zip whose first central-directory entry (``archive/data.pkl``) has the 16-bit field
    at ``offset`` in its header replaced (6: version needed to extract, 8: flags, 10: compression method)."""
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(3)}, buf)
    data = bytearray(buf.getvalue())
    entry = data.find(b"PK\x01\x02")
    name_length = struct.unpack_from("<H", data, entry + 28)[0]
    assert bytes(data[entry + 46:entry + 46 + name_length]).endswith(b"data.pkl")
    struct.pack_into("<H", data, entry + offset, value)
    return bytes(data)


@pytest.mark.parametrize(("offset", "value", "zipfile_error"), [
    (6, 75, "NotImplementedError: zip file version 7.5"),  # the fuzzer's finding
    (10, 99, "NotImplementedError: That compression method is not supported"),
    (10, 8, "zlib.error: stored bytes read as deflate"),
    (8, 1, "RuntimeError: File ... is encrypted, password required"),
])
def test_a_zip_checkpoint_python_cannot_read_is_a_checkpoint_error(tmp_path: Path, offset: int, value: int,
                                                                    zipfile_error: str) -> None:
    """``zipfile`` raises more than BadZipFile on a damaged archive; the pre-load inspection let these through
    (the fuzzer found the first; the others are the same gap, in the same place)."""
    path = tmp_path / "damaged.pth"
    path.write_bytes(_zip_checkpoint(offset, value))
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert str(info.value).startswith(f"{path}: "), zipfile_error


# ----------------------------------------------------------------------------------------------------
# video (fuzz target `video`): tiny clips made here, with the defect the fuzzer's input had

def _clip(path: Path, fmt: str, *, audio: bool = False, title: str | None = None, frames: int = 6) -> bytes:
    """A 16×16 MPEG-4 part 2 clip at 10 fps (no B-frames, so packet order is frame order), optionally with a
    silent AAC track and a container title."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w", format=fmt) as out:
        if title is not None:
            out.metadata["title"] = title
        video = out.add_stream("mpeg4", rate=10)
        video.width, video.height, video.pix_fmt = 16, 16, "yuv420p"
        sound = out.add_stream("aac", rate=8000) if audio else None
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), "rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            for i in range(3):
                samples = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
                samples.sample_rate, samples.pts = 8000, i * 1024
                out.mux(sound.encode(samples))
            out.mux(sound.encode(None))
    return path.read_bytes()


def _patched(tmp_path: Path, name: str, data: bytes, old: bytes, new: bytes) -> Path:
    assert data.count(old) == 1 and len(old) == len(new)
    path = tmp_path / name
    path.write_bytes(data.replace(old, new))
    return path


def test_undecodable_metadata_does_not_break_reading(tmp_path: Path) -> None:
    """UnicodeDecodeError from ``av.open``: the container title is bytes that are not UTF-8 (the fuzzer changed
    one byte of an encoder tag). Metadata is free text, so the video must still read."""
    data = _clip(tmp_path / "seed.mp4", "mp4", title="ABCDEFGH")
    path = _patched(tmp_path, "latin.mp4", data, b"ABCDEFGH", b"\xe8" * 8)
    with pytest.raises(UnicodeDecodeError):
        av.open(str(path)).close()  # the defect: PyAV's strict default fails on it
    assert probe_video(path).width == 16
    assert upscale_video(path, tmp_path / "out.mp4", lambda frame: frame).frames == 6


def test_a_video_stream_of_unknown_codec_is_an_image_read_error(tmp_path: Path) -> None:
    """AttributeError on ``codec_context.width``: PyAV gives no codec context for a codec FFmpeg does not know
    (the fuzzer's input had a damaged codec tag; here the Matroska CodecID is changed)."""
    data = _clip(tmp_path / "seed.mkv", "matroska")
    path = _patched(tmp_path, "unknown.mkv", data, b"V_MPEG4/ISO/ASP", b"V_MPEG4/ISO/XSP")
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context is None
    for read in (probe_video, lambda p: upscale_video(p, tmp_path / "out.mkv", lambda frame: frame)):
        with pytest.raises(ImageReadError, match="codec cannot be decoded") as info:
            read(path)
        assert str(path) in str(info.value)
    assert not (tmp_path / "out.mkv").exists()


# video, campaign of 2026-12-03 (fuzz target `video`): an MP4 (mutated seed, MPEG-4 video and AAC audio) whose
# header declares 1141 frames per 2,052,263,813 s. Every packet muxes, but the trailer (MP4's index) does not:
# FFmpeg's av_write_trailer returned EINVAL at the output's close, an av.error.ArgumentError naming the temporary
# file. 1,849 bytes (the fuzzer's 2,180, cut down by deleting chunks while the error held), zlib-compressed.
_MP4_TRAILER_REFUSED = zlib.decompress(base64.b64decode(
    "eNpjYGCQSSupLMgszs9lYGBiANFAbJRbYGLIwMDAkVaUmgoUP56bklhyj4nBJ7Es2cxIz8hCz9DAiMFJgeOghAUDA+NmBgF2ILVN4MDs"
    "+F/HG51WGvQvfXwh7YHst6V/2eY1PLBa4sy8yKBt7QJnfbkl96ez2Age/8/hyLWJj7mX//jJII7Um7YPWj45f1TVcBLyvsW89OXxpPhJ"
    "2seSGdkvSL1ZZGy/yNqhxFt/ZYv+QcUIJ8/FRzo/SHp8NU6Qdnyw/7JA9wa93szoshkZFbFM0saPzF44MzuJtzT973jkVXbcyf7ShgPT"
    "2Bv9LL2UtVj11/8V+tm24OcMgT38rQxVBXWrk52iFQojXgtNV2k+qFPD0bA8deOnwE/XVPX1BY8v3vlRpkJl44uJjTp1l/KnZ2fd8uE9"
    "UMP/9VaTuvfUMMN91/K3i/4T/9vGOD3kcNy7bJ7aDtu/8nGNE76bO6ocM3bsupGpbJv+b/H8/6fcNd0l7HSyv4k9rPZ6FmZ15bPk9No9"
    "ad3xigIsCT0yoJALfMjCuyxy77vV2a+u/HV7/+Z3VnHgne1vxJxuHZ8aabxNc/aH5JUrd6ZvTzbWXWN8bfZzqb9fXXOC38r4nl7FLdHc"
    "92dD1NJ/Uzff+fbV99KxJ2/PawTndOnVh3rm3kldqV1UOrdGM9d/p4jZkY9ZDYYvza83N3xXl5J+r5h+WrhoDU/plYzuc5kLhRa+ucex"
    "pCPrSNCzUFvxo093m8oLJgac8IM7EhbLQgdnez3m0bo1f26gaehV+ath9b3VCz8Hrbj6de3zv6LGO44eVcyaHC4gOb/3Vz233t3UKYsb"
    "2b79bTq7lt0hP6Xrz6Xb/8Wd2STnf9+3PDIzzHj+Ru/csON2Wl/+CoTe3i65OOdb3attOYn7HTidTeM2WOYU3Vk8TyMqngEK0r8dk17c"
    "c+i+WMFGg7hTxs0zw91vhIYF56ufmtYh0miUcunOzKqoEFnF7xYKvBO/l+59NDkqEeYD1lW5+fllQENycssyUhhQAPMLoNcaGBgZQAgB"
    "GFFVofMdGNBBA4qhwKzTXlKUmA1kx5Rkg+1kxjSNUQfDGGLsFYBiBgaV1JSSYiAtk5pTXILQATUXrJfxf25KZiKQofA/Bd3vGkDMwxB6"
    "BMzRzUjJKYLJlGWmpCKrDAPy8z0S81JyUkFqGFflZualARkiZblgQ5GdqZICkZNJKUpNQ/IGT2lRjgLUgVnFJUk5QPat4pLiFCQ1p4Dl"
    "TxmOoAB5WoDBA0h74FSBDiT+/weSCanFKcXgeGloaPAHamMB0o4KgmAlLl9BJCtQRB9o4gaQ67Z2CkMMZ1RgONLbwRDK0MIkkgzkbkIp"
    "B9mAehiZQKGQVFIEDX6IaSCbi0uAUQNxISsk+lmg4sXFUDVMUD+AkoYMUDwZyV/IWAEoV4WavBitgfR8IN4D0Zucj5BjcAbKtwCN1wRi"
    "X7RkCLOXAZzskRIaI+nJHin5gWO1AexHiEFHYckuFyPZyTuAohKR7HJRFOBOPgyMJtBkU4eWbPKAySYREr74wlEFLRxBGsSBmA0JKyCF"
    "JQtDDQMwKzHWMegzMCkDw+0pAwMAhjrCrQ=="
))


def test_a_trailer_the_muxer_refuses_is_an_image_read_error_and_leaves_nothing(tmp_path: Path) -> None:
    src = tmp_path / "odd_rate.mp4"
    src.write_bytes(_MP4_TRAILER_REFUSED)
    out = tmp_path / "out" / "odd_rate.mp4"
    out.parent.mkdir()
    with pytest.raises(ImageReadError, match="timestamps cannot be stored") as info:
        upscale_video(src, out, lambda frame: frame)
    assert str(src) in str(info.value) and ".part" not in str(info.value)
    assert list(out.parent.iterdir()) == []  # neither the output nor its temporary file


def test_an_audio_stream_of_unknown_codec_is_an_image_read_error(tmp_path: Path) -> None:
    """AttributeError while formatting the error of ``add_stream_from_template``: the audio stream has no codec
    context either (here the CodecID ``A_AAC`` is changed), and the message read its name."""
    data = _clip(tmp_path / "seed.mkv", "matroska", audio=True)
    path = _patched(tmp_path, "unknown_audio.mkv", data, b"A_AAC", b"A_XAC")
    with av.open(str(path)) as container:
        assert container.streams.audio[0].codec_context is None
    with pytest.raises(ImageReadError, match="audio stream 1 has an unknown codec") as info:
        upscale_video(path, tmp_path / "out.mkv", lambda frame: frame)
    assert str(path) in str(info.value)
    assert not (tmp_path / "out.mkv").exists()


def test_backward_timestamps_are_an_image_read_error(tmp_path: Path) -> None:
    """``av.error.ArgumentError`` from the encoder flush: the fuzzer duplicated a run of Matroska blocks, so the
    frames' timestamps went backwards; every frame decodes, the encoder holds them in its look-ahead, and the muxer
    refuses the packets the final flush hands it. Here one block's timecode (300 ms → 100 ms) does the same."""
    data = _clip(tmp_path / "seed.mkv", "matroska")
    # a SimpleBlock's header: track number 1 (EBML vint 0x81), then its timecode as a 16-bit big-endian offset
    path = _patched(tmp_path, "backwards.mkv", data, b"\x81" + (300).to_bytes(2, "big"),
                    b"\x81" + (100).to_bytes(2, "big"))
    with av.open(str(path)) as container:
        assert [p.pts for p in container.demux(video=0) if p.pts is not None] == [0, 100, 200, 100, 400, 500]
    with pytest.raises(ImageReadError, match="after 6 good frame") as info:
        upscale_video(path, tmp_path / "out.mkv", lambda frame: frame)
    assert str(path) in str(info.value)
    assert not (tmp_path / "out.mkv").exists()


# ----------------------------------------------------------------------------------------------------
# checkpoints, campaign of 2026-12-02 (fuzz target `checkpoint_pth`)

# The fuzzer's 500-byte legacy-format .pth (a mutated seed): its object pickle declares strings and byte arrays of
# 0.7 to 14 GB. torch.load's C unpickler asks the file for each declared length, and a file's read(n) allocates n
# bytes first: the file made torch.load peak at 14 GB RSS over 49 s before its EOFError.
_PTH_HUGE_LENGTHS = base64.b64decode(
    "gAKKCmz8nEb5IGqoUBkugAJN6QMugAJ9cQAoWBAAAABwcm90b2NvbF92ZXJzaW9ucQFN6QNYDQAAAGxpdHRsZV9lbmRpYW5xAohYCgAAAHR5"
    "cGVfc2l6ZXNxA31xBChYBQAAAHNob3J0lvq0/VgDAAAAaW50cQZLBFgEAAAAbG9uZ3EHSwR1dS6AAn1xAChYBgAAAHBhbXNxAWNjb2xsZWN0"
    "aW9ucwpPcmRlcmVkRGljdApxAilScQMoWBEAAABjb252X2ZpcnN0LndlaWdodHEEY3RvcmNoLl8AAABzcQN9cQQoWAUAAABzaG9ydHEFSwJY"
    "AwAAAGludHEGSwRYBAAAAGxvbmdxB0sEdXUugAJ9cQAoWAYAAABwYW1zcQFjY29sbGVjdGlvbnMKT3JkZXJlZERpY252X2ZpcnN0LndlaWdo"
    "dHEEY3RvcmNoLl8AAAAAdXRpbHMKX3JlYnVpbGRfdGVuc29yX3YyCnEFKChYBwAAAHN0b3IsZ2VxBmN0b3JjaApGbG9hdFN0b3JhZz0KcQdY"
    "DgAAADk0NjczNTg3NjYxODg4cQhYKysrKysrPib3YD5VYo0rKysrKysrKysrKysrVWKNKysrKysrKysrKysrKysrKysrKysrKysrSwMEKysr"
    "KysrKys80CehvdDZHD4="
)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak memory is read from /proc (Linux)")
def test_a_pickle_declaring_gigabyte_strings_is_refused_before_torch_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "lengths.pth"
    path.write_bytes(_PTH_HUGE_LENGTHS)
    assert len(_PTH_HUGE_LENGTHS) == 500 and _PTH_HUGE_LENGTHS[:2] == b"\x80\x02"
    outcome, peak_mb = load_in_child(path)
    assert outcome.startswith(str(path)) and "corrupt pickle" in outcome, outcome
    assert peak_mb < 1024, peak_mb  # torch and esrkit imported: ~0.23 GB; unfixed: 14 GB


def test_tensors_keyed_by_something_other_than_a_name_are_not_a_state_dict(tmp_path: Path) -> None:
    """The fuzzer's .pth had BasicSR's params and params_ema, one key of params_ema a tensor: the wrapper holding
    non-string keys is not a state dict (params is used), and a top level keyed by tensors is a CheckpointError."""
    model = esrkit.create_model("rlfn", scale=4, num_feat=8, num_block=1, esa_channels=4)
    state = model.state_dict()
    odd = dict(state)
    odd[torch.tensor(1)] = torch.zeros(1)
    both = tmp_path / "both.pth"
    torch.save({"params": state, "params_ema": odd}, both)
    loaded = load_checkpoint(both)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), state.values(), strict=True))
    bare = tmp_path / "bare.pth"
    torch.save({torch.tensor(1): torch.zeros(1), "conv.weight": torch.zeros(1)}, bare)
    with pytest.raises(CheckpointError, match="keyed by a Tensor"):
        load_checkpoint(bare)


# ----------------------------------------------------------------------------------------------------
# images, campaign of 2026-12-02 (fuzz target `image`)

# The fuzzer's 43-byte GIF: a frame of 62,735 × 1,856 pixels (116 M, under the default limit), which decodes to
# a legitimate 350 MB image; only the runner's 2 GB RSS bound made it a finding. Lowering the documented limit
# refuses it from the header.
_GIF_LARGE_FRAME = base64.b64decode("R0lGODdhCQAAAAAAAAAAAJIsDvU/BwEAAQAAAAABAAAAAAAAAoIHAQEAOw==")


def test_a_tiny_gif_with_a_large_frame_is_refused_by_a_lowered_limit(tmp_path: Path) -> None:
    from esrkit.data.io import set_max_pixels

    path = tmp_path / "large.gif"
    path.write_bytes(_GIF_LARGE_FRAME)
    with Image.open(path) as im:
        assert im.size == (62735, 1856)  # what the 43 bytes promise
    set_max_pixels(4_000_000)
    try:
        with pytest.raises(ImageReadError, match="pixel"):
            read_image(path)
    finally:
        set_max_pixels(None)
