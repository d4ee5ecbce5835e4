"""Bounded decode time and output size (issue 18, deliver 2 and the format/pixel limits of deliver 3): progressive
JPEGs with pathological scan counts are refused from their segment structure before decoding, and an upscale's
output size (header × scale) is checked against the output format's side limit and the output pixel limit before
any work. Also ``esrkit train`` meeting a header over Pillow's pixel bound: one line, not a traceback.

Each test failed on the code before its fix (checked against main at 2871929): the 13000² JPEG with 10 000 scans ran
past the 10 s bound in ``read_image`` (343 s in the issue), the 200-scan one decoded (14.7 s here), the 52000² output
went on to decode and tile, WebP/JPEG/AVIF past their side limits were tracebacks after the whole upscale, and the
training set's bomb header was a DecompressionBombError traceback.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from esrkit.cli import main
from esrkit.data.io import read_image, reset_max_pixels, set_max_pixels, write_image
from esrkit.data.jpeg_scans import count_scans
from esrkit.errors import ImageReadError, InputError
from esrkit.infer import Upscaler
from esrkit.infer.jobs import plan_jobs, upscale_files
from esrkit.models import create_model
from helpers import REPO, one_line_error
from jpeg_cases import progressive_jpeg, scan_count, with_repeated_scan, with_size

RNG = np.random.default_rng(18)


@pytest.fixture(autouse=True)
def _default_limit() -> None:
    reset_max_pixels()
    yield
    reset_max_pixels()


def _bomb(path: Path, side: int, scans: int) -> Path:
    """A progressive JPEG claiming ``side``² pixels with ``scans`` scans (9 990 copies of one EOB-run scan: 111 KB
    for the issue's 10 000)."""
    data = with_size(with_repeated_scan(progressive_jpeg(64, 64), scans - 10), side, side)
    assert scan_count(data) == scans
    path.write_bytes(data)
    return path


def test_the_issues_10000_scan_jpeg_is_refused_in_under_10_s(tmp_path: Path) -> None:
    """13000 × 13000 (under the pixel limit) with 10 000 scans: refused from its structure, in a child that times
    ``read_image`` itself (its interpreter and torch start-up are not the reader's: on a loaded 2-core machine they
    alone took over 10 s). The refusal takes milliseconds; the unfixed reader was still decoding after minutes, so
    the child's own generous bound is what a regression would hit."""
    bomb = _bomb(tmp_path / "bomb.jpg", 13000, 10_000)
    code = ("import time\nfrom esrkit.data.io import read_image\nfrom esrkit.errors import ImageReadError\n"
            f"t = time.perf_counter()\ntry:\n    read_image({str(bomb)!r})\nexcept ImageReadError as exc:\n"
            "    print(f'{time.perf_counter() - t:.3f}', exc)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    seconds, message = proc.stdout.split(" ", 1)
    assert "bomb.jpg: progressive JPEG with more than 50 scans at 13000×13000" in message, proc.stdout
    assert float(seconds) < 10


def test_200_scans_at_13000_squared_are_refused_by_scans_times_pixels(tmp_path: Path) -> None:
    bomb = _bomb(tmp_path / "b.jpg", 13000, 200)
    with pytest.raises(ImageReadError, match=r"b\.jpg: progressive JPEG with more than 50 scans at 13000×13000"):
        read_image(bomb)


def test_the_bomb_on_the_command_line_is_one_line_exit_2_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bomb = _bomb(tmp_path / "bomb.jpg", 6000, 10_000)  # ×4 stays under the output limit: the scans refuse it
    code = main(["upscale", str(bomb), "-o", str(tmp_path / "out"), "--model", "bicubic", "--device", "cpu"])
    assert code == 2 and "decode-time bomb" in one_line_error(capsys)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*"))


def test_ordinary_progressive_jpegs_and_many_scans_under_the_bound_read(tmp_path: Path) -> None:
    plain = tmp_path / "plain.jpg"
    plain.write_bytes(progressive_jpeg(96, 80))
    assert read_image(plain).shape == (80, 96, 3)
    many = tmp_path / "many.jpg"  # 400 scans on 96×80: far under 48 × the limit, and under 500
    many.write_bytes(with_repeated_scan(progressive_jpeg(96, 80), 390))
    assert read_image(many).shape == (80, 96, 3)


def test_the_bound_follows_the_pixel_limit(tmp_path: Path) -> None:
    over = tmp_path / "over.jpg"
    over.write_bytes(with_repeated_scan(progressive_jpeg(96, 80), 600))
    with pytest.raises(ImageReadError, match="more than 500 scans"):
        read_image(over)
    set_max_pixels(None)  # no pixel limit: no scan limit either (the user opted out of decode bounds)
    assert read_image(over).shape == (80, 96, 3)


@pytest.mark.parametrize("between", [b"\xff\xff\xff", b"junk bytes\x00\xff\x00", b"\xff\xd3"],
                         ids=["fill-bytes", "garbage", "stray-restart-marker"])
def test_scans_cannot_hide_between_fill_bytes_or_garbage(between: bytes) -> None:
    """libjpeg skips fill bytes and garbage to the next marker and still decodes the scan after them; so must the
    count. Pillow's decoder accepts all three files (checked: they read)."""
    data = with_repeated_scan(progressive_jpeg(32, 24), 700, between=between)
    assert count_scans(data) == 710
    assert count_scans(data, stop_after=100) == 101


def test_scans_inside_an_app_segment_are_not_counted(tmp_path: Path) -> None:
    """An EXIF thumbnail is a whole JPEG inside an APP1 segment: its scans are not the image's."""
    inner = with_repeated_scan(progressive_jpeg(16, 16), 800)
    outer = progressive_jpeg(40, 32)
    app1 = b"\xff\xe1" + struct.pack(">H", len(inner) + 2) + inner
    assert len(inner) + 2 < 65536
    path = tmp_path / "thumb.jpg"
    path.write_bytes(outer[:2] + app1 + outer[2:])
    assert count_scans(path.read_bytes()) == 10
    assert read_image(path).shape == (32, 40, 3)


def _png_header(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width`` × ``height`` and whose one IDAT holds a single row: enough for any
    reader's header, far from enough to decode."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
                     + chunk(b"IEND", b""))
    return path


def _bicubic() -> Upscaler:
    return Upscaler(create_model("bicubic", scale=4), 4)


def test_an_output_past_the_output_pixel_limit_is_refused_before_decoding(tmp_path: Path) -> None:
    """13000² is admitted as input; ×4 is a 52000² output (an 8.1 GB buffer): refused from the header."""
    src = _png_header(tmp_path / "in" / "big.png", 13000, 13000)
    jobs = plan_jobs([src], tmp_path / "out")
    with pytest.raises(InputError, match=r"big\.png: its ×4 output would be 52000×52000 = 2,704 Mpx, over the "
                                         r"output limit of 716 Mpx"):
        upscale_files(_bicubic(), jobs)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("fmt", "width", "needle"), [("webp", 4096, "over WebP's limit of 16383 pixels a side"),
                                                      ("jpg", 16384, "over JPEG's limit of 65500 pixels a side"),
                                                      ("avif", 16400, "over AVIF's limit of 65536 pixels a side")])
def test_format_side_limits_are_checked_before_any_work(fmt: str, width: int, needle: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """The first input fits, the second does not: nothing is written, not even the first (checked up front)."""
    write_image(tmp_path / "in" / "a_small.png", RNG.integers(0, 256, (2, 8, 3), dtype=np.uint8))
    write_image(tmp_path / "in" / "b_wide.png", RNG.integers(0, 256, (2, width, 3), dtype=np.uint8))
    code = main(["upscale", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", "bicubic", "--device",
                 "cpu", "--format", fmt])
    err = one_line_error(capsys)
    assert code == 2 and f"--format: {tmp_path / 'in' / 'b_wide.png'}" in err and needle in err, err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*"))


def test_training_data_with_a_bomb_header_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from esrkit.train.data import HRCropDataset

    write_image(tmp_path / "data" / "a.png", RNG.integers(0, 256, (96, 96, 3), dtype=np.uint8))
    _png_header(tmp_path / "data" / "b.png", 100_000, 100_000)
    with pytest.raises(ImageReadError, match=r"b\.png: image header: .*decompression bomb"):  # esrkit's limit
        HRCropDataset(tmp_path / "data", patch=64, scale=4)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: rlfn\nscale: 4\nhparams: {num_feat: 8, num_block: 1, esa_channels: 4}\nworkers: 0\n"
                      "stages:\n  - iters: 1\n    patch: 64\n    batch: 1\n    loss: {l1: 1.0}\n"
                      "    optimizer: {name: adam, lr: 1.0e-3}\n")
    code = main(["train", str(recipe), "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"),
                 "--device", "cpu"])
    assert code == 2 and "b.png: image header" in one_line_error(capsys)
