"""SPAN (NTIRE 2024 ESR winner, XiaomiMM) and RVSR (AIS 2024 RTSR, XJTU-AIR): sizes, the authors' deploy layouts,
and folds that are exact everywhere, borders included.

Expected figures: the manifests ``zoo2/span_ch28_deploy_x4.json`` (150,688) and ``zoo2/rvsr_ais2024_deploy_x4.json``
(32,960), the AIS 2024 survey's Table 1 (RVSR 0.033 M) and §4.5 (RVSR: 16 channels, 8 RepViT blocks). Folds are
checked with every parameter randomized (default init leaves biases near zero, which would hide a dropped bias),
and on small inputs so that border pixels are a large share of the comparison.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from esrkit.checkpoints import load_checkpoint, save_checkpoint
from esrkit.layers.reparam.conv3xc import Conv3XC, Conv3XCDeploy
from esrkit.models import create_model, get_config, model_info, reparameterize
from esrkit.models.rvsr import RepConv, RepConvDeploy
from esrkit.models.span import SPAB
from esrkit.profile import count_complexity
from helpers import randomize_weights, shared_path

F64 = torch.float64
RVSR_TABLE1_PARAMS_M = 0.033  # AIS 2024 survey, Table 1, "# Par. [M]" of RVSR


def _manifest(name: str) -> dict:
    return json.loads(shared_path("weights", "manifests", "zoo2", f"{name}.json").read_text())


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _shapes(model: nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in model.state_dict().items()}


_randomize = randomize_weights  # helpers: seeded noise in every parameter


def _x(channels: int, h: int = 5, w: int = 7, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.rand(2, channels, h, w, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# ----------------------------------------------------------------------------------------------------
# Parameter counts and the authors' deploy layouts
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "manifest"), [("span_ch28", "span_ch28_deploy_x4"),
                                                ("rvsr", "rvsr_ais2024_deploy_x4")])
def test_train_form_folds_into_exactly_the_deploy_manifest(name: str, manifest: str) -> None:
    info = _manifest(manifest)
    train = create_model(name, 4)
    deploy = reparameterize(train)
    assert info["input_range"] == 1.0
    assert _shapes(deploy) == info["state_dict"]
    assert _count(deploy) == info["num_params"]
    assert _shapes(train) != info["state_dict"]  # the train form really has branches


def test_rvsr_size_is_the_survey_figure() -> None:
    assert round(_count(reparameterize(create_model("rvsr", 4))) / 1e6, 3) == RVSR_TABLE1_PARAMS_M


def test_rvsr_macs_are_the_survey_figure() -> None:
    """§4.5: 15.62 G MACs on the 960×540 challenge input (Table 1: 15.6 G)."""
    counts = count_complexity(reparameterize(create_model("rvsr", 4)), (540, 960))
    assert round(counts.flops / 1e9, 2) == 15.62


def test_rvsr_defaults_are_the_survey_description() -> None:
    """§4.5: a 3×3 conv to 16 channels, then 8 stacked RepViT blocks."""
    defaults = model_info("rvsr").defaults
    assert (defaults["num_feat"], defaults["num_block"]) == (16, 8)


def test_span_deploy_size_formula_matches_the_manifest_and_gives_the_48_channel_model() -> None:
    """Deploy SPAN with C channels: conv_1 (27C + C) + 6 SPABs × 3 × (9C² + C) + conv_cat (4C² + C) + conv_2
    (9C² + C) + upsampler (9·48·C + 48) = 175C² + 480C + 48. The formula is checked against the authors'
    28-channel file, then gives the paper's 48-channel model (no published count in the notes)."""
    def formula(c: int) -> int:
        return 175 * c * c + 480 * c + 48

    assert formula(28) == _manifest("span_ch28_deploy_x4")["num_params"]
    assert _count(reparameterize(create_model("span", 4))) == formula(48) == 426_288
    shapes_28 = _manifest("span_ch28_deploy_x4")["state_dict"]
    assert set(_shapes(reparameterize(create_model("span", 4)))) == set(shapes_28)  # same structure, wider


@pytest.mark.parametrize(("manifest", "name"), [("span_ch28_deploy_x4", "span_ch28"),
                                                ("rvsr_ais2024_deploy_x4", "rvsr")])
def test_manifest_layout_is_detected_exactly(manifest: str, name: str, tmp_path) -> None:
    info = _manifest(manifest)
    state = {k: torch.zeros(v) for k, v in info["state_dict"].items()}
    torch.save({info["wrapper_key"]: state} if info["wrapper_key"] else state, tmp_path / "w.pth")
    model = load_checkpoint(tmp_path / "w.pth")
    config = get_config(model)
    assert _shapes(model) == info["state_dict"]
    assert (config.name, config.scale, config.form) == (name, 4, "deploy")
    assert config.hparams == model_info(name).defaults
    assert _count(model) == info["num_params"]


@pytest.mark.parametrize("name", ["span_ch28", "rvsr"])
def test_folded_random_model_is_an_authors_deploy_checkpoint(name: str, tmp_path) -> None:
    """Fold a random train model, save its state dict as a bare .pth (as the authors ship deploy weights): it
    loads as the deploy form of the same variant and computes what the train model computes."""
    train = _randomize(create_model(name, 4), seed=1).eval()
    deploy = reparameterize(train)
    torch.save(deploy.state_dict(), tmp_path / "deploy.pth")
    loaded = load_checkpoint(tmp_path / "deploy.pth")
    assert (get_config(loaded).name, get_config(loaded).form) == (name, "deploy")
    x = _x(3, 9, 6, seed=2)
    with torch.no_grad():
        ref, out = train(x), loaded(x)
    assert (ref - out).abs().max() <= 1e-5 * max(1.0, float(ref.abs().max()))


def test_degradations_per_variant() -> None:
    """SPAN's paper models and its NTIRE 2024 ESR entry are bicubic-trained; RVSR trained on Lanczos + AVIF."""
    assert model_info("span").degradation == "bicubic"
    assert model_info("span_ch28").degradation == "bicubic"
    assert model_info("rvsr").degradation == "lanczos+avif"
    assert model_info("span_ch28").scales == (4,) and model_info("rvsr").scales == (4,)


def test_capabilities() -> None:
    assert model_info("span").capabilities.tile_exact  # parameter-free attention: no pooling anywhere
    assert not model_info("rvsr").capabilities.tile_exact  # squeeze-excite averages the whole map


# ----------------------------------------------------------------------------------------------------
# Conv3XC: the official padding, the fold and the train checkpoint layout
# ----------------------------------------------------------------------------------------------------


def _official_conv3xc(block: Conv3XC, x: torch.Tensor) -> torch.Tensor:
    """The official train forward, written from its description: zero-pad the input by one, run the
    1×1 → unpadded 3×3 → 1×1 chain, add the 1×1 skip of the unpadded input."""
    c0, c1, c2 = block.conv
    y = F.conv2d(F.pad(x, (1, 1, 1, 1)), c0.weight, c0.bias)
    y = F.conv2d(y, c1.weight, c1.bias)
    y = F.conv2d(y, c2.weight, c2.bias)
    return y + F.conv2d(x, block.sk.weight, block.sk.bias)


@pytest.mark.parametrize(("cin", "cout"), [(3, 8), (6, 6)])
def test_conv3xc_forward_is_the_official_chain_and_folds_exactly(cin: int, cout: int) -> None:
    block = _randomize(Conv3XC(cin, cout).to(F64), seed=cin)
    x = _x(cin, dtype=F64)
    with torch.no_grad():
        ref = _official_conv3xc(block, x)
        assert torch.allclose(block(x), ref, atol=1e-12)
        fused = block.fused()
        assert type(fused) is Conv3XCDeploy
        assert set(fused.state_dict()) == {"eval_conv.weight", "eval_conv.bias"}
        out = fused(x)
    # Every pixel, the one-pixel border ring included (on a 5×7 map more than half the pixels are border).
    assert (out - ref).abs().max() <= 1e-12
    assert (out[..., 0, :] - ref[..., 0, :]).abs().max() <= 1e-12
    assert (out[..., :, -1] - ref[..., :, -1]).abs().max() <= 1e-12


def test_conv3xc_border_is_what_makes_the_fold_exact() -> None:
    """Guard: padding the chain's hidden map with zeros instead (a natural mistake) changes only the border,
    by far more than the tolerance, so the test above does check the border semantics."""
    block = _randomize(Conv3XC(4, 4).to(F64), seed=5)
    x = _x(4, dtype=F64)
    c0, c1, c2 = block.conv
    with torch.no_grad():
        wrong = F.conv2d(F.conv2d(F.pad(F.conv2d(x, c0.weight, c0.bias), (1, 1, 1, 1)), c1.weight, c1.bias),
                         c2.weight, c2.bias) + block.sk(x)
        diff = (wrong - block(x)).abs()
    assert diff[..., 1:-1, 1:-1].max() <= 1e-12
    assert diff.max() > 1e-3


def test_conv3xc_fold_in_float32_and_train_mode_kept() -> None:
    block = _randomize(Conv3XC(8, 8), seed=3).train()
    fused = block.fused()
    assert fused.training and fused.eval_conv.weight.dtype == torch.float32
    x = _x(8)
    with torch.no_grad():
        assert (fused(x) - block(x)).abs().max() <= 1e-5


def test_conv3xc_train_keys_are_the_official_ones_and_eval_conv_is_no_parameter() -> None:
    """The official train module stores sk, the conv.0-2 chain and its (recomputed) eval_conv: all load
    strictly; eval_conv is kept as buffers, so it is not counted as a parameter and never used."""
    block = Conv3XC(3, 8)
    assert set(block.state_dict()) == {"sk.weight", "sk.bias", "eval_conv.weight", "eval_conv.bias",
                                       *(f"conv.{i}.{t}" for i in range(3) for t in ("weight", "bias"))}
    assert "eval_conv.weight" not in dict(block.named_parameters())
    assert block.eval_conv.weight.shape == (8, 3, 3, 3)
    _randomize(block, seed=9)
    x = _x(3)
    with torch.no_grad():
        before = block(x)
        block.eval_conv.weight.normal_()
        assert torch.equal(block(x), before)
    torch.manual_seed(0)
    official_train_state = {k: torch.randn(v.shape) for k, v in block.state_dict().items()}
    assert not block.load_state_dict(official_train_state, strict=True).missing_keys


# ----------------------------------------------------------------------------------------------------
# SPAN network facts
# ----------------------------------------------------------------------------------------------------


def test_spab_attention_has_no_parameters() -> None:
    block = SPAB(8)
    assert {name.split(".")[0] for name, _ in block.named_parameters()} == {"c1_r", "c2_r", "c3_r"}


def test_span_output_is_not_rescaled() -> None:
    """The input is (x − mean)·255, but the output is used as is (the official network emits [0, 1] directly):
    with zero weights the output is the upsampler's bias, not the bias / 255."""
    model = create_model("span_ch28", 4).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.upsampler[0].bias.fill_(0.5)
        out = model(_x(3))
    assert torch.equal(out, torch.full_like(out, 0.5))
    assert model.img_range == 255.0


# ----------------------------------------------------------------------------------------------------
# RVSR network facts
# ----------------------------------------------------------------------------------------------------


def _official_repconv(block: RepConv, x: torch.Tensor) -> torch.Tensor:
    """RVSR's train RepConv as written in its code: each chain's expanded map is padded with the expand bias."""
    out = x + block.res_conv3x3(x) + block.res_conv1x1(x)
    for s in ("", "1"):
        expand, middle, squeeze = (getattr(block, f"{n}{s}_conv") for n in ("expand", "fea", "reduce"))
        y = expand(x)
        padded = expand.bias.view(1, -1, 1, 1).expand(y.shape[0], -1, y.shape[2] + 2, y.shape[3] + 2).clone()
        padded[..., 1:-1, 1:-1] = y
        out = out + squeeze(middle(padded))
    return out


def test_rvsr_repconv_matches_the_bias_padded_official_form_and_folds_exactly() -> None:
    block = _randomize(RepConv(6).to(F64), seed=11)
    x = _x(6, dtype=F64)
    with torch.no_grad():
        ref = _official_repconv(block, x)
        assert torch.allclose(block(x), ref, atol=1e-12)
        fused = block.fused()
        assert type(fused) is RepConvDeploy and set(fused.state_dict()) == {"rep_conv.weight", "rep_conv.bias"}
        assert (fused(x) - ref).abs().max() <= 1e-12


def test_rvsr_repconv_identity_branch_matters() -> None:
    """Guard: a fold that forgot the identity (the authors add it as a centre tap) is caught."""
    block = _randomize(RepConv(4).to(F64), seed=12)
    fused = block.fused()
    with torch.no_grad():
        fused.rep_conv.weight[range(4), range(4), 1, 1] -= 1.0
        x = _x(4, dtype=F64)
        assert (fused(x) - block(x)).abs().max() > 1e-2


def test_rvsr_works_in_the_authors_minus_one_to_one_range() -> None:
    """In: (x − 0.5)/0.5; out: y/2 + 0.5. With zero weights and tail bias b the output is bilinear(x) + b/2 (a
    model on [0, 1] without the normalization would give bilinear(x) + b)."""
    model = create_model("rvsr", 4).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.tail[1].bias.fill_(0.2)
        x = _x(3, 6, 5)
        out = model(x)
    expected = F.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False) + 0.1
    assert torch.allclose(out, expected, atol=1e-6)


def test_safetensors_round_trip_of_the_deploy_forms(tmp_path) -> None:
    for name in ("span_ch28", "rvsr"):
        deploy = reparameterize(_randomize(create_model(name, 4), seed=2))
        loaded = load_checkpoint(save_checkpoint(deploy, tmp_path / f"{name}.safetensors"))
        assert get_config(loaded).form == "deploy" and _shapes(loaded) == _shapes(deploy)
