"""Iterative L2-norm filter pruning, the compression step of DIPNet (NTIRE 2023, team MegSR).

DIPNet prunes its re-parameterized student in rounds: each round removes the filters with the smallest L2 norm
(ratio 0.05 per round in the notes, ``seed-ntire2023.md`` §4.1) and fine-tunes before the next. What makes this
more than deleting rows of a weight is *coupling*: a residual add ties the output channels of every conv feeding
it together, ESA multiplies its mask into the features it attends to, a concatenation stacks channel ranges, and a
pixel-shuffle tail must keep ``3·s²`` outputs. Removing a channel means removing it from every tensor it is part
of, consistently.

That dependency analysis is what ``torch-pruning`` (DepGraph, Fang et al., CVPR 2023) is made for, so esrkit uses
it rather than writing its own graph walker: it traces one forward pass, groups coupled channels, ranks each group
by the L2 norm of its filters (summed over the coupled layers) and slices the weights. Every group loses the same
share (``local`` pruning), which keeps a family's widths uniform — all blocks of an RLFN stay alike — so the pruned
network is again a *configuration of its own family* (``rlfn`` with ``num_feat`` 46 → 43 …).

:func:`prune_filters` therefore finishes by handing the pruned state dict to the family's checkpoint detector and
rebuilding a fresh model from what it infers, loaded strictly. The result is an ordinary esrkit model: it saves to
safetensors with its new hyper-parameters, loads back, re-parameterizes, exports and profiles like any other. A
family whose graph cannot be pruned this way (channel splits of fixed sizes in IMDN, for instance) or whose pruned
widths are not one of its configurations is refused with a :class:`~esrkit.errors.PruningError`, never returned
half-pruned.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from ..errors import InputError, PruningError
from ..models.registry import ModelConfig, capabilities_of, create_model, get_config, model_info

__all__ = ["prune_filters", "pruned_widths"]


def pruned_widths(channels: int, ratio: float) -> int:
    """Channels a group of ``channels`` keeps after pruning ``ratio`` of them (at least one is pruned from any
    group that can lose one without vanishing; ``int`` rounds the kept share down, as torch-pruning does)."""
    return max(1, int(channels * (1.0 - ratio)))


def _example(model: nn.Module) -> torch.Tensor:
    caps = capabilities_of(model)
    side = max(caps.min_size, 24)
    side += -side % caps.size_multiple
    return torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(0))


def _task_fixed_convs(model: nn.Module, example: torch.Tensor) -> list[nn.Module]:
    """Convs whose output widths the task fixes: those writing RGB (3 channels) and those feeding a pixel
    shuffle (``3·s²``, or any multiple of ``s²`` the shuffle needs). Found by one traced forward, so a family
    needs to declare nothing."""
    produced: dict[int, nn.Module] = {}
    fixed: list[nn.Module] = []
    hooks = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            hooks.append(module.register_forward_hook(lambda m, i, o: produced.__setitem__(id(o), m)))
            if module.out_channels == 3:
                fixed.append(module)
        elif isinstance(module, nn.PixelShuffle):
            hooks.append(module.register_forward_pre_hook(
                lambda m, i: fixed.append(produced[id(i[0])]) if id(i[0]) in produced else None))
    try:
        with torch.no_grad():
            model(example)
    finally:
        for hook in hooks:
            hook.remove()
    return list({id(m): m for m in fixed}.values())


def _shapes(name: str, scale: int, hparams: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        model = create_model(name, scale=scale, **hparams)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _rebuild(config: ModelConfig, state: dict[str, torch.Tensor]) -> nn.Module:
    """A fresh model of ``config``'s family with the hyper-parameters that give ``state``'s shapes, loaded
    strictly with ``state``."""
    from ..layouts import detect_layout

    detected = detect_layout(state)
    if detected is None or model_info(detected.name).family is not model_info(config.name).family:
        raise PruningError(f"{config.name}: the pruned network is not a configuration of its family (its widths "
                           "are no longer uniform)", param="model")
    inferred = {**model_info(detected.name).defaults, **detected.hparams}
    hparams = dict(config.hparams)
    base = _shapes(config.name, config.scale, hparams)
    # Take only what the detector read from shapes: a key whose change alters some tensor shape. Non-shape
    # settings (img_range, activation slopes) keep the original model's values.
    for key, value in inferred.items():
        if key in hparams and hparams[key] != value and _shapes(config.name, config.scale,
                                                                {**hparams, key: value}) != base:
            hparams[key] = value
    model = create_model(config.name, scale=config.scale, **hparams)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise PruningError(f"{config.name}: the pruned widths are not a configuration of its family "
                           f"({str(exc).splitlines()[-1].strip()})", param="model") from None
    return model


def prune_filters(model: nn.Module, ratio: float = 0.05, *, norm: int = 2) -> nn.Module:
    """One pruning round: a new, genuinely smaller dense model without the ``ratio`` lowest-``norm`` filters of
    every coupled channel group. ``model`` is not modified; the result is in train mode on ``model``'s device.

    The network's input (RGB) and output (the ``3·s²`` channels of a pixel-shuffle tail, or the 3 output
    channels) are never pruned: they are fixed by the task, not learned widths.
    """
    if not 0.0 < float(ratio) < 1.0:
        raise InputError(f"{ratio}: the pruning ratio is a share of channels in (0, 1)", param="ratio")
    config = get_config(model)
    if config is None:
        raise PruningError("only esrkit models (built by create_model or loaded from a checkpoint) can be pruned: "
                           "the result must be rebuilt as a configuration of its family", param="model")
    import torch_pruning as tp

    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    work = copy.deepcopy(model).float().cpu().to(memory_format=torch.contiguous_format).eval()
    example = _example(work)
    try:
        pruner = tp.pruner.MagnitudePruner(work, example, importance=tp.importance.MagnitudeImportance(p=norm),
                                           pruning_ratio=float(ratio), global_pruning=False,
                                           ignored_layers=_task_fixed_convs(work, example))
        pruner.step()
        with torch.no_grad():
            out = work(example)
    except Exception as exc:  # torch-pruning raises whatever the traced op raises on an unsupported graph
        raise PruningError(f"{config.name}: its graph cannot be pruned structurally "
                           f"({type(exc).__name__}: {str(exc).splitlines()[0][:160]})", param="model") from None
    expected = (1, 3, example.shape[2] * config.scale, example.shape[3] * config.scale)
    if tuple(out.shape) != expected:
        raise PruningError(f"{config.name}: pruning changed the output shape to {tuple(out.shape)}", param="model")
    state = {k: v.detach().clone() for k, v in work.state_dict().items()}
    return _rebuild(config, state).to(device).train(model.training)
