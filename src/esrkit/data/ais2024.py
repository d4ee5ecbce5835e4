"""The AIS 2024 real-time 4K SR degradation, exactly: FFmpeg's Lanczos ÷4, then SVT-AV1 AVIF at a fixed QP.

The survey (Conde et al., CVPRW 2024, §2 "Compression and Downsampling") made every LR image with one FFmpeg
command, at QP 31, 39, 47, 55 and 63::

    ffmpeg -hide_banner -y -loglevel error -i ../1.png
        -vf 'scale=ceil(iw/4):ceil(ih/4):flags=lanczos+accurate_rnd+full_chroma_int:sws_dither=none:param0=5'
        -c:v libsvtav1 -qp 31 -preset 5 1_4x_qp31.avif

esrkit runs that command, argument for argument (only the two file names differ), with the FFmpeg binary of the
``imageio-ffmpeg`` wheel, whose build includes ``libsvtav1``. Nothing is re-implemented: swscale's fixed-point
Lanczos (a = 5, ``param0=5``), its RGB → YUV 4:2:0 conversion and the encoder are FFmpeg's own, so the AVIF file
is the one the command line writes, byte for byte (``tests/test_ais2024.py`` runs the literal command from the
notes and compares the bytes).

What the bytes depend on, measured with this build:

* **the pixels, not the file**: esrkit hands FFmpeg the 8-bit RGB pixels it scores against (after any crop), as a
  PNG holding nothing else. For an 8-bit RGB PNG without colour chunks that is the same AVIF as the command run on
  the original file. A PNG with ``gAMA``/``sRGB`` chunks makes FFmpeg copy colour tags into the AVIF (3 bytes
  more); the decoded pixels are identical, so scores are unaffected;
* **not the thread count** (1 and 2 cores give the same file), nor the PNG compression level;
* **the FFmpeg/SVT-AV1 build**: the cache key therefore holds ``ffmpeg -version``'s first line.

Decoding back to RGB. The survey names no decoder; the only tool it names for the whole LR pipeline is FFmpeg,
and the evaluation code it points to (``eduardzamfir/NTIRE23-RTSR``) reads LR files with OpenCV (KAIR's
``imread_uint``), which could not read AVIF in 2024, so the AVIF files had to be turned into RGB by another
tool; FFmpeg, which wrote them, is the one the notes give. esrkit therefore decodes with the same binary the way
``ffmpeg -i x_4x_qp31.avif x.png`` does (dav1d, then swscale's default YUV → RGB with BT.601 limited range, the
AVIF being tagged "unspecified"; the raw ``rgb24`` output here is pixel-identical to that PNG). AV1 decoding is
normative, so any decoder gives the same YUV planes; only the YUV → RGB step differs. Pillow's AVIF decoder
(libavif) upsamples chroma bilinearly where FFmpeg's default path repeats it; they differ by up to ~20 levels at
colour edges (Set5 LR at QP31: 32-40 dB apart, Pillow's LR 1.1-1.5 dB closer to the un-encoded Lanczos LR in
RGB). On Set5 + Set14 (HR cropped to multiples of 24, mean PSNR-Y of QP31 and QP63) Pillow's decoding raises
Lanczos by 0.036 dB and Δ by 0.044 dB (CASR) and 0.038 dB (light SAFMN++); FFmpeg with ``full_chroma_int``
bilinear chroma gives Pillow's numbers, so the released weights favour smooth chroma and do not reveal which
decoder the organizers used. ``decoder="pillow"`` selects Pillow, so the gap can be measured on any data.

The Lanczos baseline (:func:`lanczos_upscale`): the survey prints "Baseline Lanczos" without a command. esrkit
upscales the decoded RGB LR with the same swscale Lanczos as the degradation (a = 5, ``accurate_rnd``,
``full_chroma_int``, no dither), ``scale=iw*4:ih*4``, RGB in and RGB out; FFmpeg scales ``rgb24`` as planar
RGB, so this is a per-channel Lanczos-5 (within ±2 levels of a float64 Lanczos-5 with clamped borders). It sees
the same RGB LR as the SR model, so Δ compares the two on identical input.

Caching. Encoding a 4K image takes about a second. :func:`degrade` keeps the AVIF and its decoded PNG under
``$ESRKIT_CACHE/ais2024/`` (default ``~/.cache/esrkit``), keyed by the SHA-256 of the pixels and their shape, the
QP, the command template and the FFmpeg version line; a hit returns exactly the stored bytes and pixels, and
writes are atomic, so parallel workers may share one cache.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import EsrkitError, ImageReadError, InputError
from ..fileio import atomic_path
from .datasets import cache_root

__all__ = [
    "DECODERS",
    "DOWNSCALE_FILTER",
    "PRESET",
    "QPS",
    "SCALE",
    "UPSCALE_FILTER",
    "AvifLR",
    "FFmpegError",
    "cache_dir",
    "check_qp",
    "check_qps",
    "clear_cache",
    "content_key",
    "decode_avif",
    "degrade",
    "encode_avif",
    "encode_command",
    "ffmpeg_exe",
    "ffmpeg_version",
    "lanczos_upscale",
]

#: The challenge's QP values (larger = more compression); Table 1 prints QP31 and QP63.
QPS: tuple[int, ...] = (31, 39, 47, 55, 63)
#: The challenge's factor: 540p → 4K.
SCALE = 4
#: SVT-AV1 preset of the survey's command.
PRESET = 5
#: The survey's ``-vf`` argument, verbatim.
DOWNSCALE_FILTER = "scale=ceil(iw/4):ceil(ih/4):flags=lanczos+accurate_rnd+full_chroma_int:sws_dither=none:param0=5"
#: The baseline's ×4 upscale: the degradation's scaler settings in the other direction.
UPSCALE_FILTER = "scale=iw*4:ih*4:flags=lanczos+accurate_rnd+full_chroma_int:sws_dither=none:param0=5"
#: How the AVIF is turned back into RGB (see the module docstring for why FFmpeg is the default).
DECODERS = ("ffmpeg", "pillow")

_TIMEOUT_S = 600  # one 8K image encodes in a few seconds; a hung process must not hang a training run


class FFmpegError(EsrkitError):
    """FFmpeg is missing, lacks ``libsvtav1``, or failed on an input (the message carries its last error line)."""


# ---------------------------------------------------------------------------------------------------- binary


def ffmpeg_exe() -> str:
    """Path of the FFmpeg binary bundled by ``imageio-ffmpeg`` (``$IMAGEIO_FFMPEG_EXE`` overrides it).

    The bundled build is used rather than a system ``ffmpeg`` because its ``libsvtav1`` is what makes the
    survey's command runnable everywhere, and one known build keeps cached encodes valid across machines.
    """
    try:
        import imageio_ffmpeg
    except ImportError:
        raise FFmpegError("the AIS 2024 degradation needs FFmpeg: pip install 'imageio-ffmpeg>=0.5'") from None
    try:
        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except RuntimeError as exc:
        raise FFmpegError(f"imageio-ffmpeg has no FFmpeg binary for this platform ({exc})") from None


@functools.lru_cache(maxsize=4)
def _version_of(exe: str) -> str:
    out = _run([exe, "-hide_banner", "-version"], what="ffmpeg -version")
    first = out.decode("utf-8", "replace").splitlines()
    if not first:
        raise FFmpegError(f"{exe}: -version printed nothing")
    encoders = _run([exe, "-hide_banner", "-encoders"], what="ffmpeg -encoders").decode("utf-8", "replace")
    if "libsvtav1" not in encoders:
        raise FFmpegError(f"{exe} has no libsvtav1 encoder; the AIS 2024 degradation needs it (imageio-ffmpeg>=0.5)")
    return first[0].strip()


def ffmpeg_version(exe: str | None = None) -> str:
    """First line of ``ffmpeg -version`` (it names the build, hence the bundled SVT-AV1); checks libsvtav1."""
    return _version_of(exe or ffmpeg_exe())


def _run(cmd: Sequence[str], *, what: str, stdin: bytes | None = None) -> bytes:
    """Run ``cmd``; its stdout, or :class:`FFmpegError` with the last line FFmpeg printed."""
    try:
        proc = subprocess.run(list(cmd), input=stdin, capture_output=True, timeout=_TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise FFmpegError(f"{cmd[0]}: FFmpeg binary not found") from None
    except subprocess.TimeoutExpired:
        raise FFmpegError(f"{what}: FFmpeg did not finish within {_TIMEOUT_S} s") from None
    if proc.returncode != 0:
        # SVT-AV1 prints its banner on stderr whatever -loglevel says: report FFmpeg's own last line.
        lines = [ln for ln in proc.stderr.decode("utf-8", "replace").splitlines()
                 if ln.strip() and not ln.startswith("Svt[")]
        raise FFmpegError(f"{what}: FFmpeg exited with {proc.returncode}: {lines[-1] if lines else 'no message'}")
    return proc.stdout


# ---------------------------------------------------------------------------------------------- the command


def encode_command(src: str | os.PathLike[str], dst: str | os.PathLike[str], qp: int,
                   exe: str | None = None) -> list[str]:
    """The survey's command as an argument list, for ``src`` → ``dst`` at ``qp`` (argument order kept)."""
    check_qp(qp)
    return [exe or ffmpeg_exe(), "-hide_banner", "-y", "-loglevel", "error", "-i", os.fspath(src),
            "-vf", DOWNSCALE_FILTER, "-c:v", "libsvtav1", "-qp", str(qp), "-preset", str(PRESET), os.fspath(dst)]


def check_qp(qp: int) -> int:
    """``qp`` as an int if it is an AV1 quantizer (0..63; a bool is not a number here)."""
    if isinstance(qp, bool) or not isinstance(qp, int | np.integer) or not 0 <= qp <= 63:
        raise InputError(f"must be an AV1 quantizer in 0..63 (the challenge used {QPS}), got {qp!r}", param="qp")
    return int(qp)


def check_qps(qps: Sequence[int], *, required: Sequence[int] = (), needed_for: str = "this measure") -> tuple[int, ...]:
    """``qps`` as a tuple in the given order (a repeat weights a uniform draw), each a :func:`check_qp`; the
    ``required`` ones must be among them (the challenge's Δ, ``needed_for``, needs QP31 and QP63), and there must
    be one at least. The one check of a QP list: training draws from it, ``esrkit challenge ais2024`` measures it.
    """
    out = tuple(check_qp(q) for q in qps)
    missing = [q for q in required if q not in out]
    if missing:
        needs = " and ".join(f"QP{q}" for q in required)
        raise InputError(f"{needed_for} needs {needs}; add {', '.join(map(str, missing))}", param="qps")
    if not out:
        raise InputError("give at least one QP", param="qps")
    return out


def _check_rgb(image: np.ndarray, param: str) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise InputError(f"expected an H×W×3 uint8 RGB image, got {got}", param=param)
    if min(image.shape[:2]) < 1:
        raise InputError(f"empty image {image.shape}", param=param)
    return np.ascontiguousarray(image)


def _write_plain_png(image: np.ndarray, path: Path) -> None:
    """Pixels only, no ancillary chunks (a ``gAMA``/``sRGB`` chunk would add colour tags to the AVIF).

    Compression level 1: the AVIF does not depend on it (measured), and level 1 is several times faster on 4K.
    """
    from PIL import Image

    Image.fromarray(image, mode="RGB").save(path, format="PNG", compress_level=1)


def encode_avif(hr: np.ndarray, qp: int, exe: str | None = None) -> bytes:
    """The AVIF bytes the survey's command writes for the RGB image ``hr`` at ``qp`` (no cache).

    SVT-AV1 refuses a one-pixel-wide frame (with a misleading "Cannot allocate memory"), so an HR side under 5
    pixels (LR side 1) is an :class:`InputError` here.
    """
    hr = _check_rgb(hr, "hr")
    if min(hr.shape[:2]) < 5:
        raise InputError(f"{hr.shape[1]}×{hr.shape[0]} is too small: the encoder needs an LR of at least 2×2 pixels "
                         "(HR sides of 5 or more)", param="hr")
    qp = check_qp(qp)
    exe = exe or ffmpeg_exe()
    with tempfile.TemporaryDirectory(prefix="esrkit-ais-") as tmp:
        src, dst = Path(tmp) / "1.png", Path(tmp) / f"1_4x_qp{qp}.avif"
        _write_plain_png(hr, src)
        _run(encode_command(src, dst, qp, exe), what=f"AVIF encode (qp {qp})")
        return dst.read_bytes()


def decode_avif(data: bytes | str | os.PathLike[str], decoder: str = "ffmpeg", exe: str | None = None) -> np.ndarray:
    """AVIF (bytes or a file) → H×W×3 uint8 RGB, by FFmpeg (default) or Pillow; see the module docstring."""
    if decoder not in DECODERS:
        raise InputError(f"unknown decoder {decoder!r}; choose one of {', '.join(DECODERS)}", param="decoder")
    blob = data if isinstance(data, bytes) else Path(data).read_bytes()
    if decoder == "pillow":
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(blob)) as img:
                return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise ImageReadError(f"cannot decode AVIF with Pillow ({exc})") from None
    exe = exe or ffmpeg_exe()
    with tempfile.TemporaryDirectory(prefix="esrkit-ais-") as tmp:
        src = Path(tmp) / "lr.avif"  # the AVIF demuxer wants a seekable input, so not a pipe
        src.write_bytes(blob)
        width, height = _avif_size(blob)
        raw = _run([exe, "-hide_banner", "-loglevel", "error", "-i", str(src), "-frames:v", "1",
                    "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], what="AVIF decode")
    if len(raw) != width * height * 3:
        raise ImageReadError(f"AVIF decode gave {len(raw)} bytes for {width}×{height} RGB")
    return np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3).copy()


def _avif_size(blob: bytes) -> tuple[int, int]:
    """Width and height from the ``ispe`` property of the AVIF container (no second FFmpeg run needed)."""
    at = blob.find(b"ispe")
    if not blob[4:12].startswith(b"ftyp") or at < 0 or at + 16 > len(blob):
        raise ImageReadError("not an AVIF file (no ftyp box or no image size property)")
    width = int.from_bytes(blob[at + 8:at + 12], "big")
    height = int.from_bytes(blob[at + 12:at + 16], "big")
    if width < 1 or height < 1:
        raise ImageReadError(f"AVIF declares an empty image ({width}×{height})")
    return width, height


def lanczos_upscale(lr: np.ndarray, scale: int = SCALE, exe: str | None = None) -> np.ndarray:
    """The Lanczos baseline: FFmpeg swscale Lanczos-5 ×``scale`` of an RGB image, RGB in and out (see above)."""
    lr = _check_rgb(lr, "lr")
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise InputError(f"must be a positive integer, got {scale!r}", param="scale")
    vf = UPSCALE_FILTER if scale == SCALE else UPSCALE_FILTER.replace("*4", f"*{scale}")
    h, w = lr.shape[:2]
    raw = _run([exe or ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
                "-s", f"{w}x{h}", "-i", "-", "-vf", vf, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
               what="Lanczos upscale", stdin=lr.tobytes())
    if len(raw) != h * scale * w * scale * 3:
        raise FFmpegError(f"Lanczos upscale gave {len(raw)} bytes for {w * scale}×{h * scale} RGB")
    return np.frombuffer(raw, dtype=np.uint8).reshape(h * scale, w * scale, 3).copy()


# ------------------------------------------------------------------------------------------------ with cache


@dataclass(frozen=True)
class AvifLR:
    """One degraded image: the decoded RGB LR, the AVIF bytes, the QP, whether the AVIF came from the cache,
    the content key, and the cached decoded PNG (``None`` without a cache)."""

    lr: np.ndarray
    avif: bytes
    qp: int
    cached: bool
    key: str
    lr_path: Path | None = None


def content_key(hr: np.ndarray) -> str:
    """SHA-256 of the pixels and their shape: the image part of the cache key (the file name plays no part)."""
    hr = _check_rgb(hr, "hr")
    digest = hashlib.sha256(f"{hr.shape[0]}x{hr.shape[1]}x3|".encode())
    digest.update(memoryview(hr).cast("B"))
    return digest.hexdigest()


def _recipe_id(version: str) -> str:
    """What the bytes depend on besides pixels and QP: the command template and the FFmpeg build."""
    spec = "|".join([version, DOWNSCALE_FILTER, "libsvtav1", f"preset {PRESET}", "plain-png-input"])
    return hashlib.sha256(spec.encode()).hexdigest()[:16]


def cache_dir(cache: str | os.PathLike[str] | None = None, exe: str | None = None) -> Path:
    """The cache folder of this FFmpeg build (``cache``, default ``$ESRKIT_CACHE/ais2024``, then the build id)."""
    version = ffmpeg_version(exe)
    base = Path(cache) if cache is not None else cache_root() / "ais2024"
    folder = base / _recipe_id(version)
    stamp = folder / "ffmpeg-version.txt"
    if not stamp.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(stamp) as tmp:
            Path(tmp).write_text(version + "\n" + DOWNSCALE_FILTER + "\n", encoding="utf-8")
    return folder


def degrade(hr: np.ndarray, qp: int, *, decoder: str = "ffmpeg", cache: bool | str | os.PathLike[str] = True,
            exe: str | None = None) -> AvifLR:
    """The AIS 2024 LR of ``hr`` at ``qp``: the survey's command, then decoding (``decoder``), cached.

    ``hr`` is the H×W×3 uint8 RGB image exactly as it will be scored (crop it first; the LR is
    ``ceil(H/4)×ceil(W/4)``, so crop to multiples of 4 for an exact ×4 geometry). ``cache``: ``True`` uses
    ``$ESRKIT_CACHE/ais2024``, a path uses that folder, ``False`` encodes every time.
    """
    if decoder not in DECODERS:
        raise InputError(f"unknown decoder {decoder!r}; choose one of {', '.join(DECODERS)}", param="decoder")
    qp = check_qp(qp)
    hr = _check_rgb(hr, "hr")
    exe = exe or ffmpeg_exe()
    key = content_key(hr)
    if cache is False:
        avif = encode_avif(hr, qp, exe)
        return AvifLR(decode_avif(avif, decoder, exe), avif, qp, False, key)
    folder = cache_dir(None if cache is True else cache, exe) / key[:2]
    avif_path = folder / f"{key}_qp{qp}.avif"
    png_path = folder / f"{key}_qp{qp}.{decoder}.png"
    from .io import read_image, write_image

    cached = avif_path.is_file()
    if cached:
        avif = avif_path.read_bytes()
    else:
        avif = encode_avif(hr, qp, exe)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(avif_path) as tmp:
            Path(tmp).write_bytes(avif)
    if cached and png_path.is_file():
        return AvifLR(read_image(png_path), avif, qp, True, key, png_path)
    lr = decode_avif(avif, decoder, exe)
    write_image(png_path, lr)
    return AvifLR(lr, avif, qp, cached, key, png_path)


def clear_cache(cache: str | os.PathLike[str] | None = None) -> None:
    """Remove every cached AIS 2024 encode (all FFmpeg builds) under ``cache`` or the default folder."""
    base = Path(cache) if cache is not None else cache_root() / "ais2024"
    if base.is_dir():
        shutil.rmtree(base)
