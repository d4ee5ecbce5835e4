"""Outputs never replace what is not ours, and a failed write is one line (issue 18, deliver 3 and 4).

A device node, a FIFO and a symbolic link as ``convert``'s output, ``evaluate --json``, ``challenge rank --csv`` and
``upscale -o`` entries: exit 2, one line, each left exactly as it was (the test runs as root in CI, so the guard
must not rely on permissions; the device node is a copy of ``/dev/null``'s numbers). A full disk, a name too long
or permission denied while writing: one line naming the output. SIGTERM/SIGHUP: temporary files removed, exit
143/129 and one line saying what was finished; stale ``.part`` files of a killed run removed by the next run,
never a live writer's.

Against the code before the fix (main at 2871929) every one of these failed: the nodes and links were replaced by
regular files with exit 0 (or counted as skipped by ``upscale``), ENOSPC and the 256-byte output name were
tracebacks with exit 1, SIGTERM killed the run with the ``.part`` file left behind, and nothing removed it later.
"""

from __future__ import annotations

import errno
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pytest

from esrkit.checkpoints import save_checkpoint
from esrkit.cli import main
from esrkit.data import image_save
from esrkit.data.io import write_image
from esrkit.errors import InputError, OutputError
from esrkit.fileio import atomic_path, write_text_atomic
from esrkit.models import create_model
from esrkit.output_guard import STALE_AFTER_S, remove_stale_parts, temp_prefix
from helpers import REPO, one_line_error, write_noise_clip

RNG = np.random.default_rng(181)


def _image(path: Path, h: int = 16, w: int = 12) -> Path:
    write_image(path, RNG.integers(0, 256, (h, w, 3), dtype=np.uint8))
    return path


def _device(path: Path) -> None:
    null = os.stat("/dev/null")
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, null.st_rdev)
    except PermissionError:
        pytest.skip("creating a device node needs root (CI runs as root)")


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _symlink(path: Path) -> None:
    target = path.parent / "link-target.txt"
    target.write_text("the link's target, untouched\n")
    path.symlink_to(target.name)


NODES: dict[str, Callable[[Path], None]] = {"device": _device, "fifo": _fifo, "symlink": _symlink}


def _snapshot(path: Path) -> tuple[object, ...]:
    """Everything that would change if the path were replaced or written through."""
    info = os.lstat(path)
    link = os.readlink(path) if stat.S_ISLNK(info.st_mode) else None
    target = path.resolve().read_text() if link is not None else None
    return info.st_mode, info.st_ino, info.st_rdev, info.st_size, info.st_mtime_ns, link, target


@pytest.mark.parametrize("node", NODES)
@pytest.mark.parametrize("command", ["convert", "evaluate-json", "rank-csv", "upscale-file"])
def test_an_output_that_is_not_a_regular_file_is_refused_and_left_as_it_was(
        node: str, command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / ("out.safetensors" if command == "convert" else "out.png" if command == "upscale-file"
                      else "out.json" if command == "evaluate-json" else "out.csv")
    NODES[node](out)
    before = _snapshot(out)
    # every input is real, so that without the guard the command runs to its end (and replaces the node)
    save_checkpoint(create_model("rlfn", scale=4, num_feat=8, num_block=1, esa_channels=4), tmp_path / "m.safetensors")
    _image(tmp_path / "bench" / "a.png", 32, 32)
    (tmp_path / "rows.csv").write_text("Team,Val. Time,Test Time,#Params [M],FLOPs [G],#Acts [M],GPU Mem. [M],"
                                       "Test PSNR\nA,21.0,15.0,0.30,18,70,400,27.0\n", encoding="utf-8")
    args = {"convert": ["convert", str(tmp_path / "m.safetensors"), str(out)],
            "evaluate-json": ["evaluate", "--data", str(tmp_path / "bench"), "--model", "bicubic", "--json",
                              str(out)],
            "rank-csv": ["challenge", "rank", str(tmp_path / "rows.csv"), "-c", "ntire2023", "--csv", str(out)],
            "upscale-file": ["upscale", str(_image(tmp_path / "in.png")), "-o", str(out), "--model", "bicubic",
                             "--overwrite"]}[command]
    code = main(args)
    err = one_line_error(capsys)
    assert code == 2 and f"{out} exists and is a" in err and "refusing to replace it" in err, err
    assert _snapshot(out) == before


@pytest.mark.parametrize("overwrite", [False, True], ids=["plain", "overwrite"])
@pytest.mark.parametrize("node", NODES)
def test_an_o_folder_entry_named_like_an_output_is_refused_not_skipped(
        node: str, overwrite: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _image(tmp_path / "in" / "a.png")
    _image(tmp_path / "in" / "b.png")
    (tmp_path / "out").mkdir()
    NODES[node](tmp_path / "out" / "b.png")
    before = _snapshot(tmp_path / "out" / "b.png")
    code = main(["upscale", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", "bicubic",
                 "--device", "cpu", *(["--overwrite"] if overwrite else [])])
    err = one_line_error(capsys)
    assert code == 2 and "b.png exists and is a" in err, err
    assert _snapshot(tmp_path / "out" / "b.png") == before
    assert not (tmp_path / "out" / "a.png").exists()  # refused before any work


@pytest.mark.parametrize("node", NODES)
def test_a_node_made_while_the_output_is_written_is_not_replaced(node: str, tmp_path: Path) -> None:
    """The rename checks again: what appeared after the up-front check is refused too, the temporary file goes."""
    target = tmp_path / "late.json"
    with pytest.raises(InputError, match="exists and is a"), atomic_path(target) as tmp:
        tmp.write_text("{}\n")
        NODES[node](target)
        before = _snapshot(target)
    assert _snapshot(target) == before
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".part"] == []


@pytest.mark.parametrize(("where", "code", "needle"), [
    ("save", errno.ENOSPC, "No space left on device (ENOSPC); free some space"),
    ("mkstemp", errno.EACCES, "Permission denied (EACCES)"),
    ("replace", errno.ENAMETOOLONG, "File name too long (ENAMETOOLONG)"),
])
def test_a_system_error_while_writing_names_the_output(where: str, code: int, needle: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*_args: object, **_kwargs: object) -> None:
        raise OSError(code, os.strerror(code))

    target = {"save": "a.png", "mkstemp": "b.json", "replace": "c.json"}[where]
    if where == "save":
        monkeypatch.setattr("esrkit.data.io.encode_png", fail)  # write_image's PNG encoder
    elif where == "mkstemp":
        monkeypatch.setattr("tempfile.mkstemp", fail)
    else:
        monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OutputError) as info:
        if where == "save":
            write_image(tmp_path / target, np.zeros((4, 4, 3), np.uint8))
        else:
            write_text_atomic(tmp_path / target, "{}\n")
    assert str(info.value).startswith(f"cannot write {tmp_path / target}: ") and needle in str(info.value)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_full_disk_under_o_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _image(tmp_path / "in" / "a.png")
    real_encode = image_save.encode_png  # upscale's PNG encoder

    def encode(fh: BinaryIO, *args: Any, **kwargs: Any) -> None:
        real_encode(fh, *args, **kwargs)  # the bytes went out, then the disk filled before the close
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(image_save, "encode_png", encode)
    code = main(["upscale", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", "bicubic"])
    err = one_line_error(capsys)
    assert code == 2 and f"cannot write {tmp_path / 'out' / 'a.png'}: No space left on device" in err, err
    assert not (tmp_path / "out").exists()  # no partial file, and the folder this run made is gone again


def test_an_output_name_past_name_max_is_refused_before_work(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A 255-byte input name is fine; its .webp output is 256 bytes."""
    name = "x" * 251 + ".png"
    _image(tmp_path / "in" / name)
    code = main(["upscale", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", "bicubic",
                 "--format", "webp"])
    err = one_line_error(capsys)
    assert code == 2 and "is 256 bytes, over the file system's limit of 255 (NAME_MAX)" in err, err
    assert not (tmp_path / "out").exists()


def test_temporary_names_stay_within_255_bytes_for_long_multibyte_names(tmp_path: Path) -> None:
    """The old prefix kept 200 *characters*: 600 bytes of 'é…' made mkstemp fail with ENAMETOOLONG."""
    name = "é" * 125 + ".json"  # 255 bytes
    write_text_atomic(tmp_path / name, "{}\n")
    assert (tmp_path / name).read_text() == "{}\n"
    assert len(os.fsencode(temp_prefix(name))) + 8 + len(".part") <= 255


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_only_stale_temporary_files_of_ours_are_removed(tmp_path: Path) -> None:
    ours = temp_prefix("a.png")  # ".a.png.esrkit-HOST-PID."
    host_pid = ours[len(".a.png.esrkit-"):-1]
    host = host_pid.split("-")[0]
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        files = {
            "dead": f".a.png.esrkit-{host}-{_dead_pid()}.k2j4h5g6.part",  # a killed run here: removed
            "live": f".b.png.esrkit-{host}-{sleeper.pid}.a1b2c3d4.part",  # a running writer: kept
            "mine": f"{ours}zzzz1111.part",  # this process: kept
            "elsewhere": ".c.mp4.esrkit-0badc0de-1.q1w2e3r4.part",  # another machine, written just now: kept
            "elsewhere-old": ".d.mp4.esrkit-0badc0de-1.q1w2e3r4.part",  # another machine, a day untouched: removed
            "user": ".e.png.12345678.part",  # not our pattern: kept
        }
        for path in files.values():
            (tmp_path / path).write_bytes(b"x")
        old = time.time() - STALE_AFTER_S - 60
        os.utime(tmp_path / files["elsewhere-old"], (old, old))
        removed = remove_stale_parts(tmp_path)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert sorted(p.name for p in removed) == sorted([files["dead"], files["elsewhere-old"]])
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {files[k] for k in ("live", "mine", "elsewhere", "user")}


def test_the_next_run_into_a_folder_removes_a_killed_runs_part_file(tmp_path: Path) -> None:
    _image(tmp_path / "in" / "a.png")
    (tmp_path / "out").mkdir()
    host = temp_prefix("x")[len(".x.esrkit-"):].split("-")[0]
    stale = tmp_path / "out" / f".a.png.esrkit-{host}-{_dead_pid()}.abcd1234.part"
    stale.write_bytes(b"half an image")
    assert main(["upscale", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", "bicubic"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png"]


def _clip(path: Path, frames: int) -> Path:
    return write_noise_clip(path, frames, 96, 64, RNG)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_signals_remove_the_temporary_file_and_say_what_was_finished(sig: int, code: int,
                                                                               tmp_path: Path) -> None:
    """The issue's case: a signal during a video upscale left ``NAME.mp4.*.part``. Here an image is finished
    first, then the signal arrives while the video's temporary file is being written."""
    _image(tmp_path / "in" / "a.png")
    _clip(tmp_path / "in" / "b.mp4", 150)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "esrkit", "upscale", str(tmp_path / "in"), "-o", str(out),
                             "--model", "bicubic", "--device", "cpu"], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list(out.glob(".b.mp4.*.part")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before the video's temporary file appeared"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    # piped, upscale prints one line per finished file ("upscaled a.png -> ..."); the signal adds exactly one more
    lines = [line for line in err.strip().splitlines() if not line.startswith("upscaled ")]
    assert proc.returncode == code and len(lines) == 1, err
    said = f"by {signal.Signals(sig).name}" if sig != signal.SIGINT else "(Ctrl-C)"
    assert f"esrkit: interrupted {said}: 1 of 2 output(s) finished, complete" in lines[0], lines[0]
    assert sorted(p.name for p in out.iterdir()) == ["a.png"]  # the image; no .part, no partial video


def _limit_file_size() -> None:
    """In the child: files may not grow past 64 KiB (writes past it fail with EFBIG, as a full disk fails with
    ENOSPC: a real write error from the kernel, without root or a tiny file system)."""
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills the writer instead of failing the write
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))


@pytest.mark.parametrize("kind", ["image", "video"])
def test_a_write_the_kernel_refuses_is_one_line_naming_the_output(kind: str, tmp_path: Path) -> None:
    src = _image(tmp_path / "in" / "a.png", 96, 128) if kind == "image" else _clip(tmp_path / "in" / "a.mp4", 40)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "esrkit", "upscale", str(src), "-o", str(out), "--model",
                           "bicubic", "--device", "cpu"], env={**os.environ, "PYTHONPATH": str(REPO / "src")},
                          capture_output=True, text=True, preexec_fn=_limit_file_size, timeout=300)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert f"cannot write {out / src.name}: File too large (EFBIG)" in lines[0], lines[0]
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("node", NODES)
def test_a_staged_folder_moves_nothing_over_a_node(node: str, tmp_path: Path) -> None:
    """``evaluate --save-dir`` and ``demo`` publish a staged folder: one node among the destinations stops the move
    before any file is moved."""
    from esrkit.fileio import staged_dir

    (tmp_path / "out").mkdir()
    NODES[node](tmp_path / "out" / "b.png")
    before = _snapshot(tmp_path / "out" / "b.png")
    with pytest.raises(InputError, match=r"b\.png exists and is a"), staged_dir(tmp_path / "out") as staging:
        _image(staging / "a.png")
        _image(staging / "b.png")
    assert _snapshot(tmp_path / "out" / "b.png") == before
    assert not (tmp_path / "out" / "a.png").exists()
