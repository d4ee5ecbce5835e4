"""Calibration data for post-training quantization: LR patches made the way the model's training LR was made.

The folders given to ``esrkit quantize --calib`` hold ordinary photographs (BSDS500, DIV2K, the user's own). Each
is taken as a high-resolution image and shrunk by the model's scale with MATLAB's bicubic (the ×4 bicubic
degradation every model here was trained on), so the activations the quantizer calibrates on are those of real LR
input, not of a photo the network would never see at that scale. From each image ``per_image`` patches of
``size``×``size`` LR pixels are cut at seeded random positions.

Why patches of 64 LR pixels and 60 of them by default: measured on RLFN-NTIRE with the recipe of
:mod:`esrkit.quantize.recipe` (see its table), 64-pixel patches and 60 of them already give the figures that 128-pixel
patches or 200 patches give (within ±0.01 dB) while calibrating in a few seconds on two cores. A few whole images are
held out of calibration (:func:`split_holdout`) so the PSNR change written into the quantized model's metadata is
measured on images it was not calibrated on.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.io import is_image_file, mod_crop, read_image
from ..data.resize import imresize
from ..errors import ImageReadError, InputError

DEFAULT_PATCH = 64
DEFAULT_COUNT = 60


@dataclass
class CalibrationSet:
    """Calibration patches (each 1×3×size×size float32 in [0, 1]) and the held-out (LR, HR) uint8 pairs."""

    patches: list[np.ndarray]
    holdout: list[tuple[str, np.ndarray, np.ndarray]]
    files: list[Path]
    size: int
    scale: int
    check_size: int
    used: int  # photos the patches were cut from

    def describe(self) -> dict[str, object]:
        """What the quantized model's metadata records about its calibration."""
        folders = sorted({str(f.parent) for f in self.files})
        return {"folders": folders, "images": self.used, "patches": len(self.patches),
                "patch_size": self.size, "holdout_images": [name for name, _, _ in self.holdout]}


def find_images(dirs: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Every image file (by extension) directly inside the given folders, sorted; a missing folder or no image in
    any of them is an :class:`InputError`."""
    if not dirs:
        raise InputError("give at least one calibration folder", param="calib")
    files: list[Path] = []
    for d in dirs:
        folder = Path(d)
        if not folder.is_dir():
            raise InputError(f"{folder}: no such folder", param="calib")
        files += sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p))
    if not files:
        raise InputError(f"no images in {', '.join(str(d) for d in dirs)}", param="calib")
    return files


def split_holdout(files: Sequence[Path], holdout: int) -> tuple[list[Path], list[Path]]:
    """(calibration files, held-out files): every fifth file is held out (spread over the set when there are many),
    at most ``holdout`` of them; none when fewer than five images are given (then the check runs on the
    calibration images themselves)."""
    if holdout <= 0 or len(files) < 5:
        return list(files), []
    step = max(len(files) // holdout, 5)
    held = list(files[step - 1::step])[:holdout]
    return [f for f in files if f not in held], held


def load_calibration(dirs: Sequence[str | os.PathLike[str]], scale: int, *, count: int = DEFAULT_COUNT,
                     size: int = DEFAULT_PATCH, holdout: int = 4, check_size: int = 128,
                     seed: int = 0) -> CalibrationSet:
    """Read the folders' images and build ``count`` LR patches (see the module docstring) plus held-out pairs.

    With more photos than ``count``, a seeded sample of ``count`` photos gives one patch each (the others are not
    read). Every photo read must decode: a corrupt one is an :class:`InputError` naming it (a calibration set
    silently missing images would calibrate on something else than the user asked for). An image whose LR is
    smaller than ``size`` gives one patch of its whole LR instead. Held-out pairs are centre crops of at most
    ``check_size`` LR pixels (the check stays fast on large photos).
    """
    if count < 1:
        raise InputError(f"must be >= 1, got {count}", param="calib_count")
    if size < 16:
        raise InputError(f"must be >= 16 LR pixels, got {size}", param="calib_size")
    files = find_images(dirs)
    calib_files, held_files = split_holdout(files, holdout)
    rng = random.Random(seed)
    if len(calib_files) > count:  # one patch per photo then: read only the photos that give one
        calib_files = sorted(rng.sample(calib_files, count))
    lrs = [_lr_of(f, scale)[0] for f in calib_files]
    per_image = max(1, -(-count // len(lrs)))
    patches: list[np.ndarray] = []
    for lr in lrs:
        h, w = lr.shape[:2]
        for _ in range(per_image):
            ph, pw = min(size, h), min(size, w)
            y, x = rng.randrange(h - ph + 1), rng.randrange(w - pw + 1)
            patch = lr[y:y + ph, x:x + pw].astype(np.float32).transpose(2, 0, 1)[None] / 255.0
            patches.append(np.ascontiguousarray(patch))
    rng.shuffle(patches)
    held = [(f.name, *lr_hr_pair(f, scale, check_size)) for f in held_files]
    return CalibrationSet(patches[:count], held, files, size, scale, check_size, len(calib_files))


def lr_hr_pair(path: Path, scale: int, check_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(LR, HR) uint8 centre crops of one photo, the LR at most ``check_size`` pixels a side: a PSNR check pair."""
    lr, hr = _lr_of(path, scale)
    h, w = lr.shape[:2]
    ch, cw = min(check_size, h), min(check_size, w)
    y, x = (h - ch) // 2, (w - cw) // 2
    return lr[y:y + ch, x:x + cw].copy(), hr[y * scale:(y + ch) * scale, x * scale:(x + cw) * scale].copy()


def _lr_of(path: Path, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """(LR, HR) uint8 of one calibration photo: HR mod-cropped to the scale, LR its MATLAB-bicubic reduction."""
    try:
        hr = mod_crop(read_image(path), scale)
    except ImageReadError as exc:
        raise InputError(f"calibration image {exc}", param="calib") from None
    if min(hr.shape[:2]) < scale * 16:
        raise InputError(f"{path}: too small for calibration ({hr.shape[1]}×{hr.shape[0]}; at least {16 * scale} "
                         f"pixels a side at ×{scale})", param="calib")
    lr = np.asarray(imresize(hr, 1.0 / scale))
    return lr, hr
