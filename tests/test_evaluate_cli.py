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


# ------------------------------------------------------------------ which weights a result came from (--json)


def _provenance(tmp_path, *args):
    """``weights_provenance`` of an evaluate run on one small image (torch backend: nothing exported)."""
    if not (tmp_path / "d").exists():
        write_image(tmp_path / "d" / "a.png", RNG.integers(0, 256, (24, 24, 3), dtype=np.uint8))
    out = tmp_path / "r.json"
    assert main(["evaluate", *args, "--data", str(tmp_path / "d"), "--json", str(out), "--device", "cpu",
                 "--backend", "torch"]) == 0
    return json.loads(out.read_text())


def test_json_records_the_checkpoint_file_and_its_sha256(tmp_path):
    import hashlib

    import torch

    from esrkit.models import create_model

    torch.manual_seed(0)
    weights = tmp_path / "mine.pth"
    torch.save(create_model("rfdn").state_dict(), weights)
    doc = _provenance(tmp_path, "--weights", str(weights))
    assert doc["weights"] == str(weights)  # the existing key keeps its meaning: the path as given
    assert doc["weights_provenance"] == {"kind": "file", "path": str(weights.resolve()),
                                         "bytes": weights.stat().st_size,
                                         "sha256": hashlib.sha256(weights.read_bytes()).hexdigest()}


def test_json_names_the_bundled_file_however_it_was_asked_for(tmp_path, monkeypatch):
    import hashlib

    from esrkit.bundled import ENV_VAR, packaged_weights_path

    packaged = packaged_weights_path()
    if not packaged.is_file():
        pytest.skip("this checkout has no bundled esrkit_x4 weights")
    digest = hashlib.sha256(packaged.read_bytes()).hexdigest()
    monkeypatch.delenv(ENV_VAR, raising=False)
    for args in (["--model", "esrkit_x4"], []):  # by name, and as the default model
        record = _provenance(tmp_path, *args)["weights_provenance"]
        assert record["kind"] == "bundled" and record["name"] == "esrkit_x4" and record["from"] == "package"
        assert record["sha256"] == digest and record["path"] == str(packaged.resolve())
    other = tmp_path / "site_default.safetensors"
    other.write_bytes(packaged.read_bytes())
    monkeypatch.setenv(ENV_VAR, str(other))
    record = _provenance(tmp_path, "--model", "esrkit_x4")["weights_provenance"]
    assert (record["kind"], record["from"], record["path"]) == ("bundled", "ESRKIT_BUNDLED_WEIGHTS",
                                                               str(other.resolve()))


def test_json_says_when_weights_are_random_or_absent(tmp_path):
    record = _provenance(tmp_path, "--model", "mdrn", "--random-weights")["weights_provenance"]
    assert record == {"kind": "random", "model": "mdrn", "scale": 4, "random_weights": True}
    record = _provenance(tmp_path, "--model", "bicubic")["weights_provenance"]
    assert record == {"kind": "none", "model": "bicubic", "scale": 4}


def test_json_recognises_a_released_file_given_as_weights(tmp_path):
    from esrkit.hub import catalogue

    weights = shared_path("weights", "official", "rlfn_ntire2022_x4.pth")
    (entry,) = catalogue.entries_for("rlfn_ntire", 4)
    record = _provenance(tmp_path, "--weights", str(weights))["weights_provenance"]
    assert record["kind"] == "file" and record["sha256"] == entry.sha256
    assert record["released_as"] == {"label": "rlfn_ntire ×4 (train)", "url": entry.url}
