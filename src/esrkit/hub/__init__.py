"""Weights by name: the catalogue of released weights, the user's cache, downloads and the one resolver every
command and :func:`esrkit.create_model` / :meth:`esrkit.infer.Upscaler.from_name` share.

* :mod:`~esrkit.hub.catalogue`: which released file a model name and scale stand for (package data);
* :mod:`~esrkit.hub.cache`: ``$XDG_CACHE_HOME/esrkit/weights``, holding verified files only;
* :mod:`~esrkit.hub.download`: GitHub, ``ESRKIT_WEIGHTS_MIRROR``, ``ESRKIT_OFFLINE``, ``pull --from FILE``;
* :mod:`~esrkit.hub.progress`: a bar on a terminal, a line per file when piped;
* :mod:`~esrkit.hub.resolve`: :func:`load_model`, :func:`create_model`, :func:`pull`;
* :mod:`~esrkit.hub.provenance`: the record of which weights a run loaded, for result files.

No torch at import: ``esrkit pull`` and ``esrkit models --json`` start quickly.
"""

from __future__ import annotations

from .cache import cache_dir
from .catalogue import WeightsEntry, entries, entries_for
from .download import MIRROR_ENV, OFFLINE_ENV, fetch
from .resolve import (
    Pulled,
    check_choice,
    create_model,
    known_names,
    load_model,
    load_model_with_provenance,
    load_released,
    pull,
    weights_summary,
)

__all__ = [
    "MIRROR_ENV",
    "OFFLINE_ENV",
    "Pulled",
    "WeightsEntry",
    "cache_dir",
    "check_choice",
    "create_model",
    "entries",
    "entries_for",
    "fetch",
    "known_names",
    "load_model",
    "load_model_with_provenance",
    "load_released",
    "pull",
    "weights_summary",
]
