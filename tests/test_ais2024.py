"""The AIS 2024 pipeline: the survey's FFmpeg degradation byte for byte, its cache, the Lanczos baseline, the score
against Table 1, ``esrkit challenge run ais2024`` with the released CASR and light SAFMN++ weights, and training on
the pre-encoded degradation.

Expected values come from the survey as transcribed in ``shared/docs/notes/seed-ais2024.md``: the command is the
notes' code block run literally, the scores are Table 1's printed ones, #Params and MACs are Table 1's.
"""

from __future__ import annotations

import json
import math
import re
import shlex
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from esrkit.data import ais2024 as ais
from esrkit.data.io import mod_crop, read_image, write_image
from helpers import shared_path

pytest.importorskip("imageio_ffmpeg", reason="the AIS 2024 degradation needs imageio-ffmpeg")


@pytest.fixture(scope="module")
def ffmpeg() -> str:
    try:
        ais.ffmpeg_version()
    except ais.FFmpegError as exc:
        pytest.skip(f"no usable FFmpeg with libsvtav1: {exc}")
    return ais.ffmpeg_exe()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ESRKIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _notes() -> str:
    return shared_path("docs", "notes", "seed-ais2024.md").read_text(encoding="utf-8")


def _survey_command() -> list[str]:
    """The command of the notes' "Degradation (exact)" section, split as a shell would."""
    block = _notes().split("Example command as given:", 1)[1].split("```", 2)[1]
    return shlex.split(block.strip())


def _run_survey_command(ffmpeg: str, src: Path, qp: int, out_dir: Path) -> bytes:
    """Run the notes' command literally, with only the binary, the input file, the QP and the output name set."""
    args = _survey_command()
    assert args[0] == "ffmpeg" and args.count("-qp") == 1
    args[0] = ffmpeg
    args[args.index("-i") + 1] = str(src)
    args[args.index("-qp") + 1] = str(qp)
    args[-1] = str(out_dir / f"1_4x_qp{qp}.avif")
    subprocess.run(args, check=True, capture_output=True, timeout=120)
    return Path(args[-1]).read_bytes()


def _cli_decode(ffmpeg: str, avif: bytes, tmp: Path) -> np.ndarray:
    """``ffmpeg -i x.avif x.png``, read back with Pillow: how a user turns the LR into RGB on the command line."""
    (tmp / "x.avif").write_bytes(avif)
    subprocess.run([ffmpeg, "-hide_banner", "-y", "-loglevel", "error", "-i", str(tmp / "x.avif"), str(tmp / "x.png")],
                   check=True, capture_output=True, timeout=60)
    return np.asarray(Image.open(tmp / "x.png").convert("RGB"))


# --------------------------------------------------------------------------------------------------------------
# the degradation


@pytest.mark.shared
def test_notes_command_is_the_one_esrkit_runs() -> None:
    args = _survey_command()
    assert args[args.index("-vf") + 1] == ais.DOWNSCALE_FILTER
    assert args[args.index("-c:v") + 1] == "libsvtav1" and args[args.index("-preset") + 1] == str(ais.PRESET)
    built = ais.encode_command("../1.png", "1_4x_qp31.avif", 31, exe="ffmpeg")
    assert built == args  # argument for argument, order included


@pytest.mark.shared
@pytest.mark.parametrize("qp", [31, 63])
def test_degraded_lr_equals_the_survey_command_byte_for_byte(qp: int, ffmpeg: str, cache: Path,
                                                             tmp_path: Path) -> None:
    # A Set5 image as distributed (no colour chunks), and a crop of it written as a plain PNG.
    original = shared_path("data", "benchmarks", "Set5", "HR", "baby.png")
    crop = read_image(original)[100:188, 40:160]  # 88×120: LR 22×30
    write_image(tmp_path / "crop.png", crop)
    for src, hr in ((original, read_image(original)), (tmp_path / "crop.png", crop)):
        out = tmp_path / src.stem
        out.mkdir()
        expected = _run_survey_command(ffmpeg, src, qp, out)
        result = ais.degrade(hr, qp)
        assert result.avif == expected, f"{src.name}: AVIF bytes differ from the command line's"
        assert ais.encode_avif(hr, qp) == expected
        assert result.lr.shape == (math.ceil(hr.shape[0] / 4), math.ceil(hr.shape[1] / 4), 3)
        assert np.array_equal(result.lr, _cli_decode(ffmpeg, expected, out))  # pixels of `ffmpeg -i x.avif x.png`


def test_cache_hit_returns_identical_data(ffmpeg: str, cache: Path) -> None:
    rng = np.random.default_rng(0)
    hr = np.clip(rng.normal(128, 40, (64, 80, 3)), 0, 255).astype(np.uint8)
    first = ais.degrade(hr, 47)
    assert not first.cached and first.lr_path is not None and first.lr_path.is_relative_to(cache)
    again = ais.degrade(hr.copy(), 47)
    assert again.cached and again.avif == first.avif and np.array_equal(again.lr, first.lr)
    assert again.key == first.key == ais.content_key(hr)
    # the key holds the FFmpeg build: its version line is stamped in the folder the files are in
    stamp = first.lr_path.parent.parent / "ffmpeg-version.txt"
    assert stamp.read_text(encoding="utf-8").splitlines()[0] == ais.ffmpeg_version()
    # another QP, or one changed pixel, is another entry
    assert not ais.degrade(hr, 55).cached
    changed = hr.copy()
    changed[0, 0, 0] ^= 1
    assert not ais.degrade(changed, 47).cached
    # no cache: the same bytes, nothing written
    uncached = ais.degrade(hr, 47, cache=False)
    assert uncached.avif == first.avif and uncached.lr_path is None


def test_pillow_decoder_sees_the_same_file(ffmpeg: str, cache: Path) -> None:
    hr = read_image(shared_path("data", "benchmarks", "Set5", "HR", "head.png"))[:96, :96]
    by_ffmpeg, by_pillow = ais.degrade(hr, 31), ais.degrade(hr, 31, decoder="pillow")
    assert by_ffmpeg.avif == by_pillow.avif and by_pillow.cached  # one encode, two decodes
    assert by_pillow.lr.shape == by_ffmpeg.lr.shape
    diff = np.abs(by_pillow.lr.astype(int) - by_ffmpeg.lr.astype(int))
    assert diff.max() > 0  # they differ only in the YUV → RGB conversion ...
    assert np.mean(diff) < 3  # ... by a few levels


def _lanczos5_reference(image: np.ndarray, s: int) -> np.ndarray:
    """Float64 Lanczos a=5, pixel-centre mapping u = (i + 0.5)/s - 0.5, clamped borders, weights summing to 1."""

    def matrix(n: int) -> np.ndarray:
        m = np.zeros((n * s, n))
        for i in range(n * s):
            u = (i + 0.5) / s - 0.5
            for j in range(math.floor(u) - 4, math.floor(u) + 6):
                m[i, min(max(j, 0), n - 1)] += np.sinc(u - j) * np.sinc((u - j) / 5) if abs(u - j) < 5 else 0.0
            m[i] /= m[i].sum()
        return m

    rows, cols = matrix(image.shape[0]), matrix(image.shape[1])
    out = np.stack([rows @ image[..., c].astype(np.float64) @ cols.T for c in range(3)], axis=-1)
    return np.clip(np.round(out), 0, 255)


def test_lanczos_baseline_is_a_per_channel_lanczos5(ffmpeg: str) -> None:
    rng = np.random.default_rng(1)
    lr = rng.integers(0, 256, (24, 36, 3), dtype=np.uint8)
    up = ais.lanczos_upscale(lr)
    assert up.shape == (96, 144, 3) and up.dtype == np.uint8
    diff = np.abs(up.astype(float) - _lanczos5_reference(lr, 4))
    assert diff.max() <= 2 and diff.mean() < 0.1  # swscale's fixed-point arithmetic
    flat = np.full((10, 12, 3), (255, 0, 37), np.uint8)
    assert np.array_equal(ais.lanczos_upscale(flat), np.full((40, 48, 3), (255, 0, 37), np.uint8))


def test_bad_inputs_are_typed_errors(ffmpeg: str, cache: Path) -> None:
    from esrkit.errors import ImageReadError, InputError

    hr = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(InputError, match="qp"):
        ais.degrade(hr, 64)
    with pytest.raises(InputError, match="uint8"):
        ais.degrade(hr.astype(np.float32), 31)
    with pytest.raises(InputError, match="decoder"):
        ais.degrade(hr, 31, decoder="opencv")
    with pytest.raises(ImageReadError):
        ais.decode_avif(b"not an avif file at all")
    with pytest.raises(InputError, match="too small"):
        ais.degrade(np.zeros((4, 8, 3), np.uint8), 31)  # an LR side of 1 pixel, which SVT-AV1 refuses
    assert ais.degrade(np.zeros((5, 5, 3), np.uint8), 31).lr.shape == (2, 2, 3)


@pytest.mark.parametrize("qps", [[31, 64], [31, -1], [31, True], [31, 39.0], [31, "39"]])
def test_one_qp_rule_for_training_and_the_challenge(qps: list[object]) -> None:
    """A QP list is checked once (``check_qps``), so the training degradation and the challenge refuse the same
    values: AV1 quantizers are ints in 0..63, a bool is not one. Empty lists are refused with their own reason."""
    from esrkit.errors import InputError
    from esrkit.train.degradations import LanczosAvifDegradation

    with pytest.raises(InputError, match=r"AV1 quantizer in 0\.\.63"):
        ais.check_qps(qps)
    with pytest.raises(InputError, match=r"AV1 quantizer in 0\.\.63"):
        LanczosAvifDegradation(qps=qps)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"AV1 quantizer in 0\.\.63"):
        ais.check_qps([*qps, 63], required=(31, 63), needed_for="Δ")
    with pytest.raises(InputError, match="give at least one QP"):
        LanczosAvifDegradation(qps=())
    with pytest.raises(InputError, match="Δ needs QP31 and QP63; add 31, 63"):
        ais.check_qps([], required=(31, 63), needed_for="Δ")
    assert ais.check_qps([63, 31, 63]) == (63, 31, 63)  # order and repeats kept: they weight a uniform draw


# --------------------------------------------------------------------------------------------------------------
# the score, against Table 1


def _table1() -> tuple[list[str], list[list[str]]]:
    section = _notes().split("## 3. Results", 1)[1].split("Row → team", 1)[0]
    lines = [ln for ln in section.splitlines() if ln.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    body = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in lines[2:]]
    return header, body


@pytest.mark.shared
def test_run_score_matches_table1() -> None:
    """The score ``challenge run`` reports, fed Table 1's PSNR-Y and runtime, is Table 1's printed score."""
    from esrkit.challenge import load_protocol
    from esrkit.challenge.ais2024 import _score

    header, body = _table1()
    col = {name: i for i, name in enumerate(header)}
    lanczos = next(r for r in body if r[0].startswith("Baseline"))
    baseline = {"team": "Lanczos", "baseline": True, "psnr_y_qp31": float(lanczos[col["PSNR-Y QP31"]]),
                "psnr_y_qp63": float(lanczos[col["PSNR-Y QP63"]])}
    protocol = load_protocol("ais2024")
    checked = 0
    for r in body:
        if r[col["Score"]] == "-":
            continue
        row = {"team": r[0], "runtime_ms": float(r[col["Runtime [ms]"]]),
               "psnr_y_qp31": float(r[col["PSNR-Y QP31"]]), "psnr_y_qp63": float(r[col["PSNR-Y QP63"]])}
        scored = _score(protocol, row, baseline)
        assert f"{scored['delta_db']:.3f}" == r[col["Δ [dB]"]], r[0]
        assert f"{scored['score']:.2f}" == r[col["Score"]], r[0]
        assert scored["eligible"], r[0]
        checked += 1
    assert checked == 16
    urpnet = next(r for r in body if r[0].startswith("URPNet"))
    row = {"team": "URPNet", "runtime_ms": float(urpnet[col["Runtime [ms]"]]),
           "psnr_y_qp31": float(urpnet[col["PSNR-Y QP31"]]), "psnr_y_qp63": float(urpnet[col["PSNR-Y QP63"]])}
    scored = _score(protocol, row, baseline)
    assert not scored["eligible"] and "Lanczos" in scored["reason"]  # below Lanczos: no score printed


# --------------------------------------------------------------------------------------------------------------
# esrkit challenge run ais2024


def _table1_row(team_prefix: str) -> dict[str, str]:
    header, body = _table1()
    row = next(r for r in body if r[0].startswith(team_prefix))
    return dict(zip(header, row, strict=True))


@pytest.fixture(scope="module")
def run_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ais-cache")


@pytest.mark.shared
@pytest.mark.parametrize(("weights", "family", "table_row"), [
    ("casr_ais2024_deploy_x4.pt", "casr", "CASR"),
    ("light_safmnpp_ais2024_x4.pth", "light_safmnpp", "VPEG-S"),
])  # fmt: skip
def test_challenge_run_ais2024_improves_on_lanczos(weights: str, family: str, table_row: str, ffmpeg: str,
                                                  run_cache: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from esrkit.challenge import rank_rows, read_rows
    from esrkit.cli import main
    from esrkit.models import list_models

    if family not in list_models():
        pytest.skip(f"the {family} family is not registered yet")
    path = shared_path("weights", "official", weights)
    set5 = shared_path("data", "benchmarks", "Set5")
    monkeypatch.setenv("ESRKIT_CACHE", str(run_cache))
    out = tmp_path / "run.json"
    code = main(["challenge", "run", "ais2024", "--weights", str(path), "--data", str(set5), "--crop-multiple", "24",
                 "--qps", "31,63", "--repeats", "2", "--warmup", "1", "--runtime-size", "48x48", "--device", "cpu",
                 "--json", str(out)])
    assert code == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    row, lanczos = doc["rows"]
    assert doc["challenge"] == "ais2024" and row["model"] == family and lanczos["baseline"] is True
    delta = (row["psnr_y_qp31"] + row["psnr_y_qp63"]) / 2 - (lanczos["psnr_y_qp31"] + lanczos["psnr_y_qp63"]) / 2
    assert delta > 0, f"{family}: Δ {delta:+.3f} dB over Lanczos on Set5"
    assert doc["details"]["delta_db"] == pytest.approx(delta)
    # the score by the published formula, S = 2 * 2^Δ / (sqrt(T) * C), C = 0.1, T in ms
    assert doc["details"]["score"] == pytest.approx(2 * 2**delta / (math.sqrt(row["runtime_ms"]) * 0.1))
    # complexity at the challenge's 540p input matches Table 1 (Set5 PSNRs do not: other images)
    published = _table1_row(table_row)
    assert f"{row['params_m']:.3f}" == published["# Par. [M]"]
    assert abs(row["macs_g"] - float(published["MACs [G]"])) < 0.05
    for key in ("psnr_rgb_qp31", "ssim_y_qp63"):
        assert key in row and key in lanczos
    assert all(img["hr_hw"][0] % 24 == 0 and img["hr_hw"][1] % 24 == 0 for img in doc["details"]["per_image"])
    assert any("not the AIS 2024 test set" in note for note in doc["details"]["notes"])
    # the document ranks and reports as it is: Δ against its own Lanczos row
    entry = rank_rows(read_rows([out]), "ais2024", enforce_floor=False).entry(row["team"])
    assert entry.derived["delta"] == pytest.approx(delta)
    assert main(["challenge", "rank", "-c", "ais2024", "--no-floor", str(out)]) == 0
    assert main(["report", str(out), "-o", str(tmp_path / "report.html")]) == 0


@pytest.mark.shared
def test_two_runs_on_the_same_data_rank_together(tmp_path: Path) -> None:
    """Each run carries its Lanczos row; identical ones from two runs are one reference, different ones an error."""
    from esrkit.challenge import rank_rows, read_rows
    from esrkit.errors import InputError

    lanczos = {"team": "Lanczos", "baseline": True, "psnr_y_qp31": 29.0, "psnr_y_qp63": 25.3, "data": "Set5"}
    for name, y in (("a", 29.3), ("b", 29.6)):
        doc = {"challenge": "ais2024", "rows": [{"team": name, "runtime_ms": 1.0, "psnr_y_qp31": y,
                                                 "psnr_y_qp63": 25.4, "data": "Set5"}, lanczos]}
        (tmp_path / f"{name}.json").write_text(json.dumps(doc), encoding="utf-8")
    ranking = rank_rows(read_rows([tmp_path / "a.json", tmp_path / "b.json"]), "ais2024")
    assert [e.row.team for e in ranking.ranked] == ["b", "a"]
    assert ranking.entry("a").derived["delta"] == pytest.approx(0.2)
    other = {**lanczos, "data": "Set14", "psnr_y_qp31": 27.0}
    (tmp_path / "c.json").write_text(json.dumps({"rows": [{"team": "c", "runtime_ms": 1.0, "psnr_y_qp31": 28.0,
                                                           "psnr_y_qp63": 25.0}, other]}), encoding="utf-8")
    with pytest.raises(InputError, match="duplicate entry 'Lanczos'"):
        read_rows([tmp_path / "a.json", tmp_path / "c.json"])


def test_challenge_run_ais2024_input_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from esrkit.cli import main

    weights = tmp_path / "w.pth"
    weights.write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    for args, needle in ((["--data", str(tmp_path / "missing")], "--data: no such folder"),
                         (["--data", str(tmp_path / "empty")], "no HR images"),
                         (["--data", str(tmp_path), "--qps", "31,47"], "QP31 and QP63"),
                         (["--data", str(tmp_path), "--runtime-size", "540p"], "WIDTHxHEIGHT")):
        code = main(["challenge", "run", "ais2024", "--weights", str(weights), *args])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and needle in err, err
    from esrkit.challenge import measure_challenge_row
    from esrkit.errors import InputError

    with pytest.raises(InputError, match="no such folder"):  # the library entry point dispatches to AIS too
        measure_challenge_row("ais2024", weights, tmp_path / "missing")


# --------------------------------------------------------------------------------------------------------------
# training on the degradation


def _textured(folder: Path, sizes: list[tuple[int, int]]) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(2)
    for i, (h, w) in enumerate(sizes):
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([xx * 2, yy * 2, (xx + yy)], axis=-1) % 256 + rng.normal(0, 25, (h, w, 3))
        write_image(folder / f"im{i}.png", np.clip(base, 0, 255).astype(np.uint8))
    return folder


def test_paired_dataset_serves_crops_of_the_whole_image_lr(ffmpeg: str, cache: Path, tmp_path: Path) -> None:
    from esrkit.train.augment import dihedral
    from esrkit.train.datasets import AvifPairedDataset

    folder = _textured(tmp_path / "hr", [(70, 98), (64, 64)])  # 70×98 is cropped to 68×96 first
    data = AvifPairedDataset(folder, patch=32, seed=5, repeat=6, qps=(31, 63))
    assert data.prepare(workers=2) == 4 and data.prepare() == 0  # two images × two QPs encoded, then all cached
    # every (image, QP, flip/rotation) of the whole-image pairs, to find where each sample was cropped from
    candidates = []
    for f in data.files:
        hr_full = mod_crop(read_image(f), 4)
        for qp in (31, 63):
            lr_full = ais.degrade(hr_full, qp).lr
            assert lr_full.shape == (hr_full.shape[0] // 4, hr_full.shape[1] // 4, 3)
            for k in range(8):
                candidates.append((qp, dihedral(torch.from_numpy(lr_full).permute(2, 0, 1), k),
                                   dihedral(torch.from_numpy(hr_full).permute(2, 0, 1), k)))
    seen_qps = set()
    for index in range(len(data)):
        lr, hr = data[index]
        assert lr.shape == (3, 8, 8) and hr.shape == (3, 32, 32) and lr.dtype == hr.dtype == torch.uint8
        matches = {qp for qp, lr_k, hr_k in candidates
                   for y in range(lr_k.shape[1] - 7) for x in range(lr_k.shape[2] - 7)
                   if torch.equal(lr_k[:, y:y + 8, x:x + 8], lr)
                   and torch.equal(hr_k[:, 4 * y:4 * y + 32, 4 * x:4 * x + 32], hr)}
        assert len(matches) == 1, (index, matches)  # an aligned crop of one QP's whole-image LR and its HR
        seen_qps |= matches
    assert seen_qps == {31, 63}  # the QP is drawn per sample
    again = AvifPairedDataset(folder, patch=32, seed=5, repeat=6, qps=(31, 63))
    assert all(torch.equal(a, b) for i in range(len(data)) for a, b in zip(data[i], again[i], strict=True))


def test_batch_step_degrades_each_crop_at_its_drawn_qp(ffmpeg: str, cache: Path) -> None:
    from esrkit.train.degradations import build_degradation

    step = build_degradation("lanczos+avif", 4)
    rng = np.random.default_rng(3)
    crops = rng.integers(0, 256, (3, 32, 40, 3), dtype=np.uint8)
    hr = torch.from_numpy(crops).permute(0, 3, 1, 2).float().div(255.0).contiguous(memory_format=torch.channels_last)
    lr = step(hr)
    assert lr.shape == (3, 3, 8, 10) and lr.dtype == torch.float32
    assert lr.is_contiguous(memory_format=torch.channels_last)
    for crop, out in zip(crops, lr, strict=True):
        qp = step.draw_qp(ais.content_key(crop))
        assert qp in ais.QPS
        expected = ais.degrade(crop, qp).lr
        assert torch.equal((out * 255).round().to(torch.uint8).permute(1, 2, 0), torch.from_numpy(expected))
    from esrkit.errors import InputError

    with pytest.raises(InputError, match="×4"):
        build_degradation("lanczos+avif", 2)


def test_training_with_lanczos_avif_runs(ffmpeg: str, cache: Path, tmp_path: Path) -> None:
    from esrkit.train.datasets import AvifPairedDataset
    from esrkit.train.recipe import load_recipe
    from esrkit.train.trainer import Trainer

    recipe = tmp_path / "ais.yaml"
    recipe.write_text(
        "model: rlfn\nscale: 4\nhparams: {num_feat: 8, num_block: 1, esa_channels: 4}\n"
        "degradation: lanczos+avif\nprecision: fp32\nworkers: 0\nval_every: 1000\ncheckpoint_every: 2\n"
        "log_every: 1\nstages:\n  - iters: 2\n    patch: 64\n    batch: 2\n    loss: {l1: 1.0}\n"
        "    optimizer: {name: adam, lr: 1.0e-3}\n", encoding="utf-8")
    folder = _textured(tmp_path / "train", [(72, 72), (68, 80)])  # LR crops of 16: RLFN's ESA needs 15
    trainer = Trainer(load_recipe(recipe), [folder], tmp_path / "run", val=[], device="cpu")
    assert all(isinstance(d, AvifPairedDataset) for d in trainer._datasets.values())
    result = trainer.run()
    assert result.iterations == 2 and (tmp_path / "run" / "model_train.safetensors").is_file()
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert any(math.isfinite(r.get("loss", math.nan)) for r in log)
    assert re.search(r"lanczos\+avif", (tmp_path / "run" / "recipe.json").read_text())
