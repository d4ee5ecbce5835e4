"""The catalogue of released weights: which file each zoo model's name stands for, at which scale and form.

The facts live in package data, ``esrkit/models/released_weights.json`` (beside the registry), one record per
released file: model, scale, form (``train`` or ``deploy``), the commit-pinned download URL, sha256, size in bytes,
the licence its repository states (null: none stated) and the repository. A commit-pinned URL plus a sha256 means
a name always resolves to the same bytes, whoever fetches it and from whichever mirror.

The file also lists ``no_released_weights``: the zoo models for which no released file is known. Together with
the weight-free baselines (``bicubic``, ``lanczos``: no parameters, nothing to load) every registered model is in
exactly one of the three groups, which a test checks, so the catalogue cannot drift from the zoo.

Which file a name resolves to (:func:`choose`): a model released in both forms (LKDN-S) computes the same function
either way (the deploy form *is* the train form folded), so inference prefers the deploy file (smaller, and no
fold to run); :func:`esrkit.hub.create_model` prefers the train form, the one that can be fine-tuned.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import PurePosixPath
from typing import Any

__all__ = [
    "GITHUB",
    "WeightsEntry",
    "choose",
    "entries",
    "entries_for",
    "licence_line",
    "needs_weights",
    "no_released_weights",
    "released_models",
]

GITHUB = "https://github.com"
DATA_FILE = "released_weights.json"


@dataclass(frozen=True)
class WeightsEntry:
    """One released weights file (a record of the catalogue)."""

    model: str
    scale: int
    form: str
    url: str
    sha256: str
    bytes: int
    licence: str | None
    repository: str
    commit: str
    path: str

    @property
    def label(self) -> str:
        """``dipnet ×4 (deploy)``: how messages name the file."""
        return f"{self.model} ×{self.scale} ({self.form})"

    @property
    def relative_url(self) -> str:
        """The URL's path below ``https://github.com`` (``OWNER/REPO/raw/COMMIT/PATH``): what a mirror holds."""
        return self.url.removeprefix(GITHUB).lstrip("/")

    @property
    def cache_name(self) -> str:
        """File name in the cache: readable, and unique per content (the hash prefix), keeping the suffix that
        tells :func:`esrkit.checkpoints.load_checkpoint` how to read it."""
        suffix = PurePosixPath(self.path).suffix or ".pth"
        return f"{self.model}_x{self.scale}_{self.form}-{self.sha256[:12]}{suffix}"

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "scale": self.scale, "form": self.form, "url": self.url,
                "sha256": self.sha256, "bytes": self.bytes, "licence": self.licence, "repository": self.repository}


@cache
def _document() -> dict[str, Any]:
    text = resources.files("esrkit").joinpath("models", DATA_FILE).read_text(encoding="utf-8")
    return json.loads(text)


@cache
def entries() -> tuple[WeightsEntry, ...]:
    """Every released file of the catalogue, in the catalogue's order."""
    return tuple(WeightsEntry(**{k: record[k] for k in WeightsEntry.__dataclass_fields__})
                 for record in _document()["weights"])


def entries_for(model: str, scale: int | None = None) -> list[WeightsEntry]:
    """The released files of ``model`` (at ``scale``, when given)."""
    return [e for e in entries() if e.model == model and (scale is None or e.scale == scale)]


def released_models() -> list[str]:
    """Names of the models with at least one released file, sorted."""
    return sorted({e.model for e in entries()})


def no_released_weights() -> list[str]:
    """Zoo models with no released file known to esrkit (they need a checkpoint of one's own)."""
    return list(_document()["no_released_weights"])


@cache
def needs_weights(model: str) -> bool:
    """Whether ``model`` has parameters at all: the interpolation baselines have none, so their name is already
    the real thing. A catalogued name (released or listed without weights) has them; any other (a plug-in family)
    is built once at its smallest scale to find out, which a test also does for the whole zoo."""
    if entries_for(model) or model in no_released_weights():
        return True
    from ..models.registry import create_model, model_info

    net = create_model(model, scale=model_info(model).scales[0])
    return any(True for _ in net.parameters())


def choose(model: str, scale: int, prefer: str = "deploy") -> WeightsEntry | None:
    """The file ``model`` at ``scale`` resolves to: the ``prefer`` form when released, else the other one; None
    when nothing is released at that scale."""
    found = entries_for(model, scale)
    found.sort(key=lambda e: e.form != prefer)
    return found[0] if found else None


def licence_line(entry: WeightsEntry) -> str:
    """The line shown once, at a file's first download (and carried by ``esrkit models --json``)."""
    if entry.licence is None:
        return f"{entry.label} weights: no licence stated by the repository {entry.repository}"
    return f"{entry.label} weights: licence {entry.licence}, as stated by the repository {entry.repository}"
