"""Building blocks of ``esrkit train``.

* :mod:`esrkit.train.optim` — :func:`build_optimizer`, :func:`build_scheduler` and :class:`EMA`.
"""

from __future__ import annotations

from .optim import EMA, IterationScheduler, build_optimizer, build_scheduler

__all__ = ["EMA", "IterationScheduler", "build_optimizer", "build_scheduler"]
