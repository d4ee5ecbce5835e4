"""What travels with an image through ``esrkit upscale``: orientation, alpha, bit depth, frames, ICC and EXIF.

:func:`esrkit.data.io.read_image` reduces every file to 8-bit RGB, which is what SR benchmarks and training want
(and evaluation keeps using it). A user upscaling their own files wants the output to *be* their image, larger,
as Real-ESRGAN and chaiNNer users expect. :func:`read_source` therefore decodes, through the same checks as
``read_image`` (pixel limit from the header, TIFF strips; :func:`esrkit.data.io.decode_image`):

* **orientation**: the EXIF orientation (tag 0x0112, values 2-8) is applied to the pixels, as Pillow's
  ``ImageOps.exif_transpose`` would, so the picture is upright the way viewers show it; the EXIF that travels on
  has its orientation reset to 1 in place (:func:`reset_orientation`), every other byte as it was, so no viewer
  turns the output a second time. Other EXIF tags (the camera's pixel dimensions, its thumbnail) describe the
  original and are carried as they are; XMP is not carried (it may hold a second orientation);
* **alpha**: RGBA, grey+alpha (``LA``) and transparent palette or colour-key (PNG ``tRNS``) images keep their
  alpha, all as RGBA (as OpenCV reads them for Real-ESRGAN and chaiNNer); the colour under it is kept as stored,
  never composited or premultiplied;
* **grey** without alpha stays one channel (``L``, 16-bit ``I;16``), as Real-ESRGAN keeps it;
* **bit depth**: 16-bit PNG and TIFF keep 16 bits. Pillow reads 16-bit grey itself but reduces 16-bit RGB(A) to
  its high byte, so those are decoded with FFmpeg's PNG/TIFF decoders through PyAV (already esrkit's video
  library) after Pillow has read and checked the header;
* **frames**: animated WebP, PNG (APNG), GIF and AVIF give every frame (composited to the full canvas, as a
  viewer shows it), with its duration in milliseconds and the loop count. The pixel limit then applies to all
  frames together, since all of them and their outputs are held at once. A multi-page TIFF is refused: its pages
  are separate pictures with no timing, and no output format esrkit writes holds pages;
* **ICC profile** and raw **EXIF** bytes, to be written back by :mod:`esrkit.data.image_save`. EXIF from a TIFF
  is not carried (there the tags are the TIFF's own structure); its orientation is still applied.

Frames come back as ``H×W×C`` arrays with C = 1 (grey), 3 (RGB) or 4 (RGBA), dtype uint8 or uint16, all frames
of one image alike.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ImageReadError
from .io import GREY16_MODES, decode_image, grey16_array, max_pixels

__all__ = ["ORIENTATION_TAG", "SourceImage", "orient", "read_source", "reset_orientation"]

ORIENTATION_TAG = 0x0112
EXIF_PREFIX = b"Exif\x00\x00"  # how JPEG's APP1 (and Pillow's info["exif"]) start; PNG/WebP store the TIFF part
ANIMATED_FORMATS = ("PNG", "WEBP", "GIF", "AVIF")
# What Pillow's frame seeking and EXIF parsing raise on a damaged file beyond the OSError/ValueError family that
# decode_image already reports (mutated GIFs and TIFFs: IndexError, struct.error, TypeError, KeyError, EOFError).
_PILLOW_PARSE_ERRORS = (EOFError, IndexError, KeyError, TypeError, ZeroDivisionError, struct.error)


@dataclass
class SourceImage:
    """An input image as :func:`read_source` decoded it (see the module docstring)."""

    path: Path
    format: str  # Pillow's name of the source format: PNG, JPEG, WEBP, GIF, TIFF, AVIF, BMP...
    frames: list[np.ndarray]  # H×W×C, C = 1, 3 or 4, uint8 or uint16, upright
    durations: list[int] = field(default_factory=list)  # milliseconds per frame (animations only)
    loop: int | None = None  # the animation's loop count (0: forever; None: not stated, plays once)
    icc_profile: bytes | None = None
    exif: bytes | None = None  # TIFF-structured EXIF without the "Exif\0\0" prefix, orientation reset to 1
    orientation: int = 1  # the EXIF orientation that was applied to the pixels

    @property
    def channels(self) -> int:
        return self.frames[0].shape[2]

    @property
    def has_alpha(self) -> bool:
        return self.channels == 4

    @property
    def transparent(self) -> bool:
        """True when some pixel of some frame is not fully opaque (an all-opaque alpha loses nothing if dropped)."""
        if not self.has_alpha:
            return False
        full = np.iinfo(self.frames[0].dtype).max
        return any(bool((f[..., -1] != full).any()) for f in self.frames)

    @property
    def animated(self) -> bool:
        return len(self.frames) > 1

    @property
    def depth(self) -> int:
        return 16 if self.frames[0].dtype == np.uint16 else 8


def read_source(path: str | os.PathLike[str]) -> SourceImage:
    """Decode ``path`` keeping what makes it itself (see the module docstring).

    Raises :class:`~esrkit.errors.InputError` for a missing file and :class:`~esrkit.errors.ImageReadError` for
    one that cannot be decoded, is over the pixel limit (all frames counted), or is a multi-page TIFF.
    """
    path = Path(path)
    return decode_image(path, lambda img: _decode(path, img))


def orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """``array`` (H×W or H×W×C) turned upright for an EXIF ``orientation``, the transposes Pillow's
    ``ImageOps.exif_transpose`` makes (2: mirror, 3: 180°, 4: flip, 5: transpose, 6: 90° clockwise,
    7: transverse, 8: 90° anticlockwise); 1 and unknown values leave it as it is."""
    if orientation == 2:
        return array[:, ::-1]
    if orientation == 3:
        return array[::-1, ::-1]
    if orientation == 4:
        return array[::-1]
    if orientation == 5:
        return array.swapaxes(0, 1)
    if orientation == 6:
        return np.rot90(array, -1)
    if orientation == 7:
        return array[::-1, ::-1].swapaxes(0, 1)
    if orientation == 8:
        return np.rot90(array, 1)
    return array


def reset_orientation(exif: bytes) -> bytes | None:
    """``exif`` (TIFF-structured, no prefix) with IFD0's orientation set to 1, every other byte unchanged.

    Returns ``exif`` itself when it has no orientation tag, and None when it has one that cannot be rewritten in
    place (a type other than SHORT, a count other than one, an IFD outside the data): carrying such EXIF would let
    a viewer turn the already upright pixels again, so it is better dropped.
    """
    if len(exif) < 8 or exif[:2] not in (b"II", b"MM"):
        return None
    order = "<" if exif[:2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", exif[4:8])
    if ifd + 2 > len(exif):
        return None
    (count,) = struct.unpack(order + "H", exif[ifd:ifd + 2])
    for i in range(count):
        at = ifd + 2 + 12 * i
        if at + 12 > len(exif):
            return None
        tag, kind, n = struct.unpack(order + "HHI", exif[at:at + 8])
        if tag == ORIENTATION_TAG:
            if kind != 3 or n != 1:
                return None
            return exif[:at + 8] + struct.pack(order + "H", 1) + exif[at + 10:]
    return exif


def _decode(path: Path, img: Image.Image) -> SourceImage:
    """The body of :func:`read_source`, run on the opened, checked and loaded first frame."""
    fmt = img.format or "?"
    with _parse_errors(path, "frame count or EXIF"):
        count = getattr(img, "n_frames", 1)
        exif = img.getexif()
    orientation = exif.get(ORIENTATION_TAG, 1)
    orientation = orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else 1
    icc = img.info.get("icc_profile") or None
    raw_exif = None if fmt == "TIFF" else img.info.get("exif")
    if isinstance(raw_exif, bytes) and raw_exif:
        raw_exif = reset_orientation(raw_exif.removeprefix(EXIF_PREFIX))
    else:
        raw_exif = None
    source = SourceImage(path, fmt, [], icc_profile=icc if isinstance(icc, bytes) else None, exif=raw_exif,
                         orientation=orientation)
    if count > 1:
        _read_frames(path, img, count, source)
    else:
        deep = _deep_colour(path, img)
        source.frames = [_decode_deep(path, img) if deep else _frame_array(img)]
    source.frames = [np.ascontiguousarray(orient(f, orientation)) for f in source.frames]
    return source


def _read_frames(path: Path, img: Image.Image, count: int, source: SourceImage) -> None:
    """Every frame of an animation, with durations and loop; a multi-page TIFF (or any other multi-frame format
    without timing) is refused."""
    if source.format not in ANIMATED_FORMATS:
        raise ImageReadError(f"{path}: a multi-page {source.format} ({count} pages); esrkit upscale writes one "
                             "picture per input and would drop all pages but the first: split the pages first")
    width, height = img.size
    limit = max_pixels()
    if limit is not None and count * width * height > limit:
        raise ImageReadError(f"{path}: {count} frames of {width}×{height} = {count * width * height / 1e6:,.1f} "
                             f"Mpx together, over the limit of {limit / 1e6:,.1f} Mpx (raise $ESRKIT_MAX_PIXELS "
                             "to read it anyway)")
    loop = img.info.get("loop")
    source.loop = loop if isinstance(loop, int) else None
    frames = []
    for index in range(count):
        with _parse_errors(path, f"frame {index + 1} of {count}"):
            img.seek(index)
            if img.size != (width, height):  # a GIF frame reaching past its screen grows the canvas
                raise ImageReadError(f"{path}: frame {index + 1} of {count} is {img.size[0]}×{img.size[1]}, not "
                                     f"the {width}×{height} of the first; frames of one size only")
            img.load()
        frames.append(_frame_array(img))
        source.durations.append(max(0, round(float(img.info.get("duration") or 0))))
    channels = max(f.shape[2] for f in frames)
    source.frames = [_widen(f, channels) for f in frames]


@contextlib.contextmanager
def _parse_errors(path: Path, what: str) -> Iterator[None]:
    """Report Pillow's parsing failures inside the block as :class:`ImageReadError` naming ``path`` and ``what``
    (kept to Pillow calls, so that a bug of esrkit's own still shows its traceback)."""
    try:
        yield
    except _PILLOW_PARSE_ERRORS as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageReadError(f"{path}: cannot decode image ({what}: {detail})") from None


def _widen(frame: np.ndarray, channels: int) -> np.ndarray:
    """``frame`` with ``channels`` channels: grey replicated to RGB, an opaque alpha added (frames of a GIF or
    APNG may differ in mode; an animation's frames are made alike)."""
    if frame.shape[2] == channels:
        return frame
    colour = np.repeat(frame, 3, axis=2) if frame.shape[2] == 1 else frame
    if channels == 4:
        return np.concatenate([colour, np.full_like(colour[..., :1], np.iinfo(frame.dtype).max)], axis=2)
    return colour


def _frame_array(img: Image.Image) -> np.ndarray:
    """The current frame as H×W×C (grey, RGB or RGBA; uint16 for 16-bit grey)."""
    mode = img.mode
    if mode in GREY16_MODES:
        return grey16_array(img)[:, :, None]
    keyed = "transparency" in img.info  # a palette's alpha, or a colour key (tRNS) of an L or RGB image
    if mode in ("1", "L") and not keyed:
        return np.asarray(img.convert("L"), dtype=np.uint8)[:, :, None]
    if mode in ("P", "L", "RGB"):
        mode = "RGBA" if keyed else "RGB"
    elif mode in ("LA", "La", "PA", "RGBa", "RGBA"):
        mode = "RGBA"
    else:
        mode = "RGB"  # RGB itself, and CMYK, YCbCr, LAB, HSV, RGBX, F converted as read_image converts them
    return np.asarray(img.convert(mode) if img.mode != mode else img, dtype=np.uint8).copy()


def _deep_colour(path: Path, img: Image.Image) -> bool:
    """True for a 16-bit colour (or grey+alpha) PNG or TIFF, which Pillow would reduce to 8 bits (a colour key
    is not looked for here: FFmpeg ignores it, and it is rare at 16 bits)."""
    if img.mode not in ("RGB", "RGBA", "LA"):
        return False
    if img.format == "PNG":
        with open(path, "rb") as fh:
            head = fh.read(26)  # signature (8), IHDR length and type (8), width, height (8), depth, colour type
        return len(head) == 26 and head[12:16] == b"IHDR" and head[24] == 16
    if img.format == "TIFF":
        bits = getattr(img, "tag_v2", {}).get(258)  # BitsPerSample
        return isinstance(bits, tuple) and 16 in bits
    return False


def _decode_deep(path: Path, img: Image.Image) -> np.ndarray:
    """A 16-bit colour PNG/TIFF at full depth, decoded by FFmpeg (PyAV) once Pillow has checked its header."""
    import av

    alpha = img.mode in ("RGBA", "LA")  # grey+alpha comes back as RGBA, like 8-bit LA
    try:
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0))
            array = frame.reformat(format="rgba64le" if alpha else "rgb48le").to_ndarray()
    except (av.FFmpegError, StopIteration, OSError, ValueError) as exc:
        raise ImageReadError(f"{path}: cannot decode its 16-bit samples ({str(exc).splitlines()[0] or exc!r})"
                             ) from None
    if array.shape[:2] != (img.size[1], img.size[0]):
        raise ImageReadError(f"{path}: its 16-bit samples decode to {array.shape[1]}×{array.shape[0]}, not the "
                             f"{img.size[0]}×{img.size[1]} its header states")
    return array.astype(np.uint16, copy=False)
