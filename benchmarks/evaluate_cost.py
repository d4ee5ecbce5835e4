"""Cost of ``esrkit evaluate --model bicubic`` on ten Manga109-sized pages (prints a table; not a test).

    PYTHONPATH=src python benchmarks/evaluate_cost.py [--check] [--images N] [--before OLD_SRC]

Manga109 pages are what made evaluation slow (issue item 7), but Manga109 is not redistributable, so this builds
stand-ins: the first ten Set14 HR images resized with Pillow to 1654×1170 (W×H), written as PNGs to a temporary
folder. The shared folder is ``$ESRKIT_SHARED`` else ``<repo>/../shared`` (as in ``tests/conftest.py``).

What is measured, and why it is comparable between runs:

* The bicubic LR images are generated once, in this process and untimed, into a private ``$ESRKIT_CACHE``
  (a temp folder) with esrkit's own cache code; the timed child then only reads them. LR generation is MATLAB
  bicubic and has nothing to do with the metrics, so leaving it out keeps the figure about evaluation proper.
* The timed child is ``python -m esrkit evaluate --model bicubic --scale 4 --data <folder>``, including
  interpreter and torch start-up. Its peak RSS comes from ``os.wait4`` in a tiny launcher process that starts
  it: Linux folds the resident size of the image an ``exec`` replaces into ``ru_maxrss``, so a child started
  straight from this process (torch loaded, pages decoded) would report this process's size as its own peak.
* ``--before SRC`` also times the same command on another esrkit source tree, in the same run on the same pages
  (e.g. a ``git worktree`` of the commit before the separable SSIM, ``git worktree add /tmp/before 371296f``
  and ``--before /tmp/before/src``): the before/after of issue item 7 measured side by side. Its LR comes from
  the same cache when that tree reads it, else it makes its own (a few seconds, inside its time).
* "SSIM only" is ``esrkit.metrics.ssim`` on the RGB and Y planes of one real bicubic SR/HR pair (border-cropped,
  as ``calculate_metrics`` does), best of three, in this process.
* ``--check`` recomputes every image's RGB and Y SSIM with a dense 2-D 11×11 float64 window (``F.conv2d``, esrkit's
  original formulation) and reports the largest difference from
  ``esrkit.metrics.ssim``. It is slow (that formulation is what this benchmark is about).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
PAGE_SIZE = (1654, 1170)  # Pillow (width, height)
SCALE = 4


def shared_root() -> Path:
    """``$ESRKIT_SHARED`` else ``<repo>/../shared``: the same rule as the test suite's conftest."""
    env = os.environ.get("ESRKIT_SHARED")
    return Path(env) if env else REPO.parent / "shared"


def make_pages(dest: Path, count: int) -> list[Path]:
    """Resize ``count`` Set14 HR images to Manga109 page size; exits with a message when the source is missing."""
    source = shared_root() / "data" / "benchmarks" / "Set14" / "HR"
    files = sorted(source.glob("*.png")) if source.is_dir() else []
    if len(files) < count:
        sys.exit(f"evaluate_cost: need {count} HR images in {source}, found {len(files)}; "
                 "set ESRKIT_SHARED to the shared reference folder (the one holding data/benchmarks/Set14/HR)")
    dest.mkdir(parents=True)
    pages = []
    for path in files[:count]:
        with Image.open(path) as img:
            page = img.convert("RGB").resize(PAGE_SIZE, Image.Resampling.BICUBIC)
        out = dest / f"{path.stem}.png"
        page.save(out)
        pages.append(out)
    return pages


# Started by this process, it starts the measured command and reports that command's own peak (see the docstring).
_LAUNCHER = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
open(sys.argv[1], "w").write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_child(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run one command through the launcher; return (wall seconds, its own peak RSS in MiB, its output)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryDirectory() as tmp:
        peak_file = Path(tmp) / "peak"
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", _LAUNCHER, str(peak_file), *args], env=env, stdout=out,
                              stderr=subprocess.STDOUT, cwd=REPO, check=False)
        wall = time.perf_counter() - start
        out.seek(0)
        text = out.read()
        if proc.returncode != 0:
            sys.exit(f"evaluate_cost: child failed ({proc.returncode}):\n{text}")
        # ru_maxrss is KiB on Linux, bytes on macOS
        rss_mib = int(peak_file.read_text()) / (1024 * 1024 if sys.platform == "darwin" else 1024)
    return wall, rss_mib, text


def best_of(fn: Callable[[], object], repeats: int = 3) -> float:
    """Fastest of ``repeats`` calls in seconds: the least disturbed figure on a shared machine."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def dense_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM with a dense 2-D 11×11 Gaussian window (``F.conv2d``, float64): the reference for ``--check``."""
    import torch
    import torch.nn.functional as F

    ax = torch.arange(11, dtype=torch.float64) - 5
    g = torch.exp(-(ax**2) / (2 * 1.5**2))
    window = (torch.outer(g, g) / torch.outer(g, g).sum()).view(1, 1, 11, 11)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def plane(x: np.ndarray, y: np.ndarray) -> float:
        tx, ty = torch.from_numpy(x.astype(np.float64)), torch.from_numpy(y.astype(np.float64))

        def filt(t: torch.Tensor) -> torch.Tensor:
            return F.conv2d(t[None, None], window)[0, 0]

        mu_x, mu_y = filt(tx), filt(ty)
        var_x, var_y = filt(tx * tx) - mu_x**2, filt(ty * ty) - mu_y**2
        cov = filt(tx * ty) - mu_x * mu_y
        m = (2 * mu_x * mu_y + c1) * (2 * cov + c2) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
        return float(m.mean())

    if a.ndim == 2:
        return plane(a, b)
    return float(np.mean([plane(a[..., c], b[..., c]) for c in range(a.shape[-1])]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare every image's SSIM with the dense 2-D form")
    parser.add_argument("--images", type=int, default=10, help="number of pages (default 10)")
    parser.add_argument("--before", type=Path, help="another esrkit src/ folder to time on the same pages")
    opts = parser.parse_args()

    from esrkit.data.datasets import resolve_benchmark
    from esrkit.infer import Upscaler
    from esrkit.metrics import _crop, rgb_to_y, ssim

    with tempfile.TemporaryDirectory(prefix="esrkit-evalcost-") as tmp:
        root = Path(tmp)
        make_pages(root / "pages", opts.images)
        env = {**os.environ, "ESRKIT_CACHE": str(root / "cache"),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))}
        os.environ["ESRKIT_CACHE"] = env["ESRKIT_CACHE"]  # the pre-warm below must fill the child's cache

        bench = resolve_benchmark(root / "pages", SCALE)
        upscaler = Upscaler.from_name("bicubic", scale=SCALE)
        pairs = list(bench.pairs())  # generates and caches the LR images (untimed pre-warm)

        def evaluate(src: Path, tag: str) -> tuple[float, float, dict]:
            json_out = root / f"result-{tag}.json"
            cmd = [sys.executable, "-m", "esrkit", "evaluate", "--model", "bicubic", "--scale", str(SCALE),
                   "--data", str(root / "pages"), "--json", str(json_out)]
            child_env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(src), os.environ.get("PYTHONPATH")]))}
            wall, rss, _ = run_child(cmd, child_env)
            return wall, rss, json.loads(json_out.read_text())["results"][0]

        runs = {"this checkout": evaluate(REPO / "src", "now")}
        if opts.before is not None:
            runs[f"before ({opts.before})"] = evaluate(opts.before.resolve(), "before")

        _, lr, hr = pairs[0]
        sr = upscaler(lr)
        sr_c, hr_c = _crop(sr, SCALE), _crop(hr, SCALE)
        y_sr, y_hr = rgb_to_y(sr_c), rgb_to_y(hr_c)
        t_rgb = best_of(lambda: ssim(sr_c, hr_c))
        t_y = best_of(lambda: ssim(y_sr, y_hr))

        print(f"{opts.images} pages of {PAGE_SIZE[0]}×{PAGE_SIZE[1]} (W×H) from Set14 HR; bicubic LR pre-warmed "
              "into a private ESRKIT_CACHE, untimed")
        print(f"command: python -m esrkit evaluate --model bicubic --scale {SCALE} --data PAGES --json OUT")
        print(f"{'measure':42s} {'value':>12s}")
        for tag, (wall, rss, result) in runs.items():
            print(f"{tag}:")
            print(f"{'  evaluate wall time (s)':42s} {wall:12.2f}")
            print(f"{'  evaluate peak RSS of the child (MiB)':42s} {rss:12.0f}")
            print(f"  mean SSIM-RGB {result['ssim_rgb']:.12f}  mean SSIM-Y {result['ssim_y']:.12f}  "
                  f"PSNR-Y {result['psnr_y']:.4f}")
        print(f"{'SSIM only, one pair, RGB (s)':42s} {t_rgb:12.3f}")
        print(f"{'SSIM only, one pair, Y (s)':42s} {t_y:12.3f}")

        if opts.check:
            worst = 0.0
            for stem, lr, hr in pairs:
                sr_c, hr_c = _crop(upscaler(lr), SCALE), _crop(hr, SCALE)
                y_sr, y_hr = rgb_to_y(sr_c), rgb_to_y(hr_c)
                deltas = (abs(ssim(sr_c, hr_c) - dense_ssim(sr_c, hr_c)),
                          abs(ssim(y_sr, y_hr) - dense_ssim(y_sr, y_hr)))
                worst = max(worst, *deltas)
                print(f"check {stem:12s} |ΔSSIM-RGB| {deltas[0]:.3e}  |ΔSSIM-Y| {deltas[1]:.3e}")
            print(f"check: max |ΔSSIM| vs dense 2-D window over {len(pairs)} images: {worst:.3e}")


if __name__ == "__main__":
    main()
