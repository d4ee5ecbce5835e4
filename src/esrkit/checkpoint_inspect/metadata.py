"""A checkpoint's model description, checked before the model is built: esrkit's metadata validated into a
:class:`~esrkit.models.registry.ModelConfig`, and any config (from metadata or from layout detection) built first
on torch's ``meta`` device and compared with the tensors the file holds.

Why: a model is built from its description before its weights are loaded into it, so the description decides
what is allocated. A 356-byte ``.safetensors`` whose metadata said ``num_feat: 10000000`` built a 22.8 GB
MSRResNet (the kernel killed the process) before any tensor shape was compared; ``num_feat: -5``, ``hparams:
[1, 2]`` or a ``name`` that is a list were tracebacks. Now:

1. :func:`config_from_metadata` holds every field to its type: ``name`` a registered model, ``scale`` one of its
   scales, ``form`` train or deploy, ``hparams`` an object whose keys are the family's ``__init__`` keywords and
   whose values have the annotated types and sizes (:func:`esrkit.models.hparams.check_hparams`);
2. :func:`check_buildable` builds that config on the ``meta`` device, where tensors have shapes but no storage,
   and refuses it unless its state dict has exactly the file's keys and shapes. The meta build itself is bounded:
   module, parameter and buffer registrations are counted by torch's global registration hooks (this thread's
   only) and stopped past :data:`MAX_BUILD_REGISTRATIONS`, or past 24 per tensor in the file plus 512 (the
   zoo's worst train form, ANUNet's, registers 16.4 per deploy tensor; a registration costs about a millisecond
   on a busy 2-core machine), and the train form's elements are held to 32 times the file's plus 4 M (a train
   form is at most ~15 times its deploy form: CASR and ANUNet), so a deploy-form file cannot make its train
   form large either.

Only then is the real module built, at the size of what the file holds.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from typing import Any

import torch
from torch.nn.modules import module as torch_module

from ..errors import CheckpointError, EsrkitError, InputError
from ..models.hparams import check_hparams
from ..models.registry import ModelConfig, create_model, model_info, reparameterize
from .common import MAX_CHECKPOINT_ELEMENTS

__all__ = ["MAX_BUILD_REGISTRATIONS", "check_buildable", "config_from_metadata", "state_diff"]

MAX_BUILD_REGISTRATIONS = 1 << 12  # the zoo's largest train form (ECBSR-M16C64) registers 522
_REGISTRATIONS_PER_TENSOR, _REGISTRATIONS_SLACK = 24, 512
_TRAIN_RATIO, _TRAIN_SLACK = 32, 1 << 22
_FORMS = ("train", "deploy")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def config_from_metadata(meta: Any, source: str) -> ModelConfig:
    """The :class:`ModelConfig` that esrkit metadata (``{"name", "scale", "hparams", "form"}``, parsed JSON)
    describes, every field checked; a :class:`CheckpointError` naming ``source`` and the field otherwise."""
    if not isinstance(meta, dict):
        raise CheckpointError(f"{source}: esrkit metadata is a {type(meta).__name__}, not an object")
    missing = [key for key in ("name", "scale") if key not in meta]
    if missing:
        raise CheckpointError(f"{source}: incomplete esrkit metadata (no {' or '.join(missing)})")
    name, scale = meta["name"], meta["scale"]
    hparams, form = meta.get("hparams", {}), meta.get("form", "train")
    if not isinstance(name, str):
        raise CheckpointError(f"{source}: esrkit metadata: name {_short(name)} is not a string")
    try:
        info = model_info(name)
    except EsrkitError as exc:
        raise CheckpointError(f"{source}: esrkit metadata: {exc.message}") from None
    if type(scale) is not int or scale not in info.scales:
        raise CheckpointError(f"{source}: esrkit metadata: scale {_short(scale)} is not one of the scales of "
                              f"model {name!r}, {list(info.scales)}")
    if not isinstance(form, str) or form not in _FORMS:
        raise CheckpointError(f"{source}: esrkit metadata: form {_short(form)} is not 'train' or 'deploy'")
    if not isinstance(hparams, dict):
        raise CheckpointError(f"{source}: esrkit metadata: hparams {_short(hparams)} is not an object")
    try:
        check_hparams(name, info.family.cls, hparams)
    except InputError as exc:
        raise CheckpointError(f"{source}: esrkit metadata: {exc.message}") from None
    return ModelConfig(name, scale, dict(hparams), form)


class _OverBudget(Exception):
    """Raised from a registration hook to stop a meta build (not a TypeError/ValueError/RuntimeError, so that
    :func:`create_model` does not reword it)."""


def _meta_build(config: ModelConfig, budget: int) -> tuple[dict[str, tuple[int, ...]], int]:
    """Build ``config`` on the meta device under a registration budget: the key → shape of its state dict (deploy
    form when ``config.form`` says so) and the train form's element count."""
    count = 0
    owner = threading.get_ident()

    def counted(*_: Any) -> None:
        nonlocal count
        if threading.get_ident() == owner:
            count += 1
            if count > budget:
                raise _OverBudget

    handles = [torch_module.register_module_module_registration_hook(counted),
               torch_module.register_module_parameter_registration_hook(counted),
               torch_module.register_module_buffer_registration_hook(counted)]
    try:
        with torch.device("meta"):
            model = create_model(config.name, scale=config.scale, **config.hparams)
            train_elements = sum(t.numel() for t in model.state_dict().values())
            if config.form == "deploy":
                model = reparameterize(model)
            return {k: tuple(v.shape) for k, v in model.state_dict().items()}, train_elements
    finally:
        for handle in handles:
            handle.remove()


def state_diff(expected: Mapping[str, tuple[int, ...]], found: Mapping[str, tuple[int, ...]], limit: int = 6) -> str:
    """How the shapes ``found`` in a file differ from the ``expected`` state dict's, for a one-line message ("" when
    they are the same)."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    wrong = [f"{k} {found[k]}≠{expected[k]}" for k in expected if k in found and found[k] != expected[k]]
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("shape", wrong)):
        if items:
            more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
            parts.append(f"{label}: {', '.join(items[:limit])}{more}")
    return "; ".join(parts)


def check_buildable(config: ModelConfig, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Refuse ``config`` unless, built on the meta device within the budgets (module docstring), its state dict
    has exactly the keys and shapes of ``state``, the tensors the file holds."""
    found = {k: tuple(v.shape) for k, v in state.items()}
    held = sum(v.numel() for v in state.values())
    budget = min(MAX_BUILD_REGISTRATIONS, _REGISTRATIONS_PER_TENSOR * len(state) + _REGISTRATIONS_SLACK)
    what = f"{config.name!r} ×{config.scale} ({config.form})"
    try:
        expected, train_elements = _meta_build(config, budget)
    except _OverBudget:
        raise CheckpointError(f"{source}: {what} with {_short(config.hparams)} would build over {budget:,} modules "
                              f"and tensors for the {len(state):,} tensors the file holds; refused before "
                              "building") from None
    except EsrkitError as exc:  # create_model's InputError: a value the family's class refused
        raise CheckpointError(f"{source}: {what} cannot be built ({exc.message})") from None
    except (TypeError, ValueError, RuntimeError, ArithmeticError, IndexError, KeyError, AttributeError,
            RecursionError) as exc:  # a family's own code meeting a value it never expected
        text = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{source}: {what} cannot be built with {_short(config.hparams)} ({text})") from None
    described = sum(math.prod(shape) for shape in expected.values())
    if train_elements > min(_TRAIN_RATIO * held + _TRAIN_SLACK, MAX_CHECKPOINT_ELEMENTS):
        raise CheckpointError(f"{source}: {what} would build {train_elements:,} elements in its train form for the "
                              f"{held:,} the file holds; refused before building")
    problems = state_diff(expected, found)
    if problems:
        raise CheckpointError(f"{source}: looks like {what} but does not fit ({described:,} parameters described, "
                              f"{held:,} in the file): {problems}")
