"""esrkit's own model and the demo: the bundled weights are the default of ``upscale`` and ``demo`` and are listed by
``models``; without them those commands say so in one line and exit 2; ``demo`` writes what it promises and prints
scores that match its images; the sample ships with its provenance; the ``esrkit_x4`` recipe prunes its TRAIN form
down to a model within the issue's 150 K parameters.

The bundled model is replaced by a tiny one through ``$ESRKIT_BUNDLED_WEIGHTS`` (the documented override), and its
absence is simulated by pointing :func:`esrkit.bundled.packaged_weights_path` at an empty folder, so these tests
mean the same before and after the real weights are added to the package.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from esrkit import bundled
from esrkit.checkpoints import load_checkpoint, read_state_dict, save_checkpoint
from esrkit.cli import main
from esrkit.data.io import read_image, write_image
from esrkit.data.resize import imresize
from esrkit.errors import CheckpointError, InputError
from esrkit.infer import Upscaler
from esrkit.metrics import calculate_metrics
from esrkit.models import create_model, get_config, reparameterize
from helpers import shared_path

RNG = np.random.default_rng(11)


def _image(path: Path, h: int = 20, w: int = 24) -> Path:
    write_image(path, RNG.integers(0, 256, (h, w, 3), dtype=np.uint8))
    return path


def _flat(text: str) -> str:
    """A rich table's text without spaces and cell borders, so a wrapped cell reads as one string."""
    return re.sub(r"[\s│┃|]+", "", text)


@pytest.fixture
def no_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An installation without the bundled weights, whether or not this checkout ships them."""
    monkeypatch.delenv(bundled.ENV_VAR, raising=False)
    monkeypatch.setattr(bundled, "packaged_weights_path", lambda: tmp_path / "nothing" / bundled.WEIGHTS_FILE)


def _tiny_deploy(path: Path, seed: int = 0) -> Path:
    """A small random DIPNet in deploy form (a family with a distinct train form, so packaging's form check has
    something to refuse), saved as esrkit safetensors with trainer-like provenance."""
    torch.manual_seed(seed)
    model = create_model("dipnet", num_feat=8, mid_channels=8, num_block=1, esa_channels=4)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.05)
    provenance = {"recipe": {"name": "esrkit_x4", "model": "dipnet"}, "data": ["train/"],
                  "val": {"psnr_y_Set5": 11.11}, "esrkit_trained": True}
    return save_checkpoint(reparameterize(model), path, provenance=provenance)


TINY_SCORES = {"psnr_y_Set5": 12.34, "ssim_y_Set5": 0.56, "psnr_rgb_Set5": 10.5}


@pytest.fixture
def tiny_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny model packaged as the bundled weights and installed through ``$ESRKIT_BUNDLED_WEIGHTS``."""
    src = _tiny_deploy(tmp_path / "run" / "model_deploy.safetensors")
    path = bundled.package_weights(src, tmp_path / "bundle" / bundled.WEIGHTS_FILE, scores=TINY_SCORES)
    monkeypatch.setenv(bundled.ENV_VAR, str(path))
    return path


# ------------------------------------------------------------------------------------------------ no weights


@pytest.mark.usefixtures("no_bundle")
@pytest.mark.parametrize("args", [
    ["upscale", "IMG", "-o", "OUT"],
    ["upscale", "IMG", "-o", "OUT", "--model", "esrkit_x4"],
    ["demo", "-o", "OUT"],
    ["demo", "-o", "OUT", "--model", "esrkit_x4"],
    ["evaluate", "--data", "DATA"],
    ["evaluate", "--model", "esrkit_x4", "--data", "DATA"],
], ids=["upscale", "upscale-named", "demo", "demo-named", "evaluate", "evaluate-named"])
def test_without_the_bundled_weights_commands_say_so_in_one_line(args: list[str], tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "data").mkdir()
    image = _image(tmp_path / "data" / "a.png", 32, 32)
    out = tmp_path / "out"
    argv = [{"IMG": str(image), "OUT": str(out), "DATA": str(tmp_path / "data")}.get(a, a) for a in args]
    code = main([*argv, "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == f"esrkit: error: {bundled.MISSING_MESSAGE}"
    assert "bundled model is not in this installation; give --model" in err  # the wording the issue asks for
    assert not out.exists()


@pytest.mark.usefixtures("no_bundle")
def test_models_lists_esrkit_x4_as_not_installed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    flat = _flat(capsys.readouterr().out)
    assert "esrkit_x4" in flat and "esrkit'sownmodel:notinthisinstallation" in flat
    assert "rlfn_ntire" in flat  # beside the zoo, not instead of it


def test_an_override_naming_a_missing_file_is_an_error_not_a_fallback(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(bundled.ENV_VAR, str(tmp_path / "gone.safetensors"))
    code = main(["upscale", str(_image(tmp_path / "a.png")), "-o", str(tmp_path / "out"), "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert f"{bundled.ENV_VAR}={tmp_path / 'gone.safetensors'}: no such file" in err


# -------------------------------------------------------------------------------------------- with weights


def test_upscale_without_model_flags_runs_the_bundled_model(tiny_bundle: Path, tmp_path: Path) -> None:
    image = _image(tmp_path / "a.png")
    assert main(["upscale", str(image), "-o", str(tmp_path / "default"), "--device", "cpu"]) == 0
    assert main(["upscale", str(image), "-o", str(tmp_path / "named"), "--model", "esrkit_x4",
                 "--device", "cpu"]) == 0
    # What the bundled file's model computes, run directly: the default is that model, not another one.
    expected = Upscaler(load_checkpoint(tiny_bundle), 4)(read_image(image))
    for folder in ("default", "named"):
        got = read_image(tmp_path / folder / "a.png")
        assert got.shape == (80, 96, 3)
        np.testing.assert_array_equal(got, expected)


def test_esrkit_x4_is_the_bundled_file_for_every_from_name_caller(tiny_bundle: Path) -> None:
    up = Upscaler.from_name("esrkit_x4", scale=4, backend=None)  # the module itself, to read its weights
    state = read_state_dict(tiny_bundle)[0]
    got = up.model.state_dict()
    assert got.keys() == state.keys() and all(torch.equal(got[k], state[k]) for k in state)
    with pytest.raises(InputError, match="not both"):
        bundled.resolve_model_choice("esrkit_x4", tiny_bundle)


def test_profile_and_evaluate_take_the_bundled_model(tiny_bundle: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """``profile --model esrkit_x4`` counts the bundled file's model; ``evaluate`` with only ``--data`` scores it
    (the same PSNR as naming it)."""
    params = sum(t.numel() for t in read_state_dict(tiny_bundle)[0].values())
    assert main(["profile", "--model", "esrkit_x4", "--input", "32x32", "--no-runtime", "--json",
                 str(tmp_path / "p.json")]) == 0
    capsys.readouterr()
    doc = json.loads((tmp_path / "p.json").read_text())
    rows = doc["results"] if isinstance(doc, dict) else doc
    assert rows[0]["model"] == "esrkit_x4" and rows[0]["params"] == params
    data = tmp_path / "data"
    data.mkdir()
    _image(data / "a.png", 48, 40)
    scores = []
    for extra in ([], ["--model", "esrkit_x4"]):
        assert main(["evaluate", "--data", str(data), "--device", "cpu", *extra]) == 0
        scores.append(_flat(capsys.readouterr().out))
    assert "esrkit_x4×4" in scores[0] and scores[0] == scores[1]


def test_models_lists_the_bundled_model_with_its_parameters_and_scores(tiny_bundle: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    params = sum(t.numel() for t in read_state_dict(tiny_bundle)[0].values())
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "esrkit_x4" in line)
    assert "dipnet" in row and f"{params:,}" in row
    flat = _flat(out)
    assert "esrkit'sown,bundled" in flat and "Set512.34dB" in flat  # the packaged scores, not the trainer's 11.11
    assert "0.56" not in flat and "10.50" not in flat and "ssim" not in flat  # Y-PSNR only: SSIM is not in dB


def test_packaged_file_keeps_the_training_metadata_and_adds_scores_and_licence(tiny_bundle: Path) -> None:
    _, meta = read_state_dict(tiny_bundle)
    assert meta["form"] == "deploy" and meta["name"] == "dipnet"
    prov = meta["provenance"]
    assert prov["recipe"]["name"] == "esrkit_x4" and prov["val"] == {"psnr_y_Set5": 11.11}
    assert prov["scores"] == TINY_SCORES and prov["licence"] == bundled.LICENCE
    assert "Apache-2.0" in prov["licence"] and prov["bundled_as"] == "esrkit_x4"
    assert tiny_bundle.stat().st_size <= 1_000_000


def test_packaging_refuses_train_form_and_oversized_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    train = save_checkpoint(create_model("dipnet", num_feat=8, mid_channels=8, num_block=1, esa_channels=4),
                            tmp_path / "train.safetensors")
    with pytest.raises(CheckpointError, match="deploy form"):
        bundled.package_weights(train, tmp_path / "out.safetensors")
    deploy = _tiny_deploy(tmp_path / "deploy.safetensors")
    dst = tmp_path / "ship" / bundled.WEIGHTS_FILE
    dst.parent.mkdir()
    dst.write_bytes(b"previous")
    monkeypatch.setattr(bundled, "MAX_BYTES", 1000)
    with pytest.raises(InputError, match="over the 1,000-byte limit"):
        bundled.package_weights(deploy, dst)
    assert dst.read_bytes() == b"previous"  # left as it was


# ------------------------------------------------------------------------------------------------------ demo


def _printed(out: str, label: str) -> tuple[float, float]:
    """(PSNR-Y, SSIM-Y) of the row ``label`` in the demo's printed table (label, then four numbers)."""
    for line in out.splitlines():
        words = line.split()
        if len(words) > 4 and " ".join(words[:-4]) == label:
            return float(words[-4]), float(words[-3])
    raise AssertionError(f"no row {label!r} in:\n{out}")


def test_demo_writes_the_panels_and_a_self_contained_page_and_prints_matching_scores(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--model", "rlfn_ntire", "--random-weights", "-o", str(out), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    hr = read_image(out / "hr.png")
    np.testing.assert_array_equal(hr, read_image(bundled_sample()))
    lr, bic, sr = (read_image(out / n) for n in ("lr.png", "bicubic_x4.png", "sr_x4.png"))
    assert hr.shape == (256, 256, 3) and lr.shape == (64, 64, 3) and bic.shape == sr.shape == hr.shape
    np.testing.assert_array_equal(lr, imresize(hr, 0.25))  # the benchmarks' LR: MATLAB bicubic ÷4 on uint8
    side = read_image(out / "side_by_side.png")
    assert side.shape[1] == 4 * 256 + 3 * 4 and side.shape[0] > 256
    np.testing.assert_array_equal(side[-256:, 2 * 260:2 * 260 + 256], sr)  # the SR panel is the SR image
    # The printed scores are the papers' metrics of the images written (recomputed here from the files).
    for label, image in (("bicubic x4", bic), ("rlfn_ntire", sr)):
        psnr_y, ssim_y = _printed(printed, label)
        metrics = calculate_metrics(image, hr, 4)
        assert psnr_y == pytest.approx(metrics["psnr_y"], abs=0.006)
        assert ssim_y == pytest.approx(metrics["ssim_y"], abs=6e-5)
    assert "317,218 parameters" in printed  # RLFN-NTIRE's published count (seed-rlfn.md), random weights here
    assert re.search(r"SR in \d+\.\d ms on cpu", printed)
    page = (out / "demo.html").read_text(encoding="utf-8")
    assert page.count('src="data:image/png;base64,') == 8  # four panels and four zoomed crops, all inline
    assert not re.search(r"(src|href)=\"(?!data:)", page)  # no external reference of any kind
    assert "Zoomed crop" in page and "rlfn_ntire" in page


def test_demo_with_the_bicubic_baseline_scores_like_its_bicubic_column(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """The bicubic baseline model run as the 'SR' must land on the demo's own bicubic column (MATLAB bicubic both
    ways; the two round float → uint8 differently only at exact halves)."""
    out = tmp_path / "demo"
    assert main(["demo", "--model", "bicubic", "-o", str(out), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    bic, sr = read_image(out / "bicubic_x4.png"), read_image(out / "sr_x4.png")
    assert np.abs(bic.astype(int) - sr.astype(int)).max() <= 1
    assert _printed(printed, "bicubic x4")[0] == pytest.approx(_printed(printed, "bicubic")[0], abs=0.02)
    assert "+0.00 dB Y-PSNR over bicubic" in printed or "-0.00 dB Y-PSNR over bicubic" in printed


def test_demo_without_flags_runs_the_bundled_model(tiny_bundle: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from esrkit.demo import run_demo

    result = run_demo(tmp_path / "demo", device="cpu")
    assert result.model == "esrkit_x4" and result.architecture == "dipnet"
    assert result.params == sum(t.numel() for t in read_state_dict(tiny_bundle)[0].values())
    expected = Upscaler(load_checkpoint(tiny_bundle), 4)(read_image(tmp_path / "demo" / "lr.png"))
    np.testing.assert_array_equal(read_image(tmp_path / "demo" / "sr_x4.png"), expected)
    assert main(["demo", "-o", str(tmp_path / "cli"), "--device", "cpu"]) == 0
    assert "esrkit_x4 (dipnet" in capsys.readouterr().out


def test_demo_checks_its_output_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("x")
    code = main(["demo", "--model", "bicubic", "-o", str(tmp_path / "file"), "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--out:" in err and "not a folder" in err


# ------------------------------------------------------------------------------------------------- the sample


def bundled_sample() -> Path:
    from esrkit.demo import sample_path

    return sample_path()


def test_the_sample_ships_with_its_source_and_is_the_public_domain_nasa_photo() -> None:
    path = bundled_sample()
    sample = read_image(path)
    assert sample.shape == (256, 256, 3) and sample.dtype == np.uint8
    source = (path.parent / "SOURCE.md").read_text(encoding="utf-8")
    assert "public domain" in source.lower() and "NASA" in source
    # SOURCE.md states the crop; it must be exactly that crop of scikit-image's copy of the photograph.
    match = re.search(r"rows (\d+)[–-](\d+), columns (\d+)[–-](\d+)", source)
    assert match, "SOURCE.md must state the crop"
    r0, r1, c0, c1 = map(int, match.groups())
    skimage_data = pytest.importorskip("skimage.data")
    np.testing.assert_array_equal(sample, skimage_data.astronaut()[r0:r1, c0:c1])


# ------------------------------------------------------------------------------------------------ the recipe


def test_esrkit_x4_recipe_prunes_its_student_to_within_150k_parameters() -> None:
    """The recipe's student is the teacher's architecture (RLFN-NTIRE, 46/48/16 channels, started from the
    teacher's weights) and its three rounds (0.12, 0.12, 0.10) leave int((1 − r)·n) channels of every learned width:
    46 → 40 → 35 → 31, mid 48 → 42 → 36 → 32, ESA 16 → 14 → 12 → 10; the result has at most 150 K parameters
    (the issue's limit), folds to itself (no multi-branch left) and keeps its output shape. Widths depend on the
    shapes alone, so a randomly initialised RLFN-NTIRE stands in for the teacher's file."""
    from esrkit.compress import prune_filters
    from esrkit.train.recipe import load_recipe

    recipe = load_recipe("esrkit_x4")
    assert recipe.model == "rlfn_ntire" and recipe.scale == 4
    assert recipe.teacher.weights.endswith("rlfn_ntire2022_x4.pth") and recipe.init == recipe.teacher.weights
    rounds = [s.prune for s in recipe.stages if s.prune]
    assert rounds == [0.12, 0.12, 0.10]
    torch.manual_seed(0)
    model = create_model(recipe.model, scale=4)
    widths = []
    for ratio in rounds:
        model = prune_filters(model, ratio)
        hp = get_config(model).hparams
        widths.append((hp["num_feat"], hp["mid_channels"], hp["esa_channels"]))
    assert widths == [(40, 42, 14), (35, 36, 12), (31, 32, 10)]
    deploy = reparameterize(model.eval())
    params = sum(p.numel() for p in deploy.parameters())
    def conv(cin: int, cout: int, k: int) -> int:
        return cin * cout * k * k + cout

    def rlfn_params(f: int, m: int, e: int) -> int:  # conv_1, 4 × (3 convs, c5, ESA's 5 convs), conv_2, upsampler
        block = (conv(f, m, 3) + conv(m, m, 3) + conv(m, f, 3) + conv(f, f, 1) + conv(f, e, 1) + conv(e, e, 1)
                 + 2 * conv(e, e, 3) + conv(e, f, 1))
        return conv(3, f, 3) + 4 * block + conv(f, f, 3) + conv(f, 48, 3)

    assert rlfn_params(46, 48, 16) == 317_218  # the published RLFN-NTIRE count: the formula is right
    assert params == rlfn_params(31, 32, 10) == 145_988 <= 150_000
    x = torch.rand(1, 3, 20, 24)
    with torch.no_grad():
        out = deploy(x)
        torch.testing.assert_close(out, model(x), atol=1e-5, rtol=1e-4)
    assert out.shape == (1, 3, 80, 96)


def test_metadata_key_is_json(tiny_bundle: Path) -> None:
    """The shipped header is plain JSON under the ``esrkit`` key (what any safetensors reader can show)."""
    from safetensors import safe_open

    with safe_open(str(tiny_bundle), framework="pt") as fh:
        header = fh.metadata()
    assert json.loads(header["esrkit"])["provenance"]["bundled_as"] == "esrkit_x4"


# ------------------------------------------------------------------------------------------------ the shipped file

SHIPPED = bundled.packaged_weights_path()
needs_shipped = pytest.mark.skipif(not SHIPPED.is_file(), reason="this checkout does not ship esrkit_x4 weights")


@needs_shipped
def test_the_shipped_model_is_small_deploy_form_and_documents_itself() -> None:
    """The file that ships: at most 1 MB and 150 K parameters, deploy form, and its metadata carries the recipe,
    the training data, the measured scores and the licence line."""
    assert SHIPPED.stat().st_size <= bundled.MAX_BYTES
    state, meta = read_state_dict(SHIPPED)
    assert sum(t.numel() for t in state.values()) <= 150_000
    assert meta["form"] == "deploy"
    provenance = meta["provenance"]
    assert provenance["recipe"]["name"] == "esrkit_x4" and provenance["bundled_as"] == "esrkit_x4"
    assert provenance["data"] and provenance["licence"] == bundled.LICENCE
    assert {"psnr_y_Set5", "psnr_y_Set14"} <= set(provenance["scores"])


@needs_shipped
@pytest.mark.shared
def test_the_shipped_model_clears_the_floor_through_evaluate_without_model_flags(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """``esrkit evaluate --data Set5 --data Set14`` (no model flags: the bundled model) scores above the issue's
    floor, FSRCNN's published 30.71 / 27.59 rounded up to 30.8 / 27.6, and equals the scores in the file's
    metadata (measured the same way when the file was packaged)."""
    monkeypatch.delenv(bundled.ENV_VAR, raising=False)
    benches = shared_path("data", "benchmarks")
    out = tmp_path / "scores.json"
    assert main(["evaluate", "--data", str(benches / "Set5"), "--data", str(benches / "Set14"),
                 "--json", str(out)]) == 0
    capsys.readouterr()
    got = {r["dataset"]: r["psnr_y"] for r in json.loads(out.read_text())["results"]}
    assert got["Set5"] >= 30.8 and got["Set14"] >= 27.6, got
    recorded = read_state_dict(SHIPPED)[1]["provenance"]["scores"]
    assert abs(got["Set5"] - recorded["psnr_y_Set5"]) < 1e-3 and abs(got["Set14"] - recorded["psnr_y_Set14"]) < 1e-3
