"""The two ranking rules of the efficient-SR challenges, as functions ``(rows, protocol, params, enforce_floor) ->``
:class:`~esrkit.challenge.entries.Ranking` (what each rule does: :mod:`esrkit.challenge.ranking`), and the steps
they share: screening (baselines, unverified rows, the floor), derived runtimes, ordering.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import InputError
from .entries import Column, Entry, Ranking, competition_ranks, decimals, psnr_label
from .protocols import Protocol
from .rows import Row

__all__ = ["RuleFn", "ais_score", "rank_sum"]


def _screen(row: Row, protocol: Protocol, enforce_floor: bool) -> Entry:
    """Eligibility shared by every rule: baselines and unverified rows are never ranked; the enforced floor
    removes entries under it; stated-but-unenforced thresholds only leave a note.

    Except when the row gives nothing the enforced floor could be checked on (NTIRE 2023: no test PSNR and no
    stand-in): the challenges ranked only entries that reached their floors, so a stated threshold the row does
    give (NTIRE's 29.00 dB validation floor) then decides, and an entry under it is listed apart, not ranked.
    The published tables' entries all have the enforced value, so their ranks are unchanged."""
    if row.baseline:
        return Entry(row, ranked=False, reason="baseline (reference, not ranked)")
    if not row.verified:
        return Entry(row, ranked=False, reason="not verified by the organizers")
    entry = Entry(row, ranked=True)
    unchecked: list[str] = []  # enforced floors this row gives no value for
    below: list[tuple[str, float, float]] = []  # stated (unenforced) thresholds the row misses
    for threshold in protocol.thresholds:
        used = threshold.metric
        value = row.get(used)
        if value is None and threshold.stand_in:
            used, value = threshold.stand_in, row.get(threshold.stand_in)
            if value is not None:
                entry.notes.append(f"{threshold.metric} not given; checked {used} against {threshold.min:.2f} dB")
        if value is None:
            if threshold.enforced and enforce_floor:
                unchecked.append(threshold.metric)
            continue
        if value < threshold.min:
            if threshold.enforced and enforce_floor:
                entry.ranked = False
                entry.reason = f"{used} {value:.2f} dB < {threshold.min:.2f} dB floor"
            else:
                below.append((used, value, threshold.min))
    for used, value, least in below:
        if unchecked and entry.ranked:
            entry.ranked = False
            entry.reason = (f"{used} {value:.2f} dB < {least:.2f} dB floor (no {', '.join(unchecked)} to hold to "
                            "the enforced floor)")
        else:
            entry.notes.append(f"{used} {value:.2f} dB below the stated {least:.2f} dB")
    if entry.ranked:
        entry.notes += [f"{m} not given: the {t.min:.2f} dB floor was not checked"
                        for m in unchecked for t in protocol.thresholds if t.metric == m]
    return entry


def _derive_runtime(entry: Entry, protocol: Protocol) -> None:
    """Fill ``runtime_ms`` from the protocol's parts (NTIRE: mean of val and test runtime) when missing."""
    if entry.row.get("runtime_ms") is not None:
        return
    parts = [entry.row.get(k) for k in protocol.runtime.get("derive_from") or []]
    if parts and all(p is not None for p in parts):
        entry.derived["runtime_ms"] = sum(p for p in parts if p is not None) / len(parts)


def _key(entry: Entry, keys: Sequence[str]) -> tuple[float, ...]:
    return tuple(math.inf if entry.metric(k) is None else float(entry.metric(k) or 0.0) for k in keys)


def _require(pool: Sequence[Entry], keys: Sequence[str], protocol: Protocol) -> None:
    for e in pool:
        missing = [k for k in keys if e.metric(k) is None]
        if missing:
            raise InputError(
                f"{e.row.source}: {e.row.label!r} has no {', '.join(missing)}, which {protocol.name} ranks "
                "(give the value, or mark the row baseline/verified=false)"
            )


def _order(entries: list[Entry], order_by: str, descending: bool = False) -> list[Entry]:
    index = {id(e): i for i, e in enumerate(entries)}

    def sort_key(e: Entry) -> tuple[int, float, int]:
        if e.ranked:
            rank = e.ranks.get(order_by)
            return (0, math.inf if rank is None else rank, index[id(e)])
        return (2 if e.row.baseline else 1, 0.0, index[id(e)])

    ordered = sorted(entries, key=sort_key)
    for e in ordered:
        e.position = e.ranks.get(order_by) if e.ranked else None
    return ordered


def _psnr_candidates(protocol: Protocol, first: str | None, rows: Sequence[Row]) -> list[str]:
    keys: list[str] = []
    for k in [
        first,
        *(t.metric for t in protocol.thresholds),
        *(t.stand_in for t in protocol.thresholds),
        "psnr_val",
        "psnr_test",
    ]:
        if k and k not in keys:
            keys.append(k)
    for row in rows:
        for k in row.values:
            if k.startswith("psnr") and k not in keys:
                keys.append(k)
    return keys


RuleFn = Callable[[Sequence[Row], Protocol, dict[str, Any], bool], Ranking]


def rank_sum(rows: Sequence[Row], protocol: Protocol, params: dict[str, Any], enforce_floor: bool) -> Ranking:
    """NTIRE 2023 and AIM 2020: rank each metric, sum ranks into combined statistics, rank those."""
    metrics: list[str] = list(params["metrics"])
    tie_break: list[str] = list(params.get("tie_break") or [])
    limits: dict[str, float] = {k: float(v) for k, v in (params.get("rank_only_below") or {}).items()}
    entries = [_screen(row, protocol, enforce_floor) for row in rows]
    for e in entries:
        _derive_runtime(e, protocol)
    pool = [e for e in entries if e.ranked]
    _require(pool, metrics, protocol)

    for metric in metrics:
        limit = limits.get(metric)
        sub = [e for e in pool if limit is None or (e.metric(metric) or 0.0) < limit]
        for e, rank in zip(sub, competition_ranks([_key(e, [metric, *tie_break]) for e in sub]), strict=True):
            e.ranks[metric] = rank
        for e in pool:
            if e not in sub:
                e.ranks[metric] = None
                e.notes.append(f"no {metric} rank: {e.metric(metric):g} is not below {limit:g}")

    for combo in params.get("combined") or []:
        key, parts = str(combo["key"]), list(combo["sum_of"])
        combo_tie = list(combo.get("tie_break") or [])
        have = []
        for e in pool:
            ranks = [e.ranks.get(p) for p in parts]
            if all(r is not None for r in ranks):
                e.derived[key] = float(sum(r for r in ranks if r is not None))
                have.append(e)
            else:
                e.derived[key] = None
                e.ranks[key] = None
        for e, rank in zip(have, competition_ranks([_key(e, [key, *combo_tie]) for e in have]), strict=True):
            e.ranks[key] = rank

    order_by = str(params.get("order_by", metrics[0]))
    columns = [Column(m, protocol.label(m), m, decimals(m)) for m in metrics]
    columns += [
        Column(str(c["key"]), str(c.get("label", c["key"])), str(c["key"]), 0) for c in params.get("combined") or []
    ]
    shown = {c.key for c in columns}
    for spec in protocol.metrics:
        if spec.key not in shown and any(e.metric(spec.key) is not None for e in entries):
            columns.append(Column(spec.key, spec.label, None, decimals(spec.key)))
            shown.add(spec.key)
    for extra in ("psnr_test_proxy",):
        if extra not in shown and any(e.metric(extra) is not None for e in entries):
            columns.append(Column(extra, psnr_label(protocol, extra), None, 2))
    floor = protocol.floor
    floor_line = None
    if floor is not None:
        keys = "|".join(k for k in (floor.metric, floor.stand_in) if k)
        floor_line = (keys, floor.min, f"{floor.min:.2f} dB floor")
    return _ranking(protocol, params, rows, entries, order_by, columns, floor_line, enforce_floor)


def ais_score(rows: Sequence[Row], protocol: Protocol, params: dict[str, Any], enforce_floor: bool) -> Ranking:
    """AIS 2024: Δ over the Lanczos baseline, the score S = 2·2^Δ / (√T · C), higher first."""
    keys: list[str] = list(params["delta_from"])
    c = float(params.get("constant_c", 0.1))
    min_delta = float(params.get("min_delta_exclusive", 0.0))
    max_runtime = float(params.get("max_runtime_ms_exclusive", math.inf))

    # The Lanczos reference: a baseline row measured on the user's own data beats the published numbers,
    # because Δ only means something when both sides saw the same images.
    reference = dict(protocol.baseline.get("values") or {})
    own = [r for r in rows if r.baseline and all(r.get(k) is not None for k in keys)]
    if len(own) == 1:
        reference = {k: own[0].get(k) for k in keys}
    elif len(own) > 1:
        raise InputError(f"{own[1].source}: more than one baseline row with {', '.join(keys)}; keep one Lanczos row")
    missing_ref = [k for k in keys if reference.get(k) is None]
    if missing_ref:
        raise InputError(f"{protocol.name}: no baseline value for {', '.join(missing_ref)}")
    base_mean = sum(float(reference[k]) for k in keys) / len(keys)

    entries = [_screen(row, protocol, enforce_floor) for row in rows]
    for e in entries:
        _derive_runtime(e, protocol)
        values = [e.row.get(k) for k in keys]
        if all(v is not None for v in values):
            mean = sum(v for v in values if v is not None) / len(values)
            e.derived["psnr_y_mean"] = mean
            e.derived["delta"] = mean - base_mean
        elif e.row.get("delta") is not None:
            e.derived["delta"] = e.row.get("delta")
            e.notes.append("Δ taken as given (no per-QP PSNR-Y)")
        else:
            e.derived["delta"] = None
        e.derived["score"] = None
    pool = [e for e in entries if e.ranked]
    _require(pool, ["delta", "runtime_ms"], protocol)
    for e in pool:
        delta, runtime = e.metric("delta"), e.metric("runtime_ms")
        assert delta is not None and runtime is not None
        if enforce_floor and not delta > min_delta:
            e.ranked, e.reason = False, f"Δ {delta:+.3f} dB: no improvement over Lanczos"
        elif enforce_floor and not runtime < max_runtime:
            e.ranked, e.reason = False, f"runtime {runtime:.2f} ms is not under {max_runtime:g} ms"
        elif runtime <= 0:
            raise InputError(f"{e.row.source}: runtime must be positive to compute the score")
        else:
            e.derived["score"] = 2.0 * 2.0**delta / (math.sqrt(runtime) * c)
    pool = [e for e in pool if e.ranked]
    for key, sign in (("score", -1.0), ("delta", -1.0), ("runtime_ms", 1.0)):
        ranks = competition_ranks([(sign * float(e.metric(key) or 0.0),) for e in pool])
        for e, rank in zip(pool, ranks, strict=True):
            e.ranks[key] = rank

    columns = [
        Column("score", "Score", "score", 2),
        Column("delta", "Δ [dB]", "delta", 3),
        Column("macs_g", protocol.label("macs_g"), None, 2),
        Column("runtime_ms", protocol.label("runtime_ms"), "runtime_ms", 3),
        Column("params_m", protocol.label("params_m"), None, 3),
    ]
    columns += [
        Column(k, protocol.label(k), None, 2) for k in ("psnr_rgb_qp31", "psnr_rgb_qp63", "psnr_y_qp31", "psnr_y_qp63")
    ]
    columns = [col for col in columns if any(e.metric(col.key) is not None for e in entries)]
    label = "Lanczos" if protocol.baseline.get("name") is None else str(protocol.baseline["name"])
    order_by = str(params.get("order_by", "score"))
    floor_line = ("psnr_y_mean", base_mean, f"{label} {base_mean:.3f} dB")
    return _ranking(protocol, params, rows, entries, order_by, columns, floor_line, enforce_floor)


def _ranking(protocol: Protocol, params: dict[str, Any], rows: Sequence[Row], entries: list[Entry], order_by: str,
             columns: list[Column], floor_line: tuple[str, float, str] | None, enforce_floor: bool) -> Ranking:
    """The :class:`Ranking` a rule function returns: entries in ``order_by`` order, plot candidates chosen."""
    return Ranking(
        protocol=protocol,
        entries=_order(entries, order_by),
        order_by=order_by,
        columns=columns,
        psnr_candidates=_psnr_candidates(protocol, params.get("plot_psnr"), rows),
        floor_line=floor_line,
        enforce_floor=enforce_floor,
    )
