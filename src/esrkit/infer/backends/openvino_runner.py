"""The OpenVINO runner (CPU plugin) reading the cached ONNX export, with OpenVINO's own compiled-model cache.

On CPUs with bf16 support OpenVINO picks bf16 *by itself* (the default ``INFERENCE_PRECISION_HINT`` is bf16 on an
AVX512-BF16 EPYC too, without AMX), so the exact path asks for ``f32`` explicitly; ``bf16`` is the fast path.
"""

from __future__ import annotations

import collections
import os
from typing import Any

import torch
from torch import nn

from ...errors import InputError
from .base import BackendRunner, to_numpy
from .cache import onnx_file, openvino_cache_dir
from .errors import BackendError
from .export import DEFAULT_OPSET

__all__ = ["OpenVINORunner"]

_OV_PRECISION = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}


class OpenVINORunner(BackendRunner):
    """OpenVINO (CPU plugin) reading the model's ONNX export.

    ``precision`` becomes ``INFERENCE_PRECISION_HINT`` (``f32``/``bf16``/``f16``), always set explicitly: on a CPU
    with bf16 the plugin's default is bf16, which would make a "fp32" run inexact. Latency configuration: one
    stream, ``PERFORMANCE_HINT=LATENCY``, ``INFERENCE_NUM_THREADS=threads``.

    Shapes: the model is compiled once with dynamic batch/height/width; a shape seen ``static_after`` times gets
    a compilation for exactly that shape (faster kernels, measured ~20% at 256×256), kept in an LRU cache of
    ``max_static`` entries. ``static_after=None`` always runs the dynamic model; 1 compiles every new shape.

    ``cache`` (default) reads the ONNX export from esrkit's on-disk cache and lets OpenVINO keep its compiled
    blobs there (``CACHE_DIR``), so a later process skips both export and compilation.
    """

    backend = "openvino"
    package = ("openvino", "openvino")

    @classmethod
    def native_precisions(cls, device: torch.device) -> tuple[str, ...]:
        """What the CPU plugin's ``OPTIMIZATION_CAPABILITIES`` lists (``BF16``, ``FP16``), fp32 first."""
        if device.type != "cpu":
            raise BackendError("openvino runs on the CPU in esrkit; use --device cpu or the torch backend",
                               param="backend")
        ov = cls.require()
        caps = frozenset(str(c).upper() for c in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
        return tuple(p for p, flag in (("fp32", "FP32"), ("bf16", "BF16"), ("fp16", "FP16"))
                     if p == "fp32" or flag in caps)

    def __init__(self, model: nn.Module, *, precision: str = "fp32", threads: int | None = None,
                 onnx_path: str | os.PathLike[str] | None = None, opset: int = DEFAULT_OPSET,
                 static_after: int | None = 2, max_static: int = 4, cache: bool = True) -> None:
        super().__init__(model, precision, threads)
        ov = self.require()
        self.check_precision(precision, torch.device("cpu"))
        if static_after is not None and static_after < 1:
            raise InputError(f"must be >= 1 or None, got {static_after}", param="static_after")
        self._core = ov.Core()
        with onnx_file(model, onnx_path, opset, cache) as path:
            self._model = self._core.read_model(str(path))  # read fully: the temporary file may go now
        self._config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": _OV_PRECISION[precision],
                                        "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1"}
        if self.threads is not None:
            self._config["INFERENCE_NUM_THREADS"] = self.threads
        blobs = openvino_cache_dir(ov.__version__) if cache else None
        if blobs is not None:
            self._config["CACHE_DIR"] = str(blobs)
        self._dynamic = self._core.compile_model(self._model, "CPU", self._config).create_infer_request()
        self.static_after = static_after
        self.max_static = max_static
        self._seen: collections.Counter[tuple[int, ...]] = collections.Counter()
        self._static: collections.OrderedDict[tuple[int, ...], Any] = collections.OrderedDict()

    def _request(self, shape: tuple[int, ...]) -> Any:
        if self.static_after is None:
            return self._dynamic
        if shape in self._static:
            self._static.move_to_end(shape)
            return self._static[shape]
        self._seen[shape] += 1
        if self._seen[shape] < self.static_after:
            return self._dynamic
        fixed = self._model.clone()
        fixed.reshape({0: list(shape)})
        request = self._core.compile_model(fixed, "CPU", self._config).create_infer_request()
        self._static[shape] = request
        if len(self._static) > self.max_static:
            self._static.popitem(last=False)
        return request

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        array = to_numpy(x)
        request = self._request(tuple(array.shape))
        request.infer({0: array})
        return torch.from_numpy(request.get_output_tensor(0).data.copy())  # the request reuses its buffer
