"""Sampling helpers of the training datasets: image listing, header sizes, the decoded-image store, crops, seeded
generators and :class:`EpochDataset`, the base that makes every draw a function of ``(seed, epoch, position)``.

Reproducibility and resuming
----------------------------
Every random choice of a sample (which image, where to crop, which of the 8 flips/rotations) comes from a
``torch.Generator`` seeded from ``(seed, epoch, position)`` only, where ``position`` is the sample's place in the
epoch. The visiting order is a permutation seeded from ``(seed, epoch)``. Nothing depends on the global RNG, the
number of workers, or which worker serves which sample, so:

* the same ``seed`` and epoch give the same batches, bit for bit, whatever the worker count (across machines
  too, as long as the image decoders agree: JPEG decoding may differ between libjpeg versions);
* a run stopped after ``k`` samples of epoch ``e`` resumes exactly with ``set_epoch(e, start=k)``;
* the order is the dataset's own: use ``DataLoader(dataset, shuffle=False)``. A DataLoader shuffle would draw
  from its own generator and break the two points above.

``set_epoch`` works like ``DistributedSampler.set_epoch``: call it before iterating the DataLoader each epoch.
The epoch lives in a small shared-memory tensor, so it also reaches ``persistent_workers=True`` workers that
were started in an earlier epoch (their per-worker image cache then survives across epochs).

Image access
------------
Without ``cache_dir`` each worker decodes an image the first time it needs it and keeps the decoded array in
a per-process LRU cache of :data:`MEMORY_BUDGET_BYTES` (BSDS500's 200 training images take about 90 MB, so
every image is decoded once per worker). Sets larger than the budget, such as DIV2K (about 7 GB decoded),
should use ``cache_dir``: each image is then decoded once, ever, into an uncompressed ``.npy`` file that the
workers memory-map. A crop reads only the rows it touches, the OS page cache is shared by all workers, and
nothing is held per worker.

BasicSR-style code bases pre-crop 480×480 sub-images instead. Whole images are cached here because tiles
change which crops are possible (a crop could never straddle a tile border), so enabling the cache would
change the training data. With whole images the cache changes speed only: the same seed gives the same crops
with and without it (tested). The price is disk space, 3 bytes per pixel (DIV2K train HR: about 7 GB, twice
its PNGs).
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset

from ..data.io import check_pixels, is_image_file, read_image
from ..errors import ImageReadError, InputError
from ..fileio import atomic_path
from .augment import dihedral_ops, draw_transform

__all__ = [
    "MEMORY_BUDGET_BYTES",
    "EpochDataset",
    "ImageStore",
    "PathLike",
    "check_int",
    "check_patch_fits",
    "crop",
    "draw_window",
    "image_size",
    "list_images",
    "randint",
    "seeded_generator",
]

PathLike = str | os.PathLike[str]

#: Decoded images each process (main or worker) keeps in memory when no ``cache_dir`` is given.
MEMORY_BUDGET_BYTES = 2**30


def check_int(value: object, param: str, minimum: int) -> int:
    """``value`` as an int >= ``minimum`` (bools and floats refused: a recipe typo must not become a size)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise InputError(f"must be an integer >= {minimum}, got {value!r}", param=param)
    return int(value)


def seeded_generator(*key: int) -> torch.Generator:
    """A CPU generator seeded from a tuple of non-negative ints.

    ``SeedSequence`` hashes the whole tuple, so neighbouring keys such as ``(0, 1, 5)`` and ``(0, 5, 1)`` give
    unrelated streams (a plain ``seed + epoch * n + i`` would make epochs overlap).
    """
    seed = int(np.random.SeedSequence(list(key)).generate_state(1, dtype=np.uint64)[0])
    return torch.Generator().manual_seed(seed)


def _as_folder_list(folders: PathLike | Sequence[PathLike]) -> list[Path]:
    if isinstance(folders, str | os.PathLike):
        return [Path(folders)]
    return [Path(f) for f in folders]


def list_images(folders: PathLike | Sequence[PathLike], *, param: str = "folders") -> list[Path]:
    """Image files under each folder, recursively, sorted by path within each folder, folders in the given order.

    Extensions are :data:`esrkit.data.io.IMAGE_EXTENSIONS` (PNG, JPEG, BMP, TIFF, WebP, AVIF), case-insensitive.
    Hidden files (``.name``) are skipped: they are editor/OS debris such as macOS ``._0001.png``, not images.

    Raises:
        InputError: a folder is missing, is not a folder, or holds no image (the message names it).
    """
    folder_list = _as_folder_list(folders)
    if not folder_list:
        raise InputError("no folder given", param=param)
    files: list[Path] = []
    for folder in folder_list:
        if not folder.is_dir():
            raise InputError(f"{folder}: no such folder", param=param)
        found = sorted(p for p in folder.rglob("*")
                       if p.is_file() and is_image_file(p) and not p.name.startswith("."))
        if not found:
            raise InputError(f"{folder}: no images in this folder", param=param)
        files.extend(found)
    return files


def image_size(path: Path) -> tuple[int, int]:
    """``(H, W)`` from the file header, without decoding the pixels."""
    try:
        with Image.open(path) as img:
            w, h = img.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"{path}: cannot read image header ({exc})") from None
    except Image.DecompressionBombError as exc:  # not an OSError: it was a traceback (issue 18)
        raise ImageReadError(f"{path}: image header: {str(exc).rstrip('.')}") from None
    check_pixels(path, w, h)  # esrkit's own limit, as read_image applies it later
    return h, w


class ImageStore:
    """Decoded ``H×W×3`` uint8 images for one process: a byte-bounded LRU, or memory-mapped ``.npy`` files.

    See the module docstring for why whole images (not tiles) are cached on disk.
    """

    def __init__(self, cache_dir: PathLike | None) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._lru: OrderedDict[Path, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._cache_names: dict[Path, Path] = {}  # source -> .npy, named once per process

    def get(self, path: Path) -> np.ndarray:
        if self.cache_dir is not None:
            return self._mapped(path)
        image = self._lru.get(path)
        if image is not None:
            self._lru.move_to_end(path)
            return image
        image = read_image(path)
        self._lru[path] = image
        self._bytes += image.nbytes
        while self._bytes > MEMORY_BUDGET_BYTES and len(self._lru) > 1:
            _, evicted = self._lru.popitem(last=False)
            self._bytes -= evicted.nbytes
        return image

    def _mapped(self, path: Path) -> np.ndarray:
        """The image memory-mapped from its ``.npy`` copy, written on first use.

        The file name hashes the source's absolute path, size and modification time, so an edited image gets a
        fresh entry. Writes are atomic, so two workers racing on the same image both produce a complete file.
        """
        assert self.cache_dir is not None
        cached = self._cache_names.get(path)
        if cached is None:
            stat = path.stat()
            key = hashlib.sha1(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:20]
            cached = self._cache_names[path] = self.cache_dir / f"{path.stem}-{key}.npy"
        if not cached.is_file():
            image = read_image(path)
            with atomic_path(cached) as tmp, open(tmp, "wb") as fh:
                np.save(fh, image)
        return np.load(cached, mmap_mode="r")


def crop(image: np.ndarray, top: int, left: int, size: int, k: int = 0) -> Tensor:
    """``size × size`` window of an ``H×W×3`` array, under :func:`~esrkit.train.augment.dihedral` transform
    ``k``, as a contiguous ``3×size×size`` uint8 tensor.

    The transform is applied to numpy views and paid for by the one copy the crop needs anyway. Doing it with
    torch ops on the copied crop costs a second copy and, in a process with several intra-op threads on a busy
    CPU, about 10 ms per sample instead of 0.1 ms (measured: thread wake-ups for a 100 kB copy).
    """
    window = image[top:top + size, left:left + size]
    transpose, flip_w, flip_h = dihedral_ops(k)
    if transpose:
        window = window.swapaxes(0, 1)
    if flip_w:
        window = window[:, ::-1]
    if flip_h:
        window = window[::-1]
    return torch.from_numpy(np.ascontiguousarray(window.transpose(2, 0, 1)))


def randint(high: int, generator: torch.Generator) -> int:
    """Uniform integer in ``[0, high)``."""
    return int(torch.randint(high, (1,), generator=generator))


def draw_window(generator: torch.Generator, size: tuple[int, int], patch: int, augment: bool) -> tuple[int, int, int]:
    """``(top, left, k)``: a uniform ``patch × patch`` window of an area of ``size`` = ``(H, W)`` and the
    :func:`~esrkit.train.augment.dihedral` transform (0 without ``augment``), drawn in that order."""
    h, w = size
    top = randint(h - patch + 1, generator)
    left = randint(w - patch + 1, generator)
    return top, left, (draw_transform(generator) if augment else 0)


def check_patch_fits(files: list[Path], sizes: list[tuple[int, int]], patch: int) -> None:
    """Refuse images smaller than the patch (counted, the first named) rather than skip them: skipping would
    silently train on a subset of what the recipe names."""
    small = [p for p, (h, w) in zip(files, sizes, strict=True) if min(h, w) < patch]
    if small:
        raise InputError(f"{small[0]}: image is smaller than the {patch}×{patch} patch "
                         f"({len(small)} of {len(files)} images are)", param="patch")



# ---------------------------------------------------------------------------------------- the epoch dataset


class EpochDataset(Dataset):
    """Per-epoch order, position-seeded generators and ``set_epoch``, shared by the datasets of
    :mod:`esrkit.train.datasets`: a subclass sets its images and serves item ``index`` from :meth:`locate`."""

    def __init__(self, n_images: int, seed: int, repeat: int) -> None:
        self.seed = check_int(seed, "seed", 0)
        self.repeat = check_int(repeat, "repeat", 1)
        self._n_images = n_images
        # (epoch, start) in shared memory: persistent DataLoader workers see set_epoch calls made after they
        # were started (with fork the page is shared; with spawn torch passes the tensor by shared handle)
        self._state = torch.zeros(2, dtype=torch.int64).share_memory_()
        self._order_epoch = -1
        self._order = torch.empty(0, dtype=torch.int64)

    @property
    def epoch(self) -> int:
        return int(self._state[0])

    @property
    def samples_per_epoch(self) -> int:
        """Samples in a whole epoch (``repeat`` per image), whatever ``start`` says."""
        return self._n_images * self.repeat

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Select the epoch whose order and crops the dataset serves, and skip its first ``start`` samples.

        Call before iterating the DataLoader each epoch, like ``DistributedSampler.set_epoch``. ``start`` is for
        resuming in the middle of an epoch: after ``set_epoch(e, start=k)`` item 0 is the ``k``-th sample of
        epoch ``e`` and ``len(dataset)`` is ``samples_per_epoch - k``.
        """
        epoch = check_int(epoch, "epoch", 0)
        start = check_int(start, "start", 0)
        if start >= self.samples_per_epoch:
            raise InputError(f"must be below the {self.samples_per_epoch} samples of an epoch, got {start}",
                             param="start")
        self._state[0] = epoch
        self._state[1] = start

    def __len__(self) -> int:
        return self.samples_per_epoch - int(self._state[1])

    def locate(self, index: int) -> tuple[int, torch.Generator]:
        """The image index and the sample's own generator for item ``index`` of the current epoch."""
        epoch, start = (int(v) for v in self._state.tolist())
        position = start + int(index)
        if not start <= position < self.samples_per_epoch:
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        if self._order_epoch != epoch:  # one permutation per epoch and process
            self._order = torch.randperm(self.samples_per_epoch, generator=seeded_generator(self.seed, epoch, 0))
            self._order_epoch = epoch
        image = int(self._order[position]) % self._n_images
        return image, seeded_generator(self.seed, epoch, 1, position)


