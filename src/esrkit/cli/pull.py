"""``esrkit pull``: fetch released weights into the cache ahead of use (the work is :func:`esrkit.hub.pull`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import app


@app.command("pull")
def pull_command(
    names: Annotated[list[str] | None, typer.Argument(help="Zoo models whose released weights to fetch.",
                                                      metavar="[NAME]...", show_default=False)] = None,
    scale: Annotated[int | None, typer.Option("--scale", help="Only this scale (default: every released scale).")]
    = None,
    all_models: Annotated[bool, typer.Option("--all", help="Every released file of the catalogue.")] = False,
    from_file: Annotated[Path | None, typer.Option("--from", help="Register a file you already have (checked by "
                                                   "its sha256) instead of downloading.")] = None,
) -> None:
    """Download released weights into the cache ($XDG_CACHE_HOME/esrkit/weights), verified by sha256, e.g. before
    going offline. ESRKIT_WEIGHTS_MIRROR=URL-or-folder replaces https://github.com; ESRKIT_OFFLINE=1 never
    connects."""
    from ..hub import pull

    for item in pull(names, scale=scale, all_models=all_models, from_file=from_file):
        what = {"cached": "already cached", "downloaded": "downloaded", "registered": f"registered {from_file}"}
        typer.echo(f"{item.entry.label}: {what[item.status]} → {item.path}")
