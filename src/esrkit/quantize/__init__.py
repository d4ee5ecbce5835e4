"""Int8 deployment: post-training quantization of esrkit models for OpenVINO and ONNX Runtime.

* :mod:`.calibration`: LR patches from folders of photos (and held-out check pairs);
* :mod:`.graph`: which operations stay in fp32 (a structural rule found by per-layer sensitivity);
* :mod:`.recipe`: the NNCF settings and why (the measurements of naive vs esrkit's PTQ are in its docstring);
* :mod:`.pipeline`: :func:`quantize_model`, what ``esrkit quantize`` runs;
* :mod:`.runtime`: the file formats and their metadata, and the hook through which ``Upscaler.from_name`` (so
  ``upscale``, ``evaluate``, ``profile``, ``recommend``) runs a quantized file given as ``--weights``.

Importing this package imports neither NNCF nor a runtime; they load when used.
"""

from __future__ import annotations

from .calibration import CalibrationSet, load_calibration
from .pipeline import QuantizeResult, quantize_model, source_weights
from .runtime import is_quantized_path, load_quantized, make_int8_runner, read_metadata

__all__ = ["CalibrationSet", "QuantizeResult", "is_quantized_path", "load_calibration", "load_quantized",
           "make_int8_runner", "quantize_model", "read_metadata", "source_weights"]
