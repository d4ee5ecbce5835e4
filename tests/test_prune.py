"""Structured pruning: a round removes the asked share of every learned channel group (dense, not masked), the
result is an ordinary esrkit model (saves, loads, folds, profiles smaller), pruning composes with training stages
(fine-tuning recovers, resume across a pruning stage is exact), and unsupported graphs are refused clearly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from esrkit.checkpoints import load_checkpoint, save_checkpoint
from esrkit.compress import prune_filters
from esrkit.data.io import write_image
from esrkit.errors import PruningError
from esrkit.models import create_model, get_config, reparameterize
from esrkit.profile import count_complexity
from esrkit.train.recipe import load_recipe
from esrkit.train.trainer import Trainer


def _convs(model: nn.Module) -> dict[str, nn.Conv2d]:
    return {n: m for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}


def _randomized(name: str, seed: int = 0, **hparams: object) -> nn.Module:
    torch.manual_seed(seed)
    model = create_model(name, **hparams)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.1)
    return model


@pytest.mark.parametrize("ratio", [0.05, 0.25])
def test_one_round_removes_the_asked_share_of_every_learned_width(ratio: float) -> None:
    model = _randomized("rlfn_ntire")
    pruned = prune_filters(model, ratio)
    before, after = _convs(model), _convs(pruned)
    assert before.keys() == after.keys()
    keep = lambda n: int(n * (1 - ratio))  # noqa: E731  (kept channels: the share rounded down)
    for name, conv in before.items():
        got = after[name]
        if name == "upsampler.0":  # 3·s² channels feed the pixel shuffle: fixed by the task
            assert got.out_channels == conv.out_channels
        else:
            assert got.out_channels == keep(conv.out_channels), name
        expected_in = conv.in_channels if name == "conv_1" else keep(conv.in_channels)  # conv_1 reads RGB
        assert got.in_channels == expected_in, name
        assert got.weight.shape[1:] == (expected_in, *conv.kernel_size)  # dense: the tensors really shrank
    config = get_config(pruned)
    assert config.name == "rlfn_ntire" and config.hparams["num_feat"] == keep(46)
    assert config.hparams["mid_channels"] == keep(48) and config.hparams["esa_channels"] == keep(16)
    assert config.hparams["img_range"] == 255.0  # non-shape settings are kept


def test_pruned_model_keeps_its_best_filters_and_computes_the_same_where_nothing_was_removed() -> None:
    """Pruning keeps the highest-norm filters: making two channels of the group that conv_1, every c3_r and
    conv_2 write into (the long and block skips add them) tiny guarantees those are the ones removed, and the
    remaining weights are copied, not re-initialised."""
    model = _randomized("rlfn", num_feat=16, num_block=1, esa_channels=8)
    with torch.no_grad():
        for name, conv in _convs(model).items():
            if name in ("conv_1", "block_1.c3_r", "conv_2"):  # they add into one tensor: one channel group
                conv.weight[[2, 9]] *= 1e-3  # outputs 2 and 9 of that group
                if conv.bias is not None:
                    conv.bias[[2, 9]] *= 1e-3
    pruned = prune_filters(model, 2 / 16)
    keep = [i for i in range(16) if i not in (2, 9)]
    torch.testing.assert_close(pruned.conv_1.weight, model.conv_1.weight[keep])
    torch.testing.assert_close(pruned.conv_2.bias, model.conv_2.bias[keep])  # conv_2 adds into conv_1's group
    torch.testing.assert_close(pruned.upsampler[0].weight, model.upsampler[0].weight[:, keep])


def test_pruned_model_saves_loads_folds_and_profiles_smaller(tmp_path) -> None:
    model = _randomized("rlfn_ntire").eval()
    pruned = prune_filters(model, 0.05).eval()
    x = torch.rand(1, 3, 20, 24)
    with torch.no_grad():
        y = pruned(x)
    assert y.shape == (1, 3, 80, 96) and torch.isfinite(y).all()
    path = save_checkpoint(pruned, tmp_path / "pruned.safetensors")
    loaded = load_checkpoint(path)
    assert get_config(loaded).hparams["num_feat"] == get_config(pruned).hparams["num_feat"]
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), y)
        torch.testing.assert_close(reparameterize(pruned)(x), y, atol=1e-5, rtol=1e-5)
    big, small = count_complexity(model, (64, 64)), count_complexity(pruned, (64, 64))
    assert small.params < big.params and small.flops < big.flops
    onnx = pytest.importorskip("onnx")
    torch.onnx.export(pruned, (x,), str(tmp_path / "pruned.onnx"), dynamo=False, opset_version=17,
                      input_names=["lr"], output_names=["sr"])
    assert onnx.load(str(tmp_path / "pruned.onnx")).graph.output[0].name == "sr"


def test_graphs_torch_pruning_cannot_follow_are_refused_in_one_line() -> None:
    with pytest.raises(PruningError, match="imdn: its graph cannot be pruned structurally"):
        prune_filters(create_model("imdn"), 0.05)
    with pytest.raises(PruningError, match="only esrkit models"):
        prune_filters(nn.Conv2d(3, 3, 3), 0.05)
    with pytest.raises(ValueError, match="ratio"):
        prune_filters(create_model("rlfn_s"), 1.5)


# ---------------------------------------------------------------------------------- pruning as a training stage

TOY_HEAD = """
model: rlfn
scale: 2
hparams: {num_feat: 16, num_block: 1, esa_channels: 8}
seed: 1
precision: fp32
val_every: 1000
checkpoint_every: 5
log_every: 5
workers: 0
stages:
"""
TRAIN = ("  - {{name: train, iters: {}, patch: 48, batch: 8, loss: {{l1: 1.0}}, "
         "optimizer: {{name: adam, lr: 4.0e-3}}}}\n")
PRUNE = ("  - {{name: prune, prune: {}, iters: {}, patch: 48, batch: 8, loss: {{l1: 1.0}}, "
         "optimizer: {{name: adam, lr: 1.0e-3}}}}\n")


def _recipe(path, *stages: str):
    path.write_text(TOY_HEAD + "".join(stages))
    return load_recipe(path)


def _toy_images(folder, n: int, size: int, seed: int):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(n):
        img = 127 + 90 * np.sin(2 * np.pi * (xx * (2 + i) + yy * (1 + i % 3)))[..., None] * np.array([1, .8, .6])
        write_image(folder / f"{i}.png", np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8))
    return folder


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("prune")
    return _toy_images(root / "train", 6, 96, 0), _toy_images(root / "val", 2, 64, 1)


def _val_psnr(model: nn.Module, folder) -> float:
    from esrkit.data.datasets import resolve_benchmark
    from esrkit.infer import Upscaler
    from esrkit.metrics import calculate_metrics

    bench = resolve_benchmark(str(folder), 2)
    up = Upscaler(model, 2)
    values = [calculate_metrics(up(lr), hr, 2)["psnr_y"] for _, lr, hr in bench.pairs()]
    return float(np.mean(values))


def test_a_fine_tuned_round_recovers_most_of_the_loss(toy, tmp_path, monkeypatch) -> None:
    """Train, prune a quarter of the filters, fine-tune: the validation PSNR drop that pruning causes is mostly
    won back (the figures go to the note via ``-s``)."""
    monkeypatch.setenv("ESRKIT_CACHE", str(tmp_path / "cache"))
    trained = Trainer(_recipe(tmp_path / "a.yaml", TRAIN.format(120)), [toy[0]], tmp_path / "a",
                      device="cpu").run()
    dense = load_checkpoint(trained.train_weights)
    whole = Trainer(_recipe(tmp_path / "b.yaml", TRAIN.format(120), PRUNE.format(0.25, 60)), [toy[0]], tmp_path / "b",
                    device="cpu").run()
    recovered = load_checkpoint(whole.train_weights)
    psnr_dense, psnr_pruned = _val_psnr(dense, toy[1]), _val_psnr(prune_filters(dense, 0.25), toy[1])
    psnr_tuned = _val_psnr(recovered, toy[1])
    print(f"\ntoy ×2 val Y-PSNR: trained {psnr_dense:.2f} dB ({sum(p.numel() for p in dense.parameters())} params), "
          f"pruned 25% {psnr_pruned:.2f} dB, fine-tuned {psnr_tuned:.2f} dB "
          f"({sum(p.numel() for p in recovered.parameters())} params)")
    assert get_config(recovered).hparams["num_feat"] == 12
    assert psnr_pruned < psnr_dense - 0.2  # the round really hurt ...
    assert psnr_tuned - psnr_pruned > 0.5 * (psnr_dense - psnr_pruned)  # ... and fine-tuning won most of it back


def test_resume_inside_a_pruning_stage_ends_with_the_same_weights(toy, tmp_path) -> None:
    recipe = _recipe(tmp_path / "r.yaml", TRAIN.format(6), PRUNE.format(0.1, 8))
    whole = Trainer(recipe, [toy[0]], tmp_path / "whole", device="cpu").run()
    Trainer(recipe, [toy[0]], tmp_path / "parts", device="cpu", stop_after=10).run()
    parts = Trainer(recipe, [toy[0]], tmp_path / "parts", device="cpu", resume=True).run()
    a, b = load_checkpoint(whole.train_weights).state_dict(), load_checkpoint(parts.train_weights).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert get_config(load_checkpoint(parts.deploy_weights)).hparams["num_feat"] == 14
