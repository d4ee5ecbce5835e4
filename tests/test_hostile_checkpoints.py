"""Checkpoints that allocate from their own description (issue 18, "Hostile input II"): a pickle whose objects
outnumber its bytes, a safetensors header too large or too deep to parse, a shape of 1e999, and esrkit metadata
whose hyper-parameters describe a model far larger than the tensors the file holds, or none at all.

Each case is refused with a one-line :class:`CheckpointError` naming the file (exit 2 from the CLI); where memory
is the point, the load runs in a child process and its peak (``VmHWM``) must stay under 1 GiB.
"""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from esrkit.checkpoint_inspect import (
    MAX_HEADER_ITEMS,
    MAX_PICKLE_OPCODES,
    MAX_SAFETENSORS_HEADER_BYTES,
    check_json_text,
)
from esrkit.checkpoints import load_checkpoint
from esrkit.cli import main
from esrkit.data.io import write_image
from esrkit.errors import CheckpointError
from esrkit.models import create_model
from helpers import load_in_child

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


# --------------------------------------------------------------------------------------- safetensors header


def _raw_safetensors(path: Path, header: bytes, data: bytes = b"") -> Path:
    """A safetensors file as the format lays it out: the header's length (8 bytes, little-endian), the JSON
    header, the data."""
    path.write_bytes(len(header).to_bytes(8, "little") + header + data)
    return path


def _esrkit_file(path: Path, meta: object, tensors: dict[str, torch.Tensor] | None = None) -> Path:
    """A safetensors file with esrkit metadata ``meta`` (any JSON value) and ``tensors`` (one float by default)."""
    save_file(tensors or {"w": torch.zeros(1)}, str(path), metadata={"esrkit": json.dumps(meta)})
    return path


@pytest.mark.parametrize(("header", "message"), [
    (b'{"w":{"dtype":"F32","shape":[1e999],"data_offsets":[0,4]}}', "shape [inf] is not a list of integers"),
    (b'{"w":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}', "shape [2.0] is not a list of integers"),
    (b'{"w":{"dtype":"F32","shape":[true],"data_offsets":[0,4]}}', "shape [True] is not a list of integers"),
    (b'{"w":' + b"[" * 200_000 + b"]" * 200_000 + b"}", "nested over 16 deep; refused before parsing"),
    (b'{"w":{"dtype":"F32","shape":[' + b"1" * 5000 + b'],"data_offsets":[0,4]}}', "is not valid JSON (Exceeds"),
    (b'{"w":{"dtype":"F32","shape":[' + b"1073741824," * 2000 + b'1],"data_offsets":[0,4]}}', "past 1,073,741,824"),
])
def test_a_hostile_safetensors_header_is_one_checkpoint_error(tmp_path: Path, header: bytes, message: str) -> None:
    """The issue's tracebacks (OverflowError for 1e999, RecursionError for 200,000 brackets) and their kin: a
    number past Python's 4300-digit limit (ValueError, found while writing these), a float or bool size, and a
    shape whose sizes multiply to a ~60,000-digit integer (the count now stops at the cap)."""
    path = _raw_safetensors(tmp_path / "hostile.safetensors", header, b"\0" * 8)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    text = str(info.value)
    assert text.startswith(f"{path}: ") and message in text and len(text.splitlines()) == 1 and len(text) < 400, text


def test_a_safetensors_header_over_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    length = MAX_SAFETENSORS_HEADER_BYTES + 1
    path = _raw_safetensors(tmp_path / "big.safetensors", b'{"a":' + b" " * (length - 7) + b"1}")
    with pytest.raises(CheckpointError, match=r"header is 16\.8 MB, over the 16\.8 MB .* refused before parsing"):
        load_checkpoint(path)


@needs_proc
def test_a_header_of_millions_of_objects_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    """40 MB of ``{},`` (13 M empty objects, under the safetensors library's 100 MB bound): parsed, they cost
    over a gigabyte (the issue's 100 MB header reached 2.6 GB). The header's size and value count are checked on
    its bytes first."""
    count = 13_000_000
    path = _raw_safetensors(tmp_path / "objects.safetensors", b'{"t":[' + b"{}," * count + b'{}]}')
    outcome, peak_mb = load_in_child(path)
    assert outcome.startswith(f"{path}: safetensors header is ") and "refused before parsing" in outcome, outcome
    assert peak_mb < PEAK_LIMIT_MB, peak_mb


def test_json_checks_read_brackets_in_strings_as_text() -> None:
    """Depth and counts are taken with strings blanked out: a name full of brackets and commas is text."""
    check_json_text(b'{"[[[[[[[[[[[[[[[[[[[[,,,,": "{{{{{{{{{{{{{{{{{{{{\\"[[[["}', "header")
    with pytest.raises(CheckpointError, match="nested over 16 deep"):
        check_json_text(b'{"a": ' + b"[" * 17 + b"]" * 17 + b"}", "header")
    check_json_text(b'{"a": ' + b"[" * 15 + b"]" * 15 + b"}", "header")
    with pytest.raises(CheckpointError, match="over 1,048,576 JSON values"):
        check_json_text(b"[" + b"0," * MAX_HEADER_ITEMS + b"0]", "header")


# ------------------------------------------------------------------------------------------ esrkit metadata


@needs_proc
@pytest.mark.parametrize("hparams", [{"num_feat": 10_000_000}, {"num_feat": 60_000, "num_block": 1}],
                         ids=["over-the-range", "in-range-but-not-the-file"])
def test_metadata_describing_a_huge_model_is_refused_in_bounded_memory(tmp_path: Path, hparams: dict) -> None:
    """The issue's 356-byte file: metadata saying ``num_feat: 10000000`` built a 22.8 GB MSRResNet before any
    shape was compared (the kernel killed it). A width under the range cap is built on the meta device and
    compared with the file's single tensor: 0.5 TB described, refused without allocating it."""
    path = _esrkit_file(tmp_path / "bomb.safetensors", {"name": "msrresnet", "scale": 4, "hparams": hparams})
    assert path.stat().st_size < 400
    outcome, peak_mb = load_in_child(path)
    assert outcome.startswith(f"{path}: ") and ("num_feat=10000000" in outcome or "elements" in outcome), outcome
    assert peak_mb < PEAK_LIMIT_MB, peak_mb


@pytest.mark.parametrize(("meta", "message"), [
    ({"name": "msrresnet", "scale": 4, "hparams": {"num_feat": -5}}, "num_feat=-5 is out of range"),
    ({"name": "msrresnet", "scale": 4, "hparams": [1, 2]}, "hparams [1, 2] is not an object"),
    ({"name": "msrresnet", "scale": 4, "hparams": [[1, 2]]}, "hparams [[1, 2]] is not an object"),
    ({"name": ["msrresnet"], "scale": 4}, "name ['msrresnet'] is not a string"),
    ({"name": "msresnet", "scale": 4}, "unknown model 'msresnet'; did you mean msrresnet"),
    ({"name": "msrresnet", "scale": "4"}, "scale '4' is not one of the scales of model 'msrresnet', [2, 3, 4]"),
    ({"name": "msrresnet", "scale": True}, "scale True is not one of"),
    ({"name": "msrresnet", "scale": 7}, "scale 7 is not one of"),
    ({"name": "msrresnet", "scale": 4, "form": []}, "form [] is not 'train' or 'deploy'"),
    ({"name": "msrresnet", "scale": 4, "hparams": {"num_feat": "wide"}}, "num_feat='wide' is a str, not int"),
    ({"name": "msrresnet", "scale": 4, "hparams": {"num_feat": 1.5}}, "num_feat=1.5 is a float, not int"),
    ({"name": "msrresnet", "scale": 4, "hparams": {"num_feat": True}}, "num_feat=True is a bool, not int"),
    ({"name": "msrresnet", "scale": 4, "hparams": {"img_range": float("inf")}}, "img_range=inf is out of range"),
    ({"name": "msrresnet", "scale": 4, "hparams": {"width": 4}}, "has no hyper-parameter 'width'"),
    ({"name": "msrresnet", "scale": 4, "hparams": {"num_block": 60_000}}, "would build over 536 modules"),
    ({"name": "imdn", "scale": 4, "hparams": {"distill_rate": 5.0}}, "'imdn' ×4 (train) cannot be built"),
    (["msrresnet", 4], "esrkit metadata is a list, not an object"),
    ({"scale": 4}, "incomplete esrkit metadata (no name)"),
])
def test_bad_metadata_is_one_checkpoint_error(tmp_path: Path, meta: object, message: str) -> None:
    """Every field of the metadata held to its type and range, the hyper-parameters to the family's signature:
    RuntimeError (a negative width inside torch), TypeError (``dict([[1, 2]])`` keyed by an int, a list as a
    registry key) and 22 GB allocations before, one line naming the file and the field now."""
    path = _esrkit_file(tmp_path / "meta.safetensors", meta)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    text = str(info.value)
    assert text.startswith(f"{path}: ") and message in text and len(text.splitlines()) == 1, text


def test_metadata_must_describe_exactly_the_tensors_in_the_file(tmp_path: Path) -> None:
    """Valid metadata of another size than the weights: the meta-device build is compared with the file."""
    model = create_model("msrresnet", scale=2, num_feat=4, num_block=1)
    path = _esrkit_file(tmp_path / "m.safetensors", {"name": "msrresnet", "scale": 2,
                                                     "hparams": {"num_feat": 8, "num_block": 1}},
                        {k: v.contiguous() for k, v in model.state_dict().items()})
    described = sum(p.numel() for p in create_model("msrresnet", scale=2, num_feat=8, num_block=1).parameters())
    held = sum(p.numel() for p in model.parameters())
    with pytest.raises(CheckpointError, match=rf"does not fit \({described:,} parameters described, {held:,} in the "
                                              r"file\): shape: conv_first\.weight"):
        load_checkpoint(path)
    good = _esrkit_file(tmp_path / "good.safetensors", {"name": "msrresnet", "scale": 2,
                                                       "hparams": {"num_feat": 4, "num_block": 1}},
                        {k: v.contiguous() for k, v in model.state_dict().items()})
    assert sum(p.numel() for p in load_checkpoint(good).parameters()) == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("command", ["evaluate", "upscale", "convert"])
def test_bad_metadata_on_the_command_line_exits_2_with_one_line(tmp_path: Path, command: str,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = _esrkit_file(tmp_path / "neg.safetensors", {"name": "msrresnet", "scale": 4, "hparams": {"num_feat": -5}})
    data = tmp_path / "data"
    data.mkdir()
    write_image(data / "a.png", np.zeros((8, 8, 3), dtype=np.uint8))
    args = {"evaluate": ["evaluate", "--weights", str(path), "--data", str(data), "--device", "cpu"],
            "upscale": ["upscale", str(data / "a.png"), "-o", str(tmp_path / "out"), "--weights", str(path),
                        "--device", "cpu"],
            "convert": ["convert", str(path), str(tmp_path / "out.safetensors")]}[command]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and "num_feat=-5" in err, err
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.safetensors").exists()


def test_the_meta_build_stops_at_a_budget_set_by_the_files_tensors(tmp_path: Path) -> None:
    """The metadata fuzz target's slow units: NoahESR metadata with 135 blocks and a 107× ECB width over the 80
    tensors of a one-block model. Every module the meta build registers costs about a millisecond on a busy
    machine, and the budget was 64 per tensor plus 1024 (6,144 here, 6-18 s per input); it is 24 per tensor plus
    512 now (ANUNet's train form, the zoo's most branched, registers 16.4 per deploy tensor)."""
    model = create_model("noahesr", scale=2, num_feat=4, num_block=1, esa_channels=4)
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    hparams = {"num_feat": 4, "num_block": 135, "esa_channels": 4, "depth_multiplier": 107}
    path = _esrkit_file(tmp_path / "noah.safetensors", {"name": "noahesr", "scale": 2, "hparams": hparams}, tensors)
    with pytest.raises(CheckpointError, match=f"would build over {24 * len(tensors) + 512:,} modules and tensors "
                                              f"for the {len(tensors)} tensors the file holds"):
        load_checkpoint(path)
