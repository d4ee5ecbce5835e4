"""``esrkit recommend``: the fastest model meeting a fidelity floor on this machine, with its best backend and
precision, and the Pareto front of PSNR against runtime. Thin: the measuring is :func:`esrkit.recommend.recommend`.

Exit code 0 when a candidate meets the floor, 1 when none does (the tables are printed either way, so a script can
tell "nothing fast enough is good enough" from a recommendation), 2 on bad input.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..console import Progress, stdout_console
from ..errors import InputError
from ..fileio import check_output_path, write_json_atomic
from ._app import app


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


@app.command("recommend")
def recommend_command(
    min_psnr: Annotated[float, typer.Option("--min-psnr", help="Fidelity floor: Y-PSNR in dB on --data.")],
    data: Annotated[list[str], typer.Option("--data", help="Benchmark folder or standard name (repeatable).")],
    weights: Annotated[list[Path] | None, typer.Option("--weights", help="Checkpoint of a candidate (repeatable).")]
    = None,
    model: Annotated[list[str] | None, typer.Option("--model", help="Zoo model or baseline candidate (repeatable).")]
    = None,
    scale: Annotated[int, typer.Option("--scale", help="Upscaling factor.")] = 4,
    random_weights: Annotated[bool, typer.Option("--random-weights", help="Run the --model names with random "
                                                 "weights instead of their released ones (tests, timing).")] = False,
    threads: Annotated[int | None, typer.Option("--threads", help="CPU threads for every backend (default: torch's "
                                                "count, all physical cores).")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu (all backends) or cuda (torch).")] = "auto",
    input_size: Annotated[str, typer.Option("--input", help="LR input size HxW to time at.")] = "256x256",
    repeats: Annotated[int, typer.Option("--repeats", help="Timed forwards per combination (median).")] = 5,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed forwards first (2: OpenVINO specializes the "
                                        "shape on the second).")] = 2,
    tolerance: Annotated[float, typer.Option("--tolerance", help="Drop a backend/precision losing more than this "
                                             "many dB vs the model's fp32.")] = 0.02,
    data_root: Annotated[Path | None, typer.Option("--data-root", help="Benchmarks root (or $ESRKIT_DATA).")] = None,
    crop_multiple: Annotated[int | None, typer.Option("--crop-multiple", help="Crop HR to multiples of N (AIS: 24).")]
    = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write every measurement as JSON here.")] = None,
    save: Annotated[bool, typer.Option("--save", help="Make the fastest fp32 backend measured here the one "
                                       "--backend auto runs on this machine.")] = False,
) -> None:
    """Measure each model × backend × precision here and recommend the fastest that meets --min-psnr."""
    from ..device import resolve_device
    from ..profile.table import parse_hxw
    from ..recommend import Candidate, recommend

    # Validate everything before any work, so bad input costs nothing and leaves no file behind.
    size = parse_hxw(input_size)
    for w in weights or []:
        if not w.is_file():
            raise InputError(f"no such file: {w}", param="weights")
    candidates = [Candidate(weights=w) for w in weights or []] + [Candidate(name=m, random_weights=random_weights)
                                                                  for m in model or []]
    if not candidates:
        raise InputError("give at least one --weights FILE or --model NAME")
    if json_out is not None:
        check_output_path(json_out, param="json_out")
    if scale < 1:
        raise InputError(f"must be a positive integer, got {scale}", param="scale")
    if tolerance < 0:
        raise InputError(f"must be >= 0, got {tolerance}", param="tolerance")
    resolve_device(device)

    err = Console(stderr=True)
    with err.status("measuring") as status, Progress() as progress:  # piped: one line per measured combination
        result = recommend(candidates, data, min_psnr=min_psnr, scale=scale, device=device, threads=threads,
                           input_size=size, tolerance_db=tolerance, warmup=warmup, repeats=repeats,
                           data_root=data_root, crop_multiple=crop_multiple,
                           on_step=lambda text: (status.update(f"measuring {text}"),
                                                 progress.line(f"recommend: measuring {text}")))
    if save:
        from ..infer.backends import save_machine_choice

        chosen = result.fastest_fp32_backend()
        if chosen is not None:
            save_machine_choice(chosen)
            err.print(f"saved: --backend auto runs {chosen} on this machine", highlight=False)

    out = stdout_console()
    settings = result.settings
    where = f"{settings['device']}" + (f", {settings['threads']} threads" if settings["threads"] else "")
    table = Table(title=f"×{scale} Y-PSNR on {', '.join(Path(d).name for d in data)}; runtime at "
                        f"{size[0]}x{size[1]} ({where}, median of {repeats})")
    for col in ("model", "backend", "precision", "Y-PSNR", "Δ fp32 [dB]", "median [ms]", ""):
        table.add_column(col, justify="left" if col in ("model", "backend", "precision", "") else "right")
    reasons: list[str] = []  # why a combination cannot run: long, so listed under the table, each once
    for m in sorted(result.measurements, key=lambda m: (m.model, m.median_ms is None, m.median_ms or 0.0)):
        if m.status == "unavailable":
            if m.reason not in reasons:
                reasons.append(m.reason)
            note = f"cannot run [{reasons.index(m.reason) + 1}]"
        elif m.status == "dropped":
            note = f"dropped: {m.delta_db:+.3f} dB"
        else:
            note = "Pareto" if m.pareto else ""
        table.add_row(m.model, m.backend, m.precision, _fmt(m.psnr_y, ".3f"), _fmt(m.delta_db, "+.3f"),
                      _fmt(m.median_ms, ".1f"), note)
    out.print(table)
    for i, reason in enumerate(reasons, start=1):
        out.print(f"[{i}] {reason}", markup=False, highlight=False)

    front = Table(title="Pareto front (no other choice is both faster and closer to the HR)")
    for col in ("model", "backend", "precision", "Y-PSNR", "median [ms]", f"≥ {min_psnr:g} dB"):
        front.add_column(col, justify="left" if col in ("model", "backend", "precision") else "right")
    for m in result.front:
        front.add_row(m.model, m.backend, m.precision, f"{m.psnr_y:.3f}", f"{m.median_ms:.1f}",
                      "yes" if m.meets_floor else "no")
    out.print(front)

    if json_out is not None:
        write_json_atomic(json_out, result.to_dict())
    best = result.best
    if best is None:
        top = max(result.fp32_psnr.values())
        print(f"esrkit recommend: no candidate reaches {min_psnr:g} dB (best fp32 Y-PSNR {top:.3f})",
              file=sys.stderr)
        raise typer.Exit(1)
    out.print(f"[bold]recommended:[/] {best.model} on {best.backend} {best.precision}: {best.median_ms:.1f} ms at "
              f"{size[0]}x{size[1]}, Y-PSNR {best.psnr_y:.3f} dB (floor {min_psnr:g}, fp32 "
              f"{result.fp32_psnr[best.model]:.3f})")
