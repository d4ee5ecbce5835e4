"""PAN (AIM 2020, team XPixel): published sizes, the official layouts, and the released ×4 weights' Y-PSNR.

Expected figures come from the manifests (``weights/manifests/zoo2/pan_x*.json``, read from the authors' files)
and the AIM 2020 report (``docs/notes/seed-aim2020.md``, "XPixel — PAN": 272,419 parameters).
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from esrkit.checkpoints import load_checkpoint
from esrkit.cli import main
from esrkit.errors import InputError
from esrkit.models import create_model, get_config, model_info, reparameterize
from esrkit.profile import count_complexity
from helpers import shared_path

AIM2020_PARAMS_X4 = 272_419  # seed-aim2020.md, XPixel — PAN ("272,419 parameters"; Table 1: 0.272 M)
# Set5, Set14: Y-PSNR ×4, border 4, MATLAB bicubic LR: the reference figures of the released PANx4_DF2K.pth
# (the same protocol as the official checkpoints in test_checkpoints.py).
OFFICIAL_PSNR_Y_X4 = (32.14, 28.61)


def _manifest(scale: int) -> dict:
    return json.loads(shared_path("weights", "manifests", "zoo2", f"pan_x{scale}.json").read_text())


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _shapes(model: nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def test_x4_parameter_count_is_the_aim2020_figure() -> None:
    assert _count(create_model("pan", 4)) == AIM2020_PARAMS_X4


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_param_count_and_layout_equal_the_manifest(scale: int) -> None:
    manifest = _manifest(scale)
    model = create_model("pan", scale)
    assert manifest["input_range"] == 1.0 and not hasattr(model, "img_range")
    assert _shapes(model) == manifest["state_dict"]
    assert _count(model) == manifest["num_params"]
    # No re-parameterization branches: the deploy form is the same network.
    assert _shapes(reparameterize(model)) == manifest["state_dict"]


def test_complexity_equals_the_aim2020_table() -> None:
    """Table 1, XPixel: 32.19 G FLOPs, 270.53 M activations, 121 convs (LR 256×256, the AIM 2020 counter)."""
    counts = count_complexity(create_model("pan", 4), (256, 256))
    assert round(counts.flops / 1e9, 2) == 32.19
    assert round(counts.activations / 1e6, 2) == 270.53
    assert counts.num_conv == 121


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_manifest_layout_is_detected_exactly(scale: int, tmp_path) -> None:
    """A zeros state dict with the manifest's shapes (bare, as released) loads into exactly those keys/shapes."""
    manifest = _manifest(scale)
    state = {k: torch.zeros(v) for k, v in manifest["state_dict"].items()}
    assert manifest["wrapper_key"] is None
    torch.save(state, tmp_path / "pan.pth")
    model = load_checkpoint(tmp_path / "pan.pth")
    config = get_config(model)
    assert _shapes(model) == manifest["state_dict"]
    assert _count(model) == manifest["num_params"]
    assert (config.name, config.form, config.hparams) == ("pan", "train", model_info("pan").defaults)
    # ×2 and ×3 releases have identical tensor shapes (the manifests agree key for key), so the scale of a
    # ×2/×3 file cannot be read from it: both are proposed as ×2.
    assert config.scale == (4 if scale == 4 else 2)


def test_x2_and_x3_layouts_are_indistinguishable() -> None:
    """The fact behind the ×2 proposal above, from the authors' files rather than from esrkit."""
    assert _manifest(2)["state_dict"] == _manifest(3)["state_dict"]
    assert _manifest(2)["state_dict"] != _manifest(4)["state_dict"]


def test_image_skip_is_bilinear_without_corner_alignment() -> None:
    """With every weight zero the network output is its image-level skip: the input upsampled bilinearly with
    ``align_corners=False`` (the released code's choice; bicubic or aligned corners cost 1.2 dB and 2.8 dB on
    Set5 with the official weights)."""
    model = create_model("pan", 4).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        x = torch.rand(1, 3, 7, 9, generator=torch.Generator().manual_seed(0))
        out = model(x)
    expected = F.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)
    assert torch.equal(out, expected)
    assert (out - F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)).abs().max() > 1e-3


def test_scale_3_upsamples_once_by_three() -> None:
    model = create_model("pan", 3).eval()
    assert not hasattr(model, "upconv2")
    with torch.no_grad():
        assert model(torch.rand(1, 3, 5, 6)).shape == (1, 3, 15, 18)


def test_bad_hyperparameters_are_input_errors() -> None:
    with pytest.raises(InputError, match="scales"):
        create_model("pan", 8)
    with pytest.raises(InputError, match="even"):
        create_model("pan", 4, num_feat=39)


def test_registry_facts() -> None:
    info = model_info("pan")
    assert info.scales == (2, 3, 4)
    assert info.degradation == "bicubic"  # AIM 2020: DIV2K + Flickr2K, bicubic ×4
    assert info.capabilities.tile_exact and info.capabilities.min_size == 1
    assert not info.reparameterizable


def test_official_x4_checkpoint_loads_strictly() -> None:
    path = shared_path("weights", "official", "pan_x4.pth")
    state = torch.load(path, map_location="cpu", weights_only=True)
    result = create_model("pan", 4).load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    config = get_config(load_checkpoint(path))
    assert (config.name, config.scale, config.form) == ("pan", 4, "train")


def test_official_x4_checkpoint_reproduces_published_psnr(tmp_path, monkeypatch) -> None:
    """`esrkit evaluate --weights pan_x4.pth` on Set5 and Set14: within 0.01 dB of the official Y-PSNR."""
    monkeypatch.setenv("ESRKIT_CACHE", str(tmp_path / "cache"))
    weights = shared_path("weights", "official", "pan_x4.pth")
    sets = [str(shared_path("data", "benchmarks", s)) for s in ("Set5", "Set14")]
    out = tmp_path / "r.json"
    assert main(["evaluate", "--weights", str(weights), "--data", sets[0], "--data", sets[1], "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["results"]
    for row, expected in zip(rows, OFFICIAL_PSNR_Y_X4, strict=True):
        assert row["psnr_y"] == pytest.approx(expected, abs=0.01), row


def test_a_scale_the_weights_do_not_fix_is_taken_from_the_caller(tmp_path) -> None:
    """PAN ×2 and ×3 have the same tensors (the interpolation factor has no weights): the caller's scale decides,
    but it never overrides a scale the weights fix (×4 has a different tail)."""
    torch.save(create_model("pan", scale=3).state_dict(), tmp_path / "pan_x3.pth")
    assert get_config(load_checkpoint(tmp_path / "pan_x3.pth", scale=3)).scale == 3
    assert get_config(load_checkpoint(tmp_path / "pan_x3.pth")).scale == 2  # no hint: the first scale that fits
    torch.save(create_model("pan", scale=4).state_dict(), tmp_path / "pan_x4.pth")
    assert get_config(load_checkpoint(tmp_path / "pan_x4.pth", scale=3)).scale == 4
