"""``esrkit models``: the zoo with its released weights, provenance, parameter counts and capabilities (the records
are :func:`esrkit.hub.listing.zoo_listing`; this module only prints them)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from ._app import app


@app.command("models")
def list_zoo(
    scale: Annotated[int, typer.Option("--scale", help="Scale at which parameters are counted.")] = 4,
    as_json: Annotated[bool, typer.Option("--json", help="Print the records as JSON instead of the table (every "
                                          "released file with URL, sha256, licence and cache state).")] = False,
) -> None:
    """List every model: released weights per scale, their licence and whether they are cached, then family,
    parameters (train and deploy form), input range, size rules and paper.

    The first row is esrkit's own bundled model (esrkit_x4, the default of upscale, evaluate, demo and export).
    A zoo name runs its released weights (fetched on first use, or with `esrkit pull`); "none" means the
    command needs --weights FILE (or --random-weights); "no weights" is a parameter-free baseline.
    """
    from ..console import Progress, stdout_console
    from ..hub.listing import zoo_listing
    from ..models.registry import list_models

    with Progress() as progress:  # a bar on a terminal, a line per model when piped
        task = progress.add("counting parameters", total=len(list_models()))
        records = zoo_listing(scale, on_model=lambda name: (progress.advance(task), progress.done(f"models: {name}")))
    if as_json:
        typer.echo(json.dumps(records, indent=2, default=str))
        return
    from rich.table import Table

    table = Table(title=f"esrkit model zoo (parameters at ×{scale})")
    for col in ("model", "weights", "licence", "cached", "family", "params", "deploy params", "range", "min px",
                "tiles exact", "paper"):
        table.add_column(col, justify="right" if "params" in col or col == "min px" else "left", overflow="fold")
    for record in records:
        table.add_row(*_cells(record), end_section=record["bundled"])
    stdout_console().print(table)


def _scales(files: list[dict[str, Any]]) -> str:
    return " ".join(f"×{s}" for s in sorted({f["scale"] for f in files})) or "-"


def _cells(r: dict[str, Any]) -> list[str]:
    """One table row; the bundled model's train-form count is "-" as only its deploy form ships."""
    if r["bundled"] and not r["available"]:
        return [r["name"], "missing", "-", "-", "-", "-", "-", "-", "-", "-",
                "esrkit's own model: not in this installation (give --model or --weights)"]
    if not r["needs_weights"]:
        weights, licence, cached = "no weights", "-", "-"
    elif r["bundled"]:
        weights, licence, cached = "bundled", "Apache-2.0", "-"
    else:
        released = r["released"]
        weights = _scales(released) if released else "none"
        licence = ", ".join(r["licences"]) or "-"
        cached = _scales([f for f in released if f["cached"]])
    caps = r["capabilities"]
    size = str(caps["min_size"]) + (f" (×{caps['size_multiple']})" if caps["size_multiple"] > 1 else "")
    return [r["name"], weights, licence, cached, r["family"], _count(r["params"]), _count(r["deploy_params"]),
            f"[0,{r['input_range']:g}]", size, "yes" if caps["tile_exact"] else "no", r["paper"]]


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"
