"""The model zoo. Importing this package registers every architecture family.

Each module of this package is one family (its class, variants, capabilities and checkpoint detector) and
registers itself at import; they are found by listing the package, so a new family is one new file. Families
from other distributions register through the ``esrkit.models`` entry-point group (the entry point names a
module to import).
"""

from __future__ import annotations

import importlib
import pkgutil
import warnings
from importlib.metadata import entry_points

from .registry import (
    Capabilities,
    Family,
    ModelConfig,
    ModelInfo,
    Variant,
    capabilities_of,
    create_model,
    families,
    get_config,
    has_deploy_form,
    list_models,
    model_info,
    register_family,
    reparameterize,
)

_NOT_FAMILIES = {"registry", "detection"}

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _NOT_FAMILIES and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

for _entry in entry_points(group="esrkit.models"):
    try:
        _entry.load()
    except Exception as exc:  # a broken plug-in must not take the built-in zoo down with it
        warnings.warn(f"esrkit: model plug-in {_entry.name!r} ({_entry.value}) failed to load: {exc}",
                      RuntimeWarning, stacklevel=1)

__all__ = [
    "Capabilities",
    "Family",
    "ModelConfig",
    "ModelInfo",
    "Variant",
    "capabilities_of",
    "create_model",
    "families",
    "get_config",
    "has_deploy_form",
    "list_models",
    "model_info",
    "register_family",
    "reparameterize",
]
