"""``esrkit profile``: the challenges' complexity figures and a runtime/memory measurement, as a table or JSON.

The table streams: its header is printed once and each model's row as soon as that model is measured (flushed,
also when stdout is a pipe or a file), with which model is running (n/N) on stderr, because ``--all`` takes a
while and a silent command looks hung. Timing defaults to a quick grade that keeps ``--all`` under a minute
on a small CPU; ``--timing challenge`` is the challenges' protocol (see :data:`TIMING_GRADES`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from ..errors import InputError
from ..fileio import check_output_path, write_json_atomic
from ..profile.table import TIMING_GRADES, ProfileTable, describe_settings, parse_size, progress_announcer
from ._app import app


def _emit(line: str) -> None:
    """Print a table line now, not at exit: a pipe or file is block-buffered, which is what made ``--all`` look
    hung."""
    print(line, file=sys.stdout, flush=True)


@app.command("profile")
def profile_command(
    model: str | None = typer.Option(None, "--model", "-m", help="Registered model name, or esrkit_x4 (bundled)."),
    weights: Path | None = typer.Option(None, "--weights", "-w", help="Checkpoint file to load and profile."),
    all_models: bool = typer.Option(False, "--all", help="Profile every model of the zoo."),
    scale: int = typer.Option(4, "--scale", help="Upscaling factor (for --model / --all)."),
    input_size: str = typer.Option("256x256", "--input", help="LR input size HxW (challenges: 256x256)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    precision: str = typer.Option("fp32", "--precision", help="fp32, fp16 or bf16 (converts model+input)."),
    timing: str = typer.Option(
        "quick",
        "--timing",
        help="quick (1 warm-up that also measures memory, 1 timed forward, 1 trial, default threads) or "
        "challenge (3 warm-ups, "
        "best of 3 trials of 10, 1 thread: the NTIRE/AIM protocol). The options below override either.",
    ),
    repeats: int | None = typer.Option(None, "--repeats", help="Timed forwards per trial."),
    trials: int | None = typer.Option(None, "--trials", help="Consecutive trials (the challenges take the best of 3)."),
    warmup: int | None = typer.Option(None, "--warmup", help="Untimed forwards before timing."),
    threads: int | None = typer.Option(None, "--threads", help="CPU threads while timing (1 is the most repeatable)."),
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
    if timing not in TIMING_GRADES:
        raise InputError(f"expected one of {', '.join(TIMING_GRADES)}, got {timing!r}", param="timing")
    grade = TIMING_GRADES[timing]
    warmup = grade["warmup"] if warmup is None else warmup
    repeats = grade["repeats"] if repeats is None else repeats
    trials = grade["trials"] if trials is None else trials
    threads = grade["threads"] if threads is None else threads
    assert warmup is not None and repeats is not None and trials is not None
    check_timing_counts(warmup=warmup, repeats=repeats, trials=trials, threads=threads)
    resolve_precision(precision)
    dev = resolve_device(device)
    if json_out is not None:
        check_output_path(json_out, param="json_out")
    if weights is not None and not weights.is_file():
        raise InputError(f"no such file: {weights}", param="weights")

    from ..bundled import BUNDLED_MODEL, require_bundled_weights
    from ..models import create_model, list_models, reparameterize

    targets: list[tuple[str, Any, int | None]] = []
    if model == BUNDLED_MODEL:  # esrkit's own model is a weights file, not a registry architecture
        weights = require_bundled_weights()
    if weights is not None:
        from ..checkpoints import load_checkpoint  # lazy: heavy, and only this branch needs it

        loaded = load_checkpoint(weights)
        config = getattr(loaded, "esrkit_config", None)
        label = BUNDLED_MODEL if model == BUNDLED_MODEL else getattr(config, "name", weights.stem)
        targets.append((label, loaded, getattr(config, "scale", None)))
    else:
        names = list_models() if all_models else [str(model)]
        for name in names:
            targets.append((name, create_model(name, scale=scale), scale))

    form = "deploy" if deploy else "train"
    from ..profile.result import valid_input_size

    # A model that cannot run at the asked size is measured at the nearest size it accepts, shown beside its name.
    labels = [name if (fit := valid_input_size(net, size)) == size else f"{name} @{fit[0]}x{fit[1]}"
              for name, net, _ in targets]
    table = ProfileTable(labels)
    _emit(describe_settings(size, targets, form, rules, dev, precision, runtime, warmup, repeats, trials, threads))
    for line in table.header():
        _emit(line)
    results = []
    with progress_announcer(len(targets)) as announce:
        for index, (name, net, net_scale) in enumerate(targets, start=1):
            announce(index, name)
            result = profile_model(reparameterize(net) if deploy else net.eval(), name=name, form=form,
                                   scale=net_scale, input_size=size, rules=rules, runtime=runtime, device=str(dev),
                                   precision=precision, warmup=warmup, repeats=repeats, trials=trials,
                                   threads=threads, memory_on_warmup=timing == "quick")
            results.append(result)
            _emit(table.row(result))
    if json_out is not None:
        write_json_atomic(json_out, {"results": [r.to_dict() for r in results]})
