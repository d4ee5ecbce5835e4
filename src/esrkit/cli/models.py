"""``esrkit models``: the zoo with its provenance, parameter counts and capabilities."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ._app import app

if TYPE_CHECKING:
    from rich.table import Table


@app.command("models")
def list_zoo(
    scale: Annotated[int, typer.Option("--scale", help="Scale at which parameters are counted.")] = 4,
) -> None:
    """List every registered model: family, parameters (train and deploy form), input range, size rules, paper.

    The first row is esrkit's own bundled model (esrkit_x4, the default of upscale and demo), read from its file.
    """
    from rich.table import Table

    from ..console import Progress, stdout_console
    from ..models.registry import list_models, zoo_summary

    with Progress() as progress:  # a bar on a terminal, a line per model when piped
        task = progress.add("counting parameters", total=len(list_models()))
        summary = zoo_summary(scale, on_model=lambda name: (progress.advance(task), progress.done(f"models: {name}")))
    table = Table(title=f"esrkit model zoo (parameters at ×{scale})")
    for col in ("model", "family", "params", "deploy params", "range", "scales", "min px", "tiles exact", "paper"):
        table.add_column(col, justify="right" if "params" in col or col == "min px" else "left", overflow="fold")
    _bundled_row(table, scale)
    for row in summary:
        caps = row["capabilities"]
        table.add_row(
            row["name"], row["family"],
            "-" if row["params"] is None else f"{row['params']:,}",
            "-" if row["deploy_params"] is None else f"{row['deploy_params']:,}",
            f"[0,{row['input_range']:g}]", ",".join(map(str, row["scales"])),
            str(caps.min_size) + (f" (×{caps.size_multiple})" if caps.size_multiple > 1 else ""),
            "yes" if caps.tile_exact else "no", row["paper"],
        )
    stdout_console().print(table)


def _bundled_row(table: Table, scale: int) -> None:
    """esrkit_x4's row: only its deploy form ships, so the train-form count is "-" (and both are "-" at a scale it
    was not trained for, like the zoo's rows); the paper column says where it comes from (recipe, measured
    scores) or that this installation lacks the file."""
    from ..bundled import BUNDLED_MODEL, bundled_summary

    row = bundled_summary()
    if row is None:
        table.add_row(BUNDLED_MODEL, "-", "-", "-", "-", "-", "-", "-",
                      "esrkit's own model: not in this installation (give --model or --weights)", end_section=True)
        return
    caps, provenance = row["capabilities"], row["provenance"]
    recipe = provenance.get("recipe")
    recipe_name = recipe.get("name") if isinstance(recipe, dict) else recipe
    scores = provenance.get("scores") or provenance.get("val") or {}
    # the scores also hold SSIM and RGB figures: the column shows the papers' figure, Y-PSNR, per benchmark
    score_text = ", ".join(f"{k.removeprefix('psnr_y_')} {float(v):.2f} dB" for k, v in scores.items()
                           if k.startswith("psnr_y_") and isinstance(v, int | float))
    paper = f"esrkit's own, bundled: {row['architecture']} trained by esrkit (recipe {recipe_name or '?'})"
    table.add_row(
        BUNDLED_MODEL, row["family"], "-", f"{row['params']:,}" if scale in row["scales"] else "-",
        f"[0,{row['input_range']:g}]",
        ",".join(map(str, row["scales"])),
        str(caps.min_size) + (f" (×{caps.size_multiple})" if caps.size_multiple > 1 else ""),
        "yes" if caps.tile_exact else "no", paper + (f"; Y-PSNR {score_text}" if score_text else ""),
        end_section=True,
    )
