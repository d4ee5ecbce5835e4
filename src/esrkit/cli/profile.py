"""``esrkit profile``: the challenges' complexity figures and a runtime/memory measurement, as a table or JSON.

The table streams: its header is printed once and each model's row as soon as that model is measured (flushed,
also when stdout is a pipe or a file), with which model is running (n/N) on stderr, because ``--all`` takes a
while and a silent command looks hung. Timing defaults to a quick grade that keeps ``--all`` under a minute
on a small CPU; ``--timing challenge`` is the challenges' protocol (see
:data:`esrkit.profile.table.TIMING_GRADES`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..fileio import check_output_path, write_json_atomic
from ._app import app


def _emit(line: str) -> None:
    """Print a table line now, not at exit: a pipe or file is block-buffered, which is what made ``--all`` look
    hung."""
    print(line, file=sys.stdout, flush=True)


@app.command("profile")
def profile_command(
    model: Annotated[str | None, typer.Option("--model", "-m",
                                              help="Registered model name, or esrkit_x4 (bundled).")] = None,
    weights: Annotated[Path | None, typer.Option("--weights", "-w",
                                                 help="Checkpoint file to load and profile.")] = None,
    all_models: Annotated[bool, typer.Option("--all", help="Profile every model of the zoo.")] = False,
    scale: Annotated[int, typer.Option("--scale", help="Upscaling factor (for --model / --all).")] = 4,
    input_size: Annotated[str, typer.Option("--input", help="LR input size HxW (challenges: 256x256).")] = "256x256",
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
    precision: Annotated[str, typer.Option("--precision", help="fp32, fp16 or bf16 (converts model+input).")] = "fp32",
    timing: Annotated[str, typer.Option(
        "--timing",
        help="quick (1 warm-up that also measures memory, 1 timed forward, 1 trial, default threads) or "
        "challenge (3 warm-ups, "
        "best of 3 trials of 10, 1 thread: the NTIRE/AIM protocol). The options below override either.",
    )] = "quick",
    repeats: Annotated[int | None, typer.Option("--repeats", help="Timed forwards per trial.")] = None,
    trials: Annotated[int | None, typer.Option("--trials",
                                               help="Consecutive trials (the challenges take the best of 3).")] = None,
    warmup: Annotated[int | None, typer.Option("--warmup", help="Untimed forwards before timing.")] = None,
    threads: Annotated[int | None, typer.Option("--threads",
                                                help="CPU threads while timing (1 is the most repeatable).")] = None,
    deploy: Annotated[bool, typer.Option("--deploy/--train", help="Profile the re-parameterized deploy form.")] = True,
    runtime: Annotated[bool, typer.Option("--runtime/--no-runtime", help="Also time the model.")] = True,
    rules: Annotated[str, typer.Option("--rules", help="aim2020 (= NTIRE 2022/23) or ntire2024.")] = "aim2020",
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the results to this JSON file.")] = None,
) -> None:
    """Count #Params / FLOPs / #Activations / #Conv like the NTIRE/AIM tool and measure runtime and peak
    memory."""
    from ..profile.table import ProfileTable, progress_announcer
    from ..profile.zoo import plan_profile

    if json_out is not None:
        check_output_path(json_out, param="json_out")
    plan = plan_profile(model=model, weights=weights, all_models=all_models, scale=scale, input_size=input_size,
                        device=device, precision=precision, timing=timing, warmup=warmup, repeats=repeats,
                        trials=trials, threads=threads, deploy=deploy, runtime=runtime, rules=rules)
    table = ProfileTable(plan.labels)
    for line in [plan.description(), *table.header()]:
        _emit(line)
    results = []
    with progress_announcer(len(plan.targets)) as announce:
        for index, (name, _, _) in enumerate(plan.targets):
            announce(index + 1, name)
            results.append(plan.profile(index))
            _emit(table.row(results[-1]))
    if json_out is not None:
        write_json_atomic(json_out, {"results": [r.to_dict() for r in results]})
