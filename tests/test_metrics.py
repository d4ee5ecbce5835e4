"""Metrics follow the MATLAB conventions the papers use."""

from __future__ import annotations

import math

import numpy as np
import pytest

from esrkit.errors import InputError
from esrkit.metrics import calculate_metrics, psnr, rgb_to_y, ssim

RNG = np.random.default_rng(1)


def test_rgb_to_y_matches_matlab_rgb2ycbcr_on_known_colours():
    colours = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]]], dtype=np.uint8)
    # MATLAB rgb2ycbcr(uint8): Y = 16 + (65.481 R + 128.553 G + 24.966 B)/255, rounded
    assert rgb_to_y(colours, round_y=True)[0].tolist() == [16, 235, 81, 145, 41]
    assert rgb_to_y(colours)[0, 2] == pytest.approx(16 + 65.481)  # default: unrounded (BasicSR convention)


def test_psnr_from_known_mse():
    a = np.zeros((8, 8), np.uint8)
    b = a.copy()
    b[0, 0] = 8  # MSE = 64 / 64 = 1
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2))
    assert psnr(a, a) == math.inf


def _ssim_reference(a: np.ndarray, b: np.ndarray) -> float:
    """Independent SSIM (Wang et al. 2004) with scipy's correlate and an explicit valid crop."""
    from scipy.ndimage import correlate

    ax = np.arange(11) - 5
    g = np.exp(-(ax**2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    a, b = a.astype(np.float64), b.astype(np.float64)

    def filt(x):
        return correlate(x, w, mode="constant")[5:-5, 5:-5]

    mu_a, mu_b = filt(a), filt(b)
    s_a, s_b, s_ab = filt(a * a) - mu_a**2, filt(b * b) - mu_b**2, filt(a * b) - mu_a * mu_b
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    m = ((2 * mu_a * mu_b + c1) * (2 * s_ab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (s_a + s_b + c2))
    return float(m.mean())


def test_ssim_matches_independent_reference():
    pytest.importorskip("scipy")
    a = RNG.integers(0, 256, (40, 33), dtype=np.uint8)
    b = np.clip(a.astype(int) + RNG.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    assert ssim(a, b) == pytest.approx(_ssim_reference(a, b), abs=1e-10)
    assert ssim(a, a) == pytest.approx(1.0)
    rgb_a = RNG.integers(0, 256, (30, 30, 3), dtype=np.uint8)
    rgb_b = np.clip(rgb_a.astype(int) + 5, 0, 255).astype(np.uint8)
    expected = np.mean([_ssim_reference(rgb_a[..., c], rgb_b[..., c]) for c in range(3)])
    assert ssim(rgb_a, rgb_b) == pytest.approx(expected, abs=1e-10)


def test_calculate_metrics_mod_crops_hr_and_crops_border():
    hr = RNG.integers(0, 256, (50, 46, 3), dtype=np.uint8)  # mod-crop ×4 → 48×44
    sr = hr[:48, :44].copy()
    sr[0, 0] = 0  # differs only inside the border: must not count
    sr[:4, :] = 255 - sr[:4, :]
    result = calculate_metrics(sr, hr, scale=4)
    assert set(result) == {"psnr_rgb", "ssim_rgb", "psnr_y", "ssim_y"}
    assert result["psnr_rgb"] == math.inf and result["ssim_y"] == pytest.approx(1.0)
    assert calculate_metrics(sr, hr, scale=4, border=0)["psnr_rgb"] < 20


def test_calculate_metrics_rejects_mismatch_and_float():
    hr = np.zeros((48, 48, 3), np.uint8)
    with pytest.raises(InputError, match="does not match"):
        calculate_metrics(np.zeros((44, 48, 3), np.uint8), hr, scale=4)
    with pytest.raises(InputError, match="uint8"):
        calculate_metrics(hr.astype(np.float32), hr, scale=4)
