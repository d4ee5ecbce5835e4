"""esrkit: efficient single-image super-resolution, reproduced exactly.

The public API is re-exported here lazily, so ``import esrkit`` stays cheap and the CLI starts fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "create_model": "esrkit.hub",  # the registry's builder plus pretrained=True (released weights)
    "list_models": "esrkit.models",
    "model_info": "esrkit.models",
    "reparameterize": "esrkit.models",
    "load_checkpoint": "esrkit.checkpoints",
    "save_checkpoint": "esrkit.checkpoints",
    "imresize": "esrkit.data.resize",
    "read_image": "esrkit.data.io",
    "write_image": "esrkit.data.io",
    "calculate_metrics": "esrkit.metrics",
    "Upscaler": "esrkit.infer",
    "EsrkitError": "esrkit.errors",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'esrkit' has no attribute {name!r}")
    return getattr(import_module(module), name)
