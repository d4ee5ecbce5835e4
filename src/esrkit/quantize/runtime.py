"""Running a quantized esrkit model: the file formats, their metadata and the int8 runners.

A quantized model is one file a runtime reads directly, with esrkit's metadata inside it:

* **OpenVINO IR** (``.xml`` + its ``.bin``): the metadata is a JSON string in the model's ``rt_info`` under
  ``esrkit/quantized``; OpenVINO runs the FakeQuantize-wrapped convolutions as int8 kernels and everything left in
  fp32 (the element-wise ops, the sensitive convolutions) in fp32, because the runner asks for
  ``INFERENCE_PRECISION_HINT=f32`` (on a CPU with bf16 the plugin would otherwise run the fp32 islands in bf16);
* **ONNX QDQ** (``.onnx``, QuantizeLinear/DequantizeLinear pairs around the int8 convolutions) for ONNX Runtime: the
  metadata is ``metadata_props["esrkit_quantized"]``.

The metadata (:data:`METADATA_KEYS`) carries the model's esrkit config (family, scale, hyper-parameters: the
registry then gives the :class:`~esrkit.models.registry.Capabilities` the ``Upscaler`` pads and tiles by), the
source weights' SHA-256, the calibration set, the method and the PSNR change measured when it was written.

:func:`load_quantized` is the hook ``Upscaler.from_name(weights=...)`` calls for such a file
(:func:`is_quantized_path` decides by suffix, without importing a runtime); the runners are the backends' own
:class:`~esrkit.infer.backends.OpenVINORunner` and :class:`~esrkit.infer.backends.ONNXRuntimeRunner` reading the
file, so padding, tiling, rounding and timing are exactly those of the fp32 backends.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from ..errors import InputError
from ..models.registry import ModelConfig, model_info

FORMAT_VERSION = 1
SUFFIXES = {".xml": "openvino", ".onnx": "onnxruntime"}  # file suffix → the runtime that reads it
RT_INFO_PATH = ["esrkit", "quantized"]
ONNX_KEY = "esrkit_quantized"
METADATA_KEYS = ("format", "config", "backend", "method", "precision", "source", "calibration", "recipe",
                 "psnr_check")


def is_quantized_path(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a file in one of the quantized formats (by suffix; the metadata is checked on load)."""
    return Path(path).suffix.lower() in SUFFIXES


def backend_of(path: str | os.PathLike[str]) -> str:
    """The runtime that reads ``path`` (``openvino`` for ``.xml``, ``onnxruntime`` for ``.onnx``)."""
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(f"{path}: a quantized model is an OpenVINO .xml or an ONNX .onnx file", param="weights")
    return SUFFIXES[suffix]


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The esrkit metadata of a quantized model file; an :class:`InputError` when the file lacks it (an IR or ONNX
    file not written by ``esrkit quantize``, e.g. a plain ``esrkit export``) or it is malformed."""
    path = Path(path)
    backend = backend_of(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}", param="weights")
    try:
        text = _read_openvino_metadata(path) if backend == "openvino" else _read_onnx_metadata(path)
    except InputError:
        raise
    except Exception as exc:  # the runtimes' parsers raise their own types for a damaged file
        raise InputError(f"{path}: cannot read as {backend} model ({str(exc).splitlines()[0][:200]})",
                         param="weights") from None
    if text is None:
        raise InputError(f"{path}: not a model written by esrkit quantize (no esrkit metadata)", param="weights")
    try:
        meta = json.loads(text)
    except json.JSONDecodeError:
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION or not isinstance(meta.get("config"), dict):
        raise InputError(f"{path}: esrkit metadata is malformed or of another version", param="weights")
    return meta


def _read_openvino_metadata(path: Path) -> str | None:
    import openvino as ov

    model = ov.Core().read_model(str(path))
    return model.get_rt_info(RT_INFO_PATH).astype(str) if model.has_rt_info(RT_INFO_PATH) else None


def _read_onnx_metadata(path: Path) -> str | None:
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return next((p.value for p in proto.metadata_props if p.key == ONNX_KEY), None)


def config_of(meta: Mapping[str, Any]) -> ModelConfig:
    """The :class:`ModelConfig` recorded in the metadata; the family must be registered in this esrkit."""
    raw = meta["config"]
    try:
        config = ModelConfig(str(raw["name"]), int(raw["scale"]), dict(raw.get("hparams") or {}),
                             str(raw.get("form", "deploy")))
    except (KeyError, TypeError, ValueError):
        raise InputError("the quantized model's esrkit config is malformed", param="weights") from None
    model_info(config.name)  # UnknownModelError for a family this esrkit does not know
    return config


class ConfigCarrier(nn.Module):
    """A parameterless stand-in that only carries ``esrkit_config``: what the runners read from the fp32 model
    (capabilities, degradation) when the network itself is the quantized file."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.esrkit_config = config


def make_int8_runner(path: str | os.PathLike[str], meta: Mapping[str, Any] | None = None, *,
                     threads: int | None = None) -> nn.Module:
    """The runner that executes the quantized file ``path`` (its ``describe()`` says ``openvino int8`` or
    ``onnxruntime int8``; ``quantized`` holds the metadata)."""
    from ..infer.backends import ONNXRuntimeRunner, OpenVINORunner

    meta = dict(meta) if meta is not None else read_metadata(path)
    carrier = ConfigCarrier(config_of(meta))
    if backend_of(path) == "openvino":
        runner: Any = OpenVINORunner(carrier, precision="fp32", threads=threads, onnx_path=path)
    else:
        runner = ONNXRuntimeRunner(carrier, precision="fp32", threads=threads, onnx_path=path)
    runner.precision = str(meta.get("precision", "int8"))  # fp32 is only the hint for the non-quantized ops
    runner.quantized = meta
    return runner


def load_quantized(path: str | os.PathLike[str], *, name: str | None, scale: int | None, backend: str | None,
                   kwargs: Mapping[str, Any]) -> tuple[nn.Module, int, dict[str, Any]]:
    """The ``Upscaler.from_name(weights=FILE)`` hook for a quantized file: (runner, scale, Upscaler kwargs).

    The file decides the runtime and precision: ``backend`` must be None, the file's own runtime or ``auto`` (the
    default of ``esrkit upscale``: the file's runtime is the only one that runs it), not torch or the other runtime (a
    :class:`~esrkit.infer.backends.BackendError`, which ``recommend`` reports as unavailable); ``precision`` fp32
    (the default: the Upscaler hands the runner float32) or int8, and ``device`` the CPU. ``name`` and ``scale``
    are checked against the recorded config, like for a checkpoint."""
    from ..infer.backends import BackendError, PrecisionNotSupportedError

    meta = read_metadata(path)
    config = config_of(meta)
    own = backend_of(path)
    if backend is not None and str(backend).strip().lower() not in (own, "auto"):
        raise BackendError(f"{path} is quantized for {own}, not {backend}", param="backend")
    if name is not None and name != config.name:
        raise InputError(f"{path} holds a {config.name!r} model, not {name!r}", param="weights")
    if scale is not None and scale != config.scale:
        raise InputError(f"{path} is a ×{config.scale} model, not ×{scale}", param="weights")
    rest = dict(kwargs)
    precision = str(rest.pop("precision", "fp32")).strip().lower()
    if precision not in ("fp32", "int8"):
        raise PrecisionNotSupportedError(f"{path} is an int8 model; --precision {precision} does not apply to it",
                                         param="precision")
    device = str(rest.get("device") or "cpu")
    if device not in ("cpu", "auto"):
        raise InputError(f"{path} runs on the CPU ({own}); use --device cpu", param="device")
    rest["device"] = "cpu"
    threads = rest.pop("threads", None)
    for key in ("channels_last", "compile", "bf16_mode", "onnx_path", "opset", "exact_sigmoid"):
        if key in rest:
            warnings.warn(f"{key} does not apply to a quantized model; ignored", RuntimeWarning, stacklevel=3)
            rest.pop(key)
    return make_int8_runner(path, meta, threads=threads), config.scale, rest
