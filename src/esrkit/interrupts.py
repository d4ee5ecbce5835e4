"""SIGTERM and SIGHUP handled like Ctrl-C: the work stops with an exception, so every ``finally`` and every
``except BaseException`` on the way runs (temporary files removed, empty folders a run made taken away), and the
CLI prints one line and exits with ``128 + the signal's number`` (130 Ctrl-C, 129 SIGHUP, 143 SIGTERM), the codes a
shell reports for a process the signal killed.

Python turns SIGINT into :class:`KeyboardInterrupt` by itself; SIGTERM (what ``kill``, ``timeout``, systemd and
container runtimes send) and SIGHUP (a closed terminal or SSH session) would otherwise end the process at once
and leave the temporary ``.part`` file of the output being written. :class:`Terminated` subclasses
``KeyboardInterrupt`` so that the code already written for Ctrl-C (``esrkit.fileio.atomic_path``, ``upscale``'s
clean-up) handles them without knowing about signals. A second signal while the first is being handled is
ignored, so clean-up is not itself interrupted half-way (SIGKILL still ends the process).

A library function that knows what it had finished attaches it to the exception as ``finished`` (a phrase), and
the CLI's line says it: ``esrkit: interrupted by SIGTERM: 3 of 10 output(s) finished, complete, under out; …``.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

__all__ = ["Terminated", "exit_code", "handle_termination", "interrupt_line"]

_HANDLED = (signal.SIGTERM, signal.SIGHUP)
_state = {"raised": False}


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM or SIGHUP (``signum``)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise(signum: int, _frame: FrameType | None) -> None:
    if _state["raised"]:
        return  # clean-up of the first one is running
    _state["raised"] = True
    raise Terminated(signum)


def handle_termination() -> Callable[[], None]:
    """Make SIGTERM and SIGHUP raise :class:`Terminated` in the main thread (elsewhere: a no-op, as Python only
    lets the main thread set handlers); returns a function putting the previous handlers back. A signal the parent
    set to be ignored (``nohup``) stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    _state["raised"] = False
    previous = {sig: signal.getsignal(sig) for sig in _HANDLED}
    for sig, handler in previous.items():
        if handler is not signal.SIG_IGN:
            signal.signal(sig, _raise)

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)

    return restore


def exit_code(exc: KeyboardInterrupt) -> int:
    """128 + the signal's number: 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP."""
    return 128 + (exc.signum if isinstance(exc, Terminated) else signal.SIGINT)


def interrupt_line(exc: KeyboardInterrupt) -> str:
    """The CLI's one line for an interrupted run."""
    what = f"by {signal.Signals(exc.signum).name}" if isinstance(exc, Terminated) else "(Ctrl-C)"
    finished = getattr(exc, "finished", None)
    done = f": {finished}" if finished else ""
    return f"esrkit: interrupted {what}{done}; no partial file left"
