"""Benchmark folders: layouts, LR siblings, standard names, cached LR and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from esrkit.data.datasets import resolve_benchmark
from esrkit.data.io import write_image
from esrkit.errors import InputError

RNG = np.random.default_rng(2)


def _img(h, w):
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_hr_subfolder_with_lr_sibling_is_used(tmp_path):
    root = tmp_path / "MySet"
    write_image(root / "HR" / "a.png", _img(18, 17))
    lr = _img(4, 4)
    write_image(root / "LR_bicubic" / "X4" / "ax4.png", lr)
    bench = resolve_benchmark(root, 4)
    assert bench.name == "MySet" and bench.lr_dir == root / "LR_bicubic" / "X4"
    [(stem, lr_read, hr)] = list(bench.pairs())
    assert stem == "a" and hr.shape == (16, 16, 3)  # mod-cropped
    np.testing.assert_array_equal(lr_read, lr)


def test_div2k_layout(tmp_path):
    write_image(tmp_path / "DIV2K_valid_HR" / "0801.png", _img(16, 16))
    write_image(tmp_path / "DIV2K_valid_LR_bicubic" / "X2" / "0801x2.png", _img(8, 8))
    bench = resolve_benchmark("DIV2K-valid", 2, root=tmp_path)
    assert bench.name == "DIV2K-valid" and bench.lr_dir is not None and len(bench) == 1


def test_lr_generated_with_bicubic_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("ESRKIT_CACHE", str(tmp_path / "cache"))
    from esrkit.data.resize import imresize

    hr = _img(21, 20)
    write_image(tmp_path / "plain" / "x.png", hr)
    bench = resolve_benchmark(tmp_path / "plain", 4)
    assert bench.lr_dir is None
    [(_, lr, _)] = list(bench.pairs())
    np.testing.assert_array_equal(lr, imresize(hr[:20, :20], 0.25))
    cached = list((tmp_path / "cache").rglob("*.png"))
    assert len(cached) == 1
    [(_, lr_again, _)] = list(bench.pairs())  # served from the cache now
    np.testing.assert_array_equal(lr_again, lr)


def test_standard_name_resolution_and_errors(tmp_path, monkeypatch):
    write_image(tmp_path / "Set5" / "HR" / "baby.png", _img(8, 8))
    monkeypatch.setenv("ESRKIT_DATA", str(tmp_path))
    assert resolve_benchmark("set5", 4).hr_dir == tmp_path / "Set5" / "HR"
    with pytest.raises(InputError, match=r"Urban100.*not found under data root"):
        resolve_benchmark("Urban100", 4)
    with pytest.raises(InputError, match="no such folder"):
        resolve_benchmark(tmp_path / "missing", 4)
    monkeypatch.delenv("ESRKIT_DATA")
    with pytest.raises(InputError, match="no data root"):
        resolve_benchmark("Set14", 4)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images"):
        resolve_benchmark(tmp_path / "empty", 4)


def test_wrong_lr_size_is_reported(tmp_path):
    write_image(tmp_path / "S" / "HR" / "a.png", _img(16, 16))
    write_image(tmp_path / "S" / "LR_bicubic" / "X4" / "a.png", _img(5, 4))
    with pytest.raises(InputError, match="expected 4×4"):
        list(resolve_benchmark(tmp_path / "S", 4).pairs())


def test_crop_multiple_crops_hr_from_the_top_left_and_lr_to_match(tmp_path, monkeypatch):
    """The AIS 2024 scoring: HR cropped from the top-left to multiples of 24 (×4: LR sides divisible by 6)."""
    monkeypatch.setenv("ESRKIT_CACHE", str(tmp_path / "cache"))
    from esrkit.data.resize import imresize

    hr = _img(53, 70)
    write_image(tmp_path / "set" / "a.png", hr)
    [(_, lr, hr_cut)] = list(resolve_benchmark(tmp_path / "set", 4, crop_multiple=24).pairs())
    np.testing.assert_array_equal(hr_cut, hr[:48, :48])
    np.testing.assert_array_equal(lr, imresize(hr[:48, :48], 0.25))
    [(_, lr_plain, hr_plain)] = list(resolve_benchmark(tmp_path / "set", 4).pairs())  # its own cache entry
    assert hr_plain.shape == (52, 68, 3) and lr_plain.shape == (13, 17, 3)
    # A given LR folder is cut the same way.
    write_image(tmp_path / "set2" / "HR" / "a.png", hr)
    write_image(tmp_path / "set2" / "LR_bicubic" / "X4" / "ax4.png", imresize(hr[:52, :68], 0.25))
    [(_, lr_given, _)] = list(resolve_benchmark(tmp_path / "set2", 4, crop_multiple=24).pairs())
    assert lr_given.shape == (12, 12, 3)
    with pytest.raises(InputError, match="positive"):
        resolve_benchmark(tmp_path / "set", 4, crop_multiple=0)
