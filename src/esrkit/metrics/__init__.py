"""Fidelity metrics exactly as the efficient-SR papers compute them.

* Both images are uint8 (the SR output is rounded before scoring), HR is mod-cropped to the scale, and
  ``border`` pixels (default: the scale) are cut from every side.
* **PSNR** over all pixels (and channels) in float64 with peak 255.
* **SSIM** is Wang et al.'s MATLAB ``ssim_index``: 11×11 Gaussian window, σ = 1.5, valid filtering,
  K1 = 0.01, K2 = 0.03, L = 255; on RGB it is the mean of the three per-channel SSIMs. It is computed separably,
  strip by strip (:mod:`esrkit.metrics._ssim`), so it costs little time and memory even on large pages.
* **Y** is ITU-R BT.601 luma with MATLAB ``rgb2ycbcr``'s coefficients:
  ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` (R, G, B in 0..255), kept in float64 (BasicSR's
  convention). This reproduces the published bicubic ×4 figures, Set5 28.43 / Set14 26.09 (28.4314 / 26.0918);
  rounding Y to integers first, as MATLAB's uint8 ``rgb2ycbcr`` does, gives 28.42 / 26.09 (``round_y=True``).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from ._ssim import ssim

__all__ = ["calculate_metrics", "psnr", "rgb_to_y", "ssim"]

_Y_WEIGHTS = np.array([65.481, 128.553, 24.966], dtype=np.float64) / 255.0


def rgb_to_y(image: np.ndarray, round_y: bool = False) -> np.ndarray:
    """H×W×3 uint8 RGB → H×W float64 BT.601 luma in [16, 235]; ``round_y`` rounds it like MATLAB on uint8."""
    y = image.astype(np.float64) @ _Y_WEIGHTS + 16.0
    return np.round(y) if round_y else y


def _crop(image: np.ndarray, border: int) -> np.ndarray:
    return image[border:-border, border:-border] if border > 0 else image


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR (dB) of two same-shape arrays on the 0..255 scale; ``inf`` when identical.

    The difference is taken in float64 straight into one buffer (no float copies of the inputs) and squared in
    place: the same values and the same summation as squaring ``a - b`` in float64, with a third of the memory.
    """
    diff = np.subtract(a, b, dtype=np.float64)
    np.square(diff, out=diff)
    mse = float(diff.mean())
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def calculate_metrics(sr: np.ndarray, hr: np.ndarray, scale: int, border: int | None = None,
                      round_y: bool = False) -> dict[str, float]:
    """PSNR and SSIM on RGB and on Y of one SR/HR pair, the papers' way (see module docstring).

    ``sr`` and ``hr`` are H×W×3 uint8. ``hr`` is mod-cropped to ``scale``; ``sr`` must then have its size.
    ``border`` defaults to ``scale``. Returns ``{"psnr_rgb", "ssim_rgb", "psnr_y", "ssim_y"}``.
    """
    if sr.dtype != np.uint8 or hr.dtype != np.uint8:
        raise InputError(f"metrics are defined on uint8 images, got {sr.dtype} and {hr.dtype}")
    h, w = hr.shape[:2]
    hr = hr[: h - h % scale, : w - w % scale]
    if sr.shape != hr.shape:
        raise InputError(f"SR shape {sr.shape} does not match the mod-cropped HR shape {hr.shape}")
    border = scale if border is None else border
    sr_c, hr_c = _crop(sr, border), _crop(hr, border)
    y_sr, y_hr = rgb_to_y(sr_c, round_y), rgb_to_y(hr_c, round_y)
    return {
        "psnr_rgb": psnr(sr_c, hr_c),
        "ssim_rgb": ssim(sr_c, hr_c),
        "psnr_y": psnr(y_sr, y_hr),
        "ssim_y": ssim(y_sr, y_hr),
    }
