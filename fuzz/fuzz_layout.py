"""Fuzz target: layout detection on random state dicts (:mod:`esrkit.layouts`,
:func:`esrkit.checkpoints.build_from_state_dict`).

The fuzzer's bytes are read with :class:`atheris.FuzzedDataProvider` as a recipe for a state dict:

* mostly an **edited real layout**: one of :func:`~esrkit.layouts.known_layouts` (every registered model at its
  scales, train and deploy form) with a few edits (drop a key, change one dimension, add a key from another
  layout, renumber a block index, add or remove a dimension), which is where detectors run deep: half-matching
  state dicts are exactly what a foreign or damaged checkpoint looks like;
* sometimes **free-form**: up to a dozen keys, drawn from the vocabulary of real key names or invented, with
  random small shapes.

Tensors are zero-strided views of one zero (``torch.zeros(()).expand(shape)``): any shape costs no memory, and
dimensions are capped at 256 so that a detected model stays small to build. Every family's detector runs
(``claimants``), then the loader builds and strictly loads the first claim. Contract: a described model in eval
mode, or an :class:`~esrkit.errors.EsrkitError`.
"""

from __future__ import annotations

import hashlib
import re

import _checkpoints
import _harness
import atheris
import torch

with atheris.instrument_imports(include=["esrkit"]):
    from esrkit.checkpoints import build_from_state_dict
    from esrkit.layouts import claimants, known_layouts

MAX_LEN = 4096
MAX_DIM = 256
LAYOUTS = known_layouts()
VOCAB = sorted({key for _, layout in LAYOUTS for key in layout})
DIMS = sorted({d for _, layout in LAYOUTS for shape in layout.values() for d in shape if d <= MAX_DIM}
              | {0, 1, 2, 3, 4, 5, 7, 12, 27, 48})
INDICES = (0, 1, 2, 3, 5, 8, 16, 17, 33, 100, 999)
DTYPES = (torch.float32, torch.float32, torch.float32, torch.float16, torch.float64, torch.int64, torch.bool)


def _shape(fdp: atheris.FuzzedDataProvider) -> tuple[int, ...]:
    return tuple(_dim(fdp) for _ in range(fdp.ConsumeIntInRange(0, 4)))


def _dim(fdp: atheris.FuzzedDataProvider) -> int:
    if fdp.ConsumeBool():
        return DIMS[fdp.ConsumeIntInRange(0, len(DIMS) - 1)]
    return fdp.ConsumeIntInRange(0, MAX_DIM)


def _renumber(key: str, fdp: atheris.FuzzedDataProvider) -> str:
    numbers = list(re.finditer(r"\d+", key))
    if not numbers:
        return key
    m = numbers[fdp.ConsumeIntInRange(0, len(numbers) - 1)]
    return f"{key[:m.start()]}{INDICES[fdp.ConsumeIntInRange(0, len(INDICES) - 1)]}{key[m.end():]}"


def _edited_layout(fdp: atheris.FuzzedDataProvider) -> dict[str, tuple[int, ...]]:
    _, layout = LAYOUTS[fdp.ConsumeIntInRange(0, len(LAYOUTS) - 1)]
    shapes = dict(layout)
    for _ in range(fdp.ConsumeIntInRange(0, 6)):
        keys = list(shapes)
        op = fdp.ConsumeIntInRange(0, 5)
        if op == 5 or not keys:
            shapes[VOCAB[fdp.ConsumeIntInRange(0, len(VOCAB) - 1)]] = _shape(fdp)
            continue
        key = keys[fdp.ConsumeIntInRange(0, len(keys) - 1)]
        shape = list(shapes[key])
        if op == 0:
            del shapes[key]
        elif op == 1 and shape:
            shape[fdp.ConsumeIntInRange(0, len(shape) - 1)] = _dim(fdp)
            shapes[key] = tuple(shape)
        elif op == 2:
            shapes[_renumber(key, fdp)] = shapes.pop(key)
        elif op == 3:
            shapes[key] = (*shape, _dim(fdp))
        elif op == 4 and shape:
            shapes[key] = tuple(shape[:-1])
    return shapes


def _free_layout(fdp: atheris.FuzzedDataProvider) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for _ in range(fdp.ConsumeIntInRange(0, 12)):
        if fdp.ConsumeBool():
            key = VOCAB[fdp.ConsumeIntInRange(0, len(VOCAB) - 1)]
        else:
            key = fdp.ConsumeUnicodeNoSurrogates(40)
        shapes[key] = _shape(fdp)
    return shapes


def state_dict_from(data: bytes) -> dict[str, torch.Tensor]:
    """The state dict the bytes describe (deterministic: the regression tests rebuild findings with it)."""
    fdp = atheris.FuzzedDataProvider(data)
    shapes = _edited_layout(fdp) if fdp.ConsumeIntInRange(0, 3) else _free_layout(fdp)
    state = {}
    for key, shape in shapes.items():
        dtype = DTYPES[fdp.ConsumeIntInRange(0, len(DTYPES) - 1)] if fdp.ConsumeIntInRange(0, 7) == 0 else None
        state[key] = torch.zeros((), dtype=dtype or torch.float32).expand(shape)
    return state


def seeds() -> dict[str, bytes]:
    """Pseudo-random byte strings (fixed): how the provider splits bytes into choices is its business, so the
    seeds only need to be varied enough that every mode and many layouts are picked from the start."""
    return {f"seed{i}": hashlib.sha256(f"layout {i}".encode()).digest() * 4 for i in range(96)}


def test_one_input(data: bytes) -> None:
    state = state_dict_from(data)
    claimants(state)
    _checkpoints.check_loaded(build_from_state_dict(state, source="fuzzed state dict"))


if __name__ == "__main__":
    _harness.main(test_one_input, seeds, MAX_LEN)
