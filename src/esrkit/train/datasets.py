"""Training datasets: random HR crops, aligned LR/HR crops from two folders, and aligned crops of the AIS 2024
degradation's pre-encoded LR; and :func:`to_float`, the device-side step that turns their uint8 batches into floats.

The split of work follows where each step is cheapest:

* **Workers** only read, crop and flip ``uint8`` pixels. A uint8 crop is a quarter of a float32 one, so the
  host-to-device copy is four times smaller too.
* **The training device** converts to float (:func:`to_float`) and degrades the whole batch at once
  (:mod:`esrkit.train.degradations`), where a batched matmul costs next to nothing.

Every random choice comes from the sample's own ``(seed, epoch, position)`` generator (:mod:`.sampling`), so
runs reproduce and resume exactly.

The AIS 2024 degradation (Lanczos ÷4, then SVT-AV1 AVIF at a QP drawn uniformly from 31, 39, 47, 55, 63 for every
sample) cannot be computed from an HR crop on the training device: an encode is a subprocess taking 0.1-1 s, and
the teams made their LR from whole images (Lanczos++ encoded 4450 images at the 5 QPs; MegastudyEdu 3450 images
at 32 QPs). So :class:`AvifPairedDataset` **pre-encodes**: each training image once per QP, whole (cropped
top-left to a multiple of 4 so the LR is exactly a quarter), into the content-keyed cache of
:func:`esrkit.data.ais2024.degrade`, lazily (the first sample that needs an image at a QP makes it; the cache's
atomic writes let DataLoader workers share it) or eagerly with :meth:`AvifPairedDataset.prepare`. Encoding a crop
is not the same as cropping an encoded image (AV1's block grid and in-loop filters see other neighbours); the
dataset follows the challenge, which encoded whole images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..data.ais2024 import QPS, SCALE, check_qps, degrade
from ..data.io import mod_crop
from ..errors import InputError
from .sampling import (
    EpochDataset,
    ImageStore,
    PathLike,
    check_int,
    check_patch_fits,
    crop,
    draw_window,
    image_size,
    list_images,
    randint,
)

__all__ = ["AvifPairedDataset", "HRCropDataset", "PairedDataset", "aligned_crops", "check_ais_scale", "to_float"]


def check_ais_scale(scale: int) -> int:
    """``scale`` if it is the AIS 2024 degradation's: the command divides by 4."""
    scale = check_int(scale, "scale", 1)
    if scale != SCALE:
        raise InputError(f"the AIS 2024 degradation is ×{SCALE} (its command divides by 4), not ×{scale}",
                         param="scale")
    return scale


def aligned_crops(lr: np.ndarray, hr: np.ndarray, window: tuple[int, int, int], patch_lr: int,
                  scale: int) -> tuple[Tensor, Tensor]:
    """The LR crop of ``patch_lr`` pixels at ``window``'s ``(top, left)`` and the HR crop of ``patch_lr * scale``
    pixels at ``(top * scale, left * scale)`` (the pixel-centre alignment of downscaling by an integer factor),
    both under the window's one flip/rotation ``k``."""
    top, left, k = window
    return crop(lr, top, left, patch_lr, k), crop(hr, top * scale, left * scale, patch_lr * scale, k)


class HRCropDataset(EpochDataset):
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
        scale = check_int(scale, "scale", 1)
        patch = check_int(patch, "patch", 1)
        if patch % scale:
            raise InputError(f"must be a multiple of the scale {scale}, got {patch}", param="patch")
        self.files = list_images(folders)
        self.sizes = [image_size(p) for p in self.files]
        check_patch_fits(self.files, self.sizes, patch)
        super().__init__(len(self.files), seed, repeat)
        self.patch = patch
        self.scale = scale
        self.augment = augment
        self._store = ImageStore(cache_dir)

    def __getitem__(self, index: int) -> Tensor:
        i, gen = self.locate(index)
        top, left, k = draw_window(gen, self.sizes[i], self.patch, self.augment)
        return crop(self._store.get(self.files[i]), top, left, self.patch, k)


class PairedDataset(EpochDataset):
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
        self.scale = check_int(scale, "scale", 1)
        self.patch_lr = check_int(patch_lr, "patch_lr", 1)
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
            (hh, hw), (lh, lw) = image_size(hr), image_size(lr)
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
        self._store = ImageStore(cache_dir)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        i, gen = self.locate(index)
        window = draw_window(gen, self.lr_sizes[i], self.patch_lr, self.augment)
        hr_path, lr_path = self.pairs[i]
        return aligned_crops(self._store.get(lr_path), self._store.get(hr_path), window, self.patch_lr, self.scale)


class AvifPairedDataset(EpochDataset):
    """Random aligned ``(lr, hr)`` crops, LR from the pre-encoded AIS 2024 degradation at a random QP per sample.

    Args:
        folders: HR image folders (searched recursively, see :func:`~esrkit.train.sampling.list_images`).
        patch: HR crop side, a multiple of 4 (the LR crop is ``patch / 4``).
        scale: must be 4.
        augment: the same random flip/rotation on both crops.
        cache_dir: optional folder for memory-mapped ``.npy`` copies of the decoded HR and LR (as for
            :class:`HRCropDataset`).
        seed, repeat: as for :class:`HRCropDataset`.
        qps: the QPs to draw from, uniformly (default: the challenge's five).
        avif_cache: where encodes are kept (``True``: ``$ESRKIT_CACHE/ais2024``; a path: that folder).

    Raises:
        InputError: missing or empty folder, bad patch/scale/QP, or an image smaller than the patch once cropped
            to a multiple of 4.
        FFmpegError: FFmpeg (with libsvtav1) is not available; checked here, before training starts.
    """

    def __init__(self, folders: PathLike | Sequence[PathLike], patch: int, scale: int = SCALE, augment: bool = True,
                 cache_dir: PathLike | None = None, *, seed: int = 0, repeat: int = 1,
                 qps: Sequence[int] = QPS, avif_cache: bool | PathLike = True) -> None:
        from ..data.ais2024 import ffmpeg_version

        self.scale = check_ais_scale(scale)
        self.patch = check_int(patch, "patch", 1)
        if self.patch % self.scale:
            raise InputError(f"must be a multiple of the scale {self.scale}, got {patch}", param="patch")
        self.qps = check_qps(qps)
        ffmpeg_version()  # fails now, with one line, rather than in a DataLoader worker
        self.files = list_images(folders)
        # the usable HR area: cropped top-left to a multiple of 4, as the LR is made from
        self.sizes = [(h - h % self.scale, w - w % self.scale) for h, w in map(image_size, self.files)]
        check_patch_fits(self.files, self.sizes, self.patch)
        super().__init__(len(self.files), seed, repeat)
        self.augment = augment
        self.avif_cache = avif_cache
        self._store = ImageStore(cache_dir)
        self._lr_paths: dict[tuple[int, int], Path] = {}  # (image, qp) -> decoded LR in the AVIF cache

    def _lr(self, index: int, hr: np.ndarray, qp: int) -> np.ndarray:
        """The decoded LR of image ``index`` at ``qp``: encoded on first use, then read through the image store."""
        path = self._lr_paths.get((index, qp))
        if path is None or not path.is_file():
            result = degrade(np.ascontiguousarray(hr), qp, cache=self.avif_cache)
            if result.lr_path is None:  # no cache: keep the array in the store's memory instead
                return result.lr
            path = self._lr_paths[(index, qp)] = result.lr_path
        return self._store.get(path)

    def prepare(self, workers: int = 2) -> int:
        """Encode every image at every QP now (``workers`` FFmpeg processes at a time); returns the encode count.

        Optional: samples encode what they need on first use. Call it before training to take the encoding cost
        (about 1 s per 4K image and QP) out of the first epoch.
        """
        workers = check_int(workers, "workers", 1)

        def one(job: tuple[int, int]) -> bool:
            index, qp = job
            hr = mod_crop(self._store.get(self.files[index]), self.scale)
            return not degrade(np.ascontiguousarray(hr), qp, cache=self.avif_cache).cached

        jobs = [(i, qp) for i in range(len(self.files)) for qp in self.qps]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return sum(pool.map(one, jobs))

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        i, gen = self.locate(index)
        h, w = self.sizes[i]
        s, p = self.scale, self.patch // self.scale
        window = draw_window(gen, (h // s, w // s), p, self.augment)
        qp = self.qps[randint(len(self.qps), gen)]  # after the window: the order of draws fixes a seed's crops
        hr = self._store.get(self.files[i])[:h, :w]
        return aligned_crops(self._lr(i, hr, qp), hr, window, p, s)



def to_float(batch: Tensor, device: torch.device | str = "cpu", channels_last: bool = False) -> Tensor:
    """``N×C×H×W`` uint8 batch → float32 in [0, 1] on ``device`` (the copy travels as uint8, 4× smaller).

    ``channels_last`` returns NHWC memory layout, which convolution kernels on recent GPUs prefer.
    """
    if not isinstance(batch, Tensor) or batch.dtype != torch.uint8 or batch.ndim != 4:
        got = f"{batch.dtype} {tuple(batch.shape)}" if isinstance(batch, Tensor) else type(batch).__name__
        raise InputError(f"expected an N×C×H×W uint8 tensor, got {got}", param="batch")
    out = batch.to(device, non_blocking=True).float().div_(255.0)
    return out.contiguous(memory_format=torch.channels_last) if channels_last else out
