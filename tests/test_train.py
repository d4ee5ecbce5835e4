"""``esrkit train``: every shipped recipe end to end (smoke), exact resume, crash-safe checkpoints, DDP through
``torchrun`` equal to one process, clear errors for bad recipes and data, and a real short training run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from esrkit.cli import main
from esrkit.data.io import write_image
from esrkit.errors import InputError
from esrkit.train.recipe import available_recipes, load_recipe, smoke
from esrkit.train.trainer import CHECKPOINT, Trainer
from helpers import SHARED, shared_path, weights_mirror_folder

REPO = Path(__file__).resolve().parents[1]

# A tiny RLFN and a two-stage schedule with EMA, warm-up and a cosine decay: every piece of state that resume must
# restore (model, optimizer, scheduler, EMA, position, RNG) changes at every step.
TINY = """
model: rlfn
scale: 4
hparams: {num_feat: 8, num_block: 1, esa_channels: 4}
seed: 3
ema: 0.9
precision: fp32
val_every: 1000
checkpoint_every: 2
log_every: 1
workers: 0
stages:
  - iters: 4
    patch: 64
    batch: 4
    loss: {l1: 1.0, fft: 0.1}
    optimizer: {name: adam, lr: 1.0e-3}
    scheduler: {name: cosine, eta_min: 1.0e-5, warmup_iters: 2}
  - iters: 3
    patch: 64
    batch: 4
    loss: {charbonnier: 1.0}
    optimizer: {name: adamw, lr: 5.0e-4}
"""


def _images(folder: Path, n: int, size: int, seed: int = 0) -> Path:
    """``n`` textured RGB images (smooth gradients plus noise) of ``size``×``size`` pixels."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(n):
        base = np.stack([xx, yy, (xx + yy) / 2], axis=-1) * 200 + rng.normal(0, 20, (size, size, 3))
        write_image(folder / f"img{i}.png", np.clip(base + 20 * i, 0, 255).astype(np.uint8))
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("traindata")
    return _images(root / "train", 6, 96), _images(root / "val", 2, 64, seed=1)


@pytest.fixture(scope="module")
def tiny_recipe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("recipe") / "tiny.yaml"
    path.write_text(TINY)
    return path


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model_train.safetensors"))


def _train(recipe: Path | str, data: tuple[Path, Path], out: Path, *overrides: str, **kwargs: object) -> Trainer:
    trainer = Trainer(load_recipe(recipe, list(overrides)), [data[0]], out, val=[str(data[1])], device="cpu",
                      **kwargs)  # type: ignore[arg-type]
    trainer.run()
    return trainer


@pytest.mark.parametrize("name", available_recipes())
def test_every_shipped_recipe_runs_in_smoke_mode(name: str, data: tuple[Path, Path], tmp_path: Path) -> None:
    overrides = []
    shipped = load_recipe(name)
    teacher = SHARED / "weights" / "official" / "rlfn_ntire2022_x4.pth"  # the one teacher the recipes use
    if shipped.teacher:  # without ../shared (and offline), a random teacher of the same architecture, asked for
        overrides = [f"teacher.weights={teacher}"] if teacher.is_file() else ["teacher.weights=null",
                                                                              "teacher.model=rlfn_ntire",
                                                                              "teacher.random_weights=true"]
    if shipped.init:  # esrkit_x4 starts from the teacher; without ../shared, from random weights
        assert Path(shipped.init).name == teacher.name
        overrides.append(f"init={teacher}" if teacher.is_file() else "init=null")
    recipe = smoke(load_recipe(name, overrides))
    result = Trainer(recipe, [data[0]], tmp_path / "run", val=[str(data[1])], device="cpu").run()
    assert result.iterations == recipe.total_iters
    from esrkit import load_checkpoint

    deploy = load_checkpoint(result.deploy_weights)  # type: ignore[arg-type]
    assert deploy.esrkit_config.form == "deploy" and deploy.esrkit_config.name == recipe.model
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert any("psnr_y_val" in row for row in log) and any("loss" in row for row in log)
    assert (tmp_path / "run" / "curves.png").stat().st_size > 0


def test_interrupted_then_resumed_run_ends_with_the_same_weights(tiny_recipe: Path, data: tuple[Path, Path],
                                                                 tmp_path: Path) -> None:
    _train(tiny_recipe, data, tmp_path / "whole")
    # Stop in the middle of the second stage, between two checkpoints' cadence, then continue; the resumed run
    # also loads its batches with worker processes, which must not change what it sees.
    stopped = _train(tiny_recipe, data, tmp_path / "parts", stop_after=5)
    assert not (tmp_path / "parts" / "model_train.safetensors").exists() and stopped.stop_after == 5
    Trainer(load_recipe(tiny_recipe, ["workers=2"]), [data[0]], tmp_path / "parts", val=[str(data[1])],
            device="cpu", resume=True).run()
    whole, parts = _weights(tmp_path / "whole"), _weights(tmp_path / "parts")
    assert whole.keys() == parts.keys()
    assert all(torch.equal(whole[k], parts[k]) for k in whole), "resumed weights differ"
    # ... and both actually trained: the weights moved away from the seeded initialisation.
    from esrkit.models import create_model

    torch.manual_seed(3)
    init = create_model("rlfn", scale=4, num_feat=8, num_block=1, esa_channels=4).state_dict()
    assert not torch.equal(init["conv_1.weight"], whole["conv_1.weight"])


KILL_DURING_SAVE = """
import os, signal, sys, torch
from esrkit.train.recipe import load_recipe
from esrkit.train.trainer import Trainer

real_save, calls = torch.save, []
def dying_save(obj, f, *args, **kwargs):
    calls.append(f)
    if len(calls) == 2:  # the second checkpoint: write half a file, then die as if killed
        with open(f, "wb") as fh:
            fh.write(b"PK\\x03\\x04 half a checkpoint")
            fh.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    return real_save(obj, f, *args, **kwargs)
torch.save = dying_save
recipe, train, val, out = sys.argv[1:]
Trainer(load_recipe(recipe), [train], out, val=[val], device="cpu").run()
"""


def test_a_kill_while_writing_a_checkpoint_leaves_the_previous_one(tiny_recipe: Path, data: tuple[Path, Path],
                                                                   tmp_path: Path) -> None:
    out = tmp_path / "run"
    script = tmp_path / "die.py"
    script.write_text(KILL_DURING_SAVE)
    proc = subprocess.run([sys.executable, str(script), str(tiny_recipe), str(data[0]), str(data[1]), str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert proc.returncode == -9, proc.stderr
    state = torch.load(out / CHECKPOINT, map_location="cpu", weights_only=True)
    assert state["position"]["global_step"] == 2  # the first checkpoint, intact
    Trainer(load_recipe(tiny_recipe), [data[0]], out, val=[str(data[1])], device="cpu",
            resume=True).run()
    _train(tiny_recipe, data, tmp_path / "whole")
    whole, resumed = _weights(tmp_path / "whole"), _weights(out)
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


def test_torchrun_two_processes_equal_one_process(tiny_recipe: Path, data: tuple[Path, Path],
                                                  tmp_path: Path) -> None:
    """Two gloo ranks, each with half of every global batch, against one process on the whole batch."""
    _train(tiny_recipe, data, tmp_path / "one")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "esrkit",
           "train", str(tiny_recipe), "--data", str(data[0]), "--val", str(data[1]), "--out", str(tmp_path / "two"),
           "--device", "cpu"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    one, two = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    for key in one:
        assert torch.allclose(one[key], two[key], rtol=1e-4, atol=1e-6), key


@pytest.mark.parametrize(("args", "needle"), [
    (["--set", "stages.0.lr=0.1"], "unknown key 'lr'"),
    (["--set", "bogus=1"], "unknown key 'bogus'"),
    (["--data", "MISSING"], "no such folder"),
    (["--data", "EMPTY"], "no images"),
])
def test_bad_recipe_or_data_is_one_line_exit_2_and_no_run_folder(args: list[str], needle: str, tiny_recipe: Path,
                                                                 data: tuple[Path, Path], tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "EMPTY").mkdir()
    args = [str(tmp_path / a) if a in ("MISSING", "EMPTY") else a for a in args]
    if "--data" not in args:
        args += ["--data", str(data[0])]
    code = main(["train", str(tiny_recipe), *args, "--out", str(tmp_path / "run"), "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and needle in err, err
    assert not (tmp_path / "run").exists()


def test_a_teacher_key_that_is_a_number_is_named_in_the_error(data: tuple[Path, Path], tmp_path: Path) -> None:
    """YAML reads ``0:`` as the number 0: the teacher's unknown-key message named it through str.join, a TypeError
    (the twin of the optimizer-spec finding in tests/test_fuzz_regressions.py)."""
    recipe = tmp_path / "teacher.yaml"
    recipe.write_text(TINY + "teacher: {model: rlfn, 0: 1, typo: 2}\n")
    with pytest.raises(InputError, match=r"teacher: unknown key 0, typo; valid: feature_pairs"):
        _train(recipe, data, tmp_path / "run")


@pytest.mark.parametrize(("teacher", "needle"), [
    ("{output_weight: 1}", "teacher needs weights (a checkpoint) or model (a zoo name)"),
    ("{model: rlfn, feature_weight: 0.5}", "feature distillation needs at least one"),
    ("{model: rlfn, output_weight: -1}", "weight_out must be a finite number >= 0"),
    ("{model: rlfn, feature_pairs: [[block_1]]}", "feature_pairs holds [student, teacher] module-name pairs"),
    ("{model: no_such_model}", "unknown model 'no_such_model'"),
    ("{model: mdrn}", "teacher.model: mdrn ×4: no released weights are known for it; give teacher.weights"),
    ("{model: rlfn, random_weights: yes please}", "teacher: random_weights must be true or false"),
    ("{weights: MISSING.pth, random_weights: true}", "give weights or random_weights (for model), not both"),
    ("{weights: MISSING.pth}", "teacher: no such file"),
    ("[rlfn]", "teacher must be a mapping"),
])
def test_a_bad_teacher_fails_before_the_run_folder_exists(teacher: str, needle: str, data: tuple[Path, Path],
                                                          tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The teacher is part of the recipe: its keys, types and file are checked before anything is written (they
    were checked when its stage started, after ``recipe.json`` existed)."""
    recipe = tmp_path / "teacher.yaml"
    recipe.write_text(TINY + f"teacher: {teacher.replace('MISSING', str(tmp_path / 'missing'))}\n")
    code = main(["train", str(recipe), "--data", str(data[0]), "--out", str(tmp_path / "run"), "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and needle in err, err
    assert not (tmp_path / "run").exists()


def test_the_teacher_is_built_once_and_progress_goes_through_hooks(tiny_recipe: Path, data: tuple[Path, Path],
                                                                    tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Two distillation stages share one teacher (loaded once, not per stage), and every stage reports its start,
    each iteration and its end to the hooks."""
    from esrkit.models import create_model
    from esrkit.train.hooks import TrainHooks

    built: list[str] = []
    real = create_model

    def counting(name: str, *args: object, **kwargs: object) -> torch.nn.Module:
        built.append(name)
        return real(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("esrkit.models.create_model", counting)  # the student's way
    monkeypatch.setattr("esrkit.models.registry.create_model", counting)  # the resolver's (hub.create_model)
    events: list[tuple[str, int]] = []

    class Hooks(TrainHooks):
        def stage_started(self, stage: object, done: int) -> None:
            events.append(("start", done))

        def step_done(self, step: int, loss: float, lr: float) -> None:
            events.append(("step", step))

        def stage_ended(self) -> None:
            events.append(("end", 0))

    recipe = load_recipe(tiny_recipe, ["teacher.model=rlfn", "teacher.random_weights=true",
                                       "teacher.feature_weight=0.1", "teacher.feature_pairs=[[conv_1, conv_1]]"])
    trainer = Trainer(recipe, [data[0]], tmp_path / "run", device="cpu", hooks=Hooks())
    assert built.count("rlfn") == 1  # the teacher, at construction
    trainer.run()
    assert built.count("rlfn") == 2  # and the student; no teacher per stage
    assert events == [("start", 0), *[("step", i) for i in range(1, 5)], ("end", 0),
                      ("start", 0), *[("step", i) for i in range(1, 4)], ("end", 0)]


def test_a_named_teacher_runs_exactly_its_released_weights(tiny_recipe: Path, data: tuple[Path, Path],
                                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``teacher: {model: rlfn_ntire}`` is the released RLFN-NTIRE ×4, fetched through the resolver (here from a
    folder mirror of the shared files, into an empty cache) and in train form: every tensor equals the file's."""
    from esrkit.checkpoints import load_checkpoint
    from esrkit.models import get_config

    monkeypatch.setenv("ESRKIT_WEIGHTS_MIRROR", str(weights_mirror_folder(tmp_path / "mirror")))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    recipe = load_recipe(tiny_recipe, ["teacher.model=rlfn_ntire", "teacher.feature_weight=0.1",
                                       "teacher.feature_pairs=[[block_1, block_1]]"])
    teacher = Trainer(recipe, [data[0]], tmp_path / "run", device="cpu").teacher
    assert teacher is not None and (get_config(teacher).name, get_config(teacher).form) == ("rlfn_ntire", "train")
    released = load_checkpoint(shared_path("weights", "official", "rlfn_ntire2022_x4.pth")).state_dict()
    mine = teacher.state_dict()
    assert mine.keys() == released.keys()
    for key, value in released.items():
        assert torch.equal(mine[key], value), key
    assert [p.name.startswith("rlfn_ntire_x4_train-") for p in (tmp_path / "cache" / "esrkit" / "weights").iterdir()
            ] == [True]


def test_a_teacher_name_without_weights_at_the_recipe_scale_is_refused_when_loaded(tiny_recipe: Path) -> None:
    """RLFN is released at ×2 and ×4: a ×3 recipe naming it as teacher fails in load_recipe, before any run, with
    the two ways out; asking for random weights is the explicit one for tests and timing."""
    with pytest.raises(InputError, match=r"teacher\.model: rlfn ×3: released weights exist for ×2, ×4 only; give "
                                         r"teacher\.weights .* random_weights: true"):
        load_recipe(tiny_recipe, ["scale=3", "teacher.model=rlfn"])
    assert load_recipe(tiny_recipe, ["teacher.model=mdrn", "teacher.random_weights=true"]).teacher.random_weights


def test_a_named_teacher_offline_with_an_empty_cache_is_one_line_and_no_run_folder(
        tiny_recipe: Path, data: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # ESRKIT_OFFLINE=1: conftest
    code = main(["train", str(tiny_recipe), "--data", str(data[0]), "--out", str(tmp_path / "run"), "--device", "cpu",
                 "--set", "teacher.model=rlfn_ntire"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "teacher.model: rlfn_ntire ×4 (train) weights are not cached and ESRKIT_OFFLINE" in err, err
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache" / "esrkit" / "weights").exists()


@pytest.mark.shared
def test_a_short_cpu_run_beats_bicubic_on_set5(tmp_path: Path) -> None:
    """A small RLFN trained for a few hundred iterations on BSDS500 crops: Set5 ×4 Y-PSNR above bicubic's 28.43."""
    train = shared_path("data", "train", "bsds500_train")
    set5 = shared_path("data", "benchmarks", "Set5")
    recipe = tmp_path / "short.yaml"
    recipe.write_text(textwrap.dedent(SHORT_RUN))
    result = Trainer(load_recipe(recipe), [train], tmp_path / "run", val=[str(set5)], device="cpu").run()
    log = [json.loads(line) for line in (result.run_dir / "log.jsonl").read_text().splitlines()]
    losses = [f"{row['global_step']}: {row['loss']:.4f}" for row in log if "loss" in row]
    print(f"\nshort CPU run: L1 loss by iteration {', '.join(losses)}; Set5 ×4 Y-PSNR "  # the note's figures (-s)
          f"{result.final_val['psnr_y_Set5']:.2f} dB after {result.iterations} iterations in {result.wall_s:.0f} s")
    assert result.final_val["psnr_y_Set5"] > 28.43, result.final_val


SHORT_RUN = """
{model: rlfn, scale: 4, hparams: {num_feat: 24, num_block: 2, esa_channels: 8}, seed: 0, workers: 0,
 val_every: 1000, checkpoint_every: 1000,
 stages: [{iters: 600, patch: 96, batch: 16, loss: {l1: 1.0}, optimizer: {name: adam, lr: 4.0e-3},
           scheduler: {name: cosine, eta_min: 1.0e-4, warmup_iters: 20}}]}
"""


def test_tensorboard_events_are_written_when_tensorboard_is_installed(tiny_recipe: Path, data: tuple[Path, Path],
                                                                      tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="TensorBoard is optional and not installed")
    _train(tiny_recipe, data, tmp_path / "run")
    events = list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0


def test_init_starts_the_student_from_a_checkpoint_and_refuses_another_architecture(
        data: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``init:`` loads the student's weights and widths from a checkpoint (the widths of the file, not of
    ``hparams``): at a learning rate of 1e-12 (Adam moves a weight by about the rate per step) the trained
    weights are the file's own. A checkpoint of
    another family, or a missing file, is one line and exit 2."""
    from esrkit.checkpoints import save_checkpoint
    from esrkit.models import create_model

    torch.manual_seed(5)
    start = create_model("rlfn", scale=4, num_feat=12, num_block=1, esa_channels=4)
    init = save_checkpoint(start, tmp_path / "start.safetensors")
    frozen = TINY.replace("lr: 1.0e-3", "lr: 1.0e-12").replace("lr: 5.0e-4", "lr: 1.0e-12")
    frozen = frozen.replace("loss: {l1: 1.0, fft: 0.1}", "loss: {l1: 1.0}").replace("eta_min: 1.0e-5", "eta_min: 0")
    recipe = tmp_path / "init.yaml"
    recipe.write_text(frozen + f"init: {init}\n")
    Trainer(load_recipe(recipe), [data[0]], tmp_path / "run", device="cpu").run()
    trained = _weights(tmp_path / "run")
    expected = start.state_dict()
    assert trained.keys() == expected.keys()
    for key, value in expected.items():  # 12 channels: the file's widths, not hparams' 8
        torch.testing.assert_close(trained[key], value, atol=1e-9, rtol=0)

    other = save_checkpoint(create_model("imdn", scale=4), tmp_path / "imdn.safetensors")
    for target, needle in ((other, "holds imdn, not the recipe's rlfn"), (tmp_path / "nope.pth", "no such file")):
        recipe.write_text(frozen + f"init: {target}\n")
        code = main(["train", str(recipe), "--data", str(data[0]), "--out", str(tmp_path / "bad")])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and needle in err, err
        assert not (tmp_path / "bad").exists()  # refused before the run folder is made
