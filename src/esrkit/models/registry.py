"""Model registry: one place that knows every architecture, its variants, what it can do and how to recognise it.

A family module (one file under :mod:`esrkit.models`, or a plug-in module named by an ``esrkit.models`` entry
point) defines its network class and registers a :class:`Family` at import:

* the **class** holds every hyper-parameter default, once, in its ``__init__`` signature (``scale`` first);
* each **variant** is only its difference from those defaults (``"rlfn_s": {"num_feat": 48}``), optionally with
  its own scales or paper note; overrides are checked against the signature when the family registers;
* **capabilities** (minimum input size, size multiple, exact tiling, safe half precisions) are data that the
  inference path reads instead of failing inside a forward;
* the family's **detector** recognises its state dicts and infers hyper-parameters from tensor shapes (see
  :mod:`esrkit.models.detection`); :mod:`esrkit.layouts` only runs the detectors in ``detect_order``.

:func:`create_model` builds a variant and stamps it with a :class:`ModelConfig` (name, scale, the complete
hyper-parameters, train or deploy form), so a checkpoint writer records exactly what was built.

Value range convention: every esrkit model takes and returns RGB tensors in [0, 1]. Families whose official weights
were trained on [0, 255] (RFDN, RLFN in the EDSR framework) take an ``img_range`` hyper-parameter
(:class:`esrkit.layers.RangeScaledNet`); its class default is the one statement of a family's input range.
"""

from __future__ import annotations

import copy
import difflib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import torch
from torch import nn

from ..errors import InputError, UnknownModelError
from .hparams import check_hparams

Shapes = Mapping[str, tuple[int, ...]]
# esrkit's bundled model (:data:`esrkit.bundled.BUNDLED_MODEL`, a test checks they agree): a name every --model takes
# and unknown-model errors list. Not imported from there: esrkit.bundled loads checkpoints, which import this module.
BUNDLED_MODEL = "esrkit_x4"


@dataclass(frozen=True)
class Capabilities:
    """What a model can do, as data: :class:`esrkit.infer.Upscaler` pads, tiles and casts by it.

    * ``min_size``: the smallest LR height/width its forward accepts (ESA's strided conv and 7×7 pool need 15);
      smaller inputs are reflect-padded and the output cropped back;
    * ``size_multiple``: LR sides must be multiples of this (pixel-unshuffle models need 2); padded likewise;
    * ``tile_exact``: no global context (no global pooling or image-size-dependent resampling), so overlapping
      tiles reproduce the whole-image output when the overlap covers the receptive field. ESA pools and resamples
      over the whole map, and CCA averages over it, so their families are not;
    * ``fp16`` / ``bf16``: running the converted model in that precision keeps fidelity: the official weights
      score Set5 ×4 Y-PSNR within 0.05 dB of fp32 (measured on CPU: RFDN, RLFN-NTIRE and IMDN lose at most
      0.01 dB in either; LKDN-S loses 0.06 dB in bf16 and 9 dB in fp16). Families without a released checkpoint
      keep the default True, an assumption until weights exist to check it.
    """

    min_size: int = 1
    size_multiple: int = 1
    tile_exact: bool = True
    fp16: bool = True
    bf16: bool = True

    def safe_precision(self, precision: str) -> bool:
        """Whether ``precision`` ("fp32", "fp16", "bf16") is known to keep this model's fidelity."""
        return precision == "fp32" or bool(getattr(self, precision, False))


@dataclass(frozen=True)
class Variant:
    """One registered name of a family: its hyper-parameter overrides and what differs from the family."""

    hparams: Mapping[str, Any] = field(default_factory=dict)
    scales: tuple[int, ...] | None = None  # None: the family's scales
    note: str = ""  # appended to the family's paper (e.g. "NTIRE 2022 runtime-track winner")
    capabilities: Capabilities | None = None  # None: the family's
    degradation: str | None = None  # None: the family's


@dataclass
class ModelConfig:
    """What :func:`create_model` built, or what a detector recognised; attached as ``model.esrkit_config``."""

    name: str
    scale: int
    hparams: dict[str, Any] = field(default_factory=dict)
    form: str = "train"  # "train" or "deploy"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "scale": self.scale, "hparams": dict(self.hparams), "form": self.form}


Detector = Callable[[Shapes], "ModelConfig | None"]


@dataclass(frozen=True)
class Family:
    """An architecture family: its class, variants, capabilities and checkpoint detector.

    ``detect_order`` makes the order between detectors explicit: lower runs first. A family whose checkpoints
    carry another family's keys plus more (say an RLFN-style net with extra re-parameterization branches) must
    run before that family.
    """

    name: str
    cls: type[nn.Module]
    paper: str
    variants: Mapping[str, Variant | Mapping[str, Any]]
    scales: tuple[int, ...] = (2, 3, 4)
    capabilities: Capabilities = Capabilities()
    detect: Detector | None = None
    detect_order: int = 100
    # The LR degradation the official weights were trained for: "bicubic" (the ESR challenges) or, for the AIS 2024
    # real-time entries, "lanczos+avif"; evaluate warns when such a model is scored on bicubic LR.
    degradation: str = "bicubic"

    def __post_init__(self) -> None:
        params = hparam_names(self.cls)
        for variant_name, variant in self.variants.items():
            unknown = set(_as_variant(variant).hparams) - set(params)
            if unknown:
                raise TypeError(f"variant {variant_name!r} of {self.cls.__name__} overrides unknown "
                                f"hyper-parameters {sorted(unknown)}; valid: {', '.join(params)}")

    def match(self, scale: int | None, hparams: Mapping[str, Any], form: str = "train") -> ModelConfig | None:
        """The variant whose complete hyper-parameters equal ``hparams`` (keys not given keep the class
        defaults) and that supports ``scale``; else the first variant with the differences spelled out; None
        when the detector found no valid scale.

        Detectors call this so that a checkpoint of a registered configuration loads under its own name.
        """
        if scale is None:
            return None
        for variant_name in self.variants:
            info = model_info(variant_name)
            if scale in info.scales and all(info.defaults.get(k) == v for k, v in hparams.items()):
                return ModelConfig(variant_name, scale, {}, form)
        base = model_info(next(iter(self.variants)))
        diff = {k: v for k, v in hparams.items() if base.defaults.get(k) != v}
        return ModelConfig(base.name, scale, diff, form)


def _as_variant(variant: Variant | Mapping[str, Any]) -> Variant:
    return variant if isinstance(variant, Variant) else Variant(hparams=dict(variant))


def hparam_names(cls: type[nn.Module]) -> list[str]:
    """Keyword hyper-parameters of a family class (its ``__init__`` parameters except ``self`` and ``scale``)."""
    return [p.name for p in inspect.signature(cls.__init__).parameters.values()
            if p.name not in ("self", "scale") and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


@dataclass(frozen=True)
class ModelInfo:
    """A registered name: its family, its overrides and everything derived from them."""

    name: str
    family: Family
    overrides: Mapping[str, Any]
    scales: tuple[int, ...]
    paper: str
    capabilities: Capabilities
    degradation: str = "bicubic"

    @cached_property
    def defaults(self) -> dict[str, Any]:
        """The complete hyper-parameters of this variant: class defaults updated by the overrides."""
        signature = inspect.signature(self.family.cls.__init__).parameters
        base = {k: signature[k].default for k in hparam_names(self.family.cls)
                if signature[k].default is not inspect.Parameter.empty}
        return {**base, **self.overrides}

    @property
    def input_range(self) -> float:
        """Pixel range the official weights were trained on (the class's ``img_range``; 1 when it has none)."""
        return float(self.defaults.get("img_range", 1.0))

    @cached_property
    def reparameterizable(self) -> bool:
        """Whether the train form folds into a different deploy form (derived from the built module, so it
        cannot disagree with the code)."""
        with torch.device("meta"):
            model = self.family.cls(scale=self.scales[-1], **self.overrides)
        return has_deploy_form(model)

    def capabilities_for(self, hparams: Mapping[str, Any]) -> Capabilities:
        """Capabilities of this variant built with ``hparams`` (a family may make them depend on them)."""
        adjust = getattr(self.family.cls, "adjust_capabilities", None)
        return adjust(self.capabilities, {**self.defaults, **hparams}) if callable(adjust) else self.capabilities


_FAMILIES: dict[str, Family] = {}
_REGISTRY: dict[str, ModelInfo] = {}


def register_family(family: Family) -> Family:
    """Register every variant of ``family`` (called once at import of the family's module)."""
    if family.name in _FAMILIES:
        raise RuntimeError(f"family {family.name!r} registered twice")
    clashes = [n for n in family.variants if n in _REGISTRY]
    if clashes:
        raise RuntimeError(f"model names {clashes} of family {family.name!r} are registered already")
    _FAMILIES[family.name] = family
    for name, raw in family.variants.items():
        variant = _as_variant(raw)
        _REGISTRY[name] = ModelInfo(
            name=name,
            family=family,
            overrides=dict(variant.hparams),
            scales=tuple(variant.scales or family.scales),
            paper=f"{family.paper}; {variant.note}" if variant.note else family.paper,
            capabilities=variant.capabilities or family.capabilities,
            degradation=variant.degradation or family.degradation,
        )
    return family


def families() -> list[Family]:
    """Registered families in detection order (``detect_order``, then name)."""
    return sorted(_FAMILIES.values(), key=lambda f: (f.detect_order, f.name))


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    return sorted(_REGISTRY)


def model_info(name: str) -> ModelInfo:
    """Metadata of ``name``; raises :class:`UnknownModelError` naming close matches."""
    try:
        return _REGISTRY[name]
    except KeyError:
        pass
    # Names a command's --model takes: the zoo and esrkit's bundled model (a weights file, not an architecture).
    known = sorted([*_REGISTRY, BUNDLED_MODEL])
    if name == BUNDLED_MODEL:
        raise UnknownModelError(f"{name} is esrkit's bundled model, a weights file rather than a zoo architecture; "
                                "load it with Upscaler.from_name or esrkit.bundled", param="model")
    close = difflib.get_close_matches(name, known, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(known)}"
    raise UnknownModelError(f"unknown model {name!r}{hint}", param="model") from None


def create_model(name: str, scale: int = 4, **hparams: Any) -> nn.Module:
    """Build a registered model in its train-time form, with random weights.

    Hyper-parameter names and value types are checked against the family class's signature, and sizes against
    generic bounds (:mod:`esrkit.models.hparams`): a typo is an :class:`InputError` listing the valid names, a
    list or a negative width an :class:`InputError` naming it; values the class rejects are one too.
    """
    info = model_info(name)
    if scale not in info.scales:
        raise InputError(f"model {name!r} supports scales {list(info.scales)}, not {scale}", param="scale")
    check_hparams(name, info.family.cls, hparams)
    merged = {**info.overrides, **hparams}
    try:
        model = info.family.cls(scale=scale, **merged)
    except (TypeError, ValueError, RuntimeError) as exc:  # RuntimeError: torch's layers on an impossible size
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"bad hyper-parameters for model {name!r}: {text}") from None
    model.esrkit_config = ModelConfig(name, scale, {**info.defaults, **hparams}, "train")  # type: ignore[assignment]
    return model


def get_config(model: nn.Module) -> ModelConfig | None:
    """The :class:`ModelConfig` stamped on ``model`` by :func:`create_model`, if any."""
    return getattr(model, "esrkit_config", None)


def info_of(model: nn.Module) -> ModelInfo | None:
    """The registry entry of a model built by esrkit (None for a foreign module)."""
    config = get_config(model)
    return None if config is None else _REGISTRY.get(config.name)


def capabilities_of(model: nn.Module) -> Capabilities:
    """The registry's capabilities of a model built by esrkit; defaults (no constraints) for a foreign module."""
    info = info_of(model)
    return Capabilities() if info is None else info.capabilities_for(get_config(model).hparams)  # type: ignore[union-attr]


def has_deploy_form(model: nn.Module) -> bool:
    """Whether :func:`reparameterize` would change ``model`` (some submodule folds, or it rewrites itself)."""
    return any(callable(getattr(m, "fused", None)) or callable(getattr(m, "to_deploy", None))
               for m in model.modules())


def reparameterize(model: nn.Module) -> nn.Module:
    """Return the deploy form of ``model`` (a new module; the input is untouched).

    Every submodule that defines ``fused() -> nn.Module`` (a multi-branch training block) is replaced by what it
    returns, innermost first, so a block may rely on its children being fused already. A model may also define
    ``to_deploy() -> nn.Module`` for whole-network rewrites. Models without branches come back as an equivalent
    copy. The result is in eval mode.
    """
    deployed = _fuse_tree(copy.deepcopy(model))
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


def zoo_summary(scale: int = 4, on_model: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """One record per registered model (what ``esrkit models`` prints): parameters at ``scale`` in train and
    deploy form (None where the scale is not supported), input range, scales, capabilities and paper.

    Building every model to count its deploy form takes seconds (12–16 s for the zoo on a busy 2-core machine),
    so ``on_model(name)`` is called after each one, for progress."""
    rows = []
    for name in list_models():
        info = model_info(name)
        row: dict[str, Any] = {"name": name, "family": info.family.name, "scales": list(info.scales),
                               "input_range": info.input_range, "reparameterizable": info.reparameterizable,
                               "capabilities": info.capabilities, "paper": info.paper,
                               "params": None, "deploy_params": None}
        if scale in info.scales:
            model = create_model(name, scale=scale)
            row["params"] = sum(p.numel() for p in model.parameters())
            deployed = reparameterize(model) if info.reparameterizable else model
            row["deploy_params"] = sum(p.numel() for p in deployed.parameters())
        rows.append(row)
        if on_model is not None:
            on_model(name)
    return rows
