"""``esrkit evaluate``: the published bicubic numbers, the JSON document, and bad-input behaviour."""

from __future__ import annotations

import json

import numpy as np
import pytest

from esrkit.cli import main
from esrkit.data.io import write_image
from helpers import shared_path

RNG = np.random.default_rng(3)


@pytest.mark.parametrize(("dataset", "expected_y"), [("Set5", 28.43), ("Set14", 26.09)])
def test_bicubic_x4_reproduces_published_y_psnr(dataset, expected_y, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ESRKIT_CACHE", str(tmp_path / "cache"))
    data = shared_path("data", "benchmarks", dataset)
    out = tmp_path / "r.json"
    assert main(["evaluate", "--model", "bicubic", "--scale", "4", "--data", str(data), "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["model"] == "bicubic"
    [row] = doc["results"]
    assert row["dataset"] == dataset and row["scale"] == 4
    assert row["n"] == {"Set5": 5, "Set14": 14}[dataset]
    assert row["psnr_y"] == pytest.approx(expected_y, abs=0.01)
    assert row["psnr_rgb"] < row["psnr_y"]  # RGB PSNR is always lower than Y for bicubic
    assert 0.5 < row["ssim_rgb"] < row["ssim_y"] < 1
    assert dataset in capsys.readouterr().out


def _bad(tmp_path, capsys, args):
    code = main(["evaluate", *args, "--json", str(tmp_path / "out.json"), "--save-dir", str(tmp_path / "sr")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert not (tmp_path / "out.json").exists() and not (tmp_path / "sr").exists()
    return err


def test_missing_path(tmp_path, capsys):
    err = _bad(tmp_path, capsys, ["--model", "bicubic", "--data", str(tmp_path / "nowhere")])
    assert "nowhere" in err


def test_folder_without_images(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("hi")
    err = _bad(tmp_path, capsys, ["--model", "bicubic", "--data", str(tmp_path / "empty")])
    assert "no images" in err


def test_corrupt_and_truncated_images(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ESRKIT_CACHE", str(tmp_path / "cache"))
    bench = tmp_path / "B"
    write_image(bench / "a.png", RNG.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    good = write_image(bench / "b.png", RNG.integers(0, 256, (32, 32, 3), dtype=np.uint8)).read_bytes()
    (bench / "b.png").write_bytes(good[: len(good) // 3])
    err = _bad(tmp_path, capsys, ["--model", "bicubic", "--data", str(bench)])
    assert "b.png" in err


def test_unsupported_scale(tmp_path, capsys):
    write_image(tmp_path / "d" / "a.png", RNG.integers(0, 256, (20, 20, 3), dtype=np.uint8))
    err = _bad(tmp_path, capsys, ["--model", "bicubic", "--scale", "5", "--data", str(tmp_path / "d")])
    assert "scale" in err and "5" in err


def test_unknown_model(tmp_path, capsys):
    write_image(tmp_path / "d" / "a.png", RNG.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    err = _bad(tmp_path, capsys, ["--model", "bicubicc", "--data", str(tmp_path / "d")])
    assert "bicubicc" in err and "bicubic" in err


def test_save_dir_gets_sr_images(tmp_path, monkeypatch):
    monkeypatch.setenv("ESRKIT_CACHE", str(tmp_path / "cache"))
    write_image(tmp_path / "d" / "a.png", RNG.integers(0, 256, (40, 36, 3), dtype=np.uint8))
    assert main(["evaluate", "--model", "lanczos", "--scale", "2", "--data", str(tmp_path / "d"),
                 "--save-dir", str(tmp_path / "sr")]) == 0
    saved = list((tmp_path / "sr").rglob("*.png"))
    assert [p.relative_to(tmp_path / "sr").as_posix() for p in saved] == ["d/a.png"]
