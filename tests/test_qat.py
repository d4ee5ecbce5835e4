"""Quantization-aware fine-tuning: the simulated int8 rounding, the layers it applies to, and a ``quantize: true``
stage of ``esrkit train`` (runs, resumes exactly, gives back a plain fp32 checkpoint).

The end-to-end figure (int8 Set5/Set14 within 0.1 dB after ``esrkit quantize --method qat``) is in
``quantize_cases.py`` (NNCF and the runtimes run in a process of their own there).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from esrkit.errors import InputError
from esrkit.models import create_model
from esrkit.quantize.fake_quant import (
    FakeQuantConv2d,
    calibrate,
    int8_convolutions,
    is_prepared,
    prepare_qat,
    strip_qat,
)
from esrkit.train.recipe import load_recipe
from esrkit.train.trainer import Trainer
from test_train import _images, _weights

TWO_BLOCKS = {"num_feat": 8, "num_block": 2, "esa_channels": 4}


def _rlfn() -> nn.Module:
    torch.manual_seed(0)
    return create_model("rlfn", scale=4, **TWO_BLOCKS).eval()


def test_int8_convolutions_are_all_but_the_fp32_islands() -> None:
    model = _rlfn()
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    # The islands of the PTQ recipe (esrkit.quantize.graph's rule), written out by hand for RLFN: the first conv
    # (reads pixels), each block's c5 (reads out + x) and ESA conv4 (reads the sum of the two ESA paths), the
    # long-skip tail conv_2, and the pixel-shuffle head.
    islands = {"conv_1", "block_1.c5", "block_1.esa.conv4", "block_2.c5", "block_2.esa.conv4", "conv_2",
               "upsampler.0"}
    assert set(int8_convolutions(model)) == set(convs) - islands
    assert len(convs) - len(islands) == 2 * 7  # c1_r, c2_r, c3_r and ESA's conv1, conv_f, conv2, conv3 per block


def _one_conv(weight: torch.Tensor) -> FakeQuantConv2d:
    conv = nn.Conv2d(weight.shape[1], weight.shape[0], 3, padding=1)
    with torch.no_grad():
        conv.weight.copy_(weight)
        conv.bias.zero_()
    return FakeQuantConv2d(conv)


def test_weights_round_to_seven_bits_per_output_channel() -> None:
    torch.manual_seed(1)
    weight = torch.randn(4, 2, 3, 3) * torch.tensor([1.0, 0.1, 10.0, 0.01])[:, None, None, None]
    q = _one_conv(weight)._quantized_weight()
    for c in range(4):
        step = weight[c].abs().max() / 63.5
        levels = q[c] / step
        assert torch.allclose(levels, levels.round(), atol=1e-4)  # on the grid of that channel's own step
        assert levels.round().min() >= -64 and levels.round().max() <= 64
        assert torch.allclose(q[c], weight[c], atol=float(step) / 2 + 1e-6)  # rounded to the nearest level
    assert torch.unique(q[0]).numel() <= 129


@pytest.mark.parametrize(("low", "step_divisor"), [(0.0, 255), (-1.0, 127)])
def test_inputs_round_to_eight_bits_unsigned_or_signed(low: float, step_divisor: int) -> None:
    layer = _one_conv(torch.randn(3, 2, 3, 3))
    samples = [torch.rand(1, 2, 8, 8) * (2.0 - low) + low for _ in range(3)]
    calibrate(layer, samples)
    expected_range = torch.stack([s.abs().max() for s in samples]).mean()  # the mean of per-sample maxima
    assert torch.isclose(layer.act_range, expected_range) and bool(layer.act_signed) == (low < 0)
    x = torch.linspace(low, 3.0, 101).reshape(1, 1, 1, 101).repeat(1, 2, 1, 1)
    q = layer._quantize_input(x)
    step = float(expected_range) / step_divisor
    assert torch.allclose(q / step, (q / step).round(), atol=1e-3)
    assert float(q.max()) <= float(expected_range) + 1e-5  # clipped at the calibrated range


def test_gradients_pass_straight_through_and_strip_restores_plain_convolutions() -> None:
    model = _rlfn()
    plain_keys = set(model.state_dict())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    prepare_qat(model)
    with pytest.raises(RuntimeError, match="calibrate"):
        model(torch.rand(1, 3, 16, 16))
    calibrate(model, [torch.rand(2, 3, 16, 16)])
    model.train()
    model(torch.rand(2, 3, 16, 16)).abs().mean().backward()
    layer = model.get_submodule("block_1.c1_r")
    assert isinstance(layer, FakeQuantConv2d) and layer.conv.weight.grad is not None
    assert float(layer.conv.weight.grad.abs().sum()) > 0
    strip_qat(model)
    assert not is_prepared(model) and set(model.state_dict()) == plain_keys
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


QUANTIZE_STAGES = """
model: rlfn
scale: 4
hparams: {num_feat: 8, num_block: 1, esa_channels: 4}
seed: 5
precision: fp32
val_every: 1000
checkpoint_every: 2
log_every: 1
workers: 0
stages:
  - iters: 2
    patch: 64
    batch: 4
    loss: {l1: 1.0}
    optimizer: {name: adam, lr: 1.0e-3}
  - name: qat
    quantize: true
    iters: 4
    patch: 64
    batch: 4
    loss: {l1: 1.0}
    optimizer: {name: adam, lr: 1.0e-4}
    scheduler: {name: cosine, eta_min: 1.0e-6}
"""


def test_a_quantize_stage_trains_resumes_exactly_and_writes_plain_weights(tmp_path: Path) -> None:
    data = _images(tmp_path / "train", 6, 96)
    recipe_path = tmp_path / "qat.yaml"
    recipe_path.write_text(QUANTIZE_STAGES)
    whole = Trainer(load_recipe(recipe_path), [data], tmp_path / "whole", device="cpu").run()
    # Stopped in the middle of the quantize stage (its checkpoint holds the fake-quantized model and its ranges),
    # then resumed: the same weights as the uninterrupted run.
    Trainer(load_recipe(recipe_path), [data], tmp_path / "parts", device="cpu", stop_after=4).run()
    Trainer(load_recipe(recipe_path), [data], tmp_path / "parts", device="cpu", resume=True).run()
    a, b = _weights(tmp_path / "whole"), _weights(tmp_path / "parts")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    torch.manual_seed(5)
    plain = create_model("rlfn", scale=4, num_feat=8, num_block=1, esa_channels=4).state_dict()
    assert set(a) == set(plain)  # plain convolutions again: no fake-quant wrappers or range buffers
    from esrkit import load_checkpoint

    assert not is_prepared(load_checkpoint(whole.deploy_weights))  # type: ignore[arg-type]


@pytest.mark.parametrize(("stage", "needle"), [
    ("quantize: yes please", "quantize must be true or false"),
    ("quantize: true\n    prune: 0.1", "cannot also prune"),
])
def test_bad_quantize_stages_are_refused(stage: str, needle: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(QUANTIZE_STAGES.replace("quantize: true", stage))
    with pytest.raises(InputError, match=needle):
        load_recipe(path)
