"""Checkpoint loading: every official layout, wrappers, safety, our safetensors format, and clear failures."""

from __future__ import annotations

import json
import re

import pytest
import torch

from esrkit.checkpoints import build_from_state_dict, load_checkpoint, save_checkpoint
from esrkit.cli import main
from esrkit.errors import CheckpointError
from esrkit.models import create_model, get_config, reparameterize
from helpers import SHARED, shared_path

MANIFEST_DIR = SHARED / "weights" / "manifests"
MANIFESTS = sorted(p.stem for p in MANIFEST_DIR.glob("*.json")) if MANIFEST_DIR.is_dir() else []
OFFICIAL = {  # DEVELOPERS.md: Y-PSNR ×4, border 4, MATLAB bicubic LR (Set5, Set14)
    "rfdn_ntire2023_baseline_x4": (32.16, 28.65),
    "imdn_ntire2022_baseline_x4": (32.25, 28.69),
    "rlfn_ntire2022_x4": (32.10, 28.60),
    "lkdn_s_x4": (32.10, 28.62),
}


def _manifest(name: str) -> dict:
    return json.loads(shared_path("weights", "manifests", f"{name}.json").read_text())


@pytest.mark.skipif(not MANIFESTS, reason=f"no manifests in {MANIFEST_DIR}")
@pytest.mark.parametrize("name", MANIFESTS)
def test_manifest_layout_is_detected_exactly(name, tmp_path):
    """A state dict of zeros with the manifest's shapes (wrapped as the release wraps it) loads into a model with
    exactly those keys and shapes, at the manifest's scale, in the right form."""
    manifest = _manifest(name)
    shapes = manifest["state_dict"]
    state = {k: torch.zeros(v) for k, v in shapes.items()}
    obj = {manifest["wrapper_key"]: state} if manifest["wrapper_key"] else state
    torch.save(obj, tmp_path / "ckpt.pth")
    model = load_checkpoint(tmp_path / "ckpt.pth")
    got = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert got == shapes
    config = get_config(model)
    assert config.scale == int(re.search(r"_x(\d)", name).group(1))
    assert config.form == ("deploy" if "deploy" in name else "train")
    assert sum(p.numel() for p in model.parameters()) == manifest["num_params"]


@pytest.mark.parametrize("wrapper", ["params_ema", "params", "state_dict", None])
def test_wrappers_and_module_prefix_are_unwrapped(wrapper, tmp_path):
    model = create_model("rlfn_s", scale=2)
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save({wrapper: state, "iter": torch.tensor(5)} if wrapper else state, tmp_path / "w.pth")
    loaded = load_checkpoint(tmp_path / "w.pth")
    assert get_config(loaded).name == "rlfn_s" and get_config(loaded).scale == 2
    for k, v in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[k], v)


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def test_code_running_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "marker"
    torch.save({"params": {"w": torch.zeros(1)}, "evil": _Exploit(marker)}, tmp_path / "evil.pth")
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(tmp_path / "evil.pth")
    assert not marker.exists()


def test_truncated_and_unknown_checkpoints(tmp_path):
    torch.save(create_model("rfdn").state_dict(), tmp_path / "ok.pth")
    data = (tmp_path / "ok.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut\.pth"):
        load_checkpoint(tmp_path / "cut.pth")
    with pytest.raises(CheckpointError, match=r"unknown checkpoint layout; nearest known layout is .*missing"):
        build_from_state_dict({"encoder.weight": torch.zeros(3, 3), "fea_conv.weight": torch.zeros(50, 3, 3, 3)})


def test_near_miss_names_the_mismatching_keys():
    state = create_model("rfdn").state_dict()
    state.pop("B2.c5.weight")
    state["B2.extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"looks like 'rfdn'.*missing: B2\.c5\.weight.*unexpected: B2\.extra"):
        build_from_state_dict(state)


def test_safetensors_roundtrip_keeps_config_and_provenance(tmp_path):
    model = create_model("lkdn", scale=3, num_block=2)
    path = save_checkpoint(model, tmp_path / "m.safetensors", provenance={"recipe": "unit-test"})
    loaded = load_checkpoint(path)
    config = get_config(loaded)
    assert (config.name, config.scale, config.hparams["num_block"]) == ("lkdn", 3, 2)
    x = torch.rand(1, 3, 20, 20)
    torch.testing.assert_close(loaded(x), model.eval()(x))
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        assert json.loads(fh.metadata()["esrkit"])["provenance"] == {"recipe": "unit-test"}


def test_convert_cli_deploy_form(tmp_path):
    src = tmp_path / "lkdn_s.pth"
    torch.save({"params_ema": create_model("lkdn_s", scale=4).state_dict()}, src)
    assert main(["convert", str(src), str(tmp_path / "out.safetensors"), "--deploy"]) == 0
    deployed = load_checkpoint(tmp_path / "out.safetensors")
    assert get_config(deployed).form == "deploy"
    assert sum(p.numel() for p in deployed.parameters()) == 129_177
    assert main(["convert", str(src), str(tmp_path / "out.pth")]) == 2
    assert not (tmp_path / "out.pth").exists()


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_official_checkpoint_reproduces_published_psnr(name, tmp_path, monkeypatch):
    """`esrkit evaluate --weights` on Set5 and Set14 lands within 0.02 dB of the official code's Y-PSNR."""
    monkeypatch.setenv("ESRKIT_CACHE", str(tmp_path / "cache"))
    weights = shared_path("weights", "official", f"{name}.pth")
    sets = [str(shared_path("data", "benchmarks", s)) for s in ("Set5", "Set14")]
    out = tmp_path / "r.json"
    assert main(["evaluate", "--weights", str(weights), "--data", sets[0], "--data", sets[1], "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["results"]
    for row, expected in zip(rows, OFFICIAL[name], strict=True):
        assert row["psnr_y"] == pytest.approx(expected, abs=0.02), row


def test_official_lkdn_s_reparameterizes_to_deploy_manifest():
    model = load_checkpoint(shared_path("weights", "official", "lkdn_s_x4.pth"))
    deployed = reparameterize(model)
    expected = _manifest("lkdn_s_deploy_x4")["state_dict"]
    assert {k: list(v.shape) for k, v in deployed.state_dict().items()} == expected
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (deployed(x) - model(x)).abs().max() < 1e-4
