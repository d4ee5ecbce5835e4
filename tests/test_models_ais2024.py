"""AIS 2024 real-time 4K SR entries: CASR (team Z6), light SAFMN++ / VPEG-S (team VPEG), ANUNet (team LeRTSR).

Published facts checked here: parameter counts (manifests; AIS 2024 survey Table 1 and VPEG's Table 3), MACs at
the challenge's 540×960 LR input (Table 1 / Table 3), the official layouts, the official checkpoints' Y-PSNR on
bicubic Set5/Set14 with the AIS top-left crop to multiples of 24 (the lead's reference values), and train forms
folding into the authors' deploy layouts.
"""

from __future__ import annotations

import json

import pytest
import torch

from esrkit.checkpoints import load_checkpoint, read_state_dict
from esrkit.cli import main
from esrkit.models import capabilities_of, create_model, get_config, model_info, reparameterize
from esrkit.profile import count_complexity
from helpers import shared_path

MANIFESTS = {  # manifest → (model name, form)
    "casr_ais2024_deploy_x4": ("casr", "deploy"),
    "light_safmnpp_ais2024_x4": ("light_safmnpp", "train"),
    "anunet_ais2024_deploy_x4": ("anunet", "deploy"),
}
# AIS 2024 survey Table 1: # Par. [M], MACs [G] (540p LR input) and the unit of the last printed MACs digit.
TABLE1 = {"casr": (0.026, 2.10, 0.01), "light_safmnpp": (0.066, 34.2, 0.1), "anunet": (0.072, 9.40, 0.01)}
OFFICIAL = {  # Y-PSNR ×4, border 4, MATLAB-bicubic LR, HR cropped top-left to multiples of 24 (Set5, Set14)
    "casr_ais2024_deploy_x4.pt": (29.34, 26.71),
    "light_safmnpp_ais2024_x4.pth": (30.40, 27.46),
}


def _manifest(name: str) -> dict:
    return json.loads(shared_path("weights", "manifests", "zoo2", f"{name}.json").read_text())


def _shapes(model: torch.nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("manifest", sorted(MANIFESTS))
def test_deploy_parameter_count_matches_manifest(manifest):
    name, _ = MANIFESTS[manifest]
    model = reparameterize(create_model(name, scale=4))
    assert _params(model) == _manifest(manifest)["num_params"]


@pytest.mark.parametrize("name", sorted(TABLE1))
def test_params_and_macs_match_the_survey_table(name):
    """Table 1's figures are the teams' own and not all rounded alike (ANUNet's 0.07288 M / 9.406 G are printed
    truncated, 0.072 / 9.40; CASR's 2.098 G rounded, 2.10), so each is checked to one unit of its last digit."""
    params_m, macs_g, unit = TABLE1[name]
    counts = count_complexity(reparameterize(create_model(name, scale=4)), (540, 960))
    assert abs(counts.params / 1e6 - params_m) < 1e-3
    assert abs(counts.conv_flops / 1e9 - macs_g) < unit


def test_safmnpp_matches_vpeg_table3_exactly():
    """VPEG's Table 3 (LR 540×960): 0.0662 M parameters, 34.1587 GFLOPs."""
    counts = count_complexity(create_model("light_safmnpp", scale=4), (540, 960))
    assert round(counts.params / 1e6, 4) == 0.0662
    assert round(counts.conv_flops / 1e9, 4) == 34.1587


def test_casr_train_form_has_the_authors_repblock_widths():
    """RepBlockV5 as the authors call it: branches 3×3 → 256 → 1×1 and 3×3 → 128 → 1×1, plus a 1×1 skip conv where
    the widths differ (head 27→32, transition 32→27, input_conv2 3→48) and the identity in the backbone."""
    def block(i: int, o: int) -> int:
        branches = (i * 256 * 9 + 256) + (256 * o + o) + (i * 128 * 9 + 128) + (128 * o + o)
        return branches + (0 if i == o else i * o + o)

    expected = block(27, 32) + block(32, 32) + block(32, 27) + block(3, 48)
    assert _params(create_model("casr", scale=4)) == expected


@pytest.mark.parametrize("manifest", sorted(MANIFESTS))
def test_manifest_layout_is_detected_exactly(manifest, tmp_path):
    name, form = MANIFESTS[manifest]
    info = _manifest(manifest)
    state = {k: torch.zeros(v) for k, v in info["state_dict"].items()}
    torch.save({info["wrapper_key"]: state} if info["wrapper_key"] else state, tmp_path / "ckpt.pth")
    model = load_checkpoint(tmp_path / "ckpt.pth")
    assert _shapes(model) == info["state_dict"]
    config = get_config(model)
    assert (config.name, config.scale, config.form) == (name, 4, form)
    assert _params(model) == info["num_params"]


@pytest.mark.parametrize("manifest", ["casr_ais2024_deploy_x4", "anunet_ais2024_deploy_x4"])
def test_train_form_folds_into_the_deploy_manifest_layout(manifest):
    name, _ = MANIFESTS[manifest]
    train = create_model(name, scale=4)
    assert _shapes(train) != _manifest(manifest)["state_dict"]
    assert _shapes(reparameterize(train)) == _manifest(manifest)["state_dict"]


def test_casr_pt_is_a_plain_state_dict_read_with_weights_only():
    """The ``.pt`` is a zip-format ``torch.save`` of an OrderedDict (tensors saved on cuda:0), not TorchScript:
    the ordinary ``weights_only`` loader reads it, with no wrapper."""
    path = shared_path("weights", "official", "casr_ais2024_deploy_x4.pt")
    state, meta = read_state_dict(path)
    assert meta is None
    assert {k: list(v.shape) for k, v in state.items()} == _manifest("casr_ais2024_deploy_x4")["state_dict"]
    assert all(v.device.type == "cpu" for v in state.values())


def test_folded_casr_loads_the_official_deploy_weights_strictly():
    official = load_checkpoint(shared_path("weights", "official", "casr_ais2024_deploy_x4.pt"))
    folded = reparameterize(create_model("casr", scale=4))
    folded.load_state_dict(official.state_dict(), strict=True)
    x = torch.rand(1, 3, 18, 24, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(folded(x), official(x))


def test_safmnpp_loads_the_params_the_authors_ran():
    """The file holds ``params`` and ``params_ema``; the authors' inference (and the expected PSNR) use
    ``params``."""
    path = shared_path("weights", "official", "light_safmnpp_ais2024_x4.pth")
    raw = torch.load(path, map_location="cpu", weights_only=True)
    model = load_checkpoint(path)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, raw["params"][k], rtol=0, atol=0)
    assert any(not torch.equal(raw["params"][k], raw["params_ema"][k]) for k in raw["params"])


def test_capabilities_follow_the_architectures():
    casr, anunet, safmnpp = (capabilities_of(create_model(n, scale=4)) for n in ("casr", "anunet", "light_safmnpp"))
    assert (casr.size_multiple, anunet.size_multiple, safmnpp.min_size) == (3, 2, 8)
    assert not (casr.tile_exact or anunet.tile_exact or safmnpp.tile_exact)
    assert all(model_info(n).degradation == "lanczos+avif" for n in ("casr", "anunet", "light_safmnpp"))


@pytest.mark.parametrize("weights", sorted(OFFICIAL))
def test_official_checkpoint_reproduces_expected_psnr(weights, tmp_path, monkeypatch):
    monkeypatch.setenv("ESRKIT_CACHE", str(tmp_path / "cache"))
    path = shared_path("weights", "official", weights)
    sets = [str(shared_path("data", "benchmarks", s)) for s in ("Set5", "Set14")]
    out = tmp_path / "r.json"
    assert main(["evaluate", "--weights", str(path), "--crop-multiple", "24", "--data", sets[0], "--data", sets[1],
                 "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["results"]
    for row, expected in zip(rows, OFFICIAL[weights], strict=True):
        assert row["psnr_y"] == pytest.approx(expected, abs=0.01), row
