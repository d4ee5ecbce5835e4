"""int8 (``esrkit quantize``) against OpenVINO f32, timed interleaved on the same input (prints a table; not a test).

    python benchmarks/int8_speed.py                                  # rlfn_ntire and esrkit_x4, 540x960, 2 threads
    python benchmarks/int8_speed.py --rounds 10 --threads 2 --size 540x960
    python benchmarks/int8_speed.py --int8 rlfn=/tmp/rlfn_int8.xml   # time an existing file instead of quantizing

Each round runs one f32 forward and then one int8 forward of the same 1×3×H×W input, so both see the same machine
state; the table gives each side's median and the median of the per-round ratios (with its min and max). On a
shared machine this is the figure to quote: ``benchmarks/inference.py --int8`` times each backend in its own
block, and a neighbour's load that comes and goes between blocks moves its ratios by tens of percent.

The f32 side is OpenVINO reading the deploy form's ONNX export with ``INFERENCE_PRECISION_HINT=f32``; the int8
side is the file ``esrkit quantize`` writes (calibrated on ``--calib``, default ../shared's BSDS500 training photos),
run by :func:`esrkit.quantize.make_int8_runner`. Both are compiled for the input's static shape before timing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from esrkit.bundled import require_bundled_weights
from esrkit.infer import Upscaler
from esrkit.infer.backends import OpenVINORunner, export_onnx
from esrkit.quantize import make_int8_runner, quantize_model

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ESRKIT_SHARED", REPO.parent / "shared"))
MODELS = {"rlfn_ntire": lambda: SHARED / "weights" / "official" / "rlfn_ntire2022_x4.pth",
          "esrkit_x4": require_bundled_weights}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--size", default="540x960", help="LR H×W (default 540x960)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--calib", type=Path, default=SHARED / "data" / "train" / "bsds500_train")
    parser.add_argument("--int8", nargs="+", default=[], metavar="MODEL=FILE", help="use these int8 files")
    args = parser.parse_args()
    given = dict(item.split("=", 1) for item in args.int8)
    h, w = (int(v) for v in args.size.lower().split("x"))
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0))
    import openvino as ov

    caps = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    print(f"# OpenVINO {ov.__version__} CPU capabilities {caps}; {args.threads} threads; LR {h}x{w}; "
          f"{args.rounds} interleaved rounds")
    print(f"{'model':11s} {'f32 ms':>9s} {'int8 ms':>9s} {'ratio':>6s} {'min':>5s} {'max':>5s}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            weights = MODELS[name]()
            model = Upscaler.from_name(weights=weights, backend=None).model
            f32 = OpenVINORunner(model, onnx_path=export_onnx(model, Path(tmp) / f"{name}.onnx", deploy=False),
                                 threads=args.threads, static_after=1)
            path = Path(given[name]) if name in given else quantize_model(
                weights=weights, calib=[args.calib], out=Path(tmp) / f"{name}_int8.xml", threads=args.threads).path
            int8 = make_int8_runner(path, threads=args.threads)
            int8.static_after = 1
            a, b = [], []
            with torch.inference_mode():
                for runner in (f32, int8, f32, int8):  # compile the static shape, warm up
                    runner(x)
                for _ in range(args.rounds):
                    for runner, times in ((f32, a), (int8, b)):
                        start = time.perf_counter()
                        runner(x)
                        times.append(time.perf_counter() - start)
            ratios = [p / q for p, q in zip(a, b, strict=True)]
            print(f"{name:11s} {statistics.median(a) * 1e3:9.1f} {statistics.median(b) * 1e3:9.1f} "
                  f"{statistics.median(ratios):5.2f}× {min(ratios):5.2f} {max(ratios):5.2f}", flush=True)


if __name__ == "__main__":
    main()
