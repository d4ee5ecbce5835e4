"""Fuzz target: challenge row files in CSV (:func:`esrkit.challenge.rows.read_rows`, then every protocol's
ranking), seeded with the challenge tables' own spellings (see :mod:`_rows`). Contract: rows with a team and
finite values that every protocol ranks, or an :class:`~esrkit.errors.EsrkitError`.
"""

from __future__ import annotations

import _harness
import _rows
import atheris

with atheris.instrument_imports(include=["esrkit"]):
    import esrkit.challenge  # noqa: F401

MAX_LEN = 4096
_PATH = _harness.scratch_dir() / "rows.csv"


def test_one_input(data: bytes) -> None:
    _rows.check_rows(_rows.read(_PATH, data))


if __name__ == "__main__":
    _harness.main(test_one_input, lambda: _rows.CSV_SEEDS, MAX_LEN)
