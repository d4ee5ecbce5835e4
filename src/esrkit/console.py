"""Terminal output that is never silent and never cut: progress for long commands, whole tables when piped.

On a terminal a long command shows a rich progress bar (transient: it leaves nothing behind). Off a terminal (a
pipe, a CI log, ``2> log``) a bar is invisible, and a command that ran for a minute printed nothing until it
finished; :class:`Progress` therefore writes one plain line per finished unit of work (a dataset, a model, a
file) to stderr there, flushed at once. :func:`stdout_console` is the console for results: rich sizes tables to
80 columns when it cannot ask a terminal, which truncated ``recommend``'s and ``challenge``'s tables in logs
(``onnxrunt…``); off a terminal it is wide enough for every table esrkit prints.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any

__all__ = ["PIPED_WIDTH", "Progress", "stdout_console"]

PIPED_WIDTH = 240  # columns of a console that is not a terminal: the widest table (challenge, 14 columns) fits


def stdout_console() -> Any:
    """A rich console on stdout: the terminal's width on a terminal, :data:`PIPED_WIDTH` columns otherwise."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=PIPED_WIDTH)


class Progress:
    """A transient rich bar on a terminal; one line per :meth:`done` unit on stderr when piped.

    Use as a context manager: ``task = p.add(description, total)``, ``p.advance(task)`` per item,
    ``p.done(text)`` when a unit of work finished (printed with its elapsed seconds when piped)."""

    def __init__(self, *, enabled: bool = True) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        self.console = Console(stderr=True)
        self.enabled = enabled
        self.piped = not self.console.is_terminal
        self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=self.console, transient=True,
                                 disable=not enabled or self.piped)  # off a terminal rich leaves a stray newline
        self._started = time.perf_counter()

    def __enter__(self) -> Progress:
        self._bar.__enter__()
        self._started = time.perf_counter()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._bar.__exit__(kind, exc, tb)

    def add(self, description: str, total: int | None) -> Any:
        """A bar for ``total`` items (its id)."""
        return self._bar.add_task(description, total=total)

    def advance(self, task: Any, steps: int = 1) -> None:
        self._bar.advance(task, steps)

    def update(self, task: Any, **fields: Any) -> None:
        self._bar.update(task, **fields)

    def remove(self, task: Any) -> None:
        self._bar.remove_task(task)

    def line(self, text: str) -> None:
        """Announce a unit of work as it starts: one line on stderr when piped (for work whose end has no
        result of its own to report)."""
        if self.enabled and self.piped:
            print(text, file=sys.stderr, flush=True)

    def done(self, text: str) -> None:
        """Report a finished unit of work: one line on stderr when piped (nothing on a terminal, where the bar
        showed it), with the seconds since the previous unit."""
        now = time.perf_counter()
        if self.enabled and self.piped:
            print(f"{text} ({now - self._started:.1f} s)", file=sys.stderr, flush=True)
        self._started = now
