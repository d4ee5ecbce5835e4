"""Run esrkit's fuzz targets for a fixed time each and print what they did.

    python fuzz/run.py --seconds 60                      # every target, one minute each
    python fuzz/run.py --seconds 600 --targets image,video
    python fuzz/run.py --seconds 60 --targets rows_json -len_control=0   # other flags go to libFuzzer

Each target runs in its own subprocess (``python fuzz/fuzz_<target>.py``) under libFuzzer's limits: ``-timeout``
seconds per input (a hang), ``-rss_limit_mb`` (runaway memory) and ``-max_total_time`` for the budget. Python
exceptions outside the typed errors are recorded by the target and fuzzing goes on (see ``_harness.py``); a
native crash, timeout or out-of-memory ends the subprocess, and the runner starts it again on the same corpus
until the budget is spent (a seed or corpus file that kills the process is moved out of the corpus first, so it
is not replayed on every start).

Everything lands in ``fuzz/findings/<target>/`` (gitignored): ``corpus/`` (grows across runs, so a second run
starts where the first stopped), ``seeds/`` (regenerated at each run), ``finding-*.bin``/``.txt`` (input and
traceback of each distinct Python finding), libFuzzer's ``crash-``/``timeout-``/``oom-*`` artifacts, and
``log.txt`` (the last run's output). The table gives per target: seconds, executions, findings (distinct in this
run), and coverage as libFuzzer's ``cov:`` (edges) and ``ft:`` (features) from its last status line. The exit
status is 1 when anything was found.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGETS = {
    "image": "fuzz_image.py",
    "image_meta": "fuzz_image_meta.py",
    "checkpoint_pth": "fuzz_checkpoint_pth.py",
    "checkpoint_safetensors": "fuzz_checkpoint_safetensors.py",
    "checkpoint_metadata": "fuzz_checkpoint_metadata.py",
    "safetensors_header": "fuzz_safetensors_header.py",
    "layout": "fuzz_layout.py",
    "recipe": "fuzz_recipe.py",
    "rows_csv": "fuzz_rows_csv.py",
    "rows_json": "fuzz_rows_json.py",
    "video": "fuzz_video.py",
    "jpeg_progressive": "fuzz_jpeg_progressive.py",
}
ARTIFACTS = ("crash-", "timeout-", "oom-", "leak-")
FINDING_MARK = "ESRKIT-FINDING"
MAX_STARTS = 25  # a target that dies at once on every start is reported, not restarted forever

_STATUS = re.compile(r"^#(\d+)\s.*?cov: (\d+) ft: (\d+)", re.MULTILINE)
_EXECUTED = re.compile(r"stat::number_of_executed_units: (\d+)")
_DONE = re.compile(r"^Done (\d+) runs in", re.MULTILINE)
_ARTIFACT = re.compile(r"Test unit written to (\S+)")


@dataclass
class Result:
    """One target's run, summed over its (re)starts."""

    target: str
    seconds: float = 0.0
    executions: int = 0
    cov: int = 0
    ft: int = 0
    starts: int = 0
    findings: list[str] = field(default_factory=list)  # finding ids / artifact names, distinct


def _executions(log: str) -> int:
    for pattern in (_EXECUTED, _DONE):
        found = pattern.findall(log)
        if found:
            return int(found[-1])
    status = _STATUS.findall(log)
    return int(status[-1][0]) if status else 0


def _evict(artifact: Path, folders: list[Path]) -> None:
    """libFuzzer names artifacts ``<kind>-<sha1 of the input>`` and the seeds/corpus files are named by SHA-1 too:
    move the killing input out of the corpus so the restart does not replay it."""
    digest = artifact.name.split("-", 1)[-1]
    for folder in folders:
        victim = folder / digest
        if victim.exists():
            victim.unlink()


def run_target(name: str, seconds: float, timeout: int, rss_limit_mb: int, root: Path,
               extra: list[str] | None = None) -> Result:
    folder = root / name
    corpus, seeds = folder / "corpus", folder / "seeds"
    corpus.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(seeds, ignore_errors=True)
    result = Result(name)
    log_path = folder / "log.txt"
    env = {**os.environ, "ESRKIT_FUZZ_FINDINGS": str(folder), "PYTHONWARNINGS": "ignore"}
    started = time.monotonic()
    logs = []
    while result.starts < MAX_STARTS:
        left = int(seconds - (time.monotonic() - started))
        if left < 1:
            break
        before = {p.name for p in folder.iterdir() if p.name.startswith(ARTIFACTS)}
        cmd = [sys.executable, str(HERE / TARGETS[name]), f"-max_total_time={left}", f"-timeout={timeout}",
               f"-rss_limit_mb={rss_limit_mb}", f"-artifact_prefix={folder}{os.sep}", "-print_final_stats=1",
               *(extra or []), str(corpus), str(seeds)]
        if result.starts == 0:
            cmd.insert(2, f"--write-seeds={seeds}")
        result.starts += 1
        try:
            # The grace covers interpreter start-up and seed writing, which libFuzzer's clock does not see.
            proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  timeout=left + timeout + 120, check=False)
            log = proc.stdout.decode("utf-8", "replace")
        except subprocess.TimeoutExpired as exc:
            log = (exc.stdout or b"").decode("utf-8", "replace") + "\n[run.py] killed: past its time budget\n"
        logs.append(log)
        result.executions += _executions(log)
        status = _STATUS.findall(log)
        if status:
            result.cov, result.ft = max(result.cov, int(status[-1][1])), max(result.ft, int(status[-1][2]))
        for line in log.splitlines():
            if line.startswith(FINDING_MARK):
                ident = f"finding-{line.split()[1]}.bin"
                if ident not in result.findings:
                    result.findings.append(ident)
        new = sorted({p.name for p in folder.iterdir() if p.name.startswith(ARTIFACTS)} - before)
        for artifact in new:
            _evict(folder / artifact, [corpus, seeds])
            result.findings.append(artifact)
        if "INITED" not in log:
            print(f"[run.py] {name} did not start fuzzing:\n{log[-3000:]}", file=sys.stderr)
        if not new:
            break  # libFuzzer spent its -max_total_time (or the target cannot start: restarting repeats that)
    result.seconds = round(time.monotonic() - started, 1)
    log_path.write_text("\n".join(logs), encoding="utf-8")
    return result


def table(results: list[Result]) -> str:
    header = ("target", "seconds", "executions", "findings", "cov", "ft")
    rows = [(r.target, f"{r.seconds:.0f}", str(r.executions), str(len(r.findings)), str(r.cov), str(r.ft))
            for r in results]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]

    def line(cells: tuple[str, ...]) -> str:  # the target name left-aligned, numbers right-aligned
        padded = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "  ".join(padded)

    lines = [line(header), "  ".join("-" * w for w in widths)]
    lines += [line(row) for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, required=True, help="fuzzing time per target")
    parser.add_argument("--targets", default=",".join(TARGETS), help=f"comma-separated, from {', '.join(TARGETS)}")
    parser.add_argument("--timeout", type=int, default=10, help="seconds one input may take before it is a hang")
    parser.add_argument("--rss-limit-mb", type=int, default=2048, help="memory (RSS) past which a run is a finding")
    parser.add_argument("--findings", type=Path, default=HERE / "findings", help="output folder")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args, extra = parser.parse_known_args(argv)  # the rest (``-dict=…``, ``-len_control=0``) goes to libFuzzer
    if any(not flag.startswith("-") or flag.startswith("--") for flag in extra):
        parser.error(f"unrecognised arguments: {' '.join(extra)} (libFuzzer flags look like -name=value)")
    names = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = [t for t in names if t not in TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; known: {', '.join(TARGETS)}")
    results = []
    for name in names:
        print(f"[run.py] {name}: {args.seconds:.0f} s ...", file=sys.stderr, flush=True)
        results.append(run_target(name, args.seconds, args.timeout, args.rss_limit_mb, args.findings, extra))
    print(table(results))
    for r in results:
        for ident in r.findings:
            print(f"finding  {r.target}  {args.findings / r.target / ident}")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n", encoding="utf-8")
    return 1 if any(r.findings for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
