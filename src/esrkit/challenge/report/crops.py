"""The report's visual comparison: the images folder read into crop sets (HR, bicubic, one SR per model), and the
crop each shows, the highest-variance square of the HR (textured regions are where SR models differ)."""

from __future__ import annotations

import base64
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import InputError

__all__ = ["CropSet", "crop_psnr", "find_crop_sets", "pick_crop", "png_base64"]

_IMAGE_SUFFIXES = {".png", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg", ".webp"}
_SPECIAL = {"hr", "lr", "bicubic"}


@dataclass
class CropSet:
    """One HR image and the matching images of every column (label -> path or array), plus the crop box."""

    name: str
    hr: np.ndarray
    columns: list[tuple[str, np.ndarray]]
    box: tuple[int, int, int]  # top, left, size
    note: str = ""


def pick_crop(hr: np.ndarray, size: int, limit: tuple[int, int] | None = None) -> tuple[int, int, int]:
    """Top-left corner and side of the highest-variance ``size``×``size`` square of ``hr`` (luma).

    Searched on a half-patch grid within ``limit`` (height, width); variance comes from integral images, so a
    2K image costs a few milliseconds."""
    h, w = hr.shape[:2] if limit is None else limit
    size = max(1, min(size, h, w))
    img = hr[:h, :w].astype(np.float64)
    luma = img if img.ndim == 2 else img[..., :3] @ np.array([0.299, 0.587, 0.114])
    s1 = np.pad(luma, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    s2 = np.pad(luma * luma, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    step = max(1, size // 2)
    ys = np.arange(0, h - size + 1, step)
    xs = np.arange(0, w - size + 1, step)
    y0, x0 = np.meshgrid(ys, xs, indexing="ij")
    y1, x1 = y0 + size, x0 + size

    def box_sum(s: np.ndarray) -> np.ndarray:
        return s[y1, x1] - s[y0, x1] - s[y1, x0] + s[y0, x0]

    n = float(size * size)
    var = box_sum(s2) / n - (box_sum(s1) / n) ** 2
    iy, ix = np.unravel_index(int(np.argmax(var)), var.shape)
    return int(ys[iy]), int(xs[ix]), size


def _list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES)


def _match(stem: str, files: Sequence[Path]) -> Path | None:
    exact = [p for p in files if p.stem == stem]
    if exact:
        return exact[0]
    pattern = re.compile(re.escape(stem) + r"(?:[_\-.x].*)?$", re.IGNORECASE)
    loose = [p for p in files if pattern.match(p.stem)]
    return loose[0] if len(loose) == 1 else None


def _bicubic(hr: np.ndarray, lr_path: Path | None, scale: int, shape: tuple[int, int]) -> tuple[np.ndarray, str]:
    from ...data.io import read_image
    from ...data.resize import imresize

    if lr_path is not None:
        lr = read_image(lr_path)
        up = np.asarray(imresize(lr, float(scale)))
        return up, f"bicubic ×{scale} of LR/{lr_path.name}"
    lr = np.asarray(imresize(hr, 1.0 / scale))
    up = np.asarray(imresize(lr, float(scale)))
    return up[: shape[0], : shape[1]], "bicubic round trip of the HR (no LR/ folder)"


def find_crop_sets(
    images_dir: str | Path, scale: int, *, max_images: int = 2, crop_size: int = 96, order: Sequence[str] = ()
) -> list[CropSet]:
    """Read the images folder (layout in the module docstring) into crop sets for the report.

    ``order`` lists model names in table order so the crops follow the ranking; other folders follow
    alphabetically. Raises :class:`InputError` when the folder or its ``HR/`` subfolder is missing, or when no
    HR image has an SR result in every model folder.
    """
    from ...data.io import read_image

    root = Path(images_dir)
    if not root.is_dir():
        raise InputError(f"{root}: images folder not found")
    subdirs = {p.name: p for p in root.iterdir() if p.is_dir()}
    lower = {name.lower(): path for name, path in subdirs.items()}
    if "hr" not in lower:
        raise InputError(f"{root}: no HR/ folder (expected HR/, optional LR/ or bicubic/, one folder per model)")
    models = [name for name in subdirs if name.lower() not in _SPECIAL and not name.startswith(".")]
    if not models:
        raise InputError(f"{root}: no model folders next to HR/")
    rank = {name.casefold(): i for i, name in enumerate(order)}
    models.sort(key=lambda m: (rank.get(m.casefold(), len(rank)), m.casefold()))
    listing = {m: _list_images(subdirs[m]) for m in models}
    bicubic_files = _list_images(lower["bicubic"]) if "bicubic" in lower else []
    lr_files = _list_images(lower["lr"]) if "lr" in lower else []
    sets: list[CropSet] = []
    for hr_path in _list_images(lower["hr"]):
        matches = {m: _match(hr_path.stem, listing[m]) for m in models}
        if any(p is None for p in matches.values()):
            continue
        hr = read_image(hr_path)
        srs = [(m, read_image(p)) for m, p in matches.items() if p is not None]
        h = min([hr.shape[0], *(a.shape[0] for _, a in srs)])
        w = min([hr.shape[1], *(a.shape[1] for _, a in srs)])
        bic_path = _match(hr_path.stem, bicubic_files) if bicubic_files else None
        if bic_path is not None:
            bic, note = read_image(bic_path), f"bicubic from bicubic/{bic_path.name}"
        else:
            lr_path = _match(hr_path.stem, lr_files) if lr_files else None
            bic, note = _bicubic(hr, lr_path, scale, (hr.shape[0], hr.shape[1]))
        h, w = min(h, bic.shape[0]), min(w, bic.shape[1])
        box = pick_crop(hr, crop_size, (h, w))
        sets.append(CropSet(hr_path.stem, hr, [("bicubic", bic), *srs], box, note))
        if len(sets) >= max_images:
            break
    if not sets:
        raise InputError(f"{root}: no HR image has an SR result in every model folder ({', '.join(models)})")
    return sets


def crop_psnr(a: np.ndarray, b: np.ndarray) -> float:
    """RGB PSNR of two crops of 8-bit images (inf when equal)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def png_base64(array: np.ndarray) -> str:
    """An image array as a base64 PNG, for an inline ``data:`` URL."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")
