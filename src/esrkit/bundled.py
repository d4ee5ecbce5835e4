"""esrkit's own model, shipped inside the package: where its weights live and how commands find them.

``esrkit_x4`` is the model esrkit trains itself with the shipped recipe ``esrkit_x4`` (the released RLFN-NTIRE
is pruned in three rounds of L2 filter pruning, each fine-tuned with the unpruned RLFN-NTIRE as distillation
teacher — DIPNet's compression path; see the recipe for the numbers and why this student). Its deploy-form
safetensors is package data, ``esrkit/weights/esrkit_x4.safetensors``, so
that an installation without network access upscales out of the box:

* ``esrkit upscale photo.jpg`` and ``esrkit demo`` use it when neither ``--model`` nor ``--weights`` is given;
* ``--model esrkit_x4`` names it explicitly, in every command that builds its model through
  :meth:`esrkit.infer.Upscaler.from_name` (``upscale``, ``evaluate``, ``export``, ``demo``);
* ``esrkit models`` lists it, as esrkit's own, beside the zoo.

Why it is not a registry variant: a registry entry is an *architecture* that :func:`esrkit.create_model` builds
with random weights, and the zoo-wide tests and ``profile --all`` iterate over architectures. ``esrkit_x4`` is a
set of *weights*; its architecture (a pruned RLFN-NTIRE configuration) is recorded in the file's metadata like that of
any esrkit checkpoint, and :func:`esrkit.load_checkpoint` rebuilds it from there.

Where the weights are looked for:

1. ``$ESRKIT_BUNDLED_WEIGHTS`` (:data:`ENV_VAR`), when set: a safetensors file that takes the bundled model's
   place (a model just trained and not packaged yet, a test's tiny model, a site's own default). Set to a file
   that does not exist it is an error, never a silent fallback to something else;
2. otherwise the package's own copy (:func:`packaged_weights_path`).

When neither exists (a source checkout before the model is trained, or a build without the file), the commands that
need it stop with one line, :data:`MISSING_MESSAGE`, and exit code 2.

:func:`package_weights` turns a training run's ``model_deploy.safetensors`` into the file to ship: it checks the
size limit and the deploy form and adds the scores and the licence line to the metadata the trainer wrote (recipe,
data, validation PSNR).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import CheckpointError, InputError
from .fileio import atomic_path

__all__ = [
    "BUNDLED_MODEL",
    "ENV_VAR",
    "LICENCE",
    "MAX_BYTES",
    "MISSING_MESSAGE",
    "bundled_summary",
    "bundled_weights_path",
    "package_weights",
    "packaged_weights_path",
    "require_bundled_weights",
    "resolve_model_choice",
]

BUNDLED_MODEL = "esrkit_x4"
WEIGHTS_FILE = "esrkit_x4.safetensors"
ENV_VAR = "ESRKIT_BUNDLED_WEIGHTS"
MISSING_MESSAGE = "esrkit's bundled model is not in this installation; give --model NAME or --weights FILE"
# The limit for what ships inside the package (a 150 K-parameter fp32 model is about 0.6 MB).
MAX_BYTES = 1_000_000
# The licence line written into the shipped file's metadata. The weights are esrkit's work (Apache-2.0, the
# package's licence); what they were made from keeps its own terms, so the line names it.
LICENCE = ("esrkit_x4 weights: Apache-2.0, like esrkit. Distilled from the RLFN-NTIRE 2022 weights (bytedance/RLFN, "
           "Apache-2.0) on BSDS500 photos and DIV2K test-set LR images, which their authors provide for research; "
           "their terms apply to what is derived from them.")


def packaged_weights_path() -> Path:
    """Where the package's own copy of the bundled weights lives (whether or not the file is there).

    Resolved through :mod:`importlib.resources`, so it is the installed package's folder (site-packages) or the
    source tree's for an editable install. esrkit is installed as files, not as a zip, so this is a real path.
    """
    return Path(str(resources.files("esrkit").joinpath("weights", WEIGHTS_FILE)))


def bundled_weights_path() -> Path | None:
    """The bundled model's weights file: ``$ESRKIT_BUNDLED_WEIGHTS`` when set, else the packaged copy; None when
    the package has none. A set variable naming a missing file is an :class:`InputError`."""
    override = os.environ.get(ENV_VAR)
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise InputError(f"{ENV_VAR}={override}: no such file (it replaces esrkit's bundled model weights)")
        return path
    path = packaged_weights_path()
    return path if path.is_file() else None


def require_bundled_weights() -> Path:
    """:func:`bundled_weights_path`, or an :class:`InputError` with :data:`MISSING_MESSAGE` when there is none."""
    path = bundled_weights_path()
    if path is None:
        raise InputError(MISSING_MESSAGE)
    return path


def resolve_model_choice(model: str | None, weights: str | os.PathLike[str] | None) -> tuple[str | None, Path | None]:
    """``(model, weights)`` as a command should use them: neither given, or ``model`` = ``esrkit_x4`` alone, means
    the bundled weights; anything else comes back unchanged (``weights`` as a :class:`Path`).

    ``esrkit_x4`` together with ``weights`` is refused: the name *is* a weights file, so the two would compete.
    """
    if model == BUNDLED_MODEL and weights is not None:
        raise InputError(f"{BUNDLED_MODEL} is the bundled weights file; give it or --weights, not both", param="model")
    if weights is None and model in (None, BUNDLED_MODEL):
        return None, require_bundled_weights()
    return model, None if weights is None else Path(weights)


def bundled_summary() -> dict[str, Any] | None:
    """What ``esrkit models`` shows of the bundled model, read from the file (None when there is none):
    architecture, parameters (deploy form, the form that ships), input range, scale, capabilities and the
    provenance in its metadata (recipe, scores, licence)."""
    path = bundled_weights_path()
    if path is None:
        return None
    from .checkpoints import load_checkpoint, read_state_dict
    from .models.registry import capabilities_of, get_config, model_info

    model = load_checkpoint(path)
    config = get_config(model)
    _, meta = read_state_dict(path)
    provenance = dict((meta or {}).get("provenance") or {})
    info = model_info(config.name) if config is not None else None
    return {
        "name": BUNDLED_MODEL,
        "path": path,
        "family": info.family.name if info is not None else "?",
        "architecture": config.name if config is not None else "?",
        "hparams": dict(config.hparams) if config is not None else {},
        "form": config.form if config is not None else "?",
        "params": sum(p.numel() for p in model.parameters()),
        "input_range": float(config.hparams.get("img_range", info.input_range)) if config and info else 1.0,
        "scales": [config.scale] if config is not None else [],
        "capabilities": capabilities_of(model),
        "provenance": provenance,
    }


def package_weights(src: str | os.PathLike[str], dst: str | os.PathLike[str] | None = None, *,
                    scores: Mapping[str, float] | None = None, licence: str = LICENCE) -> Path:
    """Write a training run's deploy weights as the file to ship (``dst`` defaults to the package's own copy,
    :func:`packaged_weights_path`; pass a path outside the source tree to inspect it first).

    ``src`` must be an esrkit safetensors in deploy form (the fast form; a train-form file would run its
    re-parameterization branches at every call). Its metadata (the trainer's recipe, data and validation PSNR)
    is kept, and ``scores`` (e.g. the Set5/Set14 Y-PSNR measured by ``esrkit evaluate``) and ``licence`` are added.
    Raises :class:`CheckpointError` for a train-form model and :class:`InputError` when the result exceeds
    :data:`MAX_BYTES`, leaving ``dst`` as it was.
    """
    from .checkpoints import load_checkpoint, read_state_dict, save_checkpoint
    from .models.registry import get_config

    src = Path(src)
    model = load_checkpoint(src)
    config = get_config(model)
    if config is None or config.form != "deploy":
        raise CheckpointError(f"{src}: the bundled model ships in deploy form; give the run's "
                              "model_deploy.safetensors (or convert with --deploy)")
    _, meta = read_state_dict(src)
    provenance = {**dict((meta or {}).get("provenance") or {}), "bundled_as": BUNDLED_MODEL,
                  "scores": dict(scores or {}), "licence": licence}
    dst = Path(dst) if dst is not None else packaged_weights_path()
    with tempfile.TemporaryDirectory(prefix="esrkit-bundle-") as scratch:
        staged = save_checkpoint(model, Path(scratch) / WEIGHTS_FILE, provenance=provenance, config=config)
        size = staged.stat().st_size
        if size > MAX_BYTES:
            raise InputError(f"{src}: {size:,} bytes as a bundled file, over the {MAX_BYTES:,}-byte limit")
        with atomic_path(dst) as tmp:
            shutil.copyfile(staged, tmp)
    return dst
