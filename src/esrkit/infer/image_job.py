"""One image file through an :class:`~esrkit.infer.Upscaler`, keeping what makes it itself.

:func:`upscale_image_file` is what ``esrkit upscale`` runs per image: :func:`esrkit.data.image_meta.read_source`
(upright, alpha, 16 bits, every frame, ICC and EXIF), :func:`esrkit.data.image_save.check_output` before the
model runs, the model on each frame's colour, bicubic on its alpha, and
:func:`esrkit.data.image_save.save_image`.

**Alpha is upscaled with bicubic, not with the model.** esrkit uses its MATLAB-exact ``imresize`` (Keys' cubic,
a = -0.5, the benchmarks' kernel) on the alpha plane, where Real-ESRGAN by default runs the model a second time
on the alpha replicated to RGB. Why:

* flat stays flat, exactly: bicubic weights sum to one, so an alpha of 0 (or full) away from an edge stays
  exactly 0 (or full). The colours a file hides under alpha 0 stay hidden and opaque areas stay opaque. An SR
  model has learnt biases and textures from photographs, so a flat mask does not come out flat, which makes
  hidden colours faintly visible and opaque areas faintly see-through. Measured with the bundled esrkit_x4 on
  32×32 flat planes (CPU, fp32): all-0 came out up to 11/255 near the border and up to 1 inside, all-255 down
  to 217 near the border and 254 on 15 % of the inner pixels; on a 48×48 disc mask, 13 % of the output more than
  18 LR pixels outside the disc was non-zero (up to 12/255). Bicubic gave exactly 0 and 255 there;
* a model trained on photographs has no notion of a mask; its sharpening can ring or invent texture on one;
* it costs about a tenth of the model's time on the colour (see :func:`upscale_alpha`), where the model on
  alpha doubles the run.

The price is softer alpha edges than the model's colour edges: a hard edge becomes a ramp of a few output pixels.
The colour under the alpha is upscaled as stored (straight alpha: never premultiplied or composited), so where
the input's alpha is flat the output shows exactly what the input shows; inside the ramp at an edge, about two
LR pixels wide, it shows the model's upscale of the stored colours on both sides, hidden ones included, as any
resize of straight alpha does.

Grey images run through the model as RGB (the grey replicated) and come back as the mean of the three output
channels, rounded: SR models are colour models, and the output stays grey like its input.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..data.image_meta import read_source
from ..data.image_save import check_output, save_image
from ..data.io import IMAGE_EXTENSIONS
from ..data.resize import imresize
from .upscaler import Upscaler

__all__ = ["UPSCALE_IMAGE_EXTENSIONS", "upscale_alpha", "upscale_frame", "upscale_image_file"]

# What ``esrkit upscale`` reads: every image esrkit reads, and GIF, an animation format (written as APNG or WebP,
# see esrkit.data.image_save). Evaluation and training keep IMAGE_EXTENSIONS: no benchmark is a GIF.
UPSCALE_IMAGE_EXTENSIONS = (*IMAGE_EXTENSIONS, ".gif")

_ALPHA_BAND_BYTES = 16 << 20  # float64 output per bicubic band: bounds the temporaries at any width
_ALPHA_CONTEXT = 3  # LR rows of context around a band: an upscaling cubic reaches 2 rows either side


def upscale_image_file(upscaler: Upscaler, src: str | os.PathLike[str], dst: str | os.PathLike[str], *,
                       quality: int | None = None) -> int:
    """Upscale the image ``src`` into ``dst`` (format by extension) and return the output pixels written (all
    frames). Raises :class:`~esrkit.errors.ImageReadError` for an input that cannot be read and
    :class:`~esrkit.errors.InputError`, before the model runs, for an output format that would lose part of it."""
    source = read_source(src)
    check_output(source, dst)
    frames = [upscale_frame(upscaler, frame) for frame in source.frames]
    save_image(Path(dst), frames, source, quality=quality)
    return sum(f.shape[0] * f.shape[1] for f in frames)


def upscale_frame(upscaler: Upscaler, frame: np.ndarray) -> np.ndarray:
    """One H×W×C frame (C = 1 grey, 3 RGB, 4 RGBA; uint8 or uint16) → (s·H)×(s·W)×C, same dtype:
    colour by the model, alpha by bicubic (see the module docstring)."""
    h, w, channels = frame.shape
    s = upscaler.scale
    out = np.empty((h * s, w * s, channels), frame.dtype)
    if channels >= 3:
        upscaler(frame[..., :3], out=out[..., :3])
    else:
        rgb = upscaler(np.repeat(frame[..., :1], 3, axis=2))
        for top in range(0, rgb.shape[0], 256):  # the rounded mean, a band at a time (uint32 temporaries)
            band = rgb[top:top + 256].astype(np.uint32)
            out[top:top + 256, :, 0] = (2 * band.sum(axis=2) + 3) // 6
    if channels == 4:
        out[..., 3] = upscale_alpha(frame[..., -1], s)
    return out


def upscale_alpha(alpha: np.ndarray, scale: int, *, band: int | None = None) -> np.ndarray:
    """An H×W integer alpha plane → (s·H)×(s·W), same dtype: MATLAB's bicubic (:func:`esrkit.data.resize.imresize`),
    rounded and saturated, computed in bands of ``band`` rows (default: about 16 MB of float64 output, at least 8
    rows) with 3 rows of context, which gives exactly the whole-plane result (an integer scale maps output rows to
    input rows the same way in every band) at the memory of one band. On a 2-core CPU it took 0.34 s for a
    256×256 plane at ×4, where esrkit_x4 took 3.7 s on the colour of the same image."""
    h, w = alpha.shape
    band = band or max(8, _ALPHA_BAND_BYTES // (8 * w * scale * scale))
    out = np.empty((h * scale, w * scale), alpha.dtype)
    for top in range(0, h, band):
        bottom = min(top + band, h)
        lo, hi = max(top - _ALPHA_CONTEXT, 0), min(bottom + _ALPHA_CONTEXT, h)
        resized = imresize(alpha[lo:hi], scale)
        out[top * scale:bottom * scale] = resized[(top - lo) * scale:(bottom - lo) * scale]
    return out
