"""Callbacks a training run reports its progress through (``esrkit train`` draws a rich bar from them).

The trainer calls them on rank 0 only; the defaults do nothing, so a library caller or a test trains silently.
"""

from __future__ import annotations

from typing import Any

from .recipe import Stage

__all__ = ["TrainHooks"]


class TrainHooks:
    """Progress of :meth:`esrkit.train.trainer.Trainer.run` (subclass and override what you need)."""

    def stage_started(self, stage: Stage, done: int) -> None:
        """A stage begins (or resumes with ``done`` of its ``stage.iters`` iterations already trained)."""

    def step_done(self, step: int, loss: float, lr: float) -> None:
        """Iteration ``step`` of the current stage finished with this loss, at this learning rate."""

    def validated(self, scores: dict[str, float]) -> None:
        """Validation scores (``psnr_y_<benchmark>`` in dB) at the recipe's cadence."""

    def pruned(self, ratio: float, before: int, after: int, hparams: dict[str, Any]) -> None:
        """A pruning round removed ``ratio`` of the filters: parameters ``before`` -> ``after``, new widths."""

    def stage_ended(self) -> None:
        """The current stage stopped: finished, stopped early, interrupted or failed."""
