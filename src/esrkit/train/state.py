"""What a training checkpoint holds, and putting a run back exactly where it stopped.

A checkpoint holds the model, optimizer, scheduler, EMA, gradient scaler, loss (distillation adapters), the RNG
streams (torch, Python, CUDA) and the :class:`Position`, plus the run's history; it is written atomically
(temporary file, fsync, rename: killing the process mid-write leaves the previous one loadable) and read back with
``torch.load(weights_only=True)``, which is why the Python RNG state is stored as plain lists.

:func:`capture` makes the mapping, :func:`write` and :func:`read` move it to and from the run folder, and
:func:`restore` loads it into a stage's freshly built optimizer, schedule, EMA, scaler and loss, RNG included.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import InputError
from ..fileio import atomic_path
from ..models.registry import get_config

__all__ = ["CHECKPOINT", "FORMAT", "Position", "capture", "read", "restore", "write"]

CHECKPOINT = "checkpoint.pt"
FORMAT = 1


@dataclass
class Position:
    """Where a run is: its stage, the iterations done in it, the epoch and batch of the data order, and the
    iterations done in all."""

    stage: int = 0
    step: int = 0  # iterations done in the current stage
    epoch: int = 0
    batch_in_epoch: int = 0
    global_step: int = 0


def capture(recipe_name: str, pos: Position, model: nn.Module, opt: Any, sched: Any, ema: Any, scaler: Any,
            extra: dict[str, Any]) -> dict[str, Any]:
    """The whole training state as one mapping of tensors and plain values (``extra``: history, loss state)."""
    state = {
        "format": FORMAT,
        "recipe": recipe_name,
        "position": vars(pos).copy(),
        "model": model.state_dict(),
        "config": get_config(model).to_dict(),  # type: ignore[union-attr]
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict() if sched is not None else None,
        "ema": ema.state_dict() if ema is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "rng": {"torch": torch.get_rng_state(), "python": python_rng_state()},
        **extra,
    }
    if torch.cuda.is_available():
        state["rng"]["cuda"] = torch.cuda.get_rng_state_all()
    return state


def write(state: dict[str, Any], run_dir: Path) -> None:
    """``state`` as the run folder's checkpoint, atomically."""
    with atomic_path(run_dir / CHECKPOINT) as tmp:
        torch.save(state, tmp)


def read(run_dir: Path) -> dict[str, Any]:
    """The run folder's checkpoint (an :class:`InputError` naming it when it cannot be read)."""
    path = run_dir / CHECKPOINT
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(f"{path}: unreadable training checkpoint ({str(exc).splitlines()[0]})",
                         param="resume") from None


def restore(state: dict[str, Any], *, opt: Any, sched: Any, ema: Any, scaler: Any, loss: nn.Module) -> None:
    """Load a checkpoint into a stage's freshly built parts, then set the RNG streams as they were when it was
    written (last, so that building the parts cannot move them)."""
    opt.load_state_dict(state["optimizer"])
    if sched is not None and state["scheduler"] is not None:
        sched.load_state_dict(state["scheduler"])
    if ema is not None and state["ema"] is not None:
        ema.load_state_dict(state["ema"])
    if scaler is not None and state["scaler"] is not None:
        scaler.load_state_dict(state["scaler"])
    if state.get("loss") is not None:
        loss.load_state_dict(state["loss"])
    torch.set_rng_state(state["rng"]["torch"])
    set_python_rng_state(state["rng"]["python"])
    if "cuda" in state["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])


def python_rng_state() -> list[Any]:
    """:func:`random.getstate` as plain lists and numbers, the form checkpoints store it in."""
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def set_python_rng_state(state: list[Any]) -> None:
    """The inverse of :func:`python_rng_state`."""
    version, internal, gauss = state
    random.setstate((version, tuple(internal), gauss))
