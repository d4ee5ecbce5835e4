"""What a ranking is made of: :class:`Entry` (one row, its eligibility, ranks and derived values), :class:`Column`
(what the tables print), :class:`Ranking` (the ordered table, its text and CSV forms) and competition ranks.

The rules that fill them are in :mod:`esrkit.challenge.rules`; :func:`esrkit.challenge.ranking.rank_rows` picks one.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .protocols import Protocol
from .rows import Row

__all__ = ["DECIMALS", "Column", "Entry", "Ranking", "competition_ranks", "decimals", "psnr_label"]


def competition_ranks(keys: Sequence[tuple[float, ...]]) -> list[int]:
    """1-based competition ranks ("1, 1, 3") of comparable keys, lower first.

    Equal keys share the smallest rank and the next distinct key skips the shared places, which is how both
    AIM 2020 (tied runtimes) and NTIRE 2023 (tied sums after the tie-breaks) print their subscripts.
    """
    order = sorted(range(len(keys)), key=lambda i: keys[i])
    ranks = [0] * len(keys)
    for position, index in enumerate(order):
        if position and keys[index] == keys[order[position - 1]]:
            ranks[index] = ranks[order[position - 1]]
        else:
            ranks[index] = position + 1
    return ranks


@dataclass
class Entry:
    """One row after ranking: eligibility, ranks per metric/statistic, derived values and its final place."""

    row: Row
    ranked: bool
    reason: str | None = None
    ranks: dict[str, int | None] = field(default_factory=dict)
    derived: dict[str, float | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    position: int | None = None

    def metric(self, key: str) -> float | None:
        """A derived value (sum, Δ, score, averaged runtime) or else the row's own value."""
        if key in self.derived:
            return self.derived[key]
        return self.row.get(key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "ranked": self.ranked,
            "reason": self.reason,
            "ranks": dict(self.ranks),
            "derived": dict(self.derived),
            "notes": list(self.notes),
            "row": self.row.to_dict(),
        }


@dataclass(frozen=True)
class Column:
    """A display column: a value key, its label, its rank key (when ranked) and how many decimals to print."""

    key: str
    label: str
    rank_key: str | None = None
    decimals: int = 2


@dataclass
class Ranking:
    """The ranked table of one challenge."""

    protocol: Protocol
    entries: list[Entry]
    order_by: str
    columns: list[Column]
    psnr_candidates: list[str]
    floor_line: tuple[str, float, str] | None
    enforce_floor: bool = True

    @property
    def ranked(self) -> list[Entry]:
        """The ranked entries in their final order."""
        return [e for e in self.entries if e.ranked]

    def entry(self, team: str) -> Entry:
        """The entry of ``team`` (exact team name or label)."""
        for e in self.entries:
            if team in (e.row.team, e.row.label):
                return e
        raise KeyError(team)

    def psnr_axis(self) -> tuple[str, str, float | None, str]:
        """PSNR key to plot, its label, and the floor value and label to draw (None when the key has no
        floor).

        Rows from ``challenge run`` carry the stand-in PSNR instead of the hidden test PSNR; the plot then
        uses the stand-in and still draws the floor, which is what a user checking "would my model be
        ranked" needs.
        """
        counts = {k: sum(e.metric(k) is not None for e in self.entries) for k in self.psnr_candidates}
        key = max(self.psnr_candidates, key=lambda k: (counts[k], -self.psnr_candidates.index(k)))
        floor_value: float | None = None
        floor_label = ""
        if self.floor_line and key in self.floor_line[0].split("|"):
            floor_value, floor_label = self.floor_line[1], self.floor_line[2]
        return key, psnr_label(self.protocol, key), floor_value, floor_label

    def display(self) -> tuple[list[str], list[list[str]]]:
        """Headers and string cells as the reports print them: ``value (rank)``."""
        headers = ["#", "Team", *[c.label for c in self.columns], "Note"]
        body = []
        for e in self.entries:
            cells = [str(e.position) if e.position is not None else "–", e.row.label]
            for c in self.columns:
                value = e.metric(c.key)
                text = "–" if value is None else f"{value:.{c.decimals}f}"
                rank = e.ranks.get(c.rank_key) if c.rank_key else None
                if rank is not None:
                    text += f" ({rank})"
                cells.append(text)
            cells.append(e.reason or "; ".join(e.notes))
            body.append(cells)
        return headers, body

    def to_csv(self) -> str:
        """Machine-readable CSV: one column per value and one ``<key>_rank`` column per rank (reads back as
        rows)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        header = ["position", "team", "model", "ranked", "reason", "baseline", "verified"]
        for c in self.columns:
            header.append(c.key)
            if c.rank_key:
                header.append(f"{c.rank_key}_rank")
        writer.writerow(header)
        for e in self.entries:
            line: list[Any] = [
                e.position or "",
                e.row.team,
                e.row.model or "",
                e.ranked,
                e.reason or "",
                e.row.baseline,
                e.row.verified,
            ]
            for c in self.columns:
                value = e.metric(c.key)
                line.append("" if value is None else repr(value))
                if c.rank_key:
                    rank = e.ranks.get(c.rank_key)
                    line.append("" if rank is None else rank)
            writer.writerow(line)
        return out.getvalue()

    def to_dict(self) -> dict[str, Any]:
        return {
            "challenge": self.protocol.name,
            "title": self.protocol.title,
            "rule": self.protocol.rule,
            "order_by": self.order_by,
            "enforce_floor": self.enforce_floor,
            "entries": [e.to_dict() for e in self.entries],
        }


DECIMALS = {"params_m": 3, "delta": 3, "convs": 0, "model_complexity": 0, "overall": 0, "score": 2}


def decimals(key: str) -> int:
    """How many decimals a value of ``key`` is printed with (SSIM 3, parameters in M 3, counts 0, else 2)."""
    if key.startswith("ssim"):
        return 3
    return DECIMALS.get(key, 2)


def psnr_label(protocol: Protocol, key: str) -> str:
    """The words for a PSNR key: the protocol's label, else a readable default (``psnr_y_qp31`` → ``PSNR Y QP31
    [dB]``)."""
    label = protocol.label(key)
    if label != key:
        return label
    if key == "psnr_y_mean":
        return "PSNR-Y, mean of QP31/QP63 [dB]"
    if key == "psnr_test_proxy":
        return "PSNR test stand-in [dB]"
    return key.replace("_", " ").upper().replace("PSNR ", "PSNR ") + " [dB]"
