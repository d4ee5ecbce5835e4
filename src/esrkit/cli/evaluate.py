"""``esrkit evaluate``: PSNR/SSIM of a model on benchmarks, the papers' protocol."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..console import Progress, stdout_console
from ..fileio import check_output_path, staged_dir, write_json_atomic
from ._app import app


@app.command()
def evaluate(
    data: Annotated[list[str], typer.Option("--data", help="Benchmark folder or standard name (repeatable).")],
    model: Annotated[
        str | None, typer.Option("--model", help="Zoo model (its released weights) or baseline (bicubic, lanczos); "
                                              "default: esrkit_x4.")
    ] = None,
    weights: Annotated[Path | None, typer.Option("--weights", help="Checkpoint (.pth or .safetensors).")] = None,
    scale: Annotated[int | None, typer.Option("--scale", help="Scale (default: checkpoint's, else 4).")] = None,
    random_weights: Annotated[bool, typer.Option("--random-weights", help="Run a zoo name with random weights "
                                                 "instead of its released ones (tests, timing).")] = False,
    data_root: Annotated[Path | None, typer.Option("--data-root", help="Benchmarks root (or $ESRKIT_DATA).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write results as JSON here.")] = None,
    save_dir: Annotated[Path | None, typer.Option("--save-dir", help="Save SR images under DIR/DATASET/.")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
    precision: Annotated[str, typer.Option("--precision", help="fp32, fp16 or bf16.")] = "fp32",
    backend: Annotated[str, typer.Option("--backend", help="auto (the fastest exact one here, cached), torch, "
                                         "onnxruntime or openvino.")] = "auto",
    border: Annotated[int | None, typer.Option("--border", help="Border crop in pixels (default: the scale).")] = None,
    crop_multiple: Annotated[
        int | None, typer.Option("--crop-multiple", help="Crop HR from the top-left to multiples of N (AIS 2024: 24).")
    ] = None,
) -> None:
    """Evaluate PSNR/SSIM (RGB and Y) of a model on benchmarks, the papers' way."""
    from ..bundled import BUNDLED_MODEL, resolve_model_choice
    from ..data.datasets import resolve_benchmark
    from ..device import resolve_device, resolve_precision
    from ..evaluate import evaluate_benchmark, results_document
    from ..hub import check_choice
    from ..infer import Upscaler

    # Validate everything before any work, so bad input costs nothing and leaves no file behind.
    bundled = weights is None and model in (None, BUNDLED_MODEL)
    model, weights = resolve_model_choice(model, weights)  # neither given: esrkit's bundled model
    check_choice(model, scale, weights, random_weights)  # a name without released weights stops here
    if json_out is not None:
        check_output_path(json_out, param="json_out")
    if save_dir is not None:
        check_output_path(save_dir, param="save_dir", kind="dir")
    resolve_device(device)
    resolve_precision(precision)
    upscaler = Upscaler.from_name(model, scale=scale, weights=weights, device=device, precision=precision,
                                  backend=backend, random_weights=random_weights)
    scale = upscaler.scale  # --scale, or the checkpoint's own
    benches = [resolve_benchmark(d, scale, data_root, crop_multiple=crop_multiple) for d in data]
    trained_on = upscaler.trained_on
    if trained_on != "bicubic":
        Console(stderr=True).print(f"[yellow]warning:[/] this model was trained for {trained_on} input; scores on "
                                   "bicubic LR understate it (the AIS 2024 protocol degrades with Lanczos + AVIF)")
    label = BUNDLED_MODEL if bundled else model or weights.stem  # type: ignore[union-attr]

    # SR images go to a staging folder first and move into place only when the whole run succeeded.
    results = []
    staging_ctx = staged_dir(save_dir) if save_dir is not None else contextlib.nullcontext()
    with staging_ctx as staging, Progress() as progress:  # a bar on a terminal, a line per dataset when piped
        for bench in benches:
            task = progress.add(f"{label} ×{scale} {bench.name}", total=len(bench))
            results.append(evaluate_benchmark(upscaler, bench, border=border, save_dir=staging,
                                              on_image=lambda _s, t=task: progress.advance(t)))
            r = results[-1]
            progress.done(f"{label} ×{scale} {bench.name}: {r.n} images, PSNR-Y {r.psnr_y:.2f} dB")

    table = Table(title=f"{label} ×{scale}")
    for col in ("dataset", "n", "PSNR-RGB", "SSIM-RGB", "PSNR-Y", "SSIM-Y"):
        table.add_column(col, justify="left" if col == "dataset" else "right")
    for r in results:
        table.add_row(r.dataset, str(r.n), f"{r.psnr_rgb:.2f}", f"{r.ssim_rgb:.4f}", f"{r.psnr_y:.2f}",
                      f"{r.ssim_y:.4f}")
    stdout_console().print(table)
    if json_out is not None:
        extra = {"weights": str(weights)} if weights is not None else {}
        extra["weights_provenance"] = upscaler.weights_provenance  # which file (sha256), released, random…
        write_json_atomic(json_out, results_document(label, results, **extra))

