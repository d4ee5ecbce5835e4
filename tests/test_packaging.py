"""A regular (not editable) installation ships what esrkit needs outside a checkout: the sample image and its
source note, the recipes, the bundled weights when the checkout has them, and a working ``esrkit`` command that
runs ``esrkit demo`` from another folder.

How the fresh environment is made, offline and in seconds: the checkout is copied (so no ``build/`` or
``*.egg-info`` lands in it) and built into a wheel by this environment's pip and setuptools with
``--no-build-isolation`` (what ``pip install .`` does first); the wheel is installed with ``--no-deps`` into a new
venv created ``--without-pip`` (``pip --python``). Only then does the venv get a ``.pth`` file listing this
environment's site-packages folders, so torch and the other dependencies import from there without being installed
again. That order keeps pip from ever seeing this environment's own (editable) esrkit, and a ``.pth`` line adds a
folder without processing the ``.pth`` files inside it, so the editable install's path to ``src/`` does not come
along: the venv's esrkit is the installed copy, which the tests check.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from esrkit.bundled import ENV_VAR, MISSING_MESSAGE, WEIGHTS_FILE
from helpers import REPO

CHECKOUT_WEIGHTS = REPO / "src" / "esrkit" / "weights" / WEIGHTS_FILE


def _env() -> dict[str, str]:
    """The environment without anything that would make the venv see the checkout or a replaced model."""
    drop = {"PYTHONPATH", ENV_VAR, "COVERAGE_PROCESS_START", "PYTHONHOME"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def _run(cmd: list[str | Path], *, cwd: Path | None = None, check: bool = True,
         timeout: int = 300) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=timeout, check=False)
    if check:
        assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _dependency_dirs() -> list[str]:
    """This environment's site-packages folders, minus any that holds an ``esrkit`` package itself."""
    dirs = [p for p in map(Path, sys.path) if p.name in ("site-packages", "dist-packages") and p.is_dir()
            and not (p / "esrkit" / "__init__.py").is_file()]
    return list(dict.fromkeys(str(p) for p in dirs))


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(venv folder, its site-packages) with esrkit installed from a wheel of this checkout."""
    if not (REPO / "pyproject.toml").is_file():
        pytest.skip("needs a source checkout (pyproject.toml) to build from")
    root = tmp_path_factory.mktemp("packaging")
    src = root / "checkout"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc"))
    wheels = root / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", wheels, src])
    wheel = next(wheels.glob("esrkit-*.whl"))
    env_dir = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", env_dir])
    python = env_dir / ("Scripts" if os.name == "nt" else "bin") / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel])
    purelib = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (purelib / "_esrkit_test_dependencies.pth").write_text("\n".join(_dependency_dirs()) + "\n", encoding="utf-8")
    return env_dir, purelib


def _exe(env_dir: Path, name: str) -> Path:
    return env_dir / ("Scripts" if os.name == "nt" else "bin") / name


def test_the_installed_package_holds_the_sample_recipes_and_weights_when_present(venv: tuple[Path, Path]) -> None:
    env_dir, purelib = venv
    package = purelib / "esrkit"
    assert (package / "__init__.py").is_file(), "a regular install copies the package"
    assert not list(purelib.glob("__editable__*")), "not an editable install"
    assert (package / "samples" / "astronaut.png").is_file() and (package / "samples" / "SOURCE.md").is_file()
    assert (package / "train" / "recipes" / "esrkit_x4.yaml").is_file()
    assert (package / "weights" / WEIGHTS_FILE).is_file() == CHECKOUT_WEIGHTS.is_file()
    where = _run([_exe(env_dir, "python"), "-c", "import esrkit.demo as d; print(d.__file__); print(d.sample_path())"],
                 cwd=env_dir.parent)
    module, sample = where.stdout.split()
    assert Path(module).resolve().is_relative_to(package.resolve()), "the venv imports its own esrkit"
    assert Path(sample).resolve() == (package / "samples" / "astronaut.png").resolve()


def test_esrkit_demo_runs_from_another_folder(venv: tuple[Path, Path], tmp_path: Path) -> None:
    env_dir, _ = venv
    model = [] if CHECKOUT_WEIGHTS.is_file() else ["--model", "rlfn_ntire", "--random-weights"]  # bundled once it ships
    proc = _run([_exe(env_dir, "esrkit"), "demo", "-o", "out", "--device", "cpu", *model], cwd=tmp_path)
    assert "dB Y-PSNR over bicubic" in proc.stdout, proc.stdout
    for name in ("lr.png", "bicubic_x4.png", "sr_x4.png", "side_by_side.png", "demo.html"):
        assert (tmp_path / "out" / name).stat().st_size > 0, name


def test_upscale_without_a_model_uses_the_bundled_weights_or_says_they_are_missing(venv: tuple[Path, Path],
                                                                                   tmp_path: Path) -> None:
    from esrkit.data.io import read_image, write_image

    env_dir, _ = venv
    write_image(tmp_path / "photo.png", np.random.default_rng(0).integers(0, 256, (24, 20, 3), dtype=np.uint8))
    proc = _run([_exe(env_dir, "esrkit"), "upscale", "photo.png", "-o", "big", "--device", "cpu"], cwd=tmp_path,
                check=False)
    if CHECKOUT_WEIGHTS.is_file():
        assert proc.returncode == 0, proc.stderr
        assert read_image(tmp_path / "big" / "photo.png").shape == (96, 80, 3)
    else:
        assert proc.returncode == 2 and proc.stderr.strip() == f"esrkit: error: {MISSING_MESSAGE}", proc.stderr
        assert not (tmp_path / "big").exists()
