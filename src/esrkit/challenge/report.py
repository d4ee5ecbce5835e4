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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .ranking import Entry, Ranking
from .rows import write_text_atomic

__all__ = ["CropSet", "find_crop_sets", "pick_crop", "render_report", "write_report"]

_IMAGE_SUFFIXES = {".png", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg", ".webp"}
_SPECIAL = {"hr", "lr", "bicubic"}


# ----------------------------------------------------------------------------------------------------
# figures


def _figure_png(fig: object) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)  # type: ignore[arg-type]  # attaches an Agg canvas: no GUI backend is ever touched
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")  # type: ignore[attr-defined]
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _points(ranking: Ranking, x_key: str, y_key: str) -> list[tuple[Entry, float, float]]:
    pts = []
    for e in ranking.entries:
        x, y = e.metric(x_key), e.metric(y_key)
        if x is not None and y is not None and math.isfinite(x) and math.isfinite(y) and x > 0:
            pts.append((e, x, y))
    return pts


def _scatter(ranking: Ranking, x_key: str, x_label: str, log_x: bool | None, title: str) -> str | None:
    """Scatter of ``x_key`` against the ranking's PSNR key; ranked entries coloured by place, others grey."""
    from matplotlib.figure import Figure

    y_key, y_label, floor, floor_label = ranking.psnr_axis()
    pts = _points(ranking, x_key, y_key)
    if not pts:
        return None
    fig = Figure(figsize=(7.2, 4.6))
    ax = fig.add_subplot(1, 1, 1)
    ranked = [(e, x, y) for e, x, y in pts if e.ranked]
    others = [(e, x, y) for e, x, y in pts if not e.ranked and not e.row.baseline]
    baselines = [(e, x, y) for e, x, y in pts if e.row.baseline]
    if ranked:
        places = [float(e.position) if e.position is not None else float(len(ranked)) for e, _, _ in ranked]
        sc = ax.scatter(
            [x for _, x, _ in ranked],
            [y for _, _, y in ranked],
            c=places,
            cmap="viridis_r",
            s=36,
            edgecolors="black",
            linewidths=0.4,
            label="ranked",
            zorder=3,
        )
        fig.colorbar(sc, ax=ax, label=f"place ({ranking.order_by})")
    # Unranked entries and baselines: plain markers in a fixed colour, baselines drawn on top.
    for group, marker, colour, size, label, z in ((others, "x", "0.45", 36, "not ranked", 3),
                                                   (baselines, "*", "tab:red", 110, "baseline", 4)):
        if group:
            ax.scatter([x for _, x, _ in group], [y for _, _, y in group], marker=marker, c=colour, s=size,
                       label=label, zorder=z)
    # With many entries, label only the podium, the baselines and the unranked ones: 30 overlapping names
    # are unreadable, and the table already names everyone.
    crowded = len(pts) > 15
    for e, x, y in pts:
        if crowded and e.ranked and (e.position is None or e.position > 5):
            continue
        ax.annotate(e.row.label, (x, y), xytext=(3, 3), textcoords="offset points", fontsize=6.5, color="0.2")
    # Keep the y range on the ranked entries (and the floor): one far-off unranked entry would otherwise
    # flatten the whole field into a line. Entries outside are counted in the title.
    core = [y for e, _, y in pts if e.ranked or e.row.baseline] + ([floor] if floor is not None else [])
    hidden = 0
    if len(core) >= 2:
        lo, hi = min(core), max(core)
        pad = max(0.05, 0.08 * (hi - lo))
        lo, hi = lo - pad, hi + pad
        hidden = sum(1 for _, _, y in pts if not lo <= y <= hi)
        if hidden:
            ax.set_ylim(lo, hi)
            title += f" ({hidden} entr{'y' if hidden == 1 else 'ies'} outside the PSNR range shown)"
    if floor is not None:
        ax.axhline(floor, color="tab:red", linestyle="--", linewidth=1.2, label=floor_label, zorder=2)
    xs = [x for _, x, _ in pts]
    if log_x is None:
        log_x = max(xs) / min(xs) > 20
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7, loc="best")
    return _figure_png(fig)


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
table.rank{border-collapse:collapse;font-size:.82em;width:100%}
table.rank th,table.rank td{border:1px solid #ddd;padding:3px 6px;text-align:right;white-space:nowrap}
table.rank th{background:#f3f3f3;position:sticky;top:0}
table.rank td.team,table.rank td.note{text-align:left}
table.rank td.note{white-space:normal;color:#666;min-width:18em}
.tablewrap{overflow-x:auto}
table.rank tr.unranked td{color:#888;background:#fafafa}table.rank tr.top td{font-weight:600}
dl.proto{display:grid;grid-template-columns:max-content auto;gap:2px 14px;font-size:.9em}
dl.proto dt{font-weight:600}dl.proto dd{margin:0}
.figs{display:flex;flex-wrap:wrap;gap:16px}figure.fig{margin:0}figure.fig img{max-width:100%;height:auto}
.crops{display:flex;flex-wrap:wrap;gap:10px}figure.crop{margin:0;text-align:center;font-size:.8em}
figure.crop img{width:192px;height:192px;image-rendering:pixelated;border:1px solid #ccc}
"""


def _enforced(flag: bool) -> str:
    return "enforced" if flag else "not enforced"


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
        (
            "PSNR thresholds",
            "; ".join(
                f"{t.metric} ≥ {t.min:.2f} dB ({_enforced(t.enforced and ranking.enforce_floor)})" for t in p.thresholds
            )
            or "none",
        ),
        ("Ranking rule", f"{p.rule}; table ordered by {ranking.order_by}"),
    ]
    return (
        '<dl class="proto">'
        + "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in items)
        + "</dl>"
    )


def _table_html(ranking: Ranking) -> str:
    headers, body = ranking.display()
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    rows = []
    for entry, cells in zip(ranking.entries, body, strict=True):
        cls = "unranked" if not entry.ranked else ("top" if entry.position is not None and entry.position <= 3 else "")
        tds = []
        for i, cell in enumerate(cells):
            kind = "team" if i == 1 else ("note" if i == len(cells) - 1 else "")
            tds.append(f'<td class="{kind}">{html.escape(cell)}</td>' if kind else f"<td>{html.escape(cell)}</td>")
        rows.append(f'<tr class="{cls}">{"".join(tds)}</tr>')
    body_html = "".join(rows)
    return (
        f'<div class="tablewrap"><table class="rank" id="ranking"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body_html}</tbody></table></div>"
    )


def render_report(ranking: Ranking, *, crop_sets: Sequence[CropSet] = (), title: str | None = None) -> str:
    """The report page as one HTML string (see the module docstring for what it contains)."""
    p = ranking.protocol
    title = title or f"{p.title} — ranking"
    figures = []
    y_key = ranking.psnr_axis()[0]
    psnr_rt = _scatter(ranking, "runtime_ms", "runtime [ms] (log scale)", True, f"{y_key} vs runtime")
    params = _scatter(ranking, "params_m", "#params [M]", None, f"#params vs {y_key}")
    for fig_id, b64, caption in (
        ("fig-psnr-runtime", psnr_rt, "PSNR vs runtime (log time axis); the dashed line is the PSNR floor."),
        ("fig-params-psnr", params, "PSNR vs number of parameters."),
    ):
        if b64 is None:
            figures.append(f'<p class="small">{html.escape(caption)} Not drawn: no entry has both values.</p>')
        else:
            figures.append(
                f'<figure class="fig" id="{fig_id}"><img alt="{html.escape(caption)}" '
                f'src="data:image/png;base64,{b64}"><figcaption class="small">{html.escape(caption)}'
                "</figcaption></figure>"
            )
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
