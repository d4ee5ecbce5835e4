"""DIPNet (NTIRE 2023 runtime winner) and the RRRB block it trains with: sizes, the released layout and weights,
the fold, detection beside RLFN, and the challenge's complexity counters.

Expected values come from the manifest ``zoo2/dipnet_ntire2023_x4.json``, the NTIRE 2023 report (Table 1 and
§4.1: 0.243 M params, 14.90 G FLOPs, 72.97 M activations, 39 convs at a 256×256 LR input) and the task's published
Y-PSNR (Set5 31.81, Set14 28.44 dB), or from arithmetic written out below.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from esrkit.checkpoints import load_checkpoint
from esrkit.cli import main
from esrkit.layers.reparam.rrrb import RRRB
from esrkit.layouts import claimants, detect_layout
from esrkit.models import create_model, families, get_config, reparameterize
from esrkit.profile import count_complexity
from helpers import randomize_weights, shared_path

F64 = torch.float64
OFFICIAL_PSNR_Y = {"Set5": 31.81, "Set14": 28.44}  # ×4, border 4, MATLAB-bicubic LR

# Train form (RRRB ratio 2, no biases; 44 features, 38 inside blocks, 4 blocks):
#   c1_r 44·88 + 88·88·9 + 88·38 = 76 912;  c2_r 38·76 + 76·76·9 + 76·38 = 57 760;  c3_r 38·76 + 76·76·9 + 76·44
#   = 58 216;  c5 44·44 = 1 936;  ESA (16 ch, biased) 720 + 272 + 2 320 + 2 320 + 748 = 6 380  → 201 204 per block
#   4 blocks 804 816 + conv_1 3·44·9 = 1 188 + conv_2 44·44·9 = 17 424 + upsampler 44·48·9 = 19 008
TRAIN_PARAMS = 842_436


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _shapes(model: nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def _manifest(name: str = "dipnet_ntire2023_x4") -> dict:
    return json.loads(shared_path("weights", "manifests", "zoo2", f"{name}.json").read_text())


_randomize = randomize_weights  # helpers: seeded noise in every parameter


# ----------------------------------------------------------------------------------------------------- sizes


def test_deploy_form_has_the_released_parameter_count() -> None:
    deployed = reparameterize(create_model("dipnet", scale=4))
    assert _count(deployed) == 243_252  # manifest num_params; Table 1 prints 0.243 M
    assert f"{_count(deployed) / 1e6:.3f}" == "0.243"


def test_train_form_parameter_count() -> None:
    assert _count(create_model("dipnet", scale=4)) == TRAIN_PARAMS


@pytest.mark.shared
def test_manifest_records_the_same_count() -> None:
    manifest = _manifest()
    assert manifest["num_params"] == 243_252
    assert sum(math.prod(v) for v in manifest["state_dict"].values()) == manifest["num_params"]


def test_only_esa_convs_carry_a_bias() -> None:
    """The released code builds every conv outside ESA with ``bias=False``: that is DIPNet's signature."""
    deployed = reparameterize(create_model("dipnet", scale=4))
    biased = {k.rsplit(".", 1)[0] for k in deployed.state_dict() if k.endswith(".bias")}
    assert biased and all(".esa." in k for k in biased)


# ------------------------------------------------------------------------------------- layouts and detection


@pytest.mark.shared
def test_train_form_folds_into_exactly_the_released_layout() -> None:
    train = create_model("dipnet", scale=4)
    assert "block_1.c1_r.expand_conv.weight" in train.state_dict()
    deployed = reparameterize(train)
    assert _shapes(deployed) == _manifest()["state_dict"]
    assert not any(isinstance(m, RRRB) for m in deployed.modules())
    assert get_config(deployed).form == "deploy"  # type: ignore[union-attr]


@pytest.mark.shared
def test_manifest_layout_is_detected_exactly(tmp_path) -> None:
    manifest = _manifest()
    assert manifest["wrapper_key"] is None
    torch.save({k: torch.zeros(v) for k, v in manifest["state_dict"].items()}, tmp_path / "ckpt.pth")
    model = load_checkpoint(tmp_path / "ckpt.pth")
    assert _shapes(model) == manifest["state_dict"]
    config = get_config(model)
    assert (config.name, config.scale, config.form) == ("dipnet", 4, "deploy")  # type: ignore[union-attr]
    assert _count(model) == manifest["num_params"]


def test_dipnet_runs_before_rlfn_and_neither_claims_the_other_first() -> None:
    """DIPNet's keys are RLFN's minus the conv biases, and RLFN's detector reads key names only, so DIPNet's
    detector must run first and must refuse RLFN state dicts."""
    order = {f.name: f.detect_order for f in families()}
    assert order["dipnet"] < order["rlfn"]
    dipnet_deploy = reparameterize(create_model("dipnet", scale=4)).state_dict()
    assert claimants(dipnet_deploy)[0][0] == "dipnet"
    for name in ("rlfn", "rlfn_s", "rlfn_ntire"):
        state = create_model(name, scale=4).state_dict()
        assert [family for family, _ in claimants(state)] == ["rlfn"], name


@pytest.mark.shared
@pytest.mark.parametrize("manifest", ["rlfn_ntire2022_x4", "rlfn_x4", "rlfn_s_x2"])
def test_official_rlfn_layouts_still_detect_as_rlfn(manifest: str) -> None:
    shapes = json.loads(shared_path("weights", "manifests", f"{manifest}.json").read_text())["state_dict"]
    config = detect_layout({k: torch.zeros(v) for k, v in shapes.items()})
    assert config is not None and config.name.startswith("rlfn")


def test_train_form_is_detected_with_its_ratio() -> None:
    model = create_model("dipnet", scale=4, rrrb_ratio=3)
    config = detect_layout(model.state_dict())
    assert (config.name, config.form, config.hparams) == ("dipnet", "train", {"rrrb_ratio": 3})  # type: ignore[union-attr]


# ------------------------------------------------------------------------------------------ released weights


@pytest.fixture(scope="module")
def official_state() -> dict[str, torch.Tensor]:
    path = shared_path("weights", "official", "dipnet_ntire2023_x4.pth")
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.mark.shared
def test_official_checkpoint_loads_strictly_as_the_deploy_form(official_state) -> None:
    model = load_checkpoint(shared_path("weights", "official", "dipnet_ntire2023_x4.pth"))
    config = get_config(model)
    assert (config.name, config.scale, config.form) == ("dipnet", 4, "deploy")  # type: ignore[union-attr]
    for key, value in official_state.items():
        assert torch.equal(model.state_dict()[key], value)
    # The folded esrkit train form is the same module tree: the release loads into it with strict=True.
    folded = reparameterize(create_model("dipnet", scale=4))
    result = folded.load_state_dict(official_state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys


@pytest.mark.shared
def test_official_checkpoint_reproduces_published_psnr(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ESRKIT_CACHE", str(tmp_path / "cache"))
    weights = shared_path("weights", "official", "dipnet_ntire2023_x4.pth")
    sets = [str(shared_path("data", "benchmarks", name)) for name in OFFICIAL_PSNR_Y]
    out = tmp_path / "r.json"
    assert main(["evaluate", "--weights", str(weights), "--data", sets[0], "--data", sets[1], "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["results"]
    assert [row["dataset"] for row in rows] == list(OFFICIAL_PSNR_Y)
    for row in rows:
        assert row["psnr_y"] == pytest.approx(OFFICIAL_PSNR_Y[row["dataset"]], abs=0.01), row


# ------------------------------------------------------------------------------------ re-parameterization


def _x(channels: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(2, channels, 9, 11, generator=torch.Generator().manual_seed(seed), dtype=F64)


@pytest.mark.parametrize(("cin", "cout", "bias"), [(6, 6, True), (6, 4, True), (4, 7, True), (5, 5, False),
                                                    (44, 38, False)])
def test_rrrb_fused_is_one_plain_conv_and_exact(cin: int, cout: int, bias: bool) -> None:
    block = _randomize(RRRB(cin, cout, 3, bias=bias).to(F64), seed=cin + cout)
    fused = block.fused()
    assert type(fused) is nn.Conv2d
    assert (fused.in_channels, fused.out_channels, fused.kernel_size, fused.padding) == (cin, cout, (3, 3), (1, 1))
    assert set(fused.state_dict()) == ({"weight", "bias"} if bias else {"weight"})
    x = _x(cin, seed=1)
    with torch.no_grad():
        assert (fused(x) - block(x)).abs().max() <= 1e-12


def test_rrrb_5x5_and_ratio_3_fold_exactly() -> None:
    block = _randomize(RRRB(4, 4, 5, ratio=3).to(F64), seed=9)
    assert block.fea_conv.in_channels == 12
    x = _x(4, seed=2)
    with torch.no_grad():
        assert (block.fused()(x) - block(x)).abs().max() <= 1e-12


def test_rrrb_bias_padding_is_what_makes_the_border_exact() -> None:
    """Padding the expanded map with zeros instead of the expand bias changes only the border pixels: the fold
    reproduces the bias-padded block there, not the zero-padded one."""
    block = _randomize(RRRB(5, 5, 3, bias=True).to(F64), seed=11, bias=0.5)
    x = _x(5, seed=3)
    with torch.no_grad():
        expanded = block.expand_conv(x)
        zero_padded = block.reduce_conv(block.fea_conv(F.pad(expanded, (1, 1, 1, 1))) + expanded) + x
        fused = block.fused()(x)
    inner = (..., slice(1, -1), slice(1, -1))
    assert (zero_padded[inner] - fused[inner]).abs().max() <= 1e-12
    assert (zero_padded - fused).abs().max() > 1e-2


def test_rrrb_every_branch_matters() -> None:
    """Guard for the exactness tests: each identity and each bias visibly changes the output."""
    block = _randomize(RRRB(4, 4, 3).to(F64), seed=12)
    x = _x(4, seed=4)
    with torch.no_grad():
        ref = block(x)
        for param in (block.expand_conv.bias, block.fea_conv.bias, block.reduce_conv.bias, block.fea_conv.weight):
            saved = param.clone()
            param.zero_()
            assert (block(x) - ref).abs().max() > 1e-3
            param.copy_(saved)
        skipless = block.reduce_conv(block.fea_conv(block._pad_with_bias(block.expand_conv(x))))
        assert (skipless - ref).abs().max() > 1e-1  # the inner and outer identities are in the block


def test_rrrb_keeps_dtype_and_mode_and_rejects_even_kernels() -> None:
    block = RRRB(4, 6).train()
    fused = block.fused()
    assert fused.weight.dtype == torch.float32 and fused.training
    assert not RRRB(4).eval().fused().training
    with pytest.raises(ValueError):
        RRRB(4, 4, 2)
    with pytest.raises(ValueError):
        RRRB(4, 4, 3, ratio=0)


# ---------------------------------------------------------------------------------- complexity (NTIRE 2023)


def test_counters_reproduce_the_published_ntire2023_row() -> None:
    """Table 1 / §4.1, MegSR: 0.243 M params, 14.90 G FLOPs, 72.97 M activations, 39 convs (256×256 LR input,
    deploy form, the challenge tool's rules)."""
    counts = count_complexity(reparameterize(create_model("dipnet", scale=4)), (256, 256))
    assert f"{counts.params / 1e6:.3f}" == "0.243"
    assert f"{counts.flops / 1e9:.2f}" == "14.90"
    assert f"{counts.activations / 1e6:.2f}" == "72.97"
    assert counts.num_conv == 39  # conv_1 + 4 × (c1_r, c2_r, c3_r, c5 + 5 ESA convs) + conv_2 + upsampler


def test_train_form_counts_are_not_the_published_ones() -> None:
    """The published row is the folded network: in the train form each of the 12 RRRBs is 3 convs, not 1."""
    counts = count_complexity(create_model("dipnet", scale=4), (256, 256))
    assert counts.num_conv == 39 + 12 * 2
    assert counts.params == TRAIN_PARAMS


def test_profile_cli_reports_the_published_row(tmp_path) -> None:
    out = tmp_path / "p.json"
    assert main(["profile", "--model", "dipnet", "--no-runtime", "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())["results"]
    assert (row["model"], row["form"], row["params"], row["num_conv"]) == ("dipnet", "deploy", 243_252, 39)
    assert f"{row['flops_g']:.2f}" == "14.90" and f"{row['activations_m']:.2f}" == "72.97"
