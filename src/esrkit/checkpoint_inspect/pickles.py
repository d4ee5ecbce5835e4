"""The ``.pth`` checks: what a PyTorch checkpoint's pickles declare, compared with the file, before torch loads it.

A checkpoint says how big its tensors are before it holds their bytes, and torch believes it: the legacy format
allocates every storage at the size its pickle declares and only then reads the bytes; the zip format wraps each
``data/N`` record in a storage of the *declared* size. A few kilobytes can therefore declare a 10¹²-element (4 TB)
tensor. The pickle itself costs memory too: every opcode may build an object, and a zip record compresses a run
of one-byte opcodes a thousandfold. :func:`inspect_pth` reads only the pickles and compares every declared size
with the bytes the file really holds, so a truncated, corrupt or hostile file is refused with a
:class:`~esrkit.errors.CheckpointError` naming the file and the tensor, in memory near the file's own size.

How the pickle is read without trusting it: first :mod:`pickletools` walks its opcodes, checking every declared
length against the bytes that follow and counting the opcodes; then a :class:`pickle.Unpickler` whose
``find_class`` returns an inert stand-in for every global the pickle names (nothing is imported, nothing is called
but the stand-in, which records its arguments) and whose ``persistent_load`` records each storage's declared type
and element count. The stand-ins rebuild the object tree of dicts and ``_rebuild_tensor_v2(storage, offset, size,
stride, ...)`` calls, from which each tensor's name, shape and storage follow. The real load is still
``torch.load(weights_only=True)``; this is a size check in front of it, not a replacement.

Limits, documented where they are enforced:

* every storage's declared bytes must be present in the file (its zip record, or the legacy format's byte count
  and the bytes after it), and every tensor must fit in its storage;
* :data:`~esrkit.checkpoint_inspect.common.MAX_CHECKPOINT_ELEMENTS` caps the elements of all tensors together;
* a pickle above :data:`MAX_PICKLE_BYTES` (64 MiB) is refused: a state dict's pickle holds names and shapes only,
  tens of kilobytes for an SR network;
* a pickle of more than :data:`MAX_PICKLE_OPCODES` opcodes, or naming more than :data:`MAX_PICKLE_GLOBALS`
  distinct globals, is refused before it is unpickled (see there why lengths alone do not bound memory).
"""

from __future__ import annotations

import io
import math
import pickle
import pickletools
import struct
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import torch

from ..errors import CheckpointError
from .common import MAX_CHECKPOINT_ELEMENTS, human_size

__all__ = ["MAX_PICKLE_BYTES", "MAX_PICKLE_GLOBALS", "MAX_PICKLE_OPCODES", "inspect_pth"]

MAX_PICKLE_BYTES = 64 << 20
# Every opcode pushes at most one object, and an unpickler keeps them all: a run of EMPTY_SET opcodes costs 216
# bytes of memory per byte of pickle, a run of MARKs a list each, and a zip record deflates such a run about a
# thousandfold, so the 64 MiB cap on the pickle's bytes alone admitted 16 KB files that unpickled to 4 GB. A
# state dict needs some 30 opcodes per tensor (name, persistent id, offset, shape, stride, flags), an SR network
# a few hundred tensors: 2¹⁹ opcodes is room for ~17,000 tensors, and holds any pickle's objects to ~0.2 GB.
MAX_PICKLE_OPCODES = 1 << 19
# Each distinct global becomes a class (a kilobyte or more) in the inert unpickler; a state dict names a handful.
MAX_PICKLE_GLOBALS = 1024
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER, first pickle of the legacy format

# bytes per element of the storage classes torch pickles (torch.FloatStorage, ...)
_STORAGE_ITEMSIZE = {
    "DoubleStorage": 8, "FloatStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2, "LongStorage": 8,
    "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1, "BoolStorage": 1,
    "ComplexDoubleStorage": 16, "ComplexFloatStorage": 8, "UntypedStorage": 1, "QInt8Storage": 1,
    "QUInt8Storage": 1, "QInt32Storage": 4,
}
_TENSOR_REBUILDS = {"_rebuild_tensor", "_rebuild_tensor_v2"}


# ------------------------------------------------------------------------------------------- inert unpickling


class _Inert:
    """Stands for a global named by the pickle: records how it was called and what was stored in it."""

    where: tuple[str, str] = ("", "")

    def __new__(cls, *args: Any, **kwargs: Any) -> _Inert:
        obj = super().__new__(cls)
        obj.args = args
        obj.items = {}
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        self.items[key] = value

    def __setstate__(self, state: Any) -> None:
        self.items["__state__"] = state

    def append(self, value: Any) -> None:
        self.items[len(self.items)] = value

    def extend(self, values: Any) -> None:
        for value in values:
            self.append(value)


class _Storage:
    """A storage as a persistent id declares it: its key, element size (None: unknown type) and element count."""

    def __init__(self, key: str, type_name: str, itemsize: int | None, numel: int) -> None:
        self.key, self.type_name, self.itemsize, self.numel = key, type_name, itemsize, numel

    @property
    def nbytes(self) -> int | None:
        return None if self.itemsize is None else self.numel * self.itemsize


def _text(value: Any) -> str:
    """A pickled name: str, or bytes in pickles written by Python 2 (as torch's own loader decodes them)."""
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)


def _storage_itemsize(name: str) -> int | None:
    if name in _STORAGE_ITEMSIZE:
        return _STORAGE_ITEMSIZE[name]
    if not name.endswith("Storage"):  # only ever look up torch's own storage classes
        return None
    dtype = getattr(getattr(torch, name, None), "dtype", None)
    return dtype.itemsize if isinstance(dtype, torch.dtype) else None


class _InertUnpickler(pickle._Unpickler):  # type: ignore[misc,name-defined]
    """Unpickles the declarations only: every global becomes a :class:`_Inert` subclass, every storage a
    :class:`_Storage` (see the module docstring).

    Built on the pure-Python unpickler, whose memo is a dict: the C one sizes its memo array by the largest index a
    ``LONG_BINPUT`` names, so 14 bytes asking for index 2³¹ allocate and zero gigabytes (found by ``fuzz/``)."""

    def __init__(self, fh: BinaryIO) -> None:
        super().__init__(fh)
        self.storages: dict[str, _Storage] = {}
        self._classes: dict[tuple[str, str], type[_Inert]] = {}

    def find_class(self, module: str, name: str) -> type[_Inert]:
        key = (module, name)
        if key not in self._classes:
            if len(self._classes) >= MAX_PICKLE_GLOBALS:
                raise CheckpointError(f"its pickle names over {MAX_PICKLE_GLOBALS:,} distinct globals where a "
                                      "state dict names a handful")
            self._classes[key] = type(f"Inert_{name}", (_Inert,), {"where": key})
        return self._classes[key]

    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, tuple) and len(pid) >= 5 and _text(pid[0]) == "storage":
            storage_type, key, numel = pid[1], _text(pid[2]), pid[4]
            name = storage_type.where[1] if isinstance(storage_type, type) and issubclass(storage_type, _Inert) \
                else str(storage_type)
            if not isinstance(numel, int) or numel < 0:
                raise CheckpointError(f"storage {key} declares {numel!r} elements")
            found = self.storages.get(key)
            if found is None or numel > found.numel:
                self.storages[key] = _Storage(key, name, _storage_itemsize(name), numel)
            return self.storages[key]
        return None  # anything else (e.g. a whole module's source): torch.load(weights_only=True) refuses it


def _ints(value: Any) -> tuple[int, ...] | None:
    """A shape or stride as pickled: a tuple, or ``torch.Size((...))``."""
    if isinstance(value, _Inert) and value.args:
        value = value.args[0]
    if isinstance(value, (tuple, list)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return tuple(value)
    return None


def _tensors(root: Any) -> Iterator[tuple[str, _Storage, int, tuple[int, ...], tuple[int, ...]]]:
    """``(name, storage, offset, size, stride)`` of every tensor in the inert tree, names joined by dots;
    iterative, so a deeply nested or self-referencing pickle cannot exhaust the stack."""
    stack: list[tuple[str, Any]] = [("", root)]
    seen: set[int] = set()
    while stack:
        name, obj = stack.pop()
        if id(obj) in seen or isinstance(obj, (str, bytes, int, float, _Storage)) or obj is None:
            continue
        seen.add(id(obj))
        if isinstance(obj, _Inert) and obj.where[1] in _TENSOR_REBUILDS and len(obj.args) >= 4:
            storage, offset, size, stride = obj.args[:4]
            size_t, stride_t = _ints(size), _ints(stride)
            if isinstance(storage, _Storage) and isinstance(offset, int) and size_t is not None \
                    and stride_t is not None:
                yield name or "<tensor>", storage, offset, size_t, stride_t
            continue
        children: list[tuple[Any, Any]] = []
        if isinstance(obj, Mapping):
            children = list(obj.items())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            children = [(None, v) for v in obj]
        elif isinstance(obj, _Inert):
            children = [(None, v) for v in obj.args] + [(k if k != "__state__" else None, v)
                                                         for k, v in obj.items.items()]
        for key, child in reversed(children):
            child_name = name if key is None or not isinstance(key, (str, int)) else \
                (f"{name}.{key}" if name else str(key))
            stack.append((child_name, child))


def _check_declarations(path: Path, root: Any, storages: Mapping[str, _Storage],
                        held: Mapping[str, int | None]) -> None:
    """Every storage's declared bytes are in the file (``held[key]``; None: not known) and every tensor fits in
    its storage, and all of them together stay under :data:`MAX_CHECKPOINT_ELEMENTS`."""
    users: dict[str, str] = {}
    total = 0
    for name, storage, offset, size, stride in _tensors(root):
        users.setdefault(storage.key, name)
        if any(s < 0 for s in size) or offset < 0:
            raise CheckpointError(f"{path}: tensor {name!r} declares a negative size {size} or offset {offset}")
        numel = math.prod(size)
        total += numel
        if total > MAX_CHECKPOINT_ELEMENTS:
            raise CheckpointError(f"{path}: tensor {name!r} declares shape {size} ({numel:,} elements), taking the "
                                  f"checkpoint past {MAX_CHECKPOINT_ELEMENTS:,} elements; refused before loading "
                                  "(a corrupt or hostile file: no SR network is this large)")
        if numel:
            extent = offset + sum((s - 1) * abs(st) for s, st in zip(size, stride, strict=False)) + 1
            if extent > storage.numel:
                raise CheckpointError(f"{path}: tensor {name!r} of shape {size} needs {extent:,} elements but its "
                                      f"storage declares {storage.numel:,}")
    for key, storage in storages.items():
        name = users.get(key, f"storage {key}")
        if key not in held:
            raise CheckpointError(f"{path}: tensor {name!r}: its data (record {key}) is missing from the file")
        have, want = held[key], storage.nbytes
        if have is not None and want is not None and want > have:
            raise CheckpointError(f"{path}: tensor {name!r} declares {storage.numel:,} elements ({human_size(want)} of "
                                  f"{storage.type_name}) but the file holds {human_size(have)} for it; refused before "
                                  "loading (truncated, corrupt or hostile)")


def _walk(fh: BinaryIO) -> None:
    """Walk one pickle's opcodes (from ``fh``'s position to its STOP, then back) so that a length-prefixed
    argument (``BINUNICODE``, ``BINBYTES``, ``FRAME`` …) longer than what follows, more than
    :data:`MAX_PICKLE_OPCODES` opcodes or more than :data:`MAX_PICKLE_BYTES` is an error here, before any object
    is built.

    Lengths: the pure-Python unpickler below takes a short read as the whole string and goes on, and the C
    unpickler that ``torch.load`` runs asks the file for the declared length first: a file object's ``read(n)``
    allocates ``n`` bytes before it knows how many there are, so 500 bytes declaring a few 0.7 GB strings made
    torch.load peak at 14 GB (found by ``fuzz/``). :mod:`pickletools` checks every declared length against the
    bytes it gets. Counts: see :data:`MAX_PICKLE_OPCODES` (a 16 KB zip of EMPTY_SET opcodes peaked at 4 GB)."""
    start = fh.tell()
    try:
        for count, (_, _, position) in enumerate(pickletools.genops(fh), 1):
            if count > MAX_PICKLE_OPCODES:
                raise CheckpointError(f"its pickle has over {MAX_PICKLE_OPCODES:,} opcodes (objects to build) "
                                      "where a state dict needs some 30 per tensor; refused before unpickling")
            if position is not None and position - start > MAX_PICKLE_BYTES:
                raise CheckpointError(f"a pickle over {human_size(MAX_PICKLE_BYTES)}, more than a state dict's "
                                      "names and shapes could need")
    except CheckpointError:
        raise
    except ValueError as exc:  # "expected N bytes in a unicodestring4, but only M remain", bad opcodes, …
        raise CheckpointError(f"corrupt pickle ({str(exc).splitlines()[0][:160]})") from None
    fh.seek(start)


def _unpickle(fh: BinaryIO) -> tuple[Any, dict[str, _Storage]]:
    _walk(fh)
    unpickler = _InertUnpickler(fh)
    return unpickler.load(), unpickler.storages


# ------------------------------------------------------------------------------------------------ the checks


def inspect_pth(path: str | Path) -> None:
    """Refuse a PyTorch checkpoint (zip or legacy format) whose declared tensors the file cannot hold, without
    allocating them; anything else about the file is left to ``torch.load(weights_only=True)``."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
            if magic == b"PK\x03\x04":  # how torch.load tells the zip format (not zipfile.is_zipfile's tail scan)
                _inspect_zip(path)
                return
            if magic[:1] != b"\x80":
                return  # not a pickle of protocol 2+ either: torch.load says what it is
            fh.seek(0)
            _inspect_legacy(path, fh)
    except CheckpointError as exc:
        if str(path) in str(exc):
            raise
        raise CheckpointError(f"{path}: {exc}") from None
    except (pickle.UnpicklingError, EOFError, struct.error, zipfile.BadZipFile, OSError, ValueError, TypeError,
            AttributeError, IndexError, KeyError, RecursionError, MemoryError, OverflowError,
            RuntimeError, zlib.error) as exc:  # zipfile: NotImplementedError (version, method), encrypted, bad deflate
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({text})") from None


def _inspect_zip(path: Path) -> None:
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        pickles = [i for i in infos if i.filename.endswith("/data.pkl") or i.filename == "data.pkl"]
        if not pickles:
            return  # not torch's layout: torch.load says so
        info = min(pickles, key=lambda i: i.filename.count("/"))
        if info.file_size > MAX_PICKLE_BYTES:
            raise CheckpointError(f"{path}: its pickle ({info.filename}) is {human_size(info.file_size)}, over the "
                                  f"{human_size(MAX_PICKLE_BYTES)} a state dict's names and shapes could need")
        prefix = info.filename[: -len("data.pkl")]
        with archive.open(info) as raw:
            data = raw.read(MAX_PICKLE_BYTES + 1)
        if len(data) > MAX_PICKLE_BYTES:
            raise CheckpointError(f"{path}: its pickle expands past {human_size(MAX_PICKLE_BYTES)}")
        root, storages = _unpickle(io.BytesIO(data))
        records = {i.filename[len(prefix) + len("data/"):]: i.file_size for i in infos
                   if i.filename.startswith(prefix + "data/")}
        _check_declarations(path, root, storages, records)


def _inspect_legacy(path: Path, fh: BinaryIO) -> None:
    """The pre-1.6 format: magic, protocol and system-info pickles, the object pickle, the storage-key list
    pickle, then per key an int64 element count and the raw bytes."""
    size = path.stat().st_size
    magic, _ = _unpickle(fh)
    if magic != _LEGACY_MAGIC:
        return  # some other pickle: torch.load says what it is
    _unpickle(fh)  # protocol version
    _unpickle(fh)  # system info (byte order, type sizes)
    root, storages = _unpickle(fh)
    keys, _ = _unpickle(fh)
    if not isinstance(keys, list):
        raise CheckpointError("corrupt storage list")
    held: dict[str, int | None] = {}
    for key in map(_text, keys):
        storage = storages.get(key)
        head = fh.read(8)
        if len(head) < 8:
            break  # truncated: the storages from here on are missing (reported below)
        count = struct.unpack("<q", head)[0]
        itemsize = storage.itemsize if storage is not None else None
        if count < 0:
            raise CheckpointError(f"storage {key} stores a negative element count ({count})")
        present = max(0, min(count * (itemsize or 1), size - fh.tell()))  # what the file really has
        held[key] = present if itemsize is not None else None
        fh.seek(present, 1)
    _check_declarations(path, root, storages, held)
