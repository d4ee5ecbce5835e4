"""The model zoo. Importing this package registers every architecture family."""

from . import baselines, imdn, lkdn, msrresnet, rfdn, rlfn  # noqa: F401  (registration side effects)
from .registry import (
    ModelConfig,
    ModelInfo,
    create_model,
    get_config,
    list_models,
    model_info,
    register_model,
    reparameterize,
)

__all__ = [
    "ModelConfig",
    "ModelInfo",
    "create_model",
    "get_config",
    "list_models",
    "model_info",
    "register_model",
    "reparameterize",
]
