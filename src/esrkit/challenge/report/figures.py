"""The report's scatters (PSNR against runtime and against parameters), drawn with matplotlib's Agg backend (no
display, no pyplot global state) into base64 PNGs, with the words a reader sees kept beside them."""

from __future__ import annotations

import base64
import io
import math
import re
from dataclasses import dataclass

import numpy as np

from ..entries import Entry, Ranking
from .labels import DPI, Box, place_labels

__all__ = ["ScatterFigure", "report_figures", "without_unit"]

#: Above this many points only the first places, the baselines and the unranked entries are named.
_CROWDED = 25
_CROWDED_PLACES = 10
_BASELINE_SIZE = 110  # scatter area (points²) of a baseline's star; entries use 36


@dataclass(frozen=True)
class ScatterFigure:
    """One scatter as the page shows it: the PNG and the words around it (kept for tests and the alt text)."""

    png: str
    title: str
    x_label: str
    y_label: str
    legend: tuple[str, ...]
    labelled: tuple[str, ...]
    unlabelled: tuple[str, ...]
    hidden: tuple[str, ...]
    x_ticks: tuple[str, ...]
    naming: str = ""  # which entries are named when not all are
    # geometry in display pixels, for checks: the axes frame, each name's box, each marker's box, the legend's box
    frame: Box = (0.0, 0.0, 0.0, 0.0)
    label_boxes: tuple[Box, ...] = ()
    marker_boxes: tuple[Box, ...] = ()
    legend_box: Box | None = None


def _figure_png(fig: object) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if fig.canvas is None or not isinstance(fig.canvas, FigureCanvasAgg):  # type: ignore[attr-defined]
        FigureCanvasAgg(fig)  # type: ignore[arg-type]  # an Agg canvas: no GUI backend is ever touched
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")  # type: ignore[attr-defined]
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _points(ranking: Ranking, x_key: str, y_key: str) -> list[tuple[Entry, float, float]]:
    pts = []
    for e in ranking.entries:
        x, y = e.metric(x_key), e.metric(y_key)
        if x is not None and y is not None and math.isfinite(x) and math.isfinite(y) and x > 0:
            pts.append((e, x, y))
    return pts


def _plain(value: float) -> str:
    """A tick value as a plain number (0.5, 2, 1000), never ``5×10⁻¹``: readers compare milliseconds."""
    if value == 0:
        return "0"
    text = np.format_float_positional(float(value), precision=4, unique=True, trim="-")
    return text


def _log_ticks(lo: float, hi: float) -> list[float]:
    """Tick positions for a log axis over ``[lo, hi]``: 1-2-5 steps (every digit under one decade, decades only
    over four), so the labels are plain numbers that do not run into each other."""
    decades = math.log10(hi / lo)
    mantissas = (1, 2, 3, 5) if decades < 1 else (1, 2, 5) if decades <= 4 else (1,)
    ticks = []
    for exponent in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1):
        for m in mantissas:
            value = float(f"{m}e{exponent}")
            if lo <= value <= hi:
                ticks.append(value)
    return ticks


def without_unit(label: str) -> str:
    """A label without its unit, for titles: ``PSNR-Y, mean of QP31/QP63 [dB]`` → ``PSNR-Y, mean of QP31/QP63``."""
    return re.sub(r"\s*\[[^\]]*\]\s*$", "", label).strip()


def _place_label(ranking: Ranking) -> str:
    """Colour-bar label naming what orders the table, in the table's own words."""
    for column in ranking.columns:
        if column.rank_key == ranking.order_by:
            return f"Place by {without_unit(column.label)} (1 = best)"
    return "Place (1 = best)"


def _scatter(ranking: Ranking, x_key: str, x_label: str, log_x: bool | None, title: str) -> ScatterFigure | None:
    """Scatter of ``x_key`` against the ranking's PSNR key; ranked entries coloured by place, others grey.

    Every word a reader sees is a label, not a metric key; log axes carry plain-number ticks; names sit where
    they cover no point; the legend sits under the axes so it can never hide one.
    """
    from matplotlib.figure import Figure as MplFigure
    from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullFormatter, NullLocator

    y_key, y_label, floor, floor_label = ranking.psnr_axis()
    pts = _points(ranking, x_key, y_key)
    if not pts:
        return None
    fig = MplFigure(figsize=(7.2, 4.9), dpi=DPI)
    ax = fig.add_subplot(1, 1, 1)
    ranked = [(e, x, y) for e, x, y in pts if e.ranked]
    others = [(e, x, y) for e, x, y in pts if not e.ranked and not e.row.baseline]
    baselines = [(e, x, y) for e, x, y in pts if e.row.baseline]
    size = 36
    if ranked:
        places = [float(e.position) if e.position is not None else float(len(ranked)) for e, _, _ in ranked]
        sc = ax.scatter([x for _, x, _ in ranked], [y for _, _, y in ranked], c=places, cmap="viridis_r", s=size,
                        edgecolors="black", linewidths=0.4, label="ranked entry", zorder=3)
        bar = fig.colorbar(sc, ax=ax, pad=0.02)
        bar.set_label(_place_label(ranking))
        bar.locator = MaxNLocator(integer=True)  # places are whole numbers
        bar.update_ticks()
        if len(ranked) > 1:
            bar.ax.invert_yaxis()  # 1st place at the top, where a reader looks first
    for group, marker, colour, area, label, z in ((others, "x", "0.45", size, "not ranked", 3),
                                                  (baselines, "*", "tab:red", _BASELINE_SIZE, "baseline", 4)):
        if group:
            ax.scatter([x for _, x, _ in group], [y for _, _, y in group], marker=marker, c=colour, s=area,
                       label=label, zorder=z)
    # The y range follows the ranked entries, the baselines and the floor; an unranked entry is shown when it
    # lies within one such span of them, otherwise it would flatten the field into a line (it is named in the
    # title instead).
    core = [y for e, _, y in pts if e.ranked or e.row.baseline] + ([floor] if floor is not None else [])
    hidden: list[str] = []
    if len(core) >= 2:
        lo, hi = min(core), max(core)
        span = max(hi - lo, 0.1)
        near = [y for e, _, y in pts if lo - span <= y <= hi + span]
        lo, hi = min(near + core), max(near + core)
        pad = max(0.05, 0.08 * (hi - lo))
        lo, hi = lo - pad, hi + pad
        hidden = [e.row.label for e, _, y in pts if not lo <= y <= hi]
        ax.set_ylim(lo, hi)
        if hidden:
            title += f" ({', '.join(hidden)} outside the range shown)" if len(hidden) <= 2 else \
                f" ({len(hidden)} entries outside the range shown)"
    if floor is not None:
        ax.axhline(floor, color="tab:red", linestyle="--", linewidth=1.2, label=floor_label, zorder=2)
    xs = [x for e, x, _ in pts if e.row.label not in hidden]  # the x range follows what is drawn
    if log_x is None:
        log_x = max(xs) / min(xs) > 20
    x_lo, x_hi = min(xs), max(xs)
    if log_x:
        ax.set_xscale("log")
        margin = (x_hi / x_lo) ** 0.06 if x_hi > x_lo else 1.5
        x_lo, x_hi = x_lo / margin, x_hi * margin
        ax.xaxis.set_major_locator(FixedLocator(_log_ticks(x_lo, x_hi)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _plain(v)))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_minor_formatter(NullFormatter())
    else:
        margin = 0.06 * (x_hi - x_lo) if x_hi > x_lo else 0.5 * x_hi
        x_lo, x_hi = max(0.0, x_lo - margin), x_hi + margin
    ax.set_xlim(x_lo, x_hi)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.25)
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=len(handles),
                  frameon=False)
    fig.subplots_adjust(bottom=0.22)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    shown = [p for p in pts if p[0].row.label not in hidden]
    # marker half-sizes in display pixels (scatter sizes are areas in points²)
    radii = [math.sqrt(_BASELINE_SIZE if e.row.baseline else size) / 2 * DPI / 72 for e, _, _ in shown]
    crowded = len(shown) > _CROWDED

    def wanted(e: Entry) -> bool:
        return not crowded or not e.ranked or (e.position is not None and e.position <= _CROWDED_PLACES)

    placed, dropped, label_boxes, marker_boxes = place_labels(fig, ax, shown, radii, wanted)
    renderer = fig.canvas.get_renderer()
    ext = ax.get_window_extent(renderer)
    legend = ax.get_legend()
    leg = legend.get_window_extent(renderer) if legend is not None else None
    naming = (f"Named: the first {_CROWDED_PLACES} places, baselines and unranked entries (the table names all)."
              if crowded else "")
    ticks = tuple(t.get_text() for t in ax.get_xticklabels() if t.get_text())
    return ScatterFigure(png=_figure_png(fig), title=title, x_label=x_label, y_label=y_label, legend=tuple(labels),
                         labelled=tuple(placed), unlabelled=tuple(dropped), hidden=tuple(hidden), x_ticks=ticks,
                         naming=naming, frame=(ext.x0, ext.y0, ext.x1, ext.y1), label_boxes=tuple(label_boxes),
                         marker_boxes=tuple(marker_boxes),
                         legend_box=None if leg is None else (leg.x0, leg.y0, leg.x1, leg.y1))


def report_figures(ranking: Ranking) -> dict[str, ScatterFigure | None]:
    """The report's two scatters (``psnr-runtime``, ``params-psnr``), drawn; ``None`` where no entry has both
    values. Exposed so tests can read the words on them."""
    _, y_label, _, _ = ranking.psnr_axis()
    y_words = without_unit(y_label)
    return {
        "psnr-runtime": _scatter(ranking, "runtime_ms", "Runtime [ms], log scale", True, f"{y_words} vs runtime"),
        "params-psnr": _scatter(ranking, "params_m", "Parameters [M]", None, f"{y_words} vs number of parameters"),
    }
