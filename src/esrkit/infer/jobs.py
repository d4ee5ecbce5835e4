"""Upscaling files, folders and videos: the library behind ``esrkit upscale``.

:func:`plan_jobs` turns the user's inputs into (source, destination) pairs before any model is built, so every
path problem is found first and costs nothing; :func:`upscale_files` runs them through one
:class:`~esrkit.infer.Upscaler`. The rules:

* a **file** input goes to ``out/NAME`` (images get the output format's extension, videos keep theirs); when
  there is exactly one input file and ``out`` ends in an extension of the same kind (``photo.jpg -o big.png``),
  ``out`` is that file itself;
* a **folder** input is searched recursively for images (:data:`esrkit.data.io.IMAGE_EXTENSIONS`, and GIF; see
  :data:`esrkit.infer.image_job.UPSCALE_IMAGE_EXTENSIONS`) and videos
  (:data:`esrkit.data.video.VIDEO_EXTENSIONS`); each goes to ``out/<its path inside the folder>``, so the structure
  is kept. Hidden files and folders (names starting with a dot, which includes unfinished ``.part`` files) and
  anything under ``out`` itself (``photos -o photos/x4``) are skipped; other files are ignored;
* two inputs that would write the same output are an :class:`~esrkit.errors.InputError` before any work;
* an existing output is **skipped** unless ``overwrite``: a run that stopped half-way continues where it was;
* images default to PNG (lossless, what SR codebases save); JPEG and WebP are written at quality 95 and AVIF at
  90, since SR output is meant to be looked at closely;
* each image keeps its orientation (applied), alpha, bit depth, frames, ICC profile and EXIF where the output
  format holds them (:mod:`esrkit.infer.image_job`); an output format that would lose alpha or frames is refused;
* every output is written atomically (:mod:`esrkit.fileio`): a corrupt input, a full disk or an interrupt stops
  the run with the outputs finished so far complete, no partial file, and (outside ``torchrun``) none of the
  folders this run created left behind empty.

**Where files go** (checked for the whole plan before a model is built or a file written; each breach is an
:class:`~esrkit.errors.InputError` naming the paths):

* outputs land inside ``out`` and nowhere else. Output names come from the input's *name* (file inputs) or its
  path inside the folder (folder inputs), never from ``..``; and each destination is resolved through the
  symbolic links that exist on the way, so a link inside ``out`` (a sub-folder or an output file) pointing
  outside it is refused rather than written through. An output path that exists and is not a regular file (a
  symbolic link, even one inside ``out``, a device node, a FIFO, a socket) is refused, not counted as skipped and
  not replaced with ``overwrite`` (:mod:`esrkit.output_guard`); output names longer than the file system's
  ``NAME_MAX`` are refused too (``photo.jpg`` → ``photo.webp`` is one byte longer);
* symbolic links among the inputs: a linked file is read through the link and its output is named after the
  link; linked sub-folders of an input folder are not descended into (no loops, nothing outside the tree);
  pipes, devices and sockets are refused (reading them may never end);
* no input is also an output of the same run (``photo.png -o photo.png``, or a link into ``out``): with
  ``overwrite`` the run would destroy what it reads;
* two outputs whose names differ only in case (``A.png``, ``a.png``) are refused as a collision, because they
  are one file on case-insensitive file systems (macOS, Windows) and a run there would silently keep only one;
* concurrent runs into one folder: every output is written to a unique temporary name beside it and renamed
  over it atomically (:func:`esrkit.fileio.atomic_path`), so two ``esrkit upscale`` processes writing the same
  folder each leave complete images (the last rename wins), never a torn or mixed file. A run killed outright
  (SIGKILL) can leave a hidden ``.NAME.esrkit-HOST-PID.*.part`` temporary file, never a partial output
  (planners skip hidden files); the next run into that folder removes it once its process is gone (never a live
  run's: :func:`esrkit.output_guard.remove_stale_parts`). SIGTERM, SIGHUP and Ctrl-C remove the temporary file at
  once (:mod:`esrkit.interrupts`). The checks run when the plan is made; a link created while a run is going is
  not seen, except that the rename refuses to replace anything but a regular file.

**Sizes** (checked from the headers after the model is known and before the first output is written,
:mod:`esrkit.infer.output_limits`): an output over WebP's 16383 or JPEG's 65500 pixels a side, or over the output
pixel limit, is refused with one line before any work.

Under ``torchrun`` (``RANK``/``WORLD_SIZE`` set) each process takes every ``WORLD_SIZE``-th job of the sorted
plan, starting at its ``RANK``, and writes its own outputs, so N processes (one device each: ``cuda:LOCAL_RANK``,
see :func:`rank_device`) split a corpus with no communication; a cluster scheduler runs the command unchanged.
"""

from __future__ import annotations

import contextlib
import os
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..data.video import VIDEO_EXTENSIONS, upscale_video
from ..device import distributed_env
from ..errors import InputError
from ..fileio import check_output_path
from ..output_guard import check_name_lengths, refuse_non_regular, remove_stale_parts
from .image_job import UPSCALE_IMAGE_EXTENSIONS, upscale_image_file
from .output_limits import check_output_sizes
from .upscaler import Upscaler

__all__ = [
    "IMAGE_FORMATS",
    "Job",
    "ProgressHooks",
    "UpscaleSummary",
    "plan_jobs",
    "rank_device",
    "shard",
    "upscale_files",
]

# --format value → extension written
IMAGE_FORMATS: dict[str, str] = {"png": ".png", "avif": ".avif", "jpg": ".jpg", "jpeg": ".jpg", "webp": ".webp"}
_QUALITY = {".jpg": 95, ".webp": 95, ".avif": 90}


@dataclass(frozen=True)
class Job:
    """One input file and where its output goes; ``kind`` is ``"image"`` or ``"video"``."""

    src: Path
    dst: Path
    kind: str


def _kind(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in UPSCALE_IMAGE_EXTENSIONS:
        return "image"
    if suffix in VIDEO_EXTENSIONS:
        return "video"
    return None


def _is_hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def plan_jobs(inputs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], *,
              format: str | None = None) -> list[Job]:
    """Every (source, destination) pair for ``inputs`` written under ``out`` (see the module docstring), sorted
    by destination. Raises :class:`InputError` for a missing input, an unsupported file, an empty folder, an
    unknown format, an output that cannot be written (:func:`esrkit.fileio.check_output_path`) or two inputs
    writing one output; writes nothing."""
    fmt = (format or "png").strip().lower()
    if fmt not in IMAGE_FORMATS:
        raise InputError(f"unknown image format {format!r}; use png, avif, jpg or webp", param="format")
    image_suffix = IMAGE_FORMATS[fmt]
    out = Path(out)
    if not inputs:
        raise InputError("give at least one image, video or folder", param="inputs")
    paths = [Path(p) for p in inputs]
    for path in paths:
        if not path.exists():
            raise InputError(f"{path}: no such file or folder", param="inputs")
        if not path.is_file() and not path.is_dir():
            raise InputError(f"{path}: not a regular file or folder (pipes and devices are not read: they may "
                             "never end)", param="inputs")
        if path.is_file() and _kind(path) is None:
            raise InputError(f"{path}: not an image or video this tool reads "
                             f"({', '.join(UPSCALE_IMAGE_EXTENSIONS + tuple(VIDEO_EXTENSIONS))})", param="inputs")

    def target(relative: Path, kind: str) -> Path:
        return relative.with_suffix(image_suffix) if kind == "image" else relative

    single = len(paths) == 1 and paths[0].is_file()
    if single and not out.is_dir() and _kind(out) == _kind(paths[0]):
        if _kind(out) == "image" and out.suffix.lower() not in {*IMAGE_FORMATS.values(), ".jpeg"}:
            raise InputError(f"{out}: cannot write {out.suffix} images; use png, avif, jpg or webp", param="out")
        check_output_path(out, param="out")
        if out.resolve() == paths[0].resolve():
            raise InputError(f"{out} is the input itself; write the output elsewhere", param="out")
        return [Job(paths[0], out, _kind(paths[0]))]  # type: ignore[arg-type]
    check_output_path(out, param="out", kind="dir")

    jobs: list[Job] = []
    for path in paths:
        if path.is_file():
            kind = _kind(path)
            jobs.append(Job(path, out / target(Path(path.name), kind), kind))  # type: ignore[arg-type]
            continue
        found = 0
        for file in sorted(path.rglob("*")):
            relative = file.relative_to(path)
            kind = _kind(file)
            if kind is None or _is_hidden(relative) or not file.is_file() or _inside(file, out):
                continue
            jobs.append(Job(file, out / target(relative, kind), kind))
            found += 1
        if not found:
            raise InputError(f"{path}: no images or videos in this folder", param="inputs")
    _check_destinations(jobs, out)
    return sorted(jobs, key=lambda j: str(j.dst))


def _fold(path: Path) -> str:
    """The spelling two names share when a case-insensitive file system (macOS, Windows) takes them for one."""
    return unicodedata.normalize("NFC", str(path)).casefold()


def _check_destinations(jobs: Sequence[Job], out: Path) -> None:
    """Where files go (the module docstring's rules), checked for the whole plan before any work: every output
    resolves inside ``out`` (no symbolic link inside ``out`` leads elsewhere), no input is also an output, and no two
    outputs are one file, counting names that differ only in case as one."""
    root = out.resolve()
    by_dst: dict[Path, Path] = {}
    by_fold: dict[str, Job] = {}
    for job in jobs:
        real = job.dst.resolve()  # through every existing symbolic link on the way
        if not _inside(real, root):
            link = next((p for p in (job.dst, *job.dst.parents) if p.is_symlink()), job.dst)
            raise InputError(f"{job.dst} would be written outside {out}: {link} is a symbolic link to "
                             f"{link.resolve()}; remove the link or choose another output folder", param="out")
        if real in by_dst:
            raise InputError(f"{by_dst[real]} and {job.src} would both write {job.dst}", param="inputs")
        other = by_fold.get(_fold(real))
        if other is not None:
            raise InputError(f"{other.src} and {job.src} would write {other.dst} and {job.dst}, names that differ "
                             "only in case (one file on case-insensitive file systems); rename one", param="inputs")
        check_name_lengths(job.dst, param="out")  # photo.jpg → photo.webp may outgrow NAME_MAX
        refuse_non_regular(job.dst, param="out")  # a device, FIFO or link named like an output is not ours
        by_dst[real] = job.src
        by_fold[_fold(real)] = job
    for job in jobs:
        if job.src.resolve() in by_dst:
            raise InputError(f"{job.src} is also an output of this run ({by_dst[job.src.resolve()]} would write it); "
                             "choose an output folder apart from the inputs", param="out")


def _common_root(jobs: Sequence[Job]) -> str:
    try:
        return os.path.commonpath([str(j.dst.parent) for j in jobs]) or "."
    except ValueError:
        return "the output folder"


def rank_device(device: str | None) -> str | None:
    """The device this process should use: under ``torchrun`` with CUDA (``auto``/``cuda``), ``cuda:LOCAL_RANK``
    so that each rank drives its own GPU; otherwise ``device`` unchanged."""
    import torch

    _, world, local = distributed_env()
    wants_cuda = device is None or device.strip().lower() in ("auto", "cuda")
    if world > 1 and wants_cuda and torch.cuda.is_available():
        return f"cuda:{local % torch.cuda.device_count()}"
    return device


def shard(jobs: Sequence[Job], rank: int, world: int) -> list[Job]:
    """This rank's share of a plan: every ``world``-th job from ``rank`` (the plan is sorted, so every rank
    computes the same split without talking to the others)."""
    return list(jobs[rank::world])


class ProgressHooks:
    """Callbacks :func:`upscale_files` reports progress through (the CLI draws a progress bar from them)."""

    def start(self, jobs: Sequence[Job]) -> None:
        """Called once with the jobs that will run (skipped ones excluded)."""

    def job_started(self, job: Job, frames: int | None) -> None:
        """A job begins; ``frames`` is a video's declared frame count (None for images or when unknown)."""

    def frame_done(self, job: Job, done: int) -> None:
        """A video frame was written (``done`` so far)."""

    def job_done(self, job: Job) -> None:
        """A job's output is complete."""


@dataclass
class UpscaleSummary:
    """What a run did: outputs written and skipped, and the output megapixels per second of processing."""

    images: int = 0
    videos: int = 0
    frames: int = 0
    skipped: int = 0
    megapixels: float = 0.0  # output pixels written, in millions (video frames included)
    seconds: float = 0.0  # wall time of reading, upscaling and writing (model loading excluded)
    rank: int = 0
    world: int = 1

    @property
    def megapixels_per_second(self) -> float:
        return self.megapixels / self.seconds if self.seconds > 0 else 0.0


def upscale_files(upscaler: Upscaler, jobs: Sequence[Job], *, overwrite: bool = False,
                  rank: int | None = None, world: int | None = None,
                  hooks: ProgressHooks | None = None) -> UpscaleSummary:
    """Run ``jobs`` (from :func:`plan_jobs`) through ``upscaler``: this rank's share only, existing outputs
    skipped unless ``overwrite``. ``rank``/``world`` default to the ``torchrun`` environment.

    The first failing input stops the run with its error (:class:`~esrkit.errors.ImageReadError` for a corrupt
    image or video frame); outputs finished before it stay, complete, and a rerun skips them.
    """
    env_rank, env_world, _ = distributed_env()
    rank = env_rank if rank is None else rank
    world = env_world if world is None else world
    hooks = hooks or ProgressHooks()
    summary = UpscaleSummary(rank=rank, world=world)
    mine = shard(jobs, rank, world)
    todo = [j for j in mine if overwrite or not j.dst.exists()]
    summary.skipped = len(mine) - len(todo)
    check_output_sizes(todo, upscaler.scale)  # every output's size is known from the headers: refuse before work
    for folder in sorted({j.dst.parent for j in mine}):
        remove_stale_parts(folder)  # temporary files a killed run left (only stale ones: see output_guard)
    hooks.start(todo)
    made: list[Path] = []  # folders this run created, removed again if a failure leaves them empty
    start = time.perf_counter()
    try:
        for job in todo:
            made.extend(p for p in reversed(job.dst.parents) if not p.exists() and p not in made)
            if job.kind == "image":
                hooks.job_started(job, None)
                pixels = upscale_image_file(upscaler, job.src, job.dst, quality=_QUALITY.get(job.dst.suffix.lower()))
                summary.images += 1
                summary.megapixels += pixels / 1e6
            else:
                from ..data.video import probe_video

                info = probe_video(job.src)
                hooks.job_started(job, info.frames)
                result = upscale_video(job.src, job.dst, upscaler,
                                       on_frame=lambda done, j=job: hooks.frame_done(j, done))
                summary.videos += 1
                summary.frames += result.frames
                summary.megapixels += result.frames * result.width * result.height / 1e6
            hooks.job_done(job)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):  # Ctrl-C or SIGTERM/SIGHUP (esrkit.interrupts): say what is done
            done = summary.images + summary.videos
            exc.finished = (f"{done} of {len(todo)} output(s) finished, complete, under {_common_root(todo)}; "  # type: ignore[attr-defined]
                            "a rerun continues from there")
        # Under torchrun another rank may be about to write into a folder that is empty now, so only a lone
        # process tidies up.
        for folder in sorted(made if world == 1 else [], key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only succeeds when empty
        raise
    finally:
        summary.seconds = time.perf_counter() - start
    return summary
