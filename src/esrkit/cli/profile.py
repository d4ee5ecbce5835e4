"""``esrkit profile``: the challenges' complexity figures and a runtime/memory measurement, as a table or
JSON."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer

from ..errors import InputError
from ..fileio import check_output_path, write_json_atomic
from ._app import app

_SIZE = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")


def parse_size(text: str) -> tuple[int, int]:
    """``"256x256"`` (height x width) to ``(256, 256)``; anything else is an :class:`InputError` about
    ``input_size`` (shown as ``--input``)."""
    match = _SIZE.match(text or "")
    if not match:
        raise InputError(f"expected HxW such as 256x256, got {text!r}", param="input_size")
    height, width = int(match.group(1)), int(match.group(2))
    if height <= 0 or width <= 0:
        raise InputError(f"height and width must be positive, got {text!r}", param="input_size")
    return height, width


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render_table(results: list[Any], title: str = "esrkit profile") -> Any:
    """A rich table of :class:`~esrkit.profile.ProfileResult` rows (units as in the challenge reports)."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title)
    headers = ("model", "form", "params [M]", "FLOPs [G]", "acts [M]", "#conv", "mem [MiB]", "median [ms]")
    for header in headers:
        table.add_column(escape(header), justify="left" if header in ("model", "form") else "right")
    for r in results:
        table.add_row(
            escape(r.model),
            r.form,
            f"{r.params_m:.3f}",
            f"{r.flops_g:.2f}",
            f"{r.activations_m:.2f}",
            str(r.counts.num_conv),
            _fmt(r.memory_mib, 2),
            _fmt(r.runtime_median_ms, 2),
        )
    return table


@app.command("profile")
def profile_command(
    model: str | None = typer.Option(None, "--model", "-m", help="Registered model name."),
    weights: Path | None = typer.Option(None, "--weights", "-w", help="Checkpoint file to load and profile."),
    all_models: bool = typer.Option(False, "--all", help="Profile every model of the zoo."),
    scale: int = typer.Option(4, "--scale", help="Upscaling factor (for --model / --all)."),
    input_size: str = typer.Option("256x256", "--input", help="LR input size HxW (challenges: 256x256)."),
    device: str = typer.Option("cpu", "--device", help="auto, cpu, cuda or cuda:N."),
    precision: str = typer.Option("fp32", "--precision", help="fp32, fp16 or bf16 (converts model+input)."),
    repeats: int = typer.Option(10, "--repeats", help="Timed forwards per trial."),
    trials: int = typer.Option(3, "--trials", help="Consecutive trials (the challenges take the best of 3)."),
    warmup: int = typer.Option(3, "--warmup", help="Untimed forwards before timing."),
    threads: int = typer.Option(1, "--threads", help="CPU threads while timing (1 is the most repeatable)."),
    deploy: bool = typer.Option(True, "--deploy/--train", help="Profile the re-parameterized deploy form."),
    runtime: bool = typer.Option(True, "--runtime/--no-runtime", help="Also time the model."),
    rules: str = typer.Option("aim2020", "--rules", help="aim2020 (= NTIRE 2022/23) or ntire2024."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the results to this JSON file."),
) -> None:
    """Count #Params / FLOPs / #Activations / #Conv like the NTIRE/AIM tool and measure runtime and peak
    memory."""
    # Validate everything before any work, so bad input costs nothing and leaves no file behind.
    size = parse_size(input_size)
    chosen = sum([model is not None, weights is not None, all_models])
    if chosen != 1:
        raise InputError("give exactly one of --model NAME, --weights FILE or --all")
    from ..device import resolve_device, resolve_precision
    from ..profile import RULES, profile_model
    from ..profile.runtime import check_timing_counts

    if rules not in RULES:
        raise InputError(f"expected one of {', '.join(sorted(RULES))}, got {rules!r}", param="rules")
    check_timing_counts(warmup=warmup, repeats=repeats, trials=trials, threads=threads)
    resolve_precision(precision)
    dev = resolve_device(device)
    if json_out is not None:
        check_output_path(json_out, param="json_out")
    if weights is not None and not weights.is_file():
        raise InputError(f"no such file: {weights}", param="weights")

    from ..models import create_model, list_models, reparameterize

    targets: list[tuple[str, Any, int | None]] = []
    if weights is not None:
        from ..checkpoints import load_checkpoint  # lazy: heavy, and only this branch needs it

        loaded = load_checkpoint(weights)
        config = getattr(loaded, "esrkit_config", None)
        targets.append((getattr(config, "name", weights.stem), loaded, getattr(config, "scale", None)))
    else:
        names = list_models() if all_models else [str(model)]
        for name in names:
            targets.append((name, create_model(name, scale=scale), scale))

    results = []
    for name, net, net_scale in targets:
        form = "deploy" if deploy else "train"
        net = reparameterize(net) if deploy else net.eval()
        results.append(
            profile_model(
                net,
                name=name,
                form=form,
                scale=net_scale,
                input_size=size,
                rules=rules,
                runtime=runtime,
                device=str(dev),
                precision=precision,
                warmup=warmup,
                repeats=repeats,
                trials=trials,
                threads=threads,
            )
        )

    from rich.console import Console

    console = Console()
    if not console.is_terminal:  # piped/redirected output: rich would squeeze the table into 80 columns
        console = Console(width=120)
    console.print(render_table(results))
    if json_out is not None:
        write_json_atomic(json_out, {"results": [r.to_dict() for r in results]})
