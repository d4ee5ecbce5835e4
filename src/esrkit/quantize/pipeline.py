"""``esrkit quantize``: from fp32 weights and a folder of photos to an int8 model file with its metadata.

Steps, each refusing bad input before the next costs anything: resolve the source weights
(:func:`source_weights`), read the calibration folders (:func:`esrkit.quantize.calibration.load_calibration`),
export the deploy form to ONNX, quantize it with :mod:`esrkit.quantize.recipe`, write the file into a scratch
folder, score it against the fp32 model on the held-out photos through the same ``Upscaler`` path ``evaluate``
uses, write the metadata (with that check) into the file, and only then move it into place. A failure at any step
leaves nothing at ``out``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EsrkitError, InputError
from ..fileio import check_output_path, staged_dir
from .calibration import DEFAULT_COUNT, DEFAULT_PATCH, CalibrationSet, load_calibration
from .recipe import (
    DEFAULT_RECIPE,
    QUANTIZE_BACKENDS,
    Recipe,
    quantize_onnx,
    quantize_openvino,
    save_onnx,
    save_openvino,
)
from .runtime import FORMAT_VERSION, ONNX_KEY, SUFFIXES, is_quantized_path, make_int8_runner

METHODS = ("ptq", "qat")
OUT_SUFFIX = {backend: suffix for suffix, backend in SUFFIXES.items()}  # openvino → .xml, onnxruntime → .onnx

def source_weights(model: str | None, weights: str | os.PathLike[str] | None) -> tuple[Path, str]:
    """(weights file, label) of the fp32 model to quantize: ``weights``, the bundled model's file for
    ``esrkit_x4``, or a zoo name's released ×4 weights (:func:`esrkit.hub.resolve.released_path`: fetched and
    verified on first use)."""
    from ..bundled import BUNDLED_MODEL, require_bundled_weights
    from ..hub.resolve import check_choice, released_path

    if (model is None) == (weights is None):
        raise InputError("give exactly one of --model NAME or --weights FILE")
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise InputError(f"no such file: {path}", param="weights")
        if is_quantized_path(path):
            raise InputError(f"{path} is already an exported model; quantize its fp32 checkpoint (.pth or "
                             ".safetensors)", param="weights")
        return path, path.stem
    if model == BUNDLED_MODEL:
        return require_bundled_weights(), BUNDLED_MODEL
    check_choice(model, 4)  # an unknown name, or one with no released ×4 weights: one line naming --weights
    return released_path(str(model), 4), str(model)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class QuantizeResult:
    """What :func:`quantize_model` wrote: the file and the metadata stored in it."""

    path: Path
    metadata: dict[str, Any]


def check_psnr(fp32: Callable[[np.ndarray], np.ndarray], int8: Callable[[np.ndarray], np.ndarray],
               pairs: Sequence[tuple[str, np.ndarray, np.ndarray]], scale: int) -> dict[str, Any]:
    """Mean Y-PSNR (border = scale, the papers' protocol) of both upscalers on (name, LR, HR) pairs."""
    from ..metrics import calculate_metrics

    a = [calculate_metrics(fp32(lr), hr, scale)["psnr_y"] for _, lr, hr in pairs]
    b = [calculate_metrics(int8(lr), hr, scale)["psnr_y"] for _, lr, hr in pairs]
    return {"images": [name for name, _, _ in pairs], "psnr_y_fp32": float(np.mean(a)),
            "psnr_y_int8": float(np.mean(b)), "change_db": float(np.mean(b) - np.mean(a))}


def quantize_model(*, model: str | None = None, weights: str | os.PathLike[str] | None = None,
                   calib: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], method: str = "ptq",
                   backend: str = "openvino", calib_count: int = DEFAULT_COUNT, calib_size: int = DEFAULT_PATCH,
                   recipe: Recipe = DEFAULT_RECIPE, threads: int | None = None, qat_iters: int | None = None,
                   train_hooks: Any = None) -> QuantizeResult:
    """Quantize the fp32 model to int8 for ``backend`` and write it to ``out`` (see the module docstring).

    ``out`` must end in ``.xml`` for OpenVINO (the ``.bin`` is written beside it) and ``.onnx`` for ONNX Runtime.
    ``method`` ``ptq`` quantizes the weights as they are; ``qat`` first fine-tunes them with the int8 rounding
    simulated (:mod:`esrkit.quantize.qat`, ``qat_iters`` steps, the recipe's by default; ``train_hooks`` receive
    its progress), then quantizes the result the same way.
    """
    from ..infer import Upscaler
    from ..infer.backends import export_onnx

    method = str(method).strip().lower()
    backend = str(backend).strip().lower()
    if method not in METHODS:
        raise InputError(f"expected ptq or qat, got {method!r}", param="method")
    if backend not in QUANTIZE_BACKENDS:
        raise InputError(f"expected {' or '.join(QUANTIZE_BACKENDS)}, got {backend!r}", param="backend")
    out = Path(out)
    if out.suffix.lower() != OUT_SUFFIX[backend]:
        raise InputError(f"{out}: a model for {backend} is written as {OUT_SUFFIX[backend]}", param="out")
    check_output_path(out, param="out")
    source, label = source_weights(model, weights)
    fp32 = Upscaler.from_name(None, scale=None, weights=source, backend=None)  # the module: it is exported
    config = getattr(fp32.model, "esrkit_config", None)
    if config is None:
        raise InputError(f"{source}: not an esrkit model", param="weights")
    calibration = load_calibration(calib, fp32.scale, count=calib_count, size=calib_size)
    pairs = calibration.holdout or [(n, lr, hr) for n, lr, hr in _calibration_pairs(calibration)]
    with tempfile.TemporaryDirectory(prefix="esrkit-quantize-") as tmp_name:
        tmp = Path(tmp_name)
        tuned, qat = fp32, None
        if method == "qat":
            from .qat import fine_tune

            qat = fine_tune(source, config, calibration.files, {name for name, _, _ in calibration.holdout},
                            tmp / "qat", iters=qat_iters, hooks=train_hooks)
            tuned = Upscaler.from_name(None, scale=None, weights=qat.weights, backend=None)
        onnx_path = export_onnx(tuned.model, tmp / "fp32.onnx", deploy=False)
        quantize = quantize_openvino if backend == "openvino" else quantize_onnx
        try:
            quantized, kept = quantize(onnx_path, calibration.patches, recipe)
        except EsrkitError:
            raise
        except Exception as exc:  # NNCF raises its own and the runtimes' types for a graph it cannot handle
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise InputError(f"NNCF cannot quantize {config.name} for {backend}: {first}", param="weights") from exc
        metadata: dict[str, Any] = {
            "format": FORMAT_VERSION, "config": config.to_dict(), "backend": backend, "method": method,
            "precision": "int8", "source": {"label": label, "file": source.name, "sha256": file_sha256(source)},
            "calibration": calibration.describe(), "recipe": {**recipe.describe(), "fp32_convolutions": kept},
            "psnr_check": None,
        }
        if qat is not None:
            metadata["qat"] = {**qat.describe, "sha256": file_sha256(qat.weights)}
        save = save_openvino if backend == "openvino" else save_onnx
        draft = tmp / f"draft{OUT_SUFFIX[backend]}"
        save(quantized, draft, json.dumps(metadata, sort_keys=True))
        int8 = Upscaler(make_int8_runner(draft, metadata, threads=threads), fp32.scale)
        metadata["psnr_check"] = check_psnr(fp32, int8, pairs, fp32.scale)
        if backend == "onnxruntime":  # drop the draft's entry; the final one carries the check
            keep = [(p.key, p.value) for p in quantized.metadata_props if p.key != ONNX_KEY]
            del quantized.metadata_props[:]
            for key, value in keep:
                entry = quantized.metadata_props.add()
                entry.key, entry.value = key, value
        with staged_dir(out.parent) as staging:
            save(quantized, staging / out.name, json.dumps(metadata, sort_keys=True))
    return QuantizeResult(out, metadata)


def _calibration_pairs(calibration: CalibrationSet) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Fewer than five photos: no hold-out, so the check runs on the calibration photos themselves."""
    from .calibration import lr_hr_pair

    return [(f.name, *lr_hr_pair(f, calibration.scale, calibration.check_size)) for f in calibration.files]
