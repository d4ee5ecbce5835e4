"""Profile every zoo model twice and print the table plus the ratio of the two runs' median runtimes.

The ratio is the repeatability check of the profiler itself (the issue asks for two runs to agree within
10 %); it lives here rather than in the unit tests because a timing assertion on a shared machine
is a flaky test.

    python benchmarks/profile_zoo.py [--device cpu] [--input 256x256] [--models rfdn,imdn] [--threads 1]
"""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from esrkit.models import create_model, list_models, reparameterize
from esrkit.profile import profile_model
from esrkit.profile.table import ProfileTable, parse_hxw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--input", default="256x256")
    parser.add_argument("--models", default="", help="comma-separated subset (default: all with parameters)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()

    size = parse_hxw(args.input)
    names = [n for n in args.models.split(",") if n] or list_models()
    runs: list[list] = [[], []]
    for name in names:
        net = reparameterize(create_model(name, scale=4))
        if not any(True for _ in net.parameters()):
            continue  # interpolation baselines: nothing to count or time meaningfully
        for run in runs:
            run.append(profile_model(net, name=name, form="deploy", scale=4, input_size=size,
                                     device=args.device, precision=args.precision, warmup=args.warmup,
                                     repeats=args.repeats, trials=args.trials, threads=args.threads))
    console = Console()
    print(f"zoo, run 1 ({args.device}, {args.precision}, {args.input})")
    table = ProfileTable([r.model for r in runs[0]])
    print("\n".join([*table.header(), *(table.row(r) for r in runs[0])]))
    ratios = Table(title="median runtime, run 2 / run 1")
    for col in ("model", "run 1 [ms]", "run 2 [ms]", "ratio", "best-of-3 run 1 [ms]"):
        ratios.add_column(col, justify="left" if col == "model" else "right")
    for first, second in zip(runs[0], runs[1], strict=True):
        m1, m2 = first.runtime_median_ms, second.runtime_median_ms
        ratios.add_row(first.model, f"{m1:.2f}", f"{m2:.2f}", f"{m2 / m1:.3f}",
                       f"{first.runtime.timing.best_of_trials_ms:.2f}")
    console.print(ratios)


if __name__ == "__main__":
    main()
