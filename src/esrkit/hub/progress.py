"""Download progress on stderr: a rich bar on a terminal, one plain line per file when piped or logged.

stdout stays clean for what commands print (tables, ``--json``), so a download inside
``esrkit evaluate --json - …`` or a piped ``esrkit models --json`` never corrupts the output. The licence line of a
file is printed once, when it is first downloaded (a cached file is never downloaded again, so never shown again).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from .catalogue import WeightsEntry, licence_line

__all__ = ["LineReporter", "Reporter", "RichReporter", "default_reporter"]


class Reporter:
    """What :func:`esrkit.hub.download.fetch` tells about a transfer. The base class says nothing (the API's
    quiet choice: ``fetch(entry, Reporter())``)."""

    def start(self, entry: WeightsEntry, source: str) -> None:
        """A transfer of ``entry`` from ``source`` begins."""

    def advance(self, nbytes: int) -> None:
        """``nbytes`` more arrived."""

    def done(self, entry: WeightsEntry, path: Path) -> None:
        """The verified file is in the cache at ``path``."""

    def fail(self) -> None:
        """The transfer failed (the error itself is raised, and printed by whoever catches it)."""


class LineReporter(Reporter):
    """One line per file on stderr when it starts, and the licence line when it is in: for logs and pipes."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream

    def _print(self, text: str) -> None:
        print(f"esrkit: {text}", file=self.stream or sys.stderr, flush=True)

    def start(self, entry: WeightsEntry, source: str) -> None:
        self._print(f"downloading {entry.label} weights, {entry.bytes:,} bytes, from {source}")

    def done(self, entry: WeightsEntry, path: Path) -> None:
        self._print(licence_line(entry))


class RichReporter(LineReporter):
    """A progress bar (bytes, speed, time left) that stays on screen when done, then the licence line."""

    def __init__(self) -> None:
        super().__init__()
        self.progress: Any = None
        self.task: Any = None

    def start(self, entry: WeightsEntry, source: str) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                 TransferSpeedColumn(), TimeRemainingColumn(), console=Console(stderr=True))
        self.progress.start()
        self.progress.console.print(f"esrkit: downloading {entry.label} weights from {source}", markup=False,
                                    highlight=False)
        self.task = self.progress.add_task(f"{entry.model} ×{entry.scale}", total=entry.bytes)

    def advance(self, nbytes: int) -> None:
        if self.progress is not None:
            self.progress.advance(self.task, nbytes)

    def _stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def done(self, entry: WeightsEntry, path: Path) -> None:
        self._stop()
        super().done(entry, path)

    def fail(self) -> None:
        self._stop()


def default_reporter() -> Reporter:
    """A bar when stderr is a terminal, else one line per file."""
    stream = sys.stderr
    return RichReporter() if hasattr(stream, "isatty") and stream.isatty() else LineReporter()
