"""Training building blocks: crop datasets, augmentation, degradation, losses, optimizers, schedules and EMA."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from esrkit.data.io import read_image, write_image
from esrkit.data.resize import imresize
from esrkit.errors import InputError
from esrkit.train import (
    EMA,
    BicubicDegradation,
    CharbonnierLoss,
    ContrastiveLoss,
    Degradation,
    DistillationLoss,
    FFTLoss,
    HRCropDataset,
    PairedDataset,
    augment,
    build_degradation,
    build_loss,
    build_optimizer,
    build_scheduler,
    dihedral,
    to_float,
)
from helpers import shared_path

RNG = np.random.default_rng(7)


def _coordinate_images(folder, sizes):
    """Images whose pixels spell where they are: R = row, G = column, B = 10 × image number."""
    for n, (h, w) in enumerate(sizes):
        rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        write_image(folder / f"img{n}.png", np.stack([rows, cols, np.full_like(rows, 10 * n)], -1).astype(np.uint8))


def _window_of(crop: torch.Tensor, k: int) -> tuple[int, int, int]:
    """(image number, top, left) of a coordinate-image crop, after undoing dihedral transform ``k``."""
    inverse = next(j for j in range(8) if torch.equal(dihedral(dihedral(crop, k), j), crop))
    plain = dihedral(crop, inverse)
    return int(plain[2, 0, 0]) // 10, int(plain[0, 0, 0]), int(plain[1, 0, 0])


# ------------------------------------------------------------------------------------------------------ data


def test_hr_crops_from_bsds_have_the_patch_size_and_are_reproducible(tmp_path):
    source = shared_path("data", "train", "bsds500_train")
    folder = tmp_path / "bsds"
    folder.mkdir()
    for path in sorted(source.glob("*.jpg"))[:3]:
        (folder / path.name).symlink_to(path)
    ds = HRCropDataset([folder], patch=96, scale=4, seed=3, repeat=2)
    assert len(ds) == 6
    first = [ds[i] for i in range(len(ds))]
    assert all(c.shape == (3, 96, 96) and c.dtype == torch.uint8 for c in first)
    again = HRCropDataset(folder, patch=96, scale=4, seed=3, repeat=2)
    assert all(torch.equal(a, b) for a, b in zip(first, [again[i] for i in range(6)], strict=True))
    ds.set_epoch(1)
    assert not any(torch.equal(a, b) for a, b in zip(first, [ds[i] for i in range(6)], strict=True))
    # every crop is a window of one of the images, flipped or rotated
    images = [read_image(p).transpose(2, 0, 1) for p in ds.files]
    for crop in first:
        assert any(_is_window(dihedral(crop, k).numpy(), img) for img in images for k in range(8))


def _is_window(crop: np.ndarray, image: np.ndarray) -> bool:
    p = crop.shape[-1]
    corner = image[:, : image.shape[1] - p + 1, : image.shape[2] - p + 1]
    candidates = np.argwhere((corner == crop[:, :1, :1]).all(axis=0))
    return any(np.array_equal(image[:, t:t + p, s:s + p], crop) for t, s in candidates)


def test_crops_are_windows_order_visits_each_image_repeat_times_and_resume_is_exact(tmp_path):
    _coordinate_images(tmp_path, [(40, 50), (36, 36), (48, 33)])
    ds = HRCropDataset(tmp_path, patch=32, scale=4, augment=False, seed=1, repeat=3)
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        seen = []
        for i in range(len(ds)):
            crop = ds[i]
            n, top, left = _window_of(crop, 0)
            rows, cols = torch.meshgrid(torch.arange(32) + top, torch.arange(32) + left, indexing="ij")
            assert torch.equal(crop[0].long(), rows) and torch.equal(crop[1].long(), cols)
            h, w = ds.sizes[n]
            assert 0 <= top <= h - 32 and 0 <= left <= w - 32
            seen.append(n)
        assert sorted(seen) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    full = [ds[i] for i in range(9)]  # epoch 1
    ds.set_epoch(1, start=4)
    assert len(ds) == 5
    assert all(torch.equal(a, ds[i]) for i, a in enumerate(full[4:]))
    with pytest.raises(IndexError):
        ds[5]


def test_dataset_augmentation_is_dihedral_of_the_same_window(tmp_path):
    _coordinate_images(tmp_path, [(40, 50), (36, 36)])
    plain = HRCropDataset(tmp_path, patch=16, scale=4, augment=False, seed=9, repeat=8)
    flipped = HRCropDataset(tmp_path, patch=16, scale=4, augment=True, seed=9, repeat=8)
    used = set()
    for i in range(len(plain)):  # the crop position is drawn first, so both sets crop the same windows
        used.add(next(k for k in range(8) if torch.equal(flipped[i], dihedral(plain[i], k))))
    assert len(used) >= 4
    # the datasets flip numpy views while cropping; it must be the same k -> transform map as dihedral()
    from esrkit.train.sampling import crop

    image = RNG.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    for k in range(8):
        assert torch.equal(crop(image, 2, 5, 12, k), dihedral(crop(image, 2, 5, 12, 0), k))


def test_cache_dir_changes_speed_not_crops(tmp_path):
    _coordinate_images(tmp_path / "imgs", [(40, 50), (36, 36)])
    plain = HRCropDataset(tmp_path / "imgs", patch=16, scale=2, seed=5, repeat=4)
    cached = HRCropDataset(tmp_path / "imgs", patch=16, scale=2, seed=5, repeat=4, cache_dir=tmp_path / "cache")
    for epoch in (0, 2):
        plain.set_epoch(epoch)
        cached.set_epoch(epoch)
        assert all(torch.equal(plain[i], cached[i]) for i in range(len(plain)))
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2


def test_set_epoch_reaches_persistent_workers(tmp_path):
    _coordinate_images(tmp_path, [(40, 50), (36, 36)])
    ds = HRCropDataset(tmp_path, patch=16, scale=4, seed=2, repeat=2)
    loader = DataLoader(ds, batch_size=2, shuffle=False, num_workers=1, persistent_workers=True)
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        expected = torch.stack([ds[i] for i in range(len(ds))])
        assert torch.equal(torch.cat(list(loader)), expected)


def test_dataset_errors_name_the_culprit(tmp_path):
    with pytest.raises(InputError, match="missing: no such folder") as err:
        HRCropDataset(tmp_path / "missing", patch=8, scale=2)
    assert err.value.param == "folders"
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty: no images"):
        HRCropDataset(tmp_path / "empty", patch=8, scale=2)
    _coordinate_images(tmp_path / "imgs", [(40, 50), (20, 60)])
    with pytest.raises(InputError, match=r"img1\.png: image is smaller than the 32×32 patch \(1 of 2"):
        HRCropDataset(tmp_path / "imgs", patch=32, scale=4)
    with pytest.raises(InputError, match="multiple of the scale 3") as err:
        HRCropDataset(tmp_path / "imgs", patch=16, scale=3)
    assert err.value.param == "patch"
    with pytest.raises(InputError, match="nolr: no such folder") as err:
        PairedDataset(tmp_path / "imgs", tmp_path / "nolr", 2, 8)
    assert err.value.param == "lr_dir"
    (tmp_path / "lr").mkdir()
    write_image(tmp_path / "lr" / "img0x2.png", np.zeros((20, 25, 3), np.uint8))
    with pytest.raises(InputError, match=r"img1\.png: no LR image"):
        PairedDataset(tmp_path / "imgs", tmp_path / "lr", 2, 8)


def test_dihedral_is_the_group_of_8_symmetries_and_augment_is_shared_by_pairs():
    image = torch.from_numpy(RNG.integers(0, 256, (3, 5, 5), dtype=np.uint8))
    outputs = [dihedral(image, k) for k in range(8)]
    assert len({o.numpy().tobytes() for o in outputs}) == 8
    hwc = image.numpy().transpose(1, 2, 0)
    by_numpy = {np.ascontiguousarray(np.rot90(m, r).transpose(2, 0, 1)).tobytes()
                for m in (hwc, np.fliplr(hwc)) for r in range(4)}
    assert {o.numpy().tobytes() for o in outputs} == by_numpy
    for out in outputs:  # a bijection: every transform is undone by one of the 8
        assert any(torch.equal(dihedral(out, j), image) for j in range(8))
    gen = torch.Generator().manual_seed(0)
    small = image.float() / 255  # a second member of a pair
    drawn = set()
    for _ in range(64):
        a, b = augment((image, small), gen)
        k = next(k for k in range(8) if torch.equal(a, outputs[k]))
        assert torch.equal(b, dihedral(small, k))
        drawn.add(k)
    assert drawn == set(range(8))


@pytest.mark.parametrize("scale", [2, 4])
def test_paired_crops_stay_aligned_under_augmentation(tmp_path, scale):
    """LR made with esrkit's imresize: an LR crop equals imresize of its HR crop away from the crop border."""
    for n, (h, w) in enumerate([(96, 120), (104, 88)]):
        hr = RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)
        write_image(tmp_path / "HR" / f"{n:04d}.png", hr)
        write_image(tmp_path / "LR" / f"X{scale}" / f"{n:04d}x{scale}.png", imresize(hr, 1 / scale))
    ds = PairedDataset(tmp_path / "HR", tmp_path / "LR" / f"X{scale}", scale, patch_lr=12, seed=4, repeat=4)
    m = 3  # LR pixels within 3 of the crop edge see HR pixels outside the crop
    for i in range(len(ds)):
        lr, hr = ds[i]
        assert lr.shape == (3, 12, 12) and hr.shape == (3, 12 * scale, 12 * scale)
        expected = imresize(hr.numpy().transpose(1, 2, 0), 1 / scale).transpose(2, 0, 1)
        np.testing.assert_array_equal(lr.numpy()[:, m:-m, m:-m], expected[:, m:-m, m:-m])


def test_bicubic_degradation_equals_rounded_imresize_on_a_batch_and_channels_last():
    hr = RNG.integers(0, 256, (3, 32, 40, 3), dtype=np.uint8)
    batch = to_float(torch.from_numpy(hr.transpose(0, 3, 1, 2).copy()))
    assert batch.dtype == torch.float32 and float(batch.max()) <= 1.0
    degrade = build_degradation("bicubic", 4)
    assert isinstance(degrade, BicubicDegradation) and isinstance(degrade, Degradation)
    lr = degrade(batch)
    expected = np.stack([imresize(img, 0.25) for img in hr]).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal((lr * 255).round().to(torch.uint8).numpy(), expected)
    torch.testing.assert_close(lr * 255, (lr * 255).round(), rtol=0, atol=1e-4)  # on the 256 levels
    lr_cl = degrade(to_float(torch.from_numpy(hr.transpose(0, 3, 1, 2).copy()), channels_last=True))
    assert lr_cl.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(lr_cl, lr)
    with pytest.raises(InputError, match="unknown degradation 'jpeg'; choose one of bicubic"):
        build_degradation("jpeg", 4)
    with pytest.raises(InputError, match="uint8"):
        to_float(batch)


# ---------------------------------------------------------------------------------------------------- losses


def test_charbonnier_and_fft_losses_match_hand_values():
    sr = torch.tensor([[[[0.0, 0.3]]]])
    hr = torch.tensor([[[[0.0, 0.7]]]])
    expected = (math.sqrt(1e-6) + math.sqrt(0.16 + 1e-6)) / 2
    assert CharbonnierLoss(eps=1e-3)(sr, hr).item() == pytest.approx(expected, rel=1e-6)
    # rfft2 of a 1×3 difference [0, 1, 0]: F0 = 1, F1 = exp(-2πi/3) = -1/2 - i·√3/2
    # |Re| and |Im| of both frequencies: 1, 0, 1/2, √3/2 -> mean over 4 numbers
    sr = torch.tensor([[[[0.2, 1.0, 0.5]]]])
    hr = torch.tensor([[[[0.2, 0.0, 0.5]]]])
    assert FFTLoss()(sr, hr).item() == pytest.approx((1 + 0 + 0.5 + math.sqrt(3) / 2) / 4, rel=1e-6)
    # 2×2: a unit impulse has F = 1 at all 4 frequencies, imaginary parts 0 -> mean of (1,1,1,1,0,0,0,0)
    impulse = torch.zeros(1, 1, 2, 2)
    impulse[..., 0, 0] = 1
    assert FFTLoss()(impulse, torch.zeros_like(impulse)).item() == pytest.approx(0.5)


def test_contrastive_loss_prefers_hr_and_has_no_trainable_parameters():
    hr = torch.from_numpy(RNG.random((2, 3, 32, 32), dtype=np.float32))
    lr = imresize(hr, 0.25)
    up = imresize(lr, 4)
    loss = ContrastiveLoss()
    assert [p for p in loss.parameters() if p.requires_grad] == [] and loss.state_dict() == {}
    at_hr, at_bicubic = loss(hr, hr, lr).item(), loss(up, hr, lr).item()
    # SR = HR: zero numerator; SR = the negative: zero denominator (only eps = 1e-8 keeps it finite)
    assert at_hr == 0.0 and at_bicubic > 1e3
    near_hr, between = 0.9 * hr + 0.1 * up, 0.5 * (hr + up)
    assert at_hr < loss(near_hr, hr, lr).item() < loss(between, hr, lr).item() < at_bicubic
    sr = between.clone().requires_grad_(True)
    loss(sr, hr, lr).backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    assert ContrastiveLoss()(between, hr, lr).item() == pytest.approx(loss(between, hr, lr).item(), rel=1e-6)


def _tiny_sr(width: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 12, 3, padding=1),
                         nn.PixelShuffle(2))


def test_distillation_gradient_reaches_student_and_adapters_not_teacher():
    torch.manual_seed(0)
    student, teacher = _tiny_sr(4), _tiny_sr(8)
    distill = DistillationLoss(student, teacher, [("1", "1")], weight_out=1.0, weight_feat=0.5)
    ema = EMA(student, 0.9)  # a deep copy made after the loss: it carries the student's hooks along
    assert distill.adapters["0"].weight.shape == (8, 4, 1, 1)
    loss = build_loss({"l1": 1.0, "distill": 1.0}, extra={"distill": distill})
    loss.train()
    assert not teacher.training
    assert set(map(id, loss.trainable_parameters())) == set(map(id, distill.adapter_parameters()))
    lr = torch.rand(2, 3, 8, 8)
    sr = student(lr)
    ema.module(torch.rand(1, 3, 8, 8))  # must not replace the student's captured features
    assert distill._student_feats["1"].shape[0] == 2
    total, parts = loss(sr, torch.rand(2, 3, 16, 16), lr)
    total.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in distill.adapter_parameters())
    assert all(p.grad is None for p in teacher.parameters())
    assert set(parts) == {"l1", "distill"}
    with pytest.raises(InputError, match="no module named 'nope'"):
        DistillationLoss(student, teacher, [("nope", "1")])


def test_build_loss_weights_parts_and_rejects_unknown_names():
    sr, hr = torch.tensor([[[[0.0, 1.0]]]]), torch.tensor([[[[0.5, 0.0]]]])
    loss = build_loss({"l1": 2.0, "mse": 0.5, "fft": 0})
    total, parts = loss(sr, hr)
    assert set(parts) == {"l1", "mse"}  # weight 0: left out
    assert parts["l1"].item() == pytest.approx(0.75) and parts["mse"].item() == pytest.approx(0.625)
    assert total.item() == pytest.approx(2 * 0.75 + 0.5 * 0.625)
    with_eps = build_loss({"charbonnier": {"weight": 1.0, "eps": 0.5}})
    assert with_eps(hr, hr)[0].item() == pytest.approx(0.5)
    with pytest.raises(InputError, match="unknown loss 'ssim'; choose from charbonnier, contrastive, fft, l1, l2"):
        build_loss({"ssim": 1.0})
    with pytest.raises(InputError, match="weight of 'l1'"):
        build_loss({"l1": -1})


# ------------------------------------------------------------------------------------------------- optimizers


def test_adan_from_pytorch_optimizer_reduces_a_quadratic():
    from pytorch_optimizer import Adan

    x = nn.Parameter(torch.tensor([3.0, -2.0, 1.5]))
    target = torch.tensor([1.0, 1.0, 1.0])
    opt = build_optimizer([x], {"name": "adan", "lr": 5e-2, "betas": [0.98, 0.92, 0.99]})
    assert isinstance(opt, Adan) and opt.param_groups[0]["betas"] == (0.98, 0.92, 0.99)
    start = float(((x.detach() - target) ** 2).sum())
    for _ in range(200):
        opt.zero_grad()
        loss = ((x - target) ** 2).sum()
        loss.backward()
        opt.step()
    assert float(((x.detach() - target) ** 2).sum()) < 0.01 * start
    with pytest.raises(InputError, match="unknown optimizer 'sgd'"):
        build_optimizer([x], {"name": "sgd", "lr": 0.1})
    with pytest.raises(InputError, match="'betas' of adan must be 3 numbers"):
        build_optimizer([x], {"name": "adan", "lr": 0.1, "betas": [0.9, 0.99]})
    with pytest.raises(InputError, match="takes no momentum"):
        build_optimizer([x], {"name": "adam", "lr": 0.1, "momentum": 0.9})


def _lrs(spec, total, n, base=1.0):
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=base)
    sched = build_scheduler(opt, spec, total)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_schedulers_give_the_documented_lr():
    cosine = _lrs({"name": "cosine", "eta_min": 0.1, "warmup_iters": 2}, 10, 12)
    # warm-up (i+1)/2, then 0.1 + 0.9 (1 + cos(pi t / 8)) / 2 with t = i - 2, held at eta_min after i = 10
    expected = [0.5, 1.0] + [0.1 + 0.45 * (1 + math.cos(math.pi * t / 8)) for t in range(9)] + [0.1]
    assert cosine == pytest.approx(expected)
    assert cosine[6] == pytest.approx(0.55)
    assert _lrs({"name": "step", "step_size": 3, "gamma": 0.5}, 10, 7) == pytest.approx(
        [1, 1, 1, 0.5, 0.5, 0.5, 0.25])
    assert _lrs({"name": "multistep", "milestones": [2, 5], "gamma": 0.1, "warmup_iters": 4}, 10, 6) == \
        pytest.approx([0.25, 0.5, 0.075, 0.1, 0.1, 0.01])
    assert _lrs({"name": "constant"}, 5, 3, base=5e-3) == pytest.approx([5e-3] * 3)
    with pytest.raises(InputError, match="unknown scheduler 'poly'"):
        _lrs({"name": "poly"}, 10, 1)
    with pytest.raises(InputError, match="warmup_iters"):
        _lrs({"name": "cosine", "warmup_iters": 10}, 10, 1)


def test_scheduler_resumes_exactly_from_state_dict():
    spec = {"name": "cosine", "eta_min": 1e-4, "warmup_iters": 3}

    def fresh():
        opt = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=2e-3)
        return opt, build_scheduler(opt, spec, 20)

    opt, sched = fresh()
    for _ in range(7):
        opt.step()
        sched.step()
    state = sched.state_dict()
    opt2, sched2 = fresh()  # a new optimizer: only the scheduler state is restored
    sched2.load_state_dict(state)
    for _ in range(15):
        assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
        for o, s in ((opt, sched), (opt2, sched2)):
            o.step()
            s.step()


def test_ema_tracks_the_documented_average():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    ema = EMA(model, decay=0.9)
    for _ in range(3):
        ema.update(model)  # constant model: the average is the model itself
    for a, b in zip(ema.module.state_dict().values(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    old = {k: v.clone() for k, v in model.named_parameters()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
        model[1].running_mean.fill_(2.0)
    ema.update(model)
    for name, shadow in ema.module.named_parameters():
        torch.testing.assert_close(shadow, 0.9 * old[name] + 0.1 * dict(model.named_parameters())[name])
    assert torch.equal(ema.module[1].running_mean, model[1].running_mean)  # buffers are copied
    restored = EMA(nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)), decay=0.5)
    restored.load_state_dict(ema.state_dict())
    assert restored.decay == 0.9 and restored.num_updates == 4
    target = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    restored.copy_to(target)
    assert all(torch.equal(a, b) for a, b in zip(target.state_dict().values(),
                                                 ema.module.state_dict().values(), strict=True))
    assert not any(p.requires_grad for p in ema.module.parameters()) and not ema.module.training
    with pytest.raises(InputError, match="decay"):
        EMA(model, 1.5)


def test_ema_warmup_ramps_the_decay_so_the_start_weights_fade():
    """With the warm-up ramp the n-th update uses min(decay, (1 + n) / (10 + n)); the starting weights' share after
    the updates is the product of those decays, far below the fixed decay's 0.999**n."""
    model = nn.Conv2d(1, 1, 1, bias=False)
    with torch.no_grad():
        model.weight.zero_()
    ema = EMA(model, decay=0.999, warmup=True)
    with torch.no_grad():
        model.weight.fill_(1.0)  # from here on the model is 1: the shadow is 1 − (share of the start weights)
    for _ in range(1500):
        ema.update(model)
    share = 1.0
    for n in range(1500):
        share *= min(0.999, (1 + n) / (10 + n))
    assert share < 1e-6 < 0.999**1500 - 0.2  # by hand: the ramp's product, against the fixed decay's 22 %
    torch.testing.assert_close(ema.module.weight, torch.full_like(model.weight, 1.0 - share))
    assert ema.current_decay == min(0.999, 1501 / 1510)
    restored = EMA(model, decay=0.5)
    restored.load_state_dict(ema.state_dict())
    assert restored.warmup and restored.num_updates == 1500
    fixed = EMA(nn.Conv2d(1, 1, 1, bias=False), decay=0.999)
    assert fixed.current_decay == 0.999
