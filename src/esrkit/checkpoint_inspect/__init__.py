"""Checking a checkpoint before anything it declares is allocated: sizes, counts and hyper-parameters.

A checkpoint describes itself (tensor shapes, storage sizes, a pickle's objects, a JSON header, esrkit's model
metadata) before it holds the bytes, and every loader believes the description. The checks here read only the
description and compare it with the file, so a truncated, corrupt or hostile file is refused with a one-line
:class:`~esrkit.errors.CheckpointError` naming the file, in memory near the file's own size. One module per
surface:

* :mod:`.pickles`: ``.pth`` (zip and legacy), the pickles' declared storages, lengths and opcode counts;
* :mod:`.safetensors_header`: ``.safetensors``, the JSON header's shapes and offsets;
* :mod:`.common`: the element cap they share and the NaN/Inf check on loaded tensors.
"""

from __future__ import annotations

from .common import MAX_CHECKPOINT_ELEMENTS, check_finite, human_size
from .pickles import MAX_PICKLE_BYTES, MAX_PICKLE_GLOBALS, MAX_PICKLE_OPCODES, inspect_pth
from .safetensors_header import inspect_safetensors

__all__ = ["MAX_CHECKPOINT_ELEMENTS", "MAX_PICKLE_BYTES", "MAX_PICKLE_GLOBALS", "MAX_PICKLE_OPCODES", "check_finite",
           "human_size", "inspect_pth", "inspect_safetensors"]
