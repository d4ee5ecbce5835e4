"""``esrkit profile``'s plan: which models to profile (one by name, one checkpoint, or the whole zoo), at which
size, form, counting rules and timing, checked in full before any model is measured, then profiled one by one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from .result import ProfileResult
from .table import describe_settings, parse_hxw, timing_counts

__all__ = ["ProfilePlan", "plan_profile"]


@dataclass
class ProfilePlan:
    """The models to profile (label, network, scale) and how; :meth:`profile` measures the ``index``-th."""

    targets: list[tuple[str, Any, int | None]]
    labels: list[str]  # the name, with the input size when the model needs another than asked
    size: tuple[int, int]
    deploy: bool
    rules: str
    device: Any
    precision: str
    runtime: bool
    timing: str
    counts: tuple[int, int, int, int | None]  # warmup, repeats, trials, threads
    random_weights: bool = False  # zoo names are built with random weights: counts and timings do not need them

    @property
    def form(self) -> str:
        return "deploy" if self.deploy else "train"

    def description(self) -> str:
        """The line above the table saying what is measured and how."""
        return describe_settings(self.size, self.targets, self.form, self.rules, self.device, self.precision,
                                 self.runtime, *self.counts, random_weights=self.random_weights)

    def profile(self, index: int) -> ProfileResult:
        from ..models import reparameterize
        from . import profile_model  # the package's name, which callers (and tests) may wrap

        name, net, scale = self.targets[index]
        warmup, repeats, trials, threads = self.counts
        return profile_model(reparameterize(net) if self.deploy else net.eval(), name=name, form=self.form,
                             scale=scale, input_size=self.size, rules=self.rules, runtime=self.runtime,
                             device=str(self.device), precision=self.precision, warmup=warmup, repeats=repeats,
                             trials=trials, threads=threads, memory_on_warmup=self.timing == "quick")


def plan_profile(*, model: str | None, weights: Path | None, all_models: bool, scale: int, input_size: str,
                 device: str, precision: str, timing: str, warmup: int | None, repeats: int | None,
                 trials: int | None, threads: int | None, deploy: bool, runtime: bool, rules: str) -> ProfilePlan:
    """Check every option (before any work, so bad input costs nothing) and build the models to profile."""
    from ..device import resolve_device, resolve_precision
    from .counters import COUNTING_RULES

    size = parse_hxw(input_size)
    if sum([model is not None, weights is not None, all_models]) != 1:
        raise InputError("give exactly one of --model NAME, --weights FILE or --all")
    if rules not in COUNTING_RULES:
        raise InputError(f"expected one of {', '.join(sorted(COUNTING_RULES))}, got {rules!r}", param="rules")
    counts = timing_counts(timing, warmup=warmup, repeats=repeats, trials=trials, threads=threads)
    resolve_precision(precision)
    dev = resolve_device(device)
    if weights is not None and not weights.is_file():
        raise InputError(f"no such file: {weights}", param="weights")
    from ..quantize.runtime import is_quantized_path

    if weights is not None and is_quantized_path(weights):  # counts need the torch module, which an int8 file is not
        raise InputError(f"{weights}: profile counts a PyTorch checkpoint; time an int8 model with recommend or "
                         "benchmarks/inference.py --int8", param="weights")

    from ..bundled import BUNDLED_MODEL, require_bundled_weights
    from ..models import create_model, list_models
    from .result import valid_input_size

    targets: list[tuple[str, Any, int | None]] = []
    if model == BUNDLED_MODEL:  # esrkit's own model is a weights file, not a registry architecture
        weights = require_bundled_weights()
    if weights is not None:
        from ..checkpoints import load_checkpoint  # lazy: heavy, and only this branch needs it

        loaded = load_checkpoint(weights)
        config = getattr(loaded, "esrkit_config", None)
        label = BUNDLED_MODEL if model == BUNDLED_MODEL else getattr(config, "name", weights.stem)
        targets.append((label, loaded, getattr(config, "scale", None)))
    else:
        for name in list_models() if all_models else [str(model)]:
            targets.append((name, create_model(name, scale=scale), scale))
    # A model that cannot run at the asked size is measured at the nearest size it accepts, shown beside its name.
    labels = [name if (fit := valid_input_size(net, size)) == size else f"{name} @{fit[0]}x{fit[1]}"
              for name, net, _ in targets]
    return ProfilePlan(targets, labels, size, deploy, rules, dev, precision, runtime, timing, counts,
                       random_weights=weights is None)
