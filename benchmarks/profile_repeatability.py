"""Run ``esrkit profile --model rfdn --device cpu`` twice, as separate processes, and compare median runtimes.

This is the issue's acceptance check ("two runs agree on median runtime within 10 %"), kept out of the unit
tests because it is a timing measurement. Both runs use ``--timing challenge`` (best of 3 trials of 10 on one
thread), the repeatable grade; extra arguments are passed to both runs and override it, e.g. ``--threads 2``.

    python benchmarks/profile_repeatability.py [--model rfdn] [extra esrkit profile options...]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path


def run_once(model: str, extra: list[str], out: Path) -> float:
    cmd = [sys.executable, "-m", "esrkit", "profile", "--model", model, "--device", "cpu", "--timing", "challenge",
           "--json", str(out), *extra]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return float(json.loads(out.read_text())["results"][0]["runtime_median_ms"])


def main() -> int:
    args = sys.argv[1:]
    model = "rfdn"
    if args[:1] == ["--model"] and len(args) > 1:
        model, args = args[1], args[2:]
    with tempfile.TemporaryDirectory() as tmp:
        first = run_once(model, args, Path(tmp) / "a.json")
        second = run_once(model, args, Path(tmp) / "b.json")
    ratio = second / first
    print(f"{model}: median run 1 = {first:.2f} ms, run 2 = {second:.2f} ms, ratio = {ratio:.3f}")
    within = abs(ratio - 1.0) <= 0.10
    print("within 10 %" if within else "NOT within 10 %")
    return 0 if within else 1


if __name__ == "__main__":
    sys.exit(main())
