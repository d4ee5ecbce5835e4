"""Atomic file writing, the one mechanism behind every output esrkit produces.

A writer fills a temporary file in the destination folder (same filesystem, so the final ``os.replace`` is atomic);
only a complete, fsynced file is renamed over the target. On any error the temporary file is removed, so an
interrupted or failed run leaves either the previous file or nothing — never half an image, table or checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, mkdir: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on a clean exit it is fsynced and renamed onto ``path``."""
    path = Path(path)
    if mkdir:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str, *, mkdir: bool = True) -> Path:
    """Write UTF-8 text atomically (newlines written as given)."""
    with atomic_path(path, mkdir=mkdir) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    return Path(path)


def write_json_atomic(path: str | os.PathLike[str], document: Any, *, mkdir: bool = True) -> Path:
    """Write ``document`` as indented JSON with a trailing newline, atomically."""
    return write_text_atomic(path, json.dumps(document, indent=2) + "\n", mkdir=mkdir)
