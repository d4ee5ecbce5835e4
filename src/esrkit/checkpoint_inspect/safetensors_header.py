"""The ``.safetensors`` checks: the JSON header's size, nesting and declared shapes and offsets against the file,
before it is parsed or mapped.

safetensors maps the file by the offsets in its JSON header, whose length is the file's first 8 bytes; a
truncated file or one declaring a 10¹²-element tensor is refused here, naming the tensor, before the library (or
torch) allocates anything. The header itself is bounded before :func:`json.loads` sees it, because parsing is
where a hostile header spends memory and stack: a 100 MB header reached 2.6 GB, one nested 200,000 deep raised
RecursionError. :func:`check_json_text` holds a JSON text to a size, a nesting depth and a count of containers
and values, with byte-level scans that build nothing; the esrkit metadata (JSON inside a header string) goes
through it too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..errors import CheckpointError
from .common import MAX_CHECKPOINT_ELEMENTS, human_size

__all__ = ["MAX_HEADER_DEPTH", "MAX_HEADER_ITEMS", "MAX_SAFETENSORS_HEADER_BYTES", "check_json_text",
           "inspect_safetensors", "parse_json_text"]

# A header holds ~80 bytes per tensor (name, dtype, shape, offsets): 16 MiB is room for ~200,000 tensors, and an
# SR network has a few hundred. (The safetensors library's own bound is 100 MB, which parses to 2.6 GB in Python.)
MAX_SAFETENSORS_HEADER_BYTES = 16 << 20
# The format is 3 deep ({name: {"shape": [...]}}); esrkit's metadata, a JSON text in a header string, is ~4 deep.
MAX_HEADER_DEPTH = 16
# Containers ({ and [) plus values (commas) in one JSON text: a tensor's entry has ~3 and ~8. 2²⁰ bounds what
# the parsed text can cost (~0.1 GB at worst: a million small strings or dicts) whatever its bytes hold.
MAX_HEADER_ITEMS = 1 << 20

_STRINGS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')  # JSON strings, escapes included (linear: no backtracking)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# bytes per element of the safetensors dtypes
_SAFETENSORS_ITEMSIZE = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4, "U16": 2,
    "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "C64": 8,
}


def check_json_text(raw: bytes, what: str, max_bytes: int = MAX_SAFETENSORS_HEADER_BYTES) -> None:
    """Refuse a JSON text (``what`` names it in the message) over ``max_bytes``, nested deeper than
    :data:`MAX_HEADER_DEPTH` or holding more than :data:`MAX_HEADER_ITEMS` containers and values, before it is
    parsed: strings are blanked out first (a bracket or comma inside one is text), then brackets and commas are
    counted, and the depth is followed over the brackets alone."""
    if len(raw) > max_bytes:
        raise CheckpointError(f"{what} is {human_size(len(raw))}, over the {human_size(max_bytes)} a model's "
                              "description could need; refused before parsing")
    skeleton = _STRINGS.sub(b'""', raw)
    items = skeleton.count(b"{") + skeleton.count(b"[") + skeleton.count(b",")
    if items > MAX_HEADER_ITEMS:
        raise CheckpointError(f"{what} holds over {MAX_HEADER_ITEMS:,} JSON values; refused before parsing")
    depth = deepest = 0
    for byte in skeleton.translate(None, _NOT_BRACKETS):  # at most MAX_HEADER_ITEMS openers, so a short loop
        depth += 1 if byte in b"[{" else -1
        deepest = max(deepest, depth)
        if deepest > MAX_HEADER_DEPTH:
            raise CheckpointError(f"{what} is nested over {MAX_HEADER_DEPTH} deep; refused before parsing")


def parse_json_text(raw: bytes | str, what: str, max_bytes: int = MAX_SAFETENSORS_HEADER_BYTES) -> Any:
    """:func:`check_json_text`, then :func:`json.loads`; every way the text can fail is a CheckpointError naming
    ``what`` (a number past Python's 4300-digit limit is a ValueError, an infinite one parses as a float)."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    check_json_text(data, what, max_bytes)
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise CheckpointError(f"{what} is not valid JSON ({str(exc).splitlines()[0][:160]})") from None


def _numel(shape: Any) -> int:
    """The element count of a declared shape, a list of non-negative integers (a float such as 1e999, which JSON
    reads as infinity, is named rather than converted); past the element cap the count stops growing, so a long
    list of large sizes costs no big-integer arithmetic."""
    if not isinstance(shape, list) or not all(type(s) is int for s in shape):
        raise ValueError(f"shape {str(shape)[:80]} is not a list of integers")
    if any(s < 0 for s in shape):
        raise ValueError(f"negative size in {str(shape)[:80]}")
    if 0 in shape:
        return 0
    numel = 1
    for s in shape:
        numel = min(numel * min(s, MAX_CHECKPOINT_ELEMENTS + 1), MAX_CHECKPOINT_ELEMENTS + 1)
    return numel


def _short(value: Any) -> str:
    """A name or value from the header for a one-line message (a hostile one may be megabytes long)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def inspect_safetensors(path: str | Path) -> dict[str, str]:
    """Refuse a safetensors file whose header is too large, too deep, malformed, or whose tensors' bytes are not
    all in the file (truncation), naming the first tensor concerned; the safetensors library validates the rest.
    Returns the header's ``__metadata__`` (string keys to string values, as the format requires; {} if none)."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path}: {size} bytes, too short for a safetensors file (truncated?)")
        length = int.from_bytes(head, "little")
        if length > size - 8:
            raise CheckpointError(f"{path}: safetensors header claims {length:,} bytes but the file has {size:,} "
                                  "(truncated or not safetensors)")
        if length > MAX_SAFETENSORS_HEADER_BYTES:  # before reading it: the length is all we need to refuse
            raise CheckpointError(f"{path}: safetensors header is {human_size(length)}, over the "
                                  f"{human_size(MAX_SAFETENSORS_HEADER_BYTES)} a model's tensors could need; "
                                  "refused before parsing")
        header = parse_json_text(fh.read(length), f"{path}: safetensors header")
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: corrupt safetensors header (not a JSON object)")
    metadata = header.get("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError(f"{path}: corrupt safetensors header (__metadata__ is not an object of strings)")
    data_bytes = size - 8 - length
    total = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        label = _short(name)
        try:
            dtype, shape, (begin, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
            numel = _numel(shape)
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: tensor {label} has a malformed header entry ({exc})") from None
        total += numel
        if total > MAX_CHECKPOINT_ELEMENTS:
            raise CheckpointError(f"{path}: tensor {label} declares shape {_short(shape)}, taking the checkpoint "
                                  f"past {MAX_CHECKPOINT_ELEMENTS:,} elements")
        if not (isinstance(begin, int) and isinstance(end, int)) or not 0 <= begin <= end:
            raise CheckpointError(f"{path}: tensor {label} has invalid data offsets {_short(entry['data_offsets'])}")
        if end > data_bytes:
            raise CheckpointError(f"{path}: tensor {label} needs bytes {begin:,}–{end:,} of the data but the file "
                                  f"holds {max(data_bytes, 0):,} (truncated)")
        itemsize = _SAFETENSORS_ITEMSIZE.get(str(dtype))
        if itemsize is not None and numel * itemsize != end - begin:
            raise CheckpointError(f"{path}: tensor {label} is {_short(shape)} {dtype} ({numel * itemsize:,} bytes) "
                                  f"but its data spans {end - begin:,} bytes")
    return metadata
