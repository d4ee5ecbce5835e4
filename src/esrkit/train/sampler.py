"""The order a run sees its samples in: each rank's share of every global batch, resumable at any batch.

Data order is a pure function of (seed, epoch, position): the datasets of :mod:`esrkit.train.datasets` serve an
epoch's samples in a permutation seeded by ``(seed, epoch)`` and draw each crop from ``(seed, epoch, index)``, so
a checkpoint only has to remember the epoch and how many batches of it were consumed, and ``--resume`` continues
with exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from torch.utils.data import Sampler

from ..errors import InputError

__all__ = ["EpochSampler"]


class EpochSampler(Sampler[int]):
    """This rank's share of every global batch of an epoch, in the dataset's own (seeded) order.

    The datasets serve an epoch's samples in a permutation seeded by ``(seed, epoch)``, starting at the position
    given to ``set_epoch``; this sampler only cuts that sequence into global batches and hands rank ``r`` its
    ``r``-th slice of each, so N processes together see exactly the batches one process would. The last
    incomplete global batch is dropped, so every step has the same global batch size.
    """

    def __init__(self, dataset: Any, global_batch: int, *, rank: int = 0, world: int = 1) -> None:
        if global_batch % world:
            raise InputError(f"batch {global_batch} is not divisible by {world} processes", param="batch")
        self.dataset, self.global_batch, self.rank, self.world = dataset, global_batch, rank, world

    def __iter__(self) -> Iterator[int]:
        local = self.global_batch // self.world
        for b in range(len(self.dataset) // self.global_batch):
            first = b * self.global_batch + self.rank * local
            yield from range(first, first + local)

    def __len__(self) -> int:
        return len(self.dataset) // self.global_batch * (self.global_batch // self.world)
