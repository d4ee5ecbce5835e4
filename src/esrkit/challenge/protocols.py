"""Challenge protocols as data.

Each challenge esrkit reproduces (NTIRE 2023 ESR, AIM 2020 ESR, AIS 2024 RTSR) is described by one YAML file
in ``challenge/protocols/``: its datasets, scale, degradation, metrics, how runtime was measured, PSNR
thresholds and the ranking rule with its parameters. Keeping the protocol out of the code means a rule
change (a tie-break, a floor) is a one-line data edit reviewed against the report, and :func:`load_protocol`
also accepts a path so users can rank their own internal leaderboards with the same machinery.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..errors import InputError

__all__ = [
    "DatasetSpec",
    "MetricSpec",
    "Protocol",
    "Threshold",
    "available_protocols",
    "load_protocol",
]


@dataclass(frozen=True)
class DatasetSpec:
    """One evaluation set of a challenge and the folder names it may have under a data root."""

    key: str
    name: str
    role: str
    images: int | None = None
    dirs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Threshold:
    """A PSNR requirement. Only ``enforced`` ones exclude entries: the reports state some rules their own
    tables do not apply (e.g. NTIRE 2023's 29.00 dB validation PSNR), and reproducing the tables means
    honouring the rule that was actually used while still showing the stated one."""

    metric: str
    min: float
    enforced: bool
    stand_in: str | None = None
    note: str = ""


@dataclass(frozen=True)
class MetricSpec:
    """A table column of the challenge: canonical row key, the label the report prints, and whether it is
    ranked."""

    key: str
    label: str
    ranked: bool


@dataclass(frozen=True)
class Protocol:
    """A challenge protocol loaded from YAML. ``ranking`` holds the rule name (``rule``) and its
    parameters."""

    name: str
    title: str
    source: str
    scale: int
    degradation: str
    datasets: tuple[DatasetSpec, ...]
    thresholds: tuple[Threshold, ...]
    metrics: tuple[MetricSpec, ...]
    ranking: dict[str, Any]
    runtime: dict[str, Any] = field(default_factory=dict)
    complexity: dict[str, Any] = field(default_factory=dict)
    psnr: dict[str, Any] = field(default_factory=dict)
    baseline: dict[str, Any] = field(default_factory=dict)

    @property
    def rule(self) -> str:
        """Name of the ranking rule (a key of :data:`esrkit.challenge.ranking.RANKING_RULES`)."""
        return str(self.ranking["rule"])

    @property
    def floor(self) -> Threshold | None:
        """The enforced PSNR threshold (the one that removes entries from the ranking), if any."""
        for threshold in self.thresholds:
            if threshold.enforced:
                return threshold
        return None

    def schema(self) -> list[tuple[str, str, str]]:
        """The columns a row file gives this challenge: ``(row key, the report's label, what it is for)``, the
        ranked metrics first, then the shown ones, each PSNR threshold saying its floor and whether it removes
        entries (what ``esrkit challenge rank --schema`` prints; :mod:`esrkit.challenge.rows` lists the
        accepted spellings and units of each key)."""
        out = [("team", "Team", "required: the entry's name"), ("model", "Model", "optional")]
        for metric in self.metrics:
            use = "ranked" if metric.ranked else "shown"
            for t in self.thresholds:
                if metric.key in (t.metric, t.stand_in):
                    kind = "entries under it are not ranked" if t.enforced else "stated; a note when missed"
                    use += f"; floor {t.min:.2f} dB ({kind})"
            out.append((metric.key, metric.label, use))
        derive = self.runtime.get("derive_from") or []
        out += [(key, key, "shown; runtime_ms is their mean when a row lacks it") for key in derive]
        out += [(t.stand_in, t.stand_in, f"stands in for {t.metric} ({t.min:.2f} dB floor)")
                for t in self.thresholds if t.stand_in and not any(m.key == t.stand_in for m in self.metrics)]
        out += [("baseline", "", "optional true/false: a reference row, never ranked"),
                ("verified", "", "optional true/false: false = not verified, never ranked")]
        return out

    def label(self, key: str) -> str:
        """The report's column label for ``key`` (falls back to the key itself)."""
        for metric in self.metrics:
            if metric.key == key:
                return metric.label
        return key


_PACKAGE_DIR = "protocols"


def available_protocols() -> list[str]:
    """Names of the bundled protocols (the YAML file stems)."""
    folder = resources.files("esrkit.challenge").joinpath(_PACKAGE_DIR)
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _require(data: dict[str, Any], key: str, where: str) -> Any:
    if key not in data:
        raise InputError(f"{where}: protocol is missing the key {key!r}")
    return data[key]


def _parse(data: Any, where: str) -> Protocol:
    if not isinstance(data, dict):
        raise InputError(f"{where}: a protocol must be a YAML mapping")
    datasets = tuple(
        DatasetSpec(
            key=str(_require(d, "key", where)),
            name=str(_require(d, "name", where)),
            role=str(d.get("role", "")),
            images=d.get("images"),
            dirs=tuple(str(x) for x in d.get("dirs", ())),
        )
        for d in data.get("datasets", [])
    )
    psnr = dict(data.get("psnr") or {})
    thresholds = tuple(
        Threshold(
            metric=str(_require(t, "metric", where)),
            min=float(_require(t, "min", where)),
            enforced=bool(t.get("enforced", False)),
            stand_in=t.get("stand_in"),
            note=str(t.get("note", "")),
        )
        for t in psnr.pop("thresholds", None) or []
    )
    if sum(t.enforced for t in thresholds) > 1:
        raise InputError(f"{where}: at most one enforced PSNR threshold is supported")
    metrics = tuple(
        MetricSpec(
            key=str(_require(m, "key", where)),
            label=str(m.get("label", m["key"])),
            ranked=bool(m.get("ranked")),
        )
        for m in data.get("metrics", [])
    )
    ranking = dict(_require(data, "ranking", where))
    _require(ranking, "rule", f"{where} (ranking)")
    return Protocol(
        name=str(_require(data, "name", where)),
        title=str(data.get("title", data["name"])),
        source=str(data.get("source", "")),
        scale=int(_require(data, "scale", where)),
        degradation=str(data.get("degradation", "")),
        datasets=datasets,
        thresholds=thresholds,
        metrics=metrics,
        ranking=ranking,
        runtime=dict(data.get("runtime") or {}),
        complexity=dict(data.get("complexity") or {}),
        psnr=psnr,
        baseline=dict(data.get("baseline") or {}),
    )


def load_protocol(name_or_path: str | Path) -> Protocol:
    """Load a bundled protocol by name (``ntire2023``, ``aim2020``, ``ais2024``) or any protocol YAML by path.

    Raises :class:`~esrkit.errors.InputError` naming the available protocols when the name is unknown, so a
    typo in ``--challenge`` is answered with the valid choices.
    """
    text: str
    where: str
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        text, where = candidate.read_text(encoding="utf-8"), str(candidate)
    else:
        key = str(name_or_path).strip().lower().replace("-", "").replace("_", "")
        names = available_protocols()
        if key not in names:
            raise InputError(f"unknown challenge {name_or_path!r}; choose one of {', '.join(names)} or a .yaml path")
        res = resources.files("esrkit.challenge").joinpath(_PACKAGE_DIR, f"{key}.yaml")
        text, where = res.read_text(encoding="utf-8"), f"{key}.yaml"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"{where}: not valid YAML ({exc})") from exc
    return _parse(data, where)
