"""One upscaling path for every caller.

:class:`Upscaler` owns a model, its device and precision, and turns uint8 RGB arrays into uint8 RGB arrays.
Evaluation, the CLI and benchmarks all go through it so that a number measured in one place is the number a user
gets in another (same rounding, same precision, same deploy form).
"""

from __future__ import annotations

import contextlib
import warnings
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
    do. ``tile`` (LR pixels) splits large inputs into overlapping tiles to bound memory; tiling is exact only for
    models whose registry capabilities say ``tile_exact`` (ESA pools over the whole feature map), so evaluation
    never tiles.

    The model's :class:`~esrkit.models.registry.Capabilities` (from the registry, or ``capabilities``) decide
    what inputs need: an input (or tile) smaller than ``min_size`` or not a multiple of ``size_multiple`` is
    padded by reflection at the bottom and right and the output cropped back, so any image size works.
    """

    def __init__(self, model: nn.Module, scale: int, device: str | torch.device | None = "cpu",
                 precision: str = "fp32", tile: int | None = None, tile_overlap: int = 16,
                 capabilities: Capabilities | None = None) -> None:
        dtype = resolve_precision(precision)
        if tile_overlap < 0:
            raise InputError(f"{tile_overlap}: must be >= 0", param="tile_overlap")
        if tile is not None and tile <= 2 * tile_overlap:
            raise InputError(f"{tile} must exceed twice the overlap ({tile_overlap})", param="tile")
        self.scale = scale
        self.device = resolve_device(device)
        self.dtype = dtype
        self.precision = precision.strip().lower()
        self.tile = tile
        self.tile_overlap = tile_overlap
        self.capabilities = capabilities or capabilities_of(model)
        info = info_of(model)
        self.trained_on = info.degradation if info is not None else "bicubic"  # the LR its weights expect
        if not self.capabilities.safe_precision(self.precision):
            warnings.warn(f"{self.precision} is not marked safe for this model (its registry capabilities); "
                          "expect lower fidelity than fp32", RuntimeWarning, stacklevel=2)
        self.model = model.eval().to(self.device, self.dtype)

    @classmethod
    def from_name(cls, name: str | None = None, scale: int = 4, weights: str | Path | None = None,
                  deploy: bool = True, **kwargs: object) -> Upscaler:
        """Build from a zoo name and/or a checkpoint file; ``deploy`` re-parameterizes multi-branch models."""
        from ..models import create_model, get_config, reparameterize

        if weights is not None:
            from ..checkpoints import load_checkpoint

            model = load_checkpoint(weights)
            config = get_config(model)
            if name is not None and config is not None and config.name != name:
                raise InputError(f"{weights} holds a {config.name!r} model, not {name!r}", param="weights")
            if config is not None and config.scale != scale:
                raise InputError(f"{weights} is a ×{config.scale} model, not ×{scale}", param="weights")
        elif name is not None:
            model = create_model(name, scale=scale)
        else:
            raise InputError("give a model name or a checkpoint file (weights)")
        if deploy:
            model = reparameterize(model)
        return cls(model, scale, **kwargs)  # type: ignore[arg-type]

    @torch.inference_mode()
    def upscale_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """B×3×h×w float in [0, 1] → B×3×(s·h)×(s·w) float32 in [0, 1] (clamped, not rounded)."""
        x = x.to(self.device, self.dtype)
        out = self._forward(x) if self.tile is None else self._forward_tiled(x)
        return out.float().clamp_(0, 1)

    def __call__(self, lr: np.ndarray) -> np.ndarray:
        """H×W×3 uint8 → (s·H)×(s·W)×3 uint8, rounded exactly as the papers' test code."""
        out = self.upscale_tensor(image_to_tensor(lr))
        return tensor_to_image(out)

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

    def _forward_tiled(self, x: torch.Tensor) -> torch.Tensor:
        assert self.tile is not None
        s, t, ov = self.scale, self.tile, self.tile_overlap
        b, c, h, w = x.shape
        out = x.new_zeros(b, c, h * s, w * s)
        step = t - 2 * ov
        for top in range(0, h, step):
            for left in range(0, w, step):
                # read a tile with `ov` context on each side, keep only its centre
                y0, x0 = max(top - ov, 0), max(left - ov, 0)
                y1, x1 = min(top + step + ov, h), min(left + step + ov, w)
                sr = self._forward(x[..., y0:y1, x0:x1])
                ky, kx = top - y0, left - x0
                hh, ww = min(step, h - top), min(step, w - left)
                out[..., top * s:(top + hh) * s, left * s:(left + ww) * s] = \
                    sr[..., ky * s:(ky + hh) * s, kx * s:(kx + ww) * s]
        return out


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
