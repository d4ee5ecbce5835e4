"""Quantization-aware fine-tuning: the model's int8 convolutions simulated in fp32 while it trains.

Post-training quantization (:mod:`esrkit.quantize.recipe`) leaves esrkit_x4 and RLFN-NTIRE 0.15–0.17 dB short on
Set5, a loss spread thinly over the int8 3×3 convolutions. Fine-tuning with that rounding in the forward pass lets
the weights settle where it costs least, which is what :func:`prepare_qat` sets up and ``esrkit train`` does in a
stage with ``quantize: true`` (``esrkit quantize --method qat`` runs such a stage, then the PTQ recipe).

What is simulated is exactly what the int8 model will run, so the fine-tuning optimises the right thing:

* **which convolutions**: those the PTQ recipe quantizes. The model is exported to ONNX and the recipe's graph
  rule (:func:`esrkit.quantize.graph.fp32_convolutions`) is applied to that graph; each ONNX ``Conv`` names its
  weight by the module's parameter name, which maps it back to the module. Element-wise operations stay fp32, as
  in the int8 model.
* **weights**: per output channel, symmetric, 7-bit, as NNCF's ``overflow_fix`` writes them for CPUs without VNNI:
  NNCF's 8-bit symmetric step ``max|w| / 127`` doubled, so the step is ``max|w| / 63.5`` and the integers run
  −64…64 (read back from the int8 IR esrkit quantize writes: int8 constants in −63…64 and per-channel scales of
  exactly ``max|w| / 63.5``). The grid has to be NNCF's to the digit: fine-tuned on a ``max|w| / 63`` grid first,
  RLFN-NTIRE's simulated Set5 was 32.06 dB but the OpenVINO int8 file gave 32.01, since weights the fine-tuning
  had settled on one grid's levels were rounded on the other's. The step follows the weights as they train, as
  the final PTQ recomputes it.
* **activations** (each quantized convolution's input): per tensor, symmetric, 8-bit, unsigned when the
  calibration never saw a negative value (levels 0…255, step ``r / 255``) and signed otherwise (−128…127, step
  ``r / 127``), ``r`` being the mean over calibration samples of each sample's largest magnitude (NNCF's default
  MEAN_MINMAX statistic). These ranges are measured once (:func:`calibrate`) and then fixed: PTQ recomputes them on
  the fine-tuned model from the same kind of data, and a range that drifts during training would only be
  simulating a different model.

The rounding is torch's own ``fake_quantize_per_channel_affine`` / ``fake_quantize_per_tensor_affine`` (the ops
behind ``torch.ao.quantization.FakeQuantize``), whose gradient is the straight-through estimator: identity inside
the range, zero for clipped values. :func:`strip_qat` gives back plain convolutions holding the fine-tuned weights,
so the result is an ordinary fp32 checkpoint that the PTQ recipe then quantizes.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from ..errors import InputError

__all__ = ["FakeQuantConv2d", "calibrate", "int8_convolutions", "is_prepared", "prepare_qat", "strip_qat"]

WEIGHT_QMIN, WEIGHT_QMAX = -64, 64  # NNCF's overflow fix: 7-bit weights (see the module docstring)
WEIGHT_STEP_DIVISOR = 63.5


class FakeQuantConv2d(nn.Module):
    """A convolution whose input and weights are rounded as the int8 model will round them (see the module
    docstring). ``conv`` keeps its parameter names, so the state dict differs from the plain model's only by the
    ``conv.`` prefix and the two activation-range buffers."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv
        self.register_buffer("act_range", torch.zeros(()))
        self.register_buffer("act_signed", torch.zeros((), dtype=torch.bool))
        self.calibrating = False
        self._seen_max: list[torch.Tensor] = []
        self._seen_negative = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.calibrating:
            flat = x.detach().float().flatten(1)
            self._seen_max.append(flat.abs().amax(dim=1))
            self._seen_negative = self._seen_negative or bool((flat < 0).any())
            return self.conv(x)
        return self.conv._conv_forward(self._quantize_input(x), self._quantized_weight(), self.conv.bias)

    def _quantize_input(self, x: torch.Tensor) -> torch.Tensor:
        r = float(self.act_range)
        if r <= 0.0:
            raise RuntimeError("FakeQuantConv2d used before calibrate(): its activation range is unset")
        if bool(self.act_signed):
            return torch.fake_quantize_per_tensor_affine(x, r / 127.0, 0, -128, 127)
        return torch.fake_quantize_per_tensor_affine(x, r / 255.0, 0, 0, 255)

    def _quantized_weight(self) -> torch.Tensor:
        w = self.conv.weight
        step = (w.detach().abs().amax(dim=(1, 2, 3)) / WEIGHT_STEP_DIVISOR).clamp_min(torch.finfo(w.dtype).tiny)
        zero = torch.zeros(w.shape[0], dtype=torch.int32, device=w.device)
        return torch.fake_quantize_per_channel_affine(w, step.float(), zero, 0, WEIGHT_QMIN, WEIGHT_QMAX)

    def finish_calibration(self) -> None:
        if not self._seen_max:
            raise InputError("a quantized convolution saw no calibration data (is it on the model's path?)",
                             param="calib")
        value = torch.cat(self._seen_max).mean()
        self.act_range.fill_(float(value) if float(value) > 0 else 1e-6)
        self.act_signed.fill_(self._seen_negative)
        self._seen_max, self._seen_negative, self.calibrating = [], False, False


def int8_convolutions(model: nn.Module) -> list[str]:
    """Module names of the convolutions the PTQ recipe runs in int8 (all convolutions less the fp32 islands of
    :func:`esrkit.quantize.graph.fp32_convolutions`), found on the model's ONNX export."""
    import onnx

    from ..infer.backends import export_onnx
    from .graph import fp32_convolutions, onnx_nodes

    convs = {name: m for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    with tempfile.TemporaryDirectory(prefix="esrkit-qat-") as tmp:
        proto = onnx.load(str(export_onnx(model, Path(tmp) / "model.onnx", deploy=False)))
    keep = set(fp32_convolutions(onnx_nodes(proto)))
    int8: list[str] = []
    for node in proto.graph.node:
        if node.op_type != "Conv":
            continue
        module = node.input[1].removesuffix(".weight") if len(node.input) > 1 else ""
        if module not in convs:
            raise InputError(f"cannot map the exported convolution {node.name} (weight {node.input[1]!r}) back to "
                             f"a module of {type(model).__name__}", param="weights")
        if node.name not in keep:
            int8.append(module)
    return int8


def prepare_qat(model: nn.Module, names: Iterable[str] | None = None) -> nn.Module:
    """Replace the convolutions ``names`` (default: :func:`int8_convolutions`) by :class:`FakeQuantConv2d`, in
    place; the model must then be calibrated (:func:`calibrate`) before it trains."""
    names = int8_convolutions(model) if names is None else list(names)
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        conv = getattr(parent, child)
        if not isinstance(conv, nn.Conv2d):
            raise InputError(f"{name} is not a convolution of {type(model).__name__}", param="weights")
        setattr(parent, child, FakeQuantConv2d(conv))
    return model


@torch.no_grad()
def calibrate(model: nn.Module, batches: Iterable[torch.Tensor]) -> None:
    """Measure every fake-quantized convolution's activation range on LR ``batches`` (a forward each)."""
    quantized = [m for m in model.modules() if isinstance(m, FakeQuantConv2d)]
    was_training = model.training
    model.eval()
    for m in quantized:
        m.calibrating = True
    try:
        for lr in batches:
            model(lr)
        for m in quantized:
            m.finish_calibration()
    finally:
        for m in quantized:
            m.calibrating = False
        model.train(was_training)


def is_prepared(model: nn.Module) -> bool:
    return any(isinstance(m, FakeQuantConv2d) for m in model.modules())


def strip_qat(model: nn.Module) -> nn.Module:
    """Put the plain convolutions (with their fine-tuned weights) back, in place."""
    for name, module in list(model.named_modules()):
        if isinstance(module, FakeQuantConv2d):
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, module.conv)
    return model
