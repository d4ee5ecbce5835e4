"""``esrkit report``: one self-contained HTML page with the ranked table, the PSNR/runtime and params/PSNR
scatters, and SR crops (layout of ``--images`` in :mod:`esrkit.challenge.report`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputError
from ..fileio import check_output_path
from ._app import app


def _challenge_from_files(paths: list[Path]) -> str | None:
    """The challenge named inside JSON inputs (``challenge run``/``rank --json`` outputs), if they agree."""
    names = set()
    for path in paths:
        if path.suffix.lower() == ".json" and path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # read_rows reports the problem with the file and row
            if isinstance(data, dict) and isinstance(data.get("challenge"), str):
                names.add(data["challenge"])
    if len(names) > 1:
        raise InputError(f"inputs name different challenges ({', '.join(sorted(names))}); pass --challenge")
    return names.pop() if names else None


@app.command("report")
def report_command(
    inputs: Annotated[list[Path], typer.Argument(help="Row/result files (.csv/.json), e.g. challenge run outputs.",
                                                  metavar="INPUT")],
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write.")],
    challenge: Annotated[
        str | None,
        typer.Option("--challenge", "-c", help="ntire2023, aim2020 or ais2024 (default: named in the JSON inputs)."),
    ] = None,
    images: Annotated[
        Path | None,
        typer.Option("--images", help="Folder with HR/, optional LR/ or bicubic/, and one SR folder per model."),
    ] = None,
    title: Annotated[str | None, typer.Option("--title", help="Page title.")] = None,
    crops: Annotated[int, typer.Option("--crops", help="How many images to show crops of.")] = 2,
    crop_size: Annotated[int, typer.Option("--crop-size", help="Crop side in HR pixels.")] = 96,
    no_floor: Annotated[bool, typer.Option("--no-floor", help="Rank entries under the PSNR floor too.")] = False,
) -> None:
    """Write a self-contained HTML report of a challenge ranking."""
    from ..challenge import load_protocol, rank_rows, read_rows
    from ..challenge.report import write_report

    check_output_path(output, param="output")
    if crops < 1:
        raise InputError(f"must be >= 1, got {crops}", param="crops")
    if crop_size < 8:
        raise InputError(f"must be >= 8, got {crop_size}", param="crop_size")
    name = challenge or _challenge_from_files(inputs)
    if name is None:
        raise InputError("which challenge? pass --challenge ntire2023|aim2020|ais2024")
    ranking = rank_rows(read_rows(inputs), load_protocol(name), enforce_floor=not no_floor)
    path = write_report(ranking, output, images_dir=images, title=title, max_images=crops, crop_size=crop_size)
    typer.echo(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB, {len(ranking.ranked)} ranked entries)")
