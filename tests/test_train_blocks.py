"""Training building blocks: crop datasets, augmentation, degradation, losses, optimizers, schedules and EMA."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from esrkit.errors import InputError
from esrkit.train import (
    EMA,
    build_optimizer,
    build_scheduler,
)

RNG = np.random.default_rng(7)



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
