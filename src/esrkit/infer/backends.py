"""Fast inference backends: PyTorch (deploy form, channels-last, bf16, ``torch.compile``), ONNX Runtime and
OpenVINO, behind one interface.

Every runner is an :class:`torch.nn.Module` without parameters whose ``forward`` takes and returns NCHW float32
tensors in [0, 1], exactly like an esrkit model, and carries the wrapped model's ``esrkit_config``. So
:class:`esrkit.infer.Upscaler` (padding, tiling, rounding), :mod:`esrkit.evaluate` and
:func:`esrkit.profile.runtime.time_forward` run any backend unchanged, and a PSNR or a runtime measured through one
path is what the others give. :func:`make_runner` builds one; :func:`runner_for_upscaler` is the hook
``Upscaler.from_name(..., backend=...)`` calls.

Nothing is assumed about the machine: :func:`supported_precisions` asks the CPU (and OpenVINO's own capability
list) what it runs natively, and asking for something else is a :class:`PrecisionNotSupportedError`, not a silent
fallback. Which combination is fastest is measured (``esrkit recommend``, ``benchmarks/inference.py``).

What the levers are, and why. Measured once on a shared 2-core AVX512-BF16 EPYC (no AMX), official RLFN-NTIRE ×4
weights, 256×256, 2 threads, median of 5 (indicative only: the machine was shared; ``benchmarks/inference.py``
is the full, repeatable table): eager train form 1643 ms; deploy channels-last 1162 ms (1.4×, max |Δ| 4e-6);
torch bf16 cast channels-last 528 ms (3.1×); ONNX Runtime 709 ms (2.3×); OpenVINO f32 508 ms dynamic / 422 ms
static shape (3.2× / 3.9×, max |Δ| 5e-6); OpenVINO bf16 228 / 185 ms (7.2× / 8.9×). Set5 ×4 Y-PSNR change vs
fp32 (official weights): torch bf16 RLFN-NTIRE -0.006, RFDN -0.006, IMDN -0.009, LKDN-S -0.059 dB; OpenVINO bf16
-0.013, -0.007, -0.008, -0.058 dB; every fp32 backend ±0.0000 dB.

* **deploy form** always (re-parameterized blocks folded; the caller passes it, ``Upscaler.from_name`` does);
* **channels-last** (NHWC) memory: oneDNN's convolutions run natively in it, so no reorder per conv;
* **bf16 on the CPU** only with native bf16 dot products (AVX512-BF16 or AMX-BF16): without them oneDNN emulates
  bf16 through fp32 and gains nothing. ``bf16_mode="cast"`` converts weights and input once (what a deployment
  ships, the default); ``"autocast"`` keeps fp32 weights and casts per op: same speed and, to 0.0003 dB, the
  same Set5 PSNR (see :data:`DEFAULT_BF16_MODE`);
* **torch.compile** (inductor) is optional: on CPU it needs a C++ compiler and took ~1.5 minutes to compile
  RLFN-NTIRE for one shape, for ~1.15× over eager on the loaded machine: far below OpenVINO;
* **ONNX Runtime** with every graph optimization (``ORT_ENABLE_ALL``: NCHWc layout, conv+activation fusion). Its
  MLAS ``Sigmoid`` is a polynomial approximation with an absolute error up to ~1.3e-7 for strongly negative
  inputs (a relative error of several hundred percent there); ESA gates ``x * sigmoid(g)`` with ``x`` in the
  [0, 255] feature range of the RFDN/RLFN weights, which magnifies it to ~1e-4 on the output of the official
  RLFN-NTIRE weights (7.6e-5 to 1.2e-4 measured: not fp32-exact). The runner therefore rewrites each ``Sigmoid``
  of its in-memory copy of the graph as ``1 / (1 + exp(-x))``, whose ORT kernels are exact to an ulp (2.5e-6
  then), for ~10% of ORT's runtime; ``exact_sigmoid=False`` keeps the approximation. The exported file itself
  keeps the standard op;
* **OpenVINO** reads the same ONNX file. On CPUs with bf16 support it picks bf16 *by itself* (the default
  ``INFERENCE_PRECISION_HINT`` is bf16 on this EPYC too, without AMX), so the exact path asks for ``f32``
  explicitly; ``bf16`` is the fast path. Latency hints: one stream, ``INFERENCE_NUM_THREADS`` = the thread count.
  A model compiled for the input's static shape is ~20% faster than the dynamic-shape one, so a shape seen a second
  time (video frames, tiles, a benchmark loop) gets its own static compilation, cached
  (:class:`OpenVINORunner`'s ``static_after``).

Thread count: one ``threads`` parameter for all backends (``torch.set_num_threads`` around each call for torch,
``intra_op_num_threads`` for ORT, ``INFERENCE_NUM_THREADS`` for OpenVINO); ``None`` is each runtime's default
(all cores for ORT and OpenVINO, torch's current setting for torch).
"""

from __future__ import annotations

import collections
import contextlib
import copy
import importlib.util
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..device import PRECISIONS, resolve_device
from ..errors import EsrkitError, InputError
from ..models.registry import Capabilities, ModelConfig, capabilities_of, get_config, reparameterize

__all__ = [
    "BACKENDS",
    "DEFAULT_BF16_MODE",
    "DEFAULT_OPSET",
    "BackendError",
    "BackendNotInstalledError",
    "BackendRunner",
    "ExportError",
    "ONNXRuntimeRunner",
    "OpenVINORunner",
    "PrecisionNotSupportedError",
    "TorchRunner",
    "UnknownBackendError",
    "available_backends",
    "backend_installed",
    "cpu_features",
    "export_onnx",
    "make_runner",
    "runner_for_upscaler",
    "supported_precisions",
]

BACKENDS = ("torch", "onnxruntime", "openvino")

# The import name of each backend's package and what to install (pip name) when it is missing.
_PACKAGES = {"torch": ("torch", "torch"), "onnxruntime": ("onnxruntime", "onnxruntime"),
             "openvino": ("openvino", "openvino")}

# Opset 17 (ONNX 1.12, 2022): read by every ONNX Runtime and OpenVINO release of the last years (ORT since 1.12),
# and inside what torch's TorchScript-based exporter writes (opsets 7 to 20 in torch 2.13). Nothing the zoo uses
# needs a newer one: Conv, DepthToSpace (pixel shuffle, CRD mode, opset ≥ 11), Resize with half-pixel bilinear
# (opset ≥ 11, what F.interpolate(align_corners=False) means), MaxPool, ReduceMean; so the oldest widely read
# opset that has them all with today's semantics is the safest file to hand to another runtime.
DEFAULT_OPSET = 17

# "cast" converts weights and input to bf16 once; "autocast" keeps fp32 weights and lets torch cast per op. Measured
# on Set5 ×4 Y-PSNR with the official weights (ΔdB vs fp32, cast / autocast): RLFN-NTIRE -0.0063 / -0.0063, RFDN
# -0.0064 / -0.0064, IMDN -0.0086 / -0.0086, LKDN-S -0.0593 / -0.0590, and the same speed at 256×256 on an
# AVX512-BF16 CPU: the convolutions run in bf16 either way. Cast is the default because it is what a deployment
# ships (half the weight memory, no per-call weight casts) and what esrkit's profiler times.
DEFAULT_BF16_MODE = "cast"


# ------------------------------------------------------------------------------------------------- errors


class BackendError(InputError):
    """A backend cannot run as asked (base class; the CLI turns it into one line and exit code 2)."""


class UnknownBackendError(BackendError):
    """The backend name is not one of :data:`BACKENDS`."""


class BackendNotInstalledError(BackendError):
    """The backend's Python package is not installed."""


class PrecisionNotSupportedError(BackendError):
    """The backend, or this CPU, cannot run the requested precision natively."""


class ExportError(EsrkitError, RuntimeError):
    """The model could not be exported to ONNX (an operation the exporter does not know, a shape it bakes in)."""


# ------------------------------------------------------------------------------------------ capabilities


def cpu_features() -> frozenset[str]:
    """Instruction-set features of this CPU, lower case (``avx512_bf16``, ``amx_bf16``, ``avx512_fp16``, ...).

    ``torch.cpu.get_capabilities()`` (cpuinfo-based, torch ≥ 2.6) is asked first because it sees what the
    process may use; ``/proc/cpuinfo``'s flags are the fallback. ``torch.backends.cpu.get_cpu_capability()`` only
    names the widest SIMD level (``AVX512``) and says nothing about bf16, so it is not enough on its own.
    """
    getter = getattr(getattr(torch, "cpu", None), "get_capabilities", None)
    if callable(getter):
        with contextlib.suppress(Exception):
            caps = getter()
            return frozenset(k.lower() for k, v in caps.items() if v is True)
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def _cpu_runs_natively(precision: str) -> bool:
    """Whether this CPU has dot-product instructions for ``precision`` (fp32 always)."""
    if precision == "fp32":
        return True
    feats = cpu_features()
    if precision == "bf16":
        return bool({"avx512_bf16", "amx_bf16"} & feats)
    if precision == "fp16":
        return bool({"avx512_fp16", "amx_fp16"} & feats)
    return False


def backend_installed(backend: str) -> bool:
    """Whether the Python package behind ``backend`` can be imported (without importing it)."""
    module, _ = _PACKAGES[_check_backend(backend)]
    return importlib.util.find_spec(module) is not None


def available_backends() -> list[str]:
    """The backends of :data:`BACKENDS` whose package is installed, in that order."""
    return [b for b in BACKENDS if backend_installed(b)]


def _check_backend(backend: str) -> str:
    name = str(backend).strip().lower()
    if name not in BACKENDS:
        raise UnknownBackendError(f"unknown backend {backend!r}; use {', '.join(BACKENDS)}", param="backend")
    return name


def _check_precision(precision: str) -> str:
    name = str(precision).strip().lower()
    if name not in PRECISIONS:
        raise InputError(f"expected one of {', '.join(PRECISIONS)}, got {precision!r}", param="precision")
    return name


def _require(backend: str) -> Any:
    """Import the backend's package or raise :class:`BackendNotInstalledError` naming what to install."""
    module, pip_name = _PACKAGES[backend]
    if importlib.util.find_spec(module) is None:
        raise BackendNotInstalledError(f"{backend} is not installed (pip install {pip_name})", param="backend")
    return __import__(module)


def _openvino_capabilities() -> frozenset[str]:
    ov = _require("openvino")
    return frozenset(str(c).upper() for c in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def supported_precisions(backend: str, device: str | torch.device | None = "cpu") -> tuple[str, ...]:
    """Precisions ``backend`` runs natively on ``device`` of this machine, fp32 first.

    * torch on CPU: bf16 with AVX512-BF16/AMX-BF16, fp16 with AVX512-FP16/AMX-FP16; on CUDA fp16 always and bf16
      where the GPU has it;
    * ONNX Runtime (CPU execution provider): fp32 only; its CPU kernels have no bf16 convolution;
    * OpenVINO (CPU plugin): what the plugin's ``OPTIMIZATION_CAPABILITIES`` lists (``BF16``, ``FP16``).

    ONNX Runtime and OpenVINO run on the CPU only here (``device`` must be the CPU); raises
    :class:`BackendNotInstalledError` when the package is missing.
    """
    name = _check_backend(backend)
    dev = resolve_device(device)
    if name == "torch":
        if dev.type == "cuda":
            return ("fp32", "fp16", "bf16") if torch.cuda.is_bf16_supported() else ("fp32", "fp16")
        return tuple(p for p in ("fp32", "bf16", "fp16") if _cpu_runs_natively(p))
    if dev.type != "cpu":
        raise BackendError(f"{name} runs on the CPU in esrkit; use --device cpu or the torch backend",
                           param="backend")
    if name == "onnxruntime":
        _require("onnxruntime")
        return ("fp32",)
    caps = _openvino_capabilities()
    return tuple(p for p, flag in (("fp32", "FP32"), ("bf16", "BF16"), ("fp16", "FP16")) if p == "fp32" or flag in caps)


def _check_supported(backend: str, precision: str, device: torch.device) -> None:
    allowed = supported_precisions(backend, device)
    if precision not in allowed:
        where = "this GPU" if device.type == "cuda" else "this CPU"
        raise PrecisionNotSupportedError(f"{backend} cannot run {precision} natively on {where} (supported: "
                                         f"{', '.join(allowed)})", param="precision")


# ----------------------------------------------------------------------------------------------- export


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
    from ..fileio import atomic_path

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
            raise ExportError(f"cannot export {label} to ONNX: {_first_line(exc)}") from exc
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


def _first_line(exc: BaseException) -> str:
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
                          f"{x.shape[-2]}x{x.shape[-1]}: {_first_line(exc)})") from exc
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


@contextlib.contextmanager
def _onnx_file(model: nn.Module, onnx_path: str | os.PathLike[str] | None, opset: int) -> Iterator[Path]:
    """The ONNX file a runner loads: the caller's, or a fresh export in a temporary folder removed afterwards."""
    if onnx_path is not None:
        path = Path(onnx_path)
        if not path.is_file():
            raise InputError(f"no such file: {path}", param="onnx_path")
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="esrkit-onnx-") as tmp:
        # ``model`` is already in its deploy form when it comes from Upscaler.from_name; folding again is a no-op
        yield export_onnx(model, Path(tmp) / "model.onnx", opset=opset, deploy=True)


def _exact_sigmoid(model_bytes: bytes) -> bytes:
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


# ----------------------------------------------------------------------------------------------- runners


class BackendRunner(nn.Module):
    """Base of the runners: an esrkit-model-shaped module (NCHW float32 [0, 1] → NCHW float32) with no parameters.

    It copies the wrapped model's ``esrkit_config`` (so :func:`esrkit.models.registry.capabilities_of` and
    ``info_of`` answer for the runner exactly as for the model) and keeps its :class:`Capabilities` in
    ``capabilities``. ``backend``/``precision``/``threads`` say what runs. Having no parameters matters:
    ``Upscaler`` calls ``model.to(device, dtype)``, which must not undo a runner's own precision.
    """

    backend = "?"

    def __init__(self, model: nn.Module, precision: str, threads: int | None) -> None:
        super().__init__()
        if threads is not None and int(threads) < 1:
            raise InputError(f"must be >= 1, got {threads}", param="threads")
        config = get_config(model)
        if config is not None:
            self.esrkit_config = copy.deepcopy(config)
        self.capabilities = capabilities_of(model)
        self.precision = precision
        self.threads = None if threads is None else int(threads)

    def describe(self) -> str:
        """A short label such as ``openvino bf16`` (what tables print)."""
        return f"{self.backend} {self.precision}"

    def extra_repr(self) -> str:
        return f"precision={self.precision}, threads={self.threads}"


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    if threads is None or torch.get_num_threads() == threads:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class TorchRunner(BackendRunner):
    """PyTorch with the deploy form, channels-last memory, bf16/fp16 (cast or autocast) and optional compile.

    The wrapped network is held outside the module tree (``runner.net``), so the runner itself has no parameters
    and a later ``.to(dtype)`` by the caller cannot cast it back. Output: float32 (a view in channels-last memory
    when ``channels_last``; its values are what matter, ``.contiguous()`` gives NCHW memory).
    """

    backend = "torch"

    def __init__(self, model: nn.Module, *, precision: str = "fp32", threads: int | None = None,
                 device: str | torch.device | None = "cpu", channels_last: bool = True, compile: bool = False,
                 bf16_mode: str = DEFAULT_BF16_MODE) -> None:
        super().__init__(model, precision, threads)
        if bf16_mode not in ("cast", "autocast"):
            raise InputError(f"expected cast or autocast, got {bf16_mode!r}", param="bf16_mode")
        self.device = resolve_device(device)
        self.dtype = PRECISIONS[precision]
        self.channels_last = channels_last
        self.compiled = compile
        self.autocast = self.dtype != torch.float32 and bf16_mode == "autocast"
        net = copy.deepcopy(model).eval().to(self.device)
        if self.dtype != torch.float32 and not self.autocast:
            net = net.to(self.dtype)
        if channels_last:
            net = net.to(memory_format=torch.channels_last)
        if compile:
            net = torch.compile(net)  # compiles lazily at the first forward of each new shape
        object.__setattr__(self, "net", net)  # not a registered submodule, on purpose (see the class docstring)
        self._input_dtype = torch.float32 if self.autocast else self.dtype

    def describe(self) -> str:
        extras = [e for e, on in (("channels-last", self.channels_last), ("compile", self.compiled),
                                  ("autocast", self.autocast)) if on]
        return f"torch {self.precision}" + (f" ({', '.join(extras)})" if extras else "")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, self._input_dtype)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        ctx = (torch.autocast(self.device.type, dtype=self.dtype) if self.autocast else contextlib.nullcontext())
        with _torch_threads(self.threads if self.device.type == "cpu" else None), ctx:
            out = self.net(x)  # type: ignore[operator]
        return out.float()


def _to_numpy(x: torch.Tensor) -> Any:
    return x.detach().to("cpu", torch.float32).contiguous().numpy()


class ONNXRuntimeRunner(BackendRunner):
    """ONNX Runtime (CPU execution provider) on the model's ONNX export, fp32 only.

    Session settings: every graph optimization (``ORT_ENABLE_ALL``: constant folding, conv+activation fusion, the
    NCHWc layout transform), sequential execution with one inter-op thread and ``threads`` intra-op threads;
    ``Sigmoid`` rewritten exactly (module docstring; the rewrite needs the ``onnx`` package, without which ORT's
    approximation stays). ``onnx_path`` runs an existing export instead of exporting
    ``model`` (which then only supplies the config and capabilities).
    """

    backend = "onnxruntime"

    def __init__(self, model: nn.Module, *, precision: str = "fp32", threads: int | None = None,
                 onnx_path: str | os.PathLike[str] | None = None, opset: int = DEFAULT_OPSET,
                 exact_sigmoid: bool = True) -> None:
        super().__init__(model, precision, threads)
        ort = _require("onnxruntime")
        _check_supported(self.backend, precision, torch.device("cpu"))
        with _onnx_file(model, onnx_path, opset) as path:
            data = path.read_bytes()
        if exact_sigmoid and importlib.util.find_spec("onnx") is not None:
            data = _exact_sigmoid(data)
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
        (out,) = self.session.run(None, {self._input: _to_numpy(x)})
        return torch.from_numpy(out)


_OV_PRECISION = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}


class OpenVINORunner(BackendRunner):
    """OpenVINO (CPU plugin) reading the model's ONNX export.

    ``precision`` becomes ``INFERENCE_PRECISION_HINT`` (``f32``/``bf16``/``f16``), always set explicitly: on a CPU
    with bf16 the plugin's default is bf16, which would make a "fp32" run inexact. Latency configuration: one
    stream, ``PERFORMANCE_HINT=LATENCY``, ``INFERENCE_NUM_THREADS=threads``.

    Shapes: the model is compiled once with dynamic batch/height/width; a shape seen ``static_after`` times gets
    a compilation for exactly that shape (faster kernels, measured ~20% at 256×256), kept in an LRU cache of
    ``max_static`` entries. ``static_after=None`` always runs the dynamic model; 1 compiles every new shape.
    """

    backend = "openvino"

    def __init__(self, model: nn.Module, *, precision: str = "fp32", threads: int | None = None,
                 onnx_path: str | os.PathLike[str] | None = None, opset: int = DEFAULT_OPSET,
                 static_after: int | None = 2, max_static: int = 4) -> None:
        super().__init__(model, precision, threads)
        ov = _require("openvino")
        _check_supported(self.backend, precision, torch.device("cpu"))
        if static_after is not None and static_after < 1:
            raise InputError(f"must be >= 1 or None, got {static_after}", param="static_after")
        self._core = ov.Core()
        with _onnx_file(model, onnx_path, opset) as path:
            self._model = self._core.read_model(str(path))  # read fully: the temporary file may go now
        self._config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": _OV_PRECISION[precision],
                                        "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1"}
        if self.threads is not None:
            self._config["INFERENCE_NUM_THREADS"] = self.threads
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
        array = _to_numpy(x)
        request = self._request(tuple(array.shape))
        request.infer({0: array})
        return torch.from_numpy(request.get_output_tensor(0).data.copy())  # the request reuses its buffer


# ----------------------------------------------------------------------------------------------- factory


def make_runner(model: nn.Module, backend: str = "torch", *, precision: str = "fp32", threads: int | None = None,
                device: str | torch.device | None = "cpu", **options: Any) -> BackendRunner:
    """Wrap ``model`` (ideally already in deploy form) for ``backend`` at ``precision`` with ``threads``.

    ``options`` go to the runner class: torch ``channels_last``, ``compile``, ``bf16_mode``; ONNX Runtime
    ``onnx_path``, ``opset``, ``exact_sigmoid``; OpenVINO ``onnx_path``, ``opset``, ``static_after``,
    ``max_static``. Typed errors: :class:`UnknownBackendError`, :class:`BackendNotInstalledError`,
    :class:`PrecisionNotSupportedError` (checked before any export), :class:`ExportError`.
    """
    name = _check_backend(backend)
    prec = _check_precision(precision)
    dev = resolve_device(device)
    _require(name)
    _check_supported(name, prec, dev)
    allowed = {"torch": {"channels_last", "compile", "bf16_mode"},
               "onnxruntime": {"onnx_path", "opset", "exact_sigmoid"},
               "openvino": {"onnx_path", "opset", "static_after", "max_static"}}[name]
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise InputError(f"{name} has no option {', '.join(unknown)}; valid: {', '.join(sorted(allowed))}",
                         param="backend")
    if name == "torch":
        return TorchRunner(model, precision=prec, threads=threads, device=dev, **options)
    if name == "onnxruntime":
        return ONNXRuntimeRunner(model, precision=prec, threads=threads, **options)
    return OpenVINORunner(model, precision=prec, threads=threads, **options)


_RUNNER_KEYS = ("threads", "channels_last", "compile", "bf16_mode", "onnx_path", "opset", "exact_sigmoid",
                "static_after", "max_static")


def runner_for_upscaler(model: nn.Module, backend: str,
                        kwargs: Mapping[str, Any]) -> tuple[BackendRunner, dict[str, Any]]:
    """The ``Upscaler.from_name(..., backend=...)`` hook: wrap ``model`` and return the Upscaler's own kwargs.

    The runner owns the precision, so the Upscaler is told ``fp32`` (it hands the runner float32 tensors, and its
    cast would otherwise quantize the input to bf16 before the runtime sees it); the runner's ``precision`` says
    what runs. ``threads`` and the runner options are taken out of ``kwargs``; ``device`` is shared. Warns, like
    the Upscaler, when the precision is not marked safe for the model.
    """
    rest = dict(kwargs)
    precision = _check_precision(str(rest.pop("precision", "fp32")))
    options = {k: rest.pop(k) for k in _RUNNER_KEYS if k in rest}
    runner = make_runner(model, backend, precision=precision, device=rest.get("device", "cpu"), **options)
    caps = rest.get("capabilities") or runner.capabilities
    if not caps.safe_precision(precision):
        warnings.warn(f"{precision} is not marked safe for this model (its registry capabilities); "
                      "expect lower fidelity than fp32", RuntimeWarning, stacklevel=3)
    rest["precision"] = "fp32"
    return runner, rest
