"""Degradations: HR → LR for training. MATLAB-exact bicubic on the training device, batched; the AIS 2024 Lanczos
+ AVIF step; and :data:`DEGRADATIONS`, the registry a recipe's ``degradation:`` names.

:class:`LanczosAvifDegradation` is the AIS 2024 degradation as a batch step, HR crops in, LR out, for code that
holds only crops (it encodes each crop: exact, but slow; the trainer builds its ``paired_dataset``,
:class:`~esrkit.train.datasets.AvifPairedDataset`, which pre-encodes whole images, instead). Its QP is drawn from a
generator seeded by the crop's content, so it too is reproducible without state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from ..data.ais2024 import QPS, SCALE, check_qps, degrade
from ..data.resize import imresize, round_saturate
from ..errors import InputError
from .datasets import AvifPairedDataset, check_ais_scale
from .sampling import PathLike, check_int

__all__ = ["DEGRADATIONS", "BicubicDegradation", "Degradation", "LanczosAvifDegradation", "build_degradation"]


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
        self.scale = check_int(scale, "scale", 1)

    def __call__(self, hr: Tensor) -> Tensor:
        if not isinstance(hr, Tensor) or not hr.is_floating_point() or hr.ndim != 4:
            got = f"{hr.dtype} {tuple(hr.shape)}" if isinstance(hr, Tensor) else type(hr).__name__
            raise InputError(f"expected a float N×3×H×W tensor, got {got}", param="hr")
        work = torch.float32 if hr.device.type == "mps" else torch.float64
        levels = (hr.detach().to(work) * 255.0).round_()
        lr = imresize(levels, 1.0 / self.scale)
        assert isinstance(lr, Tensor)
        out = round_saturate(lr, 0.0, 255.0).div_(255.0).to(hr.dtype)
        if hr.is_contiguous(memory_format=torch.channels_last) and not hr.is_contiguous():
            out = out.contiguous(memory_format=torch.channels_last)
        return out

    def __repr__(self) -> str:
        return f"BicubicDegradation(scale={self.scale})"


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
        self.scale = check_ais_scale(scale)
        self.qps = check_qps(qps)
        self.seed = check_int(seed, "seed", 0)
        self.workers = check_int(workers, "workers", 1)
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


#: Degradation factories by name: ``factory(scale) -> Degradation``. Lanczos, JPEG or AVIF steps plug in here.
#: A degradation with a ``paired_dataset`` attribute makes its LR before training (the trainer then builds that
#: dataset, which yields ``(lr, hr)`` uint8 crops, instead of :class:`HRCropDataset`).
DEGRADATIONS: dict[str, Callable[[int], Degradation]] = {"bicubic": BicubicDegradation,
                                                         "lanczos+avif": LanczosAvifDegradation}


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
