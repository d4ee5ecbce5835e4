"""``esrkit quantize``: int8 models that keep their PSNR, run through ``evaluate --weights``; bad input refused.

Run by ``test_quantize.py`` in a process of its own, like ``backends_cases.py`` (OpenVINO's and ONNX Runtime's thread
pools in the long suite's process; see ``test_backends.py``); ``pytest tests/quantize_cases.py`` runs it directly.

The fp32 reference figures (esrkit_x4 Set5 Y-PSNR 31.20 dB) come from the bundled model's own measurement (README),
not from the code under test. Calibration uses a few BSDS500 photos from ../shared (skipped without it), so the
quantize-and-evaluate test stays well under half a minute on two cores.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil

import numpy as np
import pytest

from conftest import shared_path
from esrkit.cli import main
from esrkit.data.io import write_image
from esrkit.errors import InputError

# checked without importing them (NNCF alone takes seconds to import)
pytestmark = pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in ("nncf", "openvino", "onnxruntime")),
                                reason="needs nncf, openvino and onnxruntime (pip install 'esrkit[quantize]')")

ESRKIT_X4_SET5_Y = 31.20  # README: the bundled model's Set5 ×4 Y-PSNR in fp32


def _calib(tmp_path, n=6):
    """A small calibration folder: the first ``n`` BSDS500 training photos."""
    src = shared_path("data", "train", "bsds500_train")
    folder = tmp_path / "calib"
    folder.mkdir()
    for f in sorted(src.glob("*.jpg"))[:n]:
        shutil.copy(f, folder / f.name)
    return folder


def _evaluate_set5(tmp_path, weights, *extra):
    out = tmp_path / f"{weights.stem}.json"
    data = shared_path("data", "benchmarks", "Set5")
    assert main(["evaluate", "--weights", str(weights), "--data", str(data), "--json", str(out), *extra]) == 0
    [row] = json.loads(out.read_text())["results"]
    return row["psnr_y"]


@pytest.fixture(scope="module")
def quantized_ov(tmp_path_factory):
    """esrkit_x4 quantized for OpenVINO with 24 patches from 6 photos (the CLI, as a user runs it)."""
    tmp = tmp_path_factory.mktemp("q")
    out = tmp / "x4_int8.xml"
    code = main(["quantize", "--model", "esrkit_x4", "--calib", str(_calib(tmp)), "-o", str(out),
                 "--calib-count", "24"])
    assert code == 0
    return out


def test_int8_openvino_keeps_set5_psnr(quantized_ov, tmp_path):
    psnr = _evaluate_set5(tmp_path, quantized_ov)
    assert abs(psnr - ESRKIT_X4_SET5_Y) < 0.2
    # --json names the int8 files that ran: the graph and the weights beside it, by sha256
    record = json.loads((tmp_path / f"{quantized_ov.stem}.json").read_text())["weights_provenance"]
    assert record["kind"] == "quantized" and record["path"] == str(quantized_ov.resolve())
    assert record["sha256"] == hashlib.sha256(quantized_ov.read_bytes()).hexdigest()
    weights = quantized_ov.with_suffix(".bin")
    assert record["bin"]["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()


def test_metadata_records_source_calibration_and_check(quantized_ov):
    from esrkit.bundled import require_bundled_weights
    from esrkit.quantize import read_metadata

    meta = read_metadata(quantized_ov)
    assert quantized_ov.with_suffix(".bin").is_file()
    source = require_bundled_weights()
    assert meta["source"]["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert meta["method"] == "ptq" and meta["backend"] == "openvino" and meta["precision"] == "int8"
    assert meta["config"]["name"] == "rlfn_ntire" and meta["config"]["scale"] == 4
    assert meta["calibration"]["patches"] == 24 and meta["calibration"]["images"] == 5
    check = meta["psnr_check"]
    assert check["images"] == [meta["calibration"]["holdout_images"][0]]  # every fifth photo is held out
    assert check["change_db"] == pytest.approx(check["psnr_y_int8"] - check["psnr_y_fp32"])
    assert abs(check["change_db"]) < 0.5


def test_fp32_islands_are_the_sensitive_convolutions(quantized_ov):
    """The rule keeps in fp32: the pixel-reading conv_1, each block's c5 (reads out + x), ESA's conv4 (reads the
    upsampled map + conv_f), conv_2 (writes the long skip) and the pixel-shuffle head; nothing else."""
    from esrkit.quantize import read_metadata

    kept = [name.split("/Conv")[0] for name in read_metadata(quantized_ov)["recipe"]["fp32_convolutions"]]
    blocks = [f"/block_{i}/{layer}" for i in range(1, 5) for layer in ("c5", "esa/conv4")]
    assert sorted(kept) == sorted(["/conv_1", *blocks, "/conv_2", "/upsampler/upsampler.0"])


def test_runs_int8_and_refuses_what_does_not_apply(quantized_ov):
    import torch

    from esrkit.infer import Upscaler

    up = Upscaler.from_name(weights=quantized_ov)
    assert up.model.describe() == "openvino int8"
    assert up.scale == 4
    lr = np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    assert up(lr).shape == (80, 96, 3)
    with pytest.raises(InputError, match="onnxruntime"):
        Upscaler.from_name(weights=quantized_ov, backend="onnxruntime")
    with pytest.raises(InputError, match="bf16"):
        Upscaler.from_name(weights=quantized_ov, precision="bf16")
    with pytest.raises(InputError, match="×2"):
        Upscaler.from_name(weights=quantized_ov, scale=2)
    assert torch.is_tensor(up.upscale_tensor(torch.rand(1, 3, 16, 16)))


def test_fp32_rule_reads_the_same_convolutions_in_both_runtimes_graphs(tmp_path):
    """OpenVINO splits a conv's bias into an Add (through a ShapeOf-driven reshape) and renames the conv; the rule
    must still see the same residual sums, so both graphs keep the same convolutions."""
    import onnx
    import openvino as ov

    from esrkit.infer import Upscaler
    from esrkit.infer.backends import export_onnx
    from esrkit.quantize.graph import fp32_convolutions, onnx_nodes, openvino_nodes

    module = Upscaler.from_name("esrkit_x4", backend=None).model
    path = export_onnx(module, tmp_path / "m.onnx", deploy=False, verify=False)
    from_onnx = fp32_convolutions(onnx_nodes(onnx.load(str(path))))
    from_ov = fp32_convolutions(openvino_nodes(ov.Core().read_model(str(path))))
    assert len(from_onnx) == 11
    assert [n.removesuffix("/WithoutBiases") for n in from_ov] == from_onnx


@pytest.mark.slow
def test_onnxruntime_and_openvino_int8_agree(quantized_ov, tmp_path):
    """The same recipe and calibration for ONNX Runtime (QDQ) scores the same Set5 PSNR as for OpenVINO."""
    out = tmp_path / "x4_int8.onnx"
    assert main(["quantize", "--model", "esrkit_x4", "--calib", str(_calib(tmp_path)), "-o", str(out),
                 "--calib-count", "24", "--backend", "onnxruntime"]) == 0
    assert abs(_evaluate_set5(tmp_path, out) - _evaluate_set5(tmp_path, quantized_ov)) < 0.05


# -------------------------------------------------------------------------------- quantization-aware fine-tuning


def test_qat_fine_tunes_on_the_calibration_photos_then_quantizes(tmp_path):
    """``--method qat``: a (here 3-step) int8_qat run on the photos not held out, then the PTQ recipe; the metadata
    names both the original weights and the fine-tuned ones."""
    from esrkit.bundled import require_bundled_weights
    from esrkit.quantize import read_metadata

    out = tmp_path / "x4_qat.xml"
    assert main(["quantize", "--model", "esrkit_x4", "--calib", str(_calib(tmp_path)), "-o", str(out),
                 "--calib-count", "24", "--method", "qat", "--qat-iters", "3"]) == 0
    meta = read_metadata(out)
    source = hashlib.sha256(require_bundled_weights().read_bytes()).hexdigest()
    assert meta["method"] == "qat" and meta["source"]["sha256"] == source
    assert meta["qat"]["iterations"] == 3 and meta["qat"]["recipe"] == "int8_qat"
    assert meta["qat"]["photos"] == 5  # six photos, one held out for the check
    assert meta["qat"]["sha256"] != source
    assert abs(_evaluate_set5(tmp_path, out) - ESRKIT_X4_SET5_Y) < 0.3


@pytest.mark.slow
@pytest.mark.parametrize(("model", "fp32"), [("esrkit_x4", (31.197, 28.023)), ("rlfn_ntire", (32.098, 28.598))])
def test_qat_int8_is_within_a_tenth_of_a_db_on_set5_and_set14(model, fp32, tmp_path):
    """Issue 21's figure (about 8 minutes each on two cores): the recipe's fine-tuning on the 200 BSDS500
    training photos, then OpenVINO int8, Set5 and Set14 Y-PSNR within 0.10 dB of fp32 (the fp32 figures are
    ``esrkit evaluate`` of the fp32 weights, README)."""
    calib = shared_path("data", "train", "bsds500_train")
    source = ["--model", "esrkit_x4"] if model == "esrkit_x4" else [
        "--weights", str(shared_path("weights", "official", "rlfn_ntire2022_x4.pth"))]
    out = tmp_path / f"{model}_qat.xml"
    assert main(["quantize", *source, "--calib", str(calib), "-o", str(out), "--method", "qat"]) == 0
    report = tmp_path / "scores.json"
    assert main(["evaluate", "--weights", str(out), "--data", str(shared_path("data", "benchmarks", "Set5")),
                 "--data", str(shared_path("data", "benchmarks", "Set14")), "--json", str(report)]) == 0
    scores = [row["psnr_y"] for row in json.loads(report.read_text())["results"]]
    assert scores[0] > fp32[0] - 0.10 and scores[1] > fp32[1] - 0.10, scores


# ------------------------------------------------------------------------------------------------ bad input


def _refused(tmp_path, capsys, args, out_name="q.xml"):
    out = tmp_path / "out" / out_name
    before = set(tmp_path.rglob("*"))
    code = main(["quantize", *args, "-o", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert set(tmp_path.rglob("*")) == before  # nothing written, not even the output folder
    return err


def test_no_calibration_images(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no photos here")
    err = _refused(tmp_path, capsys, ["--model", "esrkit_x4", "--calib", str(tmp_path / "empty")])
    assert "no images" in err and "--calib" in err


def test_calibration_folder_of_corrupt_files(tmp_path, capsys):
    folder = tmp_path / "bad"
    good = write_image(folder / "a.png", np.zeros((80, 80, 3), dtype=np.uint8)).read_bytes()
    (folder / "a.png").write_bytes(good[: len(good) // 2])
    (folder / "b.jpg").write_bytes(b"not a jpeg at all")
    err = _refused(tmp_path, capsys, ["--model", "esrkit_x4", "--calib", str(folder)])
    assert "a.png" in err and "cannot decode" in err


def test_unsupported_models(tmp_path, capsys):
    (tmp_path / "c").mkdir()
    write_image(tmp_path / "c" / "a.png", np.zeros((80, 80, 3), dtype=np.uint8))
    calib = ["--calib", str(tmp_path / "c")]
    assert "rlfn" in _refused(tmp_path, capsys, ["--model", "rlfn", *calib])  # a name without known weights
    (tmp_path / "junk.pth").write_bytes(b"\x80\x02junk")
    assert "junk.pth" in _refused(tmp_path, capsys, ["--weights", str(tmp_path / "junk.pth"), *calib])
    assert "ptq or qat" in _refused(tmp_path, capsys, ["--model", "esrkit_x4", "--method", "int4", *calib])
    assert "--qat-iters" in _refused(tmp_path, capsys, ["--model", "esrkit_x4", "--method", "qat", "--qat-iters", "0",
                                                        *calib])
    assert ".onnx" in _refused(tmp_path, capsys, ["--model", "esrkit_x4", "--backend", "onnxruntime", *calib])
    assert "tensorrt" in _refused(tmp_path, capsys, ["--model", "esrkit_x4", "--backend", "tensorrt", *calib])


def test_exported_fp32_onnx_is_not_a_quantized_model(tmp_path, capsys):
    onnx_file = tmp_path / "fp32.onnx"
    assert main(["export", "--model", "esrkit_x4", "--onnx", str(onnx_file)]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--weights", str(onnx_file), "--data", "Set5"]) == 2
    assert "not a model written by esrkit quantize" in capsys.readouterr().err


def test_recommend_measures_an_int8_candidate_once_against_the_floor(quantized_ov, tmp_path):
    out = tmp_path / "rec.json"
    data = shared_path("data", "benchmarks", "Set5")
    assert main(["recommend", "--weights", str(quantized_ov), "--min-psnr", "30", "--data", str(data),
                 "--input", "32x32", "--repeats", "1", "--warmup", "1", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    rows = doc["measurements"]
    assert [(r["backend"], r["precision"]) for r in rows] == [("openvino", "int8")]
    assert rows[0]["psnr_y"] > 30 and rows[0]["median_ms"] > 0


def test_profile_refuses_an_int8_file_in_one_line(tmp_path, capsys):
    (tmp_path / "m.xml").write_text("<net/>")
    assert main(["profile", "--weights", str(tmp_path / "m.xml")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "recommend" in err


def test_upscale_cli_takes_the_int8_file(quantized_ov, tmp_path):
    from esrkit.data.io import read_image

    src = write_image(tmp_path / "in" / "a.png", np.random.default_rng(1).integers(0, 256, (20, 30, 3), np.uint8))
    assert main(["upscale", str(src), "-o", str(tmp_path / "out.png"), "--weights", str(quantized_ov)]) == 0
    assert read_image(tmp_path / "out.png").shape == (80, 120, 3)
