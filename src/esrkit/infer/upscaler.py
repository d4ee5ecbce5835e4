"""One upscaling path for every caller.

:class:`Upscaler` owns a model, its device and precision, and turns uint8 RGB arrays into uint8 RGB arrays (uint16
into uint16, for 16-bit images).
Evaluation, the CLI and benchmarks all go through it so that a number measured in one place is the number a user
gets in another (same rounding, same precision, same deploy form).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.io import image_to_tensor, tensor_to_image
from ..device import resolve_device, resolve_precision
from ..errors import InputError
from ..models.registry import Capabilities, capabilities_of, info_of


class Upscaler:
    """Run an SR model on uint8 RGB images.

    ``precision`` casts the model and input (fp16/bf16) rather than using autocast, which is what deployments
    do.

    The model's :class:`~esrkit.models.registry.Capabilities` (from the registry, or ``capabilities``) decide
    what inputs need: an input (or tile) smaller than ``min_size`` or not a multiple of ``size_multiple`` is
    padded by reflection at the bottom and right and the output cropped back, so any image size works.

    **Tiling.** ``tile`` (LR pixels per side) runs large inputs in overlapping windows to bound memory: each
    window carries ``tile_overlap`` pixels of context on every side that is not the image border and only its
    centre is kept (crop-to-centre, see :meth:`_tiled`), so no kept pixel is computed near a window edge and
    there is nothing to blend. The price is compute: about (tile / (tile − 2·overlap))² of an untiled run, 1.3× at
    tile 256 / overlap 16 but 4× at 64 / 16, so prefer large tiles. A tile below the model's minimum input is an
    :class:`InputError`; the tile is rounded down and the overlap up to the size multiple. Without ``tile``, an
    input that runs out of memory
    (CUDA's ``OutOfMemoryError`` or a CPU allocation failure) is retried tiled at half its longer side, halving
    again until it fits (a warning says so), and later inputs as large start at the tile that fitted. (On Linux
    with memory overcommit a CPU process may be killed by the kernel before any allocation fails; ``tile`` is
    the way to bound memory there.)

    How exact: for a ``tile_exact`` model whose receptive field fits in the overlap the tiled output equals the
    whole-image output up to float rounding (≤1e-5, ``tests/test_tiling.py``). ESA models are not tile-exact: ESA's
    strided convolution, 7×7 max-pool and bilinear resize back to the input size depend on the window, so tiles
    see slightly different attention maps. Measured on Set5 ×4 with the official RLFN-NTIRE weights (CPU, fp32;
    whole-image Y-PSNR 32.098 dB): tile 32 / overlap 8 −0.009 dB, tile 48 / overlap 8 +0.007 dB, tile 64 /
    overlap 16 +0.003 dB, tile 96 / overlap 24 +0.003 dB (per image at most 0.07 dB, at tile 32); 128-pixel tiles
    cover every Set5 LR image and change nothing. Evaluation therefore never tiles.
    """

    def __init__(self, model: nn.Module, scale: int, device: str | torch.device | None = "cpu",
                 precision: str = "fp32", tile: int | None = None, tile_overlap: int = 16,
                 capabilities: Capabilities | None = None) -> None:
        dtype = resolve_precision(precision)
        if tile_overlap < 0:
            raise InputError(f"{tile_overlap}: must be >= 0", param="tile_overlap")
        caps = capabilities or capabilities_of(model)
        if tile is not None:
            smallest = _round_up(caps.min_size, caps.size_multiple)
            if tile < smallest:
                raise InputError(f"{tile} is smaller than this model's minimum input ({smallest} pixels)",
                                 param="tile")
            if tile <= 2 * tile_overlap:
                raise InputError(f"{tile} must exceed twice the overlap ({tile_overlap})", param="tile")
        self.scale = scale
        self.device = resolve_device(device)
        self.dtype = dtype
        self.precision = precision.strip().lower()
        self.tile = tile
        self.tile_overlap = tile_overlap
        self.capabilities = caps
        self._oom_tile: int | None = None  # the tile that fitted after running out of memory, reused by later inputs
        self._oom_area: int | None = None  # the smallest padded area that ran out of memory untiled
        info = info_of(model)
        self.trained_on = info.degradation if info is not None else "bicubic"  # the LR its weights expect
        if not self.capabilities.safe_precision(self.precision):
            warnings.warn(f"{self.precision} is not marked safe for this model (its registry capabilities); "
                          "expect lower fidelity than fp32", RuntimeWarning, stacklevel=2)
        self.model = model.eval().to(self.device, self.dtype)
        # which weights these are (esrkit.hub.provenance), set by from_name; None for a model handed in directly
        self.weights_provenance: dict[str, object] | None = None

    @classmethod
    def from_name(cls, name: str | None = None, scale: int | None = 4, weights: str | Path | None = None,
                  deploy: bool = True, backend: str | None = "auto", random_weights: bool = False,
                  **kwargs: object) -> Upscaler:
        """Build from a zoo name and/or a checkpoint file; ``deploy`` re-parameterizes multi-branch models.

        The model comes from :func:`esrkit.hub.load_model`, the resolver every command shares: a zoo name runs
        its released weights (downloaded, verified and cached on first use), ``esrkit_x4`` the bundled ones, a
        name with no released weights is a :class:`~esrkit.errors.WeightsError` unless ``random_weights`` is
        asked for explicitly. ``backend`` (auto, torch, onnxruntime, openvino) wraps the model in a runner of
        :mod:`esrkit.infer.backends`, which then owns ``precision`` and ``threads``; ``auto`` (the default) is the
        fastest fp32-exact one for the device, its export and compiled model cached on disk
        (:mod:`esrkit.infer.backends.auto`); None runs the module itself (what export and reference runs need).
        ``scale`` None takes the checkpoint's own scale (4 for a zoo name). A ``weights`` file written by ``esrkit
        quantize`` (OpenVINO ``.xml``, ONNX ``.onnx``) runs in its own runtime, int8
        (:func:`esrkit.quantize.runtime.load_quantized`). ``weights_provenance`` records which weights it loaded."""
        from ..hub import load_model_with_provenance
        from ..hub.provenance import quantized_record
        from ..models import get_config, reparameterize

        if weights is not None:
            from ..quantize.runtime import is_quantized_path, load_quantized

            if is_quantized_path(weights):  # an int8 model written by ``esrkit quantize``: its file is the network
                runner, scale, rest = load_quantized(weights, name=name, scale=scale, backend=backend, kwargs=kwargs)
                quantized = cls(runner, scale, **rest)  # type: ignore[arg-type]
                quantized.weights_provenance = quantized_record(weights)
                return quantized

        model, provenance = load_model_with_provenance(name, scale, weights, random_weights=random_weights)
        config = get_config(model)
        scale = scale if scale is not None else config.scale if config is not None else 4
        if deploy:
            model = reparameterize(model)
        if backend is not None:
            from .backends import runner_for_upscaler

            model, kwargs = runner_for_upscaler(model, backend, kwargs)
        upscaler = cls(model, scale, **kwargs)  # type: ignore[arg-type]
        upscaler.weights_provenance = provenance
        return upscaler

    @torch.inference_mode()
    def upscale_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """B×3×h×w float in [0, 1] → B×3×(s·h)×(s·w) float32 in [0, 1] (clamped, not rounded)."""
        x = x.to(self.device, self.dtype)
        b, c, h, w = x.shape
        s = self.scale
        whole: list[torch.Tensor] = []
        out: torch.Tensor | None = None

        def write(rows: slice, cols: slice, sr: torch.Tensor) -> None:
            nonlocal out
            sr = sr.float().clamp_(0, 1)
            if out is None and sr.shape[-2:] == (h * s, w * s):
                whole[:] = [sr]  # the untiled result is returned as is, without a copy
                return
            if out is None:
                out = torch.empty(b, c, h * s, w * s, device=sr.device)
            out[..., rows, cols] = sr

        self._run(lambda r, q: x[..., r, q], write, h, w)
        return out if out is not None else whole[0]

    @torch.inference_mode()
    def __call__(self, lr: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
        """H×W×3 uint8 → (s·H)×(s·W)×3 uint8, rounded exactly as the papers' test code; uint16 (16-bit PNG/TIFF)
        → uint16, read as ``v / 65535`` and rounded back to the nearest of 65536 levels, so the model's float
        output keeps 16 bits instead of passing through 8.

        Tiles are read from the integer array and rounded into the integer output one at a time, so a tiled run
        holds neither the whole input nor the whole output in float: its memory is the output image plus one tile
        (for uint16 the output is twice the bytes, still below the float output the memory estimate counts).
        ``out``, when given, is filled and returned instead of a new array: a (s·H)×(s·W)×3 array or view of
        ``lr``'s dtype, e.g. the colour channels of an RGBA buffer.
        """
        if lr.dtype not in (np.uint8, np.uint16) or lr.ndim not in (2, 3):
            raise InputError(f"expected an H×W×3 uint8 or uint16 image, got {lr.dtype} {lr.shape}")
        h, w = lr.shape[:2]
        s = self.scale
        if out is None:
            out = np.empty((h * s, w * s, 3), dtype=lr.dtype)
        elif out.shape != (h * s, w * s, 3) or out.dtype != lr.dtype:
            raise InputError(f"out must be {lr.dtype} {(h * s, w * s, 3)}, got {out.dtype} {out.shape}")
        deep = lr.dtype == np.uint16

        def read(rows: slice, cols: slice) -> torch.Tensor:
            if not deep:
                return image_to_tensor(lr[rows, cols]).to(self.device, self.dtype)
            tile = np.ascontiguousarray(lr[rows, cols], dtype=np.float32)
            tile = tile if tile.ndim == 3 else np.repeat(tile[:, :, None], 3, axis=2)
            return (torch.from_numpy(tile).permute(2, 0, 1)[None] / 65535.0).to(self.device, self.dtype)

        def write(rows: slice, cols: slice, sr: torch.Tensor) -> None:
            if deep:
                sr = sr.float().clamp_(0, 1)
                out[rows, cols] = sr[0].mul_(65535.0).round_().to(torch.int32).permute(1, 2, 0).cpu().numpy()
            else:  # clips to [0, 1] itself, rounding straight into ``out`` (a band at a time, no whole copy)
                tensor_to_image(sr, out=out[rows, cols])

        self._run(read, write, h, w)
        return out

    # ---------------------------------------------------------------------------------------------- tiling

    def _run(self, read: Callable[[slice, slice], torch.Tensor],
             write: Callable[[slice, slice, torch.Tensor], None], h: int, w: int) -> None:
        """Upscale an h×w input given as ``read(rows, cols)`` (LR slices), handing each finished SR region to
        ``write(rows, cols, sr)`` (SR slices); whole or tiled, halving the tile whenever memory runs out.

        Without a ``tile`` the whole image is tried first; when it runs out of memory the image is tiled at half
        its longer (padded) side, then halved again on each failure. The tile that worked is remembered, and a
        later input at least as large as one that failed starts tiled straight away, so a folder of large photos
        pays for the failed attempt once.
        """
        hp, wp = h + self._padding(h), w + self._padding(w)
        tile = self.tile
        if tile is None and self._oom_area is not None and hp * wp >= self._oom_area:
            tile = self._oom_tile
        if tile is None:
            tile = self._tile_for_memory(hp, wp)
        while True:
            try:
                if tile is None:
                    write(slice(None), slice(None), self._forward(read(slice(None), slice(None))))
                else:
                    self._tiled(read, write, h, w, tile)
                return
            except (RuntimeError, MemoryError) as exc:  # torch's OutOfMemoryError is a RuntimeError
                if not _is_out_of_memory(exc):
                    raise
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                if tile is None:
                    self._oom_area = hp * wp if self._oom_area is None else min(self._oom_area, hp * wp)
                tile = self._smaller_tile(tile, hp, wp)
                self._oom_tile = tile

    def _tile_for_memory(self, hp: int, wp: int) -> int | None:
        """On the CPU, the tile to start with when the whole padded ``hp×wp`` input clearly does not fit in the
        memory available now (None: run it whole, as usual).

        On Linux the kernel may kill a process that overcommits before any allocation fails, so the out-of-memory
        retry in :meth:`_run` never gets its chance there; this estimate decides beforehand. It is rough by design
        (the widest convolution's channels × 4 live feature maps, plus the float SR output, per LR pixel) and
        is compared with half the available memory, so it only triggers for images far too large, where the
        alternative is being killed. CUDA reports its out-of-memory errors reliably and keeps the retry path.
        """
        if self.device.type != "cpu":
            return None
        available = _available_memory()
        if available is None:
            return None
        s = self.scale
        per_pixel = self.dtype.itemsize * (4 * _widest_channels(self.model) + 2 * 3 * s * s) + 4 * 3 * s * s
        need, budget = hp * wp * per_pixel, available // 2
        if need <= budget:
            return None
        m = self.capabilities.size_multiple
        least = max(_round_up(self.capabilities.min_size, m), 2 * _round_up(self.tile_overlap, m) + m)
        tile = max(hp, wp)
        while tile * tile * per_pixel > budget and tile // 2 - (tile // 2) % m >= least:
            tile = tile // 2 - (tile // 2) % m
        if tile >= max(hp, wp):
            return None
        warnings.warn(f"a {wp}×{hp} input needs about {_bytes(need)} whole but {_bytes(available)} is available; "
                      f"running it in {tile}-pixel tiles", RuntimeWarning, stacklevel=4)
        return tile

    def _smaller_tile(self, tile: int | None, hp: int, wp: int) -> int:
        """The next tile to try after running out of memory with ``tile`` (None: untiled)."""
        m = self.capabilities.size_multiple
        start = max(hp, wp) if tile is None else tile
        smaller = start // 2 - (start // 2) % m
        least = max(_round_up(self.capabilities.min_size, m), 2 * _round_up(self.tile_overlap, m) + m)
        if smaller < least:
            raise InputError(f"out of memory even with {start}-pixel tiles (the smallest this model and "
                             f"overlap {self.tile_overlap} allow is {least})", param="tile")
        warnings.warn(f"out of memory; retrying with {smaller}-pixel tiles", RuntimeWarning, stacklevel=4)
        return smaller

    def _tiled(self, read: Callable[[slice, slice], torch.Tensor],
               write: Callable[[slice, slice, torch.Tensor], None], h: int, w: int, tile: int) -> None:
        """Crop-to-centre tiling: each tile is read with ``overlap`` LR pixels of context on every side that is
        not the image border, and only its centre is kept, so no output pixel is computed near a tile edge.

        The tile grid lives in the *padded* image (min size, multiple): windows are ``tile`` pixels (fewer only
        where the padded image is smaller), start on multiples of ``size_multiple``, and slide inward at the
        border instead of shrinking, so every window is a valid model input and sees exactly the pixels (padding
        included) the whole-image forward would. For a ``tile_exact`` model whose receptive field fits in the
        overlap the result therefore equals the untiled one up to float rounding.
        """
        m = self.capabilities.size_multiple
        tile = tile - tile % m
        overlap = _round_up(self.tile_overlap, m)
        hp, wp = h + self._padding(h), w + self._padding(w)
        step = tile - 2 * overlap
        s = self.scale
        for top in range(0, hp, step):
            y0, y1 = _window(top, step, overlap, tile, hp)
            keep_y = slice(top, min(top + step, h))
            if keep_y.start >= keep_y.stop:
                continue  # a block wholly inside the padding
            for left in range(0, wp, step):
                x0, x1 = _window(left, step, overlap, tile, wp)
                keep_x = slice(left, min(left + step, w))
                if keep_x.start >= keep_x.stop:
                    continue
                lr = read(slice(y0, min(y1, h)), slice(x0, min(x1, w)))
                lr = _pad_bottom_right(lr, y1 - min(y1, h), x1 - min(x1, w))
                sr = self._forward(lr)
                write(slice(keep_y.start * s, keep_y.stop * s), slice(keep_x.start * s, keep_x.stop * s),
                      sr[..., (keep_y.start - y0) * s:(keep_y.stop - y0) * s,
                         (keep_x.start - x0) * s:(keep_x.stop - x0) * s])

    def _padding(self, size: int) -> int:
        """Pixels to add to an LR side of ``size`` so the model accepts it (minimum size, then multiple)."""
        caps = self.capabilities
        target = max(size, caps.min_size)
        target += -target % caps.size_multiple
        return target - size

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        pad_h, pad_w = self._padding(h), self._padding(w)
        if pad_h or pad_w:
            x = _pad_bottom_right(x, pad_h, pad_w)
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if (
            self.device.type == "cpu" and self.dtype == torch.bfloat16) else contextlib.nullcontext()
        with ctx:
            out = self.model(x)
        expected = (x.shape[-2] * self.scale, x.shape[-1] * self.scale)
        if tuple(out.shape[-2:]) != expected:
            raise InputError(f"model returned {tuple(out.shape[-2:])} for input {tuple(x.shape[-2:])}; "
                             f"it is not a ×{self.scale} model")
        return out[..., : h * self.scale, : w * self.scale]


def _pad_bottom_right(x: torch.Tensor, pad_h: int, pad_w: int) -> torch.Tensor:
    """Extend ``x`` at the bottom and right by mirroring without edge repeat (like the SR codebases' test-time
    padding), repeatedly when the pad exceeds the side; a one-pixel side is replicated."""
    while pad_h or pad_w:
        step_h, step_w = min(pad_h, x.shape[-2] - 1), min(pad_w, x.shape[-1] - 1)
        if step_h <= 0 and step_w <= 0:
            return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        x = F.pad(x, (0, max(step_w, 0), 0, max(step_h, 0)), mode="reflect")
        pad_h, pad_w = pad_h - max(step_h, 0), pad_w - max(step_w, 0)
    return x


def _round_up(value: int, multiple: int) -> int:
    return value + -value % multiple


def _window(start: int, step: int, overlap: int, tile: int, size: int) -> tuple[int, int]:
    """The ``tile``-long window (clipped to ``size``) holding the block ``[start, start + step)`` with ``overlap``
    context on each side, slid inward where it would cross the border."""
    lo = max(start - overlap, 0)
    hi = min(lo + tile, size)
    return max(min(lo, hi - tile), 0), hi


def _widest_channels(model: object) -> int:
    """The most output channels of any convolution in ``model`` (64, a common SR width, when it has none or is
    not a module, e.g. an ONNX runner)."""
    modules = getattr(model, "modules", None)
    widths = [m.out_channels for m in modules() if isinstance(m, nn.Conv2d)] if callable(modules) else []
    return max(widths, default=64)


def _bytes(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


def _available_memory() -> int | None:
    """Bytes this process may still use: ``MemAvailable`` from ``/proc/meminfo``, lowered to what the cgroup v2
    (container) limit leaves, not counting the reclaimable page cache; None where neither can be read."""
    found: list[int] = []
    with contextlib.suppress(OSError, ValueError, IndexError), open("/proc/meminfo", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
                break
    with contextlib.suppress(OSError, ValueError, IndexError):
        cgroup = Path("/sys/fs/cgroup")
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            used = int((cgroup / "memory.current").read_text())
            stat = dict(line.split()[:2] for line in (cgroup / "memory.stat").read_text().splitlines())
            found.append(max(0, int(limit) - used + int(stat.get("inactive_file", 0))))
    return min(found) if found else None


def _is_out_of_memory(exc: BaseException) -> bool:
    """CUDA's ``OutOfMemoryError``, or a CPU allocation failure (a RuntimeError from the default allocator,
    worded differently per platform; a MemoryError from NumPy)."""
    if isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError)):  # torch.OutOfMemoryError from torch 2.5 on
        return True
    text = str(exc)
    return "can't allocate memory" in text or "not enough memory" in text or "out of memory" in text.lower()
