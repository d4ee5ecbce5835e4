"""Recognise an official checkpoint's architecture from its state dict alone.

Each family leaves a signature in its key names (``conv_1``/``block_1`` for RLFN, ``fea_conv.pw`` for LKDN …) and
its hyper-parameters in tensor shapes: width is the first conv's output channels, depth is the number of block
prefixes, the scale is ``sqrt(out_channels / 3)`` of the pixel-shuffle conv, and re-parameterization branches
(``rep1x1``, ``upsampler.conv1``) tell a train-time form from a deploy form. Detection returns a
:class:`~esrkit.models.registry.ModelConfig`; the caller builds and strictly loads it, so a wrong guess can never
load silently.

When the configuration matches a registered variant's defaults (e.g. 46 channels, 4 blocks, mid 48 → ``rlfn_ntire``)
that name is used; otherwise the family's base name with explicit hyper-parameters.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping

import torch

from .models.registry import ModelConfig, create_model, list_models, model_info, reparameterize

Shapes = Mapping[str, tuple[int, ...]]


def _shapes(state: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items()}


def _count(shapes: Shapes, pattern: str) -> int:
    """Number of distinct integers ``i`` for which some key matches ``pattern`` with ``{i}`` = i."""
    rx = re.compile(pattern.replace(".", r"\.").replace("{i}", r"(\d+)"))
    return len({m.group(1) for k in shapes if (m := rx.fullmatch(k))})


def _scale_from_channels(out_channels: int, colors: int = 3) -> int | None:
    s = math.isqrt(out_channels // colors)
    return s if s * s * colors == out_channels else None


def _pick(family_names: tuple[str, ...], scale: int, hparams: dict[str, object], form: str = "train") -> ModelConfig:
    """The registered variant whose defaults equal ``hparams`` (and that supports ``scale``), else the first name
    (the family's base model) with ``hparams`` spelled out."""
    for name in family_names:
        info = model_info(name)
        defaults = {k: info.defaults.get(k) for k in hparams}
        if defaults == hparams and scale in info.scales:
            return ModelConfig(name, scale, {}, form)
    return ModelConfig(family_names[0], scale, hparams, form)


def _msrresnet(s: Shapes) -> ModelConfig | None:
    if "conv_first.weight" not in s or "recon_trunk.0.conv1.weight" not in s:
        return None
    nf = s["conv_first.weight"][0]
    up = s["upconv1.weight"][0]
    scale = 4 if "upconv2.weight" in s else {4 * nf: 2, 9 * nf: 3}.get(up)
    if scale is None:
        return None
    return _pick(("msrresnet",), scale, {"num_feat": nf, "num_block": _count(s, "recon_trunk.{i}.conv1.weight")})


def _imdn(s: Shapes) -> ModelConfig | None:
    if "model.0.weight" not in s or "model.1.sub.0.conv1.0.weight" not in s:
        return None
    nf = s["model.0.weight"][0]
    last = max((k for k in s if re.fullmatch(r"model\.\d+\.weight", k)), key=lambda k: int(k.split(".")[1]))
    scale = _scale_from_channels(s[last][0])
    if scale is None:
        return None
    hparams = {"num_feat": nf, "num_block": _count(s, "model.1.sub.{i}.conv1.0.weight"),
               "distill_rate": s["model.1.sub.0.conv4.weight"][0] / nf,
               "use_cca": any(".cca." in k for k in s)}
    return _pick(("imdn",), scale, hparams)


def _rfdn(s: Shapes) -> ModelConfig | None:
    if "fea_conv.weight" not in s or "B1.c1_d.weight" not in s or "upsampler.0.weight" not in s:
        return None
    scale = _scale_from_channels(s["upsampler.0.weight"][0])
    if scale is None:
        return None
    nf = s["fea_conv.weight"][0]
    esa = s["B1.esa.conv1.weight"][0]
    hparams = {"num_feat": nf, "num_block": _count(s, "B{i}.c1_d.weight"),
               "esa_channels": None if esa == nf // 4 else esa}
    return _pick(("rfdn",), scale, hparams)


def _rlfn(s: Shapes) -> ModelConfig | None:
    if "conv_1.weight" not in s or "block_1.c1_r.weight" not in s or "upsampler.0.weight" not in s:
        return None
    scale = _scale_from_channels(s["upsampler.0.weight"][0])
    if scale is None:
        return None
    nf, mid = s["conv_1.weight"][0], s["block_1.c1_r.weight"][0]
    hparams = {"num_feat": nf, "num_block": _count(s, "block_{i}.c1_r.weight"),
               "mid_channels": None if mid == nf else mid, "esa_channels": s["block_1.esa.conv1.weight"][0]}
    return _pick(("rlfn", "rlfn_s", "rlfn_ntire"), scale, hparams)


def _lkdn(s: Shapes) -> ModelConfig | None:
    if "fea_conv.pw.weight" not in s or "B1.c1_d.weight" not in s:
        return None
    rep_conv = "B1.c1_r.rep1x1.weight" in s
    rep_up = "upsampler.conv3.weight" in s
    up_key = "upsampler.conv3.weight" if rep_up else "upsampler.0.weight"
    if up_key not in s:
        return None
    scale = _scale_from_channels(s[up_key][0])
    if scale is None:
        return None
    shape = {"num_feat": s["fea_conv.pw.weight"][0], "num_atten": s["B1.atten.pointwise.weight"][0],
             "num_block": _count(s, "B{i}.c1_d.weight"), "num_in": s["fea_conv.pw.weight"][1] // 3}
    hparams = {**shape, "conv": "BSConvU_rep" if rep_conv else "BSConvU",
               "upsampler": "pixelshuffle_rep" if rep_up else "pixelshuffledirect"}
    if not rep_conv and not rep_up:
        # LKDN-S after re-parameterization has plain LKDN's layout; its widths tell them apart.
        lkdn_s = model_info("lkdn_s").defaults
        if all(lkdn_s[k] == v for k, v in shape.items()) and scale in model_info("lkdn_s").scales:
            return ModelConfig("lkdn_s", scale, {}, "deploy")
    return _pick(("lkdn", "lkdn_s"), scale, hparams)


DETECTORS: tuple[Callable[[Shapes], ModelConfig | None], ...] = (_msrresnet, _imdn, _rfdn, _rlfn, _lkdn)


def detect_layout(state: Mapping[str, torch.Tensor]) -> ModelConfig | None:
    """The model configuration a state dict belongs to, or None when no family recognises it."""
    shapes = _shapes(state)
    for detector in DETECTORS:
        try:
            config = detector(shapes)
        except (KeyError, IndexError, ZeroDivisionError, ValueError):
            config = None  # a family's signature matched but a tensor it needs is absent or odd
        if config is not None:
            return config
    return None


def known_layouts() -> list[tuple[str, dict[str, tuple[int, ...]]]]:
    """(label, key → shape) of every registered model at its scales, in train and (if different) deploy form."""
    layouts = []
    for name in list_models():
        info = model_info(name)
        if info.family == "baseline":
            continue
        for scale in info.scales:
            model = create_model(name, scale=scale)
            layouts.append((f"{name} ×{scale}", _shapes(model.state_dict())))
            if info.deploy != "none":
                layouts.append((f"{name} ×{scale} (deploy)", _shapes(reparameterize(model).state_dict())))
    return layouts


def nearest_layout_message(state: Mapping[str, torch.Tensor], limit: int = 5) -> str:
    """Describe the closest known layout and how ``state`` differs from it (for error messages)."""
    shapes = _shapes(state)

    def score(layout: dict[str, tuple[int, ...]]) -> float:
        same = sum(1 for k, v in shapes.items() if layout.get(k) == v)
        return same / len(set(shapes) | set(layout))

    label, layout = max(known_layouts(), key=lambda item: score(item[1]))
    missing = [k for k in layout if k not in shapes]
    unexpected = [k for k in shapes if k not in layout]
    wrong = [k for k in shapes if k in layout and layout[k] != shapes[k]]
    parts = [f"nearest known layout is {label} ({score(layout):.0%} of keys match)"]
    for what, keys in (("missing", missing), ("unexpected", unexpected), ("different shape", wrong)):
        if keys:
            more = f" … +{len(keys) - limit}" if len(keys) > limit else ""
            parts.append(f"{what}: {', '.join(keys[:limit])}{more}")
    return "; ".join(parts)
