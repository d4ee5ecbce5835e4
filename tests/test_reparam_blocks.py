"""Every re-parameterizable block of :mod:`esrkit.layers.reparam`: its ``fused()`` form computes what the train form
computes, keeps its mode and dtype, and has the plain deploy layout.

The blocks are *discovered*: every ``nn.Module`` class defined in a submodule of the package that has a
``fused`` method is collected at import. Each gets the hand-written cases of :data:`FACTORIES` (several channel
counts, kernel sizes and options), or, when it has none, an automatic case ``cls(4, 4)``; a new block that cannot
be built that way fails :func:`test_every_block_in_the_package_is_covered` until it gets a factory here.

Weights, biases *and* BatchNorm statistics are random (a fold that used the train-time batch statistics, dropped
a branch's bias or mis-centred a kernel would show), inputs have odd sizes down to 1×1 so every output pixel of the
small ones is a border pixel, and the float32 check is the 1e-5 that the zoo uses; the hypothesis properties rerun
the folds in float64 on random shapes at 1e-9.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import esrkit.layers.reparam as reparam_pkg
from esrkit.layers.reparam.bias import (
    ChannelBias,
    ConvChannelBias,
    absorb_bias,
    remove_conv_biases,
)
from esrkit.layers.reparam.bsconv import BSConvU, BSConvURep
from esrkit.layers.reparam.dbb import DBB, avg_pool_kernel, pad_with
from esrkit.layers.reparam.ecb import ECB, EDGE_FILTERS, ConvAct
from esrkit.layers.reparam.repconv import RepConv
from esrkit.layers.reparam.upsampler import RepUpsampler
from esrkit.models import reparameterize
from helpers import randomize_weights

F64 = torch.float64
SIZES = [(1, 1), (5, 3), (7, 9), (2, 11)]


# ----------------------------------------------------------------------------------------------------
# Random weights and statistics
# ----------------------------------------------------------------------------------------------------


def randomize(module: nn.Module, seed: int = 0, gain: float = 0.7) -> nn.Module:
    """The shared seeded noise with O(0.1) biases, BatchNorm gains around 1 and non-trivial running statistics."""
    return randomize_weights(module, seed, gain, bias=0.2, batchnorm=True)


def has_batchnorm(module: nn.Module) -> bool:
    return any(isinstance(m, nn.BatchNorm2d) for m in module.modules())


# ----------------------------------------------------------------------------------------------------
# The factory registry
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One configuration of a block: how to build it, what it takes, and what its fused form must look like."""

    name: str
    build: Callable[[], nn.Module]
    in_channels: int
    layout: Callable[[nn.Module], None] | None = None  # asserts the deploy layout beyond the generic checks


def conv_layout(k: int, groups: int = 1, bias: bool = True) -> Callable[[nn.Module], None]:
    def check(fused: nn.Module) -> None:
        assert type(fused) is nn.Conv2d
        assert fused.kernel_size == (k, k) and fused.groups == groups and fused.padding == (k // 2, k // 2)
        assert (fused.bias is not None) == bias
    return check


def ecb_layout(prelu: bool) -> Callable[[nn.Module], None]:
    def check(fused: nn.Module) -> None:
        assert type(fused) is ConvAct and type(fused.conv3x3) is nn.Conv2d
        assert fused.conv3x3.kernel_size == (3, 3)
        keys = {"conv3x3.weight", "conv3x3.bias"} | ({"act.weight"} if prelu else set())
        assert set(fused.state_dict()) == keys
    return check


def bsconv_layout(fused: nn.Module) -> None:
    assert type(fused) is BSConvU
    assert set(fused.state_dict()) == {"pw.weight", "dw.weight", "dw.bias"}


def upsampler_layout(fused: nn.Module) -> None:
    assert isinstance(fused, nn.Sequential) and [type(m) for m in fused] == [nn.Conv2d, nn.PixelShuffle]
    assert fused[0].kernel_size == (3, 3)


def _disabled_bias_block() -> nn.Module:
    block = ConvChannelBias(4, 5, 3)
    block.bias.enabled = False
    return block


FACTORIES: dict[type, list[Case]] = {
    RepConv: [
        Case("repvgg-4-k3", lambda: RepConv(4, 4, 3), 4, conv_layout(3)),
        Case("acb-4to6-k3", lambda: RepConv(4, 6, 3, identity=False, asymmetric=True), 4, conv_layout(3)),
        Case("acb-idt-5-k5-nobn", lambda: RepConv(5, 5, 5, asymmetric=True, bn=False), 5, conv_layout(5)),
        Case("grouped-6-k3", lambda: RepConv(6, 6, 3, groups=3, asymmetric=True), 6, conv_layout(3, groups=3)),
        Case("depthwise-4-k5", lambda: RepConv(4, 4, 5, groups=4), 4, conv_layout(5, groups=4)),
        Case("k1-3to7", lambda: RepConv(3, 7, 1, identity=False), 3, conv_layout(1)),
        Case("bias-off-4", lambda: RepConv(4, 4, 3, bn=False, bias=False), 4, conv_layout(3, bias=False)),
    ],
    ECB: [
        Case("head-1to8-prelu", lambda: ECB(1, 8), 1, ecb_layout(True)),
        Case("3to8-prelu", lambda: ECB(3, 8), 3, ecb_layout(True)),
        Case("8-idt-relu", lambda: ECB(8, 8, act="relu", with_idt=True), 8, ecb_layout(False)),
        Case("tail-8to12-linear", lambda: ECB(8, 12, act="linear", with_idt=True), 8, ecb_layout(False)),
        Case("5-dm1.5-gelu", lambda: ECB(5, 5, depth_multiplier=1.5, act="gelu"), 5, ecb_layout(False)),
    ],
    DBB: [
        Case("4to6-k3", lambda: DBB(4, 6, 3), 4, conv_layout(3)),
        Case("5-k5", lambda: DBB(5, 5, 5), 5, conv_layout(5)),
        Case("3to4-k3-internal8", lambda: DBB(3, 4, 3, internal_channels=8), 3, conv_layout(3)),
        Case("4-k1", lambda: DBB(4, 4, 1), 4, conv_layout(1)),
    ],
    BSConvURep: [
        Case("6-k3", lambda: BSConvURep(6, 6, 3), 6, bsconv_layout),
        Case("5-k5", lambda: BSConvURep(5, 5, 5), 5, bsconv_layout),
    ],
    RepUpsampler: [
        Case("5to3-x2", lambda: RepUpsampler(5, 3, 2), 5, upsampler_layout),
        Case("4to3-x3", lambda: RepUpsampler(4, 3, 3), 4, upsampler_layout),
        Case("6to1-x4", lambda: RepUpsampler(6, 1, 4), 6, upsampler_layout),
    ],
    ConvChannelBias: [
        Case("4to6-k3", lambda: ConvChannelBias(4, 6, 3), 4, conv_layout(3)),
        Case("5-k1-depthwise", lambda: ConvChannelBias(5, 5, 1, groups=5), 5, conv_layout(1, groups=5)),
        Case("4to5-k3-bias-off", _disabled_bias_block, 4, conv_layout(3, bias=False)),
    ],
}


def discover_blocks() -> list[type]:
    """Every ``nn.Module`` subclass defined in a submodule of :mod:`esrkit.layers.reparam` that has ``fused``."""
    found: dict[str, type] = {}
    for info in pkgutil.iter_modules(reparam_pkg.__path__):
        module = importlib.import_module(f"{reparam_pkg.__name__}.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (cls.__module__ == module.__name__ and issubclass(cls, nn.Module)
                    and callable(getattr(cls, "fused", None))):
                found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return [found[k] for k in sorted(found)]


BLOCKS = discover_blocks()
AUTO = [cls for cls in BLOCKS if cls not in FACTORIES]
CASES = [pytest.param(case, id=f"{cls.__name__}-{case.name}") for cls in BLOCKS for case in FACTORIES.get(cls, [])]
CASES += [pytest.param(Case("auto", lambda cls=cls: cls(4, 4), 4), id=f"{cls.__name__}-auto") for cls in AUTO]


def test_every_block_in_the_package_is_covered() -> None:
    """The known blocks are all discovered, and a block without hand-written cases can at least be built as
    ``cls(4, 4)`` for the automatic case (otherwise: add it to FACTORIES)."""
    assert set(FACTORIES) <= set(BLOCKS), "discovery missed a block that has factories"
    for cls in AUTO:
        try:
            cls(4, 4)
        except Exception as exc:  # pragma: no cover - fails loudly by design
            pytest.fail(f"{cls.__module__}.{cls.__qualname__} has fused() but no factory in FACTORIES and "
                        f"cls(4, 4) fails ({exc}); add its cases to tests/test_reparam_blocks.py")


# ----------------------------------------------------------------------------------------------------
# The fold contract, per case
# ----------------------------------------------------------------------------------------------------


def _pair(case: Case, seed: int, mode_train: bool, dtype: torch.dtype = torch.float32) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(seed)
    block = randomize(case.build().to(dtype), seed=seed).train(mode_train)
    return block, block.fused()


def _input(case: Case, size: tuple[int, int], seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(2, case.in_channels, *size, generator=gen, dtype=F64).to(dtype)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_fused_form_computes_the_same_function(case: Case, size: tuple[int, int]) -> None:
    block, fused = _pair(case, seed=size[0] * 31 + size[1], mode_train=False)
    x = _input(case, size, seed=7)
    with torch.no_grad():
        ref, out = block(x), fused(x)
    assert out.shape == ref.shape
    assert float(ref.abs().max()) > 1e-2, "random weights should give a non-trivial output"
    assert (ref - out).abs().max() <= 1e-5 * max(1.0, float(ref.abs().max()))


@pytest.mark.parametrize("case", CASES)
def test_fused_form_is_exact_in_float64(case: Case) -> None:
    """Without float32 rounding any fold error, however small, would stand out."""
    block, fused = _pair(case, seed=3, mode_train=False, dtype=F64)
    x = _input(case, (6, 5), seed=2, dtype=F64)
    with torch.no_grad():
        ref, out = block(x), fused(x)
    assert next(fused.parameters()).dtype == F64
    assert (ref - out).abs().max() <= 1e-10 * max(1.0, float(ref.abs().max()))


# BatchNorm normalizes by batch statistics in train mode while the fold uses the running ones, so only BN-free
# blocks can match in train mode.
BN_FREE = [p for p in CASES if not has_batchnorm(p.values[0].build())]


@pytest.mark.parametrize("case", BN_FREE)
def test_batchnorm_free_blocks_fold_in_train_mode_too(case: Case) -> None:
    """Without BatchNorm nothing depends on the mode, so the train-mode forward must match as well."""
    block, fused = _pair(case, seed=5, mode_train=True)
    x = _input(case, (5, 7), seed=4)
    with torch.no_grad():
        ref, out = block(x), fused(x)
    assert (ref - out).abs().max() <= 1e-5 * max(1.0, float(ref.abs().max()))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("mode_train", [True, False], ids=["train", "eval"])
def test_fused_form_keeps_mode_and_dtype(case: Case, mode_train: bool) -> None:
    block, fused = _pair(case, seed=1, mode_train=mode_train)
    assert all(m.training == mode_train for m in fused.modules())
    assert all(p.dtype == torch.float32 for p in fused.parameters())
    assert all(m.training == mode_train for m in block.modules()), "fused() must not change the block's mode"


@pytest.mark.parametrize("case", CASES)
def test_fused_form_has_the_plain_layout(case: Case) -> None:
    block, fused = _pair(case, seed=2, mode_train=False)
    assert not any(callable(getattr(m, "fused", None)) for m in fused.modules()), "deploy form is not plain"
    assert not has_batchnorm(fused)
    assert sum(p.numel() for p in fused.parameters()) <= sum(p.numel() for p in block.parameters())
    if case.layout is not None:
        case.layout(fused)


def test_reparameterize_folds_blocks_inside_a_network() -> None:
    """The model-level fold (innermost first) replaces every block of this package in a composite network."""
    net = nn.Sequential(ECB(3, 6), RepConv(6, 6, 3, asymmetric=True), nn.ReLU(), DBB(6, 6, 3),
                        ConvChannelBias(6, 5, 3), RepUpsampler(5, 3, 2))
    net = randomize(net, seed=9).eval()
    deploy = reparameterize(net)
    assert not any(callable(getattr(m, "fused", None)) for m in deploy.modules())
    x = torch.randn(1, 3, 7, 6, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref, out = net(x), deploy(x)
    assert (ref - out).abs().max() <= 1e-5 * max(1.0, float(ref.abs().max()))


# ----------------------------------------------------------------------------------------------------
# Block-specific facts
# ----------------------------------------------------------------------------------------------------


def test_ecb_matches_the_official_bias_padded_formulation() -> None:
    """The official ECB pads each 1×1 output with its bias ``b0`` before an unpadded 3×3 (xindongzhang/ECBSR,
    models/ecb.py); esrkit pads the input with zeros instead. Rewritten here independently, the two agree, and
    they differ from the naive zero-padded pair at the border only (which is why the padding matters)."""
    block = randomize(ECB(4, 5).double(), seed=4)
    x = torch.randn(1, 4, 6, 7, generator=torch.Generator().manual_seed(1), dtype=F64)

    def bias_padded(k0, b0, k3, b3, groups=1):
        mid = F.conv2d(x, k0, b0)
        padded = pad_with(mid, b0, 1)
        return F.conv2d(padded, k3, b3, groups=groups)

    def zero_padded(k0, b0, k3, b3, groups=1):
        return F.conv2d(F.conv2d(x, k0, b0), k3, b3, padding=1, groups=groups)

    with torch.no_grad():
        es = block.conv1x1_3x3
        refs = [bias_padded(es.k0, es.b0, es.k1, es.b1)]
        naive = [zero_padded(es.k0, es.b0, es.k1, es.b1)]
        for branch in (block.conv1x1_sbx, block.conv1x1_sby, block.conv1x1_lpl):
            k3 = branch.scale * branch.mask
            refs.append(bias_padded(branch.k0, branch.b0, k3, branch.bias, groups=5))
            naive.append(zero_padded(branch.k0, branch.b0, k3, branch.bias, groups=5))
        reference = block.act(block.conv3x3(x) + sum(refs))
        wrong = block.act(block.conv3x3(x) + sum(naive))
        assert torch.allclose(block(x), reference, atol=1e-12)
        assert torch.allclose(block.fused()(x), reference, atol=1e-12)
        diff = (wrong - reference).abs()
        assert diff[..., 1:-1, 1:-1].max() < 1e-12 and diff.max() > 1e-3


def test_ecb_edge_masks_and_official_names() -> None:
    block = ECB(2, 3)
    assert torch.equal(block.conv1x1_sbx.mask[0, 0], torch.tensor([[1.0, 0, -1], [2, 0, -2], [1, 0, -1]]))
    assert torch.equal(block.conv1x1_sby.mask[1, 0], torch.tensor([[1.0, 2, 1], [0, 0, 0], [-1, -2, -1]]))
    assert torch.equal(block.conv1x1_lpl.mask[2, 0], torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]))
    assert set(EDGE_FILTERS) == {"sobel_x", "sobel_y", "laplacian"}
    expected = {"conv3x3.weight", "conv3x3.bias", "conv1x1_3x3.k0", "conv1x1_3x3.b0", "conv1x1_3x3.k1",
                "conv1x1_3x3.b1", "act.weight"}
    expected |= {f"conv1x1_{b}.{p}" for b in ("sbx", "sby", "lpl") for p in ("k0", "b0", "scale", "bias", "mask")}
    assert set(block.state_dict()) == expected
    assert block.conv1x1_3x3.k0.shape == (6, 2, 1, 1)  # depth_multiplier 2 expands to 2·out
    assert not any(n.endswith("mask") for n, _ in block.named_parameters()), "masks are fixed buffers"
    assert not ECB(3, 4, with_idt=True).with_idt and ECB(4, 4, with_idt=True).with_idt


def test_edge_branches_really_are_edge_filters() -> None:
    """On a constant image every derivative filter responds with zero in the interior."""
    block = randomize(ECB(1, 2, act="linear").double(), seed=0)
    x = torch.full((1, 1, 6, 6), 3.0, dtype=F64)
    with torch.no_grad():
        for branch in (block.conv1x1_sbx, block.conv1x1_sby, block.conv1x1_lpl):
            interior = branch(x)[..., 1:-1, 1:-1] - branch.bias.reshape(1, -1, 1, 1)
            assert interior.abs().max() < 1e-12


def test_repconv_rejects_impossible_branches() -> None:
    with pytest.raises(ValueError, match="identity"):
        RepConv(3, 4, 3)
    with pytest.raises(ValueError, match="odd"):
        RepConv(4, 4, 2)
    with pytest.raises(ValueError, match="asymmetric"):
        RepConv(4, 4, 1, asymmetric=True)


def test_repconv_branch_names_follow_repvgg() -> None:
    keys = set(RepConv(4, 4, 3, asymmetric=True).state_dict())
    assert {"rbr_dense.conv.weight", "rbr_dense.bn.running_mean", "rbr_1x1.conv.weight", "rbr_identity.weight",
            "rbr_hor.conv.weight", "rbr_ver.conv.weight"} <= keys
    assert "rbr_dense.conv.bias" not in keys  # BN's shift replaces the conv bias


def test_dbb_pads_its_sequential_branches_with_the_bn_shift() -> None:
    """DBB's sequential paths pad the 1×1-BN output with the BN shift (running statistics), also in train mode."""
    block = randomize(DBB(3, 4, 3), seed=6).train()
    x = torch.randn(4, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    seen: dict[str, torch.Tensor] = {}

    def keep_input(module: nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        seen["avg_in"] = args[0]

    block.dbb_avg.second.register_forward_hook(keep_input)
    with torch.no_grad():
        block(x)
    bn = block.dbb_avg.first.bn
    shift = bn.bias - bn.running_mean * bn.weight / torch.sqrt(bn.running_var + bn.eps)
    border = seen["avg_in"][:, :, 0, :]
    assert torch.allclose(border, shift.reshape(1, -1, 1).expand_as(border))
    kernel = avg_pool_kernel(2, 3)
    assert kernel.shape == (2, 2, 3, 3) and kernel[0, 0].sum() == pytest.approx(1.0) and kernel[0, 1].abs().sum() == 0


# ----------------------------------------------------------------------------------------------------
# Bias removal
# ----------------------------------------------------------------------------------------------------


def test_remove_conv_biases_reports_what_it_dropped() -> None:
    net = randomize(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 1, bias=False),
                                  nn.Conv2d(2, 2, 1)), seed=1)
    stripped, report = remove_conv_biases(net)
    assert set(report) == {"0", "3"}
    assert report["0"] == pytest.approx(float(net[0].bias.detach().abs().max()))
    assert all(m.bias is None for m in stripped.modules() if isinstance(m, nn.Conv2d))
    assert net[0].bias is not None, "the input model is untouched unless inplace"
    _, only = remove_conv_biases(net, ["3"])
    assert set(only) == {"3"}
    with pytest.raises(ValueError, match="no Conv2d"):
        remove_conv_biases(net, ["7"])


@pytest.mark.parametrize(("k", "padding", "groups"), [(1, 0, 1), (3, 0, 1), (3, 0, 2), (1, 0, 4)])
def test_absorb_bias_is_exact_where_nothing_is_padded(k: int, padding: int, groups: int) -> None:
    first = randomize(nn.Conv2d(3, 4, 3, padding=1), seed=2).double()
    second = randomize(nn.Conv2d(4, 4, k, padding=padding, groups=groups), seed=3).double()
    x = torch.randn(2, 3, 7, 6, generator=torch.Generator().manual_seed(0), dtype=F64)
    new_first, new_second = absorb_bias(first, second)
    assert new_first.bias is None and first.bias is not None
    with torch.no_grad():
        assert torch.allclose(new_second(new_first(x)), second(first(x)), atol=1e-12)


def test_absorb_bias_refuses_a_zero_padded_conv() -> None:
    first, second = nn.Conv2d(3, 4, 1), nn.Conv2d(4, 4, 3, padding=1)
    with pytest.raises(ValueError, match="not exact"):
        absorb_bias(first, second)
    with pytest.raises(ValueError, match="not exact"):
        absorb_bias(first, nn.Conv2d(4, 4, 1, padding=1))


def test_channel_bias_switch() -> None:
    """Switching the bias off is removal within the same block: forward and fused drop it together."""
    block = randomize(ConvChannelBias(3, 4, 3), seed=4).eval()
    x = torch.randn(1, 3, 5, 5, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        on = block(x)
        block.bias.enabled = False
        off = block(x)
        fused = block.fused()
        assert fused.bias is None and torch.allclose(fused(x), off, atol=1e-6)
        assert torch.allclose(on - off, block.bias.bias.reshape(1, -1, 1, 1).expand_as(on), atol=1e-6)
    assert isinstance(block.bias, ChannelBias)


# ----------------------------------------------------------------------------------------------------
# Properties on random shapes (float64)
# ----------------------------------------------------------------------------------------------------


def _assert_exact(block: nn.Module, in_channels: int, h: int, w: int, seed: int) -> None:
    block = randomize(block.double(), seed=seed).eval()
    fused = block.fused()
    x = torch.randn(1, in_channels, h, w, generator=torch.Generator().manual_seed(seed), dtype=F64)
    with torch.no_grad():
        ref, out = block(x), fused(x)
    assert (ref - out).abs().max() <= 1e-9 * max(1.0, float(ref.abs().max()))


_channels = st.integers(1, 6)
_sizes = st.integers(1, 8)


@settings(max_examples=25, deadline=None)
@given(cin=_channels, cout=_channels, k=st.sampled_from([1, 3, 5]), one=st.booleans(), idt=st.booleans(),
       asym=st.booleans(), bn=st.booleans(), h=_sizes, w=_sizes, seed=st.integers(0, 2**16))
def test_property_repconv_folds_exactly(cin, cout, k, one, idt, asym, bn, h, w, seed) -> None:
    idt = idt and cin == cout
    asym = asym and k >= 3
    _assert_exact(RepConv(cin, cout, k, one_by_one=one, identity=idt, asymmetric=asym, bn=bn), cin, h, w, seed)


@settings(max_examples=25, deadline=None)
@given(cin=_channels, cout=_channels, dm=st.sampled_from([0.5, 1.0, 2.0, 3.0]), idt=st.booleans(),
       act=st.sampled_from(["prelu", "relu", "linear"]), h=_sizes, w=_sizes, seed=st.integers(0, 2**16))
def test_property_ecb_folds_exactly(cin, cout, dm, idt, act, h, w, seed) -> None:
    if int(cout * dm) < 1:
        dm = 1.0
    _assert_exact(ECB(cin, cout, dm, act, idt), cin, h, w, seed)


@settings(max_examples=20, deadline=None)
@given(cin=_channels, cout=_channels, k=st.sampled_from([1, 3, 5]), mid=st.one_of(st.none(), _channels),
       h=_sizes, w=_sizes, seed=st.integers(0, 2**16))
def test_property_dbb_folds_exactly(cin, cout, k, mid, h, w, seed) -> None:
    _assert_exact(DBB(cin, cout, k, internal_channels=mid), cin, h, w, seed)
