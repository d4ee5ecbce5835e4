"""What ``esrkit profile`` prints and how long it times: the timing grades, the ``HxW`` input-size parser, the
streaming text table and the line above it that records the settings.

Shared by ``esrkit profile``, ``esrkit recommend`` and ``benchmarks/profile_zoo.py``.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..errors import InputError

__all__ = ["TIMING_GRADES", "ProfileTable", "describe_settings", "parse_hxw", "progress_announcer", "timing_counts"]

_SIZE = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")

# Timing presets (warm-up forwards, timed forwards per trial, trials, CPU threads; None = torch's default).
# "quick" answers "how fast, roughly" in a few forwards per model with the threads a user's own run would get;
# "challenge" is the NTIRE/AIM protocol (best of three consecutive trials of ten) on one pinned thread, the most
# repeatable figure on a shared machine and the one to compare with published tables.
TIMING_GRADES: dict[str, dict[str, int | None]] = {
    "quick": {"warmup": 1, "repeats": 1, "trials": 1, "threads": None},
    "challenge": {"warmup": 3, "repeats": 10, "trials": 3, "threads": 1},
}


def parse_hxw(text: str) -> tuple[int, int]:
    """``"256x256"`` (height x width) to ``(256, 256)``; anything else is an :class:`InputError` about
    ``input_size`` (shown as ``--input``)."""
    match = _SIZE.match(text or "")
    if not match:
        raise InputError(f"expected HxW such as 256x256, got {text!r}", param="input_size")
    height, width = int(match.group(1)), int(match.group(2))
    if height <= 0 or width <= 0:
        raise InputError(f"height and width must be positive, got {text!r}", param="input_size")
    return height, width


def timing_counts(grade: str, *, warmup: int | None = None, repeats: int | None = None, trials: int | None = None,
                  threads: int | None = None) -> tuple[int, int, int, int | None]:
    """``(warmup, repeats, trials, threads)`` of a timing grade, each overridden where given, and checked."""
    from .runtime import check_timing_counts

    if grade not in TIMING_GRADES:
        raise InputError(f"expected one of {', '.join(TIMING_GRADES)}, got {grade!r}", param="timing")
    preset = TIMING_GRADES[grade]
    warmup = preset["warmup"] if warmup is None else warmup
    repeats = preset["repeats"] if repeats is None else repeats
    trials = preset["trials"] if trials is None else trials
    threads = preset["threads"] if threads is None else threads
    assert warmup is not None and repeats is not None and trials is not None
    check_timing_counts(warmup=warmup, repeats=repeats, trials=trials, threads=threads)
    return warmup, repeats, trials, threads


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


@contextlib.contextmanager
def progress_announcer(total: int) -> Iterator[Callable[[int, str], None]]:
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


def describe_settings(
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
    random_weights: bool = False,
) -> str:
    """The line above the table saying what was measured and how, so a pasted table carries its settings. A zoo
    name is profiled with random weights (counts and timings do not depend on the values), and the line says so."""
    scales = sorted({s for _, _, s in targets if s is not None})
    scale = f"×{scales[0]}" if len(scales) == 1 else "scale as loaded"
    what = f"esrkit profile: {size[0]}x{size[1]} LR input, {scale}, {form} form, {rules} rules"
    if random_weights:
        what += ", random weights (counts and runtime do not depend on them)"
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
