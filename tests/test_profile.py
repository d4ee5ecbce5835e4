"""Profiling: the challenge tool's counting rules, published zoo figures, runtime statistics and the CLI.

Expected counts are derived by hand (arithmetic written out below), never by running the counters.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from esrkit.errors import InputError
from esrkit.profile import (
    NTIRE2024_RULES,
    count_complexity,
    count_params,
    measure_runtime,
    resolve_device,
    resolve_precision,
    summarize_timings,
)

# ------------------------------------------------------------------------------------------ tiny nets


class _Zoo(nn.Module):
    """One of every layer kind the tool treats specially, plus ones it ignores.

    Input 1×3×10×12 (120 positions):
      conv_a  3→8, 3×3, pad 1          out 8×10×12 = 960 el.  MACs 120·9·3·8        = 25 920
      relu    (module)                 FLOPs 960
      bn      BatchNorm2d(8), affine   FLOPs 2·960           = 1 920
      conv_g  8→8, 3×3, s2, groups 4   out 8×5×6 = 240 el.    MACs 30·9·8·(8/4)      = 4 320
      F.relu, nn.GELU, nn.Sigmoid      nothing
      conv_t  ConvT 8→4, k2, s2        out 4×10×12 = 480 el.  MACs 120·4·8·4 (output positions) = 15 360
      shared  Conv2d 4→4, 1×1, twice   out 480 el. each       MACs 2·(120·1·4·4)     = 3 840
      bn2     BatchNorm2d(4), no affine FLOPs 480
      pool → flatten → fc Linear(4→5)  MACs 1·4·5 = 20
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv_a = nn.Conv2d(3, 8, 3, padding=1)
        self.relu = nn.ReLU()
        self.bn = nn.BatchNorm2d(8)
        self.conv_g = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=4)
        self.gelu = nn.GELU()
        self.sigmoid = nn.Sigmoid()
        self.conv_t = nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.shared = nn.Conv2d(4, 4, 1)
        self.bn2 = nn.BatchNorm2d(4, affine=False, track_running_stats=False)
        self.fc = nn.Linear(4, 5)
        # counted: the challenges sum every parameter, frozen or not
        self.frozen = nn.Parameter(torch.zeros(7), requires_grad=False)
        self.register_buffer("not_a_param", torch.zeros(100))  # not counted

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.relu(self.conv_a(x)))
        x = self.sigmoid(self.gelu(F.relu(self.conv_g(x))))
        x = self.shared(self.shared(self.conv_t(x)))
        x = self.bn2(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


ZOO_CONV_MACS = 25_920 + 4_320 + 15_360 + 3_840 + 20
ZOO_FLOPS = ZOO_CONV_MACS + 960 + 1_920 + 480
ZOO_ACTS = 960 + 240 + 480 + 2 * 480
# conv_a 3·8·9+8, bn 8+8, conv_g 8·2·9+8, conv_t 8·4·2·2+4, shared 4·4+4, fc 4·5+5, frozen 7
ZOO_PARAMS = 224 + 16 + 152 + 132 + 20 + 25 + 7


def test_counts_follow_the_tool_rules_on_a_hand_built_net() -> None:
    counts = count_complexity(_Zoo(), (10, 12))
    assert counts.conv_flops == ZOO_CONV_MACS
    assert counts.flops == ZOO_FLOPS
    assert counts.activations == ZOO_ACTS
    assert counts.num_conv == 5  # calls, not modules: `shared` runs twice
    assert counts.params == ZOO_PARAMS
    assert counts.input_shape == (1, 3, 10, 12)
    assert counts.method == "meta"


def test_ntire2024_rules_also_count_linear_outputs_as_activations() -> None:
    counts = count_complexity(_Zoo(), (10, 12), rules=NTIRE2024_RULES)
    assert counts.flops == ZOO_FLOPS
    assert counts.activations == ZOO_ACTS + 5
    assert counts.num_conv == 6
    assert count_complexity(_Zoo(), (10, 12), rules="ntire2024") == counts


def test_bias_is_not_counted_and_functional_activations_are_invisible() -> None:
    with_bias = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, bias=True))
    without = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, bias=False))
    expected = 4 * 4 * 9 * 2 * 3  # 16 positions · 3×3 · C_in 2 · C_out 3
    assert count_complexity(with_bias, (4, 4), in_channels=2).flops == expected
    assert count_complexity(without, (4, 4), in_channels=2).flops == expected

    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(2, 3, 3, padding=1)
            self.act = nn.LeakyReLU(0.1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv(x)
            return F.leaky_relu(y, 0.1) + self.act(y)

    # conv MACs + the LeakyReLU module on the 3×4×4 conv output; the functional one adds nothing.
    assert count_complexity(Functional(), (4, 4), in_channels=2).flops == expected + 3 * 16


def test_meta_and_real_forward_agree_and_the_model_is_left_untouched() -> None:
    model = _Zoo().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    meta = count_complexity(model, (10, 12), method="meta")
    real = count_complexity(model, (10, 12), method="real")
    assert (meta.flops, meta.activations, meta.num_conv) == (real.flops, real.activations, real.num_conv)
    assert real.method == "real"
    assert model.training
    assert all(not m._forward_hooks for m in model.modules())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # BN stats not updated


def test_value_dependent_forward_falls_back_to_a_real_pass() -> None:
    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv2d(3, 4, 1)
            self.b = nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.a(x) if x.mean().item() >= 0 else self.b(x)

    counts = count_complexity(Branchy(), (5, 5))
    assert counts.method == "real"
    assert counts.flops == 25 * 3 * 4  # input in [0, 1] takes the 1×1 branch
    with pytest.raises(RuntimeError):
        count_complexity(Branchy(), (5, 5), method="meta")


def test_count_params_and_bad_arguments() -> None:
    assert count_params(nn.Linear(3, 2)) == 8
    with pytest.raises(InputError):
        count_complexity(nn.Conv2d(3, 3, 1), (0, 4))
    with pytest.raises(InputError, match="rules"):
        count_complexity(nn.Conv2d(3, 3, 1), (4, 4), rules="thop")


# --------------------------------------------------------------------------------- published figures

# (name, params [M] as printed, FLOPs [G], activations [M], #conv); 256×256 LR input, ×4, deploy form.
# MSRResNet's params are printed exactly (1,517,571; the table's "1.517" truncates): checked exactly.
# Sources: NTIRE 2023 Table 1 / AIM 2020 Table 1 (RFDN), RLFN paper Table 7 + repo README (RLFN-NTIRE),
# AIM 2020 Table 1 "Winner AIM19" + NTIRE 2022 baseline row (IMDN), AIM 2020 §2 (MSRResNet).
PUBLISHED = [
    ("rfdn", "0.433", "27.10", "112.03", 64),
    ("rlfn_ntire", "0.317", "19.70", "80.05", 39),
    ("imdn", "0.894", "58.53", "154.14", 43),
    ("msrresnet", None, "166.36", "292.55", 37),
]


def _zoo_model(name: str) -> nn.Module:
    models = pytest.importorskip("esrkit.models")
    if name not in models.list_models():
        pytest.skip(f"model {name!r} is not registered yet")
    return models.reparameterize(models.create_model(name, scale=4))


@pytest.mark.parametrize(("name", "params_m", "flops_g", "acts_m", "num_conv"), PUBLISHED)
def test_zoo_reproduces_published_complexity(
    name: str, params_m: str | None, flops_g: str, acts_m: str, num_conv: int
) -> None:
    counts = count_complexity(_zoo_model(name), (256, 256))
    if params_m is None:
        assert counts.params == 1_517_571
    else:
        assert f"{counts.params / 1e6:.3f}" == params_m
    assert f"{counts.flops / 1e9:.2f}" == flops_g
    assert f"{counts.activations / 1e6:.2f}" == acts_m
    assert counts.num_conv == num_conv


def test_imdn_conv_only_flops_match_the_later_convention() -> None:
    # The AIS 2024 survey (and the lead's table) print IMDN at 58.43 G: the same conv MACs without the
    # LeakyReLU element counts that the AIM/NTIRE tool adds (58.53 G).
    counts = count_complexity(_zoo_model("imdn"), (256, 256))
    assert f"{counts.conv_flops / 1e9:.2f}" == "58.43"


# ------------------------------------------------------------------------------------ runtime stats


def test_summarize_timings_on_injected_values() -> None:
    trials = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [0.5, 10.0, 0.6]]
    stats = summarize_timings(trials)
    # sorted pool: 0.5 0.6 1 2 3 4 5 6 10 -> median is the 5th value
    assert stats.median_ms == 3.0
    total = 1 + 2 + 3 + 4 + 5 + 6 + 0.5 + 10 + 0.6
    assert stats.mean_ms == pytest.approx(total / 9)
    pool = [v for t in trials for v in t]
    mean = total / 9
    assert stats.std_ms == pytest.approx(math.sqrt(sum((v - mean) ** 2 for v in pool) / 8))
    assert stats.trial_means_ms == pytest.approx((2.0, 5.0, 11.1 / 3))
    assert stats.best_of_trials_ms == pytest.approx(2.0)  # best of the three trial means
    assert (stats.min_ms, stats.max_ms, stats.samples) == (0.5, 10.0, 9)


def test_summarize_timings_even_count_and_single_sample() -> None:
    stats = summarize_timings([[1.0, 2.0], [3.0, 4.0]])
    assert stats.median_ms == 2.5
    assert stats.best_of_trials_ms == 1.5
    one = summarize_timings([[7.0]])
    assert (one.median_ms, one.std_ms, one.best_of_trials_ms) == (7.0, 0.0, 7.0)
    for bad in ([], [[]], [[1.0], []], [[-1.0]], [[float("nan")]]):
        with pytest.raises(ValueError):
            summarize_timings(bad)


class _CountingNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.conv(x)


def test_measure_runtime_groups_injected_timer_values_into_trials() -> None:
    values = iter([5.0, 1.0, 3.0, 9.0, 8.0, 7.0])
    seen: list[int] = []

    def fake_timer(fn):  # type: ignore[no-untyped-def]
        fn()
        seen.append(1)
        return next(values)

    result = measure_runtime(
        _CountingNet(), (8, 8), warmup=2, repeats=3, trials=2, timer=fake_timer, measure_memory=False
    )
    assert len(seen) == 6
    assert result.timing.trial_means_ms == pytest.approx((3.0, 8.0))
    assert result.timing.best_of_trials_ms == pytest.approx(3.0)
    assert result.timing.median_ms == pytest.approx(6.0)  # pool 1 3 5 7 8 9
    assert result.memory.peak_mib is None


def test_time_forward_times_each_given_input_and_groups_by_trial() -> None:
    """The loop shared by ``profile`` and ``challenge run``: warm-up cycles the inputs untimed, then every trial
    makes ``repeats`` passes with one timed call per input, each input converted to the model's dtype first."""
    from esrkit.profile import time_forward

    seen: list[tuple[tuple[int, ...], torch.dtype]] = []

    class Recorder(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append((tuple(x.shape[-2:]), x.dtype))
            return x

    small, large = torch.rand(1, 3, 4, 4), torch.rand(1, 3, 8, 6)
    values = iter([1.0, 3.0, 5.0, 7.0, 2.0, 2.0, 2.0, 2.0])
    timed_shapes: list[tuple[int, ...]] = []

    def fake_timer(fn):  # type: ignore[no-untyped-def]
        before = len(seen)
        fn()
        timed_shapes.append(seen[before][0])
        return next(values)

    threads_before = torch.get_num_threads()
    result = time_forward(Recorder(), [small, large], device=torch.device("cpu"), dtype=torch.float64, warmup=3,
                          repeats=2, trials=2, threads=1, timer=fake_timer)
    assert [shape for shape, _ in seen[:3]] == [(4, 4), (8, 6), (4, 4)]  # warm-up, untimed
    assert timed_shapes == [(4, 4), (8, 6)] * 4
    assert {dtype for _, dtype in seen} == {torch.float64}
    assert result.timing.samples == 8
    assert result.timing.trial_means_ms == pytest.approx((4.0, 2.0))
    assert result.timing.best_of_trials_ms == pytest.approx(2.0)
    assert result.cuda_peak_mib is None and result.threads == 1
    assert torch.get_num_threads() == threads_before
    with pytest.raises(InputError):
        time_forward(Recorder(), [], device=torch.device("cpu"), dtype=torch.float32)


def test_measure_runtime_on_cpu_is_sane_and_leaves_settings_alone() -> None:
    model = _CountingNet()
    threads_before = torch.get_num_threads()
    result = measure_runtime(model, (16, 16), warmup=1, repeats=2, trials=3, threads=1)
    assert model.calls == 0  # a deep copy ran, not the caller's module
    assert torch.get_num_threads() == threads_before
    assert result.timing.samples == 6
    assert 0 < result.timing.min_ms <= result.timing.median_ms <= result.timing.max_ms
    assert result.timing.min_ms <= result.timing.best_of_trials_ms <= result.timing.max_ms
    assert result.memory.method in ("rss_sampling", "ru_maxrss_delta")
    assert result.memory.peak_mib is not None and result.memory.peak_mib >= 0
    payload = json.loads(json.dumps(result.to_dict()))
    assert payload["input_shape"] == [1, 3, 16, 16] and payload["threads"] == 1


def test_measure_runtime_bf16_converts_the_model() -> None:
    result = measure_runtime(nn.Conv2d(3, 3, 3, padding=1), (8, 8), precision="bf16", warmup=0, repeats=1,
                             trials=1, measure_memory=False)
    assert result.precision == "bf16"


def test_device_and_precision_validation() -> None:
    assert resolve_precision("FP16") is torch.float16
    with pytest.raises(InputError, match="fp8") as info:
        resolve_precision("fp8")
    assert info.value.param == "precision" and "--" not in str(info.value)  # the library names no CLI flag
    for bad in ("tpu", "mps", "cuda:x", "cpu:1", ""):
        with pytest.raises(InputError) as info:
            resolve_device(bad)
        assert info.value.param == "device", bad
    with pytest.raises(InputError) as info:
        measure_runtime(nn.Conv2d(3, 3, 1), (4, 4), repeats=0)
    assert info.value.param == "repeats"


def test_auto_device_is_cuda_when_available_else_cpu() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(None).type == expected
    assert resolve_device(" AUTO ").type == expected
    assert resolve_device("cpu") == torch.device("cpu") == resolve_device("CPU")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


def test_profile_and_inference_share_one_resolver() -> None:
    """The bug this guards: ``profile --device auto`` failed while ``evaluate --device auto`` worked, because
    each had its own resolver. Both now resolve through esrkit.device and accept the same spellings."""
    from esrkit.infer import Upscaler

    upscaler = Upscaler(nn.Conv2d(3, 3, 1), 1, device="auto", precision="FP32")
    assert upscaler.device == resolve_device("auto")
    assert upscaler.dtype is torch.float32 and upscaler.precision == "fp32"
    result = measure_runtime(nn.Conv2d(3, 3, 1), (4, 4), device="auto", warmup=0, repeats=1, trials=1,
                             measure_memory=False)
    assert result.device == str(resolve_device("auto"))
    for kwargs, param in (({"device": "tpu"}, "device"), ({"precision": "fp8"}, "precision"),
                          ({"tile": 8, "tile_overlap": 4}, "tile")):
        with pytest.raises(InputError) as info:
            Upscaler(nn.Conv2d(3, 3, 1), 1, **kwargs)  # type: ignore[arg-type]
        assert info.value.param == param and "--" not in info.value.message


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown when CUDA is absent")
def test_cuda_requested_without_cuda_is_an_input_error() -> None:
    with pytest.raises(InputError, match="cuda"):
        resolve_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_measure_runtime_on_cuda_uses_events_and_peak_memory(precision: str) -> None:
    result = measure_runtime(nn.Conv2d(3, 16, 3, padding=1), (64, 64), device="cuda", precision=precision,
                             warmup=1, repeats=3, trials=3)
    assert result.memory.method == "cuda_max_memory_allocated"
    assert result.memory.peak_mib is not None and result.memory.peak_mib > 0
    assert result.timing.samples == 9 and result.timing.min_ms > 0
    assert result.threads is None


# ----------------------------------------------------------------------------------------------- CLI


def _cli(argv: list[str]) -> int:
    from esrkit.cli import main

    return main(argv)


def test_cli_json_output_has_the_fields(tmp_path: Path) -> None:
    _zoo_model("rfdn")
    out = tmp_path / "p.json"
    code = _cli(["profile", "--model", "rfdn", "--input", "32x32", "--repeats", "1", "--trials", "1",
                 "--warmup", "0", "--json", str(out)])
    assert code == 0
    data = json.loads(out.read_text())
    (row,) = data["results"]
    for key in ("params", "flops", "activations", "num_conv", "memory_mib", "runtime_median_ms"):
        assert key in row
    assert row["model"] == "rfdn" and row["form"] == "deploy" and row["scale"] == 4
    assert row["params"] == 433_448 or row["params_m"] == pytest.approx(0.433, abs=5e-4)
    assert row["counts"]["input_shape"] == [1, 3, 32, 32]
    assert row["runtime"]["timing"]["samples"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["p.json"]  # no temp file left behind


def test_cli_no_runtime_counts_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _zoo_model("rfdn")
    out = tmp_path / "c.json"
    assert _cli(["profile", "--model", "rfdn", "--no-runtime", "--json", str(out)]) == 0
    row = json.loads(out.read_text())["results"][0]
    assert row["runtime"] is None and row["runtime_median_ms"] is None
    assert f"{row['flops_g']:.2f}" == "27.10"
    assert "rfdn" in capsys.readouterr().out


def test_cli_profiles_a_checkpoint_file(tmp_path: Path) -> None:
    _zoo_model("rlfn_ntire")
    from esrkit.checkpoints import save_checkpoint
    from esrkit.models import create_model

    ckpt = save_checkpoint(create_model("rlfn_ntire", scale=4), tmp_path / "rlfn.safetensors")
    out = tmp_path / "w.json"
    assert _cli(["profile", "--weights", str(ckpt), "--no-runtime", "--json", str(out)]) == 0
    row = json.loads(out.read_text())["results"][0]
    assert row["model"] == "rlfn_ntire" and row["params"] == 317_218 and row["num_conv"] == 39


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--model", "rfdn", "--input", "256x"], "--input"),
        (["--model", "rfdn", "--input", "0x8"], "--input"),
        (["--model", "rfdn", "--precision", "fp8"], "--precision"),
        (["--model", "no_such_model"], "no_such_model"),
        ([], "--model"),
        (["--model", "rfdn", "--all"], "--model"),
        (["--model", "rfdn", "--rules", "thop"], "--rules"),
        (["--weights", "/nonexistent/x.safetensors"], "--weights"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line_and_no_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    out = tmp_path / "never.json"
    code = _cli(["profile", *argv, "--no-runtime", "--json", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and needle in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error when CUDA is absent")
def test_cli_cuda_absent_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = _cli(["profile", "--model", "rfdn", "--device", "cuda", "--json", str(tmp_path / "x.json")])
    assert code == 2 and "cuda" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_write_json_atomic_keeps_the_old_file_on_failure(tmp_path: Path) -> None:
    from esrkit.fileio import write_json_atomic

    target = tmp_path / "r.json"
    write_json_atomic(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    with pytest.raises(TypeError):
        write_json_atomic(target, {"a": object()})  # not serializable, fails mid-write
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_parse_size() -> None:
    from esrkit.cli import render_error
    from esrkit.profile.table import parse_size

    assert parse_size("256x128") == (256, 128)
    assert parse_size("64X64") == (64, 64)
    for bad in ("256x", "x256", "256", "a x b", "-1x5", ""):
        with pytest.raises(InputError) as info:
            parse_size(bad)
        assert info.value.param == "input_size"
        assert render_error(info.value).startswith("--input: ")  # the flag the user typed, not the Python name


def test_statistics_module_median_matches_definition() -> None:
    # guards the assumption that statistics.median averages the two middle values
    assert statistics.median([1.0, 2.0, 3.0, 4.0]) == 2.5


# ------------------------------------------------------------------------------------- streaming, timing grades


def _table_rows(stdout: str) -> list[str]:
    """The first cell (model name) of every table row: the lines after the dashed rule under the header."""
    lines = stdout.splitlines()
    rule = next(i for i, line in enumerate(lines) if line.startswith("-----"))
    return [line.split()[0] for line in lines[rule + 1:] if line.strip()]


def test_profile_all_streams_each_row_before_the_next_model_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import esrkit.profile
    from esrkit.models import list_models

    real = esrkit.profile.profile_model
    printed, progress = "", ""
    rows_before_call: list[int] = []

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal printed, progress
        captured = capsys.readouterr()
        printed, progress = printed + captured.out, progress + captured.err
        rows_before_call.append(len(_table_rows(printed)) if "-----" in printed else 0)
        return real(*args, **kwargs)

    monkeypatch.setattr(esrkit.profile, "profile_model", spy)
    out = tmp_path / "all.json"
    assert _cli(["profile", "--all", "--no-runtime", "--input", "48x48", "--json", str(out)]) == 0
    captured = capsys.readouterr()
    printed, progress = printed + captured.out, progress + captured.err
    names = list_models()
    assert _table_rows(printed) == names  # every registered model, in registry order
    assert rows_before_call == list(range(len(names)))  # row k was out before model k+1 was profiled
    # progress (stderr, not a terminal here): one line per model, n/N, in the same order
    assert [line.split("] ", 1)[1] for line in progress.splitlines() if "] " in line] == names
    assert f"[{len(names)}/{len(names)}]" in progress
    assert [r["model"] for r in json.loads(out.read_text())["results"]] == names


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ([], {"warmup": 1, "repeats": 1, "trials": 1, "threads": None, "memory_on_warmup": True}),
        (["--timing", "challenge"], {"warmup": 3, "repeats": 10, "trials": 3, "threads": 1,
                                     "memory_on_warmup": False}),
        (["--timing", "challenge", "--repeats", "2", "--threads", "2"],
         {"warmup": 3, "repeats": 2, "trials": 3, "threads": 2}),
        (["--warmup", "0", "--trials", "2"], {"warmup": 0, "repeats": 1, "trials": 2, "threads": None}),
    ],
)
def test_timing_grades_and_explicit_overrides(
    monkeypatch: pytest.MonkeyPatch, extra: list[str], expected: dict[str, int | None]
) -> None:
    import esrkit.profile

    _zoo_model("rfdn")
    real = esrkit.profile.profile_model
    calls: list[dict[str, object]] = []

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(kwargs)
        return real(*args, **{**kwargs, "runtime": False})  # the settings are what is checked, not a timing

    monkeypatch.setattr(esrkit.profile, "profile_model", spy)
    assert _cli(["profile", "--model", "rfdn", "--input", "32x32", *extra]) == 0
    (kwargs,) = calls
    assert {k: kwargs[k] for k in expected} == expected


def test_unknown_timing_grade_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(["profile", "--model", "rfdn", "--timing", "slow"]) == 2
    assert capsys.readouterr().err.strip() == (
        "esrkit: error: --timing: expected one of quick, challenge, got 'slow'"
    )


@pytest.mark.parametrize("command", ["profile", "evaluate"])
def test_cli_names_the_device_flag_for_a_bad_device(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    args = ["--model", "rfdn", "--no-runtime"] if command == "profile" else ["--model", "bicubic", "--data", "x"]
    assert _cli([command, *args, "--device", "tpu", "--json", str(tmp_path / "o.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("esrkit: error: --device: ") and "tpu" in err and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_a_model_that_cannot_run_at_the_asked_size_is_counted_at_the_nearest_size_it_accepts() -> None:
    """CASR unshuffles by 3: 256×256 is impossible, 258×258 is the nearest valid size, and the row says so."""
    from esrkit.models import create_model
    from esrkit.profile import profile_model

    result = profile_model(create_model("casr"), input_size=(256, 256), runtime=False)
    assert result.extra == {"input_size": [258, 258], "requested_input_size": [256, 256]}
    assert result.to_dict()["input_size"] == [258, 258]
    assert "input_size" not in profile_model(create_model("rlfn_ntire"), input_size=(256, 256), runtime=False).extra


@pytest.mark.parametrize(("on_warmup", "forwards"), [(False, 2 + 3 + 1), (True, 2 + 3)])
def test_memory_on_warmup_saves_the_separate_memory_forward(on_warmup: bool, forwards: int) -> None:
    """The quick grade measures peak memory on the first warm-up forward: one forward fewer, memory still there."""
    from torch import nn

    from esrkit.profile.runtime import measure_runtime

    class Counting(nn.Module):
        calls = 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            type(self).calls += 1
            return x * 2

    result = measure_runtime(Counting(), (16, 16), warmup=2, repeats=3, trials=1, memory_on_warmup=on_warmup)
    assert Counting.calls == forwards
    assert result.memory.method != "unavailable"
