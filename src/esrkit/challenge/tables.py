"""The challenge tables as rich renderables: a ranking (``value (rank)`` cells, as the reports print them), a
measured row with its verdict, and the AIS 2024 row per QP beside Lanczos. ``esrkit challenge`` prints them."""

from __future__ import annotations

from typing import Any

from .entries import Ranking

__all__ = ["ais_row_table", "ranking_table", "row_table", "schema_table"]


def ranking_table(ranking: Ranking) -> Any:
    """A :class:`~esrkit.challenge.Ranking` as a rich table (``value (rank)`` cells, as the reports)."""
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
    return table


def row_table(document: dict[str, Any]) -> Any:
    """A measured row (``measure_challenge_row``'s document) and whether the challenge would rank it."""
    from rich.markup import escape
    from rich.table import Table

    from .protocols import load_protocol
    from .ranking import rank_rows
    from .rows import rows_from_records

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
    return table


def ais_row_table(document: dict[str, Any]) -> Any:
    """Per-QP fidelity of the model and of Lanczos on the same images, then Δ, runtime and the score S."""
    from rich.markup import escape
    from rich.table import Table

    from .protocols import load_protocol
    from .rows import rows_from_records

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
    return table


def schema_table(protocol: Any) -> Any:
    """The columns a challenge's rows may give: key, the report's label and how the rule uses it."""
    from rich.table import Table

    table = Table(title=f"{protocol.title}: row columns (spellings and units: esrkit.challenge.rows)")
    for col in ("key", "report label", "use"):
        table.add_column(col)
    for key, label, use in protocol.schema():
        table.add_row(key, label, use, style=None if "ranked" in use.split(";")[0] else "dim")
    return table
