"""Model-complexity counters that reproduce the efficient-SR challenge tool.

The AIM 2020, NTIRE 2022 and NTIRE 2023 efficient-SR challenges publish #Params, FLOPs, #Activations and #Conv
computed by one script (KAIR's ``utils_modelsummary``, copied as ``utils/model_summary.py`` into the NTIRE
repos). To compare an esrkit model with a published row, our numbers must follow that script's rules, quirks
included, rather than some "more correct" definition. The rules, re-derived from the published figures
(MSRResNet 166.36 G only comes out when its LeakyReLU *modules* are counted, its functional ReLUs are not,
and conv biases are not):

* forward hooks on ``nn.Module`` instances, one forward pass of a ``1×C×H×W`` LR input in eval mode; a module
  called twice is counted twice (hooks fire per call). Functional ops (``F.relu``, ``F.interpolate``,
  ``x * y``, pooling, pixel shuffle, sigmoid) are invisible, exactly as in the tool;
* **FLOPs** (really multiply-accumulates): ``Conv2d``/``ConvTranspose2d`` add
  ``N · prod(out spatial) · prod(kernel) · C_in · C_out / groups`` (no bias term; the transposed conv also
  uses the *output* positions, a quirk we keep); ``ReLU``/``PReLU``/``ELU``/``LeakyReLU``/``ReLU6``
  modules add the number of output elements; ``BatchNorm2d`` adds the output elements, twice when affine;
  ``Linear`` adds ``in.shape[0] · in.shape[1] · out.shape[1]`` (1-D input: ``in.shape[0] · out.shape[0]``),
  which is wrong for 3-D token tensors but is the published rule. GELU, SiLU, Sigmoid, LayerNorm count
  nothing;
* **#Activations**: elements of every ``Conv2d``/``ConvTranspose2d`` output, per call;
* **#Conv**: number of such calls (not of modules);
* **#Params**: ``sum(p.numel())`` over all parameters (trainable or not), like the challenges'
  ``test_demo.py``.

The NTIRE 2024 copy of the script also counts ``Conv1d``, ``ConvTranspose1d`` and ``Linear`` outputs as
activations (and calls); :data:`NTIRE2024_RULES` selects that variant.

Besides the tool's FLOPs we report ``conv_flops``: the same sum restricted to conv/linear layers (no
element-wise activation or BatchNorm terms). Some later tables use that convention (the AIS 2024 survey
lists IMDN at 58.43 G, while AIM 2020 and NTIRE 2022 list the same network at 58.53 G); reporting both lets
either be checked.

By default the pass runs on a ``meta``-device copy of the model, which gives every shape without computing
anything, so a 256×256 count of MSRResNet is instant. Models whose forward depends on tensor *values* cannot
run on meta tensors; those fall back to a real forward on the model's own device.

Consequence for model code: because only module calls are seen, a zoo model reproduces its published row only
if it uses ``nn.ReLU``-family *modules* exactly where the authors' code did and functional calls where they
did (the layer choice changes no weights, only what this tool counts).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
from torch import nn

__all__ = [
    "AIM2020_RULES",
    "COUNTING_RULES",
    "NTIRE2024_RULES",
    "ComplexityCounts",
    "CountingRules",
    "count_complexity",
    "count_params",
]


@dataclass(frozen=True)
class CountingRules:
    """Which module types each counter looks at (one instance per version of the challenge tool)."""

    name: str
    conv_types: tuple[type[nn.Module], ...]
    elementwise_types: tuple[type[nn.Module], ...]
    batchnorm_types: tuple[type[nn.Module], ...]
    linear_types: tuple[type[nn.Module], ...]
    activation_types: tuple[type[nn.Module], ...]


_ELEMENTWISE: tuple[type[nn.Module], ...] = (nn.ReLU, nn.PReLU, nn.ELU, nn.LeakyReLU, nn.ReLU6)

AIM2020_RULES = CountingRules(
    name="aim2020",
    conv_types=(nn.Conv2d, nn.ConvTranspose2d),
    elementwise_types=_ELEMENTWISE,
    batchnorm_types=(nn.BatchNorm2d,),
    linear_types=(nn.Linear,),
    activation_types=(nn.Conv2d, nn.ConvTranspose2d),
)
"""KAIR 2020 script, used unchanged by AIM 2020, NTIRE 2022 and NTIRE 2023 (the default)."""

NTIRE2024_RULES = CountingRules(
    name="ntire2024",
    conv_types=AIM2020_RULES.conv_types,
    elementwise_types=_ELEMENTWISE,
    batchnorm_types=AIM2020_RULES.batchnorm_types,
    linear_types=AIM2020_RULES.linear_types,
    activation_types=(nn.Conv2d, nn.ConvTranspose2d, nn.Conv1d, nn.Linear, nn.ConvTranspose1d),
)
"""NTIRE 2024 copy: identical FLOPs, but 1-D convs and Linear layers also count as activations and as
#Conv."""

COUNTING_RULES: dict[str, CountingRules] = {r.name: r for r in (AIM2020_RULES, NTIRE2024_RULES)}
# "ntire" is what a user of the NTIRE 2022/2023 repos would type; it is the same script as AIM 2020.
COUNTING_RULES["ntire"] = AIM2020_RULES


@dataclass(frozen=True)
class ComplexityCounts:
    """Result of :func:`count_complexity`; all counts are exact integers."""

    params: int
    flops: int
    conv_flops: int
    activations: int
    num_conv: int
    input_shape: tuple[int, ...]
    rules: str
    method: str  # "meta" or "real": how the forward pass was run

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["input_shape"] = list(self.input_shape)
        return out


def count_params(model: nn.Module) -> int:
    """Total number of parameter elements, frozen ones included (what the challenges' ``test_demo.py``
    prints)."""
    return sum(p.numel() for p in model.parameters())


class _Tally:
    """Accumulates the per-call contributions of the hooked modules."""

    def __init__(self, rules: CountingRules) -> None:
        self.rules = rules
        self.flops = 0
        self.conv_flops = 0
        self.activations = 0
        self.num_conv = 0

    def hook(self, module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        if not isinstance(output, torch.Tensor):
            return
        rules = self.rules
        # The FLOP rules are checked in the tool's order (a subclass of two families is counted once).
        if isinstance(module, rules.conv_types):
            macs = _conv_macs(module, output)
            self.flops += macs
            self.conv_flops += macs
        elif isinstance(module, rules.elementwise_types):
            self.flops += output.numel()
        elif isinstance(module, rules.linear_types):
            first = inputs[0] if inputs else None
            if isinstance(first, torch.Tensor):
                macs = _linear_macs_tool_rule(first, output)
                self.flops += macs
                self.conv_flops += macs
        elif isinstance(module, rules.batchnorm_types):
            per_channel = output.shape[0] * math.prod(output.shape[2:])
            elems = per_channel * int(module.num_features)  # type: ignore[arg-type]
            self.flops += 2 * elems if getattr(module, "affine", False) else elems
        # Activations/#Conv use their own, independent type list.
        if isinstance(module, rules.activation_types):
            self.activations += output.numel()
            self.num_conv += 1


def _conv_macs(module: nn.Module, output: torch.Tensor) -> int:
    """MACs of one conv call: output positions × kernel area × C_in × C_out/groups, bias ignored.

    The positions are those of the *output* even for a transposed conv: that is how the published figures were
    produced, so we keep it rather than the textbook input-position formula.
    """
    positions = output.shape[0] * math.prod(output.shape[2:])
    kernel_area = math.prod(module.kernel_size)  # type: ignore[arg-type]
    in_ch = int(module.in_channels)  # type: ignore[arg-type]
    per_group_out = int(module.out_channels) // int(module.groups)  # type: ignore[arg-type]
    return positions * kernel_area * in_ch * per_group_out


def _linear_macs_tool_rule(inp: torch.Tensor, output: torch.Tensor) -> int:
    """The tool's Linear rule: first two dims of the input times the second dim of the output.

    Correct for ``(N, in_features)`` inputs. For ``(N, L, C)`` token tensors it multiplies N·L·L instead of
    N·L·C_in·C_out; we reproduce it so transformer entries match their published rows.
    """
    if inp.dim() == 1:
        return int(inp.shape[0]) * int(output.shape[0])
    return int(inp.shape[0]) * int(inp.shape[1]) * int(output.shape[1])


@contextmanager
def _hooked(model: nn.Module, tally: _Tally) -> Iterator[None]:
    rules = tally.rules
    watched = (
        rules.conv_types + rules.elementwise_types + rules.linear_types + rules.batchnorm_types
        + rules.activation_types
    )
    handles = [m.register_forward_hook(tally.hook) for m in model.modules() if isinstance(m, watched)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _run_once(model: nn.Module, x: torch.Tensor, rules: CountingRules) -> _Tally:
    tally = _Tally(rules)
    with _hooked(model, tally), torch.no_grad():
        model(x)
    return tally


def _model_device(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def count_complexity(
    model: nn.Module,
    input_size: tuple[int, int] = (256, 256),
    *,
    in_channels: int = 3,
    rules: CountingRules | str = AIM2020_RULES,
    method: Literal["auto", "meta", "real"] = "auto",
) -> ComplexityCounts:
    """Count #Params, FLOPs, #Activations and #Conv of ``model`` on a ``1×in_channels×H×W`` input.

    ``input_size`` is ``(H, W)`` of the LR input (the challenges use 256×256). ``method="auto"`` tries a
    meta-device pass and falls back to a real forward when the model needs actual values; ``"meta"`` and
    ``"real"`` force one. The model itself is never modified: the meta pass works on a deep copy, and a real
    pass only toggles eval mode for the duration (the tool counts in eval mode) and restores it.
    """
    if isinstance(rules, str):
        try:
            rules = COUNTING_RULES[rules]
        except KeyError:
            from ..errors import InputError

            raise InputError(f"unknown counting rules {rules!r}; known: {', '.join(sorted(COUNTING_RULES))}") from None
    height, width = (int(v) for v in input_size)
    if height <= 0 or width <= 0 or in_channels <= 0:
        from ..errors import InputError

        raise InputError(f"input size must be positive, got {in_channels}x{height}x{width}")
    shape = (1, in_channels, height, width)
    params = count_params(model)

    tally: _Tally | None = None
    used = method
    if method in ("auto", "meta"):
        try:
            meta_model = copy.deepcopy(model).to("meta").eval()
            tally = _run_once(meta_model, torch.empty(shape, device="meta"), rules)
            used = "meta"
        except (NotImplementedError, RuntimeError, TypeError, ValueError):
            # Data-dependent forwards (.item(), value-based branches) cannot run on meta tensors.
            if method == "meta":
                raise
            tally = None
    if tally is None:
        was_training = model.training
        model.eval()
        try:
            device = _model_device(model)
            dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
            x = torch.rand(shape, generator=torch.Generator().manual_seed(0)).to(device=device, dtype=dtype)
            tally = _run_once(model, x, rules)
        finally:
            model.train(was_training)
        used = "real"
    return ComplexityCounts(
        params=params,
        flops=tally.flops,
        conv_flops=tally.conv_flops,
        activations=tally.activations,
        num_conv=tally.num_conv,
        input_shape=shape,
        rules=rules.name,
        method=used,
    )
