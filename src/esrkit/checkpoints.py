"""Checkpoints: official ``.pth`` files of every supported layout, and esrkit's own safetensors format.

Official checkpoints come in many shapes: bare state dicts, dicts wrapping them under ``params``/``params_ema``
(BasicSR), ``state_dict`` or ``model``; keys prefixed by ``module.`` (DataParallel); inputs in [0, 1] or
[0, 255]. :func:`load_checkpoint` reads the state dict alone and works out architecture, width, depth, scale and
train/deploy form from the key names and tensor shapes (:mod:`esrkit.layouts`), then builds the model with
:func:`esrkit.create_model` and loads it strictly. The ``img_range`` hyper-parameter of the [0, 255] families
absorbs the input range, so every loaded model takes and returns [0, 1] tensors.

Safety: ``.pth`` files are pickles. They are only ever read with ``torch.load(..., weights_only=True)``, which
refuses any pickle that would construct arbitrary objects (and so run code) before it runs. esrkit's own format
is safetensors with the model description in the header metadata under the key ``esrkit``. Before either loader
runs, :mod:`esrkit.checkpoint_inspect` compares every declared tensor size with the bytes the file holds, so a
truncated file or one declaring a 10¹²-element tensor is refused, naming the tensor, without allocating it; after
loading, NaN/Inf weights are refused unless ``allow_nonfinite``. The model a file describes (esrkit metadata, or
the layout detected from its keys) is built on the ``meta`` device and compared with the file's tensors before
the real one is built, so hyper-parameters cannot allocate more than the file holds.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoint_inspect import (
    check_buildable,
    check_finite,
    config_from_metadata,
    inspect_pth,
    inspect_safetensors,
    parse_json_text,
)
from .errors import CheckpointError, EsrkitError, InputError
from .fileio import atomic_path
from .layouts import detect_layout, nearest_layout_message
from .models.registry import ModelConfig, create_model, get_config, model_info, reparameterize

WRAPPER_KEYS = ("params_ema", "params", "state_dict", "model", "net", "generator")
METADATA_KEY = "esrkit"
FORMAT_VERSION = "1"

StateDict = dict[str, torch.Tensor]


def read_state_dict(path: str | os.PathLike[str]) -> tuple[StateDict, dict[str, Any] | None]:
    """Read a checkpoint file into a flat tensor state dict (unwrapped, ``module.`` stripped) and, for esrkit
    safetensors, the metadata describing the model."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such checkpoint file")
    if path.suffix == ".safetensors":
        return _read_safetensors(path)
    inspect_pth(path)  # declared storage sizes against the file, before torch allocates them
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError, RuntimeError for zip/format problems, EOFError for truncation
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "weights_only" in str(exc) or "Unsupported global" in str(exc) or "Unsupported operand" in str(exc):
            raise CheckpointError(f"{path}: refused to unpickle: it would construct objects outside the tensor "
                                  f"allow-list, i.e. run code ({text})") from None
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({text})") from None
    return unwrap_state_dict(obj, source=str(path)), None


def unwrap_state_dict(obj: Any, source: str = "checkpoint") -> StateDict:
    """Find the tensor state dict inside a loaded checkpoint object and strip ``module.`` prefixes."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{source}: expected a state dict, found {type(obj).__name__}")
    # A state dict names its tensors with strings; a pickle can key them by anything (a tensor, found by fuzz/).
    wrapped = {key: inner for key in WRAPPER_KEYS if isinstance(inner := obj.get(key), Mapping) and inner
               and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in inner.items())}
    if wrapped:
        obj = next(iter(wrapped.values()))
        if len(wrapped) > 1:  # BasicSR keeps params and params_ema: a family class may name the one its authors ran
            config = detect_layout({k.removeprefix("module."): v for k, v in obj.items()})
            preferred = getattr(model_info(config.name).family.cls, "checkpoint_key", None) if config else None
            obj = wrapped.get(preferred, obj)
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if any(not isinstance(k, str) for k in tensors):
        bad = next(type(k).__name__ for k in tensors if not isinstance(k, str))
        raise CheckpointError(f"{source}: a tensor is keyed by a {bad}, not a name: not a state dict")
    if not tensors:
        raise CheckpointError(f"{source}: no tensors found (top-level keys: {', '.join(map(str, list(obj)[:8]))})")
    return {k.removeprefix("module."): v for k, v in tensors.items()}


def _read_safetensors(path: Path) -> tuple[StateDict, dict[str, Any] | None]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    header = inspect_safetensors(path)  # header size and depth, declared shapes and offsets, before mapping it
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None
    meta = parse_json_text(header[METADATA_KEY], f"{path}: esrkit metadata") if METADATA_KEY in header else None
    return {k.removeprefix("module."): v for k, v in tensors.items()}, meta


def build_from_state_dict(state: StateDict, source: str = "checkpoint", scale: int | None = None) -> nn.Module:
    """Build the model that ``state`` belongs to and load it strictly.

    ``scale`` is a hint for layouts whose scale is not in the weights (PAN ×2 and ×3 differ only in an
    interpolation factor): when the detected family builds exactly these tensor shapes at ``scale`` too, the model
    is built at ``scale``. It never overrides a scale the weights do determine.
    """
    config = detect_layout(state)
    if config is None:
        raise CheckpointError(f"{source}: unknown checkpoint layout; {nearest_layout_message(state)}")
    if scale is not None and scale != config.scale and _same_layout_at(config, scale, state):
        config = ModelConfig(config.name, scale, dict(config.hparams), config.form)
    return _instantiate(config, state, source)


def _same_layout_at(config: ModelConfig, scale: int, state: StateDict) -> bool:
    if scale not in model_info(config.name).scales:
        return False
    try:
        check_buildable(ModelConfig(config.name, scale, dict(config.hparams), config.form), state, "")
    except CheckpointError:
        return False
    return True


def _instantiate(config: ModelConfig, state: StateDict, source: str) -> nn.Module:
    """Build ``config`` for real and load ``state`` strictly, once :func:`check_buildable` has built it on the
    meta device and found exactly ``state``'s keys and shapes (so what is allocated is what the file holds)."""
    check_buildable(config, state, source)
    try:
        model = create_model(config.name, scale=config.scale, **config.hparams)
    except EsrkitError as exc:
        raise CheckpointError(f"{source}: layout looks like {config.name!r} but cannot be built ({exc})") from None
    if config.form == "deploy":
        model = reparameterize(model)
    expected = model.state_dict()
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True)
    return model.eval()


def load_checkpoint(path: str | os.PathLike[str], device: str | torch.device = "cpu",
                    scale: int | None = None, *, allow_nonfinite: bool = False) -> nn.Module:
    """Load any supported checkpoint into a ready esrkit model (eval mode, [0, 1] in and out).

    ``scale`` only disambiguates layouts whose weights do not fix the scale (see :func:`build_from_state_dict`).
    ``allow_nonfinite`` loads weights holding NaN or Inf, which are refused by default (a diverged run's weights
    make black or NaN images, not an error).

    The result carries ``model.esrkit_config`` (name, scale, hyper-parameters, form).
    Raises :class:`CheckpointError` for unsafe, unreadable, truncated, impossibly large (declared tensors the file
    does not hold, :mod:`esrkit.checkpoint_inspect`), non-finite or unknown checkpoints.
    """
    state, meta = read_state_dict(path)
    if not allow_nonfinite:
        check_finite(state, str(path))
    if meta is not None:  # validated field by field, and built on the meta device first: see checkpoint_inspect
        model = _instantiate(config_from_metadata(meta, str(path)), state, str(path))
    else:
        model = build_from_state_dict(state, str(path), scale=scale)
    return model.to(device)


def save_checkpoint(model: nn.Module, path: str | os.PathLike[str], provenance: Mapping[str, Any] | None = None,
                    config: ModelConfig | None = None) -> Path:
    """Write ``model`` as esrkit safetensors (atomically), with its description in the header metadata.

    ``provenance`` (free-form: source file, training recipe, dataset, commit…) is stored beside the config.
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        raise InputError(f"{path}: esrkit writes .safetensors files only")
    config = config or get_config(model)
    if config is None:
        raise InputError("model has no esrkit config; build it with esrkit.create_model or load_checkpoint")
    from safetensors.torch import save_file

    meta = {**config.to_dict(), "format_version": FORMAT_VERSION, "provenance": dict(provenance or {})}
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={METADATA_KEY: json.dumps(meta, default=str)})
    return path
