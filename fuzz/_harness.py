"""Plumbing shared by the fuzz targets: the contract, seed writing and the keep-going finding recorder.

The contract every target checks is esrkit's promise about hostile input: a bad file raises a subclass of
:class:`esrkit.errors.EsrkitError` (one line, exit code 2 in the CLI) and nothing else. Any other exception, a
native crash, a hang past libFuzzer's ``-timeout`` or memory past ``-rss_limit_mb`` is a *finding*.

Two ways a finding is reported, because Python exceptions and native failures need different handling:

* **Python exceptions** are caught here when ``ESRKIT_FUZZ_FINDINGS`` names a folder (the runner sets it): the
  input is written to ``finding-<signature>.bin`` with its traceback beside it in ``.txt``, once per signature
  (exception type + the frame that raised it), and fuzzing goes on. Stopping at the first finding, libFuzzer's
  default, would spend a short run on one bug; the signature keeps a bug hit a thousand times one finding.
* **Native crashes, timeouts and out-of-memory** are libFuzzer's: it writes ``crash-``/``timeout-``/``oom-<sha1>``
  into ``-artifact_prefix`` and exits, and the runner starts the target again on the same corpus.

Without ``ESRKIT_FUZZ_FINDINGS`` (a target run by hand on one file, ``python fuzz/fuzz_rows_json.py FILE``) the
exception propagates and atheris prints it with the full traceback: that is how a finding is reproduced.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import atheris

# The targets instrument esrkit (``instrument_imports(include=["esrkit"])``), not torch or FFmpeg: edges there would
# make every execution far slower and say little about esrkit's own branches (the image target adds Pillow's format
# plugins, which it imports itself, because there the decoder paths are the point). The third-party
# modules are imported here, before any target's instrumented block, so their start-up is paid once, up front.
import numpy  # noqa: F401
import torch  # noqa: F401
import yaml  # noqa: F401
from PIL import Image  # noqa: F401
from safetensors import torch as _safetensors_torch  # noqa: F401

FINDINGS_ENV = "ESRKIT_FUZZ_FINDINGS"
FINDING_MARK = "ESRKIT-FINDING"  # the runner counts these lines

_SEEN: set[str] = set()
_KEEP: list[tempfile.TemporaryDirectory[str]] = []  # scratch folders live as long as the process


def scratch_dir() -> Path:
    """A private temporary folder for the target's files (removed when the interpreter exits)."""
    folder = tempfile.TemporaryDirectory(prefix="esrkit-fuzz-")
    _KEEP.append(folder)
    return Path(folder.name)


def signature(exc: BaseException) -> str:
    """Exception type plus the innermost frame that raised it, and the innermost esrkit frame on the way (the
    place a fix would go): stable across inputs that hit the same bug, different for different bugs."""
    frames = traceback.extract_tb(exc.__traceback__)
    inner = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
    ours = [f for f in frames if f"{os.sep}esrkit{os.sep}" in f.filename]
    where = f"{Path(ours[-1].filename).name}:{ours[-1].lineno}" if ours else "-"
    return f"{type(exc).__name__}@{inner}@{where}"


def _record(folder: Path, data: bytes, exc: BaseException) -> None:
    sig = signature(exc)
    if sig in _SEEN:
        return
    _SEEN.add(sig)
    digest = hashlib.sha1(sig.encode()).hexdigest()[:12]
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"finding-{digest}"
    if not stem.with_suffix(".bin").exists():
        stem.with_suffix(".bin").write_bytes(data)
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        stem.with_suffix(".txt").write_text(f"{sig}\n\n{text}", encoding="utf-8")
    first = str(exc).splitlines()[0][:200] if str(exc) else ""
    print(f"{FINDING_MARK} {digest} {sig} {type(exc).__name__}: {first}", file=sys.stderr, flush=True)


def _contract(test_one_input: Callable[[bytes], None]) -> Callable[[bytes], None]:
    from esrkit.errors import EsrkitError

    findings = os.environ.get(FINDINGS_ENV)

    def run(data: bytes) -> None:
        try:
            test_one_input(data)
        except EsrkitError:
            pass  # the documented outcome of bad input
        except Exception as exc:
            if not findings:
                raise
            _record(Path(findings), data, exc)

    return run


def write_seeds(folder: Path, seeds: Mapping[str, bytes]) -> None:
    """Write the seed inputs, each named by its SHA-1 like libFuzzer's corpus files (so the runner can drop a
    seed that crashes natively instead of replaying it on every restart)."""
    folder.mkdir(parents=True, exist_ok=True)
    for data in seeds.values():
        (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)


def main(test_one_input: Callable[[bytes], None], seeds: Callable[[], Mapping[str, bytes]], max_len: int) -> None:
    """Run a target: ``--write-seeds=DIR`` (consumed here) writes ``seeds()`` first; the rest of ``sys.argv`` is
    libFuzzer's (corpus folders, ``-max_total_time``, ``-timeout``, ``-rss_limit_mb``, a file to reproduce).
    ``max_len`` is the target's default ``-max_len``: a little above its largest seed, so mutations stay near
    real files instead of growing into megabytes that only slow every execution down."""
    warnings.simplefilter("ignore")  # Pillow's bomb warning, torch's deprecations: not errors, and they flood
    argv = []
    for arg in sys.argv:
        if arg.startswith("--write-seeds="):
            write_seeds(Path(arg.split("=", 1)[1]), seeds())
        else:
            argv.append(arg)
    if not any(a.startswith("-max_len=") for a in argv):
        argv.append(f"-max_len={max_len}")
    atheris.Setup(argv, _contract(test_one_input))
    atheris.Fuzz()


def save_seed(out: dict[str, bytes], name: str, img: Any, fmt: str, **params: object) -> None:
    """Encode the Pillow image ``img`` as ``fmt`` into ``out[name]``; skipped when this Pillow build cannot write
    that format (a seed corpus holds what the build can make)."""
    import io

    buf = io.BytesIO()
    try:
        img.save(buf, format=fmt, **params)
    except (OSError, KeyError, ValueError):
        return
    out[name] = buf.getvalue()
