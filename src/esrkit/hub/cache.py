"""The user's weights cache: where verified released files live, and how a file gets in.

The folder is ``$XDG_CACHE_HOME/esrkit/weights`` (default ``~/.cache/esrkit/weights``). Only verified files are
ever in it: :func:`store` streams into a temporary file *in the same folder* (so the final ``os.replace`` is
atomic), hashing as it goes, and renames only when the byte count and sha256 equal the catalogue's; on any failure
the temporary file is removed. Two processes storing the same file each rename a complete, verified copy over the
name, so both end with it and a reader never sees a partial file.

A cached file is re-hashed on every use (1–4 MB: milliseconds): one that no longer matches (disk trouble, a hand
edit) is removed and counts as not cached, rather than being loaded.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from ..errors import WeightsError
from ..fileio import atomic_path
from .catalogue import WeightsEntry

__all__ = ["CHUNK", "cache_dir", "cached_file", "cached_path", "sha256_file", "store"]

CHUNK = 1 << 16


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/esrkit/weights``, or ``~/.cache/esrkit/weights`` when the variable is unset or empty."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "esrkit" / "weights"


def cached_path(entry: WeightsEntry) -> Path:
    """Where ``entry`` lives in the cache (whether or not it is there)."""
    return cache_dir() / entry.cache_name


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def cached_file(entry: WeightsEntry, *, verify: bool = True) -> Path | None:
    """The cached copy of ``entry``, or None. With ``verify`` the file is re-hashed and a mismatching one removed
    (``esrkit models`` lists with ``verify=False``: size only, to stay quick)."""
    path = cached_path(entry)
    try:
        if not path.is_file() or path.stat().st_size != entry.bytes:
            return None
        if verify and sha256_file(path) != entry.sha256:
            path.unlink(missing_ok=True)
            return None
    except OSError:
        return None
    return path


def store(entry: WeightsEntry, chunks: Iterable[bytes], source: str,
          on_chunk: Callable[[int], None] | None = None) -> Path:
    """Write ``chunks`` (a download, or a local file read in blocks) into the cache as ``entry`` and return its
    path; verified before the rename. ``source`` names where the bytes come from in the error messages.

    More bytes than the catalogue's size stop the transfer at once (a hostile or wrong server cannot fill the
    disk); fewer is a truncated file; a different sha256 is a corrupted or different file. Each is a
    :class:`WeightsError`, and nothing is left in the cache. ``chunks`` raises :class:`WeightsError` for its own
    failures (a network error, worded with the URL); any other OS error is the cache's (a full disk, a read-only
    folder). The temporary file is removed either way.
    """
    target = cached_path(entry)
    digest = hashlib.sha256()
    size = 0
    try:
        with atomic_path(target) as tmp, open(tmp, "wb") as fh:
            for block in chunks:
                size += len(block)
                if size > entry.bytes:
                    raise WeightsError(f"{source}: more than the {entry.bytes:,} bytes {entry.label} has; "
                                       "not the released file")
                digest.update(block)
                fh.write(block)
                if on_chunk is not None:
                    on_chunk(len(block))
            if size != entry.bytes:
                raise WeightsError(f"{source}: truncated, {size:,} of {entry.bytes:,} bytes")
            if digest.hexdigest() != entry.sha256:
                raise WeightsError(f"{source}: sha256 {digest.hexdigest()[:16]}… differs from the catalogue's "
                                   f"{entry.sha256[:16]}… for {entry.label} (corrupted or not the released file)")
    except WeightsError:
        raise
    except OSError as exc:  # the source's iterator words its own errors as WeightsError: this is the cache's
        raise WeightsError(f"cannot write the weights cache {target.parent}: {exc.strerror or exc}") from None
    return target
