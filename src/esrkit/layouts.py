"""Recognise a checkpoint's architecture from its state dict alone: the driver over the families' detectors.

Each family module declares how to recognise its state dicts and infer its hyper-parameters (its ``detect``,
written with :mod:`esrkit.models.detection`); this module runs those detectors in the registry's explicit
``detect_order`` and, when none matches, describes the nearest known layout for the error message. Detection
returns a :class:`~esrkit.models.registry.ModelConfig`; the caller builds and strictly loads it, so a wrong guess
can never load silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

import torch

from .models import create_model, families, list_models, model_info, reparameterize
from .models.detection import state_shapes
from .models.registry import ModelConfig

# A detector indexing a key or dimension that a half-matching state dict lacks means "not this family".
_NOT_THIS_FAMILY = (KeyError, IndexError, ZeroDivisionError, ValueError, TypeError)


def detect_layout(state: Mapping[str, torch.Tensor]) -> ModelConfig | None:
    """The model configuration a state dict belongs to (first claimant in detection order), or None."""
    claims = claimants(state, first_only=True)
    return claims[0][1] if claims else None


def claimants(state: Mapping[str, torch.Tensor], first_only: bool = False) -> list[tuple[str, ModelConfig]]:
    """(family, config) of every family whose detector claims ``state``, in detection order."""
    shapes = state_shapes(state)
    found = []
    for family in families():
        if family.detect is None:
            continue
        try:
            config = family.detect(shapes)
        except _NOT_THIS_FAMILY:
            config = None
        if config is not None:
            found.append((family.name, config))
            if first_only:
                break
    return found


@lru_cache(maxsize=1)
def _known_layouts(names: tuple[str, ...]) -> tuple[tuple[str, dict[str, tuple[int, ...]]], ...]:
    layouts = []
    for name in names:
        info = model_info(name)
        for scale in info.scales:
            with torch.device("meta"):  # shapes only: nothing is allocated or initialized
                model = create_model(name, scale=scale)
                if not any(True for _ in model.parameters()):
                    break  # a weightless baseline has no layout to compare with
                layouts.append((f"{name} ×{scale}", state_shapes(model.state_dict())))
                if info.reparameterizable:
                    layouts.append((f"{name} ×{scale} (deploy)", state_shapes(reparameterize(model).state_dict())))
    return tuple(layouts)


def known_layouts() -> list[tuple[str, dict[str, tuple[int, ...]]]]:
    """(label, key → shape) of every registered model at its scales, in train and (if different) deploy form."""
    return list(_known_layouts(tuple(list_models())))


def nearest_layout_message(state: Mapping[str, torch.Tensor], limit: int = 5) -> str:
    """Describe the closest known layout and how ``state`` differs from it (for error messages)."""
    shapes = state_shapes(state)

    def score(layout: dict[str, tuple[int, ...]]) -> float:
        same = sum(1 for k, v in shapes.items() if layout.get(k) == v)
        return same / len(set(shapes) | set(layout))

    label, layout = max(known_layouts(), key=lambda item: score(item[1]))
    missing = [k for k in layout if k not in shapes]
    unexpected = [k for k in shapes if k not in layout]
    wrong = [k for k in shapes if k in layout and layout[k] != shapes[k]]
    parts = [f"nearest known layout is {label} ({score(layout):.0%} of keys match)"]
    for what, keys in (("missing", missing), ("unexpected", unexpected), ("different shape", wrong)):
        if keys:
            more = f" … +{len(keys) - limit}" if len(keys) > limit else ""
            parts.append(f"{what}: {', '.join(keys[:limit])}{more}")
    return "; ".join(parts)
