"""LKDN / LKDN-S: exact sizes, checkpoint layouts, the re-parameterization algebra and the released weights.

Re-parameterization tests randomize *every* parameter (not default init, which leaves biases near zero and
LayerNorm at identity) so that a fold that drops or misplaces any branch, bias or identity would show up.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from esrkit.errors import InputError
from esrkit.layers import reparam as rp
from esrkit.layers.reparam import BSConvU, BSConvURep, Kernel, RepUpsampler
from esrkit.models import create_model, reparameterize
from esrkit.models.lkdn import LKDN
from helpers import randomize_weights, shared_path

F64 = torch.float64


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _shapes(model: nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def _randomize(model: nn.Module, seed: int = 0, gain: float = 0.7, bias: float = 0.1) -> nn.Module:
    """The shared seeded noise, with LKDN's pixel-norm gains around 1 (a zero gain would silence a branch)."""
    return randomize_weights(model, seed, gain, bias, unit_gains=("pixel_norm.weight",))


def _manifest(name: str) -> dict:
    return json.loads(shared_path("weights", "manifests", f"{name}.json").read_text())


def _load_rgb(path) -> torch.Tensor:
    array = np.array(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1.0 / torch.mean((a - b) ** 2)))


# ----------------------------------------------------------------------------------------------------
# Sizes and layouts
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "scale", "expected"), [
    ("lkdn", 2, 303_812),
    ("lkdn", 3, 311_387),
    ("lkdn", 4, 321_992),
    ("lkdn_s", 4, 172_449),
])
def test_param_counts_train_form(name: str, scale: int, expected: int) -> None:
    assert _count(create_model(name, scale)) == expected


def test_lkdn_s_deploy_param_count() -> None:
    assert _count(reparameterize(create_model("lkdn_s", 4))) == 129_177


@pytest.mark.shared
@pytest.mark.parametrize(("manifest", "name", "scale", "deploy"), [
    ("lkdn_x2", "lkdn", 2, False),
    ("lkdn_x3", "lkdn", 3, False),
    ("lkdn_x4", "lkdn", 4, False),
    ("lkdn_s_x4", "lkdn_s", 4, False),
    ("lkdn_s_deploy_x4", "lkdn_s", 4, True),
])
def test_state_dict_matches_official_manifest(manifest: str, name: str, scale: int, deploy: bool) -> None:
    info = _manifest(manifest)
    model = create_model(name, scale)
    if deploy:
        model = reparameterize(model)
    assert info["input_range"] == 1.0  # esrkit's [0, 1] convention needs no internal rescaling for LKDN
    assert _shapes(model) == info["state_dict"]
    assert _count(model) == info["num_params"]


def test_lkdn_s_deploy_form_is_the_plain_architecture() -> None:
    """The fold must produce exactly LKDN with BSConvU and the direct upsampler (what the deploy checkpoint
    is tested with upstream), and must leave the train model untouched."""
    train = create_model("lkdn_s", 4)
    deploy = reparameterize(train)
    plain = LKDN(scale=4, num_feat=42, num_atten=42, num_block=5, conv="BSConvU",
                 upsampler="pixelshuffledirect")
    assert _shapes(deploy) == _shapes(plain)
    assert not any(isinstance(m, BSConvURep | RepUpsampler) for m in deploy.modules())
    assert any(isinstance(m, BSConvURep) for m in train.modules())
    assert "B1.c1_r.rep1x1.weight" in train.state_dict()


def test_bad_hyperparameters_raise_input_error() -> None:
    with pytest.raises(InputError):
        create_model("lkdn", 4, conv="Conv3x3")
    with pytest.raises(InputError):
        create_model("lkdn_s", 4, upsampler="nearest")


# ----------------------------------------------------------------------------------------------------
# Re-parameterization exactness (whole network)
# ----------------------------------------------------------------------------------------------------


def test_random_branches_all_matter() -> None:
    """Guard for the zoo's exactness test (tests/test_zoo.py): with random weights each extra branch visibly
    changes the output, so a fold that ignored it could not pass."""
    model = _randomize(create_model("lkdn_s", 4), seed=3).eval()
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref = model(x)
        for param in (model.B3.c2_r.rep1x1.bias, model.B1.c1_r.rep1x1.weight, model.upsampler.conv1x1.bias,
                      model.upsampler.conv1.weight):
            saved = param.clone()
            param.zero_()
            assert (model(x) - ref).abs().max() > 1e-3
            param.copy_(saved)


def test_reparameterize_plain_lkdn_is_identity() -> None:
    model = _randomize(create_model("lkdn", 2), seed=5).eval()
    deploy = reparameterize(model)
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(model(x), deploy(x))
    assert _shapes(deploy) == _shapes(model)


# ----------------------------------------------------------------------------------------------------
# Fusion helpers (float64, so tolerances can be tight)
# ----------------------------------------------------------------------------------------------------


def _rand_conv(cin: int, cout: int, k: int, groups: int = 1, bias: bool = True, padding: int | None = None,
               seed: int = 0) -> nn.Conv2d:
    pad = (k - 1) // 2 if padding is None else padding
    module = nn.Conv2d(cin, cout, k, padding=pad, groups=groups, bias=bias).to(F64)
    return _randomize(module, seed)  # type: ignore[return-value]


def _x(c: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(2, c, 9, 11, generator=torch.Generator().manual_seed(seed), dtype=F64)


def test_pad_kernel_centres_and_rejects_off_centre_sizes() -> None:
    w = torch.arange(1.0, 5.0).reshape(1, 4, 1, 1)
    padded = rp.pad_kernel(w, 5)
    assert padded.shape == (1, 4, 5, 5)
    assert torch.equal(padded[:, :, 2, 2], w[:, :, 0, 0])
    assert padded.sum() == w.sum()
    with pytest.raises(ValueError):
        rp.pad_kernel(torch.zeros(1, 1, 3, 3), 4)
    with pytest.raises(ValueError):
        rp.pad_kernel(torch.zeros(1, 1, 3, 3), 1)


@pytest.mark.parametrize(("channels", "k", "groups"), [(6, 1, 1), (6, 3, 1), (6, 3, 6), (6, 5, 2)])
def test_identity_kernel_reproduces_input(channels: int, k: int, groups: int) -> None:
    w = rp.identity_kernel(channels, k, groups, dtype=F64)
    x = _x(channels)
    assert torch.equal(F.conv2d(x, w, padding=k // 2, groups=groups), x)
    branch = rp.identity_branch(channels, k, groups, like=w)
    assert branch.bias.dtype == F64 and not branch.bias.any()


def test_grouped_to_dense_matches_grouped_conv() -> None:
    grouped = _rand_conv(8, 8, 3, groups=4, seed=1)
    w = rp.grouped_to_dense(grouped.weight.detach(), 4)
    assert w.shape == (8, 8, 3, 3)
    x = _x(8)
    assert torch.allclose(F.conv2d(x, w, grouped.bias, padding=1), grouped(x), atol=1e-12)


@pytest.mark.parametrize("groups", [1, 5])
def test_sum_branches_equals_sum_of_parallel_convs(groups: int) -> None:
    c = 5
    k3, k1 = _rand_conv(c, c, 3, groups, seed=1), _rand_conv(c, c, 1, groups, seed=2)
    k5 = _rand_conv(c, c, 5, groups, seed=3)
    x = _x(c)
    fused = rp.sum_branches(rp.conv_params(k3), rp.conv_params(k1), rp.conv_params(k5),
                         rp.identity_branch(c, 3, groups, like=k3.weight))
    expected = k3(x) + k1(x) + k5(x) + x
    got = F.conv2d(x, fused.weight, fused.bias, padding=2, groups=groups)
    assert fused.weight.shape[-2:] == (5, 5)
    assert torch.allclose(got, expected, atol=1e-12)


def test_fold_1x1_into_kxk() -> None:
    k3, k1 = _rand_conv(4, 6, 3, seed=4), _rand_conv(4, 6, 1, seed=5)
    fused = rp.fold_1x1_into_kxk(rp.conv_params(k3), rp.conv_params(k1))
    x = _x(4)
    assert torch.allclose(rp.to_conv2d(fused)(x), k3(x) + k1(x), atol=1e-12)
    with pytest.raises(ValueError):
        rp.fold_1x1_into_kxk(rp.conv_params(k3), rp.conv_params(k3))


@pytest.mark.parametrize("k", [3, 5])
def test_fuse_sequential_1x1_kxk(k: int) -> None:
    first = _rand_conv(4, 7, 1, seed=6)
    second = _rand_conv(7, 3, k, padding=0, seed=7)
    x = _x(4)
    p = k // 2
    expected = second(first(F.pad(x, (p, p, p, p))))  # intermediate border = first.bias
    fused = rp.fuse_sequential_1x1_kxk(rp.conv_params(first), rp.conv_params(second))
    assert torch.allclose(F.conv2d(x, fused.weight, fused.bias, padding=p), expected, atol=1e-12)
    with pytest.raises(ValueError):
        rp.fuse_sequential_1x1_kxk(rp.conv_params(second), rp.conv_params(first))


def test_fuse_conv_bn_matches_eval_batchnorm() -> None:
    c = _rand_conv(3, 6, 3, seed=8)
    bn = _randomize(nn.BatchNorm2d(6).to(F64), seed=9)
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(6, dtype=F64))
        bn.running_var.copy_(torch.rand(6, dtype=F64) + 0.5)
    bn.eval()
    fused = rp.fuse_conv_bn(rp.conv_params(c), bn)
    x = _x(3)
    assert torch.allclose(rp.to_conv2d(fused)(x), bn(c(x)), atol=1e-12)


def test_to_conv2d_refuses_to_drop_a_bias() -> None:
    kernel = Kernel(torch.zeros(2, 2, 3, 3), torch.ones(2))
    with pytest.raises(ValueError):
        rp.to_conv2d(kernel, bias=False)
    assert rp.to_conv2d(Kernel(torch.zeros(2, 2, 3, 3), torch.zeros(2)), bias=False).bias is None


def test_bsconvu_rep_fused_is_exact_and_plain() -> None:
    block = _randomize(BSConvURep(6, 6, 3).to(F64), seed=10)
    fused = block.fused()
    assert type(fused) is BSConvU
    assert set(fused.state_dict()) == {"pw.weight", "dw.weight", "dw.bias"}
    x = _x(6)
    with torch.no_grad():
        ref = block(x)
        assert torch.allclose(fused(x), ref, atol=1e-12)
        # A fold that forgets the depth-wise identity is caught by the same comparison.
        broken = block.fused()
        broken.dw.weight[:, 0, 1, 1] -= 1.0
        assert (broken(x) - ref).abs().max() > 1e-2


@pytest.mark.parametrize("scale", [2, 3])
def test_rep_upsampler_fused_is_exact(scale: int) -> None:
    up = _randomize(RepUpsampler(5, 3, scale).to(F64), seed=11)
    fused = up.fused()
    assert set(fused.state_dict()) == {"0.weight", "0.bias"}
    x = _x(5)
    with torch.no_grad():
        ref = up(x)
        assert ref.shape == (2, 3, 9 * scale, 11 * scale)
        assert torch.allclose(fused(x), ref, atol=1e-12)


def test_fused_blocks_keep_float32() -> None:
    """Folding happens in float64 internally; the deploy module must come back in the caller's dtype."""
    assert BSConvURep(4, 4).fused().dw.weight.dtype == torch.float32
    assert RepUpsampler(4, 3, 2).fused()[0].weight.dtype == torch.float32


# ----------------------------------------------------------------------------------------------------
# Released LKDN-S weights
# ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def official_lkdn_s() -> nn.Module:
    path = shared_path("weights", "official", "lkdn_s_x4.pth")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    model = create_model("lkdn_s", 4)
    result = model.load_state_dict(checkpoint["params_ema"], strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    return model.eval()


@pytest.fixture(scope="module")
def baby() -> tuple[torch.Tensor, torch.Tensor]:
    """(LR ×4, HR) of Set5 'baby': the LR is a MATLAB-style bicubic downscale of the mod-cropped HR."""
    lr = _load_rgb(shared_path("data", "bicubic_reference", "down_x4", "baby.png"))
    hr = _load_rgb(shared_path("data", "benchmarks", "Set5", "HR", "baby.png"))
    h, w = lr.shape[-2] * 4, lr.shape[-1] * 4
    return lr, hr[..., :h, :w]


@pytest.mark.shared
def test_official_lkdn_s_reparameterizes_to_deploy_layout(official_lkdn_s: nn.Module,
                                                          baby: tuple[torch.Tensor, torch.Tensor]) -> None:
    deploy = reparameterize(official_lkdn_s)
    assert _shapes(deploy) == _manifest("lkdn_s_deploy_x4")["state_dict"]
    lr, _ = baby
    with torch.no_grad():
        assert (official_lkdn_s(lr) - deploy(lr)).abs().max() <= 1e-4


@pytest.mark.shared
def test_official_lkdn_s_output_is_a_plausible_upscale(official_lkdn_s: nn.Module,
                                                       baby: tuple[torch.Tensor, torch.Tensor]) -> None:
    """Close to bicubic (wiring sanity) and clearly better than bicubic against the HR image: a wrong input
    range (e.g. feeding [0, 255]) or a mis-wired block still looks bicubic-like but loses several dB to HR."""
    lr, hr = baby
    with torch.no_grad():
        sr = official_lkdn_s(lr).clamp(0, 1)
    bicubic = F.interpolate(lr, scale_factor=4, mode="bicubic", align_corners=False).clamp(0, 1)
    assert _psnr(sr, bicubic) > 25.0
    crop = (..., slice(4, -4), slice(4, -4))  # the usual scale-wide border crop
    assert _psnr(sr[crop], hr[crop]) > _psnr(bicubic[crop], hr[crop]) + 1.0


def test_half_precision_is_flagged_unsafe_and_the_upscaler_warns() -> None:
    """Measured on the official LKDN-S weights (fp16 loses 9 dB on Set5), so the registry says so and the
    inference path warns instead of silently degrading."""
    from esrkit.infer import Upscaler
    from esrkit.models import capabilities_of

    model = create_model("lkdn_s", 4)
    caps = capabilities_of(model)
    assert not caps.fp16 and not caps.bf16 and caps.safe_precision("fp32")
    with pytest.warns(RuntimeWarning, match="fp16 is not marked safe"):
        Upscaler(reparameterize(model), 4, precision="fp16")
