"""A self-contained HTML report of a challenge ranking.

One file, no external references: CSS is inline and every figure is a base64 PNG drawn with matplotlib's Agg
backend (no display, no pyplot global state), so the page can be mailed, attached to a CI run or opened
offline. It contains the ranked table, PSNR vs runtime (log time axis, the PSNR floor drawn as a line),
params vs PSNR, and side-by-side crops when SR images are available.

Images folder layout (``--images DIR``)::

    DIR/
      HR/              ground truth, e.g. 0801.png          (required; folder name case-insensitive)
      LR/              optional LR inputs: the "bicubic" column upsamples these
      bicubic/         optional ready-made bicubic upscales (preferred over LR/)
      <model>/         one folder per model with its SR outputs, named like the HR file; a suffix after
                       the stem is allowed (0801_x4.png, 0801-SR.png, 0801x4.png)

Without ``bicubic/`` and ``LR/`` the bicubic column is a MATLAB-style bicubic down-and-up round trip of the
HR. The crop is the highest-variance square of the HR (textured regions are where SR models differ),
searched on a half-patch grid inside the area every image covers.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .ranking import Entry, Ranking
from .rows import write_text_atomic

__all__ = ["CropSet", "ScatterFigure", "find_crop_sets", "pick_crop", "render_report", "report_figures", "write_report"]

_IMAGE_SUFFIXES = {".png", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg", ".webp"}
_SPECIAL = {"hr", "lr", "bicubic"}


# ----------------------------------------------------------------------------------------------------
# figures


def _figure_png(fig: object) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if fig.canvas is None or not isinstance(fig.canvas, FigureCanvasAgg):  # type: ignore[attr-defined]
        FigureCanvasAgg(fig)  # type: ignore[arg-type]  # an Agg canvas: no GUI backend is ever touched
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight")  # type: ignore[attr-defined]
    return base64.b64encode(buf.getvalue()).decode("ascii")


_DPI = 110
Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in display pixels
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


def _words(label: str) -> str:
    """A label without its unit, for titles: ``PSNR-Y, mean of QP31/QP63 [dB]`` → ``PSNR-Y, mean of QP31/QP63``."""
    return re.sub(r"\s*\[[^\]]*\]\s*$", "", label).strip()


def _place_label(ranking: Ranking) -> str:
    """Colour-bar label naming what orders the table, in the table's own words."""
    for column in ranking.columns:
        if column.rank_key == ranking.order_by:
            return f"Place by {_words(column.label)} (1 = best)"
    return "Place (1 = best)"


def _overlaps(box: Box, others: Sequence[Box]) -> bool:
    x0, y0, x1, y1 = box
    return any(x0 < b[2] and b[0] < x1 and y0 < b[3] and b[1] < y1 for b in others)


#: Offsets (points) tried around a marker for its name; past the first, a thin leader line joins the two.
_LABEL_DISTANCES = (2.0, 14.0, 28.0, 42.0)
#: Above this many points only the first places, the baselines and the unranked entries are named.
_CROWDED = 25
_CROWDED_PLACES = 10


def _segment_hits(a: tuple[float, float], b: tuple[float, float], boxes: Sequence[Box],
                  skip: Sequence[Box] = ()) -> bool:
    """Whether the segment ``a``–``b`` passes through any of ``boxes`` (sampled every ~2 px; the parts of it
    inside ``skip`` — its own label and marker — do not count)."""
    steps = max(2, int(math.hypot(b[0] - a[0], b[1] - a[1]) / 2))
    for k in range(steps + 1):
        px, py = a[0] + (b[0] - a[0]) * k / steps, a[1] + (b[1] - a[1]) * k / steps
        if any(s[0] <= px <= s[2] and s[1] <= py <= s[3] for s in skip):
            continue
        if any(o[0] <= px <= o[2] and o[1] <= py <= o[3] for o in boxes):
            return True
    return False


def _place_labels(fig: object, ax: object, pts: Sequence[tuple[Entry, float, float]], radii: Sequence[float],
                  wanted: Callable[[Entry], bool]) -> tuple[list[str], list[str], list[Box], list[Box]]:
    """Put the names of the ``wanted`` points next to them where they cover no marker, no other name and stay
    inside the axes.

    Greedy, in table order (podium first): eight positions around the point, then the same farther out with a
    thin leader line, which may cross no other marker or name (nor may a later name cover it). Other markers
    keep a small clearance, so a name never sits against a point it does not belong to. A name with no free
    place is left out (the table names every entry) and returned, so the caption can say so. Works in display
    pixels of the final layout, hence the draw first; every marker, named or not, is an obstacle (``radii``:
    each marker's half-size in pixels).
    """
    from matplotlib.text import Text

    fig.canvas.draw()  # type: ignore[attr-defined]
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    frame = ax.get_window_extent(renderer)  # type: ignore[attr-defined]
    centres = [tuple(ax.transData.transform((x, y))) for _, x, y in pts]  # type: ignore[attr-defined]

    def marker_box(i: int, pad: float = 0.0) -> Box:
        cx, cy = centres[i]
        half = radii[i] + pad
        return (cx - half, cy - half, cx + half, cy + half)

    taken: list[Box] = []
    leaders: list[tuple[tuple[float, float], tuple[float, float], Box]] = []
    placed, dropped = [], []
    order = sorted(range(len(pts)), key=lambda i: (0 if pts[i][0].ranked else 1, pts[i][0].position or 10**6, i))
    directions = ((1, 1, "left", "bottom"), (1, -1, "left", "top"), (-1, 1, "right", "bottom"),
                  (-1, -1, "right", "top"), (0, 1, "center", "bottom"), (0, -1, "center", "top"),
                  (1, 0, "left", "center"), (-1, 0, "right", "center"))
    for i in order:
        entry, x, y = pts[i]
        if not wanted(entry):
            continue
        own, r = marker_box(i), radii[i] * 72.0 / _DPI  # the offsets are in points
        others = [marker_box(j, 0.6 * radii[j]) for j in range(len(pts)) if j != i]
        done = False
        for dist in _LABEL_DISTANCES:
            leader = dist > _LABEL_DISTANCES[0]
            for dx, dy, ha, va in directions:
                off = (dx * (r + dist), dy * (r + dist))
                arrow = {"arrowstyle": "-", "color": "0.4", "lw": 0.6, "shrinkA": 1, "shrinkB": r} if leader else None
                ann = ax.annotate(entry.row.label, (x, y), xytext=off, textcoords="offset points", ha=ha, va=va,  # type: ignore[attr-defined]
                                  fontsize=6.5, color="0.15", zorder=5, arrowprops=arrow)
                ann.update_positions(renderer)
                ext = Text.get_window_extent(ann, renderer)  # the words only: Annotation's own extent adds the line
                box = (ext.x0 - 1, ext.y0 - 1, ext.x1 + 1, ext.y1 + 1)
                ok = (frame.x0 <= box[0] and box[2] <= frame.x1 and frame.y0 <= box[1] and box[3] <= frame.y1
                      and not _overlaps(box, [*taken, own, *others])
                      and not any(_segment_hits(a, b, [box], [s]) for a, b, s in leaders))
                if ok and leader:
                    start = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
                    ok = not _segment_hits(start, centres[i], [*taken, *others], [box, own])
                if ok:
                    taken.append(box)
                    if leader:
                        leaders.append((((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), centres[i], box))
                    placed.append(entry.row.label)
                    done = True
                    break
                ann.remove()
            if done:
                break
        if not done:
            dropped.append(entry.row.label)
    return placed, dropped, taken, [marker_box(i) for i in range(len(pts))]


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
    fig = MplFigure(figsize=(7.2, 4.9), dpi=_DPI)
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
    radii = [math.sqrt(_BASELINE_SIZE if e.row.baseline else size) / 2 * _DPI / 72 for e, _, _ in shown]
    crowded = len(shown) > _CROWDED

    def wanted(e: Entry) -> bool:
        return not crowded or not e.ranked or (e.position is not None and e.position <= _CROWDED_PLACES)

    placed, dropped, label_boxes, marker_boxes = _place_labels(fig, ax, shown, radii, wanted)
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


# ----------------------------------------------------------------------------------------------------
# crops


@dataclass
class CropSet:
    """One HR image and the matching images of every column (label -> path or array), plus the crop box."""

    name: str
    hr: np.ndarray
    columns: list[tuple[str, np.ndarray]]
    box: tuple[int, int, int]  # top, left, size
    note: str = ""


def pick_crop(hr: np.ndarray, size: int, limit: tuple[int, int] | None = None) -> tuple[int, int, int]:
    """Top-left corner and side of the highest-variance ``size``×``size`` square of ``hr`` (luma).

    Searched on a half-patch grid within ``limit`` (height, width); variance comes from integral images, so a
    2K image costs a few milliseconds."""
    h, w = hr.shape[:2] if limit is None else limit
    size = max(1, min(size, h, w))
    img = hr[:h, :w].astype(np.float64)
    luma = img if img.ndim == 2 else img[..., :3] @ np.array([0.299, 0.587, 0.114])
    s1 = np.pad(luma, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    s2 = np.pad(luma * luma, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    step = max(1, size // 2)
    ys = np.arange(0, h - size + 1, step)
    xs = np.arange(0, w - size + 1, step)
    y0, x0 = np.meshgrid(ys, xs, indexing="ij")
    y1, x1 = y0 + size, x0 + size

    def box_sum(s: np.ndarray) -> np.ndarray:
        return s[y1, x1] - s[y0, x1] - s[y1, x0] + s[y0, x0]

    n = float(size * size)
    var = box_sum(s2) / n - (box_sum(s1) / n) ** 2
    iy, ix = np.unravel_index(int(np.argmax(var)), var.shape)
    return int(ys[iy]), int(xs[ix]), size


def _list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES)


def _match(stem: str, files: Sequence[Path]) -> Path | None:
    exact = [p for p in files if p.stem == stem]
    if exact:
        return exact[0]
    pattern = re.compile(re.escape(stem) + r"(?:[_\-.x].*)?$", re.IGNORECASE)
    loose = [p for p in files if pattern.match(p.stem)]
    return loose[0] if len(loose) == 1 else None


def _bicubic(hr: np.ndarray, lr_path: Path | None, scale: int, shape: tuple[int, int]) -> tuple[np.ndarray, str]:
    from ..data.io import read_image
    from ..data.resize import imresize

    if lr_path is not None:
        lr = read_image(lr_path)
        up = np.asarray(imresize(lr, float(scale)))
        return up, f"bicubic ×{scale} of LR/{lr_path.name}"
    lr = np.asarray(imresize(hr, 1.0 / scale))
    up = np.asarray(imresize(lr, float(scale)))
    return up[: shape[0], : shape[1]], "bicubic round trip of the HR (no LR/ folder)"


def find_crop_sets(
    images_dir: str | Path, scale: int, *, max_images: int = 2, crop_size: int = 96, order: Sequence[str] = ()
) -> list[CropSet]:
    """Read the images folder (layout in the module docstring) into crop sets for the report.

    ``order`` lists model names in table order so the crops follow the ranking; other folders follow
    alphabetically. Raises :class:`InputError` when the folder or its ``HR/`` subfolder is missing, or when no
    HR image has an SR result in every model folder.
    """
    from ..data.io import read_image

    root = Path(images_dir)
    if not root.is_dir():
        raise InputError(f"{root}: images folder not found")
    subdirs = {p.name: p for p in root.iterdir() if p.is_dir()}
    lower = {name.lower(): path for name, path in subdirs.items()}
    if "hr" not in lower:
        raise InputError(f"{root}: no HR/ folder (expected HR/, optional LR/ or bicubic/, one folder per model)")
    models = [name for name in subdirs if name.lower() not in _SPECIAL and not name.startswith(".")]
    if not models:
        raise InputError(f"{root}: no model folders next to HR/")
    rank = {name.casefold(): i for i, name in enumerate(order)}
    models.sort(key=lambda m: (rank.get(m.casefold(), len(rank)), m.casefold()))
    listing = {m: _list_images(subdirs[m]) for m in models}
    bicubic_files = _list_images(lower["bicubic"]) if "bicubic" in lower else []
    lr_files = _list_images(lower["lr"]) if "lr" in lower else []
    sets: list[CropSet] = []
    for hr_path in _list_images(lower["hr"]):
        matches = {m: _match(hr_path.stem, listing[m]) for m in models}
        if any(p is None for p in matches.values()):
            continue
        hr = read_image(hr_path)
        srs = [(m, read_image(p)) for m, p in matches.items() if p is not None]
        h = min([hr.shape[0], *(a.shape[0] for _, a in srs)])
        w = min([hr.shape[1], *(a.shape[1] for _, a in srs)])
        bic_path = _match(hr_path.stem, bicubic_files) if bicubic_files else None
        if bic_path is not None:
            bic, note = read_image(bic_path), f"bicubic from bicubic/{bic_path.name}"
        else:
            lr_path = _match(hr_path.stem, lr_files) if lr_files else None
            bic, note = _bicubic(hr, lr_path, scale, (hr.shape[0], hr.shape[1]))
        h, w = min(h, bic.shape[0]), min(w, bic.shape[1])
        box = pick_crop(hr, crop_size, (h, w))
        sets.append(CropSet(hr_path.stem, hr, [("bicubic", bic), *srs], box, note))
        if len(sets) >= max_images:
            break
    if not sets:
        raise InputError(f"{root}: no HR image has an SR result in every model folder ({', '.join(models)})")
    return sets


def _crop_psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def _png_b64(array: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _crops_html(sets: Sequence[CropSet]) -> str:
    parts = []
    for cs in sets:
        top, left, size = cs.box
        hr_crop = cs.hr[top : top + size, left : left + size]
        cells = [("HR", hr_crop, "")]
        for label, image in cs.columns:
            crop = image[top : top + size, left : left + size]
            cells.append((label, crop, f"{_crop_psnr(crop, hr_crop):.2f} dB"))
        figs = "".join(
            f'<figure class="crop"><img alt="{html.escape(label)} crop of {html.escape(cs.name)}" '
            f'src="data:image/png;base64,{_png_b64(crop)}"><figcaption>{html.escape(label)}'
            f"{'<br>' + html.escape(psnr) if psnr else ''}</figcaption></figure>"
            for label, crop, psnr in cells
        )
        parts.append(
            f'<div class="cropset"><h3>{html.escape(cs.name)} — {size}×{size} at (y={top}, x={left})</h3>'
            f'<div class="crops">{figs}</div>'
            f'<p class="small">PSNR is RGB on the crop only; {html.escape(cs.note)}.</p></div>'
        )
    return "".join(parts)


# ----------------------------------------------------------------------------------------------------
# page

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
            return _words(column.label)
    return _words(ranking.protocol.label(ranking.order_by))


def _rule_words(ranking: Ranking) -> str:
    """The ranking rule in words (the rule's name is a code key, not something a reader should decode)."""
    p, params = ranking.protocol, ranking.protocol.ranking

    def label(key: str) -> str:
        return _words(p.label(key))

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
    parts = [f"{_words(p.label(t.metric))} ≥ {t.min:.2f} dB ({_enforced(t.enforced and ranking.enforce_floor)})"
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
    from .ranking import _psnr_label

    words = {c.key: _words(c.label) for c in ranking.columns}
    for spec in ranking.protocol.metrics:
        words.setdefault(spec.key, _words(spec.label))
    for threshold in ranking.protocol.thresholds:
        for key in (threshold.metric, threshold.stand_in):
            if key:
                words.setdefault(key, _words(_psnr_label(ranking.protocol, key)))
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


def report_figures(ranking: Ranking) -> dict[str, ScatterFigure | None]:
    """The report's two scatters (``psnr-runtime``, ``params-psnr``), drawn; ``None`` where no entry has both
    values. Exposed so tests can read the words on them."""
    _, y_label, _, _ = ranking.psnr_axis()
    y_words = _words(y_label)
    return {
        "psnr-runtime": _scatter(ranking, "runtime_ms", "Runtime [ms], log scale", True, f"{y_words} vs runtime"),
        "params-psnr": _scatter(ranking, "params_m", "Parameters [M]", None, f"{y_words} vs number of parameters"),
    }


def render_report(ranking: Ranking, *, crop_sets: Sequence[CropSet] = (), title: str | None = None) -> str:
    """The report page as one HTML string (see the module docstring for what it contains)."""
    p = ranking.protocol
    title = title or f"{p.title} — ranking"
    figs = report_figures(ranking)
    _, y_label, floor, floor_label = ranking.psnr_axis()
    line = f" The dashed line: {floor_label}." if floor is not None else ""
    figures = [
        _figure_html("fig-psnr-runtime", figs["psnr-runtime"],
                     f"{_words(y_label)} against runtime (log time axis); up and left is better.{line}"),
        _figure_html("fig-params-psnr", figs["params-psnr"],
                     f"{_words(y_label)} against the number of parameters; up and left is better.{line}"),
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
