"""Image reading and writing with one defined in-memory form.

Every reader returns an ``H×W×3`` RGB ``numpy.uint8`` array (or float32 in [0, 1] with ``dtype="float32"``),
whatever the file holds, because SR models and the challenges' metrics are defined on 8-bit RGB:

* grayscale (``L``, ``I;16``, ``I``) is replicated to three channels;
* palette images are expanded through their palette;
* alpha is **dropped** (not composited): SR benchmarks have no transparency, and compositing would invent a
  background colour. ``esrkit upscale`` keeps alpha, 16 bits, frames and metadata through
  :mod:`esrkit.data.image_meta` instead;
* 16-bit grayscale is read at full precision and mapped to 8 bits by ``round(v / 257)`` (exact inverse of the
  ``v * 257`` widening), or to float by ``v / 65535``. 16-bit RGB PNGs are reduced to 8 bits by Pillow's decoder
  (high byte) before we see them; this is documented rather than hidden.

Writers are atomic: the image is encoded into a temporary file in the destination folder and renamed over the
target, so an interrupted or failed write never leaves a partial image behind.

**Size limit (decompression bombs).** A file's header states its size before any pixel is decoded, and a few
hundred bytes of PNG can claim 100 000 × 100 000 pixels (30 GB as RGB). Every reader here, and the video reader
(:mod:`esrkit.data.video`, per frame), checks width × height against :func:`max_pixels` from the header and raises
:class:`~esrkit.errors.ImageReadError` naming the file before decoding, so a bomb costs milliseconds and no
memory. The limit is, in order: :func:`set_max_pixels` (the API), ``$ESRKIT_MAX_PIXELS`` (a pixel count; ``0`` or
``none`` for no limit), else :data:`DEFAULT_MAX_PIXELS` = 178 956 970 pixels. That default is Pillow's own hard
bound (``2 × PIL.Image.MAX_IMAGE_PIXELS``, about 13 400 × 13 400): as 8-bit RGB it is 0.5 GB and as the float32
tensor a model reads 2.1 GB, while the largest benchmark and challenge images (DIV2K, LSDIR, 4K/8K frames) are at
most 33 Mpx, so nothing esrkit is used for comes near it. Pillow warns (``DecompressionBombWarning``) from half that
size; esrkit's explicit limit replaces that warning. Pillow has no per-call limit, only the process-wide
``Image.MAX_IMAGE_PIXELS``, so asking esrkit for more than Pillow's bound raises Pillow's for the whole process.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import ImageReadError, InputError
from ..fileio import atomic_path
from .jpeg_scans import check_jpeg_scans
from .png_encode import encode_png

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".avif")

_WRITE_FORMATS = {".png": "PNG", ".avif": "AVIF", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP",
                  ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}

# Pillow's hard bound, written out so that other code changing PIL.Image.MAX_IMAGE_PIXELS does not move esrkit's.
DEFAULT_MAX_PIXELS = 2 * (1024 * 1024 * 1024 // 4 // 3)
MAX_PIXELS_ENV = "ESRKIT_MAX_PIXELS"
_UNSET = object()
T = TypeVar("T")
_max_pixels_override: object = _UNSET  # set_max_pixels(); _UNSET: the environment or the default decides


def max_pixels() -> int | None:
    """The largest width × height any esrkit reader decodes (None: no limit); see the module docstring.

    Raises :class:`InputError` for a ``$ESRKIT_MAX_PIXELS`` that is not a pixel count.
    """
    if _max_pixels_override is not _UNSET:
        return _max_pixels_override  # type: ignore[return-value]
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_PIXELS
    text = raw.lower().replace("_", "")
    if text in ("0", "none", "unlimited"):
        return None
    try:
        limit = int(float(text)) if "e" in text else int(text)  # 2e8 reads as 200 000 000
    except ValueError:
        limit = -1
    if limit < 0:
        raise InputError(f"${MAX_PIXELS_ENV}={raw!r}: expected a pixel count such as 200000000, or 0 for no limit")
    return limit or None


def set_max_pixels(limit: int | None) -> None:
    """Set the pixel limit for this process (None: no limit), overriding ``$ESRKIT_MAX_PIXELS``; undo with
    :func:`reset_max_pixels`."""
    global _max_pixels_override
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0):
        raise InputError(f"must be a positive pixel count or None, got {limit!r}", param="max_pixels")
    _max_pixels_override = limit


def reset_max_pixels() -> None:
    """Back to ``$ESRKIT_MAX_PIXELS`` or :data:`DEFAULT_MAX_PIXELS`."""
    global _max_pixels_override
    _max_pixels_override = _UNSET


def check_pixels(path: str | os.PathLike[str], width: int, height: int, *, what: str = "image header") -> None:
    """Raise :class:`ImageReadError` naming ``path`` when ``width × height`` exceeds :func:`max_pixels`."""
    limit = max_pixels()
    if limit is not None and width * height > limit:
        raise ImageReadError(f"{path}: {what}: {width}×{height} = {_megapixels(width * height)}, over "
                             f"the limit of {_megapixels(limit)} (a decompression bomb? to read it anyway raise "
                             f"${MAX_PIXELS_ENV} or call esrkit.data.io.set_max_pixels)")


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:,.1f} Mpx" if pixels >= 100_000 else f"{pixels:,} pixels"


def _let_pillow_open(limit: int | None) -> None:
    """Make Pillow's process-wide bound at least esrkit's limit (it only ever grows, and only when asked)."""
    current = Image.MAX_IMAGE_PIXELS
    if current is None:
        return
    if limit is None:
        Image.MAX_IMAGE_PIXELS = None
    elif limit > 2 * current:
        Image.MAX_IMAGE_PIXELS = limit // 2 + 1  # Pillow refuses above twice its value


def _bomb_message(path: Path, exc: BaseException, limit: int | None) -> str:
    """Pillow refused the header itself (its bound is then at most esrkit's): say so in esrkit's words."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    claimed = _megapixels(int(found[1])) if found else "more pixels than allowed"
    bound = 2 * Image.MAX_IMAGE_PIXELS if Image.MAX_IMAGE_PIXELS is not None else limit
    if limit is not None and bound is not None:
        bound = min(bound, limit)
    where = f"the limit of {_megapixels(bound)}" if bound is not None else "Pillow's limit"
    return (f"{path}: image header: {claimed}, over {where} (a decompression bomb? to read it anyway raise "
            f"${MAX_PIXELS_ENV} or call esrkit.data.io.set_max_pixels)")


def is_image_file(path: str | os.PathLike[str]) -> bool:
    """True when the name has one of the readable image extensions (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def read_image(path: str | os.PathLike[str], dtype: str = "uint8") -> np.ndarray:
    """Read an image file into the defined RGB form (see module docstring).

    Raises :class:`InputError` when the path does not exist and :class:`ImageReadError` when it cannot be decoded
    (corrupt, truncated, not an image) or its header claims more than :func:`max_pixels` (checked before decoding).
    """
    array = decode_image(path, _to_rgb_array)
    if dtype == "uint8":
        return array if array.dtype == np.uint8 else _sixteen_to_eight(array)
    if dtype == "float32":
        scale = 255.0 if array.dtype == np.uint8 else 65535.0
        return (array.astype(np.float32) / scale).astype(np.float32)
    raise InputError(f"dtype must be 'uint8' or 'float32', not {dtype!r}")


def decode_image(path: str | os.PathLike[str], convert: Callable[[Image.Image], T]) -> T:
    """Open ``path`` with every check :func:`read_image` makes (pixel limit from the header, TIFF strips), decode
    its first frame and return ``convert(image)``, with decoder failures inside ``convert`` (seeking to a later
    frame, say) reported as :class:`ImageReadError` like the rest. :func:`read_image` converts to the RGB form;
    :mod:`esrkit.data.image_meta` keeps alpha, depth, frames and metadata from the same checked image."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such image file")
    limit = max_pixels()
    _let_pillow_open(limit)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # esrkit's limit replaces the warning
            with Image.open(path) as img:  # reads the header only
                check_pixels(path, img.size[0], img.size[1])
                if img.format == "TIFF":
                    _check_tiff_strips(path, img)
                if img.format in ("JPEG", "MPO"):  # scans × pixels bounds the decode time (see jpeg_scans)
                    check_jpeg_scans(path, img.size[0], img.size[1], limit)
                img.load()  # decode now so truncation surfaces here, not later
                result = convert(img)
    except ImageReadError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageReadError(_bomb_message(path, exc, limit)) from None
    except MemoryError:  # only reachable with the limit raised past what this machine holds
        raise ImageReadError(f"{path}: image does not fit in memory (lower ${MAX_PIXELS_ENV})") from None
    # RuntimeError: Pillow's AVIF decoder on a damaged file, and NotImplementedError for DDS pixel formats;
    # OverflowError: a header field (a McIDAS row stride) too large for the C decoder's int arguments
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, RuntimeError, OverflowError) as exc:
        raise ImageReadError(f"{path}: cannot decode image ({_short(exc)})") from None
    return result


def _check_tiff_strips(path: Path, img: Image.Image) -> None:
    """Refuse a TIFF whose strips (or tiles) cover less than its stated size, as truncated.

    Pillow decodes only the strips a TIFF lists and leaves the rest of the image blank, so a file whose strip list
    is cut short reads as a mostly black image and no error; its size also costs memory and seconds the file does
    not justify (``fuzz/``'s 419-byte finding stated 9 × 7 823 730 pixels, 1 GB decoded, and listed one 9 × 7
    strip). Strips of separate colour planes each cover the image, so they only add up to more.
    """
    extents = [tile[1] for tile in img.tile]
    if not extents or any(e is None for e in extents):
        return  # a decoder that reads the whole image itself (libtiff): it reports truncation on its own
    # A TIFF tag may have any numeric type; strip rows and offsets given as RATIONALs (fuzz/ again) make fractional
    # extents, which Pillow's decoder then fails on with a TypeError.
    if not all(isinstance(v, int) for tile in img.tile for v in (*tile[1], tile[2])):
        raise ImageReadError(f"{path}: cannot decode image (strip offsets or sizes that are not whole numbers: "
                             "corrupt TIFF)")
    covered = sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in extents)
    width, height = img.size
    if covered < width * height:
        raise ImageReadError(f"{path}: cannot decode image (its strips cover {covered:,} of its {width}×{height} "
                             "pixels: truncated or corrupt TIFF)")


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


GREY16_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def grey16_array(img: Image.Image) -> np.ndarray:
    """A 16-bit grey Pillow image (a mode of :data:`GREY16_MODES`) as H×W uint16."""
    grey = np.asarray(img)
    if img.mode == "I":  # 32-bit ints, as Pillow loads some 16-bit PNG/TIFF
        grey = np.clip(grey, 0, 65535)
    return grey.astype(np.uint16)


def _to_rgb_array(img: Image.Image) -> np.ndarray:
    """Pillow image → H×W×3 uint8, or uint16 for 16-bit grayscale (kept precise for the float path)."""
    if img.mode in GREY16_MODES:
        return np.repeat(grey16_array(img)[:, :, None], 3, axis=2)
    mode = img.mode
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode != "RGB":
        img = img.convert("RGB")  # drops alpha, replicates L, converts CMYK/YCbCr/LA
    return np.asarray(img, dtype=np.uint8).copy()


def _sixteen_to_eight(array: np.ndarray) -> np.ndarray:
    return np.floor(array.astype(np.float64) / 257.0 + 0.5).astype(np.uint8)


def write_image(path: str | os.PathLike[str], image: np.ndarray | torch.Tensor, *, quality: int | None = None,
                value_range: float = 1.0) -> Path:
    """Write an RGB image atomically; the format follows the extension (PNG, AVIF, JPEG, WebP, BMP, TIFF).

    ``image`` is an H×W×3 uint8 array, or a tensor (C,H,W)/(1,C,H,W) in ``[0, value_range]`` that is rounded to
    uint8 first. ``quality`` applies to lossy formats (AVIF/JPEG/WebP).

    PNG is written by :func:`esrkit.data.png_encode.encode_png` at zlib level 1, not Pillow's default 6: still
    lossless, and encoding was the largest cost of an upscale after the model (a 3840×2160 ×4 output on a 2-core
    EPYC, Pillow: 0.44-0.64 s at level 1 against 2.7 s at level 6, for a file 26% larger; encode_png: 0.15 s).
    """
    path = Path(path)
    fmt = _WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"{path}: cannot write {path.suffix or 'extension-less'} files; use one of "
                         f"{', '.join(sorted(_WRITE_FORMATS))}")
    array = tensor_to_image(image, value_range) if isinstance(image, torch.Tensor) else image
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and not 1 <= array.shape[2] <= 4):
        raise InputError(f"{path}: expected an H×W×3 uint8 image, got {array.dtype} {array.shape}")
    if fmt == "PNG":
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            encode_png(fh, array)
        return path
    params: dict[str, int] = {} if quality is None else {"quality": int(quality)}
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format=fmt, **params)
    return path


def image_to_tensor(image: np.ndarray, value_range: float = 1.0) -> torch.Tensor:
    """H×W×3 uint8 → 1×3×H×W float32 in ``[0, value_range]`` (1.0 for esrkit models, 255 for EDSR-style code)."""
    if image.dtype != np.uint8:
        raise InputError(f"expected a uint8 image, got {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float()
    tensor = tensor.unsqueeze(0)
    return tensor if value_range == 255.0 else tensor.mul_(value_range / 255.0)


def tensor_to_image(tensor: torch.Tensor, value_range: float = 1.0, *, out: np.ndarray | None = None) -> np.ndarray:
    """(1,)3×H×W tensor in ``[0, value_range]`` → H×W×3 uint8: clipped, then rounded half-to-even exactly like
    the papers' test code (``np.uint8((x.clip(0, 1) * 255).round())``), before any metric is computed.

    ``out`` (an H×W×C uint8 array or view, e.g. the colour of an RGBA image) is filled and returned instead of a
    new array. ``tensor`` is never changed. The work goes a band of rows at a time through one small float buffer
    (transpose while scaling into it, clip and round there in place, then one converting copy into ``out``), so
    the float data is read once and never copied whole. NumPy does it on one thread: torch's own intra-op threads
    on small bands stalled for seconds when another process held the cores. For a 3840×2160 output on the
    2-core EPYC: 0.046 s, where scaling into a new tensor, then converting, transposing and copying took 0.11 s
    (0.05 s against 0.16 s with another process on the cores; ``python benchmarks/image_write.py``).
    """
    if tensor.dim() == 4:
        if tensor.shape[0] != 1:
            raise InputError(f"expected a single image, got a batch of {tensor.shape[0]}")
        tensor = tensor[0]
    if tensor.dim() != 3:
        raise InputError(f"expected a C×H×W tensor, got shape {tuple(tensor.shape)}")
    tensor = tensor.detach().cpu()
    channels, height, width = tensor.shape
    if out is None:
        out = np.empty((height, width, channels), np.uint8)
    elif out.shape != (height, width, channels) or out.dtype != np.uint8:
        raise InputError(f"out must be uint8 {(height, width, channels)}, got {out.dtype} {out.shape}")
    scale = np.float32(255.0 / value_range)  # what torch multiplies a float32 tensor by for the same Python float
    rows = max(1, _TO_IMAGE_BAND // max(1, channels * width))
    buffer = np.empty((min(rows, height), width, channels), np.float32)
    for top in range(0, height, rows):
        band = buffer[: min(rows, height - top)]
        source = tensor[:, top:top + rows].float().numpy()  # a view for float32; half precision is widened
        np.multiply(source.transpose(1, 2, 0), scale, out=band)
        np.clip(band, 0, 255, out=band)
        np.rint(band, out=band)  # half to even, like torch.round and numpy's round
        np.copyto(out[top:top + rows], band, casting="unsafe")  # exact integers: only the type changes
    return out


_TO_IMAGE_BAND = 1 << 18  # floats per band of tensor_to_image: 1 MB, about a core's L2 cache


def mod_crop(image: np.ndarray, scale: int) -> np.ndarray:
    """Crop H and W down to multiples of ``scale`` from the top-left (the benchmarks' HR convention)."""
    h, w = image.shape[:2]
    return image[: h - h % scale, : w - w % scale]
