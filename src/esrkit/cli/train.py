"""``esrkit train``: train a zoo model with a recipe (``torchrun --nproc-per-node N -m esrkit train …`` for DDP)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from ._app import app


@app.command("train")
def train_command(
    recipe: Annotated[str, typer.Argument(help="Shipped recipe name (rlfn_x4, lkdn_x4, …) or a recipe .yaml.")],
    data: Annotated[list[Path], typer.Option("--data", help="Folder of HR training images (repeatable).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder (checkpoints, log, curves, weights).")],
    val: Annotated[list[str] | None, typer.Option("--val", help="Validation benchmark name or folder.")] = None,
    data_root: Annotated[Path | None, typer.Option("--data-root", help="Benchmarks root (or $ESRKIT_DATA).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out exactly.")] = False,
    overrides: Annotated[list[str] | None, typer.Option("--set", help="Override a recipe value: KEY=VALUE.")] = None,
    smoke: Annotated[bool, typer.Option("--smoke", help="A few iterations per stage on small patches.")] = False,
    device: Annotated[str, typer.Option("--device", help="cpu, cuda or auto.")] = "auto",
    stop_after: Annotated[
        int | None, typer.Option("--stop-after", help="Stop (checkpointed) after N iterations; --resume continues.")
    ] = None,
) -> None:
    """Train a model with a recipe's stages; writes train- and deploy-form safetensors at the end."""
    from rich.console import Console

    from ..fileio import check_output_path
    from ..train.recipe import load_recipe
    from ..train.recipe import smoke as smoke_recipe
    from ..train.trainer import Trainer

    check_output_path(out, param="out", kind="dir")
    plan = load_recipe(recipe, overrides or [])
    if smoke:
        plan = smoke_recipe(plan)
    console = Console(stderr=True)
    trainer = Trainer(plan, data, out, val=val or [], data_root=data_root, device=device, resume=resume,
                      hooks=train_progress(console), stop_after=stop_after)
    if trainer.rank == 0:
        console.print(f"training {plan.model} ×{plan.scale} with {plan.name}: {len(plan.stages)} stage(s), "
                      f"{plan.total_iters:,} iterations, {trainer.world} process(es) on {trainer.device}, "
                      f"autocast {trainer.amp or 'off'}")
    try:
        result = trainer.run()
    except KeyboardInterrupt:
        if trainer.rank == 0:
            console.print(f"interrupted: checkpoint saved in {out}; continue with --resume")
        raise
    if trainer.rank == 0:
        if result.train_weights is None:
            console.print(f"stopped after {result.iterations} iterations; continue with --resume")
            return
        val_text = ", ".join(f"{k.removeprefix('psnr_y_')} {v:.2f} dB" for k, v in result.final_val.items())
        typer.echo(f"{result.deploy_weights} ({result.iterations:,} iterations, {result.wall_s:.0f} s"
                   + (f"; Y-PSNR {val_text}" if val_text else "") + ")")


def train_progress(console: Any) -> Any:
    """The progress of a training run on stderr: a bar on a terminal; piped, a line when a stage starts and at every
    tenth of it (``esrkit train`` and ``esrkit quantize --method qat``)."""
    return _progress_bar(console) if sys.stderr.isatty() else _progress_lines()


def _progress_lines() -> Any:
    from ..train.hooks import TrainHooks

    class Lines(TrainHooks):
        def stage_started(self, stage: Any, done: int) -> None:
            self.name, self.total, self.every = stage.name, stage.iters, max(1, stage.iters // 10)
            print(f"{self.name}: {done}/{self.total} iterations", file=sys.stderr, flush=True)

        def step_done(self, step: int, loss: float, lr: float) -> None:
            if step % self.every == 0 or step == self.total:
                print(f"{self.name}: {step}/{self.total} iterations, loss {loss:.4g}", file=sys.stderr, flush=True)

        def validated(self, scores: dict[str, float]) -> None:
            print(", ".join(f"{k} {v:.2f} dB" for k, v in scores.items()), file=sys.stderr, flush=True)

    return Lines()


def _progress_bar(console: Any) -> Any:
    """Hooks drawing a rich bar per stage on stderr: iteration, loss, learning rate, it/s and ETA; validation
    scores and pruning rounds are printed above it."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..train.hooks import TrainHooks

    class Bar(TrainHooks):
        def stage_started(self, stage: Any, done: int) -> None:
            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[info]}"), TimeRemainingColumn(), console=console,
                                     transient=False)
            self.start, self.first = time.perf_counter(), done
            self.progress.start()
            self.task = self.progress.add_task(stage.name, total=stage.iters, completed=done, info="")

        def step_done(self, step: int, loss: float, lr: float) -> None:
            rate = (step - self.first) / max(time.perf_counter() - self.start, 1e-9)
            self.progress.update(self.task, completed=step, info=f"loss {loss:.4g} lr {lr:.2e} {rate:.1f} it/s")

        def validated(self, scores: dict[str, float]) -> None:
            self.progress.console.print(", ".join(f"{k} {v:.2f} dB" for k, v in scores.items()))

        def pruned(self, ratio: float, before: int, after: int, hparams: dict[str, Any]) -> None:
            print(f"pruned {ratio:.0%} of the filters: {before:,} -> {after:,} parameters ({hparams})",
                  file=sys.stderr)

        def stage_ended(self) -> None:
            self.progress.stop()

    return Bar()
