"""Training on the AIS 2024 degradation (``degradation: lanczos+avif`` in a recipe): exact LR, random QP per sample.

The LR is the survey's FFmpeg command (:mod:`esrkit.data.ais2024`): Lanczos ÷4, then SVT-AV1 AVIF at a QP drawn
uniformly from 31, 39, 47, 55, 63 for every sample. Unlike bicubic, this LR cannot be computed from an HR crop on
the training device: an encode is a subprocess taking 0.1-1 s, and the teams made their LR from whole images
(Lanczos++ encoded 4450 images at the 5 QPs; MegastudyEdu 3450 images at 32 QPs). So the LR is **pre-encoded**:

* :class:`AvifPairedDataset` encodes each training image once per QP, whole (cropped top-left to a multiple of 4
  so the LR is exactly a quarter), into the content-keyed cache of :func:`esrkit.data.ais2024.degrade`, and serves
  aligned ``(lr, hr)`` uint8 crops: LR ``patch/4`` at ``(y, x)``, HR ``patch`` at ``(4y, 4x)``, one flip/rotation
  for both. Encoding is lazy (the first sample that needs an image at a QP makes it; the cache's atomic writes let
  DataLoader workers share it) or eager with :meth:`AvifPairedDataset.prepare`. Every choice (image, crop,
  transform, QP) comes from the sample's own ``(seed, epoch, position)`` generator, so runs reproduce and resume
  exactly, as with :class:`~esrkit.train.data.HRCropDataset`.
* :class:`LanczosAvifDegradation` is the same degradation as a batch step, HR crops in, LR out, for code that
  holds only crops (it encodes each crop: exact, but slow; the trainer uses the paired dataset instead). Its QP
  is drawn from a generator seeded by the crop's content, so it too is reproducible without state.

Encoding a crop is not the same as cropping an encoded image (AV1's block grid and in-loop filters see other
neighbours); the paired dataset follows the challenge, which encoded whole images.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..data.ais2024 import QPS, SCALE, degrade
from ..data.io import mod_crop
from ..errors import InputError
from .data import (
    PathLike,
    _check_int,
    _crop,
    _draw_transform,
    _EpochDataset,
    _image_size,
    _ImageStore,
    _randint,
    list_images,
)

__all__ = ["AvifPairedDataset", "LanczosAvifDegradation"]


def _check_scale(scale: int) -> int:
    scale = _check_int(scale, "scale", 1)
    if scale != SCALE:
        raise InputError(f"the AIS 2024 degradation is ×{SCALE} (its command divides by 4), not ×{scale}",
                         param="scale")
    return scale


def _check_qps(qps: Sequence[int]) -> tuple[int, ...]:
    from ..data.ais2024 import check_qp

    out = tuple(check_qp(q) for q in qps)
    if not out:
        raise InputError("give at least one QP", param="qps")
    return out


class AvifPairedDataset(_EpochDataset):
    """Random aligned ``(lr, hr)`` crops, LR from the pre-encoded AIS 2024 degradation at a random QP per sample.

    Args:
        folders: HR image folders (searched recursively, see :func:`~esrkit.train.data.list_images`).
        patch: HR crop side, a multiple of 4 (the LR crop is ``patch / 4``).
        scale: must be 4.
        augment: the same random flip/rotation on both crops.
        cache_dir: optional folder for memory-mapped ``.npy`` copies of the decoded HR and LR (as for
            :class:`~esrkit.train.data.HRCropDataset`).
        seed, repeat: as for :class:`~esrkit.train.data.HRCropDataset`.
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

        self.scale = _check_scale(scale)
        self.patch = _check_int(patch, "patch", 1)
        if self.patch % self.scale:
            raise InputError(f"must be a multiple of the scale {self.scale}, got {patch}", param="patch")
        self.qps = _check_qps(qps)
        ffmpeg_version()  # fails now, with one line, rather than in a DataLoader worker
        self.files = list_images(folders)
        # the usable HR area: cropped top-left to a multiple of 4, as the LR is made from
        self.sizes = [(h - h % self.scale, w - w % self.scale) for h, w in map(_image_size, self.files)]
        small = [p for p, (h, w) in zip(self.files, self.sizes, strict=True) if min(h, w) < self.patch]
        if small:
            raise InputError(f"{small[0]}: image is smaller than the {self.patch}×{self.patch} patch "
                             f"({len(small)} of {len(self.files)} images are)", param="patch")
        super().__init__(len(self.files), seed, repeat)
        self.augment = augment
        self.avif_cache = avif_cache
        self._store = _ImageStore(cache_dir)
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
        workers = _check_int(workers, "workers", 1)

        def one(job: tuple[int, int]) -> bool:
            index, qp = job
            hr = mod_crop(self._store.get(self.files[index]), self.scale)
            return not degrade(np.ascontiguousarray(hr), qp, cache=self.avif_cache).cached

        jobs = [(i, qp) for i in range(len(self.files)) for qp in self.qps]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return sum(pool.map(one, jobs))

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        i, gen = self._locate(index)
        h, w = self.sizes[i]
        s, p = self.scale, self.patch // self.scale
        top = _randint(h // s - p + 1, gen)
        left = _randint(w // s - p + 1, gen)
        k = _draw_transform(gen) if self.augment else 0
        qp = self.qps[_randint(len(self.qps), gen)]
        hr = self._store.get(self.files[i])[:h, :w]
        lr = self._lr(i, hr, qp)
        return _crop(lr, top, left, p, k), _crop(hr, top * s, left * s, self.patch, k)


class LanczosAvifDegradation:
    """The AIS 2024 degradation as a batch step (``N×3×H×W`` float in [0, 1] → ``N×3×H/4×W/4``), per crop.

    Each crop is snapped to 8 bits (the command reads 8-bit pixels), encoded at a QP drawn from ``qps`` by a
    generator seeded with ``seed`` and the crop's content hash, decoded, and returned on the input's device and
    dtype. Crops are encoded ``workers`` at a time; encodes are cached like :func:`~esrkit.data.ais2024.degrade`.
    Slow (one FFmpeg run per crop): training uses :class:`AvifPairedDataset`, which pre-encodes whole images.
    """

    #: The trainer builds :class:`AvifPairedDataset` for recipes naming this degradation.
    paired_dataset = AvifPairedDataset

    def __init__(self, scale: int = SCALE, qps: Sequence[int] = QPS, *, seed: int = 0, workers: int = 2,
                 cache: bool | PathLike = True) -> None:
        self.scale = _check_scale(scale)
        self.qps = _check_qps(qps)
        self.seed = _check_int(seed, "seed", 0)
        self.workers = _check_int(workers, "workers", 1)
        self.cache = cache

    def draw_qp(self, key: str) -> int:
        """The QP of a crop whose content key (:func:`~esrkit.data.ais2024.content_key`) is ``key``."""
        digest = int(key[:16], 16)
        seed = int(np.random.SeedSequence([self.seed, digest]).generate_state(1, dtype=np.uint64)[0])
        return self.qps[int(torch.randint(len(self.qps), (1,), generator=torch.Generator().manual_seed(seed)))]

    def __call__(self, hr: Tensor) -> Tensor:
        from ..data.ais2024 import content_key

        if not isinstance(hr, Tensor) or not hr.is_floating_point() or hr.ndim != 4 or hr.shape[1] != 3:
            got = f"{hr.dtype} {tuple(hr.shape)}" if isinstance(hr, Tensor) else type(hr).__name__
            raise InputError(f"expected a float N×3×H×W tensor, got {got}", param="hr")
        if hr.shape[-1] % self.scale or hr.shape[-2] % self.scale:
            raise InputError(f"crop sides must be multiples of {self.scale}, got {tuple(hr.shape[-2:])}", param="hr")
        crops = (hr.detach().float().mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
                 .permute(0, 2, 3, 1).contiguous().cpu().numpy())

        def one(crop: np.ndarray) -> np.ndarray:
            return degrade(crop, self.draw_qp(content_key(crop)), cache=self.cache).lr

        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            lrs = list(pool.map(one, list(crops)))
        out = torch.from_numpy(np.stack(lrs)).permute(0, 3, 1, 2).to(hr.device).to(hr.dtype).div_(255.0)
        if hr.is_contiguous(memory_format=torch.channels_last) and not hr.is_contiguous():
            out = out.contiguous(memory_format=torch.channels_last)
        return out

    def __repr__(self) -> str:
        return f"LanczosAvifDegradation(scale={self.scale}, qps={self.qps})"
