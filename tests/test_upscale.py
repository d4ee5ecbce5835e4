"""``esrkit upscale`` and :mod:`esrkit.infer.jobs`: files, folders, video with audio, sharding under torchrun, and
bad input (one line, exit 2, nothing partial left)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from esrkit.cli import main
from esrkit.data.io import read_image, write_image
from esrkit.errors import ImageReadError, InputError
from esrkit.infer import Upscaler
from esrkit.infer.jobs import plan_jobs, upscale_files
from esrkit.models import create_model
from helpers import REPO

RNG = np.random.default_rng(7)
FPS = 10
SAMPLE_RATE = 16000


def _image(path: Path, h: int = 12, w: int = 10) -> Path:
    write_image(path, RNG.integers(0, 256, (h, w, 3), dtype=np.uint8))
    return path


def _clip(path: Path, frames: int = 8, width: int = 32, height: int = 24) -> Path:
    """A short H.264 clip with an AAC sine tone, made with PyAV (the same library the code under test uses, but
    only its encoder: what is checked is what a reader finds in the file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = container.add_stream("aac", rate=SAMPLE_RATE)
        audio.layout = "mono"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(RNG.integers(0, 256, (height, width, 3), dtype=np.uint8),
                                               format="rgb24")
            frame.pts = i
            container.mux(video.encode(frame))
        container.mux(video.encode())
        t = np.arange(SAMPLE_RATE * frames // FPS) / SAMPLE_RATE
        tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        size = audio.codec_context.frame_size or 1024
        for start in range(0, len(tone), size):
            chunk = av.AudioFrame.from_ndarray(tone[None, start:start + size], format="fltp", layout="mono")
            chunk.sample_rate, chunk.pts = SAMPLE_RATE, start
            container.mux(audio.encode(chunk))
        container.mux(audio.encode())
    return path


def _streams(path: Path) -> dict:
    """What a reader sees in a video file: decoded frame count and size, rate, and the audio packets' bytes."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        rate = video.average_rate
        frames = [f.to_ndarray(format="rgb24").shape for f in container.decode(video=0)]
    with av.open(str(path)) as container:
        audio = container.streams.audio[0]
        info = {"codec": audio.codec_context.name, "rate": audio.codec_context.sample_rate}
        packets = [bytes(p) for p in container.demux(audio) if p.size]
    return {"frames": frames, "rate": Fraction(rate), "audio": info, "audio_packets": packets}


def _listing(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) if root.exists() else []


@pytest.fixture(scope="module")
def bicubic() -> Upscaler:
    return Upscaler(create_model("bicubic", scale=4), 4)


# ------------------------------------------------------------------------------------------------- video


def test_video_round_trip_keeps_frames_rate_and_audio(tmp_path: Path, bicubic: Upscaler) -> None:
    src = _clip(tmp_path / "clip.mp4")
    jobs = plan_jobs([src], tmp_path / "out")
    summary = upscale_files(bicubic, jobs)
    dst = tmp_path / "out" / "clip.mp4"
    before, after = _streams(src), _streams(dst)
    assert summary.videos == 1 and summary.frames == 8
    assert after["frames"] == [(96, 128, 3)] * 8  # every frame, at 4x (H×W×3)
    assert after["rate"] == before["rate"] == FPS
    assert after["audio"] == before["audio"] == {"codec": "aac", "rate": SAMPLE_RATE}
    assert after["audio_packets"] == before["audio_packets"]  # remuxed, not re-encoded
    assert summary.megapixels == pytest.approx(8 * 128 * 96 / 1e6)


def test_video_frames_are_the_upscaled_frames(tmp_path: Path, bicubic: Upscaler) -> None:
    """The encoder is near-lossless: each output frame is close to the SR of the decoded input frame."""
    src = _clip(tmp_path / "clip.mkv", frames=3)
    upscale_files(bicubic, plan_jobs([src], tmp_path / "out"))
    with av.open(str(src)) as a, av.open(str(tmp_path / "out" / "clip.mkv")) as b:
        pairs = list(zip(a.decode(video=0), b.decode(video=0), strict=True))
    for lr, sr in pairs:
        expected = bicubic(lr.to_ndarray(format="rgb24")).astype(float)
        assert np.abs(sr.to_ndarray(format="rgb24") - expected).mean() < 6


# ------------------------------------------------------------------------------------------- files, folders


def test_folder_structure_is_kept_and_existing_outputs_are_skipped(tmp_path: Path) -> None:
    src = tmp_path / "in"
    _image(src / "a.png")
    _image(src / "sub" / "deeper" / "b.jpg", 9, 7)
    _image(src / ".hidden" / "c.png")
    (src / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    args = ["upscale", str(src), "-o", str(out), "--model", "bicubic", "--device", "cpu"]
    assert main(args) == 0
    assert _listing(out) == ["a.png", "sub", "sub/deeper", "sub/deeper/b.png"]
    assert read_image(out / "sub" / "deeper" / "b.png").shape == (36, 28, 3)
    write_image(out / "a.png", np.zeros((1, 1, 3), np.uint8))  # a stale output
    assert main(args) == 0
    assert read_image(out / "a.png").shape == (1, 1, 3)  # skipped
    assert main([*args, "--overwrite"]) == 0
    assert read_image(out / "a.png").shape == (48, 40, 3)


def test_summary_line_and_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _image(tmp_path / "in" / "a.png")
    _image(tmp_path / "in" / "b.png")
    for fmt in ("jpg", "webp", "avif"):
        assert main(["upscale", str(tmp_path / "in"), "-o", str(tmp_path / fmt), "--model", "bicubic",
                     "--device", "cpu", "--format", fmt]) == 0
        assert _listing(tmp_path / fmt) == [f"a.{fmt}", f"b.{fmt}"]
        assert read_image(tmp_path / fmt / f"a.{fmt}").shape == (48, 40, 3)
    out = capsys.readouterr().out.strip().splitlines()[-1]
    summary = r"2 image\(s\) written to .*avif; 0\.00 MP in [\d.]+ s, one run \([\d.]+ MP/s; torch fp32.*\)"
    assert re.fullmatch(summary, out), out  # bicubic has no weights: auto runs it on torch


def test_one_file_to_a_named_output_file(tmp_path: Path) -> None:
    src = _image(tmp_path / "photo.jpg")
    assert main(["upscale", str(src), "-o", str(tmp_path / "big.png"), "--model", "bicubic", "--device", "cpu",
                 "--scale", "2"]) == 0
    assert read_image(tmp_path / "big.png").shape == (24, 20, 3)


def test_outputs_inside_the_input_folder_are_not_inputs(tmp_path: Path) -> None:
    _image(tmp_path / "photos" / "a.png")
    args = ["upscale", str(tmp_path / "photos"), "-o", str(tmp_path / "photos" / "x4"), "--model", "bicubic",
            "--device", "cpu"]
    assert main(args) == 0 and main(args) == 0
    assert _listing(tmp_path / "photos") == ["a.png", "x4", "x4/a.png"]


def test_two_inputs_writing_one_output_are_refused(tmp_path: Path) -> None:
    _image(tmp_path / "in" / "a.png")
    _image(tmp_path / "in" / "a.jpg")
    with pytest.raises(InputError, match="would both write"):
        plan_jobs([tmp_path / "in"], tmp_path / "out")


def test_tiled_cli_run_matches_whole_image(tmp_path: Path) -> None:
    _image(tmp_path / "in" / "a.png", 40, 36)
    base = ["upscale", str(tmp_path / "in"), "--model", "bicubic", "--device", "cpu"]
    assert main([*base, "-o", str(tmp_path / "whole")]) == 0
    assert main([*base, "-o", str(tmp_path / "tiled"), "--tile", "20", "--tile-overlap", "4"]) == 0
    assert np.array_equal(read_image(tmp_path / "whole" / "a.png"), read_image(tmp_path / "tiled" / "a.png"))


# --------------------------------------------------------------------------------------------- torchrun


def test_torchrun_shards_inputs_and_writes_each_output_once(tmp_path: Path) -> None:
    for i in range(5):
        _image(tmp_path / "in" / f"img{i}.png", 8, 6)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "esrkit",
           "upscale", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", "bicubic", "--device", "cpu"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    counts = {int(m[1]): int(m[2]) for m in re.finditer(r"rank (\d)/2: (\d+) image\(s\)", proc.stdout)}
    assert counts == {0: 3, 1: 2}, proc.stdout  # every image once: 3 + 2, none twice, none skipped
    assert "skipped" not in proc.stdout
    assert _listing(tmp_path / "out") == [f"img{i}.png" for i in range(5)]


# -------------------------------------------------------------------------------------------- bad input


def _corrupt_png(path: Path) -> Path:
    _image(path, 16, 16)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated
    return path


def _corrupt_video(path: Path) -> Path:
    """Overwrite the payload of the third video packet with noise: a frame the decoder rejects."""
    _clip(path)
    with av.open(str(path)) as container:
        packets = [(p.pos, p.size) for p in container.demux(video=0) if p.size]
    pos, size = packets[2]
    data = bytearray(path.read_bytes())
    data[pos:pos + size] = np.random.default_rng(1).integers(0, 256, size, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


def _no_partial_files(root: Path) -> bool:
    return not [p for p in root.rglob("*") if p.name.startswith(".") or p.suffix == ".part"]


@pytest.mark.parametrize(("case", "needle"), [
    ("corrupt_image", "cannot decode image"),
    ("corrupt_video", "cannot be decoded"),
    ("output_parent_is_a_file", "is a file, not a folder"),
    ("unknown_model", "unknown model 'nope'"),
    ("tile_below_minimum", "--tile: 8 is smaller than this model's minimum input (15 pixels)"),
    ("no_model", "give --model NAME or --weights FILE"),
    ("missing_input", "no such file or folder"),
])
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(case: str, needle: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "in"
    src.mkdir()
    out = tmp_path / "out"
    model = ["--model", "rlfn", "--random-weights"] if case == "tile_below_minimum" else ["--model", "bicubic"]
    inputs = [str(_image(src / "a.png"))]
    extra: list[str] = []
    if case == "corrupt_image":
        inputs = [str(_corrupt_png(src / "b.png"))]
    elif case == "corrupt_video":
        inputs = [str(_corrupt_video(src / "clip.mp4"))]
    elif case == "output_parent_is_a_file":
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "out"
    elif case == "unknown_model":
        model = ["--model", "nope"]
    elif case == "tile_below_minimum":
        extra = ["--tile", "8", "--tile-overlap", "2"]
    elif case == "no_model":  # an installation without the bundled weights (this checkout may ship them)
        from esrkit import bundled

        monkeypatch.delenv(bundled.ENV_VAR, raising=False)
        monkeypatch.setattr(bundled, "packaged_weights_path", lambda: tmp_path / "none" / bundled.WEIGHTS_FILE)
        model = []
    elif case == "missing_input":
        inputs = [str(src / "missing.png")]
    code = main(["upscale", *inputs, "-o", str(out), *model, "--device", "cpu", *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and needle in err, err
    assert not out.exists() and _no_partial_files(tmp_path)


def test_unwritable_output_folder_is_refused_before_work(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    _image(tmp_path / "a.png")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    if os.geteuid() == 0:  # root writes into read-only folders: make the permission check see what a user would
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if Path(path) == locked and mode & os.W_OK
                            else real_access(path, mode, **kw))
    try:
        code = main(["upscale", str(tmp_path / "a.png"), "-o", str(locked / "out"), "--model", "bicubic"])
    finally:
        locked.chmod(0o755)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "not writable" in err, err
    assert _listing(locked) == []


def test_a_corrupt_file_mid_folder_keeps_finished_outputs_whole(tmp_path: Path, bicubic: Upscaler) -> None:
    """The run stops at the bad file; what was finished before it is complete (a rerun skips it), the bad file
    left nothing, and no folder the run created is left empty."""
    _image(tmp_path / "in" / "a.png")
    _corrupt_png(tmp_path / "in" / "b" / "bad.png")
    _corrupt_video(tmp_path / "in" / "c" / "clip.mp4")
    jobs = plan_jobs([tmp_path / "in"], tmp_path / "out")
    with pytest.raises(ImageReadError, match=r"bad\.png"):
        upscale_files(bicubic, jobs)
    assert _listing(tmp_path / "out") == ["a.png"]
    assert read_image(tmp_path / "out" / "a.png").shape == (48, 40, 3)
    (tmp_path / "in" / "b" / "bad.png").unlink()
    with pytest.raises(ImageReadError, match=r"clip\.mp4"):
        upscale_files(bicubic, plan_jobs([tmp_path / "in"], tmp_path / "out"))
    assert _listing(tmp_path / "out") == ["a.png"] and _no_partial_files(tmp_path / "out")
