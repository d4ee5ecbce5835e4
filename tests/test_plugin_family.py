"""Adding an architecture is one file: a module defining a class, its variants and its detector, registered at
import, appears in ``esrkit models``, ``esrkit profile --all``, checkpoint detection and the zoo-wide tests without
any other file being edited.

The module is written to a temporary folder and announced through the ``esrkit.models`` entry-point group (a
``.dist-info`` beside it, which is what installing a plug-in package creates), so the checkout itself is never
touched; everything then runs in fresh interpreters, as a user's would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

FAMILY_MODULE = '''
"""TinyNet: a two-conv test family (head, body, pixel-shuffle tail)."""

from torch import Tensor, nn

from esrkit.layers import conv, pixelshuffle_block
from esrkit.models.detection import Shapes, count_indexed, has_keys, scale_from_channels
from esrkit.models.registry import Capabilities, Family, ModelConfig, register_family


class TinyNet(nn.Module):
    def __init__(self, scale: int = 4, num_feat: int = 8, num_block: int = 2) -> None:
        super().__init__()
        self.head = conv(3, num_feat, 3)
        self.body = nn.Sequential(*(conv(num_feat, num_feat, 3) for _ in range(num_block)))
        self.tail = pixelshuffle_block(num_feat, 3, scale)

    def forward(self, x: Tensor) -> Tensor:
        feat = self.head(x)
        return self.tail(self.body(feat) + feat)


def detect(s: Shapes) -> ModelConfig | None:
    if not has_keys(s, "head.weight", "tail.0.weight"):
        return None
    hparams = {"num_feat": s["head.weight"][0], "num_block": count_indexed(s, "body.{i}.weight")}
    return FAMILY.match(scale_from_channels(s["tail.0.weight"][0]), hparams)


FAMILY = register_family(Family(
    name="tinynet",
    cls=TinyNet,
    paper="esrkit plug-in test family",
    variants={"tinynet": {}, "tinynet_wide": {"num_feat": 16}},
    capabilities=Capabilities(size_multiple=2),
    detect=detect,
))
'''


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("plugin")
    (root / "esrkit_tinynet.py").write_text(textwrap.dedent(FAMILY_MODULE))
    dist = root / "esrkit_tinynet-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: esrkit-tinynet\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[esrkit.models]\ntinynet = esrkit_tinynet\n")
    env = {k: v for k, v in os.environ.items() if k != "COVERAGE_PROCESS_START"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(root), env.get("PYTHONPATH", "")])
    env["COLUMNS"] = "200"
    return env


def _run(env: dict[str, str], *args: str, timeout: int = 300) -> str:
    proc = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert proc.returncode == 0, f"{args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_new_family_is_listed_by_esrkit_models(plugin_env: dict[str, str]) -> None:
    out = _run(plugin_env, "-m", "esrkit", "models")
    assert "tinynet " in out and "tinynet_wide" in out and "esrkit plug-in test family" in out
    # Parameter count of the wide variant at ×4: head 3·16·9+16, two body convs 2·(16·16·9+16), tail 16·48·9+48.
    assert f"{3 * 16 * 9 + 16 + 2 * (16 * 16 * 9 + 16) + 16 * 48 * 9 + 48:,}" in out


def test_new_family_is_profiled_by_profile_all(plugin_env: dict[str, str]) -> None:
    out = _run(plugin_env, "-m", "esrkit", "profile", "--all", "--no-runtime", "--input", "32x32")
    rows = [line for line in out.splitlines() if "tinynet" in line]
    assert len(rows) == 2 and any("tinynet_wide" in line for line in rows), out
    assert "rfdn" in out and "lkdn_s" in out  # beside the built-in zoo, not instead of it


def test_new_family_checkpoints_are_detected_and_load(plugin_env: dict[str, str], tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import torch
        from esrkit import create_model, load_checkpoint
        from esrkit.layouts import detect_layout
        model = create_model("tinynet_wide", scale=3)
        torch.save({{"params": model.state_dict()}}, {str(tmp_path / "wide.pth")!r})
        loaded = load_checkpoint({str(tmp_path / "wide.pth")!r})
        config = loaded.esrkit_config
        x = torch.rand(1, 3, 6, 8)
        same = torch.equal(loaded(x), model.eval()(x))
        print(config.name, config.scale, config.form, same, detect_layout(create_model("tinynet").state_dict()).name)
    """)
    assert _run(plugin_env, "-c", script).split() == ["tinynet_wide", "3", "train", "True", "tinynet"]


def test_new_family_is_covered_by_the_zoo_wide_tests(plugin_env: dict[str, str]) -> None:
    out = _run(plugin_env, "-m", "pytest", "tests/test_zoo.py", "-k", "tinynet", "-q", "-p", "no:cacheprovider",
               timeout=600)
    summary = out.strip().splitlines()[-1]
    passed = int(summary.split(" passed")[0].split()[-1])
    # 2 variants × 3 scales: shape, detection, round-trip, counting in 2 forms (8) + equivalence and upscaler (2)
    # per case, plus 3 registry checks per variant.
    assert passed == 2 * 3 * 10 + 2 * 3, out
    assert "failed" not in summary
