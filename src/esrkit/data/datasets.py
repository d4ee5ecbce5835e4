"""Benchmark datasets: HR folders, optional LR siblings, and cached MATLAB-bicubic LR.

A *benchmark* is a folder of HR images. Accepted layouts (``s`` is the scale):

* ``NAME/HR/*.png`` with an optional LR sibling ``NAME/LR_bicubic/X{s}/`` (also ``LR_bicubic/x{s}``,
  ``LR/X{s}``, ``LR/x{s}``, ``LR_x{s}``);
* DIV2K style ``…_HR/`` beside ``…_LR_bicubic/X{s}/``;
* a plain folder of HR images (no LR).

LR files are matched to HR files by stem, with or without an ``x{s}`` suffix (``0801x4.png``). When no LR folder
exists, LR images are made with :func:`esrkit.data.resize.imresize` (MATLAB bicubic, antialiased) from the
mod-cropped HR and cached under ``$ESRKIT_CACHE`` (default ``~/.cache/esrkit``), keyed by the HR file's absolute
path, size and modification time, so the reference data folder is never written to.

Standard names resolve under a data root (``--data-root`` or ``$ESRKIT_DATA``): ``Set5``, ``Set14``, ``B100``,
``Urban100``, ``Manga109``, ``DIV2K-valid`` and ``LSDIR-valid``; see :data:`STANDARD_BENCHMARKS` for the folder
names tried under the root for each.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .io import is_image_file, mod_crop, read_image, write_image

STANDARD_BENCHMARKS: dict[str, tuple[str, ...]] = {
    "Set5": ("Set5", "benchmarks/Set5"),
    "Set14": ("Set14", "benchmarks/Set14"),
    "B100": ("B100", "BSD100", "BSDS100", "benchmarks/B100"),
    "Urban100": ("Urban100", "benchmarks/Urban100"),
    "Manga109": ("Manga109", "benchmarks/Manga109"),
    "DIV2K-valid": ("DIV2K-valid", "DIV2K_valid_HR", "DIV2K/DIV2K_valid_HR", "DIV2K_valid"),
    "LSDIR-valid": ("LSDIR-valid", "LSDIR_valid", "LSDIR_valid_HR", "LSDIR/val", "LSDIR/valid"),
}

_LR_SUBDIRS = ("LR_bicubic/X{s}", "LR_bicubic/x{s}", "LR/X{s}", "LR/x{s}", "LR_x{s}", "LR_X{s}")


def data_root(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The data root: the explicit argument, else ``$ESRKIT_DATA``, else None."""
    value = explicit if explicit is not None else os.environ.get("ESRKIT_DATA")
    return Path(value) if value else None


def cache_root() -> Path:
    """Where generated LR images are cached (``$ESRKIT_CACHE`` or ``~/.cache/esrkit``)."""
    return Path(os.environ.get("ESRKIT_CACHE") or Path.home() / ".cache" / "esrkit")


@dataclass(frozen=True)
class Benchmark:
    """One benchmark at one scale: its HR files and, when present, the LR folder that pairs with them."""

    name: str
    hr_dir: Path
    scale: int
    lr_dir: Path | None = None
    # HR is cropped from the top-left to a multiple of lcm(scale, crop_multiple): how the AIS 2024 models were
    # scored (HR to multiples of 24 at ×4, because CASR needs LR sides divisible by 3 and ANUNet by 2); a crop,
    # unlike padding, puts no synthetic border into the score. None: the usual mod-crop to the scale.
    crop_multiple: int | None = None

    @property
    def modulus(self) -> int:
        return self.scale if self.crop_multiple is None else math.lcm(self.scale, self.crop_multiple)

    @property
    def hr_files(self) -> list[Path]:
        return sorted(p for p in self.hr_dir.iterdir() if p.is_file() and is_image_file(p))

    def __len__(self) -> int:
        return len(self.hr_files)

    def pairs(self) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """Yield ``(stem, lr, hr)`` uint8 RGB arrays; HR is mod-cropped to :attr:`modulus` (the scale by default)."""
        for hr_path in self.hr_files:
            hr = mod_crop(read_image(hr_path), self.modulus)
            if self.lr_dir:
                lr = self._read_lr(hr_path)
                if self.crop_multiple is not None:  # the same top-left crop of the given LR
                    lr = lr[: hr.shape[0] // self.scale, : hr.shape[1] // self.scale]
            else:
                lr = self._cached_lr(hr_path, hr)
            expected = (hr.shape[0] // self.scale, hr.shape[1] // self.scale)
            if lr.shape[:2] != expected:
                raise InputError(f"{self.lr_dir}: LR of {hr_path.name} is {lr.shape[1]}×{lr.shape[0]}, expected "
                                 f"{expected[1]}×{expected[0]} for ×{self.scale}")
            yield hr_path.stem, lr, hr

    def _read_lr(self, hr_path: Path) -> np.ndarray:
        assert self.lr_dir is not None
        stem = hr_path.stem
        for candidate in (stem, f"{stem}x{self.scale}", f"{stem}_x{self.scale}", f"{stem}_X{self.scale}"):
            for found in self.lr_dir.glob(f"{candidate}.*"):
                if is_image_file(found):
                    return read_image(found)
        raise InputError(f"{self.lr_dir}: no LR image for {hr_path.name}")

    def _cached_lr(self, hr_path: Path, hr: np.ndarray) -> np.ndarray:
        from .resize import imresize

        stat = hr_path.stat()
        ident = f"{hr_path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        if self.crop_multiple is not None:
            ident += f"|crop{self.modulus}"
        key = hashlib.sha1(ident.encode()).hexdigest()[:20]
        cached = cache_root() / "lr" / f"x{self.scale}" / f"{hr_path.stem}-{key}.png"
        if cached.is_file():
            return read_image(cached)
        lr = imresize(hr, 1.0 / self.scale)
        write_image(cached, lr)
        return lr


def find_hr_dir(folder: Path) -> Path:
    """The HR image folder of a benchmark folder (``folder/HR`` when present, else the folder itself)."""
    hr = folder / "HR"
    return hr if hr.is_dir() else folder


def find_lr_dir(hr_dir: Path, scale: int) -> Path | None:
    """The LR sibling for ``scale``, if any (see module docstring for the names tried)."""
    base = hr_dir.parent if hr_dir.name == "HR" else hr_dir
    candidates = [base / pattern.format(s=scale) for pattern in _LR_SUBDIRS]
    if hr_dir.name.endswith("_HR"):  # DIV2K_valid_HR → DIV2K_valid_LR_bicubic/X4
        stem = hr_dir.name[: -len("_HR")]
        candidates += [hr_dir.parent / f"{stem}_LR_bicubic" / f"X{scale}",
                       hr_dir.parent / f"{stem}_LR_bicubic_X{scale}"]
    return next((c for c in candidates if c.is_dir()), None)


def resolve_benchmark(spec: str | os.PathLike[str], scale: int, root: str | os.PathLike[str] | None = None,
                      use_lr_folder: bool = True, crop_multiple: int | None = None) -> Benchmark:
    """Turn a folder path or a standard benchmark name into a :class:`Benchmark`.

    Raises :class:`InputError` naming the spec when nothing is found or the folder has no images.
    """
    path = Path(spec)
    if path.is_dir():
        name = path.name if path.name != "HR" else path.parent.name
    else:
        name = _standard_name(str(spec))
        if name is None:
            raise InputError(f"dataset {str(spec)!r}: no such folder, and not a standard benchmark name "
                             f"({', '.join(STANDARD_BENCHMARKS)})")
        base = data_root(root)
        if base is None:
            raise InputError(f"dataset {name!r} is not a folder here, and no data root is given (nor ESRKIT_DATA)",
                             param="root")
        found = next((base / c for c in STANDARD_BENCHMARKS[name] if (base / c).is_dir()), None)
        if found is None:
            tried = ", ".join(str(base / c) for c in STANDARD_BENCHMARKS[name])
            raise InputError(f"dataset {name!r}: not found under data root {base} (tried {tried})")
        path = found
    hr_dir = find_hr_dir(path)
    if crop_multiple is not None and crop_multiple < 1:
        raise InputError(f"{crop_multiple}: must be a positive integer", param="crop_multiple")
    bench = Benchmark(name=name, hr_dir=hr_dir, scale=scale,
                      lr_dir=find_lr_dir(hr_dir, scale) if use_lr_folder else None, crop_multiple=crop_multiple)
    if len(bench) == 0:
        raise InputError(f"dataset {str(spec)!r}: no images in {hr_dir}")
    return bench


def _standard_name(spec: str) -> str | None:
    key = spec.lower().replace("_", "-")
    aliases = {"bsd100": "B100", "bsds100": "B100", "div2k": "DIV2K-valid", "lsdir": "LSDIR-valid"}
    if key in aliases:
        return aliases[key]
    return next((name for name in STANDARD_BENCHMARKS if name.lower() == key), None)
