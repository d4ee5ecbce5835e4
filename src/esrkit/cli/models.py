"""``esrkit models``: the zoo with its provenance, parameter counts and capabilities."""

from __future__ import annotations

from typing import Annotated

import typer

from ._app import app


@app.command("models")
def list_zoo(
    scale: Annotated[int, typer.Option("--scale", help="Scale at which parameters are counted.")] = 4,
) -> None:
    """List every registered model: family, parameters (train and deploy form), input range, size rules, paper."""
    from rich.console import Console
    from rich.table import Table

    from ..models.registry import zoo_summary

    table = Table(title=f"esrkit model zoo (parameters at ×{scale})")
    for col in ("model", "family", "params", "deploy params", "range", "scales", "min px", "tiles exact", "paper"):
        table.add_column(col, justify="right" if "params" in col or col == "min px" else "left", overflow="fold")
    for row in zoo_summary(scale):
        caps = row["capabilities"]
        table.add_row(
            row["name"], row["family"],
            "-" if row["params"] is None else f"{row['params']:,}",
            "-" if row["deploy_params"] is None else f"{row['deploy_params']:,}",
            f"[0,{row['input_range']:g}]", ",".join(map(str, row["scales"])),
            str(caps.min_size) + (f" (×{caps.size_multiple})" if caps.size_multiple > 1 else ""),
            "yes" if caps.tile_exact else "no", row["paper"],
        )
    Console(width=180).print(table)
