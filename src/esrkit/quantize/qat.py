"""``esrkit quantize --method qat``: a short quantization-aware fine-tuning through ``esrkit train``, then PTQ.

The fine-tuning is an ordinary training run (:class:`esrkit.train.trainer.Trainer`) of the shipped recipe
``int8_qat`` (``esrkit/train/recipes/int8_qat.yaml``, where its numbers are justified): one ``quantize: true``
stage that starts from the fp32 weights (``init``) and learns from them as a distillation teacher, with the int8
model's rounding simulated in the convolutions it quantizes (:mod:`esrkit.quantize.fake_quant`). Its data are the
calibration photos, less the ones held out for the PSNR check, so that check still measures photos the model was
neither calibrated nor fine-tuned on. The run's fp32 weights then go through the PTQ recipe like any other
checkpoint; the metadata records both the original weights (``source``) and the fine-tuned ones (``qat``).

The same fine-tuning is available on its own: ``esrkit train int8_qat --set init=W --set teacher.weights=W …``
writes a checkpoint that ``esrkit quantize --weights`` (PTQ) then turns into the int8 file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError

__all__ = ["QAT_RECIPE", "FineTuned", "fine_tune"]

QAT_RECIPE = "int8_qat"


@dataclass
class FineTuned:
    """The fine-tuned fp32 checkpoint and what the metadata says of its run."""

    weights: Path
    describe: dict[str, Any]


def _training_folder(files: Sequence[Path], held_out: set[str], folder: Path) -> Path:
    """A folder of links to the calibration photos that are not held out (the trainer reads folders)."""
    folder.mkdir(parents=True)
    for i, path in enumerate(files):
        if path.name in held_out:
            continue
        os.symlink(path.resolve(), folder / f"{i:05d}_{path.name}")
    return folder


def fine_tune(source: Path, config: Any, files: Sequence[Path], held_out: set[str], workdir: Path, *,
              iters: int | None = None, device: str | None = None, hooks: Any = None) -> FineTuned:
    """Run the ``int8_qat`` recipe from ``source`` (an fp32 checkpoint of the model ``config`` describes) on the
    calibration ``files`` less ``held_out`` (names), in ``workdir``; the fine-tuned deploy checkpoint."""
    from ..train.recipe import load_recipe
    from ..train.trainer import Trainer

    if iters is not None and iters < 1:
        raise InputError(f"must be >= 1, got {iters}", param="qat_iters")
    overrides = [f"model={config.name}", f"scale={config.scale}", f"init={source}", f"teacher.weights={source}"]
    if iters is not None:
        overrides.append(f"stages.0.iters={iters}")
    recipe = load_recipe(QAT_RECIPE, overrides)
    data = _training_folder(files, held_out, workdir / "photos")
    result = Trainer(recipe, [data], workdir / "run", device=device, hooks=hooks).run()
    assert result.deploy_weights is not None  # a run without stop_after always writes its weights
    stage = recipe.stages[0]
    return FineTuned(result.deploy_weights, {
        "recipe": QAT_RECIPE, "iterations": result.iterations, "patch": stage.patch, "batch": stage.batch,
        "optimizer": dict(stage.optimizer), "photos": sum(1 for _ in data.iterdir()),
        "seconds": round(result.wall_s, 1)})
