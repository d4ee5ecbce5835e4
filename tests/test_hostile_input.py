"""Hostile and broken input (issue 12, resource limits and where files go).

Every file here is built by the test itself: a PNG whose header claims 100 000 × 100 000 pixels, checkpoints that
declare more than they hold, truncated files, non-finite weights, symbolic links out of the output folder. What is
asserted is the promise of the trusted tools of this kind: a one-line typed error naming the file (exit code 2 on
the command line), bounded memory, and no file written where it should not be.
"""

from __future__ import annotations

import collections
import io
import math
import os
import pickle
import struct
import subprocess
import sys
import threading
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pytest
import torch
from PIL import Image

import esrkit.infer.upscaler as upscaler_module
from esrkit.checkpoint_inspect import inspect_pth
from esrkit.checkpoints import load_checkpoint, save_checkpoint
from esrkit.cli import main
from esrkit.data import image_save
from esrkit.data.io import DEFAULT_MAX_PIXELS, max_pixels, read_image, reset_max_pixels, set_max_pixels, write_image
from esrkit.data.video import probe_video, upscale_video
from esrkit.errors import CheckpointError, ImageReadError, InputError
from esrkit.infer import Upscaler
from esrkit.infer.jobs import plan_jobs, upscale_files
from esrkit.models import create_model
from helpers import REPO, SHARED, one_line_error

RNG = np.random.default_rng(12)
PEAK_LIMIT_BYTES = 500 * 1024 * 1024  # the bound for the decompression-bomb runs


@pytest.fixture(autouse=True)
def _default_limits(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts from the documented defaults (no override, no environment) and leaves them so."""
    monkeypatch.delenv("ESRKIT_MAX_PIXELS", raising=False)
    monkeypatch.delenv("ESRKIT_MAX_FRAMES", raising=False)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # restored after the test
    reset_max_pixels()
    yield
    reset_max_pixels()


def _image(path: Path, h: int = 16, w: int = 12) -> Path:
    write_image(path, RNG.integers(0, 256, (h, w, 3), dtype=np.uint8))
    return path


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_bomb(path: Path, width: int = 100_000, height: int = 100_000) -> Path:
    """A valid PNG signature and IHDR claiming ``width × height`` 8-bit RGB, with two rows of zeros compressed in
    its IDAT: under a kilobyte on disk, 30 GB once decoded."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (1 + 3 * width) * 2, 9)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", rows) + _chunk(b"IEND", b""))
    return path


def _no_partial_files(root: Path) -> bool:
    return not [p for p in root.rglob("*") if p.name.startswith(".") or p.suffix == ".part"]


# ------------------------------------------------------------------------------------- decompression bombs


def test_png_bomb_is_refused_from_its_header(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = _png_bomb(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 1024
    decoded: list[object] = []
    monkeypatch.setattr("PIL.ImageFile.ImageFile.load", lambda self: decoded.append(self))  # never reached
    with pytest.raises(ImageReadError) as caught:
        read_image(bomb)
    message = str(caught.value)
    assert str(bomb) in message and "10,000.0 Mpx" in message and "ESRKIT_MAX_PIXELS" in message
    assert len(message.splitlines()) == 1 and not decoded


def test_pixel_limit_is_configurable_and_checked_before_decoding(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    small = _image(tmp_path / "small.png", 20, 30)  # 600 pixels
    assert max_pixels() == DEFAULT_MAX_PIXELS == 178_956_970  # Pillow's own bound, 2 × MAX_IMAGE_PIXELS
    monkeypatch.setenv("ESRKIT_MAX_PIXELS", "599")
    with pytest.raises(ImageReadError, match=r"small\.png: image header: 30×20"):
        read_image(small)
    monkeypatch.setenv("ESRKIT_MAX_PIXELS", "600")
    assert read_image(small).shape == (20, 30, 3)
    set_max_pixels(100)  # the API overrides the environment
    with pytest.raises(ImageReadError, match="over the limit of 100 pixels"):
        read_image(small)
    set_max_pixels(None)
    assert max_pixels() is None and Image.MAX_IMAGE_PIXELS is not None
    read_image(small)
    assert Image.MAX_IMAGE_PIXELS is None  # "no limit" reaches Pillow too: it has no per-call limit
    reset_max_pixels()
    for bad in ("lots", "-3"):
        monkeypatch.setenv("ESRKIT_MAX_PIXELS", bad)
        with pytest.raises(InputError, match="ESRKIT_MAX_PIXELS"):
            read_image(small)
    monkeypatch.setenv("ESRKIT_MAX_PIXELS", "none")
    assert max_pixels() is None
    with pytest.raises(InputError):
        set_max_pixels(0)


def test_raising_the_limit_past_pillows_raises_pillows(tmp_path: Path) -> None:
    small = _image(tmp_path / "small.png")
    set_max_pixels(4 * DEFAULT_MAX_PIXELS)
    read_image(small)
    assert 2 * Image.MAX_IMAGE_PIXELS > 4 * DEFAULT_MAX_PIXELS


# The measured command runs as a grandchild, started by a small Python launcher: Linux records the memory
# high-water mark of the image a process replaces at exec, and a child forked straight from this (large) pytest
# process would report pytest's own resident size as its peak.
_LAUNCHER = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
open(sys.argv[1], "w").write(str(usage.ru_maxrss * 1024))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def _run_measured(args: list[str], tmp_path: Path) -> tuple[int, str, int]:
    """Run ``python -m esrkit ARGS`` as a grandchild; its exit code, stderr and peak resident memory in bytes
    (``ru_maxrss`` from ``wait4``, KiB on Linux)."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1", "ESRKIT_CACHE": str(tmp_path / "c")}
    peak_file = tmp_path / "peak.txt"
    proc = subprocess.run([sys.executable, "-c", _LAUNCHER, str(peak_file), sys.executable, "-m", "esrkit", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    return proc.returncode, proc.stderr, int(peak_file.read_text())


@pytest.mark.skipif(not hasattr(os, "wait4"), reason="os.wait4 measures the child's peak memory (POSIX)")
@pytest.mark.parametrize("command", ["upscale", "evaluate"])
def test_png_bomb_on_the_command_line_exits_2_with_bounded_memory(command: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    bomb = _png_bomb(data / "bomb.png")
    args = (["upscale", str(bomb), "-o", str(tmp_path / "out"), "--model", "bicubic", "--device", "cpu"]
            if command == "upscale" else ["evaluate", "--model", "bicubic", "--data", str(data), "--device", "cpu"])
    code, err, peak = _run_measured(args, tmp_path)
    lines = err.splitlines()  # exactly one line: no blank line left behind by a progress bar either
    assert code == 2 and len(lines) == 1 and "bomb.png" in lines[0] and "Mpx" in lines[0], err
    assert peak < PEAK_LIMIT_BYTES, f"peak {peak / 2**20:.0f} MiB"
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------------- video


def _clip(path: Path, frames: int = 8, width: int = 32, height: int = 24, fmt: str | None = None) -> Path:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format=fmt) as container:
        video = container.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(RNG.integers(0, 256, (height, width, 3), dtype=np.uint8),
                                               format="rgb24")
            frame.pts = i
            container.mux(video.encode(frame))
        container.mux(video.encode())
    return path


def _double(frame: np.ndarray) -> np.ndarray:
    return np.repeat(np.repeat(frame, 2, axis=0), 2, axis=1)


def test_video_frames_over_the_pixel_limit_are_refused_before_decoding(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    clip = _clip(tmp_path / "clip.mp4")  # 32×24 = 768 pixels a frame
    monkeypatch.setenv("ESRKIT_MAX_PIXELS", "767")
    with pytest.raises(ImageReadError, match=r"clip\.mp4: video header: 32×24"):
        probe_video(clip)
    calls: list[int] = []
    with pytest.raises(ImageReadError, match=r"clip\.mp4: video header: 32×24"):
        upscale_video(clip, tmp_path / "out" / "clip.mp4", lambda f: calls.append(1) or _double(f))
    assert not calls and not (tmp_path / "out" / "clip.mp4").exists() and _no_partial_files(tmp_path)
    monkeypatch.setenv("ESRKIT_MAX_PIXELS", "768")
    assert probe_video(clip).width == 32


def test_a_stream_longer_than_the_frame_limit_stops_with_nothing_written(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    clip = _clip(tmp_path / "in" / "clip.mkv", fmt="matroska")  # Matroska declares no frame count
    with pytest.raises(ImageReadError, match=r"clip\.mkv: more than 3 frames"):
        upscale_video(clip, tmp_path / "x.mkv", _double, frame_limit=3)
    assert not (tmp_path / "x.mkv").exists() and _no_partial_files(tmp_path)
    assert upscale_video(clip, tmp_path / "x.mkv", _double, frame_limit=8).frames == 8
    monkeypatch.setenv("ESRKIT_MAX_FRAMES", "5")
    code = main(["upscale", str(clip), "-o", str(tmp_path / "out"), "--model", "bicubic", "--device", "cpu"])
    assert code == 2 and "more than 5 frames" in one_line_error(capsys)
    assert not (tmp_path / "out" / "clip.mkv").exists() and _no_partial_files(tmp_path / "in")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_pipes_are_refused_before_they_are_opened(tmp_path: Path) -> None:
    """Opening a FIFO with no writer blocks forever: it must be refused without being opened."""
    fifo = tmp_path / "live.mp4"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        plan_jobs([fifo], tmp_path / "out")
    with pytest.raises(InputError, match="not a regular file"):
        upscale_video(fifo, tmp_path / "out.mp4", _double)
    with pytest.raises(InputError, match="not a regular file"):
        probe_video(fifo)


@pytest.mark.parametrize(("ext", "needle"), [
    (".mp4", r"clip\.mp4: cannot be decoded"),  # MP4 keeps its index (moov) at the end: cut, it has none
    (".mkv", r"clip\.mkv: streams end after 1\.\d s of the 3\.0 s its header declares .*truncated"),
])
def test_truncated_video_is_an_image_read_error(tmp_path: Path, ext: str, needle: str) -> None:
    """Matroska cut in half still opens and its demuxer ends quietly at the cut: the 3-second header says more."""
    clip = _clip(tmp_path / f"clip{ext}", frames=30, fmt="matroska" if ext == ".mkv" else None)  # 3 s at 10 fps
    data = clip.read_bytes()
    clip.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=needle):
        upscale_video(clip, tmp_path / f"out{ext}", _double)
    assert not (tmp_path / f"out{ext}").exists() and _no_partial_files(tmp_path)


# --------------------------------------------------------------------------------------------- checkpoints


class _Storage:
    def __init__(self, key: str, numel: int) -> None:
        self.key, self.numel = key, numel


class _Tensor:
    """Pickles exactly as torch pickles a tensor: ``_rebuild_tensor_v2(storage, offset, size, stride, ...)``."""

    def __init__(self, storage: _Storage, size: tuple[int, ...]) -> None:
        self.storage, self.size = storage, size

    def __reduce__(self) -> tuple:
        stride = tuple(math.prod(self.size[i + 1:]) for i in range(len(self.size)))
        return (torch._utils._rebuild_tensor_v2,
                (self.storage, 0, self.size, stride, False, collections.OrderedDict()))


class _TorchPickler(pickle.Pickler):
    def __init__(self, fh: io.BytesIO, legacy: bool) -> None:
        super().__init__(fh, protocol=2)
        self.legacy = legacy

    def persistent_id(self, obj: object) -> tuple | None:
        if isinstance(obj, _Storage):
            pid = ("storage", torch.FloatStorage, obj.key, "cpu", obj.numel)
            return (*pid, None) if self.legacy else pid
        return None


def _crafted_pth(path: Path, shape: tuple[int, ...], declared: int, held: int, legacy: bool = False) -> Path:
    """A float32 checkpoint ``{"w": tensor of shape}`` whose storage declares ``declared`` elements while the file
    holds ``held`` of them, in torch's zip format or its legacy (pre-1.6) format."""
    storage = _Storage("0", declared)
    main_pickle = io.BytesIO()
    _TorchPickler(main_pickle, legacy).dump({"w": _Tensor(storage, shape)})
    payload = np.arange(held, dtype=np.float32).tobytes()
    if legacy:
        parts = [pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2), pickle.dumps(1001, protocol=2),
                 pickle.dumps({"protocol_version": 1001, "little_endian": True,
                               "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2),
                 main_pickle.getvalue(), pickle.dumps(["0"], protocol=2), struct.pack("<q", held), payload]
        path.write_bytes(b"".join(parts))
        return path
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("ckpt/data.pkl", main_pickle.getvalue())
        archive.writestr("ckpt/byteorder", "little")
        archive.writestr("ckpt/data/0", payload)
        archive.writestr("ckpt/version", "3\n")
    return path


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_crafted_checkpoints_are_what_torch_reads(tmp_path: Path, legacy: bool) -> None:
    """The crafting is faithful: an honest file made this way loads in torch and passes esrkit's inspection."""
    path = _crafted_pth(tmp_path / "ok.pth", (2, 3), declared=6, held=6, legacy=legacy)
    inspect_pth(path)
    loaded = torch.load(path, weights_only=True)
    assert torch.equal(loaded["w"], torch.arange(6, dtype=torch.float32).reshape(2, 3))


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize(("shape", "needle"), [
    ((1_000_000, 1_000_000), r"tensor 'w' declares shape \(1000000, 1000000\) \(1,000,000,000,000 elements\)"),
    ((1000, 1000), r"tensor 'w' declares 1,000,000 elements \(4\.0 MB of FloatStorage\) but the file holds "
                   r"16 bytes"),
])
def test_checkpoint_declaring_more_than_it_holds_is_refused_before_allocating(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        legacy: bool, shape: tuple[int, int], needle: str) -> None:
    path = _crafted_pth(tmp_path / "bomb.pth", shape, declared=shape[0] * shape[1], held=4, legacy=legacy)
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load reached"))
    with pytest.raises(CheckpointError, match=needle):
        load_checkpoint(path)
    assert main(["convert", str(path), str(tmp_path / "out.safetensors")]) == 2
    err = one_line_error(capsys)
    assert str(path) in err and "'w'" in err and not (tmp_path / "out.safetensors").exists()


def test_official_checkpoints_pass_the_inspection() -> None:
    official = sorted((SHARED / "weights" / "official").glob("*.pt*"))
    if not official:
        pytest.skip(f"no official checkpoints under {SHARED / 'weights' / 'official'}")
    for path in official:  # zip (RLFN, LKDN, DIPNet, ...) and legacy (IMDN, RFDN, PAN) files
        inspect_pth(path)


def test_truncated_safetensors_names_the_file_and_tensor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = save_checkpoint(create_model("rlfn_s", scale=2), tmp_path / "model.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"model\.safetensors: tensor '[\w.]+' needs bytes .* \(truncated\)"):
        load_checkpoint(path)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    _image(data_dir / "a.png")
    for args in (["convert", str(path), str(tmp_path / "out.safetensors")],
                 ["evaluate", "--weights", str(path), "--data", str(data_dir)]):
        assert main(args) == 2
        err = one_line_error(capsys)
        assert "model.safetensors: tensor '" in err and "truncated" in err, err
    path.write_bytes(data[:5])
    with pytest.raises(CheckpointError, match="too short for a safetensors file"):
        load_checkpoint(path)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_unless_allowed(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       bad: float) -> None:
    model = create_model("rlfn_s", scale=2)
    state = model.state_dict()
    key = next(k for k, v in state.items() if v.is_floating_point() and v.dim() == 4)
    state[key].view(-1)[3] = bad
    path = tmp_path / "diverged.pth"
    torch.save({"params": state}, path)
    with pytest.raises(CheckpointError, match=rf"diverged\.pth: tensor '{key}' has 1 non-finite value"):
        load_checkpoint(path)
    out = tmp_path / "out.safetensors"
    assert main(["convert", str(path), str(out)]) == 2
    err = one_line_error(capsys)
    assert "diverged.pth" in err and key in err and not out.exists()
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    _image(data_dir / "a.png")
    assert main(["evaluate", "--weights", str(path), "--data", str(data_dir)]) == 2
    assert key in one_line_error(capsys)
    assert main(["convert", str(path), str(out), "--allow-nonfinite"]) == 0
    loaded = load_checkpoint(out, allow_nonfinite=True)
    assert not bool(torch.isfinite(loaded.state_dict()[key]).all())


# ------------------------------------------------------------------------------- too large for the memory


def test_an_image_too_large_for_memory_starts_tiled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With little memory available the Upscaler starts in tiles (and says so) instead of being killed; for a
    tile-exact model the result is the whole-image one."""
    real = upscaler_module._available_memory()
    assert real is None or real > 0  # MemAvailable (and the cgroup's limit) on Linux
    lr = RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    whole = Upscaler(create_model("bicubic", scale=4), 4, tile_overlap=4)(lr)
    monkeypatch.setattr(upscaler_module, "_available_memory", lambda: 2_000_000)
    with pytest.warns(RuntimeWarning, match=r"a 64×64 input needs about \d+ MB whole but 2 MB is available; "
                                            r"running it in 16-pixel tiles"):
        tiled = Upscaler(create_model("bicubic", scale=4), 4, tile_overlap=4)(lr)
    assert np.array_equal(tiled, whole)


# ------------------------------------------------------------------------------------------ where files go


def test_symlinked_folder_inside_out_pointing_elsewhere_is_refused(tmp_path: Path) -> None:
    _image(tmp_path / "in" / "sub" / "a.png")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "sub").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(InputError, match=r"would be written outside .*out: .*sub is a symbolic link"):
        plan_jobs([tmp_path / "in"], tmp_path / "out")
    assert list(elsewhere.iterdir()) == []


def test_symlinked_output_file_pointing_elsewhere_is_refused(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    _image(tmp_path / "in" / "a.png")
    victim = _image(tmp_path / "victim.png")
    before = victim.read_bytes()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.png").symlink_to(victim)
    code = main(["upscale", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", "bicubic",
                 "--device", "cpu", "--overwrite"])
    assert code == 2 and "would be written outside" in one_line_error(capsys)
    assert victim.read_bytes() == before


def test_dotdot_and_symlinked_inputs_stay_inside_out(tmp_path: Path) -> None:
    _image(tmp_path / "in" / "a.png")
    outside = _image(tmp_path / "outside.png")
    (tmp_path / "in" / "link.png").symlink_to(outside)  # read through the link, named after it
    (tmp_path / "in" / "loop").symlink_to(tmp_path / "in", target_is_directory=True)  # not descended into
    jobs = plan_jobs([tmp_path / "in" / ".." / "in"], tmp_path / "out" / "x" / "..")
    root = (tmp_path / "out").resolve()
    assert sorted(j.dst.resolve().relative_to(root).as_posix() for j in jobs) == ["a.png", "link.png"]


def test_an_input_that_is_also_an_output_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _image(out / "a.png")
    with pytest.raises(InputError, match="is also an output of this run"):
        plan_jobs([out / "a.png"], out)
    with pytest.raises(InputError, match="is the input itself"):
        plan_jobs([out / "a.png"], out / "a.png")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "b.png").symlink_to(out / "a.png")  # an input link into the output folder is skipped
    _image(tmp_path / "in" / "c.png")
    assert [j.src.name for j in plan_jobs([tmp_path / "in"], out)] == ["c.png"]


def test_names_differing_only_in_case_are_refused(tmp_path: Path) -> None:
    _image(tmp_path / "in" / "Photo.png")
    _image(tmp_path / "in" / "photo.png")
    if len(list((tmp_path / "in").iterdir())) < 2:
        pytest.skip("this file system is case-insensitive: the two names are one file already")
    with pytest.raises(InputError, match="differ only in case"):
        plan_jobs([tmp_path / "in"], tmp_path / "out")


def test_concurrent_writers_of_one_file_never_leave_a_torn_image(tmp_path: Path) -> None:
    """Two threads rewrite one PNG with different content while a third reads it: every read decodes to one
    of the two images exactly, and no temporary file is left."""
    first = RNG.integers(0, 256, (48, 48, 3), dtype=np.uint8)
    second = RNG.integers(0, 256, (48, 48, 3), dtype=np.uint8)
    dst = tmp_path / "shared.png"
    write_image(dst, first)
    done = threading.Event()
    reads: list[bool] = []

    def writer(image: np.ndarray) -> None:
        for _ in range(40):
            write_image(dst, image)

    def reader() -> None:
        while not done.is_set():
            got = read_image(dst)
            reads.append(np.array_equal(got, first) or np.array_equal(got, second))

    threads = [threading.Thread(target=writer, args=(img,)) for img in (first, second)]
    watcher = threading.Thread(target=reader)
    watcher.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    watcher.join()
    assert reads and all(reads)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared.png"]


def test_two_upscale_processes_into_one_folder_leave_complete_images(tmp_path: Path) -> None:
    for i in range(6):
        _image(tmp_path / "in" / f"img{i}.png", 40, 32)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "esrkit", "upscale", str(tmp_path / "in"), "-o", str(tmp_path / "out"),
           "--model", "bicubic", "--device", "cpu", "--overwrite"]
    procs = [subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, (out + err).decode()
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [f"img{i}.png" for i in range(6)]  # no temporary file left either
    for name in names:
        with Image.open(tmp_path / "out" / name) as img:
            img.load()  # a torn file fails here
        assert read_image(tmp_path / "out" / name).shape == (160, 128, 3)


def test_an_interrupted_run_leaves_only_complete_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C in the middle of writing the third image: the first two are complete, the third is absent and no
    temporary file is left."""
    for i in range(5):
        _image(tmp_path / "in" / f"img{i}.png")
    jobs = plan_jobs([tmp_path / "in"], tmp_path / "out")
    real_encode = image_save.encode_png  # upscale's PNG encoder
    calls = {"n": 0}

    def encode(fh: BinaryIO, *args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            fh.write(b"\x89PNG\r\n\x1a\n half an image")
            raise KeyboardInterrupt
        real_encode(fh, *args, **kwargs)

    monkeypatch.setattr(image_save, "encode_png", encode)
    with pytest.raises(KeyboardInterrupt):
        upscale_files(Upscaler(create_model("bicubic", scale=4), 4), jobs)
    monkeypatch.undo()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["img0.png", "img1.png"]
    assert all(read_image(tmp_path / "out" / n).shape == (64, 48, 3) for n in ("img0.png", "img1.png"))
