"""End to end: whole ``esrkit upscale`` commands (import, model, I/O), the default backend against
``--backend torch``, first call and cached call; run by ``benchmarks/inference.py`` (or on its own).

    python benchmarks/end_to_end.py --reps 3

Inputs: one 960×540 photograph and a folder of 8 (esrkit's packaged sample photograph resized with the
MATLAB-exact bicubic, and seven flips/crops of it: the same content, so the folder times one model on eight
images). Each measurement is a separate subprocess timed from outside (wall clock, what a user waits). "first"
gives the command a fresh, empty cache folder (``XDG_CACHE_HOME``), so the default backend exports and compiles;
"cached" gives it the folder a first call filled. Configurations are interleaved round by round and each cell is
the median of ``--reps`` rounds, so a load change on a shared machine hits every cell alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_inputs(root: Path) -> tuple[Path, Path]:
    """``root/one.png`` and ``root/eight/`` (8 PNGs), all 960×540 photographs."""
    from esrkit.data.io import image_to_tensor, tensor_to_image, write_image
    from esrkit.data.resize import imresize
    from esrkit.demo import load_sample

    photo = image_to_tensor(load_sample())
    crop = photo[..., 40:184, 16:240]  # a tighter view of the same photograph, for variety
    variants = []
    for source in (photo, crop):
        base = imresize(source, size=(540, 960)).clamp(0, 1)
        variants += [base, base.flip(-1), base.flip(-2), base.flip(-1, -2)]
    one = write_image(root / "one.png", tensor_to_image(variants[0]))
    folder = root / "eight"
    for i, v in enumerate(variants):
        write_image(folder / f"photo{i}.png", tensor_to_image(v.contiguous()))
    return one, folder


def run_once(src: Path, backend: str | None, cache: Path, out: Path) -> float:
    """Wall seconds of one ``esrkit upscale`` subprocess (raises when the command fails)."""
    cmd = [sys.executable, "-m", "esrkit", "upscale", str(src), "-o", str(out), "--overwrite"]
    if backend is not None:
        cmd += ["--backend", backend]
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.strip()[-400:]}")
    return seconds


def print_table(cells: dict[tuple[str, str, str], list[float]], rounds: int) -> list[dict[str, object]]:
    """The table of medians over the rounds measured so far (printed after every round, so a run cut short
    still leaves a complete, labelled table); returns its rows."""
    print(f"\nend to end: esrkit upscale, wall seconds, median of {rounds} interleaved round(s) "
          "(separate processes; first = empty cache)", flush=True)
    print(f"{'input':9s} {'backend':8s} {'first call':>11s} {'cached call':>12s} {'torch / this (cached)':>22s}")
    rows: list[dict[str, object]] = []
    for label in ("1 photo", "8 photos"):
        torch_cached = statistics.median(cells[(label, "torch", "cached")])
        for name in ("default", "torch"):
            first = statistics.median(cells[(label, name, "first")])
            cached = statistics.median(cells[(label, name, "cached")])
            print(f"{label:9s} {name:8s} {first:11.2f} {cached:12.2f} {torch_cached / cached:22.2f}", flush=True)
            rows.append({"input": label, "backend": name, "first_s": first, "cached_s": cached,
                         "all_first_s": cells[(label, name, "first")], "all_cached_s": cells[(label, name, "cached")],
                         "speedup_over_torch_cached": torch_cached / cached})
    return rows


def end_to_end(reps: int = 3) -> list[dict[str, object]]:
    """Measure and print the end-to-end table (again after each round); returns its final rows."""
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="esrkit-e2e-") as tmp:
        root = Path(tmp)
        one, eight = make_inputs(root)
        cells: dict[tuple[str, str, str], list[float]] = {}
        for rep in range(reps):
            for label, src in (("1 photo", one), ("8 photos", eight)):
                for backend in (None, "torch"):
                    name = "default" if backend is None else "torch"
                    cache = root / f"cache-{rep}-{label[0]}-{name}"  # fresh for this first call
                    out = root / f"out-{label[0]}-{name}"
                    first = run_once(src, backend, cache, out)
                    cached = run_once(src, backend, cache, out)
                    cells.setdefault((label, name, "first"), []).append(first)
                    cells.setdefault((label, name, "cached"), []).append(cached)
                    print(f"# round {rep + 1}: {label}, {name}: first {first:.2f} s, cached {cached:.2f} s",
                          file=sys.stderr, flush=True)
            rows = print_table(cells, rep + 1)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="interleaved rounds (median)")
    end_to_end(parser.parse_args().reps)
