"""Output paths and files: every output option is checked the same way before any work, creates missing parent
folders when it writes, and leaves files with the mode the user's umask gives an ordinary file."""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from esrkit.cli import main
from esrkit.data.io import write_image
from esrkit.errors import InputError
from esrkit.fileio import atomic_path, check_output_path, current_umask, write_json_atomic

RNG = np.random.default_rng(5)
ROWS_CSV = (
    "team,runtime_ms,params_m,flops_g,acts_m,memory_mb,psnr_test\n"
    "fast,10,0.5,30,100,500,27.0\n"
    "small,30,0.1,6,200,300,27.0\n"
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _bench(folder: Path) -> Path:
    write_image(folder / "a.png", RNG.integers(0, 256, (24, 20, 3), dtype=np.uint8))
    return folder


def _listing(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


# ---------------------------------------------------------------------------------------------- the check


def test_check_output_path_accepts_missing_parents_without_creating_them(tmp_path: Path) -> None:
    assert check_output_path(tmp_path / "a" / "b" / "r.json", param="json_out") == tmp_path / "a" / "b" / "r.json"
    assert check_output_path(tmp_path / "sr" / "x", param="save_dir", kind="dir") == tmp_path / "sr" / "x"
    (tmp_path / "old.json").write_text("{}")
    check_output_path(tmp_path / "old.json", param="json_out")  # overwriting a file is fine
    assert _listing(tmp_path) == ["old.json"]


@pytest.mark.parametrize(
    ("target", "kind", "needle"),
    [
        ("folder", "file", "is a folder"),
        ("afile/r.json", "file", "is a file, not a folder"),
        ("afile/deeper/r.json", "file", "is a file, not a folder"),
        ("afile", "dir", "is not a folder"),
        ("afile/sr", "dir", "is a file, not a folder"),
    ],
)
def test_check_output_path_refusals(tmp_path: Path, target: str, kind: str, needle: str) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InputError, match=needle) as info:
        check_output_path(tmp_path / target, param="json_out", kind=kind)  # type: ignore[arg-type]
    assert info.value.param == "json_out"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_check_output_path_refuses_a_read_only_folder(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(InputError, match="not writable"):
            check_output_path(locked / "new" / "r.json", param="output")
    finally:
        locked.chmod(0o755)


# ------------------------------------------------------------------------------ every option, one behaviour


def _profile(work: Path, out: Path) -> list[str]:
    return ["profile", "--model", "rfdn", "--device", "auto", "--input", "32x32", "--warmup", "0", "--repeats", "1",
            "--json", str(out)]


def _evaluate(work: Path, out: Path) -> list[str]:
    return ["evaluate", "--model", "bicubic", "--scale", "2", "--device", "auto", "--data", str(work / "bench"),
            "--json", str(out)]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with a tiny benchmark (for evaluate) and a plain file to misuse as a parent folder."""
    monkeypatch.setenv("ESRKIT_CACHE", str(tmp_path.parent / f"{tmp_path.name}-cache"))
    work = tmp_path / "w"
    _bench(work / "bench")
    (work / "afile").write_text("not a folder")
    return work


@pytest.mark.parametrize("make", [_profile, _evaluate], ids=["profile", "evaluate"])
def test_profile_and_evaluate_json_behave_alike(
    workdir: Path, capsys: pytest.CaptureFixture[str], make: Callable[[Path, Path], list[str]]
) -> None:
    out = workdir / "new" / "deeper" / "r.json"
    assert main(make(workdir, out)) == 0
    assert json.loads(out.read_text())["results"]  # the missing parents were created
    capsys.readouterr()

    before = _listing(workdir)
    assert main(make(workdir, workdir / "afile" / "r.json")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("esrkit: error: --json: ") and "afile" in err
    assert main(make(workdir, workdir / "new")) == 2  # an existing folder is not a file
    assert "--json: " in capsys.readouterr().err
    assert _listing(workdir) == before  # refused before any work: nothing written


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["evaluate", "--model", "bicubic", "--data", "{bench}", "--save-dir", "{bad}"], "--save-dir"),
        (["challenge", "rank", "{rows}", "-c", "ntire2023", "--json", "{bad}"], "--json"),
        (["challenge", "rank", "{rows}", "-c", "ntire2023", "--csv", "{bad}"], "--csv"),
        (["challenge", "run", "ntire2023", "-w", "{rows}", "--data-root", "{bench}", "--json", "{bad}"], "--json"),
        (["report", "{rows}", "-c", "ntire2023", "-o", "{bad}"], "--output"),
        (["convert", "{rows}", "{bad}"], "DST"),
    ],
)
def test_every_output_option_refuses_a_file_as_parent_folder(
    workdir: Path, capsys: pytest.CaptureFixture[str], argv: list[str], flag: str
) -> None:
    rows = workdir / "rows.csv"
    rows.write_text(ROWS_CSV)
    before = _listing(workdir)
    bad = workdir / "afile" / "out.safetensors"
    args = [a.format(bench=workdir / "bench", rows=rows, bad=bad) for a in argv]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"esrkit: error: {flag}: "), err
    assert _listing(workdir) == before


def test_rank_and_report_create_missing_parent_folders(workdir: Path) -> None:
    rows = workdir / "rows.csv"
    rows.write_text(ROWS_CSV)
    out = workdir / "a" / "b"
    assert main(["challenge", "rank", str(rows), "-c", "ntire2023", "--json", str(out / "r.json"),
                 "--csv", str(out / "r.csv")]) == 0
    assert main(["report", str(rows), "-c", "ntire2023", "-o", str(out / "c" / "r.html")]) == 0
    assert {"a/b/r.json", "a/b/r.csv", "a/b/c/r.html"} <= set(_listing(workdir))


# ------------------------------------------------------------------------------------------------ modes


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_outputs_get_the_umask_mode(workdir: Path, mask: int) -> None:
    from esrkit.checkpoints import save_checkpoint
    from esrkit.models import create_model

    rows = workdir / "rows.csv"
    rows.write_text(ROWS_CSV)
    src = save_checkpoint(create_model("rfdn", scale=4), workdir / "src.safetensors")
    out = workdir / "out"
    with _umask(mask):
        assert current_umask() == mask
        assert main(["evaluate", "--model", "bicubic", "--scale", "2", "--data", str(workdir / "bench"),
                     "--json", str(out / "json" / "r.json"), "--save-dir", str(out / "sr")]) == 0
        assert main(["report", str(rows), "-c", "ntire2023", "-o", str(out / "report.html")]) == 0
        assert main(["convert", str(src), str(out / "ckpt" / "m.safetensors")]) == 0
    files = [out / "json" / "r.json", out / "sr" / "bench" / "a.png", out / "report.html",
             out / "ckpt" / "m.safetensors"]
    for path in files:
        assert _mode(path) == 0o666 & ~mask, (path, oct(_mode(path)))
    for folder in (out, out / "json", out / "sr", out / "sr" / "bench", out / "ckpt"):
        assert _mode(folder) == 0o777 & ~mask, (folder, oct(_mode(folder)))
    assert not [p for p in workdir.rglob(".*")]  # no staging folder or temporary file left


def test_rewriting_a_file_keeps_its_mode(tmp_path: Path) -> None:
    """As ``open(path, "w")`` would: the umask applies to new files; an existing file keeps the mode its owner
    chose."""
    target = tmp_path / "r.json"
    target.write_text("{}")
    target.chmod(0o640)
    with _umask(0o077):
        write_json_atomic(target, {"a": 1})
    assert _mode(target) == 0o640 and json.loads(target.read_text()) == {"a": 1}


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "x.bin") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("interrupted")
    assert _listing(tmp_path) == []
