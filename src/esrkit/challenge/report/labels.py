"""Names next to the points of a scatter: placed where they cover no marker, no other name and stay inside the
axes, with a leader line when farther out; what does not fit is reported, not drawn on top of something."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from ..entries import Entry

__all__ = ["DPI", "Box", "place_labels"]

#: Resolution of the report's figures (the label offsets are in points, the checks in display pixels).
DPI = 110
Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in display pixels


def _overlaps(box: Box, others: Sequence[Box]) -> bool:
    x0, y0, x1, y1 = box
    return any(x0 < b[2] and b[0] < x1 and y0 < b[3] and b[1] < y1 for b in others)


#: Offsets (points) tried around a marker for its name; past the first, a thin leader line joins the two.
_LABEL_DISTANCES = (2.0, 14.0, 28.0, 42.0)


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


def place_labels(fig: object, ax: object, pts: Sequence[tuple[Entry, float, float]], radii: Sequence[float],
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
        own, r = marker_box(i), radii[i] * 72.0 / DPI  # the offsets are in points
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
