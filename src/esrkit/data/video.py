"""Video in, video out, frame by frame: decode → a per-frame function (the SR model) → encode, through PyAV.

What is kept, and how:

* **frame count and timing**: every decoded frame is encoded once, with its own presentation timestamp in the
  input stream's time base, so constant *and* variable frame rates survive; the output stream declares the
  input's average rate. Frames are never dropped or duplicated to fit a nominal rate;
* **audio**: every audio stream is *remuxed* (its packets copied, not re-encoded), so the sound is bit-identical
  and costs nothing. The output container has the input's type (the output keeps the input's extension), so
  whatever audio codec the input held, the output container can hold too;
* **frames in memory**: one at a time, plus the encoder's look-ahead and threads, which are sized to a fixed
  budget of frames (:mod:`esrkit.data.encoder_memory`), so a long video, or an 8K output, costs a bounded amount.

What is not kept: subtitle/data streams and chapters (dropped), bit depth above 8 (frames are decoded to 8-bit
RGB because the SR models are trained on 8-bit RGB), HDR/colour metadata and rotation side data. The video is
re-encoded with H.264 (``libx264``, CRF 17, near-transparent for SR output) in MP4/MOV/MKV/AVI, and VP9 in WebM;
chroma is 4:2:0 when the output size is even and 4:4:4 when not (4:2:0 needs even sides).

The output is written through :func:`esrkit.fileio.atomic_path`, so a corrupt frame, a full disk or an
interrupt leaves no partial video behind. Decoding problems are :class:`~esrkit.errors.ImageReadError` naming
the file (and the frame, when one frame is bad).

**Limits** (hostile or broken streams get a one-line error, never a hang or a runaway allocation):

* **frame size**: the header's width × height must be within :func:`esrkit.data.io.max_pixels` (the image
  readers' limit, ``$ESRKIT_MAX_PIXELS``); it is checked before any frame is decoded, handed to FFmpeg's decoders as
  their ``max_pixels`` option (with 2× headroom, as decoders count their aligned picture size), so a picture far
  larger than the header said fails to decode, and checked again on every decoded frame (a stream may change size);
* **frame count**: at most ``max_frames`` frames (default ``$ESRKIT_MAX_FRAMES``, else :data:`DEFAULT_MAX_FRAMES`
  = 1 000 000: 11.6 hours at 24 fps, 4.6 hours at 60 fps, longer than any film, so only a live, looping or endless
  source reaches it). Memory is one frame whatever the length; this bounds the time and the output's disk space;
* **not a file**: pipes, devices and sockets (``/dev/zero``, a FIFO) are refused before they are opened, since
  reading them may never end;
* **audio before the first video frame**: at most :data:`MAX_PENDING_AUDIO` packets (about 3.5 minutes of AAC) are
  held while waiting for a decodable video frame; a file that has none by then is broken, not slow;
* **truncated files**: an MP4 cut short loses its index and does not open; a Matroska file (or an MP4 with its
  index first) cut short still opens and its demuxer ends quietly at the cut, so the end reached by the streams
  is compared with the duration the header declares, and a shortfall over max(1 s, 5 %) is an error.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ImageReadError, InputError
from ..fileio import atomic_path
from ..output_guard import WRITE_ERRNOS, write_error
from .encoder_memory import bounded_options
from .io import check_pixels, max_pixels

__all__ = ["DEFAULT_MAX_FRAMES", "VIDEO_EXTENSIONS", "VideoInfo", "VideoResult", "is_video_file", "max_frames",
           "probe_video", "upscale_video"]

DEFAULT_MAX_FRAMES = 1_000_000
MAX_FRAMES_ENV = "ESRKIT_MAX_FRAMES"
MAX_PENDING_AUDIO = 10_000  # AAC packets are 1024 samples: 10 000 of them are 213 s at 48 kHz
_FFMPEG_INT_MAX = 2**31 - 1  # FFmpeg's max_pixels option is an int

# extension → FFmpeg muxer. The muxer is named explicitly because the temporary file atomic_path writes has a
# ``.part`` suffix from which FFmpeg could not guess it.
VIDEO_EXTENSIONS: dict[str, str] = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
    ".webm": "webm",
    ".avi": "avi",
}

# muxer → (encoder, encoder options) in order of preference; the first one this FFmpeg build has is used.
_ENCODERS: dict[str, tuple[tuple[str, dict[str, str]], ...]] = {
    "webm": (("libvpx-vp9", {"crf": "20", "b": "0"}), ("libvpx", {"crf": "10", "b": "4M"})),
}
_DEFAULT_ENCODERS: tuple[tuple[str, dict[str, str]], ...] = (
    ("libx264", {"crf": "17", "preset": "medium"}),
    ("mpeg4", {"qscale": "2"}),
)


def is_video_file(path: str | os.PathLike[str]) -> bool:
    """True when the name has one of the video extensions esrkit can write back (case-insensitive)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def _av() -> Any:
    try:
        import av
    except ImportError:  # pragma: no cover - av is a dependency
        raise InputError("video needs PyAV: pip install av") from None
    return av


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` read from a container's header (no frame decoded)."""

    width: int
    height: int
    frames: int | None  # None when the container does not declare it (Matroska, WebM)
    rate: Fraction | None
    audio_streams: int
    codec: str


@dataclass(frozen=True)
class VideoResult:
    """What :func:`upscale_video` wrote."""

    frames: int
    width: int
    height: int
    audio_streams: int


def _read_error(path: Path, exc: BaseException, done: int | None = None) -> ImageReadError:
    """One line naming the file; ``done`` frames were decoded before the bad one (decoders buffer a few frames,
    so the exact index of the bad frame is not known)."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    where = f" after {done} good frame(s)" if done is not None else ""
    return ImageReadError(f"{path}: cannot be decoded{where} ({text})")


def _failure(src: Path, dst: Path, exc: BaseException, done: int) -> Exception:
    """A failure while decoding, encoding or muxing: the output's one line when the system refused the write (a
    full disk, a file too large), else the input's."""
    if getattr(exc, "errno", None) in WRITE_ERRNOS:
        return write_error(dst, exc)  # type: ignore[arg-type]
    return _read_error(src, exc, done=done)


def max_frames() -> int | None:
    """The frame limit :func:`upscale_video` applies by default: ``$ESRKIT_MAX_FRAMES`` (``0``/``none``: no limit),
    else :data:`DEFAULT_MAX_FRAMES`."""
    raw = os.environ.get(MAX_FRAMES_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_FRAMES
    if raw.lower() in ("0", "none", "unlimited"):
        return None
    try:
        limit = int(raw.replace("_", ""))
    except ValueError:
        limit = -1
    if limit <= 0:
        raise InputError(f"${MAX_FRAMES_ENV}={raw!r}: expected a frame count such as 100000, or 0 for no limit")
    return limit


def _check_source(path: Path) -> None:
    """A missing path is an InputError; so is anything but a regular file (a FIFO or device may never end)."""
    if not path.exists():
        raise InputError(f"{path}: no such video file")
    if not path.is_file():
        raise InputError(f"{path}: not a regular file (pipes and devices are not read: they may never end)")


def _open_input(av: Any, path: Path) -> Any:
    """Open ``path`` for reading, check the header's frame size, and hand the pixel limit to FFmpeg (the open
    options, which reach the probing FFmpeg does while opening, and the video decoder's ``max_pixels``)."""
    limit = max_pixels()
    # decoders count their aligned picture size, a little over the header's: the headroom keeps a file at the
    # limit readable while a picture far beyond what its header said still fails to decode
    options = {"max_pixels": str(min(2 * limit + 65536, _FFMPEG_INT_MAX))} if limit is not None else None
    try:
        # metadata (title, encoder…) is free text in any encoding: undecodable bytes must not make a video unreadable
        container = av.open(str(path), options=options, metadata_errors="replace")
    except av.error.FFmpegError as exc:
        raise _read_error(path, exc) from None
    try:
        if not container.streams.video:
            raise ImageReadError(f"{path}: no video stream")
        ctx = container.streams.video[0].codec_context
        if ctx is None:  # PyAV leaves it None when this FFmpeg has no decoder for the stream's codec
            raise ImageReadError(f"{path}: the video stream's codec cannot be decoded (unknown or unsupported)")
        check_pixels(path, ctx.width, ctx.height, what="video header")
        if options is not None:
            ctx.options = {**(ctx.options or {}), **options}  # the decoder is opened at the first packet
    except BaseException:
        container.close()
        raise
    return container


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """The size, declared frame count, rate and audio streams of ``path``; ImageReadError when it is not a video
    or its frames are larger than :func:`esrkit.data.io.max_pixels`."""
    av = _av()
    path = Path(path)
    _check_source(path)
    try:
        with _open_input(av, path) as container:
            stream = container.streams.video[0]
            return VideoInfo(width=stream.codec_context.width, height=stream.codec_context.height,
                             frames=int(stream.frames) or None, rate=_rate(stream),
                             audio_streams=len(container.streams.audio), codec=stream.codec_context.name)
    except av.error.FFmpegError as exc:
        raise _read_error(path, exc) from None


def _rate(stream: Any) -> Fraction | None:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return Fraction(rate) if rate else None


def _encoder(av: Any, muxer: str) -> tuple[str, dict[str, str]]:
    for name, options in _ENCODERS.get(muxer, _DEFAULT_ENCODERS):
        try:
            av.codec.Codec(name, "w")
        except Exception:  # PyAV raises different types per version for a missing codec
            continue
        return name, dict(options)
    raise InputError(f"this FFmpeg build has no video encoder for {muxer} files")


def _copy_stream(output: Any, template: Any, dst: Path) -> Any:
    """An output stream copying ``template``'s codec parameters (``add_stream_from_template`` from PyAV 14,
    ``add_stream(template=...)`` before); a container that cannot hold the codec is an :class:`InputError`."""
    if template.codec_context is None:  # PyAV has no parameters for a codec this FFmpeg does not know
        raise ImageReadError(f"{template.container.name}: audio stream {template.index} has an unknown codec, so it "
                             "cannot be copied")
    add = getattr(output, "add_stream_from_template", None)
    try:
        return add(template) if add is not None else output.add_stream(template=template)
    except ValueError as exc:
        raise InputError(f"{dst}: cannot copy the {template.codec_context.name} audio into this container "
                         f"({exc}); keep the input's extension") from None


def upscale_video(src: str | os.PathLike[str], dst: str | os.PathLike[str],
                  fn: Callable[[np.ndarray], np.ndarray], *,
                  on_frame: Callable[[int], None] | None = None,
                  frame_limit: int | str | None = "default") -> VideoResult:
    """Decode ``src``, map every frame (H×W×3 uint8 RGB) through ``fn``, encode to ``dst`` with the audio copied.

    ``fn`` must return frames of one fixed size (an SR model does). ``dst``'s extension picks the container
    (see :data:`VIDEO_EXTENSIONS`); it is written atomically. ``on_frame`` is called with the count of frames done.
    ``frame_limit`` caps the frames decoded (``"default"``: :func:`max_frames`; None: no cap); a stream with more
    is an :class:`~esrkit.errors.ImageReadError` and leaves no output (the module docstring lists every limit).
    """
    av = _av()
    src, dst = Path(src), Path(dst)
    _check_source(src)
    most = max_frames() if frame_limit == "default" else frame_limit
    if most is not None and (isinstance(most, bool) or not isinstance(most, int) or most <= 0):
        raise InputError(f"must be a positive frame count or None, got {frame_limit!r}", param="frame_limit")
    muxer = VIDEO_EXTENSIONS.get(dst.suffix.lower())
    if muxer is None:
        raise InputError(f"{dst}: cannot write {dst.suffix or 'extension-less'} video; use one of "
                         f"{', '.join(VIDEO_EXTENSIONS)}")
    encoder, options = _encoder(av, muxer)
    cfr = muxer == "avi"
    pixel_limit = max_pixels()
    source = _open_input(av, src)
    with source, atomic_path(dst) as tmp:
        vin = source.streams.video[0]
        vin.thread_type = "AUTO"
        audio_in = list(source.streams.audio)
        with av.open(str(tmp), "w", format=muxer) as sink:
            audio_out = {s.index: _copy_stream(sink, s, dst) for s in audio_in}
            vout = None  # created at the first frame, when the output size is known
            pending: list[Any] = []  # audio packets demuxed before the first video frame
            count = 0
            next_pts = 0
            rate = _rate(vin)
            step = float(1 / rate) if rate else 0.0  # a frame's display time, for where the stream ends
            reached = 0.0  # seconds: the latest end of any frame or audio packet read

            def encode(frame: Any | None) -> None:
                for packet in vout.encode(frame):
                    sink.mux(packet)

            try:
                for packet in source.demux(vin, *audio_in):
                    if packet.stream.type == "audio":
                        if packet.dts is None:  # demuxer flush packet
                            continue
                        if packet.pts is not None and packet.time_base is not None:
                            reached = max(reached, float((packet.pts + (packet.duration or 0)) * packet.time_base))
                        packet.stream = audio_out[packet.stream.index]
                        if vout is None:  # the header is written at the first mux: all streams must exist
                            if len(pending) >= MAX_PENDING_AUDIO:
                                raise ImageReadError(f"{src}: no decodable video frame within the first "
                                                     f"{MAX_PENDING_AUDIO} audio packets (broken video stream)")
                            pending.append(packet)
                        else:
                            sink.mux(packet)
                        continue
                    try:
                        frames = packet.decode()
                    except av.error.FFmpegError as exc:
                        raise _read_error(src, exc, done=count) from None
                    for frame in frames:
                        if pixel_limit is not None and frame.width * frame.height > pixel_limit:
                            check_pixels(src, frame.width, frame.height, what=f"video frame {count + 1}")
                        if most is not None and count >= most:
                            raise ImageReadError(f"{src}: more than {most} frames (the limit; a broken, looping or "
                                                 f"endless stream? raise ${MAX_FRAMES_ENV} to read it anyway)")
                        if frame.pts is not None:
                            reached = max(reached, float(frame.pts * vin.time_base) + step)
                        sr = np.ascontiguousarray(fn(frame.to_ndarray(format="rgb24")))
                        if vout is None:
                            vout = _video_stream(sink, encoder, options, vin, sr.shape[1], sr.shape[0], cfr)
                            for held in pending:
                                sink.mux(held)
                            pending.clear()
                        out = av.VideoFrame.from_ndarray(sr, format="rgb24")
                        if cfr:
                            out.pts, out.time_base = count, vout.codec_context.time_base
                        else:
                            out.pts = frame.pts if frame.pts is not None else next_pts
                            out.time_base = vin.time_base
                            next_pts = out.pts + 1
                        encode(out)
                        count += 1
                        if on_frame is not None:
                            on_frame(count)
            except av.error.FFmpegError as exc:
                raise _failure(src, dst, exc, count) from None
            if vout is None:
                raise ImageReadError(f"{src}: no decodable video frame")
            _check_complete(av, source, src, reached, count)
            try:
                encode(None)  # flush the encoder's look-ahead
            except av.error.FFmpegError as exc:  # e.g. timestamps the muxer refuses, carried over from the input
                raise _failure(src, dst, exc, count) from None
            # The trailer (MP4's index, Matroska's cues) is written here rather than by the with-block's exit, so
            # that a muxer refusing it is the input's error: timestamps carried over from a file declaring 1141
            # frames per 2,052,263,813 s overflow MP4's index (found by fuzz/).
            try:
                sink.close()
            except av.error.FFmpegError as exc:
                if getattr(exc, "errno", None) in WRITE_ERRNOS:
                    raise write_error(dst, exc) from None  # type: ignore[arg-type]
                reason = getattr(exc, "strerror", None) or type(exc).__name__  # its text names the temporary file
                raise ImageReadError(f"{src}: {count} frame(s) decoded, but their timestamps cannot be stored in "
                                     f"a {dst.suffix} file ({reason}; frame rate {rate} from the input)") from None
    return VideoResult(frames=count, width=vout.codec_context.width, height=vout.codec_context.height,
                       audio_streams=len(audio_in))


def _check_complete(av: Any, container: Any, path: Path, reached: float, frames: int) -> None:
    """Refuse a file cut short: its header still declares the whole duration, but every stream (video and
    audio alike) stops early, which FFmpeg's demuxers report as a normal end (Matroska, MP4 with its index
    first). Streams may legitimately differ in length, so what counts is the latest end of any of them, and a
    second (or 5 %) of slack absorbs rounding and encoder delay."""
    if not container.duration:
        return  # not declared (live recordings, some WebM): nothing to compare with
    declared = container.duration / av.time_base
    start = (container.start_time or 0) / av.time_base
    missing = declared - (reached - start)
    if missing > max(1.0, 0.05 * declared):
        raise ImageReadError(f"{path}: streams end after {reached - start:.1f} s of the {declared:.1f} s its header "
                             f"declares ({frames} frame(s) decoded): truncated or corrupt")


def _video_stream(sink: Any, encoder: str, options: dict[str, str], vin: Any, width: int, height: int,
                  cfr: bool) -> Any:
    """The encoder stream; ``cfr`` (AVI) numbers frames 0, 1, 2… at 1/rate, the only timing AVI can store."""
    rate = _rate(vin) or Fraction(25)
    # 4:2:0 subsamples chroma by two in both directions, so it needs even sides.
    pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    # look-ahead and threads sized so the encoder's frames stay within a fixed budget at any output size
    options = bounded_options(encoder, options, width, height, pix_fmt)
    stream = sink.add_stream(encoder, rate=rate, options=options)
    stream.width, stream.height = width, height
    stream.pix_fmt = pix_fmt
    # otherwise the input's timestamps stay exact (variable frame rate included)
    time_base = 1 / rate if cfr else vin.time_base
    stream.time_base = time_base
    stream.codec_context.time_base = time_base
    return stream
