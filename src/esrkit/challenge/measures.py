"""How ``esrkit challenge run`` measures a row under each ranking rule, beside :data:`~.ranking.RANKING_RULES`.

:data:`MEASURES` maps a rule to its measurement and to the table that shows it: ``rank_sum`` (NTIRE 2023, AIM
2020) evaluates the challenge's bicubic sets (:func:`~.run.measure_bicubic_row`); ``ais_score`` (AIS 2024) degrades
the user's HR images with the survey's AVIF command at every QP (:func:`~.ais2024.measure_ais2024_row`). The
options a measurement takes are those of its function's signature, so callers pass what they have and each
measurement reads its own (``trials`` is the bicubic sets', ``qps`` AIS 2024's).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from .ais2024 import measure_ais2024_row
from .protocols import load_protocol
from .run import measure_bicubic_row
from .tables import ais_row_table, row_table

__all__ = ["MEASURES", "Measure", "measure_challenge_row", "measured_table"]


@dataclass(frozen=True)
class Measure:
    """A rule's measurement ``(weights, data_root, **options) -> document`` and the rich table of a document."""

    measure: Callable[..., dict[str, Any]]
    table: Callable[[dict[str, Any]], Any]

    def options(self) -> set[str]:
        """The keyword options the measurement takes (from its signature)."""
        params = inspect.signature(self.measure).parameters.values()
        return {p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


#: Measurement and table by ranking rule (the protocol's ``rule:``).
MEASURES: dict[str, Measure] = {
    "rank_sum": Measure(measure_bicubic_row, row_table),
    "ais_score": Measure(measure_ais2024_row, ais_row_table),
}


def measure_challenge_row(protocol_name: str, weights: str | Path | None, data_root: str | Path,
                          **options: Any) -> dict[str, Any]:
    """Measure the table row of ``weights`` under a challenge protocol, the way its rule needs.

    ``options`` are the measurements' keywords (:data:`MEASURES`); each takes those its signature names and
    ignores the others' (an option no measurement knows is an error). Returns the measurement's document,
    ``{"challenge": name, "row": {...}, "details": {...}}`` (AIS 2024 adds ``rows``: the model's and Lanczos').
    """
    known = set().union(*(m.options() for m in MEASURES.values()))
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"measure_challenge_row() got unknown option(s) {', '.join(unknown)}")
    protocol = load_protocol(protocol_name)
    chosen = MEASURES.get(protocol.rule)
    if chosen is None:
        raise InputError(f"challenge run has no measurement for the {protocol.rule!r} rule of {protocol.name}")
    taken = chosen.options()
    if "challenge" in taken:
        options = {**options, "challenge": protocol_name}
    return chosen.measure(weights, data_root, **{k: v for k, v in options.items() if k in taken})


def measured_table(document: dict[str, Any]) -> Any:
    """The rich table of a measured document, as its challenge's rule shows it."""
    return MEASURES[load_protocol(document["challenge"]).rule].table(document)
