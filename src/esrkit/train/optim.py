"""Optimizers, per-iteration learning-rate schedules and an exponential moving average of the weights.

Specs are the plain mappings a recipe holds, for example LKDN's ``{"name": "adan", "lr": 5e-3,
"betas": [0.98, 0.92, 0.99]}`` and ``{"name": "multistep", "milestones": [200000], "gamma": 0.5}``. Unknown names,
unknown keys and out-of-range values raise :class:`~esrkit.errors.InputError` with ``param="spec"``, so a recipe
typo fails before training starts instead of being ignored.

Gradient clipping is ``torch.nn.utils.clip_grad_norm_(params, max_norm)``; no wrapper is added for it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from ..errors import InputError, key_list

__all__ = ["EMA", "OPTIMIZERS", "SCHEDULERS", "IterationScheduler", "build_optimizer", "build_scheduler"]

#: Optimizer names and the keys each accepts besides ``name`` (``lr`` is required).
OPTIMIZERS: dict[str, tuple[str, ...]] = {
    "adam": ("lr", "betas", "eps", "weight_decay"),
    "adamw": ("lr", "betas", "eps", "weight_decay"),
    "adan": ("lr", "betas", "eps", "weight_decay"),
}
#: Scheduler names and the keys each accepts besides ``name``.
SCHEDULERS: dict[str, tuple[str, ...]] = {
    "constant": ("warmup_iters",),
    "step": ("step_size", "gamma", "warmup_iters"),
    "multistep": ("milestones", "gamma", "warmup_iters"),
    "cosine": ("eta_min", "warmup_iters"),
}


def _spec_name(spec: Mapping[str, Any], table: Mapping[str, tuple[str, ...]], what: str) -> str:
    if not isinstance(spec, Mapping):
        raise InputError(f"must be a mapping with a 'name', got {type(spec).__name__}", param="spec")
    name = spec.get("name")
    if not isinstance(name, str) or name not in table:  # a YAML list or mapping here is unhashable
        raise InputError(f"unknown {what} {name!r}; choose one of {', '.join(table)}", param="spec")
    unknown = set(spec) - {"name", *table[name]}
    if unknown:
        raise InputError(f"{what} {name!r} takes no {key_list(unknown)} (it takes {', '.join(table[name])})",
                         param="spec")
    return str(name)


def _number(spec: Mapping[str, Any], key: str, default: float | None, lo: float, hi: float = math.inf,
            lo_open: bool = False) -> float:
    value = spec.get(key, default)
    if value is None:
        raise InputError(f"{key!r} is required", param="spec")
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) \
        and (value > lo if lo_open else value >= lo) and value <= hi
    if not ok:
        bound = f"> {lo}" if lo_open else f">= {lo}"
        raise InputError(f"{key!r} must be a finite number {bound}" + (f" and <= {hi}" if hi < math.inf else "")
                         + f", got {value!r}", param="spec")
    return float(value)


def _integer(spec: Mapping[str, Any], key: str, default: int | None, lo: int) -> int:
    value = spec.get(key, default)
    if value is None:
        raise InputError(f"{key!r} is required", param="spec")
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise InputError(f"{key!r} must be an integer >= {lo}, got {value!r}", param="spec")
    return value


def build_optimizer(params: Iterable[Any], spec: Mapping[str, Any]) -> torch.optim.Optimizer:
    """An optimizer from a recipe mapping: ``name`` (``adam``, ``adamw``, ``adan``) and its hyper-parameters.

    Keys: ``lr`` (required), ``betas`` (2 numbers; 3 for Adan), ``eps`` (default 1e-8), ``weight_decay``
    (default 0). Betas default to (0.9, 0.999) for Adam/AdamW and (0.98, 0.92, 0.99) for Adan, the values of the
    Adan paper and of LKDN, whose recipe is Adan with lr 5e-3 and no weight decay. Adan comes from the
    ``pytorch-optimizer`` package (``pytorch_optimizer.Adan``), with its defaults for everything not listed here
    (no gradient clipping inside the optimizer, weight decay added to the gradient).

    Raises:
        InputError: unknown name or key, missing ``lr``, or a value out of range.
    """
    name = _spec_name(spec, OPTIMIZERS, "optimizer")
    lr = _number(spec, "lr", None, 0.0, lo_open=True)
    eps = _number(spec, "eps", 1e-8, 0.0, lo_open=True)
    weight_decay = _number(spec, "weight_decay", 0.0, 0.0)
    n_betas = 3 if name == "adan" else 2
    default_betas = (0.98, 0.92, 0.99) if name == "adan" else (0.9, 0.999)
    betas = spec.get("betas", default_betas)
    if (not isinstance(betas, list | tuple) or len(betas) != n_betas
            or not all(isinstance(b, int | float) and not isinstance(b, bool) and 0 <= b < 1 for b in betas)):
        raise InputError(f"'betas' of {name} must be {n_betas} numbers in [0, 1), got {betas!r}", param="spec")
    betas = tuple(float(b) for b in betas)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    from pytorch_optimizer import Adan  # imported here: only Adan runs pay its import time

    return Adan(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


class IterationScheduler(LambdaLR):
    """A ``LambdaLR`` stepped once per iteration, whose ``load_state_dict`` also restores the optimizer's lr.

    Plain ``LambdaLR.load_state_dict`` restores only the iteration count, leaving the optimizer at the lr it
    was built with until the next ``step()``; here the lr of the restored iteration is written back too, so a
    resume is exact even when the optimizer's state was not restored (e.g. a warm start with a new optimizer
    but the old schedule position).
    """

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        for group, lr in zip(self.optimizer.param_groups, self.get_last_lr(), strict=True):
            group["lr"] = lr


def build_scheduler(optimizer: torch.optim.Optimizer, spec: Mapping[str, Any], total_iters: int
                    ) -> IterationScheduler:
    """A per-iteration learning-rate schedule: call ``scheduler.step()`` after every ``optimizer.step()``.

    Iteration ``i`` (0-based; the ``i``-th optimizer step) uses ``lr(i) = ramp(i) · base · f(i)`` where ``base`` is
    the optimizer's lr and

    * ``ramp(i) = min(1, (i + 1) / warmup_iters)`` (1 without ``warmup_iters``): a linear warm-up whose first step
      already moves (no step at lr 0) and which reaches ``base`` at iteration ``warmup_iters - 1``;
    * ``constant``: ``f = 1`` (LKDN: constant 5e-3 for 10⁶ iterations);
    * ``step``: ``f = gamma^(i // step_size)`` (RLFN: halve every 2×10⁵; ``gamma`` defaults to 0.5);
    * ``multistep``: ``f = gamma^(number of milestones <= i)``, milestones counted from iteration 0, warm-up
      included (``gamma`` defaults to 0.5);
    * ``cosine``: after the warm-up, from ``base`` down to ``eta_min`` (an lr, default 0) over the remaining
      iterations, ``lr = eta_min + (base - eta_min)(1 + cos(π t / (total_iters - warmup_iters))) / 2`` with
      ``t = i - warmup_iters``; it reaches ``eta_min`` at ``i = total_iters`` and stays there. During the warm-up
      ``f`` = 1, so the ramp rises to ``base``.

    Implemented as one :class:`IterationScheduler` (a ``LambdaLR``) with a closed-form factor rather than
    ``SequentialLR`` chains: the lr is then a pure function of the iteration, so ``state_dict()`` is just the
    iteration count and a resumed run reproduces the schedule exactly.

    Raises:
        InputError: unknown name or key, ``warmup_iters`` >= ``total_iters``, or a bad value.
    """
    name = _spec_name(spec, SCHEDULERS, "scheduler")
    if isinstance(total_iters, bool) or not isinstance(total_iters, int) or total_iters < 1:
        raise InputError(f"must be a positive integer, got {total_iters!r}", param="total_iters")
    warmup = _integer(spec, "warmup_iters", 0, 0)
    if warmup >= total_iters:
        raise InputError(f"'warmup_iters' ({warmup}) must be below total_iters ({total_iters})", param="spec")

    def ramp(i: int) -> float:
        return min(1.0, (i + 1) / warmup) if warmup else 1.0

    if name == "step":
        step_size = _integer(spec, "step_size", None, 1)
        gamma = _number(spec, "gamma", 0.5, 0.0, lo_open=True)

        def decay(i: int) -> float:
            return gamma ** (i // step_size)
    elif name == "multistep":
        milestones = spec.get("milestones")
        if (not isinstance(milestones, list | tuple) or not milestones
                or not all(isinstance(m, int) and not isinstance(m, bool) and m > 0 for m in milestones)
                or list(milestones) != sorted(set(milestones))):
            raise InputError(f"'milestones' must be increasing positive integers, got {milestones!r}",
                             param="spec")
        gamma = _number(spec, "gamma", 0.5, 0.0, lo_open=True)

        def decay(i: int) -> float:
            return gamma ** sum(i >= m for m in milestones)
    else:
        def decay(i: int) -> float:
            return 1.0
    eta_min = _number(spec, "eta_min", 0.0, 0.0) if name == "cosine" else 0.0
    span = total_iters - warmup

    def factor(base: float) -> Callable[[int], float]:
        if name != "cosine":
            return lambda i: ramp(i) * decay(i)

        def cosine(i: int) -> float:
            t = min(max(i - warmup, 0), span)
            lr = eta_min + (base - eta_min) * (1.0 + math.cos(math.pi * t / span)) / 2.0
            return ramp(i) * (lr / base if base else 1.0)
        return cosine

    factors = [factor(float(group.get("initial_lr", group["lr"]))) for group in optimizer.param_groups]
    return IterationScheduler(optimizer, factors)


class EMA:
    """Exponential moving average of a model's weights: ``shadow ← decay · shadow + (1 − decay) · model``.

    LKDN evaluates with EMA weights (decay 0.999, BasicSR's ``params_ema``). The shadow is a deep copy of the
    model (same device and dtype), in eval mode and without gradients; :attr:`module` can be run directly for
    validation, or :meth:`copy_to` loads the averaged weights into another model of the same architecture.

    Floating-point parameters are averaged. Buffers (batch-norm statistics, fixed constants) are copied from the
    model at each update: running statistics are averages already, and most SR models have no other buffers.
    By default the decay is fixed, as in BasicSR (what LKDN's numbers come from). ``warmup=True`` ramps it as
    ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates (timm's ``ModelEmaV3`` ramp): with a fixed 0.999 the
    starting weights still carry ``0.999**n`` of the average after ``n`` steps (22 % after 1,500), which matters
    when a short stage starts from weights that are far from good, such as a freshly pruned network.
    ``update`` accepts the model wrapped by ``torch.compile`` or ``DistributedDataParallel``.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: bool = False) -> None:
        if isinstance(decay, bool) or not isinstance(decay, int | float) or not 0.0 <= decay <= 1.0:
            raise InputError(f"must be a number in [0, 1], got {decay!r}", param="decay")
        self.decay = float(decay)
        self.warmup = bool(warmup)
        self.num_updates = 0
        self.module = copy.deepcopy(_unwrap(model)).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the shadow towards ``model``'s current weights by ``1 - decay``."""
        model = _unwrap(model)
        weight = 1.0 - self.current_decay
        for (name, shadow), (other_name, param) in zip(self.module.named_parameters(), model.named_parameters(),
                                                       strict=True):
            if name != other_name:
                raise InputError(f"model does not match the EMA copy ({other_name!r} vs {name!r})", param="model")
            if shadow.dtype.is_floating_point:
                shadow.lerp_(param.detach().to(shadow.dtype), weight)
            else:
                shadow.copy_(param)
        for shadow, buffer in zip(self.module.buffers(), model.buffers(), strict=True):
            shadow.copy_(buffer)
        self.num_updates += 1

    @property
    def current_decay(self) -> float:
        """The decay the next :meth:`update` applies (the fixed decay, or the warm-up ramp's value)."""
        if not self.warmup:
            return self.decay
        return min(self.decay, (1.0 + self.num_updates) / (10.0 + self.num_updates))

    def copy_to(self, model: nn.Module) -> None:
        """Load the averaged weights (and buffers) into ``model``."""
        _unwrap(model).load_state_dict(self.module.state_dict())

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "warmup": self.warmup, "num_updates": self.num_updates,
                "module": self.module.state_dict()}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        self.decay = float(state_dict["decay"])
        self.warmup = bool(state_dict.get("warmup", False))
        self.num_updates = int(state_dict["num_updates"])
        self.module.load_state_dict(state_dict["module"])


def _unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside ``torch.compile`` (``_orig_mod``) and DDP/DataParallel (``module``) wrappers."""
    while True:
        if isinstance(getattr(model, "_orig_mod", None), nn.Module):
            model = model._orig_mod  # type: ignore[assignment]
        elif isinstance(model, nn.parallel.DistributedDataParallel | nn.DataParallel):
            model = model.module
        else:
            return model
