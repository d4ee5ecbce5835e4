"""The on-disk cache of ONNX exports and compiled models, so the cost of a fast backend is paid once per machine.

Without it every ``esrkit upscale --backend openvino`` call exported the model to ONNX (tracing, plus the
verification run at a second size) and compiled it again: measured on a 2-core EPYC with the bundled model, a
whole one-image call took 14.2 s against 11.4 s for eager torch although OpenVINO's forward was 3.7× faster.

Where: ``$XDG_CACHE_HOME/esrkit`` (``~/.cache/esrkit`` when unset). What:

* ``onnx/<key>.onnx``: the verified export; ``<key>`` hashes what the file depends on: the weights (every tensor
  of the state dict, so two checkpoints of one architecture never share a file), the esrkit config, the opset,
  the shape policy (dynamic batch, height and width) and the exporting torch's version. A model that cannot be
  exported leaves ``<key>.failed`` with the reason, so ``--backend auto`` does not retry it on every call;
* ``openvino-<version>-<cpu>/``: OpenVINO's own ``CACHE_DIR`` for the compiled blobs, per OpenVINO version and CPU
  (its blobs are compiled for one instruction set; OpenVINO keys them by model, device and configuration inside).

Every file is written atomically, so two processes filling the cache at once at worst both export. Deleting the
folder is always safe.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from ...device import cpu_identity
from ...errors import InputError
from ...models.registry import get_config
from .errors import ExportError
from .export import export_onnx

__all__ = ["cache_root", "cached_onnx", "export_failure", "model_key", "onnx_file", "openvino_cache_dir"]

SHAPE_POLICY = "dynamic-bhw"  # what export_onnx writes: dynamic batch, height and width


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/esrkit``, or ``~/.cache/esrkit``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "esrkit"


def model_key(model: nn.Module, opset: int) -> str:
    """A hex digest of the weights, config, opset, shape policy and torch version (see the module docstring)."""
    digest = hashlib.sha256()
    config = get_config(model)
    described = config.to_dict() if config is not None else {"class": type(model).__qualname__}
    digest.update(json.dumps({"config": described, "opset": int(opset), "shapes": SHAPE_POLICY,
                              "torch": torch.__version__}, sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()[:32]


def _onnx_dir() -> Path:
    return cache_root() / "onnx"


def export_failure(model: nn.Module, opset: int) -> str | None:
    """The recorded reason this model could not be exported, or None when no export failed (or none was tried)."""
    marker = _onnx_dir() / f"{model_key(model, opset)}.failed"
    with contextlib.suppress(OSError):
        return marker.read_text(encoding="utf-8").strip() or "export failed"
    return None


def cached_onnx(model: nn.Module, opset: int) -> Path:
    """The cached, verified ONNX export of ``model`` (deploy form), exported now when absent.

    A failed export is recorded (``<key>.failed``) and raised again as :class:`ExportError`, here and on later
    calls, without exporting again."""
    from ...fileio import write_text_atomic

    folder = _onnx_dir()
    key = model_key(model, opset)
    path = folder / f"{key}.onnx"
    if path.is_file():
        return path
    failed = export_failure(model, opset)
    if failed is not None:
        raise ExportError(failed)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        return export_onnx(model, path, opset=opset, deploy=True)
    except ExportError as exc:
        with contextlib.suppress(OSError):
            write_text_atomic(folder / f"{key}.failed", str(exc) + "\n")
        raise


@contextlib.contextmanager
def onnx_file(model: nn.Module, onnx_path: str | os.PathLike[str] | None, opset: int,
              cache: bool = True) -> Iterator[Path]:
    """The ONNX file a runner loads: the caller's; the cached export (``cache``); or a fresh export in a
    temporary folder removed afterwards."""
    if onnx_path is not None:
        path = Path(onnx_path)
        if not path.is_file():
            raise InputError(f"no such file: {path}", param="onnx_path")
        yield path
        return
    if cache:
        try:
            path = cached_onnx(model, opset)
        except OSError:  # a read-only or full cache folder: export as if there were no cache
            path = None
        if path is not None:
            yield path
            return
    with tempfile.TemporaryDirectory(prefix="esrkit-onnx-") as tmp:
        # ``model`` is already in its deploy form when it comes from Upscaler.from_name; folding again is a no-op
        yield export_onnx(model, Path(tmp) / "model.onnx", opset=opset, deploy=True)


def openvino_cache_dir(version: str) -> Path | None:
    """OpenVINO's ``CACHE_DIR`` for this OpenVINO version and CPU, created; None when it cannot be created."""
    tag = hashlib.sha256(cpu_identity().encode()).hexdigest()[:12]
    folder = cache_root() / f"openvino-{version.split('-')[0]}-{tag}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder
