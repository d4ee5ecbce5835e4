"""The trainer behind ``esrkit train``: stages, exact resume, mixed precision, DDP through ``torchrun``.

This module is the loop; its neighbours hold the rest, one concern each: :mod:`.sampler` (data order),
:mod:`.networks` (student, ``init``, teacher, pruning), :mod:`.state` (checkpoint and RNG restore), :mod:`.runlog`
(JSONL, TensorBoard, plot) and :mod:`.hooks` (progress, drawn by ``esrkit train``). Design choices, each for a
stated reason:

* **Data order is a pure function of (seed, epoch, position)** (:class:`~esrkit.train.sampler.EpochSampler`); a
  checkpoint therefore only has to remember the epoch and how many batches of it were consumed, and ``--resume``
  continues with exactly the batches an uninterrupted run would have seen.
* **LR are made on the training device, batched** (the recipe's degradation, MATLAB-exact bicubic by default),
  from uint8 HR crops: the workers only decode and crop, which is what keeps a CPU run fast.
* **Many processes** (``torchrun --nproc-per-node N -m esrkit train …``): each rank takes its slice of every global
  batch (``batch / world_size`` samples), DDP averages gradients, so the update equals one process on the whole
  global batch; rank 0 alone writes checkpoints, logs and final weights. NCCL on CUDA, gloo on CPU.
* **Checkpoints** hold model, optimizer, scheduler, EMA, gradient scaler, RNG streams and position, and are written
  atomically (temporary file, fsync, rename): killing the process mid-write leaves the previous one loadable.
  They are read back with ``torch.load(weights_only=True)``.
* **Precision**: ``auto`` trains with bf16 autocast where the device has fast bf16 (CUDA with bf16, or a CPU with
  AVX512-BF16/AMX), fp16 autocast with a gradient scaler on CUDA without bf16, else fp32. Weights and optimizer
  state stay fp32.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from ..errors import EsrkitError, InputError
from ..fileio import write_json_atomic
from ..models.registry import get_config
from ..quantize.fake_quant import strip_qat
from . import state
from .hooks import TrainHooks
from .networks import build_teacher, load_init, prune_round, quantization_aware, seeded_student, to_layout
from .recipe import Recipe, Stage
from .runlog import RunLog
from .sampler import EpochSampler
from .state import CHECKPOINT, Position

__all__ = ["CHECKPOINT", "EpochSampler", "TrainResult", "Trainer", "resolve_amp"]


# ------------------------------------------------------------------------------------------------------ precision


def resolve_amp(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device`` (None: fp32, no autocast)."""
    if precision == "fp32":
        return None
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        from ..device import cpu_runs_natively

        return torch.bfloat16 if cpu_runs_natively("bf16") else None
    if precision == "fp16" and device.type != "cuda":
        raise InputError("fp16 training needs CUDA (use bf16 or fp32 on CPU)", param="precision")
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]


# ---------------------------------------------------------------------------------------------------- the trainer


class _Stopped(Exception):
    """Raised inside the loop when ``stop_after`` iterations are done (the checkpoint is already written)."""


@dataclass
class TrainResult:
    """What a run produced; the weight paths are None when it stopped early (``stop_after``)."""

    run_dir: Path
    train_weights: Path | None
    deploy_weights: Path | None
    iterations: int
    final_val: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0


@dataclass
class _StageParts:
    """What one stage builds afresh (RLFN's warm start: "the optimizer state is not loaded")."""

    loss: Any
    params: list[nn.Parameter]
    opt: Any
    sched: Any
    ema: Any
    scaler: Any
    distill: Any


class Trainer:
    """Train ``recipe`` on HR folders ``data``, validating on ``val`` benchmarks, writing into ``out``.

    Build it (all inputs are validated here, before ``out`` is touched), then :meth:`run`. ``hooks`` receive the
    progress (on rank 0 only); ``esrkit train`` passes a rich progress bar.
    """

    def __init__(self, recipe: Recipe, data: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], *,
                 val: Sequence[str] = (), data_root: str | os.PathLike[str] | None = None,
                 device: str | None = None, resume: bool = False, hooks: TrainHooks | None = None,
                 stop_after: int | None = None) -> None:
        from ..data.datasets import resolve_benchmark
        from ..device import distributed_env, resolve_device

        self.recipe = recipe
        self.out = Path(out)
        self.resume = resume
        self.stop_after = stop_after  # stop (checkpointed, resumable) after this many iterations in all
        _, world, local = distributed_env()  # validated: a malformed WORLD_SIZE is an InputError, not a ValueError
        self.distributed = dist.is_available() and world > 1
        if self.distributed and not dist.is_initialized():
            if device in (None, "auto") and torch.cuda.is_available():
                torch.cuda.set_device(local)
            dist.init_process_group("nccl" if torch.cuda.is_available() and device != "cpu" else "gloo")
        self.rank = dist.get_rank() if self.distributed else 0
        self.world = dist.get_world_size() if self.distributed else 1
        dev = resolve_device(device)
        if self.distributed and dev.type == "cuda":
            dev = torch.device("cuda", local)
        self.device = dev
        self.amp = resolve_amp(recipe.precision, dev)
        self.hooks = hooks if hooks is not None and self.rank == 0 else TrainHooks()
        self.log = RunLog(self.out, enabled=self.rank == 0)

        if not data:
            raise InputError("give at least one training folder", param="data")
        self.data = [Path(d) for d in data]
        for stage in recipe.stages:
            if stage.batch % self.world:
                raise InputError(f"{stage.name}: batch {stage.batch} is not divisible by {self.world} processes",
                                 param="recipe")
        self.val = [resolve_benchmark(v, recipe.scale, data_root) for v in val]
        checkpoint = self.out / CHECKPOINT
        if resume and not checkpoint.is_file():
            raise InputError(f"{self.out}: nothing to resume (no {CHECKPOINT})", param="resume")
        if not resume and self.out.exists() and any(self.out.iterdir()):
            raise InputError(f"{self.out}: run folder exists and is not empty (resume it, or choose another)",
                             param="out")
        # The datasets are built here so that a missing or empty folder fails before the run folder exists.
        self._datasets = {(s.patch, s.batch): self._dataset(s.patch, s.batch) for s in recipe.stages}
        # Likewise the init checkpoint (a fresh run only: resuming, the run's own checkpoint holds the student)
        # and the teacher, built once for all stages.
        self._init = load_init(recipe.init, recipe, dev) if recipe.init and not resume else None
        self.teacher = build_teacher(recipe.teacher, recipe.scale, dev) if recipe.teacher else None

    # -------------------------------------------------------------------------------------------- building

    def _dataset(self, patch: int, batch: int) -> Any:
        from .datasets import HRCropDataset
        from .degradations import build_degradation
        from .sampling import list_images

        # Several crops per image and epoch, so that an epoch holds at least 50 global batches: small sets
        # (BSDS500: 200 training images) would otherwise restart the DataLoader every few steps.
        repeat = max(1, math.ceil(50 * batch / max(1, len(list_images(self.data, param="data")))))
        # A degradation made before training (lanczos+avif) brings its own (lr, hr) dataset.
        dataset_cls = getattr(build_degradation(self.recipe.degradation, self.recipe.scale), "paired_dataset",
                              HRCropDataset)
        return dataset_cls(self.data, patch=patch, scale=self.recipe.scale, augment=True, seed=self.recipe.seed,
                           repeat=repeat)

    def _model(self, config: dict[str, Any] | None = None) -> nn.Module:
        """The recipe's model with seeded initial weights, or the recipe's ``init`` checkpoint (its weights and
        hyper-parameters), or (resuming) the configuration a checkpoint records."""
        if config is None and self._init is not None:
            torch.manual_seed(self.recipe.seed)  # the RNG streams as when the student is built from the recipe
            model, self._init = self._init, None  # used once: a later call builds from a config
            return to_layout(model, self.recipe)
        return seeded_student(self.recipe, self.device, config)

    def _prune(self, model: nn.Module, ratio: float) -> nn.Module:
        model, before, after = prune_round(model, ratio, self.recipe, self.device)
        self.hooks.pruned(ratio, before, after, get_config(model).hparams)  # type: ignore[union-attr]
        return model

    def _stage_parts(self, model: nn.Module, stage: Stage, pos: Position) -> _StageParts:
        """The stage's loss (with distillation when the recipe has a teacher), optimizer, schedule, EMA, scaler."""
        from .losses import DistillationLoss, build_loss
        from .optim import EMA, build_optimizer, build_scheduler

        recipe = self.recipe
        torch.manual_seed(recipe.seed + 7919 * pos.stage)  # loss modules with random init (contrastive, adapters)
        spec, extra, distill = dict(stage.loss), None, None
        if self.teacher is not None:
            t = recipe.teacher
            assert t is not None  # self.teacher is built from it
            distill = DistillationLoss(model, self.teacher, [(p[0], p[1]) for p in t.feature_pairs or []],
                                       weight_out=float(t.output_weight), weight_feat=float(t.feature_weight))
            spec["distill"], extra = 1.0, {"distill": distill}
        loss_fn = build_loss(spec, extra).to(self.device)
        params = list(model.parameters()) + loss_fn.trainable_parameters()
        opt = build_optimizer(params, stage.optimizer)
        sched = build_scheduler(opt, stage.scheduler, stage.iters) if stage.scheduler else None
        ema = EMA(model, float(recipe.ema), warmup=recipe.ema_warmup) if recipe.ema else None
        scaler = torch.amp.GradScaler("cuda") if self.amp == torch.float16 else None
        return _StageParts(loss_fn, params, opt, sched, ema, scaler, distill)

    # -------------------------------------------------------------------------------------------- the loop

    def run(self) -> TrainResult:
        """Train every stage (resuming where the checkpoint left off) and write the final weights."""
        from .degradations import build_degradation

        t0 = time.perf_counter()
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.out / "recipe.json", self.recipe.to_dict())
        loaded = state.read(self.out) if self.resume else None
        # A pruned run's model no longer has the recipe's widths: the checkpoint records what was trained.
        model = self._model(loaded.get("config") if loaded else None)
        pos = Position(**loaded["position"]) if loaded else Position()
        if loaded:
            if pos.stage < len(self.recipe.stages) and self.recipe.stages[pos.stage].quantize:
                model = quantization_aware(model, self.recipe, self.device)  # ranges: the checkpoint's
            model.load_state_dict(loaded["model"])
        degrade = build_degradation(self.recipe.degradation, self.recipe.scale)
        self.log.rows = list(loaded.get("history", [])) if loaded else []
        try:
            for stage_index in range(pos.stage, len(self.recipe.stages)):
                stage = self.recipe.stages[stage_index]
                resume_stage = loaded if (loaded and stage_index == pos.stage) else None
                if not resume_stage:
                    pos = Position(stage=stage_index, global_step=pos.global_step)
                    if stage.prune:
                        model = self._prune(model, float(stage.prune))
                    if stage.quantize:
                        model = quantization_aware(model, self.recipe, self.device,
                                                   self._datasets[(stage.patch, stage.batch)], degrade)
                self._run_stage(model, stage, pos, resume_stage, degrade)
                if stage.quantize:
                    model = strip_qat(model)  # plain convolutions holding the fine-tuned weights
                loaded = None
                pos = Position(stage=stage_index + 1, global_step=pos.global_step)
        except _Stopped:
            return TrainResult(self.out, None, None, self.stop_after or 0, {}, time.perf_counter() - t0)
        result = self._finish(model, pos.global_step, time.perf_counter() - t0)
        if self.distributed:
            dist.barrier()
        return result

    def _run_stage(self, model: nn.Module, stage: Stage, pos: Position, loaded: dict[str, Any] | None,
                   degrade: Any) -> None:
        from .datasets import to_float

        recipe = self.recipe
        parts = self._stage_parts(model, stage, pos)
        if loaded:
            state.restore(loaded, opt=parts.opt, sched=parts.sched, ema=parts.ema, scaler=parts.scaler,
                          loss=parts.loss)

        ddp = model
        if self.distributed:
            ddp = nn.parallel.DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        forward = torch.compile(ddp) if recipe.compile else ddp

        dataset = self._datasets[(stage.patch, stage.batch)]
        sampler = EpochSampler(dataset, stage.batch, rank=self.rank, world=self.world)
        loader_kwargs: dict[str, Any] = {"batch_size": stage.batch // self.world, "sampler": sampler,
                                         "num_workers": recipe.workers, "drop_last": True}
        if recipe.workers > 0:
            loader_kwargs["persistent_workers"] = False
        loader = DataLoader(dataset, **loader_kwargs)

        def checkpoint() -> None:
            if self.rank == 0:
                state.write(state.capture(recipe.name, pos, model, parts.opt, parts.sched, parts.ema, parts.scaler,
                                          {"history": self.log.rows, "loss": parts.loss.state_dict()}), self.out)
            self.log.write()

        self.hooks.stage_started(stage, pos.step)
        model.train()
        try:
            while pos.step < stage.iters:
                if (pos.batch_in_epoch + 1) * stage.batch > dataset.samples_per_epoch:  # no full batch left
                    pos.epoch += 1
                    pos.batch_in_epoch = 0
                dataset.set_epoch(pos.epoch, start=pos.batch_in_epoch * stage.batch)
                for batch in loader:
                    if isinstance(batch, list | tuple):  # (lr, hr) pairs of a pre-made degradation (lanczos+avif)
                        lr = to_float(batch[0], self.device, recipe.channels_last)
                        hr = to_float(batch[1], self.device, recipe.channels_last)
                    else:
                        hr = to_float(batch, self.device, recipe.channels_last)
                        with torch.no_grad():
                            lr = degrade(hr)
                    # The loss runs under autocast too (it may hold convs: contrastive extractor, distillation
                    # adapters and teacher); the pixel losses autocast to fp32 by themselves.
                    with torch.autocast(self.device.type, dtype=self.amp) if self.amp else contextlib.nullcontext():
                        sr = forward(lr)
                        total, terms = parts.loss(sr, hr, lr)
                    self._step(total, parts.opt, parts.scaler, parts.params, stage.grad_clip)
                    if parts.sched is not None:
                        parts.sched.step()
                    if parts.ema is not None:
                        parts.ema.update(model)
                    pos.step += 1
                    pos.global_step += 1
                    pos.batch_in_epoch += 1
                    self._after_step(stage, pos, float(total.detach()), parts.opt, terms, model, parts.ema)
                    if pos.step % recipe.checkpoint_every == 0 or pos.step == stage.iters:
                        checkpoint()
                    if self.stop_after is not None and pos.global_step >= self.stop_after:
                        checkpoint()
                        raise _Stopped
                    if pos.step >= stage.iters:
                        break
        except KeyboardInterrupt:
            checkpoint()  # Ctrl-C: keep everything up to the last finished iteration
            raise
        finally:
            self.hooks.stage_ended()
            if parts.distill is not None:
                parts.distill.remove_hooks()  # the teacher outlives the stage; its capture hooks must not
        if parts.ema is not None:
            parts.ema.copy_to(model)  # the next stage (and the final weights) start from the EMA weights

    @staticmethod
    def _step(total: torch.Tensor, opt: Any, scaler: Any, params: list[nn.Parameter], clip: float | None) -> None:
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(total).backward()
            scaler.unscale_(opt)
        else:
            total.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(params, clip)
        if scaler is not None:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()

    def _after_step(self, stage: Stage, pos: Position, loss: float, opt: Any, terms: dict[str, Any],
                    model: nn.Module, ema: Any) -> None:
        """Progress, the JSONL history and validation at their cadences."""
        if not math.isfinite(loss):
            raise EsrkitError(f"{stage.name}: the loss became {loss} at iteration {pos.step}")
        lr_now = float(opt.param_groups[0]["lr"])
        self.hooks.step_done(pos.step, loss, lr_now)
        where = {"stage": stage.name, "step": pos.step, "global_step": pos.global_step}
        if pos.step % self.recipe.log_every == 0 or pos.step == stage.iters:
            self.log.record({**where, "loss": loss, "lr": lr_now, **{k: float(v) for k, v in terms.items()}})
        if pos.step % self.recipe.val_every == 0 or pos.step == stage.iters:
            scores = self._validate(ema.module if ema is not None else model)
            if scores:
                self.log.record({**where, **scores})
                self.hooks.validated(scores)
            model.train()

    # ------------------------------------------------------------------------------------- validation, output

    def _validate(self, model: nn.Module) -> dict[str, float]:
        if not self.val or self.rank != 0:
            return {}
        import itertools

        from ..infer import Upscaler
        from ..metrics import calculate_metrics

        upscaler = Upscaler(model, self.recipe.scale, device=self.device)
        scores = {}
        for bench in self.val:
            values = [calculate_metrics(upscaler(lr), hr, bench.scale)["psnr_y"]
                      for _, lr, hr in itertools.islice(bench.pairs(), self.recipe.val_images)]
            scores[f"psnr_y_{bench.name}"] = sum(values) / len(values)
        return scores

    def _finish(self, model: nn.Module, iterations: int, wall: float) -> TrainResult:
        from ..checkpoints import save_checkpoint
        from ..models import reparameterize

        model = model.to(memory_format=torch.contiguous_format).float().cpu().eval()
        final_val = self.log.final_val()
        provenance = {"recipe": self.recipe.to_dict(), "data": [str(d) for d in self.data],
                      "val": final_val, "iterations": iterations, "esrkit_trained": True}
        train_path, deploy_path = self.out / "model_train.safetensors", self.out / "model_deploy.safetensors"
        if self.rank == 0:
            save_checkpoint(model, train_path, provenance=provenance, config=get_config(model))
            save_checkpoint(reparameterize(model), deploy_path, provenance=provenance)
            self.log.write()
        return TrainResult(self.out, train_path, deploy_path, iterations, final_val, wall)
