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
    """Independent SSIM (Wang et al. 2004): a dense 2-D 11×11 window built as MATLAB's fspecial('gaussian', 11,
    1.5) does (from x² + y², not as an outer product), 'valid' correlation with scipy, per channel, then the mean."""
    from scipy.signal import correlate2d

    y, x = np.mgrid[-5:6, -5:6]
    w = np.exp(-(x**2 + y**2) / (2 * 1.5**2))
    w /= w.sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def plane(p: np.ndarray, q: np.ndarray) -> float:
        p, q = p.astype(np.float64), q.astype(np.float64)

        def filt(z: np.ndarray) -> np.ndarray:
            return correlate2d(z, w, mode="valid")

        mu_p, mu_q = filt(p), filt(q)
        s_p, s_q, s_pq = filt(p * p) - mu_p**2, filt(q * q) - mu_q**2, filt(p * q) - mu_p * mu_q
        m = ((2 * mu_p * mu_q + c1) * (2 * s_pq + c2)) / ((mu_p**2 + mu_q**2 + c1) * (s_p + s_q + c2))
        return float(m.mean())

    if a.ndim == 2:
        return plane(a, b)
    return float(np.mean([plane(a[..., c], b[..., c]) for c in range(a.shape[-1])]))


def _noisy(a: np.ndarray, amount: int) -> np.ndarray:
    return np.clip(a.astype(int) + RNG.integers(-amount, amount + 1, a.shape), 0, 255).astype(np.uint8)


def test_ssim_matches_independent_reference():
    pytest.importorskip("scipy")
    a = RNG.integers(0, 256, (40, 33), dtype=np.uint8)
    b = _noisy(a, 20)
    assert ssim(a, b) == pytest.approx(_ssim_reference(a, b), abs=1e-10)
    assert ssim(a, a) == pytest.approx(1.0)
    rgb_a = RNG.integers(0, 256, (30, 30, 3), dtype=np.uint8)
    rgb_b = np.clip(rgb_a.astype(int) + 5, 0, 255).astype(np.uint8)
    expected = np.mean([_ssim_reference(rgb_a[..., c], rgb_b[..., c]) for c in range(3)])
    assert ssim(rgb_a, rgb_b) == pytest.approx(expected, abs=1e-10)


# Heights around the 32-row strips the implementation works in (11 + 32 = 43 is exactly one strip, 44 one row
# more, 108 several with a short last one); widths odd, minimal and wider than tall.
@pytest.mark.parametrize("shape", [(11, 11), (11, 29), (29, 11), (13, 17), (43, 20), (44, 23), (108, 37),
                                   (31, 95), (45, 41, 3), (12, 11, 3), (77, 19, 3)])
def test_ssim_equals_dense_2d_reference_on_random_images(shape: tuple[int, ...]):
    pytest.importorskip("scipy")
    a = RNG.integers(0, 256, shape, dtype=np.uint8)
    for b in (_noisy(a, 3), _noisy(a, 40), RNG.integers(0, 256, shape, dtype=np.uint8)):
        assert abs(ssim(a, b) - _ssim_reference(a, b)) <= 1e-10


def _structured(h: int, w: int) -> dict[str, np.ndarray]:
    y, x = np.mgrid[0:h, 0:w]
    return {
        "ramp": (x * 255 // max(w - 1, 1)).astype(np.uint8),
        "checker": (((x // 3 + y // 3) % 2) * 255).astype(np.uint8),
        "stripes": (127.5 + 127.5 * np.sin(x / 2.0 + y / 5.0)).round().astype(np.uint8),
        "dark": np.full((h, w), 7, np.uint8),
        "bright": np.full((h, w), 250, np.uint8),
    }


@pytest.mark.parametrize("size", [(11, 11), (47, 33), (70, 91)])
def test_ssim_equals_dense_2d_reference_on_structured_and_constant_images(size: tuple[int, int]):
    pytest.importorskip("scipy")
    images = _structured(*size)
    for name_a, a in images.items():
        for name_b, b in images.items():
            assert abs(ssim(a, b) - _ssim_reference(a, b)) <= 1e-10, (name_a, name_b)
    rgb_a = np.stack([images["ramp"], images["checker"], images["stripes"]], axis=-1)
    rgb_b = np.stack([images["dark"], images["stripes"], images["ramp"]], axis=-1)
    assert abs(ssim(rgb_a, rgb_b) - _ssim_reference(rgb_a, rgb_b)) <= 1e-10


def test_ssim_of_constant_images():
    flat = np.full((20, 25), 100, np.uint8)
    assert ssim(flat, flat) == pytest.approx(1.0, abs=1e-12)
    # both windows flat: SSIM reduces to the luminance term (2 μa μb + C1) / (μa² + μb² + C1)
    other = np.full((20, 25), 50, np.uint8)
    c1 = (0.01 * 255) ** 2
    assert ssim(flat, other) == pytest.approx((2 * 100 * 50 + c1) / (100**2 + 50**2 + c1), abs=1e-12)


def test_ssim_on_float_luma_matches_reference():
    pytest.importorskip("scipy")
    rgb_a = RNG.integers(0, 256, (52, 38, 3), dtype=np.uint8)
    rgb_b = _noisy(rgb_a, 15)
    ya, yb = rgb_to_y(rgb_a), rgb_to_y(rgb_b)  # non-integer float64 planes, as calculate_metrics scores
    assert abs(ssim(ya, yb) - _ssim_reference(ya, yb)) <= 1e-10


def test_ssim_rejects_bad_shapes():
    with pytest.raises(InputError, match="equal shapes"):
        ssim(np.zeros((20, 20), np.uint8), np.zeros((20, 21), np.uint8))
    with pytest.raises(InputError, match="at least 11×11"):
        ssim(np.zeros((10, 40, 3), np.uint8), np.zeros((10, 40, 3), np.uint8))
    with pytest.raises(InputError, match="at least 11×11"):
        ssim(np.zeros((40, 10), np.uint8), np.zeros((40, 10), np.uint8))
    with pytest.raises(InputError, match="H×W"):
        ssim(np.zeros(40, np.uint8), np.zeros(40, np.uint8))


def test_psnr_takes_the_difference_without_uint8_wraparound():
    black, white = np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 255, np.uint8)
    assert psnr(black, white) == pytest.approx(0.0)  # MSE = 255²
    assert psnr(white, black) == pytest.approx(0.0)


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
