"""Fuzz target: the safetensors header before it is parsed (:mod:`esrkit.checkpoint_inspect.safetensors_header`).

A header is the file's first 8 bytes (its length) and that many bytes of JSON. Byte mutation of real files keeps
headers small and shallow, so here the bytes are read with :class:`atheris.FuzzedDataProvider` as a recipe that
can make them large or deep in a few bytes: JSON built from fragments (tensor entries, ``__metadata__`` with an
esrkit description, numbers such as ``1e999``, ``-0``, 5000-digit integers, escapes, brackets inside strings),
some fragments repeated thousands of times or nested hundreds deep, and a length field that is right, short, long
or absurd. Contract: a described model or an :class:`~esrkit.errors.EsrkitError`, within libFuzzer's
``-rss_limit_mb`` and ``-timeout``.
"""

from __future__ import annotations

import hashlib
import json

import _checkpoints
import _harness
import atheris

with atheris.instrument_imports(include=["esrkit"]):
    from esrkit.checkpoints import load_checkpoint
    from esrkit.layouts import known_layouts

MAX_LEN = 1024
_PATH = _harness.scratch_dir() / "header.safetensors"
known_layouts()  # warm the cache of every layout (and torch's meta-device imports) so it is not a slow input
_META = json.dumps({"name": "msrresnet", "scale": 2, "hparams": {"num_feat": 4, "num_block": 1}, "form": "train"})
ATOMS = (b"0", b"1", b"-1", b"1e999", b"-0", b"2.5", b"1" * 5000, b"true", b"null", b'""', b'"F32"', b'"a\\"["',
         b'"\\ud800"', b"[]", b"{}", b'"[{,"', b"NaN", b"Infinity")
ENTRY = b'"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}'
REPEATS = (1, 2, 17, 100, 1000, 100_000, 600_000)
BUDGET = 24 << 20  # bytes one fragment may grow to: past the 16 MiB header cap, short of the harness's memory


def _pick(fdp: atheris.FuzzedDataProvider, items: tuple) -> bytes:
    return items[fdp.ConsumeIntInRange(0, len(items) - 1)]


def _json(fdp: atheris.FuzzedDataProvider, depth: int = 0) -> bytes:
    kind = fdp.ConsumeIntInRange(0, 6)
    if kind <= 1 or depth > 6:
        return _pick(fdp, ATOMS)
    if kind == 2:  # a deep nest, of arrays or objects
        inner = _json(fdp, depth + 1)
        n = min(_pick(fdp, REPEATS), BUDGET // (len(inner) + 6))
        return (b"[" * n + inner + b"]" * n) if fdp.ConsumeBool() else (b'{"a":' * n + inner + b"}" * n)
    if kind == 3:  # a long run of one value
        inner = _json(fdp, depth + 1)
        return b"[" + b",".join([inner] * min(_pick(fdp, REPEATS), BUDGET // (len(inner) + 1))) + b"]"
    if kind == 4:
        return b"[" + b",".join(_json(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 4))) + b"]"
    items = [b'"%s":%s' % (fdp.ConsumeUnicodeNoSurrogates(6).encode("utf-8", "replace").replace(b'"', b""),
                           _json(fdp, depth + 1)) for _ in range(fdp.ConsumeIntInRange(0, 4))]
    return b"{" + b",".join(items) + b"}"


def file_from(data: bytes) -> bytes:
    """The safetensors file the bytes describe (deterministic: a regression test rebuilds a finding)."""
    fdp = atheris.FuzzedDataProvider(data)
    parts = [ENTRY] if fdp.ConsumeBool() else []
    if fdp.ConsumeBool():
        meta = json.dumps(_META if fdp.ConsumeBool() else _json(fdp).decode("utf-8", "replace")).encode()
        parts.append(b'"__metadata__":{"esrkit":' + meta + b"}")
    for _ in range(fdp.ConsumeIntInRange(0, 3)):
        parts.append(b'"t%d":%s' % (len(parts), _json(fdp)))
    header = b"{" + b",".join(parts) + b"}" if fdp.ConsumeIntInRange(0, 7) else _json(fdp)
    header += b" " * fdp.ConsumeIntInRange(0, 7)
    length = len(header)
    tweak = fdp.ConsumeIntInRange(0, 9)
    if tweak == 1:
        length -= fdp.ConsumeIntInRange(1, 8)
    elif tweak == 2:
        length += fdp.ConsumeIntInRange(1, 8)
    elif tweak == 3:
        length = fdp.ConsumeIntInRange(0, 2**64 - 1)
    data_bytes = b"\0" * _pick(fdp, (0, 4, 8))
    return max(length, 0).to_bytes(8, "little") + header + data_bytes


def seeds() -> dict[str, bytes]:
    """Fixed pseudo-random byte strings: the provider's choices do the rest."""
    return {f"seed{i}": hashlib.sha256(f"header {i}".encode()).digest() * 4 for i in range(64)}


def test_one_input(data: bytes) -> None:
    _PATH.write_bytes(file_from(data))
    _checkpoints.check_loaded(load_checkpoint(_PATH))


if __name__ == "__main__":
    _harness.main(test_one_input, seeds, MAX_LEN)
