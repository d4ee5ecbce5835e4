"""ONNX export with its verification: the one file the ONNX Runtime and OpenVINO runners (and ``esrkit export``)
read.

Why verification: tracing records sizes read from tensors as graph operations, but not sizes computed in Python
or NumPy (the MATLAB-bicubic baselines, ECBSR's chroma path), so such a graph would silently work at the traced
size only; :func:`export_onnx` runs the written file at a second size and compares it with PyTorch.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from ...models.registry import Capabilities, ModelConfig, capabilities_of, get_config, reparameterize
from .errors import ExportError

__all__ = ["DEFAULT_OPSET", "export_onnx", "first_line"]


# Opset 17 (ONNX 1.12, 2022): read by every ONNX Runtime and OpenVINO release of the last years (ORT since 1.12),
# and inside what torch's TorchScript-based exporter writes (opsets 7 to 20 in torch 2.13). Nothing the zoo uses
# needs a newer one: Conv, DepthToSpace (pixel shuffle, CRD mode, opset ≥ 11), Resize with half-pixel bilinear
# (opset ≥ 11, what F.interpolate(align_corners=False) means), MaxPool, ReduceMean; so the oldest widely read
# opset that has them all with today's semantics is the safest file to hand to another runtime.
DEFAULT_OPSET = 17


def _sample_sizes(caps: Capabilities) -> tuple[tuple[int, int], tuple[int, int]]:
    """Two (height, width) inputs the model accepts, with four different sides: the first is traced, the second
    checks that the traced graph is not tied to the first (see :func:`export_onnx`)."""
    m = caps.size_multiple
    base = max(32, caps.min_size)
    base += -base % m

    def plus(k: int) -> int:
        return base + m * -(-k // m)

    return (base, plus(8)), (plus(12), plus(4))


def export_onnx(model: nn.Module, path: str | os.PathLike[str], *, opset: int = DEFAULT_OPSET,
                deploy: bool = True, verify: bool = True) -> Path:
    """Export ``model`` (NCHW float32 [0, 1] in and out) to an ONNX file with dynamic batch, height and width.

    ``deploy`` re-parameterizes first (the graph a runtime should run). The TorchScript-based exporter
    (``torch.onnx.export(..., dynamo=False)``) is used because the torch.export-based one, torch's default since
    2.9, needs the separate ``onnxscript`` package, and for these feed-forward CNNs the traced graph is the same.
    Tracing records sizes read from tensors (``x.shape``, ``F.interpolate(size=x.shape[-2:])``) as graph
    operations, so the file runs at any size the model accepts; see :data:`DEFAULT_OPSET` for the opset.

    Tracing cannot see sizes computed in Python or NumPy, though: the MATLAB-bicubic baselines (and ECBSR's
    chroma path) build their resampling matrices from the traced size, and such a graph would silently work at
    that one size only. ``verify`` therefore runs the written file (ONNX Runtime, else OpenVINO at f32; skipped
    when neither is installed) at a second size with all four sides different from the traced one and compares
    it with PyTorch; a failure or mismatch (beyond 1e-3, far above float rounding) is an :class:`ExportError`.
    Operations the exporter does not know (SAFMN's adaptive max-pool to a size read from the input, MDRN's
    unfold) are an :class:`ExportError` too.

    The esrkit config (name, scale, hyper-parameters, form) is stored in the file's ``metadata_props`` when the
    ``onnx`` package is installed. The file is written atomically (:func:`esrkit.fileio.atomic_path`): a failed
    export or verification leaves nothing behind.
    """
    from ...fileio import atomic_path

    caps = capabilities_of(model)
    net = reparameterize(model) if deploy else copy.deepcopy(model).eval()
    net = net.float().cpu().eval()
    config = get_config(net) or get_config(model)  # the deploy form's config says "deploy"
    label = config.name if config is not None else type(model).__name__
    traced, checked = _sample_sizes(caps)
    gen = torch.Generator().manual_seed(0)
    sample = torch.rand(1, 3, *traced, generator=gen)
    target = Path(path)
    with atomic_path(target) as tmp:
        try:
            with warnings.catch_warnings(), _quiet_native_output():
                # the legacy-exporter deprecation notice and tracer notes about Python-side shape arithmetic
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    net, (sample,), str(tmp), dynamo=False, opset_version=int(opset),
                    input_names=["lr"], output_names=["sr"], do_constant_folding=True,
                    dynamic_axes={"lr": {0: "batch", 2: "height", 3: "width"},
                                  "sr": {0: "batch", 2: "out_height", 3: "out_width"}},
                )  # fmt: skip
        except Exception as exc:  # the exporter raises many unrelated types for an op it cannot express
            raise ExportError(f"cannot export {label} to ONNX: {first_line(exc)}") from exc
        if verify:
            _verify_dynamic(tmp, net, torch.rand(1, 3, *checked, generator=gen), label)
        if config is not None and importlib.util.find_spec("onnx") is not None:
            _stamp_metadata(tmp, config)
    return target


@contextlib.contextmanager
def _quiet_native_output() -> Iterator[None]:
    """Send file descriptors 1 and 2 to /dev/null for the block: the exporter's C++ side prints the whole graph
    to stdout when it fails, bypassing ``sys.stdout``; the error raised afterwards says what went wrong."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved: list[tuple[int, int]] = []
    try:
        with open(os.devnull, "wb") as null:
            for fd in (1, 2):
                with contextlib.suppress(OSError):  # no such descriptor (an embedded interpreter): leave it
                    saved.append((fd, os.dup(fd)))
                    os.dup2(null.fileno(), fd)
            yield
    finally:
        for fd, copy_fd in saved:
            os.dup2(copy_fd, fd)
            os.close(copy_fd)


def first_line(exc: BaseException) -> str:
    """The first sentence of an exception's message (the exporter's run on with advice and graph dumps)."""
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    line = text.splitlines()[0]
    return (line.split(". ")[0].rstrip(".") + ".")[:300]


def _verify_dynamic(path: Path, net: nn.Module, x: torch.Tensor, label: str) -> None:
    """Run the exported file at ``x``'s (untraced) size and compare with PyTorch (see :func:`export_onnx`)."""
    import numpy as np

    with torch.inference_mode():
        expected = net(x).numpy()
    try:
        if importlib.util.find_spec("onnxruntime") is not None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.log_severity_level = 4  # the failure is reported below, in one line
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
        elif importlib.util.find_spec("openvino") is not None:
            import openvino as ov

            compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
            got = compiled(x.numpy())[0]
        else:
            return
    except Exception as exc:
        raise ExportError(f"the ONNX graph of {label} only runs at the traced size (it fails at "
                          f"{x.shape[-2]}x{x.shape[-1]}: {first_line(exc)})") from exc
    if got.shape != expected.shape or not np.allclose(got, expected, rtol=1e-3, atol=1e-3):
        raise ExportError(f"the ONNX graph of {label} only matches PyTorch at the traced size (a size computed "
                          "outside torch was baked in)")


def _stamp_metadata(path: Path, config: ModelConfig) -> None:
    import json

    import onnx

    proto = onnx.load(str(path))
    for key, value in (("esrkit_config", json.dumps(config.to_dict(), sort_keys=True, default=str)),
                       ("esrkit_scale", str(config.scale))):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))
