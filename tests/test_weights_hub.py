"""Weights by name (esrkit.hub): the catalogue against the zoo, downloads through a loopback mirror, failures, the
cache, offline use, and no command running a zoo name on random weights unless asked.

Downloads are served by a server this file starts on 127.0.0.1 (port 0), laid out like the catalogue's URLs
(``OWNER/REPO/raw/COMMIT/PATH``) and holding the released files of ``../shared/weights/official`` (the shared
catalogue's ``in_shared`` names them). Nothing here contacts any other host. Expected PSNRs are the papers'
published figures (DIPNet ×4 Y-PSNR: Set5 31.81, Set14 28.44 dB, as in test_models_dipnet.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch

from esrkit.cli import main
from esrkit.hub import catalogue
from esrkit.hub.cache import cache_dir
from helpers import REPO, SHARED, shared_path, weights_mirror_folder

DIPNET_PSNR_Y = {"Set5": 31.81, "Set14": 28.44}  # NTIRE 2023 report / DIPNet paper, ×4, border 4


@pytest.fixture(autouse=True)
def _fresh_weights_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test here starts from an empty weights cache (``XDG_CACHE_HOME`` a fresh folder), so "nothing cached"
    and "downloaded once" are what this test did, not what an earlier one left."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))


def _shared_catalogue() -> list[dict]:
    return json.loads(shared_path("weights", "catalogue.json").read_text())["weights"]


def _cached_files() -> list[Path]:
    folder = cache_dir()
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


class _Mirror(ThreadingHTTPServer):
    """Serves the shared released files under their catalogue paths; ``mode`` breaks it on purpose."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files = {e["url"].removeprefix(catalogue.GITHUB): (SHARED / "weights" / "official" / e["in_shared"])
                      for e in _shared_catalogue() if e["in_shared"]}
        self.mode = "ok"  # ok, 404, corrupt, truncate
        self.requests: list[str] = []
        self.gate: threading.Barrier | None = None  # hold bodies until this many requests are in

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: _Mirror

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        path = self.server.files.get(self.path)
        if path is None or self.server.mode == "404":
            self.send_error(404)
            return
        data = bytearray(path.read_bytes())
        if self.server.mode == "corrupt":
            data[len(data) // 2] ^= 0xFF
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.server.gate is not None:
            self.server.gate.wait(timeout=60)
        if self.server.mode == "truncate":  # the promised length, then half of it and the connection closes
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
            return
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def mirror(monkeypatch: pytest.MonkeyPatch):
    shared_path("weights", "official")
    server = _Mirror()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("ESRKIT_WEIGHTS_MIRROR", server.url)
    monkeypatch.delenv("ESRKIT_OFFLINE", raising=False)
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    yield server
    server.shutdown()
    server.server_close()


def _one_line_error(capsys: pytest.CaptureFixture[str], code: int) -> str:
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("esrkit: error:")]
    assert len(lines) == 1 and len(err.splitlines()) <= 2, err  # the error (and at most the download's start line)
    return lines[0]


# ------------------------------------------------------------------------------------------- the catalogue


def test_catalogue_entries_exist_in_the_registry_and_every_model_is_accounted_for() -> None:
    from esrkit.models import create_model, has_deploy_form, list_models, model_info

    nets = {m: create_model(m, scale=model_info(m).scales[0]) for m in list_models()}  # on the CPU: cheaper than meta
    for e in catalogue.entries():
        assert e.scale in model_info(e.model).scales, e.label
        assert e.form in ("train", "deploy"), e.label
        if e.form == "deploy":
            assert has_deploy_form(nets[e.model]), f"{e.label}: a deploy file of a model without a deploy form"
        assert e.url == f"{catalogue.GITHUB}/{e.repository}/raw/{e.commit}/{e.path}"
        assert re.fullmatch(r"[0-9a-f]{64}", e.sha256) and e.bytes > 0
    released = set(catalogue.released_models())
    unreleased = set(catalogue.no_released_weights())
    # built here: needs_weights trusts the catalogue for the names it lists
    weight_free = {m for m, net in nets.items() if not any(True for _ in net.parameters())}
    assert weight_free == {"bicubic", "lanczos"}
    assert not released & unreleased and not (released | unreleased) & weight_free
    assert released | unreleased | weight_free == set(list_models()), "a zoo model the catalogue does not place"
    assert not any(catalogue.needs_weights(m) for m in weight_free)
    assert len({(e.model, e.scale, e.form) for e in catalogue.entries()}) == len(catalogue.entries()) == 23


@pytest.mark.shared
def test_packaged_catalogue_carries_the_shared_facts_and_the_shared_files_match_them() -> None:
    ours = {(e.model, e.scale, e.form): e.to_dict() for e in catalogue.entries()}
    for record in _shared_catalogue():
        key = (record["model"], record["scale"], record["form"])
        assert ours[key] == {k: record[k] for k in ours[key]}, key
        if record["in_shared"]:
            data = (SHARED / "weights" / "official" / record["in_shared"]).read_bytes()
            assert (len(data), hashlib.sha256(data).hexdigest()) == (record["bytes"], record["sha256"])
    assert len(ours) == len(_shared_catalogue())


@pytest.mark.shared
def test_every_released_layout_is_a_catalogue_entry_of_the_model_it_loads_as() -> None:
    """Each manifest is the layout of one released file: it loads as (model, scale, form) = a catalogue entry,
    and every entry has one, so the data and the zoo's detectors agree."""
    from esrkit.checkpoints import build_from_state_dict
    from esrkit.models import get_config

    found = set()
    for path in sorted(shared_path("weights", "manifests").rglob("*.json")):
        manifest = json.loads(path.read_text())
        scale = int(re.search(r"_x(\d)", path.stem).group(1))
        state = {k: torch.zeros(v) for k, v in manifest["state_dict"].items()}
        config = get_config(build_from_state_dict(state, scale=scale))
        found.add((config.name, config.scale, config.form))
    assert found == {(e.model, e.scale, e.form) for e in catalogue.entries()}


def test_registry_and_bundled_agree_on_the_bundled_name() -> None:
    from esrkit import bundled
    from esrkit.models import registry

    assert registry.BUNDLED_MODEL == bundled.BUNDLED_MODEL


# ---------------------------------------------------------------------------------- downloads that work


@pytest.mark.shared
@pytest.mark.parametrize("dataset", ["Set5", pytest.param("Set14", marks=pytest.mark.slow)])
def test_evaluate_dipnet_by_name_through_the_mirror_reproduces_the_published_psnr(
        dataset: str, mirror: _Mirror, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESRKIT_CACHE", str(tmp_path / "lr-cache"))
    data = str(shared_path("data", "benchmarks", dataset))
    out = tmp_path / "r.json"
    assert main(["evaluate", "--model", "dipnet", "--data", data, "--json", str(out), "--device", "cpu"]) == 0
    doc = json.loads(out.read_text())
    row = doc["results"][0]
    assert row["psnr_y"] == pytest.approx(DIPNET_PSNR_Y[dataset], abs=0.01)
    err = capsys.readouterr().err
    assert err.count("downloading dipnet ×4 (deploy)") == 1 and mirror.url in err
    assert err.count("licence MIT, as stated by the repository xiumu00/DIPNet") == 1
    (entry,) = catalogue.entries_for("dipnet")
    assert [p.name for p in _cached_files()] == [entry.cache_name]
    # the JSON says which file ran: the catalogue's record, and the cached copy, whose bytes are the shared file's
    record = doc["weights_provenance"]
    assert (record["kind"], record["label"], record["url"]) == ("released", "dipnet ×4 (deploy)", entry.url)
    shared_bytes = shared_path("weights", "official", "dipnet_ntire2023_x4.pth").read_bytes()
    assert record["sha256"] == hashlib.sha256(shared_bytes).hexdigest() == entry.sha256
    assert Path(record["path"]).read_bytes() == shared_bytes and record["licence"] == "MIT"
    if dataset == "Set5":  # second use: from the cache, no request, no licence line again
        assert main(["evaluate", "--model", "dipnet", "--data", data, "--device", "cpu"]) == 0
        assert len(mirror.requests) == 1 and "licence" not in capsys.readouterr().err


@pytest.mark.shared
def test_folder_mirror_works_offline_and_pull_reports_what_it_did(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    folder = weights_mirror_folder(tmp_path / "mirror")
    monkeypatch.setenv("ESRKIT_WEIGHTS_MIRROR", str(folder))  # ESRKIT_OFFLINE=1 stays: a folder is no network
    assert main(["pull", "pan", "--scale", "4", "rlfn_ntire"]) == 0
    out = capsys.readouterr().out
    assert "pan ×4 (train): downloaded" in out and "rlfn_ntire ×4 (train): downloaded" in out
    assert main(["pull", "pan", "--scale", "4"]) == 0
    assert "already cached" in capsys.readouterr().out
    assert len(_cached_files()) == 2
    assert main(["pull", "pan"]) == 2  # ×2 and ×3 are not in this folder: one line naming the missing path
    assert "PANx2_DF2K.pth: not in the mirror folder" in _one_line_error(capsys, 2)


@pytest.mark.shared
def test_api_create_model_pretrained_and_upscaler_from_name(mirror: _Mirror) -> None:
    import esrkit
    from esrkit.checkpoints import load_checkpoint
    from esrkit.errors import WeightsError
    from esrkit.infer import Upscaler
    from esrkit.models import get_config

    model = esrkit.create_model("lkdn_s", scale=4, pretrained=True)  # the train form: the one to fine-tune
    assert (get_config(model).name, get_config(model).form) == ("lkdn_s", "train")
    released = load_checkpoint(shared_path("weights", "official", "lkdn_s_x4.pth")).state_dict()
    for key, value in model.state_dict().items():
        assert torch.equal(value, released[key]), key
    # Upscaler prefers the deploy file; this mirror lacks it, so the cached train file serves, folded.
    up = Upscaler.from_name("lkdn_s")
    assert get_config(up.model).form == "deploy" and len(mirror.requests) == 1
    with pytest.raises(WeightsError, match="--random-weights"):
        Upscaler.from_name("mdrn")
    assert get_config(Upscaler.from_name("mdrn", random_weights=True).model).name == "mdrn"
    assert esrkit.create_model("bicubic", pretrained=True) is not None  # nothing to load, nothing fetched
    assert len(mirror.requests) == 1


@pytest.mark.shared
def test_pull_from_a_file_registers_it_by_hash_and_then_works_offline(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from esrkit.infer import Upscaler

    wrong = shared_path("weights", "official", "pan_x4.pth")
    assert "none of the released files" in _one_line_error(capsys, main(["pull", "lkdn_s", "--from", str(wrong)]))
    assert _cached_files() == []
    renamed = tmp_path / "whatever.bin"  # the name does not matter, the hash does
    shutil.copyfile(shared_path("weights", "official", "lkdn_s_x4.pth"), renamed)
    assert main(["pull", "lkdn_s", "--from", str(renamed)]) == 0
    assert "lkdn_s ×4 (train): registered" in capsys.readouterr().out
    assert Upscaler.from_name("lkdn_s").scale == 4  # ESRKIT_OFFLINE=1 (conftest): served from the cache


@pytest.mark.shared
def test_two_concurrent_pulls_of_one_file_both_succeed(mirror: _Mirror) -> None:
    mirror.gate = threading.Barrier(2)  # neither body is sent before both requests are in: the pulls overlap
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    procs = [subprocess.Popen([sys.executable, "-m", "esrkit", "pull", "dipnet"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert all("downloaded" in out for out, _ in results) and len(mirror.requests) == 2
    (entry,) = catalogue.entries_for("dipnet")
    files = _cached_files()
    assert [p.name for p in files] == [entry.cache_name]  # one file, no leftover temporary
    assert hashlib.sha256(files[0].read_bytes()).hexdigest() == entry.sha256


# ---------------------------------------------------------------------------------- downloads that fail


@pytest.mark.shared
@pytest.mark.parametrize("mode", ["corrupt", "404", "truncate", "unreachable", "timeout"])
def test_a_failed_download_is_one_line_exit_2_and_caches_nothing(mode: str, mirror: _Mirror, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    from esrkit.hub import download

    silent = socket.socket()  # "timeout": the kernel accepts the connection, nobody ever answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    if mode == "unreachable":
        with socket.socket() as sock:  # a port nothing listens on once this socket is closed
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        monkeypatch.setenv("ESRKIT_WEIGHTS_MIRROR", f"http://127.0.0.1:{port}")
    if mode == "timeout":
        monkeypatch.setattr(download, "TIMEOUT_S", 0.5)
        monkeypatch.setenv("ESRKIT_WEIGHTS_MIRROR", f"http://127.0.0.1:{silent.getsockname()[1]}")
    mirror.mode = mode
    with silent:
        line = _one_line_error(capsys, main(["pull", "dipnet"]))
    needle = {"corrupt": "differs from the catalogue's", "404": "HTTP 404", "truncate": "truncated",
              "unreachable": "cannot connect", "timeout": "timed out"}[mode]
    assert needle in line and "127.0.0.1:" in line and "esrkit pull dipnet --from FILE" in line, line
    assert "ESRKIT_WEIGHTS_MIRROR" in line
    assert _cached_files() == []
    if mode == "404":  # through a command: the same line, and no output written
        Image.new("RGB", (24, 24)).save(tmp_path / "a.png")
        code = main(["upscale", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--model", "dipnet",
                     "--device", "cpu"])
        assert "HTTP 404" in _one_line_error(capsys, code) and not (tmp_path / "out").exists()


def test_offline_with_an_empty_cache_is_exit_2_without_a_connection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as listener:  # any connection attempt would be queued here
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        monkeypatch.setenv("ESRKIT_WEIGHTS_MIRROR", f"http://127.0.0.1:{listener.getsockname()[1]}")
        monkeypatch.setenv("ESRKIT_OFFLINE", "1")
        code = main(["evaluate", "--model", "dipnet", "--data", str(tmp_path), "--device", "cpu"])
        line = _one_line_error(capsys, code)
        assert "ESRKIT_OFFLINE" in line and "esrkit pull dipnet --from FILE" in line
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()
    assert _cached_files() == []


# --------------------------------------------------------------------------------- no silent random weights

COMMANDS = {
    "upscale": ["upscale", "{img}", "-o", "{out}"],
    "evaluate": ["evaluate", "--data", "{dir}", "--json", "{out}"],
    "demo": ["demo", "-o", "{out}", "--device", "cpu"],
    "export": ["export", "--onnx", "{out}"],
    "recommend": ["recommend", "--min-psnr", "30", "--data", "{dir}", "--json", "{out}"],
    "challenge run": ["challenge", "run", "ntire2023", "--data-root", "{dir}", "--json", "{out}"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_model_without_released_weights_is_refused_by_every_command(command: str, tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    Image.new("RGB", (24, 24)).save(tmp_path / "a.png")
    out = tmp_path / "result"
    args = [a.format(img=tmp_path / "a.png", out=out, dir=tmp_path) for a in COMMANDS[command]]
    line = _one_line_error(capsys, main([*args, "--model", "mdrn"]))
    assert "mdrn ×4: no released weights" in line and "--weights FILE" in line and "--random-weights" in line
    assert not out.exists()


def test_random_weights_only_when_asked_and_never_with_a_file(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    Image.new("RGB", (24, 24)).save(tmp_path / "a.png")
    assert main(["upscale", str(tmp_path / "a.png"), "-o", str(tmp_path / "x4.png"), "--model", "mdrn",
                 "--random-weights", "--device", "cpu"]) == 0
    assert np.asarray(Image.open(tmp_path / "x4.png")).shape == (96, 96, 3)
    code = main(["upscale", str(tmp_path / "a.png"), "-o", str(tmp_path / "y"), "--weights", str(tmp_path / "a.png"),
                 "--random-weights"])
    assert "not both" in _one_line_error(capsys, code)


def test_unknown_names_list_the_bundled_model(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["recommend", "--model", "esrkit_x5", "--min-psnr", "30", "--data", str(tmp_path)])
    assert "did you mean esrkit_x4" in _one_line_error(capsys, code)
    code = main(["pull", "zzzz"])
    assert "esrkit_x4" in _one_line_error(capsys, code)  # the list of known names includes it


def test_models_lists_weights_licence_and_cache_and_json_carries_the_licence(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from esrkit.models import registry

    monkeypatch.setattr(registry, "list_models", lambda: ["bicubic", "dipnet", "lkdn", "mdrn", "pan"])
    assert main(["models", "--json"]) == 0
    records = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(records) == {"esrkit_x4", "bicubic", "dipnet", "lkdn", "mdrn", "pan"}
    (dipnet,) = records["dipnet"]["released"]
    assert (dipnet["scale"], dipnet["form"], dipnet["licence"], dipnet["cached"]) == (4, "deploy", "MIT", False)
    assert dipnet["licence_line"].endswith("licence MIT, as stated by the repository xiumu00/DIPNet")
    assert [f["scale"] for f in records["lkdn"]["released"]] == [2, 3, 4]
    assert records["pan"]["licences"] == ["none stated"] and records["mdrn"]["released"] == []
    assert records["bicubic"]["needs_weights"] is False
    assert main(["models"]) == 0
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:5]]
            for line in capsys.readouterr().out.splitlines() if line.count("│") > 5 and line.split("│")[1].strip()}
    assert rows["dipnet"] == ["×4", "MIT", "-"] and rows["lkdn"] == ["×2 ×3 ×4", "MIT", "-"]
    assert rows["mdrn"][0] == "none" and rows["bicubic"][0] == "no weights" and rows["pan"][1] == "none stated"


# ------------------------------------------------------------------------------- the bundled model by name


def test_recommend_and_export_take_the_bundled_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from esrkit.bundled import bundled_weights_path
    from esrkit.data.io import write_image
    from esrkit.recommend import Candidate, recommend

    if bundled_weights_path() is None:
        pytest.skip("this checkout has no bundled esrkit_x4 weights")
    monkeypatch.setenv("ESRKIT_CACHE", str(tmp_path / "lr-cache"))
    yy, xx = np.mgrid[0:32, 0:32] / 8.0
    image = np.stack([np.sin(xx), np.cos(yy), np.sin(xx + yy)], -1) * 100 + 128
    write_image(tmp_path / "HR" / "a.png", image.astype(np.uint8))
    result = recommend([Candidate(name="esrkit_x4")], [tmp_path / "HR"], min_psnr=0.0, combos=[("torch", "fp32")],
                       input_size=(16, 16), threads=1, warmup=0, repeats=1)
    assert result.best is not None and result.best.model == "esrkit_x4"
    pytest.importorskip("onnx")
    assert main(["export", "--onnx", str(tmp_path / "m.onnx"), "--no-verify"]) == 0  # no --model: the bundled one
    assert "esrkit_x4 ×4, deploy form" in capsys.readouterr().out and (tmp_path / "m.onnx").stat().st_size > 0


def test_profile_keeps_random_weights_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "--model", "rfdn", "--no-runtime", "--input", "32x32"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert header.startswith("esrkit profile:") and "random weights" in header
