"""``esrkit challenge``: rank entries under a challenge's published rules, or measure a model's table row.

``rank`` reads rows (CSV/JSON, see :mod:`esrkit.challenge.rows`) and prints the ranked table exactly as the
challenge computes it. ``run`` produces the row a challenge table would print for one checkpoint (PSNR on the
challenge's sets, runtime, #params, FLOPs, #activations, memory, #conv), so a model can be ranked against the
published entries with ``rank``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..console import stdout_console
from ..errors import InputError
from ..fileio import check_output_path, write_json_atomic, write_text_atomic
from ._app import app

challenge_app = typer.Typer(
    help="Rank rows under NTIRE 2023 / AIM 2020 / AIS 2024 rules, or measure a model's challenge row.",
    no_args_is_help=True,
)
app.add_typer(challenge_app, name="challenge")




@challenge_app.command("rank")
def rank_command(
    challenge: Annotated[
        str, typer.Option("--challenge", "-c", help="ntire2023, aim2020, ais2024, or a protocol .yaml path.")
    ],
    rows: Annotated[list[Path] | None, typer.Argument(help="Row files (.csv/.tsv/.json); --schema: columns.",
                                                      show_default=False)] = None,
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
    schema: Annotated[bool, typer.Option("--schema", help="Print the challenge's row columns and exit.")] = False,
) -> None:
    """Rank rows under a challenge's rules and print the table."""
    from ..challenge import load_protocol, rank_rows, read_rows
    from ..challenge.tables import ranking_table, schema_table

    if schema:
        stdout_console().print(schema_table(load_protocol(challenge)))
        return
    if not rows:
        raise InputError("give at least one row file (or --schema for the columns)", param="rows")
    if json_out is not None:
        check_output_path(json_out, param="json_out")
    if csv_out is not None:
        check_output_path(csv_out, param="csv_out")
    protocol = load_protocol(challenge)
    ranking = rank_rows(read_rows(rows), protocol, enforce_floor=not no_floor, order_by=order_by)
    stdout_console().print(ranking_table(ranking))
    if json_out is not None:
        write_json_atomic(json_out, ranking.to_dict())
    if csv_out is not None:
        write_text_atomic(csv_out, ranking.to_csv())


# ----------------------------------------------------------------------------------------------------
# run


def _qp_list(text: str | None) -> tuple[int, ...]:
    from ..data.ais2024 import QPS

    if text is None:
        return QPS
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise InputError(f"expected comma-separated integers such as 31,63, got {text!r}", param="qps") from None


@challenge_app.command("run")
def run_command(
    challenge: Annotated[str, typer.Argument(help="ntire2023, aim2020 or ais2024.")],
    data_root: Annotated[
        Path,
        typer.Option("--data-root", "--data",
                     help="NTIRE 2023/AIM 2020: the folder holding the challenge's sets (DIV2K_valid, LSDIR_valid). "
                          "AIS 2024: any folder of HR images (the official test set is not public)."),
    ],
    weights: Annotated[Path | None, typer.Option("--weights", "-w", help="Checkpoint (.pth or .safetensors).")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Zoo model (its released weights) or esrkit_x4, "
                                              "instead of --weights.")] = None,
    random_weights: Annotated[bool, typer.Option("--random-weights", help="Run --model with random weights "
                                                 "(tests, timing).")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the row (and details) as JSON.")] = None,
    team: Annotated[str | None, typer.Option("--team", help="Name for the row (default: the model name).")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
    precision: Annotated[str, typer.Option("--precision", help="fp32 (the challenges), fp16 or bf16.")] = "fp32",
    trials: Annotated[int, typer.Option("--trials", help="Timed passes per set (best one counts).")] = 3,
    runtime_images: Annotated[
        int, typer.Option("--runtime-images", help="Images per set to time (NTIRE timed 100 per set).")
    ] = 100,
    repeats: Annotated[int, typer.Option("--repeats", help="AIS 2024: timed forwards (the survey: 100).")] = 100,
    warmup: Annotated[int, typer.Option("--warmup", help="AIS 2024: untimed forwards before timing.")] = 50,
    runtime_size: Annotated[
        str, typer.Option("--runtime-size", help="AIS 2024: LR WIDTHxHEIGHT to time (540p → 4K).")
    ] = "960x540",
    qps: Annotated[
        str | None, typer.Option("--qps", help="AIS 2024: comma-separated QPs (default 31,39,47,55,63).")
    ] = None,
    crop_multiple: Annotated[
        int | None, typer.Option("--crop-multiple", help="AIS 2024: crop HR to multiples of this (CASR: 24).")
    ] = None,
    decoder: Annotated[str, typer.Option("--decoder", help="AIS 2024: AVIF decoder, ffmpeg or pillow.")] = "ffmpeg",
) -> None:
    """Produce a challenge table row for one model: PSNR, runtime, #params, FLOPs, #acts, memory, #conv
    (AIS 2024: PSNR/SSIM per QP, Δ over Lanczos, runtime at 540p, MACs, and the score)."""
    from ..challenge import measure_challenge_row
    from ..challenge.ais2024 import parse_width_height
    from ..challenge.measures import measured_table

    if json_out is not None:
        check_output_path(json_out, param="json_out")
    document = measure_challenge_row(
        challenge, weights, data_root, model=model, random_weights=random_weights, team=team, device=device,
        precision=precision, trials=trials,
        runtime_images=runtime_images, qps=_qp_list(qps), crop_multiple=crop_multiple, decoder=decoder,
        warmup=warmup, repeats=repeats, runtime_size=parse_width_height(runtime_size),
    )  # fmt: skip
    stdout_console().print(measured_table(document))
    if json_out is not None:
        write_json_atomic(json_out, document)
