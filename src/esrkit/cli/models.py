"""``esrkit models``: the zoo with its provenance and parameter counts."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ._app import app


@app.command("models")
def list_zoo(
    scale: Annotated[int, typer.Option("--scale", help="Scale at which parameters are counted.")] = 4,
) -> None:
    """List every registered model: family, parameters (train and deploy form), input range, paper."""
    from ..models import create_model, list_models, model_info, reparameterize

    table = Table(title=f"esrkit model zoo (parameters at ×{scale})")
    for col in ("model", "family", "params", "deploy params", "official range", "paper"):
        table.add_column(col, justify="right" if "params" in col else "left", overflow="fold")
    for name in list_models():
        info = model_info(name)
        if scale not in info.scales:
            table.add_row(name, info.family, "-", "-", f"[0,{info.input_range:g}]", info.paper)
            continue
        model = create_model(name, scale=scale)
        n_train = sum(p.numel() for p in model.parameters())
        n_deploy = sum(p.numel() for p in reparameterize(model).parameters()) if info.deploy != "none" else n_train
        table.add_row(name, info.family, f"{n_train:,}", f"{n_deploy:,}", f"[0,{info.input_range:g}]", info.paper)
    Console(width=160).print(table)
