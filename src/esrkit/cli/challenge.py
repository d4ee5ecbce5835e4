"""``esrkit challenge``: rank entries under a challenge's published rules, or measure a model's table row.

``rank`` reads rows (CSV/JSON, see :mod:`esrkit.challenge.rows`) and prints the ranked table exactly as the
challenge computes it. ``run`` produces the row a challenge table would print for one checkpoint (PSNR on the
challenge's sets, runtime, #params, FLOPs, #activations, memory, #conv), so a model can be ranked against the
published entries with ``rank``.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import InputError
from ._app import app

challenge_app = typer.Typer(
    help="Rank rows under NTIRE 2023 / AIM 2020 / AIS 2024 rules, or measure a model's challenge row.",
    no_args_is_help=True,
)
app.add_typer(challenge_app, name="challenge")


def _console() -> Any:
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        # Piped to a file or a CI log: wide enough that a 14-column challenge table stays one line per row.
        console = Console(width=240)
    return console


def _check_out_dir(path: Path | None, option: str) -> None:
    if path is not None and not (path.parent if str(path.parent) else Path(".")).is_dir():
        raise InputError(f"{option}: directory does not exist: {path.parent}")


def print_ranking(ranking: Any) -> None:
    """Print a :class:`~esrkit.challenge.Ranking` as a rich table (``value (rank)`` cells, as the reports)."""
    from rich.table import Table

    headers, body = ranking.display()
    table = Table(title=f"{ranking.protocol.title} — ordered by {ranking.order_by}")
    for i, header in enumerate(headers):
        table.add_column(
            header,
            justify="left" if i in (1, len(headers) - 1) else "right",
            overflow="fold",
            no_wrap=i < len(headers) - 1,  # numbers and names stay on one line; only the note wraps
            max_width=48 if i == len(headers) - 1 else None,
        )
    for entry, cells in zip(ranking.entries, body, strict=True):
        table.add_row(*cells, style=None if entry.ranked else "dim")
    _console().print(table)


@challenge_app.command("rank")
def rank_command(
    rows: Annotated[list[Path], typer.Argument(help="Row files (.csv/.tsv/.json); see esrkit.challenge.rows.")],
    challenge: Annotated[
        str, typer.Option("--challenge", "-c", help="ntire2023, aim2020, ais2024, or a protocol .yaml path.")
    ],
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the ranking as JSON here.")] = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write the ranking as CSV here.")] = None,
    order_by: Annotated[
        str | None, typer.Option("--order-by", help="Rank that orders the table (e.g. overall).")
    ] = None,
    no_floor: Annotated[
        bool,
        typer.Option(
            "--no-floor",
            help="Rank entries under the PSNR floor too (for re-ranking tables that did not apply it).",
        ),
    ] = False,
) -> None:
    """Rank rows under a challenge's rules and print the table."""
    from ..challenge import load_protocol, rank_rows, read_rows
    from ..challenge.rows import write_text_atomic

    _check_out_dir(json_out, "--json")
    _check_out_dir(csv_out, "--csv")
    protocol = load_protocol(challenge)
    ranking = rank_rows(read_rows(rows), protocol, enforce_floor=not no_floor, order_by=order_by)
    print_ranking(ranking)
    if json_out is not None:
        write_text_atomic(json_out, json.dumps(ranking.to_dict(), indent=2) + "\n")
    if csv_out is not None:
        write_text_atomic(csv_out, ranking.to_csv())


# ----------------------------------------------------------------------------------------------------
# run


def resolve_challenge_sets(protocol: Any, data_root: Path) -> list[tuple[Any, Path]]:
    """The folder of every dataset of ``protocol`` under ``data_root`` (names tried: the YAML ``dirs``, then the
    standard layouts of :data:`esrkit.data.datasets.STANDARD_BENCHMARKS`, e.g. ``DIV2K_valid_HR``).

    All missing sets are reported in one :class:`InputError`, naming each and the folders tried, so a user
    fixes the layout once instead of once per set.
    """
    if not data_root.is_dir():
        raise InputError(f"--data-root {data_root}: no such folder")
    from ..data.datasets import STANDARD_BENCHMARKS

    found, missing = [], []
    for spec in protocol.datasets:
        candidates = list(dict.fromkeys([*spec.dirs, *STANDARD_BENCHMARKS.get(spec.name, ())]))
        folder = next((data_root / d for d in candidates if (data_root / d).is_dir()), None)
        if folder is None:
            missing.append(f"{spec.name} (tried {', '.join(candidates)})")
        else:
            found.append((spec, folder))
    if missing:
        raise InputError(f"{protocol.name} needs these sets under {data_root}, missing: {'; '.join(missing)}")
    return found


def _result_value(result: Any, key: str) -> float:
    value = result.get(key) if isinstance(result, dict) else getattr(result, key)
    return float(value)


def _time_dataset(upscaler: Any, bench: Any, *, trials: int, limit: int | None, track_memory: bool) -> dict[str, Any]:
    """Average per-image forward time on the dataset's LR images, best of ``trials`` consecutive passes.

    This is the NTIRE/AIM protocol: each image is moved to the device first, then only ``model(x)`` is timed
    (CUDA events + synchronize on GPU, ``perf_counter`` on CPU); one untimed forward warms up. ``limit`` caps
    the number of images (they are held in memory for the repeated passes).
    """
    import itertools

    import torch

    from ..data.io import image_to_tensor

    lrs = [lr for _, lr, _ in itertools.islice(bench.pairs(), limit)]
    if not lrs:
        raise InputError(f"{bench.name}: no images to time")
    model, device, dtype = upscaler.model, upscaler.device, upscaler.dtype
    cuda = device.type == "cuda"

    def timed(x: torch.Tensor) -> float:
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            model(x)
            end.record()
            torch.cuda.synchronize(device)
            return float(start.elapsed_time(end))
        t0 = time.perf_counter()
        model(x)
        return (time.perf_counter() - t0) * 1000.0

    peak = None
    with torch.inference_mode():
        model(image_to_tensor(lrs[0]).to(device, dtype))
        if cuda:
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        means = []
        for _ in range(trials):
            times = [timed(image_to_tensor(lr).to(device, dtype)) for lr in lrs]
            means.append(sum(times) / len(times))
        if cuda and track_memory:
            peak = torch.cuda.max_memory_allocated(device) / 2**20
    return {
        "dataset": bench.name,
        "images": len(lrs),
        "best_of_trials_ms": min(means),
        "trial_means_ms": means,
        "peak_memory_mib": peak,
    }


def measure_challenge_row(
    protocol_name: str,
    weights: Path,
    data_root: Path,
    *,
    team: str | None = None,
    device: str = "auto",
    precision: str = "fp32",
    trials: int = 3,
    runtime_images: int | None = 100,
) -> dict[str, Any]:
    """Measure the table row of ``weights`` under a challenge protocol.

    Returns ``{"challenge": name, "row": {...}, "details": {...}}`` (the row reads back with ``read_rows``).

    PSNR uses the protocol's channel and border (NTIRE 2023: RGB, 4 px). NTIRE 2023's test set (100 DIV2K-test
    + 100 LSDIR-test images) has hidden HR, so ``psnr_test_proxy`` = the mean of the per-set means over
    DIV2K-valid and LSDIR-valid stands in for it (equal weight per set, like the 100 + 100 test) and the
    ranking checks the 26.95 dB floor on it. The runtime is timed on the sets' LR images as the protocol does
    (validation role → ``runtime_val_ms``, test stand-in → ``runtime_test_ms``; ``runtime_images`` caps each
    set), and ``memory_mb`` is the CUDA peak where the protocol measured it (on CPU: the profiler's estimate
    for one 256×256 forward, marked in ``details``).
    """
    from ..challenge import load_protocol

    protocol = load_protocol(protocol_name)
    if protocol.rule != "rank_sum" or not protocol.datasets:
        raise InputError(
            f"challenge run supports the bicubic ESR challenges (ntire2023, aim2020), not "
            f"{protocol.name}: its test data and degradations are not reproducible here"
        )
    if not weights.is_file():
        raise InputError(f"--weights {weights}: no such file")
    if trials < 1 or (runtime_images is not None and runtime_images < 1):
        raise InputError("--trials and --runtime-images must be >= 1")
    sets = resolve_challenge_sets(protocol, data_root)

    from ..checkpoints import load_checkpoint
    from ..data.datasets import resolve_benchmark
    from ..evaluate import evaluate_model
    from ..infer import Upscaler
    from ..models import get_config, reparameterize
    from ..profile import profile_model

    model = load_checkpoint(weights)
    config = get_config(model)
    scale = config.scale if config is not None else protocol.scale
    if scale != protocol.scale:
        raise InputError(f"--weights {weights}: is a ×{scale} model, {protocol.name} is ×{protocol.scale}")
    name = config.name if config is not None else weights.stem
    model = reparameterize(model)  # the deploy form: what the challenges counted and timed
    upscaler = Upscaler(model, scale, device=device, precision=precision)

    border = protocol.psnr.get("border")
    border = int(border) if isinstance(border, int) else None
    channel = "y" if str(protocol.psnr.get("channel", "rgb")).lower().startswith("y") else "rgb"
    results = evaluate_model(upscaler, [str(folder) for _, folder in sets], scale, border=border)

    values: dict[str, float] = {}
    details: dict[str, Any] = {
        "weights": str(weights),
        "scale": scale,
        "device": str(upscaler.device),
        "precision": precision,
        "psnr_channel": channel,
        "datasets": [],
        "notes": [],
    }
    proxies = []
    for (spec, folder), result in zip(sets, results, strict=True):
        psnr = _result_value(result, f"psnr_{channel}")
        values[f"psnr_{spec.key}"] = psnr
        if spec.role == "val":
            values["psnr_val"] = psnr
        if spec.role in ("val", "test_proxy"):
            proxies.append(psnr)
        summary = result.summary() if hasattr(result, "summary") else dict(result)
        details["datasets"].append({"key": spec.key, "name": spec.name, "folder": str(folder), **summary})
    if any(spec.role == "test_proxy" for spec, _ in sets):
        values["psnr_test_proxy"] = sum(proxies) / len(proxies)

    memory_on = str(protocol.complexity.get("memory_on", "input"))
    timings = {}
    for spec, folder in sets:
        bench = resolve_benchmark(folder, scale)
        timings[spec.key] = _time_dataset(
            upscaler, bench, trials=trials, limit=runtime_images, track_memory=memory_on == spec.key
        )
        key = {"val": "runtime_val_ms", "test_proxy": "runtime_test_ms"}.get(spec.role)
        if key:
            values[key] = timings[spec.key]["best_of_trials_ms"]
    derive = [k for k in protocol.runtime.get("derive_from") or [] if k in values]
    if derive:
        values["runtime_ms"] = sum(values[k] for k in derive) / len(derive)
    details["runtime"] = timings

    size = tuple(int(v) for v in protocol.complexity.get("input_size", (256, 256)))
    rules = str(protocol.complexity.get("counting_rules", "aim2020"))
    want_input_memory = memory_on == "input" or upscaler.device.type != "cuda"
    prof = profile_model(
        model,
        name=name,
        form="deploy",
        scale=scale,
        input_size=(size[0], size[1]),
        rules=rules,
        runtime=want_input_memory,
        device=str(upscaler.device),
        precision=precision,
        warmup=1,
        repeats=1,
        trials=1,
    )
    values.update(
        params_m=prof.params_m,
        flops_g=prof.flops_g,
        acts_m=prof.activations_m,
        convs=float(prof.counts.num_conv),
    )
    peak = timings.get(memory_on, {}).get("peak_memory_mib")
    if peak is None and prof.memory_mib is not None:
        peak = prof.memory_mib
        if upscaler.device.type != "cuda":
            details["notes"].append(
                f"memory_mb is a CPU estimate ({prof.runtime.memory.method} on "  # type: ignore[union-attr]
                f"{size[0]}x{size[1]}), not the challenge's CUDA peak"
            )
    if peak is not None and math.isfinite(peak):
        values["memory_mb"] = peak
    details["memory_method"] = "cuda_max_memory_allocated" if upscaler.device.type == "cuda" else "cpu_estimate"
    row = {"team": team or name, "model": name, **values}
    return {"challenge": protocol.name, "row": row, "details": details}


def _print_row(document: dict[str, Any]) -> None:
    from rich.table import Table

    from ..challenge import load_protocol, rank_rows, rows_from_records

    protocol = load_protocol(document["challenge"])
    row = rows_from_records([document["row"]], "measured")[0]
    table = Table(title=f"{protocol.title}: {row.label}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in row.values.items():
        table.add_row(protocol.label(key), f"{value:.3f}" if key == "params_m" else f"{value:.2f}")
    entry = rank_rows([row], protocol).entries[0]
    verdict = "eligible" if entry.ranked else f"not rankable: {entry.reason}"
    table.caption = "; ".join([verdict, *entry.notes, *document["details"]["notes"]])
    _console().print(table)


@challenge_app.command("run")
def run_command(
    challenge: Annotated[str, typer.Argument(help="ntire2023 or aim2020.")],
    weights: Annotated[Path, typer.Option("--weights", "-w", help="Checkpoint (.pth or .safetensors).")],
    data_root: Annotated[
        Path,
        typer.Option("--data-root", help="Folder holding the challenge's sets (NTIRE 2023: DIV2K_valid, LSDIR_valid)."),
    ],
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the row (and details) as JSON.")] = None,
    team: Annotated[str | None, typer.Option("--team", help="Name for the row (default: the model name).")] = None,
    device: Annotated[str, typer.Option("--device", help="cpu, cuda or auto.")] = "auto",
    precision: Annotated[str, typer.Option("--precision", help="fp32 (the challenges), fp16 or bf16.")] = "fp32",
    trials: Annotated[int, typer.Option("--trials", help="Timed passes per set (best one counts).")] = 3,
    runtime_images: Annotated[
        int, typer.Option("--runtime-images", help="Images per set to time (NTIRE timed 100 per set).")
    ] = 100,
) -> None:
    """Produce a challenge table row for one model: PSNR, runtime, #params, FLOPs, #acts, memory, #conv."""
    _check_out_dir(json_out, "--json")
    document = measure_challenge_row(
        challenge,
        weights,
        data_root,
        team=team,
        device=device,
        precision=precision,
        trials=trials,
        runtime_images=runtime_images,
    )
    _print_row(document)
    if json_out is not None:
        from ..challenge.rows import write_text_atomic

        write_text_atomic(json_out, json.dumps(document, indent=2) + "\n")
