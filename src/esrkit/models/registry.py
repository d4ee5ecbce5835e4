"""Model registry: one place that knows every architecture, its defaults and its provenance.

Families register a *builder* ``fn(scale: int, **hparams) -> nn.Module`` with :func:`register_model`.
:func:`create_model` merges the registered defaults with the caller's overrides and stamps the result with a
:class:`ModelConfig`, so a checkpoint writer can always record exactly what was built (name, scale, hyper-parameters,
train or deploy form) without the model classes having to know about serialization.

Value range convention: every esrkit model takes and returns RGB tensors in [0, 1]. Architectures whose official
weights were trained on [0, 255] pixels (RFDN, RLFN in the EDSR framework) take an ``img_range`` hyper-parameter
and scale internally, so users never see the difference.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ..errors import InputError, UnknownModelError

Builder = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelInfo:
    """Static metadata of a registered architecture."""

    name: str
    family: str
    paper: str
    builder: Builder
    defaults: dict[str, Any]
    scales: tuple[int, ...] = (2, 3, 4)
    input_range: float = 1.0
    deploy: str = "none"  # "none" (no branches), "reparameterize" (train form folds into a deploy form), "deploy"
    description: str = ""


@dataclass
class ModelConfig:
    """What :func:`create_model` built; attached to the model as ``model.esrkit_config``."""

    name: str
    scale: int
    hparams: dict[str, Any] = field(default_factory=dict)
    form: str = "train"  # "train" or "deploy"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "scale": self.scale, "hparams": dict(self.hparams), "form": self.form}


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(
    name: str,
    *,
    family: str,
    paper: str,
    defaults: dict[str, Any] | None = None,
    scales: tuple[int, ...] = (2, 3, 4),
    input_range: float = 1.0,
    deploy: str = "none",
    description: str = "",
) -> Callable[[Builder], Builder]:
    """Decorator registering ``builder(scale, **hparams)`` under ``name``."""

    def decorate(builder: Builder) -> Builder:
        if name in _REGISTRY:
            raise RuntimeError(f"model {name!r} registered twice")
        _REGISTRY[name] = ModelInfo(
            name=name,
            family=family,
            paper=paper,
            builder=builder,
            defaults=dict(defaults or {}),
            scales=tuple(scales),
            input_range=input_range,
            deploy=deploy,
            description=description or _first_line(builder.__doc__),
        )
        return builder

    return decorate


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0] if lines else ""


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    return sorted(_REGISTRY)


def model_info(name: str) -> ModelInfo:
    """Metadata of ``name``; raises :class:`UnknownModelError` naming close matches."""
    try:
        return _REGISTRY[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(list_models())}"
        raise UnknownModelError(f"unknown model {name!r}{hint}") from None


def create_model(name: str, scale: int = 4, **hparams: Any) -> nn.Module:
    """Build a registered model in its train-time form, with random weights.

    Unknown hyper-parameter names raise :class:`InputError` rather than a bare ``TypeError``.
    """
    info = model_info(name)
    if scale not in info.scales:
        raise InputError(f"model {name!r} supports scales {list(info.scales)}, not {scale}")
    merged = {**info.defaults, **hparams}
    try:
        model = info.builder(scale=scale, **merged)
    except TypeError as exc:
        raise InputError(f"bad hyper-parameters for model {name!r}: {exc}") from None
    model.esrkit_config = ModelConfig(name=name, scale=scale, hparams=merged, form="train")  # type: ignore[assignment]
    return model


def get_config(model: nn.Module) -> ModelConfig | None:
    """The :class:`ModelConfig` stamped on ``model`` by :func:`create_model`, if any."""
    return getattr(model, "esrkit_config", None)


def reparameterize(model: nn.Module) -> nn.Module:
    """Return the deploy form of ``model`` (a new module; the input is untouched).

    Every submodule that defines ``fused() -> nn.Module`` (a multi-branch training block) is replaced by what it
    returns, innermost first, so a block may rely on its children being fused already. A model may also define
    ``to_deploy() -> nn.Module`` for whole-network rewrites (for example a re-parameterized upsampler). Models
    without branches come back as an equivalent copy. The result is in eval mode.
    """
    deployed = copy.deepcopy(model)
    deployed = _fuse_tree(deployed)
    to_deploy = getattr(deployed, "to_deploy", None)
    if callable(to_deploy):
        deployed = to_deploy()
    config = get_config(model)
    if config is not None:
        deployed.esrkit_config = ModelConfig(config.name, config.scale, dict(config.hparams), "deploy")  # type: ignore[assignment]
    return deployed.eval()


def _fuse_tree(module: nn.Module) -> nn.Module:
    for child_name, child in list(module.named_children()):
        setattr(module, child_name, _fuse_tree(child))
    fused = getattr(module, "fused", None)
    return fused() if callable(fused) else module
