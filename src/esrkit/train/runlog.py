"""A run's record: the JSONL history, TensorBoard events (when installed) and the loss/PSNR plot.

Only rank 0 writes; every rank keeps the history, which the checkpoint carries so a resumed run's log is whole.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from ..fileio import atomic_path, write_text_atomic

__all__ = ["RunLog", "plot_curves"]


class RunLog:
    """The history of a run in ``out`` (``log.jsonl``, ``curves.png``, ``tensorboard/``); ``enabled``: this
    process writes the files (rank 0)."""

    def __init__(self, out: Path, *, enabled: bool) -> None:
        self.out, self.enabled = out, enabled
        self.rows: list[dict[str, Any]] = []
        self._tensorboard: Any = None  # a SummaryWriter once needed, False when TensorBoard is not installed

    def record(self, row: dict[str, Any]) -> None:
        """Append a row to the history (the JSONL log) and, when TensorBoard is installed, to its events."""
        self.rows.append(row)
        if not self.enabled:
            return
        if self._tensorboard is None:
            if importlib.util.find_spec("tensorboard") is None:
                self._tensorboard = False
                return
            from torch.utils.tensorboard import SummaryWriter

            self._tensorboard = SummaryWriter(str(self.out / "tensorboard"))
        if self._tensorboard:
            for key, value in row.items():
                if key not in ("stage", "step", "global_step") and isinstance(value, float | int):
                    self._tensorboard.add_scalar(key, value, row["global_step"])

    def write(self) -> None:
        """The JSONL log and the plot rewritten whole (atomically), TensorBoard flushed."""
        if not self.enabled:
            return
        write_text_atomic(self.out / "log.jsonl", "".join(json.dumps(row) + "\n" for row in self.rows))
        plot_curves(self.rows, self.out / "curves.png")
        if self._tensorboard:
            self._tensorboard.flush()

    def final_val(self) -> dict[str, float]:
        """The last validation score of each benchmark."""
        return {k: v for row in self.rows for k, v in row.items() if k.startswith("psnr_y_")}


def plot_curves(history: list[dict[str, Any]], path: Path) -> None:
    """Loss (log scale) and validation PSNR against the global iteration, one PNG (nothing before a loss row)."""
    losses = [(r["global_step"], r["loss"]) for r in history if "loss" in r]
    psnr_keys = sorted({k for r in history for k in r if k.startswith("psnr_y_")})
    if not losses:
        return
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.6))
    ax = fig.add_subplot(1, 2, 1)
    ax.plot(*zip(*losses, strict=True), lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("training loss")
    ax2 = fig.add_subplot(1, 2, 2)
    for key in psnr_keys:
        pts = [(r["global_step"], r[key]) for r in history if key in r]
        ax2.plot(*zip(*pts, strict=True), marker="o", ms=3, label=key.removeprefix("psnr_y_"))
    ax2.set_xlabel("iteration")
    ax2.set_ylabel("Y-PSNR [dB]")
    if psnr_keys:
        ax2.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
