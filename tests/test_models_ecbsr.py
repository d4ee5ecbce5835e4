"""ECBSR: published sizes, the official train/deploy layouts, detection, and the Y-channel wiring.

Sources of the expected values (none is computed by the code under test):

* the RLFN paper's Table 1 (``docs/notes/seed-rlfn.md``) lists ECBSR at 596K parameters (×2) and 603K (×4): the
  paper's largest model, ECBSR-M16C64;
* the official code (``xindongzhang/ECBSR``): ``models/plainsr.py`` is the deploy network (one 3×3 conv per
  block, PReLU with one slope per channel, a last conv to ``colors·s²``), ``models/ecb.py`` the train-time block,
  ``configs/*.yml`` use ``colors: 1``; the layer-by-layer counts and key names below are written from those files.

No ECBSR checkpoint is in esrkit's reference set, so there is no PSNR to reproduce here.
"""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch
from torch import nn

from esrkit.checkpoints import build_from_state_dict
from esrkit.data.resize import imresize
from esrkit.errors import InputError
from esrkit.layouts import claimants, detect_layout
from esrkit.models import create_model, get_config, model_info, reparameterize
from esrkit.models.ecbsr import detect
from helpers import shared_path

VARIANTS = {"ecbsr_m4c8": (4, 8), "ecbsr_m4c16": (4, 16), "ecbsr_m10c32": (10, 32), "ecbsr_m16c64": (16, 64)}


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def plainsr_layout(m: int, c: int, scale: int, colors: int = 1) -> dict[str, tuple[int, ...]]:
    """Key → shape of the official ``PlainSR(module_nums=m, channel_nums=c, act_type='prelu', scale, colors)``."""
    widths = [colors] + [c] * (m + 1) + [colors * scale * scale]
    layout: dict[str, tuple[int, ...]] = {}
    for i, (cin, cout) in enumerate(itertools.pairwise(widths)):
        layout[f"backbone.{i}.conv3x3.weight"] = (cout, cin, 3, 3)
        layout[f"backbone.{i}.conv3x3.bias"] = (cout,)
        if i < m + 1:  # every Conv3X3 but the last ('linear') has a PReLU(num_parameters=out)
            layout[f"backbone.{i}.act.weight"] = (cout,)
    return layout


def ecbsr_layout(m: int, c: int, scale: int, colors: int = 1) -> dict[str, tuple[int, ...]]:
    """Key → shape of the official train-time ``ECBSR`` (ECB with ``depth_multiplier=2.0``), masks included."""
    widths = [colors] + [c] * (m + 1) + [colors * scale * scale]
    layout: dict[str, tuple[int, ...]] = {}
    for i, (cin, cout) in enumerate(itertools.pairwise(widths)):
        p = f"backbone.{i}."
        layout[p + "conv3x3.weight"], layout[p + "conv3x3.bias"] = (cout, cin, 3, 3), (cout,)
        mid = int(cout * 2.0)
        layout |= {p + "conv1x1_3x3.k0": (mid, cin, 1, 1), p + "conv1x1_3x3.b0": (mid,),
                   p + "conv1x1_3x3.k1": (cout, mid, 3, 3), p + "conv1x1_3x3.b1": (cout,)}
        for edge in ("sbx", "sby", "lpl"):
            q = f"{p}conv1x1_{edge}."
            layout |= {q + "k0": (cout, cin, 1, 1), q + "b0": (cout,), q + "scale": (cout, 1, 1, 1),
                       q + "bias": (cout,), q + "mask": (cout, 1, 3, 3)}
        if i < m + 1:
            layout[p + "act.weight"] = (cout,)
    return layout


def _numel(layout: dict[str, tuple[int, ...]], skip_masks: bool = True) -> int:
    return sum(math.prod(v) for k, v in layout.items() if not (skip_masks and k.endswith(".mask")))


# ----------------------------------------------------------------------------------------------------
# Sizes
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("scale", "published"), [(2, 596_000), (4, 603_000)])
def test_m16c64_matches_the_published_size(scale: int, published: int) -> None:
    """RLFN paper Table 1: ECBSR 596K (×2) / 603K (×4), i.e. the deploy network; within 1 % (it is 0.2 %)."""
    deploy = reparameterize(create_model("ecbsr_m16c64", scale))
    assert abs(_count(deploy) - published) / published < 0.01


@pytest.mark.parametrize("name", sorted(VARIANTS))
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_sizes_follow_the_official_layouts(name: str, scale: int) -> None:
    """Deploy = official PlainSR; train = official ECBSR less its frozen masks (buffers here)."""
    m, c = VARIANTS[name]
    train = create_model(name, scale)
    assert _count(reparameterize(train)) == _numel(plainsr_layout(m, c, scale))
    assert _count(train) == _numel(ecbsr_layout(m, c, scale))


def test_one_colour_channel_is_what_the_published_size_counts() -> None:
    """With three channels M16C64 ×4 would have 621,424 parameters, 3 % over the published 603K: the published
    models are the Y-channel networks of the official configs (``colors: 1``)."""
    assert _numel(plainsr_layout(16, 64, 4, colors=3)) == 621_424
    assert _count(reparameterize(create_model("ecbsr_m16c64", 4, colors=3))) == 621_424


# ----------------------------------------------------------------------------------------------------
# Official layouts, detection, loading
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "scale"), [("ecbsr_m4c8", 2), ("ecbsr_m10c32", 3), ("ecbsr_m16c64", 4)])
def test_state_dicts_are_the_official_layouts(name: str, scale: int) -> None:
    m, c = VARIANTS[name]
    train = create_model(name, scale)
    assert _shapes(train) == ecbsr_layout(m, c, scale)
    assert _shapes(reparameterize(train)) == plainsr_layout(m, c, scale)


@pytest.mark.parametrize("deploy", [False, True], ids=["train", "deploy"])
@pytest.mark.parametrize(("name", "scale"), [("ecbsr_m4c8", 4), ("ecbsr_m4c16", 2), ("ecbsr_m10c32", 3)])
def test_official_layout_of_zeros_loads_as_its_variant(name: str, scale: int, deploy: bool) -> None:
    m, c = VARIANTS[name]
    layout = plainsr_layout(m, c, scale) if deploy else ecbsr_layout(m, c, scale)
    model = build_from_state_dict({k: torch.zeros(v) for k, v in layout.items()})
    config = get_config(model)
    assert (config.name, config.scale, config.form) == (name, scale, "deploy" if deploy else "train")
    assert config.hparams == model_info(name).defaults
    assert _shapes(model) == layout


def test_rgb_and_relu_layouts_are_detected_with_their_differences() -> None:
    rgb = plainsr_layout(4, 16, 3, colors=3)
    config = detect_layout({k: torch.zeros(v) for k, v in rgb.items()})
    assert (config.name, config.scale, config.hparams, config.form) == ("ecbsr_m4c16", 3, {"colors": 3}, "deploy")
    relu = {k: v for k, v in plainsr_layout(4, 16, 2).items() if not k.endswith("act.weight")}
    config = detect_layout({k: torch.zeros(v) for k, v in relu.items()})
    assert (config.name, config.hparams) == ("ecbsr_m4c16", {"act": "relu"})


def test_foreign_or_partial_layouts_are_not_claimed() -> None:
    layout = plainsr_layout(4, 8, 2)
    assert detect({**layout, "head.conv3x3.weight": (8, 3, 3, 3)}) is None  # CASR-like extra keys
    assert detect({k: v for k, v in layout.items() if not k.startswith("backbone.2.")}) is None  # a gap
    assert detect({k: v for k, v in layout.items() if k.startswith("backbone.0.")}) is None  # one block
    bad_scale = {**layout, "backbone.5.conv3x3.weight": (5, 8, 3, 3), "backbone.5.conv3x3.bias": (5,)}
    assert detect(bad_scale) is None


@pytest.mark.shared
@pytest.mark.parametrize("manifest", ["casr_ais2024_deploy_x4", "anunet_ais2024_deploy_x4"])
def test_ais2024_layouts_with_backbone_keys_are_not_ecbsr(manifest: str) -> None:
    """CASR's and ANUNet's deploy checkpoints also have ``backbone.{i}.`` keys; ECBSR must not claim them."""
    shapes = json.loads(shared_path("weights", "manifests", "zoo2", f"{manifest}.json").read_text())["state_dict"]
    state = {k: torch.zeros(v) for k, v in shapes.items()}
    assert detect({k: tuple(v) for k, v in shapes.items()}) is None
    assert "ecbsr" not in [family for family, _ in claimants(state)]


def test_folded_model_loads_into_the_official_deploy_layout_and_computes_the_same() -> None:
    """A train-form model with identity branches (which leave no keys) folds into the PlainSR layout; loading
    that state dict strictly gives a deploy model with the train model's output."""
    torch.manual_seed(0)
    train = create_model("ecbsr_m4c8", 3, with_idt=True)
    with torch.no_grad():
        for p in train.parameters():
            p.copy_(torch.randn_like(p) * 0.3 / max(1, p[0].numel()) ** 0.5)
    train.eval()
    state = reparameterize(train).state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == plainsr_layout(4, 8, 3)
    loaded = build_from_state_dict(state)
    assert get_config(loaded).form == "deploy"
    x = torch.rand(1, 3, 9, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref, out = train(x), loaded(x)
    assert (ref - out).abs().max() <= 1e-4  # on the 0..1 scale, after a ×255 network


# ----------------------------------------------------------------------------------------------------
# Y-channel wiring and the image-level residual
# ----------------------------------------------------------------------------------------------------


def _zeroed(name: str, scale: int, **hparams) -> nn.Module:
    model = create_model(name, scale, **hparams)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    return model.eval()


def _nearest(x: torch.Tensor, scale: int) -> torch.Tensor:
    return x.repeat_interleave(scale, dim=-2).repeat_interleave(scale, dim=-1)


def _ycbcr(rgb: torch.Tensor) -> torch.Tensor:
    """MATLAB ``rgb2ycbcr`` on [0, 1] RGB, in 0..255 units (the metrics' Y coefficients, plus Cb/Cr)."""
    m = torch.tensor([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]],
                     dtype=rgb.dtype)
    return torch.einsum("ij,njhw->nihw", m, rgb) + torch.tensor([16.0, 128.0, 128.0], dtype=rgb.dtype).reshape(
        1, 3, 1, 1)


def test_y_model_super_resolves_luma_and_resizes_chroma_bicubically() -> None:
    """With every weight zero the network adds nothing, leaving its image-level residual: the output's Y is the
    nearest-neighbour upscale of the input's Y (the official broadcast add + pixel shuffle), and Cb/Cr are
    MATLAB-bicubic upscales of the input's."""
    x = torch.rand(1, 3, 7, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    model = _zeroed("ecbsr_m4c8", 3).double()
    with torch.no_grad():
        out = _ycbcr(model(x))
    src = _ycbcr(x)
    assert torch.allclose(out[:, :1], _nearest(src[:, :1], 3), atol=1e-9)
    assert torch.allclose(out[:, 1:], imresize(src[:, 1:], 3.0), atol=1e-9)


def test_rgb_model_residual_is_a_nearest_upscale() -> None:
    x = torch.rand(2, 3, 5, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    model = _zeroed("ecbsr_m4c16", 2, colors=3).double()
    with torch.no_grad():
        assert torch.allclose(model(x), _nearest(x, 2), atol=1e-12)


def test_network_runs_on_the_0_255_scale() -> None:
    """The official data pipeline feeds Y in [16, 235] without dividing by 255 (``datas/div2k.py``)."""
    assert model_info("ecbsr_m4c8").input_range == 255.0


def test_bad_inputs_are_input_errors() -> None:
    with pytest.raises(InputError, match="colors"):
        create_model("ecbsr_m4c8", 2, colors=2)
    with pytest.raises(InputError, match="RGB"):
        create_model("ecbsr_m4c8", 2)(torch.rand(1, 1, 4, 4))
