"""Ranking rules of the efficient-SR challenges, driven by the protocol YAML.

Two rules cover the three challenges:

``rank_sum`` (NTIRE 2023, AIM 2020)
    Every ranked metric (lower is better) gets a rank; combined statistics are sums of some of those ranks
    and are ranked again. Ranks are *competition* ranks on a key tuple ``(value, *tie_break values)``: a tie
    on the value is settled by the tie-break keys in order, and entries equal on all of them share the
    smaller rank. With no tie-break this is exactly AIM 2020's "equal runtimes are both 1st, the next is
    3rd"; NTIRE 2023's Table 1 needs runtime (for metrics and Model Comp.) and the Model Comp. sum (for
    Overall) as tie-breaks. A metric can be ranked only below a limit (AIM 2020: runtimes slower than the
    baseline carry no rank); a combined sum that would need a missing rank is left out rather than guessed.

``ais_score`` (AIS 2024)
    Δ = mean PSNR-Y over the configured QPs minus the Lanczos mean; S = 2·2^Δ / (√T · C), T in ms, C = 0.1;
    entries must improve on Lanczos (Δ > 0) and run under 33 ms; higher S ranks first.

Entries excluded before ranking (baselines, unverified entries, entries under the enforced PSNR floor) are
kept in the result with the reason, because a leaderboard that silently drops rows cannot be checked against
the report.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import InputError
from .entries import Column, Entry, Ranking, competition_ranks
from .protocols import Protocol, load_protocol
from .rows import Row
from .rules import RuleFn, ais_score, rank_sum

__all__ = ["RANKING_RULES", "Column", "Entry", "Ranking", "competition_ranks", "rank_rows"]


#: The ranking rules by the name a protocol's ``rule:`` gives (what each does: the module docstring).
RANKING_RULES: dict[str, RuleFn] = {"rank_sum": rank_sum, "ais_score": ais_score}


def rank_rows(
    rows: Sequence[Row],
    protocol: Protocol | str,
    *,
    enforce_floor: bool = True,
    order_by: str | None = None,
) -> Ranking:
    """Rank ``rows`` under a challenge protocol (a :class:`Protocol` or its name).

    ``enforce_floor=False`` ranks entries under the PSNR floor / Lanczos requirement too; it exists to
    re-rank tables whose published ranks did not apply the stated rule (AIM 2020 ranks one entry at 28.98 dB).
    ``order_by`` picks the rank that orders the table (default: the protocol's ``order_by``).
    """
    proto = load_protocol(protocol) if isinstance(protocol, str) else protocol
    rule = RANKING_RULES.get(proto.rule)
    if rule is None:
        known = ", ".join(sorted(RANKING_RULES))
        raise InputError(f"{proto.name}: unknown ranking rule {proto.rule!r} (known: {known})")
    if not rows:
        raise InputError("nothing to rank: no rows")
    params = dict(proto.ranking)
    if order_by is not None:
        params["order_by"] = order_by
    ranking = rule(rows, proto, params, enforce_floor)
    if order_by is not None and not any(order_by in e.ranks for e in ranking.entries):
        known = sorted({k for e in ranking.entries for k in e.ranks})
        raise InputError(f"cannot order by {order_by!r}; ranks available: {', '.join(known)}")
    return ranking
