"""Writing an upscaled image back with what its source carried (see :mod:`esrkit.data.image_meta`).

What each output format keeps, and the decisions where it cannot keep something:

* **ICC profile**, byte for byte, in PNG (``iCCP``), JPEG (APP2), WebP (``ICCP``) and AVIF (``colr``), when it
  describes the output's colour space (header bytes 16-20: ``RGB `` for colour, ``GRAY`` for grey). A CMYK
  profile (a CMYK JPEG is converted to RGB on reading) or a grey profile on an output made RGB (grey+alpha is
  read as RGBA; WebP and AVIF hold no grey) no longer describes the pixels and is left out.
* **EXIF**, orientation already reset to 1 (the pixels are upright), in PNG (``eXIf``), JPEG (APP1, when within
  its 64 KB segment), WebP and AVIF (whose Pillow writer moves the orientation tag into the container, so the
  tag is absent there, and re-serialises the rest: a block it cannot parse is left out).
* **Alpha** in PNG, WebP and AVIF. JPEG has none: an input with any transparency is *refused* for JPEG output,
  with one line, before the model runs (:func:`check_output`), rather than composited on a background colour the
  user never chose; an alpha that is opaque everywhere is dropped (nothing is lost).
* **16 bits** in PNG only (grey, RGB, RGBA): Pillow writes 16-bit grey but no 16-bit colour, so single PNGs,
  8 or 16 bits, are written by :func:`esrkit.data.png_encode.encode_png` (also 2× faster than Pillow's
  encoder at 8 bits); animated PNG stays with Pillow. WebP, JPEG and AVIF get 8 bits, ``round(v / 257)``.
* **Grey** stays grey in PNG and JPEG; WebP and AVIF hold only colour, so grey is replicated there.
* **Animation** (every frame, its duration and the loop count) in PNG (APNG), WebP and AVIF; an animation for
  JPEG output is refused before work. GIF is read but never written: its 256-colour palette per frame (and
  1-bit transparency) would requantise the upscaled frames, losing much of what the model made, so a GIF is
  written as APNG (the default ``png``) or animated WebP, which every current browser plays. Animations are
  8-bit (Pillow decodes them so).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import InputError
from ..fileio import atomic_path
from .image_meta import EXIF_PREFIX, SourceImage
from .png_encode import PNG_COMPRESS_LEVEL, encode_png

__all__ = ["check_output", "save_image"]

FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".avif": "AVIF"}
_ANIMATION_OUT = ("PNG", "WEBP", "AVIF")
_GREY_OUT = ("PNG", "JPEG")
_JPEG_SEGMENT = 65533 - len(EXIF_PREFIX)  # an APP1 segment's payload, less the prefix
_APNG_LONGEST = 65535  # an APNG frame's delay is a 16-bit count of milliseconds as Pillow writes it


def output_format(path: Path) -> str:
    """Pillow's format name for an output path, by its extension."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"{path}: cannot write {path.suffix or 'extension-less'} images; use one of "
                         f"{', '.join(FORMATS)}", param="out")
    return fmt


def check_output(source: SourceImage, dst: str | os.PathLike[str]) -> None:
    """Refuse, before any work, an output format that would silently lose part of ``source``: an animation or
    an image with transparency written as JPEG (:class:`~esrkit.errors.InputError` naming the input)."""
    fmt = output_format(Path(dst))
    if source.animated and fmt not in _ANIMATION_OUT:
        raise InputError(f"{source.path} is an animation of {len(source.frames)} frames, and {fmt} holds one "
                         "picture; use --format png or webp (every frame is upscaled, timing kept)", param="format")
    if fmt == "JPEG" and source.transparent:
        raise InputError(f"{source.path} has transparency (alpha), which JPEG cannot hold; use --format png or "
                         "webp (alpha is upscaled and kept)", param="format")
    if source.animated and fmt == "PNG" and max(source.durations) > _APNG_LONGEST:
        raise InputError(f"{source.path}: a frame lasts {max(source.durations)} ms, longer than APNG can state "
                         f"({_APNG_LONGEST} ms); use --format webp", param="format")


def save_image(path: str | os.PathLike[str], frames: list[np.ndarray], source: SourceImage, *,
               quality: int | None = None) -> Path:
    """Write ``frames`` (H×W×C like ``source.frames``, upscaled) atomically to ``path`` with ``source``'s ICC
    profile, EXIF, animation timing and depth, as far as the format holds them (see the module docstring)."""
    path = Path(path)
    fmt = output_format(path)
    check_output(source, path)
    if fmt == "PNG" and len(frames) == 1:  # 8 or 16 bits, 1-4 channels: esrkit's encoder (png_encode)
        icc = _matching_icc(source.icc_profile, frames[0].shape[2])
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            encode_png(fh, frames[0], icc_profile=icc, exif=source.exif)
        return path
    frames = [_for_format(f, fmt) for f in frames]
    images = [Image.fromarray(f[..., 0] if f.shape[2] == 1 else f, _MODES[f.shape[2]]) for f in frames]
    params: dict[str, Any] = {} if quality is None or fmt == "PNG" else {"quality": int(quality)}
    if fmt == "PNG":
        params["compress_level"] = PNG_COMPRESS_LEVEL  # APNG: level 6 took 2.4 s of a 4 s 4K upscale
    icc = _matching_icc(source.icc_profile, frames[0].shape[2])
    if icc is not None:
        params["icc_profile"] = icc
    if source.exif is not None and _exif_fits(source.exif, fmt):
        params["exif"] = EXIF_PREFIX + source.exif
    if len(images) > 1:
        params.update(save_all=True, append_images=images[1:], duration=source.durations)
        if fmt != "AVIF":
            params["loop"] = 1 if source.loop is None else source.loop  # not stated: the source played once
    try:
        with atomic_path(path) as tmp:
            images[0].save(tmp, format=fmt, **params)
    except (ValueError, RuntimeError) as exc:  # the encoder's own refusal (an AVIF side over 65 536, say)
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: the {fmt} encoder refused this {images[0].width}×{images[0].height} image "
                         f"({detail})", param="format") from None
    return path


_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


def _for_format(frame: np.ndarray, fmt: str) -> np.ndarray:
    """``frame`` as ``fmt`` can hold it: 8 bits (round(v / 257)), grey made RGB where the format has no grey,
    an (all-opaque, see :func:`check_output`) alpha dropped for JPEG."""
    if frame.dtype == np.uint16:
        frame = ((frame.astype(np.uint32) + 128) // 257).astype(np.uint8)  # = round(v / 257), no .5 ties
    if fmt == "JPEG" and frame.shape[2] == 4:
        frame = frame[..., :3]
    if fmt not in _GREY_OUT and frame.shape[2] == 1:
        frame = np.repeat(frame, 3, axis=2)
    return np.ascontiguousarray(frame)


def _exif_fits(exif: bytes, fmt: str) -> bool:
    """Whether ``fmt`` can carry ``exif``: JPEG within its 64 KB segment; AVIF only if Pillow can re-serialise
    it (its AVIF writer parses the EXIF to move the orientation into the container, and raised struct.error on a
    damaged block in a mutation run); PNG and WebP store the bytes as they are."""
    if fmt == "JPEG":
        return len(exif) <= _JPEG_SEGMENT
    if fmt == "AVIF":
        try:
            parsed = Image.Exif()
            parsed.load(EXIF_PREFIX + exif)
            parsed.tobytes()
        except (ValueError, TypeError, KeyError, IndexError, OverflowError, struct.error):
            return False
    return True


def _matching_icc(icc: bytes | None, channels: int) -> bytes | None:
    """``icc`` when its colour space (header bytes 16-20) is that of the output's channels, else None."""
    if icc is None or len(icc) < 20:
        return None
    return icc if icc[16:20] == (b"GRAY" if channels == 1 else b"RGB ") else None
