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
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..fileio import write_text_atomic

__all__ = [
    "Row",
    "normalize_column",
    "read_rows",
    "read_rows_file",
    "rows_from_records",
    "write_text_atomic",
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
# column names

_UNITS = {"ms", "s", "us", "m", "k", "g", "t", "mb", "mib", "gb", "gib", "kb", "kib", "b", "db"}
_FILLER = {
    "ave",
    "avg",
    "average",
    "mean",
    "num",
    "n",
    "number",
    "of",
    "nb",
    "total",
    "max",
    "maximum",
    "gpu",
    "peak",
}

# quantity -> (canonical key, {unit: factor to the canonical unit}, bare-count threshold, bare-count factor)
_QUANTITIES: dict[str, tuple[str, dict[str, float], float | None, float]] = {
    "runtime": ("runtime_ms", {"ms": 1.0, "s": 1000.0, "us": 1e-3}, None, 1.0),
    "runtime_val": ("runtime_val_ms", {"ms": 1.0, "s": 1000.0, "us": 1e-3}, None, 1.0),
    "runtime_test": ("runtime_test_ms", {"ms": 1.0, "s": 1000.0, "us": 1e-3}, None, 1.0),
    "params": ("params_m", {"m": 1.0, "k": 1e-3}, 1000.0, 1e-6),
    "flops": ("flops_g", {"g": 1.0, "m": 1e-3, "t": 1e3}, 1e6, 1e-9),
    "macs": ("macs_g", {"g": 1.0, "m": 1e-3, "t": 1e3}, 1e6, 1e-9),
    "acts": ("acts_m", {"m": 1.0, "k": 1e-3, "g": 1e3}, 1e5, 1e-6),
    "memory": (
        "memory_mb",
        {
            "m": 1.0,
            "mb": 1.0,
            "mib": 1.0,
            "g": 1024.0,
            "gb": 1024.0,
            "gib": 1024.0,
            "k": 1 / 1024,
            "kb": 1 / 1024,
            "kib": 1 / 1024,
            "b": 1 / 2**20,
        },
        1e6,
        1 / 2**20,
    ),
    "convs": ("convs", {}, None, 1.0),
    "delta": ("delta", {"db": 1.0}, None, 1.0),
    "score": ("score", {}, None, 1.0),
    "model_complexity": ("model_complexity", {}, None, 1.0),
    "overall": ("overall", {}, None, 1.0),
}

_ALIASES: dict[frozenset[str], str] = {}


def _alias(quantity: str, *spellings: str) -> None:
    for spelling in spellings:
        _ALIASES[frozenset(spelling.split())] = quantity


_alias("team", "team", "name", "method", "entry", "team method", "team name", "participant")
_alias("model", "model", "architecture", "arch", "model name", "network")
_alias("runtime", "runtime", "time", "run time", "inference time", "latency", "runtime time")
_alias("runtime_val", "val time", "runtime val", "validation time", "val runtime", "time val")
_alias("runtime_test", "test time", "runtime test", "test runtime", "time test")
_alias("params", "params", "param", "par", "parameters", "parameter")
_alias("flops", "flops", "flop")
_alias("macs", "macs", "mac", "mult adds", "multadds")
_alias("acts", "acts", "act", "activations", "activation")
_alias("memory", "mem", "memory")
_alias("convs", "conv", "convs", "convolutions", "conv layers")
_alias("delta", "delta")
_alias("score", "score")
_alias("model_complexity", "model comp", "model complexity", "complexity")
_alias("overall", "overall", "overall rank sum", "rank sum")
_alias("baseline", "baseline", "is baseline", "reference")
_alias("verified", "verified")

_PREFIXED = {
    "gflops": ("flops", "g"),
    "gmacs": ("macs", "g"),
    "mflops": ("flops", "m"),
    "tflops": ("flops", "t"),
}


@dataclass(frozen=True)
class _Column:
    key: str  # canonical key, or "team"/"model"/"baseline"/"verified", or "" to ignore, or a normalised name
    quantity: str | None  # entry of _QUANTITIES, or "psnr" for PSNR/SSIM, None for free columns
    factor: float | None  # unit factor when a unit was given
    header: str
    unit: str | None = None


def _tokens(text: str) -> list[str]:
    text = text.lower().replace("δ", "delta")
    return [t for t in re.split(r"[^a-z0-9]+", text) if t]


def normalize_column(header: str) -> tuple[str, str | None]:
    """Canonical key and unit of a column header, e.g. ``"#Params [M]" -> ("params_m", "m")``.

    Exposed so users (and the tests) can check how their spreadsheet's headers will be read.
    """
    try:
        col = _column(header)
    except _HeaderError as exc:
        raise InputError(str(exc)) from None
    return col.key, col.unit


def _column(header: str) -> _Column:
    unit: str | None = None
    for inner in re.findall(r"[\[(]\s*([^\])]*)\s*[\])]", header):
        if inner.strip().lower() in _UNITS:
            unit = inner.strip().lower()
    stripped = re.sub(r"[\[(][^\])]*[\])]", " ", header)
    toks = _tokens(stripped)
    if not toks:
        return _Column("", None, None, header)
    if toks[0] in _PREFIXED and len(toks) == 1:
        quantity, unit = _PREFIXED[toks[0]]
        return _make(quantity, unit, header)
    if "psnr" in toks or "ssim" in toks:
        return _Column(_psnr_key(toks), "psnr", 1.0, header, unit)
    if unit is None and len(toks) > 1 and toks[-1] in _UNITS:
        unit, toks = toks[-1], toks[:-1]
    key = frozenset(toks)
    quantity = _ALIASES.get(key) or _ALIASES.get(frozenset(t for t in toks if t not in _FILLER))
    if quantity is None:
        return _Column("_".join(_tokens(header)), None, None, header)
    if quantity in ("team", "model", "baseline", "verified"):
        return _Column(quantity, None, None, header)
    return _make(quantity, unit, header)


def _make(quantity: str, unit: str | None, header: str) -> _Column:
    key, factors, _, _ = _QUANTITIES[quantity]
    if unit is None or (unit == "db" and quantity != "delta"):
        return _Column(key, quantity, None, header, unit)
    if unit not in factors:
        raise _HeaderError(f"column {header!r}: unit {unit!r} is not understood for {key}")
    return _Column(key, quantity, factors[unit], header, unit)


def _psnr_key(toks: list[str]) -> str:
    metric = "psnr" if "psnr" in toks else "ssim"
    rest = [t for t in toks if t not in ("psnr", "ssim", "db")]
    channel = [t for t in rest if t in ("rgb", "y")]
    split = ["val" if t in ("val", "validation") else "test" for t in rest if t in ("val", "validation", "test")]
    qp = [t for t in rest if re.fullmatch(r"qp\d+", t)]
    other = [t for t in rest if t not in channel and t not in qp and t not in ("val", "validation", "test")]
    return "_".join([metric, *channel[:1], *split[:1], *other, *qp[:1]])


class _HeaderError(Exception):
    pass


# ----------------------------------------------------------------------------------------------------
# cells

_MISSING = {"", "-", "–", "—", "*", "n/a", "na", "none", "null", "nan", "?"}
_NUMBER = re.compile(
    r"""^(?P<num>[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?(?:[eE][+-]?\d+)?|[+-]?\.\d+(?:[eE][+-]?\d+)?)
        \s*(?:\(\s*\d+\s*\))?\s*\*?$""",
    re.VERBOSE,
)


def _number(cell: Any) -> float | None:
    """A float, ``None`` for a missing marker; raises ValueError for anything else."""
    if cell is None:
        return None
    if isinstance(cell, bool):
        raise ValueError(f"{cell!r} is not a number")
    if isinstance(cell, int | float):
        value = float(cell)
    else:
        text = str(cell).strip()
        if text.lower() in _MISSING:
            return None
        match = _NUMBER.match(text)
        if not match:
            raise ValueError(f"{text!r} is not a number")
        value = float(match.group("num").replace(",", ""))
    if not math.isfinite(value):
        raise ValueError(f"{cell!r} is not a finite number")
    return value


def _boolean(cell: Any) -> bool | None:
    if cell is None or isinstance(cell, bool):
        return cell
    text = str(cell).strip().lower()
    if text in ("", "-"):
        return None
    if text in ("1", "true", "yes", "y", "x"):
        return True
    if text in ("0", "false", "no", "n"):
        return False
    raise ValueError(f"{cell!r} is not a yes/no value")


def _convert(col: _Column, value: float) -> float:
    if col.quantity is None or col.quantity == "psnr":
        return value
    _, _, bare_threshold, bare_factor = _QUANTITIES[col.quantity]
    if col.factor is not None:
        return value * col.factor
    if bare_threshold is not None and abs(value) >= bare_threshold:
        return value * bare_factor  # a bare count (e.g. 433,000 parameters) rather than millions
    return value


_NON_NEGATIVE = {
    "runtime_ms",
    "runtime_val_ms",
    "runtime_test_ms",
    "params_m",
    "flops_g",
    "macs_g",
    "acts_m",
    "memory_mb",
    "convs",
}


# ----------------------------------------------------------------------------------------------------
# records -> rows


def rows_from_records(records: Iterable[dict[str, Any]], source: str, first_row: int = 1) -> list[Row]:
    """Turn mappings (CSV dict rows or JSON objects) into :class:`Row` objects.

    ``source`` (usually the file name) and the 1-based row number go into every error message and into
    :attr:`Row.source`, so a bad cell is reported as ``results.csv: row 3: ...``.
    """
    rows: list[Row] = []
    columns: dict[str, _Column] = {}
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
                    columns[header] = _column(header)
                except _HeaderError as exc:
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
                    flag = _boolean(cell)
                    if flag is not None:
                        if col.key == "baseline":
                            baseline = flag
                        else:
                            verified = flag
                    continue
                if col.quantity is None:
                    try:
                        value = _number(cell)
                    except ValueError:
                        extra[col.key] = str(cell).strip()
                        continue
                else:
                    value = _number(cell)
                if value is None:
                    continue
                value = _convert(col, value)
                if col.key in _NON_NEGATIVE and value < 0:
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
