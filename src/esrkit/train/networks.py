"""The networks a run trains with: the seeded student, the ``init`` checkpoint it may start from, the teacher of a
distillation recipe, a pruning round between stages, and the fake-quantized form a ``quantize: true`` stage trains.

Each is built before the run folder exists (the trainer's constructor), so that a missing or mismatched file is an
:class:`~esrkit.errors.InputError` that costs nothing; the teacher is built once per run and shared by the stages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import InputError
from .recipe import Recipe, Teacher

__all__ = ["build_teacher", "load_init", "prune_round", "quantization_aware", "seeded_student", "to_layout"]

CALIBRATION_SAMPLES = 64  # crops the activation ranges of a quantize stage are measured on (PTQ uses 60 patches)


def to_layout(model: nn.Module, recipe: Recipe) -> nn.Module:
    """``model`` in the memory format the recipe trains in (channels-last by default: faster convolutions)."""
    return model.to(memory_format=torch.channels_last) if recipe.channels_last else model


def seeded_student(recipe: Recipe, device: torch.device, config: dict[str, Any] | None = None) -> nn.Module:
    """The recipe's model with seeded initial weights (identical on every rank and every run), or, resuming, the
    configuration a checkpoint records (a pruned run's widths are no longer the recipe's)."""
    from ..models import create_model

    torch.manual_seed(recipe.seed)
    name, hparams = (config["name"], config["hparams"]) if config else (recipe.model, recipe.hparams)
    return to_layout(create_model(name, scale=recipe.scale, **hparams).to(device), recipe)


def load_init(path: str, recipe: Recipe, device: torch.device) -> nn.Module:
    """The student loaded from ``init``: it must be the recipe's architecture at the recipe's scale (its widths may
    differ from ``hparams``: the checkpoint's shapes decide, as when loading any checkpoint)."""
    from ..checkpoints import load_checkpoint
    from ..models import get_config, model_info

    if not Path(path).is_file():
        raise InputError(f"init: no such file: {path}", param="recipe")
    model = load_checkpoint(path)
    config = get_config(model)
    if config is None or model_info(config.name).family is not model_info(recipe.model).family:
        raise InputError(f"init: {path} holds {getattr(config, 'name', 'an unknown model')}, not the recipe's "
                         f"{recipe.model}", param="recipe")
    if config.scale != recipe.scale:
        raise InputError(f"init: {path} is ×{config.scale}, the recipe trains ×{recipe.scale}", param="recipe")
    return model.float().to(device).train()


def build_teacher(teacher: Teacher, scale: int, device: torch.device) -> nn.Module:
    """The teacher network, on ``device`` (frozen by :class:`~esrkit.train.losses.DistillationLoss`).

    ``teacher.model`` runs its released weights through the one resolver (:func:`esrkit.hub.create_model` with
    ``pretrained``: the train form, whose module names ``feature_pairs`` use; fetched into the cache on first use),
    random ones only with ``random_weights``. Built with the RNG streams left as they were: building draws initial
    weights, and the run's own draws (the student's seeded initialisation, the data order) must not depend on
    whether it has a teacher. A file that cannot be had (offline, nothing cached) is one line naming the teacher.
    """
    from ..checkpoints import load_checkpoint
    from ..errors import WeightsError
    from ..hub import create_model

    with torch.random.fork_rng(devices=[]):
        if teacher.weights:
            if not Path(teacher.weights).is_file():
                raise InputError(f"teacher: no such file: {teacher.weights}", param="recipe")
            model = load_checkpoint(teacher.weights)
        else:
            try:
                model = create_model(str(teacher.model), scale=scale, pretrained=not teacher.random_weights)
            except WeightsError as exc:
                raise WeightsError(f"teacher.model: {exc.message}; or give teacher.weights (a checkpoint)",
                                   param="recipe") from None
    return model.to(device)


def prune_round(model: nn.Module, ratio: float, recipe: Recipe, device: torch.device) -> tuple[nn.Module, int, int]:
    """One pruning round (the same on every rank: it depends on the weights alone); the pruned model and its
    parameter counts before and after."""
    from ..compress import prune_filters

    before = sum(p.numel() for p in model.parameters())
    model = prune_filters(model, ratio)
    after = sum(p.numel() for p in model.parameters())
    return to_layout(model.to(device), recipe), before, after


def quantization_aware(model: nn.Module, recipe: Recipe, device: torch.device, dataset: Any = None,
                       degrade: Any = None) -> nn.Module:
    """The deploy form of ``model`` with the convolutions the int8 model will run fake-quantized
    (:mod:`esrkit.quantize.fake_quant`): what a ``quantize: true`` stage trains.

    The activation ranges are measured on the first :data:`CALIBRATION_SAMPLES` crops of the stage's epoch 0
    (the same crops on every rank, so every rank simulates the same rounding), their LR made by the recipe's
    degradation. Without ``dataset`` (resuming) they are left for the checkpoint's state dict to fill.
    """
    from ..models import reparameterize
    from ..quantize.fake_quant import calibrate, prepare_qat
    from .datasets import to_float

    model = to_layout(prepare_qat(reparameterize(model)).to(device), recipe).train()
    if dataset is None:
        return model
    dataset.set_epoch(0)
    items = [dataset[i] for i in range(min(CALIBRATION_SAMPLES, dataset.samples_per_epoch))]
    batches = []
    for start in range(0, len(items), 8):
        group = items[start:start + 8]
        if isinstance(group[0], tuple):  # (lr, hr) pairs of a pre-made degradation
            batches.append(to_float(torch.stack([g[0] for g in group]), device, recipe.channels_last))
        else:
            with torch.no_grad():
                batches.append(degrade(to_float(torch.stack(group), device, recipe.channels_last)))
    calibrate(model, batches)
    return model
