"""Guards on output paths: what an output may replace, how long its name may be, what a failed write says, and
which temporary files a killed run left behind.

* **Only regular files are replaced.** An output path that exists as anything else (a character or block device,
  a FIFO, a socket, a symbolic link, even one to a regular file) is refused before any work and left exactly as it
  was. Renaming over it would replace the node itself: as root, ``--json /dev/stdout`` would swap ``/dev/stdout``
  for a regular file, and a link the user placed is theirs, not esrkit's. The check reads the path's own
  ``lstat``, never its permissions (root may write anywhere), and :func:`esrkit.fileio.atomic_path` repeats it just
  before its rename, so a node created while a run is going is not replaced either.
* **Names fit the file system.** A name longer than the folder's ``NAME_MAX`` (255 bytes on Linux file systems)
  cannot be created; an output name can outgrow its input's (``photo.jpg`` → ``photo.webp``), so the lengths are
  checked when the output is planned, in bytes as the file system counts them.
* **A failed write is one line.** An ``OSError`` with an ``errno`` (a full disk, a name too long, permission
  denied, a read-only file system) while writing becomes :class:`~esrkit.errors.OutputError` naming the output
  and the cause.
* **Stale temporary files are removed.** Temporary files are named ``.NAME.esrkit-HOST-PID.RANDOM.part`` (see
  :func:`temp_prefix`), where HOST identifies this machine's boot and PID namespace. A later run into the same
  folder removes such a file when it is stale: made here by a process that no longer exists, or untouched for
  :data:`STALE_AFTER_S` (a day), which covers files from other machines sharing the folder, whose processes cannot
  be asked. A live writer's file is never removed on this machine (its process exists; a reused PID only keeps a
  dead one's file longer), and a writer elsewhere keeps its file while it writes at least once a day. Files not
  matching the pattern, ours from before it or anyone else's, are never touched.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import socket
import stat
import time
from pathlib import Path

from .errors import InputError, OutputError

__all__ = [
    "STALE_AFTER_S",
    "WRITE_ERRNOS",
    "check_name_lengths",
    "name_max",
    "refuse_non_regular",
    "remove_stale_parts",
    "temp_prefix",
    "write_error",
]

STALE_AFTER_S = 24 * 3600
# errno values that can only mean the output could not be written (FFmpeg reports reads and writes alike)
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})
_DEFAULT_NAME_MAX = 255
_PREFIX_BYTES = 150  # of the output's name kept in its temporary name: room for the tag, random part and suffix
_TEMP_NAME = re.compile(r"^\..*\.esrkit-(?P<host>[0-9a-f]{8})-(?P<pid>\d+)\.[A-Za-z0-9_]+\.part$", re.DOTALL)

_KINDS = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def refuse_non_regular(path: str | os.PathLike[str], *, param: str | None = None) -> None:
    """Raise :class:`InputError` when ``path`` exists and is not a regular file (its own ``lstat``: a symbolic
    link is refused whatever it points to); a missing path passes."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # missing (check_output_path words a file as parent folder)
        return
    except OSError as exc:
        raise InputError(f"{path}: cannot be checked as an output ({exc.strerror})", param=param) from None
    if not stat.S_ISREG(mode):
        raise InputError(f"{path} exists and is {_kind(mode)}, not a regular file: refusing to replace it (remove "
                         "it or choose another output name)", param=param)


def name_max(folder: str | os.PathLike[str]) -> int:
    """The longest file name (in bytes) the file system of ``folder`` (or its nearest existing ancestor) takes."""
    for candidate in (Path(folder), *Path(folder).parents):
        try:
            return int(os.pathconf(candidate, "PC_NAME_MAX"))
        except (OSError, ValueError, AttributeError):
            continue
    return _DEFAULT_NAME_MAX


def check_name_lengths(path: str | os.PathLike[str], *, param: str | None = None,
                       limit: int | None = None) -> None:
    """Raise :class:`InputError` when a component of ``path`` is longer than ``NAME_MAX`` bytes."""
    path = Path(path)
    most = name_max(path.parent) if limit is None else limit
    for part in path.parts:
        size = len(os.fsencode(part))
        if size > most:
            raise InputError(f"{path}: the name {part[:40]}… is {size} bytes, over the file system's limit of "
                             f"{most} (NAME_MAX); choose a shorter name or output format", param=param)


_HINTS = {errno.ENOSPC: "; free some space and run again", errno.EDQUOT: "; the disk quota is used up",
          errno.ENAMETOOLONG: "; choose a shorter name", errno.EACCES: "; check the folder's permissions",
          errno.EROFS: "; choose a writable folder", errno.EFBIG: "; the file size limit (ulimit -f) is reached"}


def write_error(path: str | os.PathLike[str], exc: OSError) -> OutputError:
    """The one-line error for a system error while writing ``path`` (the output the user named, not the
    temporary file that was being written)."""
    code = errno.errorcode.get(exc.errno or 0, "")
    reason = exc.strerror or str(exc) or type(exc).__name__
    hint = _HINTS.get(exc.errno or 0, "")
    return OutputError(f"cannot write {path}: {reason}{f' ({code})' if code else ''}{hint}")


def _host_tag() -> str:
    """Eight hex digits naming this boot of this machine and this PID namespace: PIDs are only comparable
    between processes sharing all three."""
    parts = [socket.gethostname()]
    with contextlib.suppress(OSError):
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip())
    with contextlib.suppress(OSError):
        parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()[:8]


_HOST = _host_tag()


def temp_prefix(name: str) -> str:
    """The ``tempfile.mkstemp`` prefix for a temporary file of the output ``name``: hidden, the name cut to
    :data:`_PREFIX_BYTES` bytes (whole characters), then this machine's tag and this process's PID."""
    cut = os.fsencode(name)[:_PREFIX_BYTES].decode("utf-8", "ignore")  # a character cut in two is dropped
    return f".{cut}.esrkit-{_HOST}-{os.getpid()}."


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # someone else's process (or a number we cannot ask about): assume it is writing
    return True


def remove_stale_parts(folder: str | os.PathLike[str], *, now: float | None = None) -> list[Path]:
    """Remove the stale temporary files (see the module docstring) directly in ``folder``; returns them."""
    now = time.time() if now is None else now
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        found = _TEMP_NAME.match(entry.name)
        if found is None:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISREG(info.st_mode):
            continue
        dead = found["host"] == _HOST and not _pid_alive(int(found["pid"]))
        if dead or now - info.st_mtime > STALE_AFTER_S:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed
