"""``esrkit challenge``: rank entries under a challenge's published rules, or measure a model's table row.

``rank`` reads rows (CSV/JSON, see :mod:`esrkit.challenge.rows`) and prints the ranked table exactly as the
challenge computes it. ``run`` produces the row a challenge table would print for one checkpoint (PSNR on the
challenge's sets, runtime, #params, FLOPs, #activations, memory, #conv), so a model can be ranked against the
published entries with ``rank``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ..fileio import check_output_path, write_text_atomic
from ._app import app

challenge_app = typer.Typer(
    help="Rank rows under NTIRE 2023 / AIM 2020 / AIS 2024 rules, or measure a model's challenge row.",
    no_args_is_help=True,
)
app.add_typer(challenge_app, name="challenge")


def _console() -> Any:
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        # Piped to a file or a CI log: wide enough that a 14-column challenge table stays one line per row.
        console = Console(width=240)
    return console


def print_ranking(ranking: Any) -> None:
    """Print a :class:`~esrkit.challenge.Ranking` as a rich table (``value (rank)`` cells, as the reports)."""
    from rich.table import Table

    headers, body = ranking.display()
    table = Table(title=f"{ranking.protocol.title} — ordered by {ranking.order_by}")
    for i, header in enumerate(headers):
        table.add_column(
            header,
            justify="left" if i in (1, len(headers) - 1) else "right",
            overflow="fold",
            no_wrap=i < len(headers) - 1,  # numbers and names stay on one line; only the note wraps
            max_width=48 if i == len(headers) - 1 else None,
        )
    for entry, cells in zip(ranking.entries, body, strict=True):
        table.add_row(*cells, style=None if entry.ranked else "dim")
    _console().print(table)


@challenge_app.command("rank")
def rank_command(
    rows: Annotated[list[Path], typer.Argument(help="Row files (.csv/.tsv/.json); see esrkit.challenge.rows.")],
    challenge: Annotated[
        str, typer.Option("--challenge", "-c", help="ntire2023, aim2020, ais2024, or a protocol .yaml path.")
    ],
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the ranking as JSON here.")] = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write the ranking as CSV here.")] = None,
    order_by: Annotated[
        str | None, typer.Option("--order-by", help="Rank that orders the table (e.g. overall).")
    ] = None,
    no_floor: Annotated[
        bool,
        typer.Option(
            "--no-floor",
            help="Rank entries under the PSNR floor too (for re-ranking tables that did not apply it).",
        ),
    ] = False,
) -> None:
    """Rank rows under a challenge's rules and print the table."""
    from ..challenge import load_protocol, rank_rows, read_rows

    if json_out is not None:
        check_output_path(json_out, param="json_out")
    if csv_out is not None:
        check_output_path(csv_out, param="csv_out")
    protocol = load_protocol(challenge)
    ranking = rank_rows(read_rows(rows), protocol, enforce_floor=not no_floor, order_by=order_by)
    print_ranking(ranking)
    if json_out is not None:
        write_text_atomic(json_out, json.dumps(ranking.to_dict(), indent=2) + "\n")
    if csv_out is not None:
        write_text_atomic(csv_out, ranking.to_csv())


# ----------------------------------------------------------------------------------------------------
# run


def _print_row(document: dict[str, Any]) -> None:
    from rich.table import Table

    from ..challenge import load_protocol, rank_rows, rows_from_records

    protocol = load_protocol(document["challenge"])
    row = rows_from_records([document["row"]], "measured")[0]
    table = Table(title=f"{protocol.title}: {row.label}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in row.values.items():
        table.add_row(protocol.label(key), f"{value:.3f}" if key == "params_m" else f"{value:.2f}")
    entry = rank_rows([row], protocol).entries[0]
    verdict = "eligible" if entry.ranked else f"not rankable: {entry.reason}"
    table.caption = "; ".join([verdict, *entry.notes, *document["details"]["notes"]])
    _console().print(table)


@challenge_app.command("run")
def run_command(
    challenge: Annotated[str, typer.Argument(help="ntire2023 or aim2020.")],
    weights: Annotated[Path, typer.Option("--weights", "-w", help="Checkpoint (.pth or .safetensors).")],
    data_root: Annotated[
        Path,
        typer.Option("--data-root", help="Folder holding the challenge's sets (NTIRE 2023: DIV2K_valid, LSDIR_valid)."),
    ],
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the row (and details) as JSON.")] = None,
    team: Annotated[str | None, typer.Option("--team", help="Name for the row (default: the model name).")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
    precision: Annotated[str, typer.Option("--precision", help="fp32 (the challenges), fp16 or bf16.")] = "fp32",
    trials: Annotated[int, typer.Option("--trials", help="Timed passes per set (best one counts).")] = 3,
    runtime_images: Annotated[
        int, typer.Option("--runtime-images", help="Images per set to time (NTIRE timed 100 per set).")
    ] = 100,
) -> None:
    """Produce a challenge table row for one model: PSNR, runtime, #params, FLOPs, #acts, memory, #conv."""
    from ..challenge import measure_challenge_row

    if json_out is not None:
        check_output_path(json_out, param="json_out")
    document = measure_challenge_row(
        challenge,
        weights,
        data_root,
        team=team,
        device=device,
        precision=precision,
        trials=trials,
        runtime_images=runtime_images,
    )
    _print_row(document)
    if json_out is not None:
        write_text_atomic(json_out, json.dumps(document, indent=2) + "\n")
