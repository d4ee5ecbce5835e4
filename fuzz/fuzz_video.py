"""Fuzz target: video decoding (:func:`esrkit.data.video.probe_video` and :func:`~esrkit.data.video.upscale_video`).

Seeds are tiny clips (16×16 or odd sizes, three frames) made at start with PyAV in every container esrkit
writes, with the codecs they usually carry (H.264, MPEG-4 part 2, FFV1, VP9, MJPEG; one with an AAC track, so
the audio remux path runs). An input's first byte picks the file extension (which FFmpeg uses as a probing hint,
and which decides the output container, as in ``esrkit upscale``); the rest is the file. Each input is probed,
then decoded frame by frame through an identity "model" and re-encoded, the whole path of ``esrkit upscale`` on a
video. Contract: a finished :class:`~esrkit.data.video.VideoResult` with at least one frame, or an
:class:`~esrkit.errors.EsrkitError`.
"""

from __future__ import annotations

import _harness
import atheris
import av
import numpy as np

with atheris.instrument_imports(include=["esrkit"]):
    from esrkit.data.video import VIDEO_EXTENSIONS, probe_video, upscale_video

MAX_LEN = 8192
EXTENSIONS = tuple(VIDEO_EXTENSIONS)
_DIR = _harness.scratch_dir()
if hasattr(av, "logging"):
    av.logging.set_level(None)  # FFmpeg's own messages would flood the log; errors still raise

_CLIPS = (  # (extension, codec, pixel format, width, height, with audio)
    (".mp4", "libx264", "yuv420p", 16, 16, False),
    (".mp4", "mpeg4", "yuv420p", 16, 16, True),
    (".mkv", "ffv1", "yuv444p", 15, 13, False),
    (".mkv", "libx264", "yuv444p", 17, 9, False),
    (".webm", "libvpx-vp9", "yuv420p", 16, 16, False),
    (".avi", "mjpeg", "yuvj420p", 16, 16, False),
    (".mov", "mpeg4", "yuv420p", 16, 16, False),
    (".m4v", "libx264", "yuv420p", 8, 8, False),
)


def _clip(ext: str, codec: str, pix_fmt: str, width: int, height: int, audio: bool) -> bytes:
    path = _DIR / f"seed{ext}"
    rng = np.random.default_rng(width * height)
    with av.open(str(path), "w", format=VIDEO_EXTENSIONS[ext]) as out:
        stream = out.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        sound = out.add_stream("aac", rate=8000) if audio else None
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
        if sound is not None:
            for i in range(3):
                samples = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
                samples.sample_rate, samples.pts = 8000, i * 1024
                for packet in sound.encode(samples):
                    out.mux(packet)
            for packet in sound.encode(None):
                out.mux(packet)
    data = path.read_bytes()
    path.unlink()
    return data


def seeds() -> dict[str, bytes]:
    out = {}
    for ext, codec, pix_fmt, width, height, audio in _CLIPS:
        try:
            data = _clip(ext, codec, pix_fmt, width, height, audio)
        except (av.error.FFmpegError, ValueError, LookupError):  # a codec this FFmpeg build lacks
            continue
        out[f"{codec}{ext}{'_aac' if audio else ''}"] = bytes([EXTENSIONS.index(ext)]) + data
    return out


def test_one_input(data: bytes) -> None:
    if not data:
        return
    ext = EXTENSIONS[data[0] % len(EXTENSIONS)]
    src, dst = _DIR / f"input{ext}", _DIR / f"output{ext}"
    src.write_bytes(data[1:])
    try:
        probe_video(src)
        result = upscale_video(src, dst, lambda frame: frame)
        if result.frames < 1 or not dst.is_file():
            raise AssertionError(f"upscale_video reported {result} without writing a video")
    finally:
        dst.unlink(missing_ok=True)


if __name__ == "__main__":
    _harness.main(test_one_input, seeds, MAX_LEN)
