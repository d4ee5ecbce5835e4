"""Checking a checkpoint before anything it declares is allocated: sizes, counts and hyper-parameters.

A checkpoint describes itself (tensor shapes, storage sizes, a pickle's objects, a JSON header, esrkit's model
metadata) before it holds the bytes, and every loader believes the description. The checks here read only the
description and compare it with the file, so a truncated, corrupt or hostile file is refused with a one-line
:class:`~esrkit.errors.CheckpointError` naming the file, in memory near the file's own size. One module per
surface:

* :mod:`.pickles`: ``.pth`` (zip and legacy), the pickles' declared storages, lengths and opcode counts;
* :mod:`.safetensors_header`: ``.safetensors``, the JSON header's size and nesting, then its shapes and offsets;
* :mod:`.metadata`: esrkit's model description (name, scale, form, hyper-parameters), and the model any
  description names built on the ``meta`` device and compared with the file's tensors before a real one is;
* :mod:`.common`: the element cap they share and the NaN/Inf check on loaded tensors.
"""

from __future__ import annotations

from .common import MAX_CHECKPOINT_ELEMENTS, check_finite, human_size
from .metadata import MAX_BUILD_REGISTRATIONS, check_buildable, config_from_metadata, state_diff
from .pickles import MAX_PICKLE_BYTES, MAX_PICKLE_GLOBALS, MAX_PICKLE_OPCODES, inspect_pth
from .safetensors_header import (
    MAX_HEADER_DEPTH,
    MAX_HEADER_ITEMS,
    MAX_SAFETENSORS_HEADER_BYTES,
    check_json_text,
    inspect_safetensors,
    parse_json_text,
)

__all__ = [
    "MAX_BUILD_REGISTRATIONS", "MAX_CHECKPOINT_ELEMENTS", "MAX_HEADER_DEPTH", "MAX_HEADER_ITEMS", "MAX_PICKLE_BYTES",
    "MAX_PICKLE_GLOBALS", "MAX_PICKLE_OPCODES", "MAX_SAFETENSORS_HEADER_BYTES", "check_buildable", "check_finite",
    "check_json_text", "config_from_metadata", "human_size", "inspect_pth", "inspect_safetensors",
    "parse_json_text", "state_diff",
]
