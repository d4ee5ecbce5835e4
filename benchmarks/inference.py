"""esrkit's CPU backends against a plain eager fp32 PyTorch forward of the same weights (prints a table; not a test).

    python benchmarks/inference.py                       # all models, 256x256 and 960x540, all cores
    python benchmarks/inference.py --quick --models rlfn_ntire --sizes 256x256 --threads 2
    python benchmarks/inference.py --psnr                # also Set5 ×4 Y-PSNR change of the non-exact backends
    python benchmarks/inference.py --models rlfn_ntire esrkit_x4 --sizes 360x640 --psnr   # issue 11's comparison
    python benchmarks/inference.py --input noise         # uniform-noise input instead of the sample photograph
    python benchmarks/inference.py --e2e-only            # only the end-to-end esrkit upscale table
    python benchmarks/inference.py --models rlfn_ntire esrkit_x4 --sizes 540x960 --only f32 --int8 --psnr  # int8

The last table (``benchmarks/end_to_end.py``) times whole ``esrkit upscale`` commands: one 960×540 photograph
and a folder of 8, the default backend (``auto``) against ``--backend torch``, first call (empty cache) and
cached call, in separate processes, interleaved, median of ``--e2e-reps`` rounds.

"Eager" is what the authors' test scripts do: the released checkpoint as loaded (train form where it was released
in train form), NCHW float32, ``model(x)`` under no autograd. Each esrkit backend runs the deploy form
(:mod:`esrkit.infer.backends`): torch fp32 channels-last, torch bf16 (cast, channels-last), torch.compile (with
``--compile``: about a minute and a half of compilation per model and shape on a small CPU), ONNX Runtime fp32, OpenVINO
f32 and OpenVINO bf16, each only where this machine runs it natively. ONE ONNX export per model feeds both
runtimes. Every figure comes from :func:`esrkit.profile.runtime.time_forward` (the loop behind ``esrkit profile``)
with the same thread count for everything: ``--threads`` (default: every core this process may use).

The input (``--input``) is by default a photograph: esrkit's packaged sample (``esrkit/samples/astronaut.png``,
public domain) resized to the LR size with the MATLAB-exact bicubic. ``--input noise`` feeds uniform noise instead
(what this benchmark used before): a model far outside its training distribution can then amplify float32
rounding past the exactness bound on its own, e.g. esrkit_x4 reaches outputs of ~145 on noise, where its eager
fp32 forward is already 0.09 from float64, so the column would measure the input, not the backend.

Columns: median milliseconds per forward, speed-up over eager, and the largest absolute output difference from
eager on the same input. "exact" means ≤ 1e-4 (issue 10's bound for an fp32-exact backend). With ``--psnr`` the
non-exact backends are also scored on Set5 ×4 (Y-PSNR, the papers' protocol, through the same ``Upscaler`` path as
``esrkit evaluate``) against the fp32 figure; the "best overall" line only counts a backend within 0.02 dB.

``--int8`` adds the int8 models ``esrkit quantize`` writes (OpenVINO IR and ONNX Runtime QDQ, calibrated on
``--calib``, by default 60 patches from ../shared's BSDS500 training photos) as two more rows, and prints each one's
speed over its runtime's fp32 row ("int8 vs f32"); with ``--psnr`` their Set5 and Set14 Y-PSNR change too.

Models are the shared official checkpoints (``../shared/weights/official/``); one whose family is not registered
in this checkout, or whose file is missing, is skipped with a message. Sizes are LR H×W, grown to a model's size
multiple where needed (CASR needs multiples of 3: 256 → 258).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from esrkit.bundled import BUNDLED_MODEL, bundled_weights_path
from esrkit.checkpoints import load_checkpoint
from esrkit.errors import EsrkitError, UnknownModelError
from esrkit.infer import Upscaler
from esrkit.infer import backends as bk
from esrkit.models import capabilities_of, model_info, reparameterize
from esrkit.profile.runtime import time_forward
from esrkit.profile.table import parse_hxw

sys.path.insert(0, str(Path(__file__).resolve().parent))
from end_to_end import end_to_end  # a sibling script: benchmarks/ is not a package

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ESRKIT_SHARED", REPO.parent / "shared"))

# esrkit model name → released checkpoint (NTIRE 2022/2023 Efficient SR, AIS 2024 real-time 4K); esrkit_x4 is
# esrkit's own bundled model (esrkit.bundled), read from the package.
MODELS = {
    "esrkit_x4": "(bundled)",
    "rlfn_ntire": "rlfn_ntire2022_x4.pth",
    "rfdn": "rfdn_ntire2023_baseline_x4.pth",
    "imdn": "imdn_ntire2022_baseline_x4.pth",
    "dipnet": "dipnet_ntire2023_x4.pth",
    "casr": "casr_ais2024_deploy_x4.pt",
}
EXACT = 1e-4
PSNR_TOLERANCE = 0.02


def fit(size: tuple[int, int], caps: Any) -> tuple[int, int]:
    out = []
    for side in size:
        side = max(side, caps.min_size)
        out.append(side + -side % caps.size_multiple)
    return out[0], out[1]


def make_input(kind: str, h: int, w: int) -> torch.Tensor:
    """A 1×3×H×W float32 input in [0, 1]: the packaged sample photograph resized to H×W, or seeded noise."""
    if kind == "noise":
        return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0))
    from esrkit.data.io import image_to_tensor
    from esrkit.data.resize import imresize
    from esrkit.demo import load_sample

    return imresize(image_to_tensor(load_sample()), size=(h, w)).clamp(0, 1)


def combos(use_compile: bool) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(label, backend, precision, options) this machine runs; a skipped one is announced on stderr."""
    wanted = [("torch fp32 channels-last", "torch", "fp32", {"channels_last": True}),
              ("torch bf16", "torch", "bf16", {"channels_last": True, "bf16_mode": "cast"})]
    if use_compile:
        wanted.append(("torch fp32 compile", "torch", "fp32", {"channels_last": True, "compile": True}))
    wanted += [("onnxruntime fp32", "onnxruntime", "fp32", {}), ("openvino f32", "openvino", "fp32", {}),
               ("openvino bf16", "openvino", "bf16", {})]
    out = []
    for label, backend, precision, options in wanted:
        if not bk.backend_installed(backend):
            print(f"skip {label}: {backend} is not installed", file=sys.stderr)
        elif precision not in bk.supported_precisions(backend):
            print(f"skip {label}: this CPU has no native {precision} for {backend}", file=sys.stderr)
        else:
            out.append((label, backend, precision, options))
    return out


def set5_psnr(weights: Path, set5: Path, backend: str | None = None, precision: str = "fp32",
              threads: int | None = None, **options: Any) -> float:
    from esrkit.evaluate import evaluate_model

    extra: dict[str, Any] = {"backend": None} if backend is None else {"backend": backend, "threads": threads,
                                                                       **options}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "not marked safe": the measured PSNR says it better
        up = Upscaler.from_name(weights=weights, precision=precision, **extra)
    return evaluate_model(up, [set5], 4)[0].psnr_y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--sizes", nargs="+", default=["256x256", "540x960"], help="LR H×W (default 256x256 540x960)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--quick", action="store_true", help="2 warm-ups and 3 timed forwards (default 3 + 3×10)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (slow to compile)")
    parser.add_argument("--psnr", action="store_true", help="Set5 ×4 Y-PSNR change of the non-exact backends")
    parser.add_argument("--set5", type=Path, default=SHARED / "data" / "benchmarks" / "Set5")
    parser.add_argument("--json", type=Path, help="also write every row here")
    parser.add_argument("--only", nargs="+", metavar="WORD",
                        help="time only the backends whose label has one of these words (e.g. openvino)")
    parser.add_argument("--int8", action="store_true", help="also time int8 models written by esrkit quantize")
    parser.add_argument("--calib", type=Path, default=SHARED / "data" / "train" / "bsds500_train",
                        help="calibration photos for --int8")
    parser.add_argument("--input", choices=["photo", "noise"], default="photo",
                        help="the sample photograph resized to each size (default), or uniform noise")
    parser.add_argument("--e2e-reps", type=int, default=3,
                        help="rounds of the end-to-end esrkit upscale table (median; 0 skips it)")
    parser.add_argument("--e2e-only", action="store_true", help="only the end-to-end table")
    args = parser.parse_args()
    if args.e2e_only:
        end_to_end(max(args.e2e_reps, 1))
        return
    warmup, repeats, trials = (2, 3, 1) if args.quick else (3, 10, 3)
    sizes = [parse_hxw(s) for s in args.sizes]
    torch.set_num_threads(args.threads)
    chosen = [c for c in combos(args.compile) if not args.only or any(w in c[0] for w in args.only)]
    cpu = torch.cpu.get_capabilities().get("cpu_name", "?") if hasattr(torch.cpu, "get_capabilities") else "?"
    print(f"# {cpu}, {args.threads} threads, torch {torch.__version__}; warm-up {warmup}, median of "
          f"{repeats}×{trials}; eager = released checkpoint as loaded, NCHW fp32; input: {args.input}")

    rows: list[dict[str, Any]] = []
    header = f"{'model':11s} {'LR input':>9s} {'backend':26s} {'median ms':>10s} {'× eager':>8s} {'max |Δ|':>9s}  exact"
    print(header)
    print("-" * len(header))
    for name in args.models:
        if name == BUNDLED_MODEL:
            bundled = bundled_weights_path()
            if bundled is None:
                print(f"skip {name}: this installation has no bundled weights", file=sys.stderr)
                continue
            path = bundled
        else:
            path = SHARED / "weights" / "official" / MODELS[name]
            try:
                model_info(name)
            except UnknownModelError:
                print(f"skip {name}: not registered in this checkout", file=sys.stderr)
                continue
        if not path.is_file():
            print(f"skip {name}: no checkpoint at {path}", file=sys.stderr)
            continue
        eager = load_checkpoint(path).eval()
        deploy = reparameterize(eager)
        caps = capabilities_of(eager)
        runners: list[tuple[str, str, str, dict[str, Any], torch.nn.Module]] = []
        with tempfile.TemporaryDirectory() as tmp:
            onnx_path: Path | None = None
            for label, backend, precision, options in chosen:
                opts = dict(options)
                if backend in ("onnxruntime", "openvino"):
                    if onnx_path is None:
                        try:
                            onnx_path = bk.export_onnx(deploy, Path(tmp) / f"{name}.onnx")
                        except bk.ExportError as exc:
                            print(f"skip ONNX backends for {name}: {exc}", file=sys.stderr)
                            onnx_path = Path("-")
                    if onnx_path == Path("-"):
                        continue
                    opts["onnx_path"] = onnx_path
                try:
                    runner = bk.make_runner(deploy, backend, precision=precision, threads=args.threads, **opts)
                except EsrkitError as exc:
                    print(f"skip {label} for {name}: {exc}", file=sys.stderr)
                    continue
                runners.append((label, backend, precision, options, runner))
            if args.int8:
                runners += int8_runners(path, Path(tmp), args.calib, args.threads)
        for size in sizes:
            h, w = fit(size, caps)
            x = make_input(args.input, h, w)
            with torch.inference_mode():
                reference = eager(x)
            base = time_forward(eager, [x], device=torch.device("cpu"), dtype=torch.float32, warmup=warmup,
                                repeats=repeats, trials=trials, threads=args.threads).timing.median_ms
            line = f"{name:11s} {f'{h}x{w}':>9s} {'eager fp32 (authors)':26s} {base:10.1f} {1.0:8.2f} {0.0:9.1e}"
            print(line, flush=True)
            rows.append({"model": name, "size": [h, w], "backend": "eager", "precision": "fp32", "median_ms": base,
                         "speedup": 1.0, "max_abs_diff": 0.0, "exact": True})
            for label, backend, precision, options, runner in runners:
                try:
                    with torch.inference_mode():
                        diff = (runner(x) - reference).abs().max().item()
                    ms = time_forward(runner, [x], device=torch.device("cpu"), dtype=torch.float32, warmup=warmup,
                                      repeats=repeats, trials=trials, threads=args.threads).timing.median_ms
                except RuntimeError as exc:  # torch.compile without a working compiler, for one
                    print(f"skip {label} for {name}: {str(exc).strip().splitlines()[0][:160]}", file=sys.stderr)
                    continue
                exact = diff <= EXACT
                print(f"{name:11s} {f'{h}x{w}':>9s} {label:26s} {ms:10.1f} {base / ms:8.2f} {diff:9.1e}  "
                      f"{'yes' if exact else 'no'}", flush=True)
                rows.append({"model": name, "size": [h, w], "backend": backend, "precision": precision,
                             "label": label, "options": {k: v for k, v in options.items() if k != "onnx_path"},
                             "median_ms": ms, "speedup": base / ms, "max_abs_diff": diff, "exact": exact})
        if args.psnr and args.set5.is_dir():
            fp32 = set5_psnr(path, args.set5)
            for label, backend, precision, options, runner in runners:
                if precision == "int8":
                    print_int8_psnr(name, label, path, runner, args.set5, rows)
                    continue
                if any(r["model"] == name and r.get("label") == label and not r["exact"] for r in rows):
                    delta = set5_psnr(path, args.set5, backend, precision, args.threads, **options) - fp32
                    for r in rows:
                        if r["model"] == name and r.get("label") == label:
                            r["set5_delta_db"] = delta
                    print(f"{name:11s} Set5 ×4 Y-PSNR fp32 {fp32:.3f}; {label}: {delta:+.4f} dB", flush=True)
        elif args.psnr:
            print(f"skip PSNR: no Set5 at {args.set5}", file=sys.stderr)

    print()
    for name, size in dict.fromkeys((r["model"], tuple(r["size"])) for r in rows):
        group = [r for r in rows if r["model"] == name and tuple(r["size"]) == size and r["backend"] != "eager"]
        if not group:
            continue
        exact = [r for r in group if r["exact"]]
        ok = [r for r in group if r["exact"] or abs(r.get("set5_delta_db", float("inf"))) <= PSNR_TOLERANCE]
        parts = []
        if exact:
            best = max(exact, key=lambda r: r["speedup"])
            parts.append(f"best fp32-exact {best['label']} {best['speedup']:.2f}× eager")
        if ok:
            best = max(ok, key=lambda r: r["speedup"])
            note = f", Set5 {best['set5_delta_db']:+.4f} dB" if "set5_delta_db" in best else ""
            scope = "within 0.02 dB on Set5" if args.psnr else "exact only; --psnr admits bf16"
            parts.append(f"best overall ({scope}) {best['label']} {best['speedup']:.2f}×{note}")
        print(f"{name} {size[0]}x{size[1]}: " + "; ".join(parts))
    print_head_to_head(rows, args.psnr)
    print_int8_ratios(rows)
    e2e = end_to_end(args.e2e_reps) if args.e2e_reps > 0 else []
    if args.json is not None:
        from esrkit.fileio import write_json_atomic

        write_json_atomic(args.json, {"threads": args.threads, "warmup": warmup, "repeats": repeats,
                                      "trials": trials, "rows": rows, "end_to_end": e2e})


def int8_runners(weights: Path, tmp: Path, calib: Path, threads: int) -> list[tuple[str, str, str, dict[str, Any],
                                                                                 torch.nn.Module]]:
    """The int8 rows: ``esrkit quantize``'s OpenVINO and ONNX Runtime models of ``weights``, as runners."""
    from esrkit.quantize import make_int8_runner, quantize_model

    out = []
    for backend, suffix in (("openvino", ".xml"), ("onnxruntime", ".onnx")):
        if not bk.backend_installed(backend):
            continue
        try:
            result = quantize_model(weights=weights, calib=[calib], out=tmp / f"int8_{weights.stem}{suffix}",
                                    backend=backend, threads=threads)
        except EsrkitError as exc:
            print(f"skip {backend} int8 for {weights.name}: {exc}", file=sys.stderr)
            continue
        runner = make_int8_runner(result.path, result.metadata, threads=threads)
        out.append((f"{backend} int8", backend, "int8", {"file": str(result.path)}, runner))
    return out


def print_int8_psnr(name: str, label: str, weights: Path, runner: torch.nn.Module, set5: Path,
                    rows: list[dict[str, Any]]) -> None:
    """Set5 and Set14 Y-PSNR of an int8 row against the fp32 model, through the Upscaler path of evaluate."""
    from esrkit.evaluate import evaluate_model

    benches = [set5, set5.parent / "Set14"]
    benches = [b for b in benches if b.is_dir()]
    fp32 = [r.psnr_y for r in evaluate_model(Upscaler.from_name(weights=weights, backend=None), benches, 4)]
    int8 = [r.psnr_y for r in evaluate_model(Upscaler(runner, 4), benches, 4)]
    for r in rows:
        if r["model"] == name and r.get("label") == label:
            r["set5_delta_db"] = int8[0] - fp32[0]
            r["psnr_y"] = {b.name: {"fp32": a, "int8": q} for b, a, q in zip(benches, fp32, int8, strict=True)}
    text = "; ".join(f"{b.name} {a:.3f} → {q:.3f} ({q - a:+.3f} dB)"
                     for b, a, q in zip(benches, fp32, int8, strict=True))
    print(f"{name:11s} {label}: Y-PSNR {text}", flush=True)


def print_int8_ratios(rows: list[dict[str, Any]]) -> None:
    """Each int8 row's speed over the fp32 row of the same runtime, model and size (same run)."""
    pairs = [(r, f) for r in rows if r["precision"] == "int8" for f in rows
             if f["model"] == r["model"] and f["size"] == r["size"] and f["backend"] == r["backend"]
             and f["precision"] == "fp32"]
    if pairs:
        print("\nint8 vs f32 (same runtime, this run)")
    for r, f in pairs:
        print(f"  {r['model']:11s} {r['size'][0]}x{r['size'][1]:<5d} {r['label']:18s} {r['median_ms']:9.1f} ms vs "
              f"{f['median_ms']:9.1f} ms: {f['median_ms'] / r['median_ms']:.2f}×")


def print_head_to_head(rows: list[dict[str, Any]], psnr: bool) -> None:
    """Per LR size measured for several models: each model's fastest admissible backend (fp32-exact, or within
    0.02 dB on Set5 when ``--psnr`` scored it), its output megapixels per second, and its speed relative to the
    first model listed. All from this one run, so the ratios share the machine's state."""
    sizes = dict.fromkeys(tuple(r["size"]) for r in rows)
    for size in sizes:
        best: dict[str, dict[str, Any]] = {}
        for r in rows:
            if tuple(r["size"]) != size:
                continue
            admissible = r["exact"] or abs(r.get("set5_delta_db", float("inf"))) <= PSNR_TOLERANCE
            if admissible and (r["model"] not in best or r["median_ms"] < best[r["model"]]["median_ms"]):
                best[r["model"]] = r
        if len(best) < 2:
            continue
        first = next(iter(best.values()))
        print(f"\nhead to head at LR {size[0]}x{size[1]} (best {'admissible' if psnr else 'fp32-exact'} backend "
              "per model)")
        for model, r in best.items():
            out_mpix = size[0] * size[1] * 16 / 1e6
            print(f"  {model:11s} {r.get('label', 'eager fp32 (authors)'):26s} {r['median_ms']:9.1f} ms "
                  f"{out_mpix / (r['median_ms'] / 1e3):7.2f} MP/s  {first['median_ms'] / r['median_ms']:5.2f}× "
                  f"{first['model']}")


if __name__ == "__main__":
    main()
