"""Which weights a run used, as a record a result file can carry (``esrkit evaluate --json``'s
``weights_provenance``).

A score without the weights behind it cannot be checked or reproduced: "rlfn_ntire" may be the released file, a
fine-tuned checkpoint of one's own, or random weights asked for by a test. So every way :mod:`esrkit.hub.resolve`
settles a model has a record, with a ``kind`` saying which rule applied:

* ``file``: a checkpoint the user gave (``--weights``): its path, size and sha256, hashed when it is loaded, and
  ``released_as`` (label and URL) when those bytes are a released file of the catalogue;
* ``quantized``: an int8 file of ``esrkit quantize`` (likewise; an OpenVINO ``.xml`` with its ``.bin`` of weights);
* ``bundled``: esrkit's own ``esrkit_x4`` (or the file ``$ESRKIT_BUNDLED_WEIGHTS`` puts in its place), likewise;
* ``released``: a zoo name's released file: the catalogue's label, URL, sha256, size, licence and repository, and
  the cached copy it was loaded from (its sha256 was checked against the catalogue's when it was used);
* ``random``: random weights, because the caller asked for them (tests, timing): the scores mean nothing;
* ``none``: a model without parameters (``bicubic``, ``lanczos``): the name is the whole model.

Records are plain JSON-ready dicts, so a writer needs no knowledge of them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .cache import sha256_file
from .catalogue import WeightsEntry, entries

__all__ = ["bundled_record", "file_record", "no_parameters_record", "quantized_record", "random_record",
           "released_record"]


def file_record(path: str | os.PathLike[str], kind: str = "file") -> dict[str, Any]:
    """A weights file the run loaded: where it is, its size and its sha256 (of the bytes as they are now)."""
    file = Path(path).expanduser().resolve()
    digest = sha256_file(file)
    record: dict[str, Any] = {"kind": kind, "path": str(file), "bytes": file.stat().st_size, "sha256": digest}
    released = next((e for e in entries() if e.sha256 == digest), None)
    if released is not None:
        record["released_as"] = {"label": released.label, "url": released.url}
    return record


def quantized_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """An int8 model written by ``esrkit quantize``: the file given, and for OpenVINO's ``.xml`` (the graph) the
    ``.bin`` beside it, which holds the weights and is what differs between two quantizations of one model."""
    record = file_record(path, "quantized")
    weights = Path(path).with_suffix(".bin")
    if Path(path).suffix.lower() == ".xml" and weights.is_file():
        record["bin"] = file_record(weights, "quantized")
    return record


def bundled_record(path: str | os.PathLike[str], name: str, *, overridden: bool = False) -> dict[str, Any]:
    """esrkit's bundled model ``name``, loaded from ``path``: the package's own copy, or (``overridden``) the file
    ``$ESRKIT_BUNDLED_WEIGHTS`` puts in its place."""
    return {**file_record(path, "bundled"), "name": name, "from": "ESRKIT_BUNDLED_WEIGHTS" if overridden else "package"}


def released_record(entry: WeightsEntry, path: str | os.PathLike[str]) -> dict[str, Any]:
    """A released file of the catalogue, loaded from its verified cached copy ``path``."""
    return {"kind": "released", "label": entry.label, **entry.to_dict(), "path": str(Path(path).resolve())}


def random_record(name: str, scale: int) -> dict[str, Any]:
    """``name`` at ``scale`` with random weights, asked for explicitly (the scores say nothing about the model)."""
    return {"kind": "random", "model": name, "scale": scale, "random_weights": True}


def no_parameters_record(name: str, scale: int) -> dict[str, Any]:
    """A model with no parameters: nothing was loaded, the name alone fixes what ran."""
    return {"kind": "none", "model": name, "scale": scale}
