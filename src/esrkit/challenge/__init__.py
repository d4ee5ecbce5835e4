"""Challenge protocols, rankings and reports (NTIRE 2023 ESR, AIM 2020 ESR, AIS 2024 RTSR).

``load_protocol`` reads a challenge's protocol (data, not code); ``read_rows`` loads table rows from CSV/JSON;
``rank_rows`` applies the challenge's ranking rule; ``measure_challenge_row`` measures one model's table row
(:data:`MEASURES`: how, for each rule);
``write_report`` renders the self-contained HTML page.
"""

from __future__ import annotations

from .measures import MEASURES, measure_challenge_row
from .protocols import Protocol, available_protocols, load_protocol
from .ranking import RANKING_RULES, Entry, Ranking, competition_ranks, rank_rows
from .rows import Row, normalize_column, read_rows, read_rows_file, rows_from_records
from .run import resolve_challenge_sets, time_dataset

__all__ = [
    "MEASURES",
    "RANKING_RULES",
    "Entry",
    "Protocol",
    "Ranking",
    "Row",
    "available_protocols",
    "competition_ranks",
    "load_protocol",
    "measure_challenge_row",
    "normalize_column",
    "rank_rows",
    "read_rows",
    "read_rows_file",
    "resolve_challenge_sets",
    "rows_from_records",
    "time_dataset",
]
