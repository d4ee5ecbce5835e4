"""Fetching a released file into the cache: from GitHub, a mirror, or a file the user already has.

Where the bytes come from (:func:`source_of`):

* by default the catalogue's commit-pinned ``https://github.com/OWNER/REPO/raw/COMMIT/PATH``;
* ``ESRKIT_WEIGHTS_MIRROR=BASE`` replaces ``https://github.com`` in every URL. ``BASE`` is an ``http(s)://`` URL
  (a site's own server) or a local folder holding the same relative paths (``BASE/OWNER/REPO/raw/COMMIT/PATH``:
  a share, a USB stick, an air-gapped copy). The sha256 check is the same either way, so a mirror cannot hand out
  anything but the released bytes;
* ``ESRKIT_OFFLINE=1`` never opens a network connection: only the cache and a *folder* mirror are used, and a
  file in neither is a one-line error before any socket exists.

HTTP is the standard library's ``urllib`` (proxies from the usual environment variables, redirects followed, a
timeout on every socket operation): a few MB from a fixed URL needs no more. Every failure (refused, 404, timeout,
a server that closes mid-body, a wrong hash) is one :class:`~esrkit.errors.WeightsError` line naming the URL and the
two ways round it: ``esrkit pull NAME --from FILE`` or a mirror. Progress goes to a reporter
(:mod:`esrkit.hub.progress`): a bar on a terminal, one line per file when piped.
"""

from __future__ import annotations

import http.client
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from .. import __version__
from ..errors import InputError, WeightsError
from .cache import CHUNK, cached_file, sha256_file, store
from .catalogue import WeightsEntry
from .progress import Reporter, default_reporter

__all__ = ["MIRROR_ENV", "OFFLINE_ENV", "TIMEOUT_S", "fetch", "is_offline", "register_file", "source_of"]

MIRROR_ENV = "ESRKIT_WEIGHTS_MIRROR"
OFFLINE_ENV = "ESRKIT_OFFLINE"
TIMEOUT_S = 30.0  # per socket operation (connect, each read), not for the whole file


def is_offline() -> bool:
    """``ESRKIT_OFFLINE`` set to anything but empty, 0, false or no."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def source_of(entry: WeightsEntry) -> str | Path:
    """Where ``entry`` is fetched from: a URL (str) or, for a folder mirror, a local path."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if not mirror:
        return entry.url
    if mirror.startswith(("http://", "https://")):
        return f"{mirror.rstrip('/')}/{entry.relative_url}"
    if "://" in mirror:
        raise InputError(f"{MIRROR_ENV}={mirror}: expected an http(s):// URL or a local folder")
    folder = Path(mirror).expanduser()
    if not folder.is_dir():
        raise InputError(f"{MIRROR_ENV}={mirror}: no such folder (a mirror folder holds OWNER/REPO/raw/COMMIT/PATH)")
    return folder / entry.relative_url


def _hint(entry: WeightsEntry) -> str:
    return (f"place the file by hand with `esrkit pull {entry.model} --from FILE` (sha256 {entry.sha256[:12]}…) "
            f"or set {MIRROR_ENV} to a mirror")


def _http_chunks(url: str) -> Iterator[bytes]:
    """The body of ``url`` in blocks; every network failure becomes one :class:`WeightsError` line."""
    request = urllib.request.Request(url, headers={"User-Agent": f"esrkit/{__version__}"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            while block := response.read(CHUNK):
                yield block
    except urllib.error.HTTPError as exc:
        raise WeightsError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        text = "timed out" if isinstance(reason, TimeoutError) else getattr(reason, "strerror", None) or str(reason)
        raise WeightsError(f"{url}: cannot connect ({text})") from None
    except TimeoutError:
        raise WeightsError(f"{url}: timed out after {TIMEOUT_S:g} s without data") from None
    except (http.client.HTTPException, OSError) as exc:  # IncompleteRead, RemoteDisconnected, ConnectionReset…
        raise WeightsError(f"{url}: connection failed mid-transfer ({type(exc).__name__})") from None


def _file_chunks(path: Path) -> Iterator[bytes]:
    try:
        with open(path, "rb") as fh:
            while block := fh.read(CHUNK):
                yield block
    except OSError as exc:
        raise WeightsError(f"{path}: cannot read ({exc.strerror or exc})") from None


def fetch(entry: WeightsEntry, reporter: Reporter | None = None) -> Path:
    """The verified cached file of ``entry``, downloading it first when it is not cached.

    The first download of a file shows its licence line (the reporter's ``note``); a cached file is silent.
    Raises :class:`WeightsError` (nothing cached, nothing partial left) when it cannot be had.
    """
    path = cached_file(entry)
    if path is not None:
        return path
    source = source_of(entry)
    remote = isinstance(source, str)
    if remote and is_offline():
        raise WeightsError(f"{entry.label} weights are not cached and {OFFLINE_ENV} is set, so {source} is not "
                           f"fetched; {_hint(entry)}, or run `esrkit pull {entry.model}` where there is a network")
    if not remote and not source.is_file():
        raise WeightsError(f"{source}: not in the mirror folder ({entry.label}); {_hint(entry)}")
    reporter = reporter or default_reporter()
    chunks = _http_chunks(source) if remote else _file_chunks(source)
    reporter.start(entry, str(source))
    try:
        path = store(entry, chunks, str(source), on_chunk=reporter.advance)
    except WeightsError as exc:
        reporter.fail()
        raise WeightsError(f"cannot get {entry.label} weights: {exc.message}; {_hint(entry)}") from None
    except BaseException:
        reporter.fail()
        raise
    reporter.done(entry, path)
    return path


def register_file(entries: list[WeightsEntry], file: str | os.PathLike[str]) -> tuple[WeightsEntry, Path]:
    """Copy a file the user already has into the cache as whichever of ``entries`` its sha256 equals.

    For a machine that cannot reach the URL: the file is found by its hash, so its name does not matter, and the
    cache still only holds verified files. Raises :class:`InputError` when the file matches none of them.
    """
    src = Path(file).expanduser()
    if not src.is_file():
        raise InputError(f"no such file: {src}", param="from_file")
    digest = sha256_file(src)
    match = next((e for e in entries if e.sha256 == digest), None)
    if match is None:
        known = ", ".join(f"{e.label} {e.sha256[:12]}…" for e in entries) or "none"
        raise InputError(f"{src}: sha256 {digest[:12]}… is none of the released files asked for ({known})",
                         param="from_file")
    cached = cached_file(match)
    if cached is None:
        cached = store(match, _file_chunks(src), str(src))
    return match, cached

