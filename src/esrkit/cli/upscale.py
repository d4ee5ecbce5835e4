"""``esrkit upscale``: super-resolve images, folders and videos (the work is :mod:`esrkit.infer.jobs`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ._app import app


@app.command()
def upscale(
    inputs: Annotated[list[Path], typer.Argument(help="Images, videos or folders (searched recursively).",
                                                 metavar="INPUT", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (or file, for one input file).")],
    model: Annotated[str | None, typer.Option("--model", help="Zoo model (its released weights, downloaded on first "
                                              "use), baseline (bicubic, lanczos) or esrkit_x4 (default, with no "
                                              "--weights: esrkit's bundled model).")] = None,
    weights: Annotated[Path | None, typer.Option("--weights", help="Checkpoint (.pth or .safetensors).")] = None,
    scale: Annotated[int | None, typer.Option("--scale", help="Scale (default: checkpoint's, else 4).")] = None,
    random_weights: Annotated[bool, typer.Option("--random-weights", help="Run a zoo name with random weights "
                                                 "instead of its released ones (tests, timing).")] = False,
    tile: Annotated[int | None, typer.Option("--tile", help="Tile size in LR pixels (default: whole image, "
                                             "tiled automatically when memory runs out).")] = None,
    tile_overlap: Annotated[int, typer.Option("--tile-overlap", help="LR pixels of context around each tile.")] = 16,
    backend: Annotated[str, typer.Option("--backend", help="auto (the fastest exact one here, cached), torch, "
                                         "onnxruntime or openvino.")] = "auto",
    precision: Annotated[str, typer.Option("--precision", help="fp32, bf16 or fp16.")] = "fp32",
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
    format: Annotated[str, typer.Option("--format", help="Image output format: png, avif, jpg or webp.")] = "png",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Redo outputs that exist (default: skip).")] = False,
) -> None:
    """Upscale images, folders (structure kept) and videos (frame rate, frame count and audio kept).

    Images keep orientation, alpha, ICC profile, EXIF, 16 bits and animation where the format holds them.

    Without --model and --weights the model is esrkit's own, bundled with the package (esrkit_x4).

    Under torchrun each process takes its share of the inputs (one GPU per process on CUDA).
    """
    from rich.console import Console

    from ..bundled import resolve_model_choice
    from ..device import distributed_env, resolve_device, resolve_precision
    from ..hub import check_choice
    from ..infer import Upscaler
    from ..infer.jobs import plan_jobs, rank_device, upscale_files

    # Everything is checked before a model is built or a file written, so bad input costs nothing.
    model, weights = resolve_model_choice(model, weights)  # neither given: esrkit's bundled model
    check_choice(model, scale, weights, random_weights)  # a name without released weights stops here
    jobs = plan_jobs(inputs, out, format=format)
    device = rank_device(device)
    resolve_device(device)
    resolve_precision(precision)
    upscaler = Upscaler.from_name(model, scale=scale, weights=weights, device=device, precision=precision,
                                  tile=tile, tile_overlap=tile_overlap, backend=backend, random_weights=random_weights)

    rank, world, _ = distributed_env()
    console = Console(stderr=True)
    with _ProgressBar(console, enabled=rank == 0) as hooks:
        summary = upscale_files(upscaler, jobs, overwrite=overwrite, rank=rank, world=world, hooks=hooks)

    done = [f"{summary.images} image(s)"]
    if summary.videos:
        done.append(f"{summary.videos} video(s) ({summary.frames} frames)")
    where = f"rank {rank}/{world}: " if world > 1 else ""
    skipped = f"; {summary.skipped} skipped (output exists; --overwrite redoes them)" if summary.skipped else ""
    runs = getattr(upscaler.model, "describe", lambda: "torch")()
    typer.echo(f"{where}{', '.join(done)} written to {out}{skipped}; {summary.megapixels:.2f} MP in "
               f"{summary.seconds:.1f} s, one run ({summary.megapixels_per_second:.2f} MP/s; {runs})")


class _ProgressBar:
    """Rich progress on stderr: one bar over the files, and one over a video's frames while it runs; off a
    terminal, one line per finished file."""

    def __init__(self, console: Any, *, enabled: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from ..infer.jobs import ProgressHooks

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=console, transient=True,
                                 disable=not enabled or not console.is_terminal)  # off a terminal: only a stray newline
        bar = self
        piped = enabled and not console.is_terminal

        class Hooks(ProgressHooks):
            def start(self, jobs: Any) -> None:
                bar.files = bar.progress.add_task("upscaling", total=len(jobs))

            def job_started(self, job: Any, frames: int | None) -> None:
                bar.progress.update(bar.files, description=f"upscaling {job.src.name}")
                if job.kind == "video":
                    bar.frames = bar.progress.add_task(f"  frames of {job.src.name}", total=frames)

            def frame_done(self, job: Any, done: int) -> None:
                bar.progress.update(bar.frames, completed=done)

            def job_done(self, job: Any) -> None:
                if job.kind == "video":
                    bar.progress.remove_task(bar.frames)
                bar.progress.advance(bar.files)
                if piped:  # no bar off a terminal: one line per finished file instead of silence
                    print(f"upscaled {job.src} -> {job.dst}", file=sys.stderr, flush=True)

        self.hooks = Hooks()

    def __enter__(self) -> Any:
        self.progress.__enter__()
        return self.hooks

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)
