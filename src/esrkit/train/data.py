"""Training data: random HR crops (or aligned LR/HR crops), dihedral augmentation, and batched degradation.

The split of work follows where each step is cheapest:

* **Workers** only read, crop and flip ``uint8`` pixels (:class:`HRCropDataset`, :class:`PairedDataset`). A uint8
  crop is a quarter of a float32 one, so the host-to-device copy is four times smaller too.
* **The training device** converts to float (:func:`to_float`) and degrades the whole batch at once
  (:class:`BicubicDegradation`), where a batched matmul costs next to nothing.

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
import math
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, TypeVar, runtime_checkable

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset

from ..data.io import check_pixels, is_image_file, read_image
from ..data.resize import _round_saturate, imresize
from ..errors import ImageReadError, InputError
from ..fileio import atomic_path

__all__ = [
    "DEGRADATIONS",
    "MEMORY_BUDGET_BYTES",
    "BicubicDegradation",
    "Degradation",
    "HRCropDataset",
    "PairedDataset",
    "augment",
    "build_degradation",
    "dihedral",
    "list_images",
    "to_float",
]

PathLike = str | os.PathLike[str]
T = TypeVar("T", Tensor, tuple[Tensor, ...])

#: Decoded images each process (main or worker) keeps in memory when no ``cache_dir`` is given.
MEMORY_BUDGET_BYTES = 2**30


# --------------------------------------------------------------------------------------------------- helpers


def _check_int(value: object, param: str, minimum: int) -> int:
    """``value`` as an int >= ``minimum`` (bools and floats refused: a recipe typo must not become a size)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise InputError(f"must be an integer >= {minimum}, got {value!r}", param=param)
    return int(value)


def _generator(*key: int) -> torch.Generator:
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


def _image_size(path: Path) -> tuple[int, int]:
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


class _ImageStore:
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


def _crop(image: np.ndarray, top: int, left: int, size: int, k: int = 0) -> Tensor:
    """``size × size`` window of an ``H×W×3`` array, under :func:`dihedral` transform ``k``, as a contiguous
    ``3×size×size`` uint8 tensor.

    The transform is applied to numpy views and paid for by the one copy the crop needs anyway. Doing it with
    torch ops on the copied crop costs a second copy and, in a process with several intra-op threads on a busy
    CPU, about 10 ms per sample instead of 0.1 ms (measured: thread wake-ups for a 100 kB copy).
    """
    window = image[top:top + size, left:left + size]
    transpose, flip_w, flip_h = _dihedral_ops(k)
    if transpose:
        window = window.swapaxes(0, 1)
    if flip_w:
        window = window[:, ::-1]
    if flip_h:
        window = window[::-1]
    return torch.from_numpy(np.ascontiguousarray(window.transpose(2, 0, 1)))


def _randint(high: int, generator: torch.Generator) -> int:
    """Uniform integer in ``[0, high)``."""
    return int(torch.randint(high, (1,), generator=generator))


# ------------------------------------------------------------------------------------------------ augmentation


def _dihedral_ops(k: int) -> tuple[bool, bool, bool]:
    """``(transpose, flip_w, flip_h)`` of transform ``k``, applied in that order (the one definition of ``k``)."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 0 <= k < 8:
        raise InputError(f"must be an integer in 0..7, got {k!r}", param="k")
    return bool(k & 4), bool(k & 1), bool(k & 2)


def _draw_transform(generator: torch.Generator) -> int:
    """One uniform draw from ``generator``: the index of a :func:`dihedral` transform."""
    return _randint(8, generator)


def dihedral(x: Tensor, k: int) -> Tensor:
    """Apply the ``k``-th of the 8 symmetries of the square (``k`` in 0..7) to the last two axes of ``x``.

    Bit 2 of ``k`` transposes H and W, then bit 0 flips horizontally and bit 1 vertically. The 2 × 2 × 2
    combinations are exactly the dihedral group D4: the 4 rotations by multiples of 90° and their mirror images
    (a transpose followed by one flip is a 90° rotation). ``k`` = 0 is the identity. Non-square inputs swap H
    and W for ``k`` >= 4. Returns a new contiguous tensor.
    """
    transpose, flip_w, flip_h = _dihedral_ops(k)
    if transpose:
        x = x.transpose(-2, -1)
    dims = [d for on, d in ((flip_w, -1), (flip_h, -2)) if on]
    return x.flip(dims).contiguous() if dims else x.contiguous()


def augment(images: T, generator: torch.Generator) -> T:
    """Random flip/rotation: one of the 8 :func:`dihedral` transforms, drawn uniformly from ``generator``.

    ``images`` is one tensor or a tuple of tensors (e.g. ``(lr, hr)``); a tuple gets the *same* transform on
    every member, which keeps paired crops aligned. Exactly one number is drawn from ``generator``. The
    datasets draw and apply the same transform while cropping (on numpy views, see ``_crop``), so
    ``augment(crop, g)`` of an un-augmented crop equals the augmented crop for the same generator state.
    """
    k = _draw_transform(generator)
    if isinstance(images, Tensor):
        return dihedral(images, k)
    return tuple(dihedral(t, k) for t in images)


# ---------------------------------------------------------------------------------------------------- datasets


class _EpochDataset(Dataset):
    """Per-epoch order, position-seeded generators and ``set_epoch`` shared by both datasets."""

    def __init__(self, n_images: int, seed: int, repeat: int) -> None:
        self.seed = _check_int(seed, "seed", 0)
        self.repeat = _check_int(repeat, "repeat", 1)
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
        epoch = _check_int(epoch, "epoch", 0)
        start = _check_int(start, "start", 0)
        if start >= self.samples_per_epoch:
            raise InputError(f"must be below the {self.samples_per_epoch} samples of an epoch, got {start}",
                             param="start")
        self._state[0] = epoch
        self._state[1] = start

    def __len__(self) -> int:
        return self.samples_per_epoch - int(self._state[1])

    def _locate(self, index: int) -> tuple[int, torch.Generator]:
        """The image index and the sample's own generator for item ``index`` of the current epoch."""
        epoch, start = (int(v) for v in self._state.tolist())
        position = start + int(index)
        if not start <= position < self.samples_per_epoch:
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        if self._order_epoch != epoch:  # one permutation per epoch and process
            self._order = torch.randperm(self.samples_per_epoch, generator=_generator(self.seed, epoch, 0))
            self._order_epoch = epoch
        image = int(self._order[position]) % self._n_images
        return image, _generator(self.seed, epoch, 1, position)


class HRCropDataset(_EpochDataset):
    """Random ``patch × patch`` HR crops from folders of images, as ``3×P×P`` uint8 tensors.

    Degradation to LR happens later, batched on the training device (:func:`build_degradation`), so any
    degradation can be applied to the same crops.

    Args:
        folders: one folder or several; images are found recursively (see :func:`list_images`).
        patch: HR crop size in pixels; a multiple of ``scale`` so that the LR crop is exactly ``patch / scale``.
        scale: the SR factor the crops are for (checked against ``patch`` only).
        augment: apply a random one of the 8 flips/rotations to each crop.
        cache_dir: optional folder for decoded ``.npy`` copies (see the module docstring).
        seed: base of every random choice (see the module docstring on reproducibility).
        repeat: crops per image per epoch. Small sets (BSDS500 has 200 training images) would otherwise make
            epochs of a few batches, and each epoch end costs a DataLoader restart.

    Images smaller than ``patch`` in either dimension are an error, not skipped: skipping would silently train
    on a subset of what the recipe names. All sizes are checked when the dataset is built, from file headers,
    so the error comes before training starts.

    Raises:
        InputError: missing or empty folder, ``patch`` not a positive multiple of ``scale``, or images smaller
            than ``patch`` (the message counts them and names the first).
        ImageReadError: a file's header cannot be read.
    """

    def __init__(self, folders: PathLike | Sequence[PathLike], patch: int, scale: int, augment: bool = True,
                 cache_dir: PathLike | None = None, *, seed: int = 0, repeat: int = 1) -> None:
        scale = _check_int(scale, "scale", 1)
        patch = _check_int(patch, "patch", 1)
        if patch % scale:
            raise InputError(f"must be a multiple of the scale {scale}, got {patch}", param="patch")
        self.files = list_images(folders)
        self.sizes = [_image_size(p) for p in self.files]
        small = [p for p, (h, w) in zip(self.files, self.sizes, strict=True) if h < patch or w < patch]
        if small:
            raise InputError(f"{small[0]}: image is smaller than the {patch}×{patch} patch "
                             f"({len(small)} of {len(self.files)} images are)", param="patch")
        super().__init__(len(self.files), seed, repeat)
        self.patch = patch
        self.scale = scale
        self.augment = augment
        self._store = _ImageStore(cache_dir)

    def __getitem__(self, index: int) -> Tensor:
        i, gen = self._locate(index)
        h, w = self.sizes[i]
        top = _randint(h - self.patch + 1, gen)
        left = _randint(w - self.patch + 1, gen)
        k = _draw_transform(gen) if self.augment else 0
        return _crop(self._store.get(self.files[i]), top, left, self.patch, k)


class PairedDataset(_EpochDataset):
    """Aligned random crops ``(lr, hr)`` from an HR folder and its LR folder (DIV2K / LSDIR layout).

    LR files are matched by relative folder and stem: ``hr_dir/a/0001.png`` pairs with ``lr_dir/a/0001x4.png``
    (also ``0001.png``, ``0001_x4.png``, ``0001_X4.png``; any image extension). The LR crop of ``patch_lr`` pixels
    at ``(y, x)`` pairs with the HR crop of ``patch_lr * scale`` pixels at ``(y * scale, x * scale)``, the
    pixel-centre alignment of MATLAB-style downscaling by an integer factor. Both get the same flip/rotation.

    Args:
        hr_dir, lr_dir: the two folders (searched recursively).
        scale: integer SR factor; each LR must be ``H/scale`` (rounded down or up) by ``W/scale``.
        patch_lr: LR crop size in pixels.
        augment: apply the same random flip/rotation to both crops.
        cache_dir, seed, repeat: as for :class:`HRCropDataset`.

    Raises:
        InputError: missing or empty folder, an HR image without LR partner or with an LR of the wrong size, or
            a pair smaller than the patch (the message names the file).
    """

    def __init__(self, hr_dir: PathLike, lr_dir: PathLike, scale: int, patch_lr: int, augment: bool = True,
                 cache_dir: PathLike | None = None, *, seed: int = 0, repeat: int = 1) -> None:
        self.scale = _check_int(scale, "scale", 1)
        self.patch_lr = _check_int(patch_lr, "patch_lr", 1)
        hr_root, lr_root = Path(hr_dir), Path(lr_dir)
        hr_files = list_images(hr_root, param="hr_dir")
        lr_index: dict[tuple[Path, str], Path] = {}
        for p in list_images(lr_root, param="lr_dir"):
            lr_index.setdefault((p.parent.relative_to(lr_root), p.stem), p)
        s = self.scale
        self.pairs: list[tuple[Path, Path]] = []
        self.lr_sizes: list[tuple[int, int]] = []  # the LR area that has full HR behind it
        for hr in hr_files:
            rel, stem = hr.parent.relative_to(hr_root), hr.stem
            lr = next((lr_index[(rel, c)] for c in (stem, f"{stem}x{s}", f"{stem}_x{s}", f"{stem}_X{s}")
                       if (rel, c) in lr_index), None)
            if lr is None:
                raise InputError(f"{hr}: no LR image for it in {lr_root}", param="lr_dir")
            (hh, hw), (lh, lw) = _image_size(hr), _image_size(lr)
            if lh not in (hh // s, math.ceil(hh / s)) or lw not in (hw // s, math.ceil(hw / s)):
                raise InputError(f"{lr}: LR is {lw}×{lh}, expected {hw // s}×{hh // s} for {hr.name} at ×{s}",
                                 param="lr_dir")
            usable = (min(lh, hh // s), min(lw, hw // s))
            if min(usable) < self.patch_lr:
                raise InputError(f"{lr}: LR image is smaller than the {self.patch_lr}×{self.patch_lr} patch",
                                 param="patch_lr")
            self.pairs.append((hr, lr))
            self.lr_sizes.append(usable)
        super().__init__(len(self.pairs), seed, repeat)
        self.augment = augment
        self._store = _ImageStore(cache_dir)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        i, gen = self._locate(index)
        h, w = self.lr_sizes[i]
        top = _randint(h - self.patch_lr + 1, gen)
        left = _randint(w - self.patch_lr + 1, gen)
        hr_path, lr_path = self.pairs[i]
        s = self.scale
        k = _draw_transform(gen) if self.augment else 0
        lr = _crop(self._store.get(lr_path), top, left, self.patch_lr, k)
        hr = _crop(self._store.get(hr_path), top * s, left * s, self.patch_lr * s, k)
        return lr, hr


# ------------------------------------------------------------------------------------------ device-side steps


def to_float(batch: Tensor, device: torch.device | str = "cpu", channels_last: bool = False) -> Tensor:
    """``N×C×H×W`` uint8 batch → float32 in [0, 1] on ``device`` (the copy travels as uint8, 4× smaller).

    ``channels_last`` returns NHWC memory layout, which convolution kernels on recent GPUs prefer.
    """
    if not isinstance(batch, Tensor) or batch.dtype != torch.uint8 or batch.ndim != 4:
        got = f"{batch.dtype} {tuple(batch.shape)}" if isinstance(batch, Tensor) else type(batch).__name__
        raise InputError(f"expected an N×C×H×W uint8 tensor, got {got}", param="batch")
    out = batch.to(device, non_blocking=True).float().div_(255.0)
    return out.contiguous(memory_format=torch.channels_last) if channels_last else out


@runtime_checkable
class Degradation(Protocol):
    """HR → LR on a float batch ``N×3×H×W`` in [0, 1], on whatever device the batch is on."""

    def __call__(self, hr: Tensor) -> Tensor: ...


class BicubicDegradation:
    """MATLAB ``imresize(hr, 1/scale, 'bicubic')`` of a batch, quantised to 8 bits like a saved LR PNG.

    Why quantise: every benchmark and challenge LR (Set5 … DIV2K ``LR_bicubic``) is a uint8 PNG made by that
    MATLAB call, so the model is tested on LR rounded to 256 levels. Training on the same rounded values
    removes a train/test mismatch; the result equals ``imresize`` of the uint8 HR image bit for bit.

    To make that hold exactly, the input is first snapped to the nearest of the 256 levels (a no-op for batches
    from :func:`to_float`; it only removes float32 noise) and the resize runs in float64, with MATLAB's final
    rounding (half away from zero, then clip to 0..255). ×2 and ×4 bicubic weights are short dyadic fractions,
    so integer inputs often land exactly on ``.5`` and float32 noise would flip those ties. float64 costs a few
    milliseconds per batch even on consumer GPUs; on Apple MPS, which has no float64, it runs in float32 and
    can differ by one level on such ties. The output keeps the input's dtype, device and (channels_last)
    memory format.
    """

    def __init__(self, scale: int) -> None:
        self.scale = _check_int(scale, "scale", 1)

    def __call__(self, hr: Tensor) -> Tensor:
        if not isinstance(hr, Tensor) or not hr.is_floating_point() or hr.ndim != 4:
            got = f"{hr.dtype} {tuple(hr.shape)}" if isinstance(hr, Tensor) else type(hr).__name__
            raise InputError(f"expected a float N×3×H×W tensor, got {got}", param="hr")
        work = torch.float32 if hr.device.type == "mps" else torch.float64
        levels = (hr.detach().to(work) * 255.0).round_()
        lr = imresize(levels, 1.0 / self.scale)
        assert isinstance(lr, Tensor)
        out = _round_saturate(lr, 0.0, 255.0).div_(255.0).to(hr.dtype)
        if hr.is_contiguous(memory_format=torch.channels_last) and not hr.is_contiguous():
            out = out.contiguous(memory_format=torch.channels_last)
        return out

    def __repr__(self) -> str:
        return f"BicubicDegradation(scale={self.scale})"


def _lanczos_avif(scale: int) -> Degradation:
    """The AIS 2024 FFmpeg Lanczos + AVIF degradation (:mod:`esrkit.train.avif`, imported only when named)."""
    from .avif import LanczosAvifDegradation

    return LanczosAvifDegradation(scale)


#: Degradation factories by name: ``factory(scale) -> Degradation``. Lanczos, JPEG or AVIF steps plug in here.
#: A degradation with a ``paired_dataset`` attribute makes its LR before training (the trainer then builds that
#: dataset, which yields ``(lr, hr)`` uint8 crops, instead of :class:`HRCropDataset`).
DEGRADATIONS: dict[str, Callable[[int], Degradation]] = {"bicubic": BicubicDegradation,
                                                         "lanczos+avif": _lanczos_avif}


def build_degradation(name: str, scale: int) -> Degradation:
    """The degradation registered as ``name`` in :data:`DEGRADATIONS`, for ``scale``.

    Raises:
        InputError: unknown name (the message lists the valid ones) or a bad scale.
    """
    factory = DEGRADATIONS.get(name) if isinstance(name, str) else None
    if factory is None:
        raise InputError(f"unknown degradation {name!r}; choose one of {', '.join(sorted(DEGRADATIONS))}",
                         param="name")
    return factory(scale)
