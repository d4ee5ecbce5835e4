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

from ..console import stdout_console
from ..errors import InputError
from ..fileio import check_output_path, write_text_atomic
from ._app import app

challenge_app = typer.Typer(
    help="Rank rows under NTIRE 2023 / AIM 2020 / AIS 2024 rules, or measure a model's challenge row.",
    no_args_is_help=True,
)
app.add_typer(challenge_app, name="challenge")


def print_ranking(ranking: Any) -> None:
    """Print a :class:`~esrkit.challenge.Ranking` as a rich table (``value (rank)`` cells, as the reports)."""
    from rich.markup import escape
    from rich.table import Table

    headers, body = ranking.display()
    table = Table(title=f"{ranking.protocol.title} — ordered by {ranking.order_by}")
    for i, header in enumerate(headers):
        table.add_column(
            escape(header),  # "Δ [dB]", "Runtime [ms]": rich would read the brackets as markup and drop them
            justify="left" if i in (1, len(headers) - 1) else "right",
            overflow="fold",
            no_wrap=i < len(headers) - 1,  # numbers and names stay on one line; only the note wraps
            max_width=48 if i == len(headers) - 1 else None,
        )
    for entry, cells in zip(ranking.entries, body, strict=True):
        table.add_row(*map(escape, cells), style=None if entry.ranked else "dim")
    stdout_console().print(table)


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

    if schema:
        stdout_console().print(_schema_table(load_protocol(challenge)))
        return
    if not rows:
        raise InputError("give at least one row file (or --schema for the columns)", param="rows")
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


def _schema_table(protocol: Any) -> Any:
    from rich.table import Table

    table = Table(title=f"{protocol.title}: row columns (spellings and units: esrkit.challenge.rows)")
    for col in ("key", "report label", "use"):
        table.add_column(col)
    for key, label, use in protocol.schema():
        table.add_row(key, label, use, style=None if "ranked" in use.split(";")[0] else "dim")
    return table


# ----------------------------------------------------------------------------------------------------
# run


def _print_row(document: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    from ..challenge import load_protocol, rank_rows, rows_from_records

    protocol = load_protocol(document["challenge"])
    row = rows_from_records([document["row"]], "measured")[0]
    table = Table(title=f"{protocol.title}: {row.label}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in row.values.items():
        table.add_row(escape(protocol.label(key)), f"{value:.3f}" if key == "params_m" else f"{value:.2f}")
    entry = rank_rows([row], protocol).entries[0]
    verdict = "eligible" if entry.ranked else f"not rankable: {entry.reason}"
    table.caption = escape("; ".join([verdict, *entry.notes, *document["details"]["notes"]]))
    stdout_console().print(table)


def _print_ais_row(document: dict[str, Any]) -> None:
    """Per-QP fidelity of the model and of Lanczos on the same images, then Δ, runtime and the score S."""
    from rich.markup import escape
    from rich.table import Table

    from ..challenge import load_protocol, rows_from_records

    protocol = load_protocol(document["challenge"])
    rows = rows_from_records(document["rows"], "measured")
    model, lanczos = rows[0], rows[1]
    details = document["details"]
    table = Table(title=escape(f"{protocol.title}: {model.label} on {details['data']}"))
    table.add_column("QP", justify="right")
    for head in ("PSNR-RGB", "PSNR-Y", "SSIM-RGB", "SSIM-Y", "PSNR-Y Lanczos", "ΔY"):
        table.add_column(head, justify="right")
    for qp in details["qps"]:
        y, y_base = model.get(f"psnr_y_qp{qp}") or 0.0, lanczos.get(f"psnr_y_qp{qp}") or 0.0
        table.add_row(str(qp), f"{model.get(f'psnr_rgb_qp{qp}'):.2f}", f"{y:.2f}",
                      f"{model.get(f'ssim_rgb_qp{qp}'):.3f}", f"{model.get(f'ssim_y_qp{qp}'):.3f}",
                      f"{y_base:.2f}", f"{y - y_base:+.3f}")
    eligible = "eligible" if details["eligible"] else f"not eligible: {details['reason']}"
    summary = [f"Δ (mean PSNR-Y at QP31, QP63 over Lanczos) {details['delta_db']:+.3f} dB",
               f"runtime {model.get('runtime_ms'):.3f} ms", f"{model.get('params_m'):.3f} M params",
               f"{model.get('macs_g'):.2f} GMACs", f"score S = 2·2^Δ/(√T·0.1) = {details['score']:.2f} ({eligible})"]
    table.caption = escape("; ".join(summary + details["notes"]))
    stdout_console().print(table)


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
    weights: Annotated[Path, typer.Option("--weights", "-w", help="Checkpoint (.pth or .safetensors).")],
    data_root: Annotated[
        Path,
        typer.Option("--data-root", "--data",
                     help="NTIRE 2023/AIM 2020: the folder holding the challenge's sets (DIV2K_valid, LSDIR_valid). "
                          "AIS 2024: any folder of HR images (the official test set is not public)."),
    ],
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
    from ..challenge import load_protocol, measure_challenge_row

    if json_out is not None:
        check_output_path(json_out, param="json_out")
    if load_protocol(challenge).rule == "ais_score":
        from ..challenge.ais2024 import measure_ais2024_row, parse_size

        document = measure_ais2024_row(
            weights, data_root, team=team, device=device, precision=precision, qps=_qp_list(qps),
            crop_multiple=crop_multiple, decoder=decoder, warmup=warmup, repeats=repeats,
            runtime_size=parse_size(runtime_size),
        )  # fmt: skip
        _print_ais_row(document)
        if json_out is not None:
            write_text_atomic(json_out, json.dumps(document, indent=2) + "\n")
        return
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
