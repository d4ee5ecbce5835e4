"""The trainer behind ``esrkit train``: stages, exact resume, mixed precision, DDP through ``torchrun``.

Design choices, each for a stated reason:

* **Data order is a pure function of (seed, epoch, position).** :class:`EpochSampler` draws each epoch's
  permutation from a generator seeded by ``(seed, epoch)`` and the dataset draws each crop from ``(seed, epoch,
  index)``; a checkpoint therefore only has to remember the epoch and how many batches of it were consumed, and
  ``--resume`` continues with exactly the batches an uninterrupted run would have seen.
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
import json
import math
import os
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Sampler

from ..errors import EsrkitError, InputError, key_list
from ..fileio import atomic_path, write_text_atomic
from ..models.registry import get_config
from .recipe import Recipe, Stage

__all__ = ["EpochSampler", "TrainResult", "Trainer", "resolve_amp"]

CHECKPOINT = "checkpoint.pt"


# ----------------------------------------------------------------------------------------------------- data order


class EpochSampler(Sampler[int]):
    """This rank's share of every global batch of an epoch, in the dataset's own (seeded) order.

    The datasets of :mod:`esrkit.train.data` serve an epoch's samples in a permutation seeded by ``(seed, epoch)``,
    starting at the position given to ``set_epoch``; this sampler only cuts that sequence into global batches
    and hands rank ``r`` its ``r``-th slice of each, so N processes together see exactly the batches one process
    would. The last incomplete global batch is dropped, so every step has the same global batch size.
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
class _Position:
    stage: int = 0
    step: int = 0  # iterations done in the current stage
    epoch: int = 0
    batch_in_epoch: int = 0
    global_step: int = 0


class Trainer:
    """Train ``recipe`` on HR folders ``data``, validating on ``val`` benchmarks, writing into ``out``.

    Build it (all inputs are validated here, before ``out`` is touched), then :meth:`run`.
    """

    def __init__(self, recipe: Recipe, data: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], *,
                 val: Sequence[str] = (), data_root: str | os.PathLike[str] | None = None,
                 device: str | None = None, resume: bool = False, progress: bool = True,
                 stop_after: int | None = None) -> None:
        from ..data.datasets import resolve_benchmark
        from ..device import distributed_env, resolve_device

        self.recipe = recipe
        self.out = Path(out)
        self.resume = resume
        self.progress = progress
        self.stop_after = stop_after  # stop (checkpointed, resumable) after this many iterations in all
        self._tensorboard: Any = None  # a SummaryWriter once needed, False when TensorBoard is not installed
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
        # Likewise the init checkpoint (a fresh run only: resuming, the run's own checkpoint holds the student).
        self._init = self._init_model(recipe.init) if recipe.init and not resume else None

    # -------------------------------------------------------------------------------------------- building

    def _dataset(self, patch: int, batch: int) -> Any:
        from .data import HRCropDataset, build_degradation, list_images

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
        from ..models import create_model

        torch.manual_seed(self.recipe.seed)  # identical initial weights on every rank and every run
        if config is None and self._init is not None:
            model, self._init = self._init, None  # used once: a later call builds from a config
        else:
            name, hparams = (config["name"], config["hparams"]) if config else (self.recipe.model,
                                                                                self.recipe.hparams)
            model = create_model(name, scale=self.recipe.scale, **hparams).to(self.device)
        return model.to(memory_format=torch.channels_last) if self.recipe.channels_last else model

    def _init_model(self, path: str) -> nn.Module:
        """The student loaded from ``init``: it must be the recipe's architecture at the recipe's scale (its
        widths may differ from ``hparams``: the checkpoint's shapes decide, as when loading any checkpoint)."""
        from ..checkpoints import load_checkpoint
        from ..models import get_config, model_info

        if not Path(path).is_file():
            raise InputError(f"init: no such file: {path}", param="recipe")
        model = load_checkpoint(path)
        config = get_config(model)
        if config is None or model_info(config.name).family is not model_info(self.recipe.model).family:
            raise InputError(f"init: {path} holds {getattr(config, 'name', 'an unknown model')}, not the recipe's "
                             f"{self.recipe.model}", param="recipe")
        if config.scale != self.recipe.scale:
            raise InputError(f"init: {path} is ×{config.scale}, the recipe trains ×{self.recipe.scale}",
                             param="recipe")
        return model.float().to(self.device).train()

    def _prune(self, model: nn.Module, ratio: float) -> nn.Module:
        """One pruning round (the same on every rank: it depends on the weights alone)."""
        from ..compress import prune_filters

        before = sum(p.numel() for p in model.parameters())
        model = prune_filters(model, ratio)
        after = sum(p.numel() for p in model.parameters())
        if self.rank == 0 and self.progress:
            import sys

            print(f"pruned {ratio:.0%} of the filters: {before:,} -> {after:,} parameters "
                  f"({get_config(model).hparams})", file=sys.stderr)  # type: ignore[union-attr]
        model = model.to(self.device)
        return model.to(memory_format=torch.channels_last) if self.recipe.channels_last else model

    def _teacher_loss(self, model: nn.Module) -> nn.Module | None:
        spec = self.recipe.teacher
        if not spec:
            return None
        from ..checkpoints import load_checkpoint
        from ..models import create_model
        from .losses import DistillationLoss

        known = {"weights", "model", "output_weight", "feature_weight", "feature_pairs"}
        unknown = set(spec) - known
        if unknown:
            raise InputError(f"teacher: unknown key {key_list(unknown)}; valid: {', '.join(sorted(known))}",
                             param="recipe")
        if spec.get("weights"):
            teacher = load_checkpoint(spec["weights"])
        elif spec.get("model"):
            teacher = create_model(spec["model"], scale=self.recipe.scale)
        else:
            raise InputError("teacher needs weights (a checkpoint) or model (a zoo name)", param="recipe")
        pairs = [(str(p[0]), str(p[1])) for p in spec.get("feature_pairs") or []]
        return DistillationLoss(model, teacher.to(self.device), pairs, weight_out=float(spec.get("output_weight", 1)),
                                weight_feat=float(spec.get("feature_weight", 0)))

    # ----------------------------------------------------------------------------------------- checkpoints

    def _state(self, model: nn.Module, opt: Any, sched: Any, ema: Any, scaler: Any, pos: _Position,
               extra: dict[str, Any]) -> dict[str, Any]:
        state = {
            "format": 1,
            "recipe": self.recipe.name,
            "position": vars(pos).copy(),
            "model": model.state_dict(),
            "config": get_config(model).to_dict(),  # type: ignore[union-attr]
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict() if sched is not None else None,
            "ema": ema.state_dict() if ema is not None else None,
            "scaler": scaler.state_dict() if scaler is not None else None,
            "rng": {"torch": torch.get_rng_state(), "python": _python_rng_state()},
            **extra,
        }
        if torch.cuda.is_available():
            state["rng"]["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def _save(self, state: dict[str, Any]) -> None:
        if self.rank != 0:
            return
        with atomic_path(self.out / CHECKPOINT) as tmp:
            torch.save(state, tmp)

    def _load(self) -> dict[str, Any]:
        path = self.out / CHECKPOINT
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise InputError(f"{path}: unreadable training checkpoint ({str(exc).splitlines()[0]})",
                             param="resume") from None

    # -------------------------------------------------------------------------------------------- the loop

    def run(self) -> TrainResult:
        """Train every stage (resuming where the checkpoint left off) and write the final weights."""
        from .data import build_degradation, to_float

        t0 = time.perf_counter()
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.out / "recipe.json", json.dumps(self.recipe.to_dict(), indent=2) + "\n")
        loaded = self._load() if self.resume else None
        # A pruned run's model no longer has the recipe's widths: the checkpoint records what was trained.
        model = self._model(loaded.get("config") if loaded else None)
        pos = _Position(**loaded["position"]) if loaded else _Position()
        if loaded:
            model.load_state_dict(loaded["model"])
        degrade = build_degradation(self.recipe.degradation, self.recipe.scale)
        history: list[dict[str, Any]] = list(loaded.get("history", [])) if loaded else []
        try:
            for stage_index in range(pos.stage, len(self.recipe.stages)):
                stage = self.recipe.stages[stage_index]
                resume_stage = loaded if (loaded and stage_index == pos.stage) else None
                if not resume_stage:
                    pos = _Position(stage=stage_index, global_step=pos.global_step)
                    if stage.prune:
                        model = self._prune(model, float(stage.prune))
                self._run_stage(model, stage, pos, resume_stage, degrade, to_float, history)
                loaded = None
                pos = _Position(stage=stage_index + 1, global_step=pos.global_step)
        except _Stopped:
            return TrainResult(self.out, None, None, self.stop_after or 0, {}, time.perf_counter() - t0)
        result = self._finish(model, history, pos.global_step, time.perf_counter() - t0)
        if self.distributed:
            dist.barrier()
        return result

    def _run_stage(self, model: nn.Module, stage: Stage, pos: _Position, loaded: dict[str, Any] | None,
                   degrade: Any, to_float: Any, history: list[dict[str, Any]]) -> None:
        from .losses import build_loss
        from .optim import EMA, build_optimizer, build_scheduler

        recipe = self.recipe
        torch.manual_seed(recipe.seed + 7919 * pos.stage)  # loss modules with random init (contrastive, adapters)
        distill = self._teacher_loss(model)
        spec, extra = dict(stage.loss), None
        if distill is not None:
            spec["distill"], extra = 1.0, {"distill": distill}
        loss_fn = build_loss(spec, extra).to(self.device)
        params = list(model.parameters()) + loss_fn.trainable_parameters()
        opt = build_optimizer(params, stage.optimizer)
        sched = build_scheduler(opt, stage.scheduler, stage.iters) if stage.scheduler else None
        ema = EMA(model, float(recipe.ema), warmup=recipe.ema_warmup) if recipe.ema else None
        scaler = torch.amp.GradScaler("cuda") if self.amp == torch.float16 else None
        if loaded:
            opt.load_state_dict(loaded["optimizer"])
            if sched is not None and loaded["scheduler"] is not None:
                sched.load_state_dict(loaded["scheduler"])
            if ema is not None and loaded["ema"] is not None:
                ema.load_state_dict(loaded["ema"])
            if scaler is not None and loaded["scaler"] is not None:
                scaler.load_state_dict(loaded["scaler"])
            if loaded.get("loss") is not None:
                loss_fn.load_state_dict(loaded["loss"])
            torch.set_rng_state(loaded["rng"]["torch"])
            _set_python_rng_state(loaded["rng"]["python"])
            if "cuda" in loaded["rng"] and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(loaded["rng"]["cuda"])

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
            extra = {"history": history, "loss": loss_fn.state_dict()}
            self._save(self._state(model, opt, sched, ema, scaler, pos, extra))

        bar = _Progress(self.progress and self.rank == 0, stage, pos.step)
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
                        total, parts = loss_fn(sr, hr, lr)
                    self._step(total, opt, scaler, params, stage.grad_clip)
                    if sched is not None:
                        sched.step()
                    if ema is not None:
                        ema.update(model)
                    pos.step += 1
                    pos.global_step += 1
                    pos.batch_in_epoch += 1
                    self._after_step(stage, pos, float(total.detach()), opt, parts, history, model, ema, bar)
                    if pos.step % recipe.checkpoint_every == 0 or pos.step == stage.iters:
                        checkpoint()
                        self._write_log(history)
                    if self.stop_after is not None and pos.global_step >= self.stop_after:
                        checkpoint()
                        self._write_log(history)
                        raise _Stopped
                    if pos.step >= stage.iters:
                        break
        except KeyboardInterrupt:
            checkpoint()  # Ctrl-C: keep everything up to the last finished iteration
            self._write_log(history)
            raise
        finally:
            bar.close()
        if ema is not None:
            ema.copy_to(model)  # the next stage (and the final weights) start from the EMA weights

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

    def _after_step(self, stage: Stage, pos: _Position, loss: float, opt: Any, parts: dict[str, Any],
                    history: list[dict[str, Any]], model: nn.Module, ema: Any, bar: _Progress) -> None:
        """Progress, the JSONL history and validation at their cadences."""
        if not math.isfinite(loss):
            raise EsrkitError(f"{stage.name}: the loss became {loss} at iteration {pos.step}")
        lr_now = float(opt.param_groups[0]["lr"])
        bar.update(pos.step, loss, lr_now)
        where = {"stage": stage.name, "step": pos.step, "global_step": pos.global_step}
        if pos.step % self.recipe.log_every == 0 or pos.step == stage.iters:
            self._record(history, {**where, "loss": loss, "lr": lr_now, **{k: float(v) for k, v in parts.items()}})
        if pos.step % self.recipe.val_every == 0 or pos.step == stage.iters:
            scores = self._validate(ema.module if ema is not None else model)
            if scores:
                self._record(history, {**where, **scores})
                bar.note(scores)
            model.train()

    def _record(self, history: list[dict[str, Any]], row: dict[str, Any]) -> None:
        """Append a row to the history (the JSONL log) and, when TensorBoard is installed, to its events."""
        history.append(row)
        if self.rank != 0:
            return
        if self._tensorboard is None:
            import importlib.util

            if importlib.util.find_spec("tensorboard") is None:
                self._tensorboard = False
                return
            from torch.utils.tensorboard import SummaryWriter

            self._tensorboard = SummaryWriter(str(self.out / "tensorboard"))
        if self._tensorboard:
            for key, value in row.items():
                if key not in ("stage", "step", "global_step") and isinstance(value, float | int):
                    self._tensorboard.add_scalar(key, value, row["global_step"])

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

    def _write_log(self, history: list[dict[str, Any]]) -> None:
        if self.rank != 0:
            return
        write_text_atomic(self.out / "log.jsonl", "".join(json.dumps(row) + "\n" for row in history))
        _plot(history, self.out / "curves.png")
        if self._tensorboard:
            self._tensorboard.flush()

    def _finish(self, model: nn.Module, history: list[dict[str, Any]], iterations: int, wall: float) -> TrainResult:
        from ..checkpoints import save_checkpoint
        from ..models import get_config, reparameterize

        model = model.to(memory_format=torch.contiguous_format).float().cpu().eval()
        final_val = {k: v for row in history for k, v in row.items() if k.startswith("psnr_y_")}
        provenance = {"recipe": self.recipe.to_dict(), "data": [str(d) for d in self.data],
                      "val": final_val, "iterations": iterations, "esrkit_trained": True}
        train_path, deploy_path = self.out / "model_train.safetensors", self.out / "model_deploy.safetensors"
        if self.rank == 0:
            config = get_config(model)
            save_checkpoint(model, train_path, provenance=provenance, config=config)
            save_checkpoint(reparameterize(model), deploy_path, provenance=provenance)
            self._write_log(history)
        return TrainResult(self.out, train_path, deploy_path, iterations, final_val, wall)


def _python_rng_state() -> list[Any]:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def _set_python_rng_state(state: list[Any]) -> None:
    version, internal, gauss = state
    random.setstate((version, tuple(internal), gauss))


def _plot(history: list[dict[str, Any]], path: Path) -> None:
    """Loss (log scale) and validation PSNR against the global iteration, one PNG."""
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


class _Progress:
    """A rich progress bar on stderr (stage, iteration, loss, lr, it/s, ETA), or nothing."""

    def __init__(self, enabled: bool, stage: Stage, done: int) -> None:
        self.progress = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[info]}"), TimeRemainingColumn(),
                                 console=Console(stderr=True), transient=False)
        self.start, self.first = time.perf_counter(), done
        self.progress.start()
        self.task = self.progress.add_task(stage.name, total=stage.iters, completed=done, info="")

    def update(self, step: int, loss: float, lr: float) -> None:
        if self.progress is not None:
            rate = (step - self.first) / max(time.perf_counter() - self.start, 1e-9)
            self.progress.update(self.task, completed=step, info=f"loss {loss:.4g} lr {lr:.2e} {rate:.1f} it/s")

    def note(self, scores: dict[str, float]) -> None:
        if self.progress is not None:
            self.progress.console.print(", ".join(f"{k} {v:.2f} dB" for k, v in scores.items()))

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
