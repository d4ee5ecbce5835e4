"""Fuzz target: loading a ``.pth`` checkpoint (:func:`esrkit.checkpoints.load_checkpoint`).

Seeded with tiny zoo models saved in every wrapper the loader documents, zip and legacy format (see
:mod:`_checkpoints`), then mutated. The loader must stay on ``torch.load(weights_only=True)``, unwrap, detect the
layout and load strictly; anything but a described model in eval mode or an
:class:`~esrkit.errors.EsrkitError` (``CheckpointError`` for every kind of bad file) is a finding.
"""

from __future__ import annotations

import _checkpoints
import _harness
import atheris

with atheris.instrument_imports(include=["esrkit"]):
    from esrkit.checkpoints import load_checkpoint
    from esrkit.layouts import known_layouts

MAX_LEN = 32768
_PATH = _harness.scratch_dir() / "checkpoint.pth"
known_layouts()  # warm the cache of every layout (built once, seconds) so it does not count as a slow input


def test_one_input(data: bytes) -> None:
    _PATH.write_bytes(data)
    _checkpoints.check_loaded(load_checkpoint(_PATH))


if __name__ == "__main__":
    _harness.main(test_one_input, _checkpoints.pth_seeds, MAX_LEN)
