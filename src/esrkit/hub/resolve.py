"""The one resolver: what model and weights a name (and/or a checkpoint file) stands for, for every command and API.

Rules, in order (:func:`load_model`):

1. ``weights`` given: that checkpoint, checked against ``name`` and ``scale`` when they are given;
2. ``esrkit_x4``: esrkit's bundled weights (:mod:`esrkit.bundled`);
3. a zoo name with no parameters (``bicubic``, ``lanczos``): built, since there is nothing to load;
4. ``random_weights=True``: built with random weights, *only* because the caller said so (tests, timing);
5. otherwise the released weights of that model and scale (:mod:`esrkit.hub.catalogue`), fetched into the cache
   on first use (:mod:`esrkit.hub.download`) and loaded with :func:`esrkit.checkpoints.load_checkpoint`. A model
   with no released weights at that scale is a one-line error naming the way out (a checkpoint of one's own,
   e.g. from ``esrkit train``), never noise.

:func:`check_choice` runs the same decisions without loading or downloading anything, so a command can refuse a
bad name before it touches its inputs. :func:`load_model_with_provenance` also says which weights it loaded
(:mod:`esrkit.hub.provenance`), for result files. :func:`pull` fetches ahead of time; :func:`weights_summary` is
what ``esrkit models`` shows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..bundled import BUNDLED_MODEL, bundled_weights_path, require_bundled_weights
from ..bundled import ENV_VAR as BUNDLED_ENV
from ..errors import CheckpointError, InputError, WeightsError
from . import catalogue
from .cache import cached_file
from .download import fetch, register_file
from .provenance import bundled_record, file_record, no_parameters_record, random_record, released_record

if TYPE_CHECKING:
    from torch import nn

    from .progress import Reporter

__all__ = ["Pulled", "check_choice", "create_model", "known_names", "load_model", "load_model_with_provenance",
           "load_released", "pull", "released_file", "released_path", "released_scales_note", "weights_summary"]


def known_names() -> list[str]:
    """Every name a command's ``--model`` accepts: the zoo and esrkit's bundled model."""
    from ..models.registry import list_models

    return sorted([*list_models(), BUNDLED_MODEL])


def _info(name: str) -> Any:
    """The registry entry of ``name`` (an unknown name's error lists every ``known_names`` entry)."""
    from ..models.registry import model_info

    return model_info(name)


def released_scales_note(name: str) -> str:
    """What is released of ``name``, for a message refusing it at a scale without weights (also the recipe's
    teacher check, :mod:`esrkit.train.recipe`)."""
    scales = sorted({e.scale for e in catalogue.entries_for(name)})
    return (f"released weights exist for ×{', ×'.join(map(str, scales))} only" if scales
            else "no released weights are known for it")


def _no_weights_error(name: str, scale: int) -> WeightsError:
    return WeightsError(f"{name} ×{scale}: {released_scales_note(name)}; give --weights FILE (a checkpoint of it, "
                        f"e.g. from `esrkit train`), or --random-weights to run it with random weights (tests, timing)")


def check_choice(name: str | None, scale: int | None = 4, weights: str | os.PathLike[str] | None = None,
                 random_weights: bool = False) -> None:
    """Refuse what :func:`load_model` would refuse, without loading or downloading: an unknown name, a scale
    the model lacks, a missing file, a name with no released weights at that scale, contradictory choices."""
    if random_weights and weights is not None:
        raise InputError("give a weights file or ask for random weights, not both", param="random_weights")
    if name == BUNDLED_MODEL and weights is not None:
        raise InputError(f"{BUNDLED_MODEL} is the bundled weights file; give it or --weights, not both", param="model")
    if weights is not None:
        if not Path(weights).is_file():
            raise InputError(f"no such file: {weights}", param="weights")
        if name not in (None, BUNDLED_MODEL):
            _info(name)
        return
    if name is None:
        raise InputError("give --model NAME or --weights FILE")
    if name == BUNDLED_MODEL:
        return
    info = _info(name)
    scale = 4 if scale is None else scale
    if scale not in info.scales:
        raise InputError(f"model {name!r} supports scales {list(info.scales)}, not {scale}", param="scale")
    if random_weights or not catalogue.needs_weights(name):
        return
    if catalogue.choose(name, scale) is None:
        raise _no_weights_error(name, scale)


def released_path(name: str, scale: int = 4, *, prefer: str = "deploy", reporter: Reporter | None = None) -> Path:
    """The verified file of ``name``'s released weights at ``scale`` in the cache (:func:`released_file`)."""
    return released_file(name, scale, prefer=prefer, reporter=reporter)[1]


def released_file(name: str, scale: int = 4, *, prefer: str = "deploy",
                  reporter: Reporter | None = None) -> tuple[catalogue.WeightsEntry, Path]:
    """The catalogue record and verified cached file of ``name``'s released weights at ``scale`` (fetched on first
    use). Raises :class:`WeightsError` when nothing is released at that scale or it cannot be had.

    Both forms of a model compute the same function, so a cached file of either form is used before anything is
    fetched (a file registered with ``pull --from`` works offline), and when the preferred form cannot be fetched
    (a mirror holding only the other one) the other form is tried; the first failure is the one reported.
    """
    ranked = sorted(catalogue.entries_for(name, scale), key=lambda e: e.form != prefer)
    if not ranked:
        raise _no_weights_error(name, scale)
    found = next(((e, p) for e in ranked if (p := cached_file(e)) is not None), None)
    first_error: WeightsError | None = None
    for entry in ranked if found is None else []:
        try:
            found = entry, fetch(entry, reporter)
            break
        except WeightsError as exc:
            first_error = first_error or exc
    if found is None:
        raise first_error or _no_weights_error(name, scale)
    return found


def load_released(name: str, scale: int = 4, *, prefer: str = "deploy", reporter: Reporter | None = None) -> nn.Module:
    """The model ``name`` at ``scale`` with its released weights (:func:`released_path`), in the form of the file
    it resolved to."""
    return _load_released(name, scale, prefer, reporter)[0]


def _load_released(name: str, scale: int, prefer: str, reporter: Reporter | None) -> tuple[nn.Module, dict[str, Any]]:
    from ..checkpoints import load_checkpoint
    from ..models.registry import get_config

    entry, path = released_file(name, scale, prefer=prefer, reporter=reporter)
    model = load_checkpoint(path, scale=scale)
    config = get_config(model)
    if config is None or (config.name, config.scale) != (name, scale):
        got = "an unknown layout" if config is None else f"{config.name} ×{config.scale}"
        raise CheckpointError(f"{path}: a released {name} ×{scale} file loads as {got}")
    return model, released_record(entry, path)


def load_model(name: str | None, scale: int | None = 4, weights: str | os.PathLike[str] | None = None, *,
               random_weights: bool = False, reporter: Reporter | None = None) -> nn.Module:
    """The model a command runs for ``--model name [--scale scale] [--weights weights]`` (rules in the module
    docstring). ``scale`` None takes a checkpoint's own scale (4 for a zoo name). The result carries
    ``esrkit_config`` whenever esrkit built or recognised it."""
    return load_model_with_provenance(name, scale, weights, random_weights=random_weights, reporter=reporter)[0]


def load_model_with_provenance(name: str | None, scale: int | None = 4, weights: str | os.PathLike[str] | None = None,
                               *, random_weights: bool = False,
                               reporter: Reporter | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """:func:`load_model`, and the record of the weights it loaded (:mod:`esrkit.hub.provenance`): the file and
    its sha256, the released file's catalogue record, or that the weights are random (asked for) or absent."""
    from ..checkpoints import load_checkpoint
    from ..models.registry import create_model as build
    from ..models.registry import get_config

    if scale is not None and scale < 1:
        raise InputError(f"must be a positive integer, got {scale}", param="scale")
    check_choice(name, scale, weights, random_weights)
    if name == BUNDLED_MODEL and weights is None:
        name, weights = None, require_bundled_weights()
    if weights is not None:
        # the scale only settles layouts that do not fix it (PAN ×2/×3)
        model = load_checkpoint(weights) if scale is None else load_checkpoint(weights, scale=scale)
        config = get_config(model)
        if name is not None and config is not None and config.name != name:
            raise InputError(f"{weights} holds a {config.name!r} model, not {name!r}", param="weights")
        if scale is not None and config is not None and config.scale != scale:
            raise InputError(f"{weights} is a ×{config.scale} model, not ×{scale}", param="weights")
        return model, _file_provenance(weights)
    assert name is not None  # check_choice refused neither
    scale = 4 if scale is None else scale
    if not catalogue.needs_weights(name):
        return build(name, scale=scale), no_parameters_record(name, scale)
    if random_weights:
        return build(name, scale=scale), random_record(name, scale)
    return _load_released(name, scale, "deploy", reporter)


def _file_provenance(weights: str | os.PathLike[str]) -> dict[str, Any]:
    """A checkpoint's record; the bundled model's file is named as such, however it was asked for (commands turn
    ``--model esrkit_x4`` into its path before they load, :func:`esrkit.bundled.resolve_model_choice`)."""
    try:
        bundled = bundled_weights_path()
    except InputError:  # $ESRKIT_BUNDLED_WEIGHTS names a missing file: not this one, whatever it is
        bundled = None
    if bundled is not None and Path(weights).resolve() == bundled.resolve():
        return bundled_record(weights, BUNDLED_MODEL, overridden=bool(os.environ.get(BUNDLED_ENV)))
    return file_record(weights)


def create_model(name: str, scale: int = 4, pretrained: bool = False, **hparams: Any) -> nn.Module:
    """Build a zoo model; ``pretrained=True`` loads its released weights (downloaded and verified on first use),
    like ``timm.create_model(name, pretrained=True)``.

    Without ``pretrained`` this is :func:`esrkit.models.create_model` (train form, random weights). With it, the
    train-form file is preferred (the form that can be fine-tuned); a model released only in deploy form comes
    back in deploy form. Hyper-parameters cannot be changed on released weights.
    """
    from ..models.registry import create_model as build

    if not pretrained:
        return build(name, scale=scale, **hparams)
    if hparams:
        raise InputError(f"released weights fix the hyper-parameters; drop {', '.join(sorted(hparams))} or "
                         "build with pretrained=False", param="pretrained")
    _info(name)
    if not catalogue.needs_weights(name):
        return build(name, scale=scale)
    return load_released(name, scale, prefer="train")


@dataclass(frozen=True)
class Pulled:
    """One file :func:`pull` made sure of: its record, where it is, and whether it was already there."""

    entry: catalogue.WeightsEntry
    path: Path
    status: str  # "cached" (was there), "downloaded", "registered" (copied from --from FILE)


def pull(names: list[str] | None = None, scale: int | None = None, all_models: bool = False,
         from_file: str | os.PathLike[str] | None = None, reporter: Reporter | None = None) -> list[Pulled]:
    """Fetch released files ahead of use (``esrkit pull``): every file of each named model (all scales and forms,
    or those at ``scale``), or of every model with ``all_models``; with ``from_file``, register that file for
    the one named model by its hash instead of downloading. Everything is checked before the first transfer."""
    names = list(names or [])
    if all_models == bool(names):
        raise InputError("give model names or --all, not both" if names else "give model names, or --all",
                         param="all_models" if all_models else None)
    if from_file is not None and len(names) != 1:
        raise InputError("registers a file for exactly one model name", param="from_file")
    wanted: list[catalogue.WeightsEntry] = []
    for name in names or catalogue.released_models():
        if name == BUNDLED_MODEL:
            raise InputError(f"{BUNDLED_MODEL} ships inside the package; there is nothing to pull")
        info = _info(name)
        if scale is not None and scale not in info.scales:
            raise InputError(f"model {name!r} supports scales {list(info.scales)}, not {scale}", param="scale")
        found = catalogue.entries_for(name, scale)
        if not found and names:  # (--all with --scale skips the models released at other scales)
            if not catalogue.needs_weights(name):
                raise InputError(f"{name} has no parameters: there are no weights to pull")
            scales = sorted({e.scale for e in catalogue.entries_for(name)})
            raise WeightsError(f"{name}: " + (f"released weights exist for ×{', ×'.join(map(str, scales))} only"
                                              if scales else "no released weights are known for it, nothing to pull"))
        wanted += found
    if from_file is not None:
        entry, path = register_file(wanted, from_file)
        return [Pulled(entry, path, "registered")]
    done = []
    for entry in wanted:
        path = cached_file(entry)
        done.append(Pulled(entry, path, "cached") if path is not None
                    else Pulled(entry, fetch(entry, reporter), "downloaded"))
    return done


def weights_summary(name: str) -> dict[str, Any]:
    """What ``esrkit models`` shows of ``name``'s weights: whether it needs any, each released file (scale, form,
    licence, URL, sha256, size) and whether it is cached (by size: listing does not re-hash)."""
    if name == BUNDLED_MODEL:
        return {"needs_weights": True, "bundled": True, "released": [], "licences": []}
    needs = catalogue.needs_weights(name)
    released = []
    for entry in catalogue.entries_for(name):
        path = cached_file(entry, verify=False)
        released.append({**entry.to_dict(), "cached": path is not None, "cache_path": str(path) if path else None,
                         "licence_line": catalogue.licence_line(entry)})
    licences = sorted({str(e["licence"]) if e["licence"] else "none stated" for e in released})
    return {"needs_weights": needs, "bundled": False, "released": released, "licences": licences}
