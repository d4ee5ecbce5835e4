"""Fuzz target: training recipes (:func:`esrkit.train.recipe.load_recipe` on a YAML file, then ``smoke``).

An input is YAML text, optionally followed by a line ``#--set`` and one ``KEY=VALUE`` override per line (what
``esrkit train --set`` passes). Seeds are the shipped recipes and a few small ones with overrides. A recipe
from another team is read with ``yaml.safe_load`` and then checked key by key; the contract is that whatever the
file holds (wrong types, odd YAML tags, non-UTF-8 bytes, deep nesting) the result is a validated
:class:`~esrkit.train.recipe.Recipe` or an :class:`~esrkit.errors.EsrkitError`.
"""

from __future__ import annotations

from importlib import resources

import _harness
import atheris

with atheris.instrument_imports(include=["esrkit"]):
    from esrkit.train.recipe import load_recipe, smoke

MAX_LEN = 4096
MARK = b"\n#--set\n"
_PATH = _harness.scratch_dir() / "recipe.yaml"

_SMALL = b"""model: rlfn_s
scale: 2
ema: 0.999
stages:
  - iters: 10
    patch: 64
    batch: 2
    loss: {l1: 1.0}
    optimizer: {name: adam, lr: 1.0e-3}
    scheduler: {name: cosine, warmup_iters: 2}
    grad_clip: 0.5
  - iters: 5
    patch: 32
    batch: 1
    loss: {l1: 1.0, fft: 0.1}
    optimizer: {name: adan, lr: 5.0e-4}
    prune: 0.05
"""


def seeds() -> dict[str, bytes]:
    folder = resources.files("esrkit.train").joinpath("recipes")
    out = {p.name: p.read_bytes() for p in folder.iterdir() if p.name.endswith(".yaml")}
    out["small"] = _SMALL
    out["small_overrides"] = _SMALL + MARK + b"stages.0.iters=3\nema=0.99\nstages.1.optimizer.lr=1e-4\n"
    out["minimal"] = (b"model: imdn\nscale: 4\n"
                      b"stages: [{iters: 1, patch: 8, batch: 1, loss: {l1: 1}, optimizer: {name: adam}}]\n")
    return out


def test_one_input(data: bytes) -> None:
    text, _, tail = data.partition(MARK)
    overrides = tail.decode("utf-8", "replace").splitlines() if tail else []
    _PATH.write_bytes(text)
    recipe = smoke(load_recipe(_PATH, overrides))
    if not recipe.stages or recipe.total_iters < 1:
        raise AssertionError(f"a validated recipe without training: {recipe.stages}")


if __name__ == "__main__":
    _harness.main(test_one_input, seeds, MAX_LEN)
