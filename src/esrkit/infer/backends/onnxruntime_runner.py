"""The ONNX Runtime runner (CPU execution provider), fp32 only, on the cached ONNX export.

Session settings: every graph optimization (``ORT_ENABLE_ALL``: NCHWc layout, conv+activation fusion). Its MLAS
``Sigmoid`` is a polynomial approximation with an absolute error up to ~1.3e-7 for strongly negative inputs; ESA
gates ``x * sigmoid(g)`` with ``x`` in the [0, 255] feature range of the RFDN/RLFN weights, which magnifies it to
~1e-4 on the output of the official RLFN-NTIRE weights (7.6e-5 to 1.2e-4 measured: not fp32-exact). The runner
therefore rewrites each ``Sigmoid`` of its in-memory copy of the graph as ``1 / (1 + exp(-x))``
(:func:`exact_sigmoid_graph`), whose ORT kernels are exact to an ulp (2.5e-6 then), for ~10% of ORT's runtime.
The file on disk keeps the standard op.
"""

from __future__ import annotations

import importlib.util
import os

import torch
from torch import nn

from .base import BackendRunner, to_numpy
from .cache import onnx_file
from .errors import BackendError
from .export import DEFAULT_OPSET

__all__ = ["ONNXRuntimeRunner", "exact_sigmoid_graph"]


def exact_sigmoid_graph(model_bytes: bytes) -> bytes:
    """Rewrite every ``Sigmoid`` node as ``Reciprocal(Add(Exp(Neg(x)), 1))`` (see the module docstring: ONNX
    Runtime's own Sigmoid is approximate; its Exp and Reciprocal are exact to an ulp). ``exp(-x)`` overflowing to
    inf for very negative ``x`` gives 1/inf = 0, the correct limit, so no clamp is needed."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    proto = onnx.load_from_string(model_bytes)
    graph = proto.graph
    if not any(n.op_type == "Sigmoid" and n.domain in ("", "ai.onnx") for n in graph.node):
        return model_bytes
    one = "esrkit_exact_sigmoid_one"
    graph.initializer.append(numpy_helper.from_array(np.array(1.0, dtype=np.float32), one))
    nodes = []
    for i, node in enumerate(graph.node):
        if node.op_type != "Sigmoid" or node.domain not in ("", "ai.onnx"):
            nodes.append(node)
            continue
        x, y, tag = node.input[0], node.output[0], f"esrkit_sigmoid_{i}"
        nodes += [helper.make_node("Neg", [x], [f"{tag}_neg"], name=f"{tag}_neg"),
                  helper.make_node("Exp", [f"{tag}_neg"], [f"{tag}_exp"], name=f"{tag}_exp"),
                  helper.make_node("Add", [f"{tag}_exp", one], [f"{tag}_add"], name=f"{tag}_add"),
                  helper.make_node("Reciprocal", [f"{tag}_add"], [y], name=f"{tag}_rcp")]
    del graph.node[:]
    graph.node.extend(nodes)
    return proto.SerializeToString()


class ONNXRuntimeRunner(BackendRunner):
    """ONNX Runtime (CPU execution provider) on the model's ONNX export, fp32 only.

    Session settings: every graph optimization (``ORT_ENABLE_ALL``: constant folding, conv+activation fusion, the
    NCHWc layout transform), sequential execution with one inter-op thread and ``threads`` intra-op threads;
    ``Sigmoid`` rewritten exactly (module docstring; the rewrite needs the ``onnx`` package, without which ORT's
    approximation stays). ``onnx_path`` runs an existing export instead of exporting
    ``model`` (which then only supplies the config and capabilities); ``cache`` False exports afresh instead of
    using the on-disk cache (:mod:`esrkit.infer.backends.cache`).
    """

    backend = "onnxruntime"
    package = ("onnxruntime", "onnxruntime")

    @classmethod
    def native_precisions(cls, device: torch.device) -> tuple[str, ...]:
        """fp32 only: the CPU execution provider has no bf16 convolution."""
        if device.type != "cpu":
            raise BackendError("onnxruntime runs on the CPU in esrkit; use --device cpu or the torch backend",
                               param="backend")
        return ("fp32",)

    def __init__(self, model: nn.Module, *, precision: str = "fp32", threads: int | None = None,
                 onnx_path: str | os.PathLike[str] | None = None, opset: int = DEFAULT_OPSET,
                 exact_sigmoid: bool = True, cache: bool = True) -> None:
        super().__init__(model, precision, threads)
        ort = self.require()
        self.check_precision(precision, torch.device("cpu"))
        with onnx_file(model, onnx_path, opset, cache) as path:
            data = path.read_bytes()
        if exact_sigmoid and importlib.util.find_spec("onnx") is not None:
            data = exact_sigmoid_graph(data)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: a failed run raises anyway
        if self.threads is not None:
            options.intra_op_num_threads = self.threads
        self.session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        self._input = self.session.get_inputs()[0].name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (out,) = self.session.run(None, {self._input: to_numpy(x)})
        return torch.from_numpy(out)
