"""``esrkit demo``: the bundled model on the packaged sample photo, beside bicubic (the work is :mod:`esrkit.demo`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import app


@app.command("demo")
def demo_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the PNGs and demo.html.")] = Path("esrkit-demo"),
    model: Annotated[str | None, typer.Option("--model", help="Zoo model (its released weights) or baseline "
                                              "instead of the bundled esrkit_x4.")] = None,
    weights: Annotated[Path | None, typer.Option("--weights", help="Checkpoint (.pth or .safetensors) ×4.")] = None,
    random_weights: Annotated[bool, typer.Option("--random-weights", help="Run a zoo name with random weights "
                                                 "instead of its released ones (tests, timing).")] = False,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
) -> None:
    """Upscale a sample photo ×4 with esrkit's own model and bicubic; write LR, bicubic and SR side by side
    (PNG and a one-page HTML with a zoomed crop) and print PSNR/SSIM against the original and the time."""
    from ..demo import run_demo, summary_lines

    result = run_demo(out, model=model, weights=weights, device=device, random_weights=random_weights)
    for line in summary_lines(result):
        typer.echo(line)
