"""The ``.safetensors`` checks: the JSON header's declared shapes and offsets against the file, before it is mapped.

safetensors maps the file by the offsets in its JSON header, and the header's first 8 bytes give its length; a
truncated file or one declaring a 10¹²-element tensor is refused here, naming the tensor, before the library
(or torch) allocates anything.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..errors import CheckpointError
from .common import MAX_CHECKPOINT_ELEMENTS

__all__ = ["inspect_safetensors"]

_SAFETENSORS_HEADER_MAX = 100_000_000  # the safetensors library's own bound on the JSON header
# bytes per element of the safetensors dtypes
_SAFETENSORS_ITEMSIZE = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4, "U16": 2,
    "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "C64": 8,
}


def inspect_safetensors(path: str | Path) -> None:
    """Refuse a safetensors file whose header is malformed or whose tensors' bytes are not all in the file
    (truncation), naming the first tensor concerned; the safetensors library validates the rest."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path}: {size} bytes, too short for a safetensors file (truncated?)")
        length = int.from_bytes(head, "little")
        if length > min(size - 8, _SAFETENSORS_HEADER_MAX):
            raise CheckpointError(f"{path}: safetensors header claims {length:,} bytes but the file has {size:,} "
                                  "(truncated or not safetensors)")
        try:
            header = json.loads(fh.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{path}: corrupt safetensors header ({exc})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: corrupt safetensors header (not a JSON object)")
    data_bytes = size - 8 - length
    total = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = entry["dtype"], [int(s) for s in entry["shape"]], entry["data_offsets"]
            numel = math.prod(shape)
            if any(s < 0 for s in shape):
                raise ValueError(f"negative size in {shape}")
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: tensor {name!r} has a malformed header entry ({exc})") from None
        total += numel
        if total > MAX_CHECKPOINT_ELEMENTS:
            raise CheckpointError(f"{path}: tensor {name!r} declares shape {tuple(shape)} ({numel:,} elements), "
                                  f"taking the checkpoint past {MAX_CHECKPOINT_ELEMENTS:,} elements")
        if not (isinstance(begin, int) and isinstance(end, int)) or not 0 <= begin <= end:
            raise CheckpointError(f"{path}: tensor {name!r} has invalid data offsets {entry['data_offsets']}")
        if end > data_bytes:
            raise CheckpointError(f"{path}: tensor {name!r} needs bytes {begin:,}–{end:,} of the data but the file "
                                  f"holds {max(data_bytes, 0):,} (truncated)")
        itemsize = _SAFETENSORS_ITEMSIZE.get(str(dtype))
        if itemsize is not None and numel * itemsize != end - begin:
            raise CheckpointError(f"{path}: tensor {name!r} is {tuple(shape)} {dtype} ({numel * itemsize:,} bytes) "
                                  f"but its data spans {end - begin:,} bytes")
