"""The report page: protocol, ranked table, figures and crops in one self-contained HTML file (inline CSS, base64
images), written atomically."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from pathlib import Path

from ...fileio import write_text_atomic
from ..entries import Ranking, psnr_label
from .crops import CropSet, crop_psnr, find_crop_sets, png_base64
from .figures import ScatterFigure, report_figures, without_unit

__all__ = ["render_report", "write_report"]


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;
max-width:1200px;color:#222;padding:0 16px}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
h3{font-size:1em}.small{font-size:.85em;color:#555}
table.rank{border-collapse:collapse;font-size:.78em;width:100%}
table.rank th,table.rank td{border:1px solid #ddd;padding:2px 5px;text-align:right;white-space:nowrap}
table.rank th{background:#f3f3f3;position:sticky;top:0;white-space:normal;vertical-align:bottom;min-width:3em}
table.rank th.team,table.rank th.note,table.rank td.team,table.rank td.note{text-align:left}
table.rank td.note{white-space:normal;color:#666;min-width:9em;max-width:20em}
table.rank .rk{color:#777;font-size:.85em;margin-left:.25em}
.tablewrap{overflow-x:auto}
table.rank tr.unranked td{color:#888;background:#fafafa}table.rank tr.top td{font-weight:600}
dl.proto{display:grid;grid-template-columns:max-content auto;gap:2px 14px;font-size:.9em}
dl.proto dt{font-weight:600}dl.proto dd{margin:0}
.figs{display:flex;flex-wrap:wrap;gap:16px}figure.fig{margin:0;max-width:100%}
figure.fig img{max-width:100%;height:auto}figure.fig figcaption{max-width:52em}
.crops{display:flex;flex-wrap:wrap;gap:10px}figure.crop{margin:0;text-align:center;font-size:.8em}
figure.crop img{width:192px;height:192px;image-rendering:pixelated;border:1px solid #ccc}
"""


def _enforced(flag: bool) -> str:
    return "enforced" if flag else "not enforced"


def _order_words(ranking: Ranking) -> str:
    for column in ranking.columns:
        if column.rank_key == ranking.order_by or column.key == ranking.order_by:
            return without_unit(column.label)
    return without_unit(ranking.protocol.label(ranking.order_by))


def _rule_words(ranking: Ranking) -> str:
    """The ranking rule in words (the rule's name is a code key, not something a reader should decode)."""
    p, params = ranking.protocol, ranking.protocol.ranking

    def label(key: str) -> str:
        return without_unit(p.label(key))

    if p.rule == "ais_score":
        keys = [label(k) for k in params.get("delta_from") or []]
        return (f"Score S = 2·2^Δ / (√T · C) with C = {float(params.get('constant_c', 0.1)):g} and T the runtime in "
                f"ms, where Δ is the mean of {' and '.join(keys)} minus the same mean for "
                f"{p.baseline.get('name', 'the baseline')}; higher scores rank first")
    if p.rule == "rank_sum":
        parts = [f"each of {', '.join(label(k) for k in params.get('metrics') or [])} is ranked, lower first"]
        for combo in params.get("combined") or []:
            summed = ", ".join(label(k) for k in combo.get("sum_of") or [])
            parts.append(f"{combo.get('label', combo['key'])} is the sum of the ranks of {summed}")
        return "; ".join(parts) + f"; the table is ordered by {_order_words(ranking)}"
    return p.rule


def _requirements(ranking: Ranking) -> str:
    p, params = ranking.protocol, ranking.protocol.ranking
    parts = [f"{without_unit(p.label(t.metric))} ≥ {t.min:.2f} dB ({_enforced(t.enforced and ranking.enforce_floor)})"
             for t in p.thresholds]
    if p.rule == "ais_score":
        on = "" if ranking.enforce_floor else " (not enforced)"
        if "min_delta_exclusive" in params:
            parts.append(f"improve on {p.baseline.get('name', 'the baseline')} (Δ > "
                         f"{float(params['min_delta_exclusive']):g} dB){on}")
        if "max_runtime_ms_exclusive" in params:
            parts.append(f"runtime under {float(params['max_runtime_ms_exclusive']):g} ms{on}")
    return "; ".join(parts) or "none"


def _measured_on(ranking: Ranking) -> list[tuple[str, str]]:
    """Where measured rows come from (``challenge run`` writes a ``data`` column): the protocol above describes
    the official sets, so a reader must see when the numbers are from other images."""
    folders = sorted({e.row.extra["data"] for e in ranking.entries if e.row.extra.get("data")})
    if not folders:
        return []
    return [("Measured on", f"{'; '.join(folders)} — not the official test data, so PSNR (and Δ, score) "
                            "differ from the published table")]


def _protocol_html(ranking: Ranking) -> str:
    p = ranking.protocol
    items = [
        ("Source", p.source),
        ("Scale / degradation", f"×{p.scale}; {p.degradation}"),
        (
            "Datasets",
            "; ".join(f"{d.name} ({d.role}{', ' + str(d.images) + ' images' if d.images else ''})" for d in p.datasets),
        ),
        ("Runtime", "; ".join(str(p.runtime.get(k)) for k in ("statistic", "hardware") if p.runtime.get(k))),
        *_measured_on(ranking),
        ("Requirements", _requirements(ranking)),
        ("Ranking rule", _rule_words(ranking)),
    ]
    return (
        '<dl class="proto">'
        + "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in items)
        + "</dl>"
    )


_RANKED_CELL = re.compile(r"^(.*\S) \((\d+)\)$")


def _cell_html(cell: str) -> str:
    """A ``value (rank)`` cell with the rank set smaller, so the number a reader compares stands out."""
    match = _RANKED_CELL.match(cell)
    if match is None:
        return html.escape(cell)
    return f'{html.escape(match.group(1))}<span class="rk">({match.group(2)})</span>'


def _readable(text: str, ranking: Ranking) -> str:
    """A note or reason with metric keys (``psnr_val``) replaced by the words the table uses (``Val PSNR``)."""
    words = {c.key: without_unit(c.label) for c in ranking.columns}
    for spec in ranking.protocol.metrics:
        words.setdefault(spec.key, without_unit(spec.label))
    for threshold in ranking.protocol.thresholds:
        for key in (threshold.metric, threshold.stand_in):
            if key:
                words.setdefault(key, without_unit(psnr_label(ranking.protocol, key)))
    for key in sorted(words, key=len, reverse=True):
        text = re.sub(rf"(?<![\w]){re.escape(key)}(?![\w])", words[key], text)
    return text


def _table_html(ranking: Ranking) -> str:
    headers, body = ranking.display()
    last = len(headers) - 1
    head = "".join(
        f'<th class="{"team" if i == 1 else "note" if i == last else ""}">{html.escape(h)}</th>'
        for i, h in enumerate(headers)
    )
    rows = []
    for entry, cells in zip(ranking.entries, body, strict=True):
        cls = "unranked" if not entry.ranked else ("top" if entry.position is not None and entry.position <= 3 else "")
        tds = []
        for i, cell in enumerate(cells):
            kind = "team" if i == 1 else ("note" if i == len(cells) - 1 else "")
            text = html.escape(_readable(cell, ranking) if kind == "note" else cell) if kind else _cell_html(cell)
            tds.append(f'<td class="{kind}">{text}</td>' if kind else f"<td>{text}</td>")
        rows.append(f'<tr class="{cls}">{"".join(tds)}</tr>')
    body_html = "".join(rows)
    return (
        f'<div class="tablewrap"><table class="rank" id="ranking"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body_html}</tbody></table></div>"
    )


def _figure_html(fig_id: str, figure: ScatterFigure | None, caption: str) -> str:
    if figure is None:
        return f'<p class="small">{html.escape(caption)} Not drawn: no entry has both values.</p>'
    notes = [figure.naming] if figure.naming else []
    if figure.unlabelled:
        notes.append(f"Not labelled for lack of room: {', '.join(figure.unlabelled)} (see the table).")
    text = " ".join([caption, *notes])
    return (f'<figure class="fig" id="{fig_id}"><img alt="{html.escape(figure.title)}" '
            f'src="data:image/png;base64,{figure.png}"><figcaption class="small">{html.escape(text)}'
            "</figcaption></figure>")


def _crops_html(sets: Sequence[CropSet]) -> str:
    parts = []
    for cs in sets:
        top, left, size = cs.box
        hr_crop = cs.hr[top : top + size, left : left + size]
        cells = [("HR", hr_crop, "")]
        for label, image in cs.columns:
            crop = image[top : top + size, left : left + size]
            cells.append((label, crop, f"{crop_psnr(crop, hr_crop):.2f} dB"))
        figs = "".join(
            f'<figure class="crop"><img alt="{html.escape(label)} crop of {html.escape(cs.name)}" '
            f'src="data:image/png;base64,{png_base64(crop)}"><figcaption>{html.escape(label)}'
            f"{'<br>' + html.escape(psnr) if psnr else ''}</figcaption></figure>"
            for label, crop, psnr in cells
        )
        parts.append(
            f'<div class="cropset"><h3>{html.escape(cs.name)} — {size}×{size} at (y={top}, x={left})</h3>'
            f'<div class="crops">{figs}</div>'
            f'<p class="small">PSNR is RGB on the crop only; {html.escape(cs.note)}.</p></div>'
        )
    return "".join(parts)


def render_report(ranking: Ranking, *, crop_sets: Sequence[CropSet] = (), title: str | None = None) -> str:
    """The report page as one HTML string (see the module docstring for what it contains)."""
    p = ranking.protocol
    title = title or f"{p.title} — ranking"
    figs = report_figures(ranking)
    _, y_label, floor, floor_label = ranking.psnr_axis()
    line = f" The dashed line: {floor_label}." if floor is not None else ""
    figures = [
        _figure_html("fig-psnr-runtime", figs["psnr-runtime"],
                     f"{without_unit(y_label)} against runtime (log time axis); up and left is better.{line}"),
        _figure_html("fig-params-psnr", figs["params-psnr"],
                     f"{without_unit(y_label)} against the number of parameters; up and left is better.{line}"),
    ]
    n_ranked = len(ranking.ranked)
    crops = ""
    if crop_sets:
        crops = "<h2>Visual comparison</h2>" + _crops_html(crop_sets)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f'<p class="small">{n_ranked} ranked of {len(ranking.entries)} entries. Generated by esrkit.</p>'
        f"<h2>Protocol</h2>{_protocol_html(ranking)}"
        f"<h2>Ranking</h2>{_table_html(ranking)}"
        f'<h2>Figures</h2><div class="figs">{"".join(figures)}</div>'
        f"{crops}</body></html>\n"
    )


def write_report(
    ranking: Ranking,
    out: str | Path,
    *,
    images_dir: str | Path | None = None,
    title: str | None = None,
    max_images: int = 2,
    crop_size: int = 96,
) -> Path:
    """Render the report and write it atomically to ``out``; returns the path."""
    crop_sets: list[CropSet] = []
    if images_dir is not None:
        order = [name for e in ranking.entries for name in (e.row.model or "", e.row.team) if name]
        crop_sets = find_crop_sets(
            images_dir, ranking.protocol.scale, max_images=max_images, crop_size=crop_size, order=order
        )
    return write_text_atomic(out, render_report(ranking, crop_sets=crop_sets, title=title))
