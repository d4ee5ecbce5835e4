"""Reading a challenge table's column headers and cells: loose header matching (case, punctuation, ``#`` and word
order ignored), units from a suffix, canonical keys and units, numbers with rank annotations, yes/no flags.

The accepted spellings and units are listed in :mod:`esrkit.challenge.rows`, which turns whole records into rows.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from ..errors import InputError

__all__ = ["NON_NEGATIVE", "HeaderColumn", "HeaderError", "normalize_column", "parse_flag", "parse_header",
           "parse_number", "to_canonical_unit"]


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
class HeaderColumn:
    """A column header as read: what it holds and the factor to the canonical unit."""

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
        col = parse_header(header)
    except HeaderError as exc:
        raise InputError(str(exc)) from None
    return col.key, col.unit


def parse_header(header: str) -> HeaderColumn:
    """How a column header is read: its canonical key, quantity and unit factor (see :mod:`esrkit.challenge.rows`)."""
    unit: str | None = None
    for inner in re.findall(r"[\[(]\s*([^\])]*)\s*[\])]", header):
        if inner.strip().lower() in _UNITS:
            unit = inner.strip().lower()
    stripped = re.sub(r"[\[(][^\])]*[\])]", " ", header)
    toks = _tokens(stripped)
    if not toks:
        return HeaderColumn("", None, None, header)
    if toks[0] in _PREFIXED and len(toks) == 1:
        quantity, unit = _PREFIXED[toks[0]]
        return _make(quantity, unit, header)
    if "psnr" in toks or "ssim" in toks:
        return HeaderColumn(_psnr_key(toks), "psnr", 1.0, header, unit)
    if unit is None and len(toks) > 1 and toks[-1] in _UNITS:
        unit, toks = toks[-1], toks[:-1]
    key = frozenset(toks)
    quantity = _ALIASES.get(key) or _ALIASES.get(frozenset(t for t in toks if t not in _FILLER))
    if quantity is None:
        return HeaderColumn("_".join(_tokens(header)), None, None, header)
    if quantity in ("team", "model", "baseline", "verified"):
        return HeaderColumn(quantity, None, None, header)
    return _make(quantity, unit, header)


def _make(quantity: str, unit: str | None, header: str) -> HeaderColumn:
    key, factors, _, _ = _QUANTITIES[quantity]
    if unit is None or (unit == "db" and quantity != "delta"):
        return HeaderColumn(key, quantity, None, header, unit)
    if unit not in factors:
        raise HeaderError(f"column {header!r}: unit {unit!r} is not understood for {key}")
    return HeaderColumn(key, quantity, factors[unit], header, unit)


def _psnr_key(toks: list[str]) -> str:
    metric = "psnr" if "psnr" in toks else "ssim"
    rest = [t for t in toks if t not in ("psnr", "ssim", "db")]
    channel = [t for t in rest if t in ("rgb", "y")]
    split = ["val" if t in ("val", "validation") else "test" for t in rest if t in ("val", "validation", "test")]
    qp = [t for t in rest if re.fullmatch(r"qp\d+", t)]
    other = [t for t in rest if t not in channel and t not in qp and t not in ("val", "validation", "test")]
    return "_".join([metric, *channel[:1], *split[:1], *other, *qp[:1]])


class HeaderError(Exception):
    """A column header whose unit does not fit its quantity (turned into an InputError naming the file)."""


# ----------------------------------------------------------------------------------------------------
# cells

_MISSING = {"", "-", "–", "—", "*", "n/a", "na", "none", "null", "nan", "?"}
_NUMBER = re.compile(
    r"""^(?P<num>[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?(?:[eE][+-]?\d+)?|[+-]?\.\d+(?:[eE][+-]?\d+)?)
        \s*(?:\(\s*\d+\s*\))?\s*\*?$""",
    re.VERBOSE,
)


def parse_number(cell: Any) -> float | None:
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


def parse_flag(cell: Any) -> bool | None:
    """A yes/no cell (``None`` when empty); raises ValueError for anything else."""
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


def to_canonical_unit(col: HeaderColumn, value: float) -> float:
    """``value`` in the canonical unit of its column (a given unit's factor, or a bare count's)."""
    if col.quantity is None or col.quantity == "psnr":
        return value
    _, _, bare_threshold, bare_factor = _QUANTITIES[col.quantity]
    if col.factor is not None:
        return value * col.factor
    if bare_threshold is not None and abs(value) >= bare_threshold:
        return value * bare_factor  # a bare count (e.g. 433,000 parameters) rather than millions
    return value


NON_NEGATIVE = {
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
