"""Fuzz target: loading a ``.safetensors`` checkpoint (:func:`esrkit.checkpoints.load_checkpoint`).

Seeded with esrkit's own files (the model description as JSON in the header metadata) and plain safetensors of
tiny zoo models (see :mod:`_checkpoints`), then mutated: the header length, the header JSON, the ``esrkit``
metadata (name, scale, hyper-parameters, form) and the tensor bytes. Contract: a described model in eval mode or
an :class:`~esrkit.errors.EsrkitError`.
"""

from __future__ import annotations

import _checkpoints
import _harness
import atheris

with atheris.instrument_imports(include=["esrkit"]):
    from esrkit.checkpoints import load_checkpoint
    from esrkit.layouts import known_layouts

MAX_LEN = 16384
_PATH = _harness.scratch_dir() / "checkpoint.safetensors"
known_layouts()  # warm the cache of every layout (built once, seconds) so it does not count as a slow input


def test_one_input(data: bytes) -> None:
    _PATH.write_bytes(data)
    _checkpoints.check_loaded(load_checkpoint(_PATH))


if __name__ == "__main__":
    _harness.main(test_one_input, _checkpoints.safetensors_seeds, MAX_LEN)
