"""Reading challenge rows (one team/model and its metric values) from CSV and JSON.

Schema
------
A row is one entry of a challenge table: a ``team`` (required), an optional ``model``, and metric values.
Column names are matched loosely so that tables pasted from the reports, spreadsheets and esrkit's own
outputs all load: case, punctuation, ``#`` and word order are ignored, units come from a
``[unit]``/``(unit)`` suffix or a trailing ``_unit`` token, and values are converted to one canonical unit
per quantity:

================  ===========================================================  ============================
canonical key     accepted spellings (examples)                                unit (others converted)
================  ===========================================================  ============================
team              team, name, method, entry, "Team / Method (Sec.)"            --
model             model, architecture, arch                                    --
runtime_ms        runtime, "Ave. Time", avg_time, time, runtime_s, "Runtime"   ms (s, us)
runtime_val_ms    "Val. Time", runtime_val, "Runtime Val [s]"                  ms (s, us)
runtime_test_ms   "Test Time", runtime_test                                    ms (s, us)
params_m          "#Params [M]", params, "# Par.", parameters                  M (K; a bare count >= 1000)
flops_g           "FLOPs [G]", flops, gflops                                   G (M, T; a bare count >= 1e6)
macs_g            "MACs [G]", macs, gmacs                                      G (M, T; a bare count >= 1e6)
acts_m            "#Acts [M]", activations                                     M (K, G; a bare count >= 1e5)
memory_mb         "GPU Mem. [M]", memory, mem, max_memory                      MiB (KB, GB; bare >= 1e6 = B)
convs             "#Conv", convs, num_conv                                     count
psnr_* / ssim_*   "Val PSNR", "PSNR Test", "PSNR-Y QP31", psnr_div2k_valid     dB / unitless
delta, score      "Δ [dB]", "Score" (AIS 2024 published values)                as printed
model_complexity  "Model Comp." (published NTIRE value, kept for comparison)   as printed
overall           "Overall" (published value, kept for comparison)             as printed
baseline          true/false, yes/no, 1/0: a reference row, never ranked       --
verified          true/false: false = not verified by the organizers           --
================  ===========================================================  ============================

PSNR/SSIM names are rebuilt as ``<psnr|ssim>[_rgb|_y][_val|_test][_other tokens][_qpNN]``, so ``Val PSNR`` and
``psnr_val`` are the same column. Cells may carry the reports' rank annotation (``18.30 (1)``) or an
unverified marker (``0.081*``); both are stripped. Empty cells and ``-``, ``–``, ``*``, ``n/a`` mean "not
given". Unknown numeric columns are kept under their normalised name; unknown text columns go to
:attr:`Row.extra`.

JSON files hold a list of row objects, or an object with ``rows`` (a list), ``entries`` (esrkit's ranking
output, each with a ``row``) or ``row`` (esrkit's ``challenge run`` output); a nested object inside a row is
merged into it.

Any value that cannot be read raises :class:`~esrkit.errors.InputError` naming the file and the row, because a
silently dropped cell would change a ranking without anyone noticing.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from .columns import (
    NON_NEGATIVE,
    HeaderColumn,
    HeaderError,
    normalize_column,
    parse_flag,
    parse_header,
    parse_number,
    to_canonical_unit,
)

__all__ = [
    "Row",
    "normalize_column",
    "read_rows",
    "read_rows_file",
    "rows_from_records",
]


@dataclass
class Row:
    """One table entry. ``values`` holds canonical metric keys (see the module docstring) in canonical
    units."""

    team: str
    model: str | None = None
    values: dict[str, float] = field(default_factory=dict)
    baseline: bool = False
    verified: bool = True
    extra: dict[str, str] = field(default_factory=dict)
    source: str = ""

    @property
    def label(self) -> str:
        """Display name: the team, plus the model when it differs."""
        if self.model and self.model != self.team:
            return f"{self.team} ({self.model})"
        return self.team

    def get(self, key: str) -> float | None:
        """The value of ``key`` or ``None`` when the row does not give it."""
        return self.values.get(key)

    def to_dict(self) -> dict[str, Any]:
        """A flat JSON-friendly mapping that :func:`rows_from_records` reads back unchanged."""
        out: dict[str, Any] = {"team": self.team}
        if self.model is not None:
            out["model"] = self.model
        out.update(self.values)
        if self.baseline:
            out["baseline"] = True
        if not self.verified:
            out["verified"] = False
        out.update(self.extra)
        return out


# ----------------------------------------------------------------------------------------------------
# records -> rows


def rows_from_records(records: Iterable[dict[str, Any]], source: str, first_row: int = 1) -> list[Row]:
    """Turn mappings (CSV dict rows or JSON objects) into :class:`Row` objects.

    ``source`` (usually the file name) and the 1-based row number go into every error message and into
    :attr:`Row.source`, so a bad cell is reported as ``results.csv: row 3: ...``.
    """
    rows: list[Row] = []
    columns: dict[str, HeaderColumn] = {}
    for index, record in enumerate(records, start=first_row):
        where = f"{source}: row {index}"
        if not isinstance(record, dict):
            raise InputError(f"{where}: expected an object with a team and metric values, got {type(record).__name__}")
        record = _flatten(record, where)
        team = model = None
        values: dict[str, float] = {}
        extra: dict[str, str] = {}
        baseline = False
        verified = True
        for header, cell in record.items():
            if header is None:
                raise InputError(f"{where}: more cells than header columns")
            header = str(header)
            if header not in columns:
                try:
                    columns[header] = parse_header(header)
                except HeaderError as exc:
                    raise InputError(f"{source}: {exc}") from None
            col = columns[header]
            try:
                if col.key == "":
                    continue
                if col.key in ("team", "model"):
                    text = None if cell is None else str(cell).strip()
                    if text:
                        if col.key == "team":
                            if team is not None and team != text:
                                raise ValueError(f"two team columns disagree ({team!r} vs {text!r})")
                            team = text
                        else:
                            model = text
                    continue
                if col.key in ("baseline", "verified"):
                    flag = parse_flag(cell)
                    if flag is not None:
                        if col.key == "baseline":
                            baseline = flag
                        else:
                            verified = flag
                    continue
                if col.quantity is None:
                    try:
                        value = parse_number(cell)
                    except ValueError:
                        extra[col.key] = str(cell).strip()
                        continue
                else:
                    value = parse_number(cell)
                if value is None:
                    continue
                value = to_canonical_unit(col, value)
                if col.key in NON_NEGATIVE and value < 0:
                    raise ValueError(f"{value!r} is negative")
                if col.key in values and values[col.key] != value:
                    raise ValueError(f"given twice with different values ({values[col.key]!r} vs {value!r})")
                values[col.key] = value
            except ValueError as exc:
                raise InputError(f"{where}: column {header!r}: {exc}") from None
        if team is None:
            team = model
        if not team:
            raise InputError(f"{where}: no team/model name (expected a 'team' or 'model' column)")
        rows.append(Row(team=team, model=model, values=values, baseline=baseline, verified=verified, extra=extra,
                        source=where))
    return rows


def _flatten(record: dict[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.items():
        items = value.items() if isinstance(value, dict) else [(key, value)]
        for inner_key, inner in items:
            if isinstance(inner, dict | list):
                raise InputError(f"{where}: {key!r} is nested too deeply (one level of grouping is read)")
            if inner_key in out and out[inner_key] != inner:
                raise InputError(f"{where}: {inner_key!r} is given twice with different values")
            out[inner_key] = inner
    return out


def _read_csv(path: Path, text: str) -> list[Row]:
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    if not reader.fieldnames:
        raise InputError(f"{path}: empty CSV file (a header row naming the columns is required)")
    records = [r for r in reader if any((v or "").strip() for k, v in r.items() if k is not None) or None in r]
    return rows_from_records(records, str(path))


def _read_json(path: Path, text: str) -> list[Row]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if isinstance(data, dict):
        if isinstance(data.get("rows"), list):
            data = data["rows"]
        elif isinstance(data.get("entries"), list):
            data = [e.get("row", e) if isinstance(e, dict) else e for e in data["entries"]]
        elif isinstance(data.get("row"), dict):
            data = [data["row"]]
        else:
            data = [data]
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a list of rows or an object with 'rows'")
    return rows_from_records(data, str(path))


def read_rows_file(path: str | Path) -> list[Row]:
    """Rows of one ``.csv``/``.tsv`` or ``.json`` file (format chosen by the suffix)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be read as UTF-8 text ({exc})") from None
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _read_json(path, text)
    if suffix in (".csv", ".tsv", ".txt"):
        return _read_csv(path, text)
    raise InputError(f"{path}: unsupported row file (use .csv, .tsv or .json)")


def read_rows(paths: Sequence[str | Path]) -> list[Row]:
    """Rows of several files, in order. The same entry (team and model) twice is an error naming both places:
    ranking it twice would push every other entry down by one."""
    rows: list[Row] = []
    seen: dict[tuple[str, str | None], Row] = {}
    for path in paths:
        for row in read_rows_file(path):
            ident = (row.team.casefold(), (row.model or "").casefold() or None)
            if ident in seen:
                first = seen[ident]
                if row.baseline and first.baseline and (row.values, row.extra) == (first.values, first.extra):
                    continue  # the same reference row from two runs on the same data (AIS 2024 Lanczos): one row
                raise InputError(f"{row.source}: duplicate entry {row.label!r} (already in {first.source})")
            seen[ident] = row
            rows.append(row)
    if not rows:
        raise InputError("no rows found in " + ", ".join(str(p) for p in paths))
    return rows
