"""``esrkit profile``: the challenges' complexity figures and a runtime/memory measurement, as a table or JSON.

The table streams: its header is printed once and each model's row as soon as that model is measured (flushed,
also when stdout is a pipe or a file), with which model is running (n/N) on stderr, because ``--all`` takes a
while and a silent command looks hung. Timing defaults to a quick grade that keeps ``--all`` under a minute
on a small CPU; ``--timing challenge`` is the challenges' protocol (see :data:`TIMING_GRADES`).
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import typer

from ..errors import InputError
from ..fileio import check_output_path, write_json_atomic
from ._app import app

_SIZE = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")

# Timing presets (warm-up forwards, timed forwards per trial, trials, CPU threads; None = torch's default).
# "quick" answers "how fast, roughly" in a few forwards per model with the threads a user's own run would get;
# "challenge" is the NTIRE/AIM protocol (best of three consecutive trials of ten) on one pinned thread, the most
# repeatable figure on a shared machine and the one to compare with published tables.
TIMING_GRADES: dict[str, dict[str, int | None]] = {
    "quick": {"warmup": 1, "repeats": 1, "trials": 1, "threads": None},
    "challenge": {"warmup": 3, "repeats": 10, "trials": 3, "threads": 1},
}


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


class ProfileTable:
    """A fixed-width text table printed a row at a time (units as in the challenge reports).

    Column widths are fixed up front (the model column from the names to come), so rows line up without
    knowing the values in advance; a value wider than its column widens that row only.
    """

    HEADERS = ("model", "form", "params [M]", "FLOPs [G]", "acts [M]", "#conv", "mem [MiB]", "median [ms]")

    def __init__(self, names: Sequence[str]) -> None:
        self.widths = [max(len(self.HEADERS[0]), *(len(n) for n in names)), 7, *(len(h) for h in self.HEADERS[2:])]

    def _line(self, cells: Sequence[str]) -> str:
        parts = [
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, self.widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    def header(self) -> list[str]:
        """The header line and a rule under it."""
        return [self._line(self.HEADERS), "  ".join("-" * w for w in self.widths)]

    def row(self, result: Any) -> str:
        """One :class:`~esrkit.profile.ProfileResult` as a line."""
        size = result.extra.get("input_size")  # set when the model needed another input size than asked
        return self._line(
            (
                result.model + (f" @{size[0]}x{size[1]}" if size else ""),
                result.form,
                f"{result.params_m:.3f}",
                f"{result.flops_g:.2f}",
                f"{result.activations_m:.2f}",
                str(result.counts.num_conv),
                _fmt(result.memory_mib, 2),
                _fmt(result.runtime_median_ms, 2),
            )
        )


def _emit(line: str) -> None:
    """Print a table line now, not at exit: a pipe or file is block-buffered, which is what made ``--all`` look
    hung."""
    print(line, file=sys.stdout, flush=True)


@contextlib.contextmanager
def _progress(total: int) -> Iterator[Callable[[int, str], None]]:
    """Report which model is being profiled (n/N) on stderr: a transient bar on a terminal, one line per model
    otherwise (a log then shows where a long run is, and the bar's redraws do not litter it)."""
    if not sys.stderr.isatty():

        def announce(index: int, name: str) -> None:
            print(f"esrkit profile: [{index}/{total}] {name}", file=sys.stderr, flush=True)

        yield announce
        return

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    # Rows printed while the bar is up go above it on a terminal; a piped stdout is left alone.
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=Console(stderr=True), transient=True, redirect_stdout=sys.stdout.isatty(), redirect_stderr=False,
    ) as progress:  # fmt: skip
        task = progress.add_task("profiling", total=total)

        def announce_bar(index: int, name: str) -> None:
            progress.update(task, completed=index - 1, description=f"profiling {name}")

        yield announce_bar


@app.command("profile")
def profile_command(
    model: str | None = typer.Option(None, "--model", "-m", help="Registered model name, or esrkit_x4 (bundled)."),
    weights: Path | None = typer.Option(None, "--weights", "-w", help="Checkpoint file to load and profile."),
    all_models: bool = typer.Option(False, "--all", help="Profile every model of the zoo."),
    scale: int = typer.Option(4, "--scale", help="Upscaling factor (for --model / --all)."),
    input_size: str = typer.Option("256x256", "--input", help="LR input size HxW (challenges: 256x256)."),
    device: str = typer.Option("cpu", "--device", help="auto, cpu, cuda or cuda:N."),
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
    from ..quantize.runtime import is_quantized_path

    if weights is not None and is_quantized_path(weights):  # counts need the torch module, which an int8 file is not
        raise InputError(f"{weights}: profile counts a PyTorch checkpoint; time an int8 model with recommend or "
                         "benchmarks/inference.py --int8", param="weights")

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
    _emit(_describe(size, targets, form, rules, dev, precision, runtime, warmup, repeats, trials, threads))
    for line in table.header():
        _emit(line)
    results = []
    with _progress(len(targets)) as announce:
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


def _describe(
    size: tuple[int, int],
    targets: Sequence[tuple[str, Any, int | None]],
    form: str,
    rules: str,
    device: Any,
    precision: str,
    runtime: bool,
    warmup: int,
    repeats: int,
    trials: int,
    threads: int | None,
) -> str:
    """The line above the table saying what was measured and how, so a pasted table carries its settings."""
    scales = sorted({s for _, _, s in targets if s is not None})
    scale = f"×{scales[0]}" if len(scales) == 1 else "scale as loaded"
    what = f"esrkit profile: {size[0]}x{size[1]} LR input, {scale}, {form} form, {rules} rules"
    if not runtime:
        return f"{what}; not timed"
    if device.type == "cpu":
        import torch

        count = threads if threads is not None else torch.get_num_threads()
        where = f"cpu, {count} thread{'s' if count != 1 else ''}"
    else:
        where = str(device)
    return (
        f"{what}; {where}, {precision.lower()}, {warmup} warm-up, median of {repeats}×{trials} forwards"
        f" (best of {trials} trial{'s' if trials != 1 else ''} in --json)"
    )
