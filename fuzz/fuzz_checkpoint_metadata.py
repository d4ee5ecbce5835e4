"""Fuzz target: esrkit metadata in a ``.safetensors`` checkpoint (``load_checkpoint``'s metadata path:
:func:`esrkit.checkpoint_inspect.config_from_metadata`, the meta-device build and the comparison with the file).

Byte mutation of real files (the ``checkpoint_safetensors`` target) rarely turns the metadata into another valid
JSON document, so here the bytes are read with :class:`atheris.FuzzedDataProvider` as a recipe for one:

* ``name``: a registered model (mostly), or a near miss, a non-string, or missing;
* ``scale``, ``form``: valid, out of range, of the wrong type, or missing;
* ``hparams``: keys from the family's ``__init__`` (mostly) or invented, values drawn from the sizes that break
  things: 0, 1, small, the range cap and one past it, 10⁷, negatives, NaN/±Inf, floats for ints, bools, strings,
  lists, objects, null; or ``hparams`` itself a list or a number;
* the tensors: the tiny model the recipe's name and scale describe at small sizes (so a correct description
  loads), that model's with a tensor dropped or reshaped, or one float.

Contract: a described model in eval mode, or an :class:`~esrkit.errors.EsrkitError`; libFuzzer's
``-rss_limit_mb`` and ``-timeout`` catch a description that allocates or builds for too long.
"""

from __future__ import annotations

import hashlib
import json
import math

import _checkpoints
import _harness
import atheris
import torch
from safetensors.torch import save_file

with atheris.instrument_imports(include=["esrkit"]):
    from esrkit.checkpoints import load_checkpoint
    from esrkit.layouts import known_layouts
    from esrkit.models import create_model, list_models, model_info
    from esrkit.models.hparams import MAX_HPARAM_INT
    from esrkit.models.registry import hparam_names

MAX_LEN = 512
_PATH = _harness.scratch_dir() / "metadata.safetensors"
known_layouts()  # warm the cache of every layout (and torch's meta-device imports) so it is not a slow input
NAMES = list_models()
INTS = (0, 1, 2, 3, 4, 8, 16, 48, 64, MAX_HPARAM_INT, MAX_HPARAM_INT + 1, 10_000_000, -1, -5, 2**63)
FLOATS = (0.0, 0.5, 1.0, 2.0, 255.0, -1.0, 1e-300, 1e300, math.inf, -math.inf, math.nan)
TEXTS = ("", "gelu", "relu", "prelu", "BSConvU", "pixelshuffledirect", "cubic", "x" * 100)
SMALL = {"num_feat": 4, "num_block": 1, "dim": 4, "n_blocks": 1, "channels": 4, "esa_channels": 4,
         "mid_channels": 4, "num_atten": 4, "num_up_feat": 4, "partial_channels": 2}


def _pick(fdp: atheris.FuzzedDataProvider, items: tuple | list) -> object:
    return items[fdp.ConsumeIntInRange(0, len(items) - 1)]


def _value(fdp: atheris.FuzzedDataProvider, depth: int = 0) -> object:
    kind = fdp.ConsumeIntInRange(0, 9)
    if kind <= 3:
        return _pick(fdp, INTS) if fdp.ConsumeBool() else fdp.ConsumeIntInRange(-10, 300)
    if kind == 4:
        return _pick(fdp, FLOATS)
    if kind == 5:
        return _pick(fdp, TEXTS)
    if kind == 6:
        return fdp.ConsumeBool()
    if kind == 7:
        return None
    if kind == 8 and depth < 3:
        return [_value(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 3))]
    if depth < 3:
        return {fdp.ConsumeUnicodeNoSurrogates(8): _value(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 3))}
    return 0


def _hparams(fdp: atheris.FuzzedDataProvider, name: str | None) -> object:
    if name is None or fdp.ConsumeIntInRange(0, 9) == 0:
        return _value(fdp)
    params = hparam_names(model_info(name).family.cls)
    out: dict[str, object] = {k: v for k, v in SMALL.items() if k in params}
    for _ in range(fdp.ConsumeIntInRange(0, 3)):
        key = _pick(fdp, params) if params and fdp.ConsumeIntInRange(0, 5) else fdp.ConsumeUnicodeNoSurrogates(10)
        out[str(key)] = _value(fdp)
    return out


def metadata_from(data: bytes) -> tuple[object, dict[str, torch.Tensor]]:
    """The metadata and tensors the bytes describe (deterministic: a regression test rebuilds a finding)."""
    fdp = atheris.FuzzedDataProvider(data)
    name = _pick(fdp, NAMES) if fdp.ConsumeIntInRange(0, 7) else None
    meta: dict[str, object] = {}
    if name is None:
        meta["name"] = _value(fdp)
    else:
        meta["name"] = name
    scales = model_info(name).scales if name else (4,)
    meta["scale"] = _pick(fdp, scales) if fdp.ConsumeIntInRange(0, 5) else _value(fdp)
    meta["form"] = _pick(fdp, ("train", "deploy")) if fdp.ConsumeIntInRange(0, 5) else _value(fdp)
    meta["hparams"] = _hparams(fdp, name if isinstance(name, str) else None)
    for key in ("name", "scale", "form", "hparams"):
        if fdp.ConsumeIntInRange(0, 15) == 0:
            meta.pop(key, None)
    tensors = {"w": torch.zeros(1)}
    mode = fdp.ConsumeIntInRange(0, 3)
    if mode and isinstance(name, str):
        small = {k: v for k, v in SMALL.items() if k in hparam_names(model_info(name).family.cls)}
        try:
            model = create_model(name, scale=scales[-1], **small)
        except Exception:  # a small size this family refuses: keep the one float
            model = None
        if model is not None:
            tensors = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
            if mode == 2 and tensors:
                tensors.pop(_pick(fdp, sorted(tensors)))
            elif mode == 3 and tensors:
                key = _pick(fdp, sorted(tensors))
                tensors[key] = torch.zeros(fdp.ConsumeIntInRange(0, 9))
    return meta, tensors or {"w": torch.zeros(1)}


def seeds() -> dict[str, bytes]:
    """Fixed pseudo-random byte strings: the provider's choices do the rest."""
    return {f"seed{i}": hashlib.sha256(f"metadata {i}".encode()).digest() * 3 for i in range(64)}


def test_one_input(data: bytes) -> None:
    meta, tensors = metadata_from(data)
    save_file(tensors, str(_PATH), metadata={"esrkit": json.dumps(meta)})
    _checkpoints.check_loaded(load_checkpoint(_PATH))


if __name__ == "__main__":
    _harness.main(test_one_input, seeds, MAX_LEN)

