"""Training recipes: a model and a list of stages, as YAML data with the papers' numbers.

A recipe names a zoo model, its scale and training-wide settings (seed, degradation, EMA, precision, validation
and checkpoint cadence, an optional distillation teacher) and a list of **stages**. Each stage starts from the
previous stage's weights with a freshly initialised optimizer and schedule (RLFN's warm start: "the optimizer
state is not loaded"), and sets its own iterations, HR patch, batch, loss, optimizer, schedule and clipping.

Shipped recipes live in ``esrkit/train/recipes/<name>.yaml``; each number cites where in the notes it came from.
Any value can be overridden with dotted paths (``stages.0.iters=200``); :func:`smoke` shrinks every stage to a
few iterations on small patches so a recipe can be exercised end to end in seconds.

Every key is checked: an unknown or misspelt key is an :class:`~esrkit.errors.InputError` naming the file and
the key, never silently ignored (a typo in ``lr`` would otherwise train a different model).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..errors import InputError, key_list

__all__ = ["Recipe", "Stage", "Teacher", "apply_overrides", "available_recipes", "load_recipe", "smoke"]


@dataclass
class Stage:
    """One training stage (see the module docstring for how stages chain)."""

    iters: int
    patch: int  # HR patch side in pixels (a multiple of the scale)
    batch: int
    loss: dict[str, float]
    optimizer: dict[str, Any]
    name: str = ""
    scheduler: dict[str, Any] | None = None
    grad_clip: float | None = None
    # A pruning round before this stage trains: remove this share of the filters of every coupled channel group
    # (L2 norm; DIPNet prunes 0.05 per round and fine-tunes between rounds), see esrkit.compress.prune.
    prune: float | None = None
    quantize: bool = False  # train the deploy form with int8 rounding simulated (esrkit.quantize.fake_quant)


@dataclass
class Teacher:
    """The network a distillation recipe learns from, with the weights of its output and feature terms.

    Every stage then adds :class:`~esrkit.train.losses.DistillationLoss` to its loss; the teacher itself is built
    once per run (:func:`esrkit.train.networks.build_teacher`), its 1×1 adapters per stage (a pruning round
    changes the student's widths).
    """

    weights: str | None = None  # a checkpoint (the released file, or esrkit safetensors)
    model: str | None = None  # a zoo name: its released weights at the recipe's scale, train form (esrkit.hub)
    random_weights: bool = False  # build ``model`` with random weights instead (tests, timing): only when asked
    output_weight: float = 1.0  # L1 between student and teacher outputs
    feature_weight: float = 0.0  # L2 between adapted student features and teacher features
    feature_pairs: list[list[str]] | None = None  # [[student module, teacher module], ...]


@dataclass
class Recipe:
    """A whole training run: model, shared settings and stages."""

    model: str
    scale: int
    stages: list[Stage]
    name: str = ""
    hparams: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    degradation: str = "bicubic"
    ema: float | None = None  # EMA decay; None trains without EMA
    ema_warmup: bool = False  # ramp the decay up from 0 at the start of every stage (esrkit.train.optim.EMA)
    precision: str = "auto"  # auto (bf16 where the device supports it), fp32, bf16, fp16
    channels_last: bool = True
    compile: bool = False
    workers: int = 2
    val_every: int = 1000
    val_images: int | None = None  # cap per validation set (None: all)
    checkpoint_every: int = 1000
    log_every: int = 50
    teacher: Teacher | None = None
    init: str | None = None  # a checkpoint the student starts from (its architecture: the recipe's model and scale)
    notes: dict[str, str] = field(default_factory=dict)  # where each number came from
    source: str = ""

    @property
    def total_iters(self) -> int:
        return sum(s.iters for s in self.stages)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_RECIPE_DIR = "recipes"


def available_recipes() -> list[str]:
    """Names of the recipes shipped with esrkit."""
    folder = resources.files(__package__).joinpath(_RECIPE_DIR)
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def _read(name_or_path: str | os.PathLike[str]) -> tuple[dict[str, Any], str]:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise InputError(f"{path}: no such recipe file", param="recipe")
        try:
            text, source = path.read_text(encoding="utf-8"), str(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: cannot be read as UTF-8 text ({exc})", param="recipe") from None
    else:
        shipped = resources.files(__package__).joinpath(_RECIPE_DIR).joinpath(f"{name_or_path}.yaml")
        if not shipped.is_file():
            raise InputError(f"unknown recipe {str(name_or_path)!r}; shipped: {', '.join(available_recipes())} "
                             "(or give a .yaml path)", param="recipe")
        text, source = shipped.read_text(encoding="utf-8"), f"esrkit:{name_or_path}"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"{source}: not valid YAML ({str(exc).splitlines()[0]})", param="recipe") from None
    if not isinstance(data, dict):
        raise InputError(f"{source}: a recipe is a mapping of settings, got {type(data).__name__}", param="recipe")
    return data, source


def _parse_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``["stages.0.iters=200", "ema=0.999"]`` applied to a recipe mapping (values parsed as YAML scalars).

    A path through a list takes an index; the last component may add a new key only where the schema has it,
    which :func:`load_recipe` checks afterwards.
    """
    out = copy.deepcopy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise InputError(f"{item!r}: expected KEY=VALUE (e.g. stages.0.iters=200)", param="set")
        node: Any = out
        parts = key.split(".")
        for depth, part in enumerate(parts[:-1]):
            node = _child(node, part, ".".join(parts[: depth + 1]), item)
        last = parts[-1]
        if isinstance(node, list):
            index = _index(node, last, key, item)
            node[index] = _parse_value(raw)
        elif isinstance(node, dict):
            node[last] = _parse_value(raw)
        else:
            raise InputError(f"{item!r}: {'.'.join(parts[:-1])} is a value, not a group", param="set")
    return out


def _index(node: list[Any], part: str, path: str, item: str) -> int:
    # ASCII digits with at most one minus: str.isdigit() also takes "²" and lstrip("-") took "--1", which int()
    # refuses (found by fuzz/)
    if re.fullmatch(r"-?[0-9]+", part) is None or not -len(node) <= int(part) < len(node):
        raise InputError(f"{item!r}: {path} is not an index into a list of {len(node)}", param="set")
    return int(part)


def _child(node: Any, part: str, path: str, item: str) -> Any:
    if isinstance(node, list):
        return node[_index(node, part, path, item)]
    if isinstance(node, dict):
        if node.get(part) is None:
            node[part] = {}
        return node[part]
    raise InputError(f"{item!r}: {path} is a value, not a group", param="set")


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names, key=str)  # YAML keys need not be strings (an empty key is None)
    if unknown:
        raise InputError(f"{where}: unknown key {', '.join(map(repr, unknown))}; valid: {', '.join(sorted(names))}",
                         param="recipe")
    required = [f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]  # type: ignore[misc]
    missing = [n for n in required if n not in data]
    if missing:
        raise InputError(f"{where}: missing {', '.join(missing)}", param="recipe")
    return cls(**data)


def _path_base(name_or_path: str | os.PathLike[str], source: str) -> Path:
    """The folder a recipe's relative file paths start from: the recipe file's own folder, so ``esrkit train
    my.yaml`` means the same files from any working directory. A shipped recipe names the reference material
    as it sits beside an esrkit checkout (``../shared/...``), so its paths start at the checkout's root (the
    folder holding ``src/esrkit``), not at the working directory: ``esrkit train esrkit_x4`` works from anywhere."""
    if source.startswith("esrkit:"):
        return Path(__file__).resolve().parents[3]
    return Path(name_or_path).resolve().parent


def _resolve_paths(data: dict[str, Any], base: Path) -> None:
    """Make ``init`` and ``teacher.weights`` absolute against ``base`` when they are relative text (anything
    else is left for the type checks to report)."""

    def resolve(value: Any) -> Any:
        if isinstance(value, str) and value.strip():
            path = Path(value).expanduser()
            return value if path.is_absolute() else str((base / path).resolve())
        return value

    if "init" in data:
        data["init"] = resolve(data["init"])
    teacher = data.get("teacher")
    if isinstance(teacher, dict) and "weights" in teacher:
        teacher["weights"] = resolve(teacher["weights"])


def load_recipe(name_or_path: str | os.PathLike[str], overrides: list[str] | None = None) -> Recipe:
    """Read a shipped recipe by name or a YAML file, apply ``overrides`` and validate every key and value."""
    data, source = _read(name_or_path)
    _resolve_paths(data, _path_base(name_or_path, source))
    data = apply_overrides(data, overrides or [])  # a --set path is the user's: relative to where they are
    stages_raw = data.pop("stages", None)
    if not isinstance(stages_raw, list) or not stages_raw:
        raise InputError(f"{source}: needs a non-empty list 'stages'", param="recipe")
    stages = []
    for i, raw in enumerate(stages_raw):
        if not isinstance(raw, dict):
            raise InputError(f"{source}: stages.{i} must be a mapping", param="recipe")
        stages.append(_build(Stage, raw, f"{source}: stages.{i}"))
    teacher = _build_teacher(data.pop("teacher", None), source, data.get("scale"))
    recipe = _build(Recipe, {**data, "stages": stages, "teacher": teacher}, source)
    recipe.source = source
    recipe.name = recipe.name or Path(source.removeprefix("esrkit:")).stem
    _validate(recipe, source)
    return recipe


# What each field must hold. YAML gives a key any type (``batch:`` left empty is None, ``patch: 6+`` a string,
# ``ema: 0)999`` too), and the checks below compare and convert numbers, so a wrong type is reported as such first.
_KINDS: dict[str, tuple[type, ...]] = {"an integer": (int,), "a number": (int, float), "text": (str,),
                                       "true or false": (bool,), "a mapping": (dict,),
                                       "a list": (list,)}
_RECIPE_TYPES = {"model": "text", "scale": "an integer", "name": "text", "hparams": "a mapping", "seed": "an integer",
                 "degradation": "text", "ema": "a number", "ema_warmup": "true or false", "precision": "text",
                 "channels_last": "true or false",
                 "compile": "true or false", "workers": "an integer", "val_every": "an integer",
                 "val_images": "an integer", "checkpoint_every": "an integer", "log_every": "an integer",
                 "init": "text", "notes": "a mapping"}
_STAGE_TYPES = {"iters": "an integer", "patch": "an integer", "batch": "an integer", "loss": "a mapping",
                "optimizer": "a mapping", "name": "text", "scheduler": "a mapping", "grad_clip": "a number",
                "prune": "a number", "quantize": "true or false"}
_TEACHER_TYPES = {"weights": "text", "model": "text", "output_weight": "a number", "feature_weight": "a number",
                  "feature_pairs": "a list", "random_weights": "true or false"}


def _check_types(obj: Any, expected: dict[str, str], where: str) -> None:
    """Every field of ``obj`` holds its kind (None only where the default is None; a bool is not a number)."""
    optional = {f.name for f in dataclasses.fields(obj) if f.default is None}
    for key, kind in expected.items():
        value = getattr(obj, key)
        if value is None and key in optional:
            continue
        if not isinstance(value, _KINDS[kind]) or (isinstance(value, bool) and kind != "true or false"):
            raise InputError(f"{where}: {key} must be {kind}, not {value!r}", param="recipe")


def _build_teacher(raw: Any, source: str, scale: Any) -> Teacher | None:
    """The recipe's ``teacher`` mapping checked whole (keys, types, weights, pairs, a zoo name and its released
    weights at ``scale``, the recipe's) when the recipe is loaded, so that a bad teacher fails before the run folder
    exists, not when the first stage starts. Nothing is downloaded here: that is the trainer's, when it builds."""
    from ..errors import WeightsError
    from ..hub.resolve import check_choice, released_scales_note
    from ..models import model_info
    from .losses import check_distillation

    if raw is None:
        return None
    where = f"{source}: teacher"
    if not isinstance(raw, dict):
        raise InputError(f"{source}: teacher must be a mapping, not {raw!r}", param="recipe")
    known = {f.name for f in dataclasses.fields(Teacher)}
    unknown = set(raw) - known
    if unknown:  # key_list: YAML keys may be numbers or null (found by fuzz/)
        raise InputError(f"{where}: unknown key {key_list(unknown)}; valid: {', '.join(sorted(known))}",
                         param="recipe")
    teacher = Teacher(**raw)
    _check_types(teacher, _TEACHER_TYPES, where)
    if not teacher.weights and not teacher.model:
        raise InputError(f"{where} needs weights (a checkpoint) or model (a zoo name)", param="recipe")
    for pair in teacher.feature_pairs or []:
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
            raise InputError(f"{where}: feature_pairs holds [student, teacher] module-name pairs, not {pair!r}",
                             param="recipe")
    if teacher.random_weights and teacher.weights:
        raise InputError(f"{where}: give weights or random_weights (for model), not both", param="recipe")
    try:
        check_distillation(teacher.output_weight, teacher.feature_weight, teacher.feature_pairs or [])
        if teacher.model and not teacher.weights:
            model_info(teacher.model)
            if isinstance(scale, int) and not isinstance(scale, bool):  # else the recipe's checks report the scale
                check_choice(teacher.model, scale, random_weights=teacher.random_weights)
    except WeightsError:  # a name means its released weights: none at this scale is a refusal, never noise
        raise InputError(f"{where}.model: {teacher.model} ×{scale}: {released_scales_note(teacher.model)}; give "
                         "teacher.weights (a checkpoint of it, e.g. from `esrkit train`), or random_weights: true "
                         "for a teacher with random weights (tests, timing)", param="recipe") from None
    except InputError as exc:
        raise InputError(f"{where}: {exc.message}", param="recipe") from None
    return teacher


def _validate(recipe: Recipe, source: str) -> None:
    from ..models import model_info

    _check_types(recipe, _RECIPE_TYPES, source)
    for i, stage in enumerate(recipe.stages):
        _check_types(stage, _STAGE_TYPES, f"{source}: stages.{i}")
    info = model_info(recipe.model)
    if recipe.scale not in info.scales:
        raise InputError(f"{source}: {recipe.model} supports scales {list(info.scales)}, not {recipe.scale}",
                         param="recipe")
    if recipe.precision not in ("auto", "fp32", "bf16", "fp16"):
        raise InputError(f"{source}: precision must be auto, fp32, bf16 or fp16, not {recipe.precision!r}",
                         param="recipe")
    if recipe.ema is not None and not 0.0 < float(recipe.ema) < 1.0:
        raise InputError(f"{source}: ema is a decay in (0, 1), not {recipe.ema}", param="recipe")
    for key in ("val_every", "checkpoint_every", "log_every"):
        if int(getattr(recipe, key)) < 1:
            raise InputError(f"{source}: {key} must be >= 1", param="recipe")
    for i, stage in enumerate(recipe.stages):
        where = f"{source}: stages.{i}"
        if stage.iters < 1 or stage.batch < 1:
            raise InputError(f"{where}: iters and batch must be >= 1", param="recipe")
        if stage.patch < recipe.scale or stage.patch % recipe.scale:
            raise InputError(f"{where}: patch {stage.patch} must be a positive multiple of the scale {recipe.scale}",
                             param="recipe")
        if not isinstance(stage.loss, dict) or not stage.loss:
            raise InputError(f"{where}: loss must map loss names to weights, e.g. {{l1: 1.0}}", param="recipe")
        if not isinstance(stage.optimizer, dict) or "name" not in stage.optimizer:
            raise InputError(f"{where}: optimizer needs a name (adam, adamw, adan)", param="recipe")
        _check_stage_builders(stage, where, distill=recipe.teacher is not None)
        if stage.prune is not None and not 0.0 < float(stage.prune) < 1.0:
            raise InputError(f"{where}: prune is the share of filters removed, in (0, 1), not {stage.prune}",
                             param="recipe")
        if stage.quantize and stage.prune:
            raise InputError(f"{where}: a quantize stage cannot also prune (prune in the stage before it)",
                             param="recipe")
        stage.name = stage.name or f"stage{i + 1}"


def _check_stage_builders(stage: Stage, where: str, distill: bool = False) -> None:
    """Build the stage's loss, optimizer and schedule (on a stand-in parameter): their builders' own checks (names,
    keys, value types and ranges, a warm-up shorter than the stage) then refuse a bad value of any stage when the
    recipe is loaded, not when that stage starts after the ones before it have trained (and ``smoke`` can rely on
    them: a ``warmup_iters`` of ``2adan`` reached its ``int()``, found by fuzz/). The random number streams are
    left as they were: a loss may initialise modules (the contrastive feature extractor). A teacher's term is in
    every stage's loss, so such a stage may weigh everything else 0 (``int8_qat``)."""
    import torch

    from .losses import build_loss
    from .optim import build_optimizer, build_scheduler

    try:
        with torch.random.fork_rng(devices=[]):
            if distill:
                build_loss({**stage.loss, "distill": 1.0}, {"distill": torch.nn.L1Loss()})
            else:
                build_loss(stage.loss)
        optimizer = build_optimizer([torch.zeros(1, requires_grad=True)], stage.optimizer)
        if stage.scheduler:
            build_scheduler(optimizer, stage.scheduler, stage.iters)
    except InputError as exc:
        raise InputError(f"{where}: {exc.message}", param="recipe") from None


def smoke(recipe: Recipe, iters: int = 4, batch: int = 2, patch_lr: int = 16) -> Recipe:
    """A copy of ``recipe`` that runs every stage for ``iters`` iterations on small batches and patches
    (validation and checkpoints once per stage), so a recipe's whole path is exercised in seconds."""
    out = copy.deepcopy(recipe)
    for stage in out.stages:
        stage.iters = min(stage.iters, iters)
        stage.batch = min(stage.batch, batch)
        stage.patch = min(stage.patch, patch_lr * out.scale)
        if stage.scheduler and stage.scheduler.get("warmup_iters"):
            stage.scheduler["warmup_iters"] = min(int(stage.scheduler["warmup_iters"]), 1)
    out.val_every = out.checkpoint_every = iters
    out.val_images = 2 if out.val_images is None else min(out.val_images, 2)
    out.workers = 0
    out.compile = False
    return out
