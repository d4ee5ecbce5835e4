"""Classic efficient-SR families: MSRResNet, IMDN, RFDN and the RLFN family, plus their shared blocks.

The checks that matter most are against the authors' artefacts: exact parameter counts from the papers, exact
state-dict layouts from the checkpoint manifests, and the released weights themselves producing a sensible
image from a [0, 1] input (which catches a wrong internal value range, the easiest way to silently break these
models).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from esrkit.errors import InputError
from esrkit.layers import ESA, CCALayer, activation
from esrkit.models import create_model
from helpers import shared_path

PARAM_COUNTS = [
    ("msrresnet", 4, 1_517_571),
    ("imdn", 4, 893_936),
    ("rfdn", 4, 433_448),
    ("rlfn", 4, 543_740),
    ("rlfn", 2, 526_856),
    ("rlfn_s", 4, 470_208),
    ("rlfn_s", 2, 454_620),
    ("rlfn_ntire", 4, 317_218),
]

MANIFESTS = [
    ("imdn_ntire2022_baseline_x4.json", "imdn", 4),
    ("rfdn_ntire2023_baseline_x4.json", "rfdn", 4),
    ("rlfn_x2.json", "rlfn", 2),
    ("rlfn_x4.json", "rlfn", 4),
    ("rlfn_s_x2.json", "rlfn_s", 2),
    ("rlfn_s_x4.json", "rlfn_s", 4),
    ("rlfn_ntire2022_x4.json", "rlfn_ntire", 4),
]

CHECKPOINTS = [
    ("imdn_ntire2022_baseline_x4", "imdn"),
    ("rfdn_ntire2023_baseline_x4", "rfdn"),
    ("rlfn_ntire2022_x4", "rlfn_ntire"),
]


def _num_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _manifest(filename: str) -> dict[str, Any]:
    return json.loads(shared_path("weights", "manifests", filename).read_text())


def _official_state_dict(stem: str) -> dict[str, torch.Tensor]:
    """Load a released checkpoint safely and normalise it as a loader must (wrapper key, DataParallel)."""
    manifest = _manifest(f"{stem}.json")
    path: Path = shared_path("weights", "official", f"{stem}.pth")
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if manifest.get("wrapper_key"):
        obj = obj[manifest["wrapper_key"]]
    return {key.removeprefix("module."): value for key, value in obj.items()}


def _smooth_lr(size: int = 24, scale: int = 4) -> torch.Tensor:
    """A smooth synthetic [0, 1] RGB image, bicubic-downscaled (with anti-aliasing) by ``scale``.

    Smooth content means a good SR model must stay close to plain bicubic upscaling; a model fed the wrong
    value range produces outputs tens of dB away.
    """
    hr_size = size * scale
    yy, xx = torch.meshgrid(torch.linspace(0, 1, hr_size), torch.linspace(0, 1, hr_size), indexing="ij")
    hr = torch.stack([
        0.2 + 0.6 * xx,
        0.5 + 0.3 * torch.sin(2 * math.pi * yy) * torch.cos(math.pi * xx),
        0.3 + 0.4 * yy * xx,
    ]).unsqueeze(0)
    lr = F.interpolate(hr, scale_factor=1 / scale, mode="bicubic", antialias=True, align_corners=False)
    return lr.clamp(0, 1)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return 10 * math.log10(1.0 / mse)


# ------------------------------------------------------------------------------------------------------------
# Registry-level behaviour
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "scale", "expected"), PARAM_COUNTS)
def test_parameter_counts_match_papers(name: str, scale: int, expected: int) -> None:
    assert _num_params(create_model(name, scale=scale)) == expected


def test_rlfn_ntire_is_x4_only() -> None:
    with pytest.raises(InputError):
        create_model("rlfn_ntire", scale=2)


def test_hyperparameters_change_the_architecture() -> None:
    """The builder kwargs are what a checkpoint loader will use to rebuild detected variants."""
    custom = create_model("rlfn", scale=4, num_feat=46, num_block=4, mid_channels=48)
    assert _num_params(custom) == 317_218  # equals the NTIRE entry
    assert _num_params(create_model("rfdn", scale=4, num_block=2)) < 433_448
    sd = create_model("rfdn", scale=4, esa_channels=8).state_dict()
    assert sd["B1.esa.conv1.weight"].shape == (8, 50, 1, 1)


# ------------------------------------------------------------------------------------------------------------
# Manifests and official checkpoints
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.shared
@pytest.mark.parametrize(("filename", "name", "scale"), MANIFESTS)
def test_state_dict_matches_manifest(filename: str, name: str, scale: int) -> None:
    manifest = _manifest(filename)
    model = create_model(name, scale=scale)
    ours = {key: list(value.shape) for key, value in model.state_dict().items()}
    expected = {key: list(shape) for key, shape in manifest["state_dict"].items()}
    assert sorted(set(ours) - set(expected)) == []
    assert sorted(set(expected) - set(ours)) == []
    assert ours == expected
    assert _num_params(model) == manifest["num_params"]
    zeros = {key: torch.zeros(shape) for key, shape in expected.items()}
    model.load_state_dict(zeros, strict=True)


@pytest.mark.shared
@pytest.mark.parametrize(("stem", "name"), CHECKPOINTS)
def test_official_checkpoint_loads_strictly_and_upscales_sensibly(stem: str, name: str) -> None:
    manifest = _manifest(f"{stem}.json")
    model = create_model(name, scale=4).eval()
    assert model.img_range == manifest["input_range"]  # type: ignore[attr-defined]
    model.load_state_dict(_official_state_dict(stem), strict=True)

    lr = _smooth_lr()
    with torch.no_grad():
        sr = model(lr)
    bicubic = F.interpolate(lr, scale_factor=4, mode="bicubic", align_corners=False)
    assert sr.shape == bicubic.shape
    # Measured ≈ 54-56 dB; a wrong input range gives < 22 dB.
    assert _psnr(sr, bicubic) > 35.0
    assert float(sr.min()) > -0.05
    assert float(sr.max()) < 1.05


@pytest.mark.shared
@pytest.mark.parametrize(("stem", "name"), CHECKPOINTS)
def test_wrong_value_range_is_detected_by_the_psnr_check(stem: str, name: str) -> None:
    """Guards the test above: flipping the internal range (1 ↔ 255) must break the output."""
    model = create_model(name, scale=4).eval()
    model.load_state_dict(_official_state_dict(stem), strict=True)
    model.img_range = 1.0 if model.img_range != 1.0 else 255.0  # type: ignore[attr-defined]
    lr = _smooth_lr()
    with torch.no_grad():
        sr = model(lr)
    bicubic = F.interpolate(lr, scale_factor=4, mode="bicubic", align_corners=False)
    assert _psnr(sr, bicubic) < 25.0


# ------------------------------------------------------------------------------------------------------------
# Value-range wrapper and model-specific behaviour
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["rfdn", "rlfn_s", "msrresnet", "imdn"])
def test_img_range_is_a_pure_input_output_rescaling(name: str) -> None:
    torch.manual_seed(0)
    scaled = create_model(name, scale=2, img_range=255.0).eval()
    plain = create_model(name, scale=2, img_range=1.0).eval()
    plain.load_state_dict(scaled.state_dict(), strict=True)
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        expected = plain(x * 255.0) / 255.0
        got = scaled(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_msrresnet_global_skip_is_bilinear_upsampling() -> None:
    """With a zeroed last conv the residual branch vanishes and only the bilinear image skip remains."""
    model = create_model("msrresnet", scale=4).eval()
    with torch.no_grad():
        model.conv_last.weight.zero_()  # type: ignore[union-attr]
        model.conv_last.bias.zero_()  # type: ignore[union-attr]
        x = torch.rand(1, 3, 24, 24)
        y = model(x)
    expected = F.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)
    torch.testing.assert_close(y, expected)


def test_msrresnet_upsampler_layout_per_scale() -> None:
    x4 = create_model("msrresnet", scale=4).state_dict()
    x3 = create_model("msrresnet", scale=3).state_dict()
    assert x4["upconv1.weight"].shape == (256, 64, 3, 3)
    assert "upconv2.weight" in x4
    assert x3["upconv1.weight"].shape == (576, 64, 3, 3)
    assert "upconv2.weight" not in x3


def test_imdn_optional_cca_adds_paper_attention() -> None:
    base = create_model("imdn", scale=4)
    with_cca = create_model("imdn", scale=4, use_cca=True)
    extra = set(with_cca.state_dict()) - set(base.state_dict())
    assert "model.1.sub.0.cca.conv_du.0.weight" in extra
    assert all(".cca.conv_du." in key for key in extra)
    with torch.no_grad():
        assert with_cca(torch.rand(1, 3, 24, 24)).shape == (1, 3, 96, 96)


# ------------------------------------------------------------------------------------------------------------
# Shared blocks
# ------------------------------------------------------------------------------------------------------------


def test_esa_full_and_reduced_layouts() -> None:
    full = set(ESA(50, 12, full=True).state_dict())
    reduced = set(ESA(52, 16, full=False).state_dict())
    assert full - reduced == {"conv_max.weight", "conv_max.bias", "conv3_.weight", "conv3_.bias"}
    assert reduced <= full


@pytest.mark.parametrize("full", [True, False])
def test_esa_is_a_gate_in_zero_one(full: bool) -> None:
    torch.manual_seed(0)
    esa = ESA(8, 4, full=full).eval()
    x = torch.randn(2, 8, 24, 17)
    with torch.no_grad():
        y = esa(x)
    assert y.shape == x.shape
    safe = x.abs() > 1e-3
    gate = y[safe] / x[safe]
    assert float(gate.min()) >= 0.0
    assert float(gate.max()) <= 1.0 + 1e-6
    # The gate is spatially varying (it is spatial attention, not a constant).
    assert float(gate.std()) > 0.0


def test_esa_zero_output_conv_gives_half_gate() -> None:
    esa = ESA(8, 4, full=True)
    with torch.no_grad():
        esa.conv4.weight.zero_()
        esa.conv4.bias.zero_()
        x = torch.randn(1, 8, 20, 20)
        torch.testing.assert_close(esa(x), x * 0.5)


def test_cca_contrast_is_population_std() -> None:
    x = torch.randn(2, 5, 7, 9)
    expected = x.flatten(2).std(dim=2, unbiased=False).view(2, 5, 1, 1)
    torch.testing.assert_close(CCALayer.contrast(x), expected)


def test_cca_statistic_is_mean_plus_contrast() -> None:
    """The squeeze statistic fed to the excitation MLP is per-channel mean + std, and the output rescales each
    channel by one factor in (0, 1)."""
    layer = CCALayer(16, reduction=16)
    captured: list[torch.Tensor] = []
    layer.conv_du[0].register_forward_hook(lambda _m, inputs, _o: captured.append(inputs[0]))
    x = torch.rand(1, 16, 6, 6) * 3
    with torch.no_grad():
        y = layer(x)
    stat = captured[0]
    expected = x.mean(dim=(2, 3), keepdim=True) + x.std(dim=(2, 3), unbiased=False, keepdim=True)
    torch.testing.assert_close(stat, expected)
    ratio = y / x
    assert torch.allclose(ratio, ratio[:, :, :1, :1].expand_as(ratio))  # one weight per channel
    assert float(ratio.min()) > 0.0
    assert float(ratio.max()) < 1.0


def test_activation_helper() -> None:
    lrelu = activation("lrelu", negative_slope=0.1, inplace=False)
    torch.testing.assert_close(lrelu(torch.tensor([-1.0, 2.0])), torch.tensor([-0.1, 2.0]))
    assert isinstance(activation("relu"), torch.nn.ReLU)
    assert isinstance(activation("gelu"), torch.nn.GELU)
    assert isinstance(activation("identity"), torch.nn.Identity)
    with pytest.raises(ValueError, match="unknown activation"):
        activation("tanhh")


@pytest.mark.parametrize("full", [True, False])
def test_esa_matches_its_functional_specification(full: bool) -> None:
    """ESA written out op by op from the architecture notes (RFDN: conv_max→ReLU→conv3→ReLU→conv3_ on the
    pooled map; RLFN: conv3 only, no ReLU). Catches a moved ReLU, a wrong stride/pad/pool or interpolation,
    which the smooth-image checkpoint test is too coarse to see."""
    torch.manual_seed(1)
    esa = ESA(10, 6, full=full).eval()
    p = {name: value.detach() for name, value in esa.named_parameters()}

    def c(name: str, t: torch.Tensor, stride: int = 1, padding: int = 0) -> torch.Tensor:
        return F.conv2d(t, p[f"{name}.weight"], p[f"{name}.bias"], stride=stride, padding=padding)

    x = torch.randn(2, 10, 31, 26)
    squeezed = c("conv1", x)
    pooled = F.max_pool2d(c("conv2", squeezed, stride=2), kernel_size=7, stride=3)
    if full:
        small = c("conv3_", torch.relu(c("conv3", torch.relu(c("conv_max", pooled, padding=1)), padding=1)),
                  padding=1)
    else:
        small = c("conv3", pooled, padding=1)
    up = F.interpolate(small, size=(31, 26), mode="bilinear", align_corners=False)
    expected = x * torch.sigmoid(c("conv4", up + c("conv_f", squeezed)))
    with torch.no_grad():
        torch.testing.assert_close(esa(x), expected)
