"""Checkpoints that allocate from their own description (issue 18, "Hostile input II"): a pickle whose objects
outnumber its bytes, a safetensors header too large or too deep to parse, a shape of 1e999, and esrkit metadata
whose hyper-parameters describe a model far larger than the tensors the file holds, or none at all.

Each case is refused with a one-line :class:`CheckpointError` naming the file (exit 2 from the CLI); where memory
is the point, the load runs in a child process and its peak (``VmHWM``) must stay under 1 GiB.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import pytest

from conftest import load_in_child
from esrkit.checkpoint_inspect import MAX_PICKLE_OPCODES

PEAK_LIMIT_MB = 1024  # the bound; importing torch and esrkit costs ~0.25 GiB of it
needs_proc = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak memory is read from /proc")


def _zip_pth(pickle_body: bytes) -> bytes:
    """A torch zip checkpoint (``archive/data.pkl``, deflated) whose pickle is PROTO 2, ``pickle_body``, STOP."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02" + pickle_body + b".")
        archive.writestr("archive/version", "3\n")
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------ pickles


@needs_proc
def test_a_zip_pickle_of_sixteen_million_empty_sets_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    """The issue's bomb: 16 KB on disk, a pickle of 16 M ``EMPTY_SET`` opcodes (deflate packs the run ~1000:1),
    under the 64 MiB pickle cap; every opcode is a 216-byte set, so unpickling it for the size check peaked at
    4 GB before "expected a state dict, found set". The opcode walk now counts them first."""
    path = tmp_path / "sets.pth"
    path.write_bytes(_zip_pth(b"\x8f" * 16_000_000))
    assert path.stat().st_size < 16_500
    outcome, peak_mb = load_in_child(path)
    assert outcome.startswith(f"{path}: its pickle has over {MAX_PICKLE_OPCODES:,} opcodes"), outcome
    assert peak_mb < PEAK_LIMIT_MB, peak_mb


@pytest.mark.slow  # three children, each importing torch: ~30 s on 2 cores
@needs_proc
@pytest.mark.parametrize("layout", ["zip_sets", "zip_marks", "legacy_lists"])
def test_a_pickle_just_under_the_opcode_cap_stays_in_bounded_memory(tmp_path: Path, layout: str) -> None:
    """The cap's own worst cases: a run of EMPTY_SET (the largest object per opcode), of MARK (a list each in
    the pure-Python unpickler), and a legacy file whose object and key-list pickles are both lists of that many
    sets (the two the inspection keeps at once), each one opcode under the cap: refused later, for what they
    are, never for memory."""
    count = MAX_PICKLE_OPCODES - 4
    path = tmp_path / f"{layout}.pth"
    if layout == "zip_sets":
        path.write_bytes(_zip_pth(b"\x8f" * count))
    elif layout == "zip_marks":
        path.write_bytes(_zip_pth(b"(" * count))
    else:
        run = b"\x80\x02(" + b"\x8f" * (count - 3) + b"l."  # PROTO, MARK, sets, LIST, STOP
        header = b"".join(pickle.dumps(v, protocol=2) for v in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}))
        path.write_bytes(header + run + run)
    outcome, peak_mb = load_in_child(path)
    assert outcome.startswith(f"{path}: ") and "opcodes" not in outcome, outcome
    assert peak_mb < PEAK_LIMIT_MB, peak_mb
