"""Output files: one place that checks where they go, writes them atomically and gives them ordinary permissions.

A writer fills a temporary file in the destination folder (same filesystem, so the final ``os.replace`` is atomic);
only a complete, fsynced file is renamed over the target. On any error the temporary file is removed, so an
interrupted or failed run leaves either the previous file or nothing — never half an image, table or checkpoint.
Temporary names are unique per writer, so two processes writing the same target each rename a complete file over
it (the last one wins) and a reader sees one complete version or the other, never a mix.

``tempfile`` creates its files and folders private (0600/0700) and a rename keeps that, so a JSON result or a
saved image would be unreadable to the user's group even where the umask says otherwise. Every output therefore
gets the mode an ordinary ``open(path, "w")`` would give it: an existing target keeps its mode, a new one gets
``0o666 & ~umask`` (folders ``0o777 & ~umask``).

:func:`check_output_path` is the single validation every output option goes through before any work is done, so
``evaluate --json``, ``profile --json``, ``report -o`` and the others accept and refuse the same paths; missing
parent folders are then created when the file is written. An existing output that is not a regular file (a
device, FIFO, socket or symbolic link) is refused there and again at the rename, and a system error while writing
(a full disk, a name too long) is an :class:`~esrkit.errors.OutputError` naming the output (see
:mod:`esrkit.output_guard`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from .errors import EsrkitError, InputError
from .output_guard import check_name_lengths, refuse_non_regular, temp_prefix, write_error

__all__ = [
    "atomic_path",
    "check_output_path",
    "current_umask",
    "new_dir_mode",
    "new_file_mode",
    "staged_dir",
    "write_json_atomic",
    "write_text_atomic",
]

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where possible.

    Linux exposes it as ``Umask:`` in ``/proc/self/status``; elsewhere the only way is to set a value and put the
    old one back, which is done under a lock so two threads of this module cannot interleave and leave a wrong
    umask behind (other code calling ``os.umask`` concurrently could still race, hence the ``/proc`` route first).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def new_file_mode() -> int:
    """Permission bits a new ordinary file gets under the current umask."""
    return 0o666 & ~current_umask()


def new_dir_mode() -> int:
    """Permission bits a new folder gets under the current umask."""
    return 0o777 & ~current_umask()


def _nearest_existing(path: Path) -> Path:
    """``path`` itself or its closest ancestor that exists (``.`` for a relative path with none)."""
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return candidate
    return Path(".")


def check_output_path(
    path: str | os.PathLike[str], *, param: str, kind: Literal["file", "dir"] = "file"
) -> Path:
    """Check that an output can be written at ``path`` without writing anything; returns it as a :class:`Path`.

    A file output must not be an existing folder; a folder output must not be an existing file. The nearest
    existing ancestor (the folder the missing parents would be created in) must be a writable folder, not a
    file. Failing here, before a model is loaded or an image read, is what makes bad output paths cheap: the
    missing parent folders themselves are only created when the output is written. Errors are
    :class:`InputError` with ``param`` set to the argument that named the path.
    """
    target = Path(path)
    if str(target) in ("", "."):
        raise InputError("an output path is required", param=param)
    check_name_lengths(target, param=param)
    if kind == "file":  # a device, FIFO, socket or symbolic link there is not ours to replace (output_guard)
        refuse_non_regular(target, param=param)
    if kind == "file" and target.is_dir():
        raise InputError(f"{target} is a folder; give a file path", param=param)
    if kind == "dir" and target.exists() and not target.is_dir():
        raise InputError(f"{target} exists and is not a folder", param=param)
    base = _nearest_existing(target if kind == "dir" else target.parent)
    if not base.is_dir():
        raise InputError(f"cannot create {target}: {base} is a file, not a folder", param=param)
    if not os.access(base, os.W_OK | os.X_OK):
        raise InputError(f"cannot create {target}: folder {base} is not writable", param=param)
    return target


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, mkdir: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on a clean exit it is fsynced, given the mode an ordinary write
    would give ``path`` (see the module docstring) and renamed onto ``path``. ``mkdir`` creates missing parents."""
    path = Path(path)
    try:
        for attempt in range(3):
            if mkdir:
                path.parent.mkdir(parents=True, exist_ok=True)  # ``mkdir -p``: new folders get the umask's mode
            try:
                # unique per writer (mkstemp: O_EXCL, random suffix), so concurrent writers never share a temporary
                # file; the name carries this process's id, so a later run can tell a killed run's leftovers from
                # a live writer's file (output_guard.remove_stale_parts), and stays within 255 bytes
                fd, name = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".part", dir=path.parent)
                break
            except FileNotFoundError:
                # another process (a failed run tidying the empty folders it made) removed the folder just now
                if not mkdir or attempt == 2:
                    raise
    except OSError as exc:
        raise write_error(path, exc) from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        try:
            mode = stat.S_IMODE(path.stat().st_mode) if path.is_file() else new_file_mode()
        except OSError:
            mode = new_file_mode()
        os.chmod(tmp, mode)
        refuse_non_regular(path)  # again at the rename: a node made while the output was being written
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, EsrkitError) and exc.errno is not None:
            raise write_error(path, exc) from None  # a full disk, a name too long: one line naming the output
        raise


@contextlib.contextmanager
def staged_dir(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty scratch folder; on a clean exit its files move into ``target`` (created as needed).

    Multi-file outputs (``evaluate --save-dir``) are built here so that a failed run publishes nothing: the scratch
    folder is removed however the block ends, and ``target`` and its subfolders are only created when there is
    something complete to put in them. It lives in ``target``'s nearest existing ancestor (where
    :func:`check_output_path` checked writability, and on the same filesystem, so each move is an atomic rename)
    and gets the umask's folder mode rather than ``mkdtemp``'s 0700, so a run killed before cleaning up does not
    leave a private folder behind; moved files keep the mode :func:`atomic_path` gave them.
    """
    target = Path(target)
    parent = _nearest_existing(target)
    folder = Path(tempfile.mkdtemp(prefix=".esrkit-staging-", dir=parent))
    try:
        os.chmod(folder, new_dir_mode())
        yield folder
        moves = [(src, target / src.relative_to(folder)) for src in sorted(folder.rglob("*")) if src.is_file()]
        for _, dst in moves:  # nothing is moved when one destination is a device, FIFO or link (output_guard)
            refuse_non_regular(dst)
        for src, dst in moves:
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def write_text_atomic(path: str | os.PathLike[str], text: str, *, mkdir: bool = True) -> Path:
    """Write UTF-8 text atomically (newlines written as given)."""
    with atomic_path(path, mkdir=mkdir) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    return Path(path)


def write_json_atomic(path: str | os.PathLike[str], document: Any, *, mkdir: bool = True) -> Path:
    """Write ``document`` as indented JSON with a trailing newline, atomically."""
    return write_text_atomic(path, json.dumps(document, indent=2) + "\n", mkdir=mkdir)
