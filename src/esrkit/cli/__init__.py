"""Command-line entry point ``esrkit``.

Each sub-command lives in its own module and registers itself on the shared :data:`app`. User errors
(:class:`esrkit.errors.EsrkitError`) become a one-line message on stderr and exit code 2, like typer's own usage
errors; anything else keeps its traceback because it is a bug.
"""

from __future__ import annotations

import sys

from ..errors import EsrkitError
from ..interrupts import exit_code, handle_termination, interrupt_line
from . import (  # noqa: F401  (command registration)
    challenge,
    convert,
    demo,
    evaluate,
    export,
    models,
    profile,
    pull,
    quantize,
    recommend,
    report,
    train,
    upscale,
)
from ._app import app

__all__ = ["app", "main", "render_error"]

# Library parameter names whose command-line spelling differs; every other ``param`` is shown as ``--`` + the name
# with dashes (``tile_overlap`` → ``--tile-overlap``). ``root`` is resolve_benchmark's name for the data root.
# Positional arguments have no flag: they are shown as the metavar the usage line prints (``esrkit upscale
# INPUT...``, ``esrkit train RECIPE``), never as an option the user could not have typed (``--inputs``).
_FLAG_NAMES = {
    "input_size": "--input",
    "json_out": "--json",
    "csv_out": "--csv",
    "all_models": "--all",
    "from_file": "--from",
    "root": "--data-root",
    "inputs": "INPUT",
    "recipe": "RECIPE",
    "rows": "ROWS",
    "challenge": "CHALLENGE",
    "src": "SRC",
    "dst": "DST",
}


def render_error(exc: EsrkitError) -> str:
    """The one-line message of a user error, naming the flag the user typed when the error concerns one."""
    if exc.param is None:
        return str(exc)
    flag = _FLAG_NAMES.get(exc.param, "--" + exc.param.replace("_", "-"))
    return f"{flag}: {exc.message}"


def _interrupt_behind(exc: BaseException) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt (Ctrl-C, or SIGTERM/SIGHUP as :class:`esrkit.interrupts.Terminated`) that typer's
    ``Exit(130)`` and ``sys.exit`` were raised from, if any."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 10:
        if isinstance(current, KeyboardInterrupt):
            return current
        current = current.__cause__ or current.__context__
        seen += 1
    return None


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 runtime failure, 2 bad input, 128 + the signal when interrupted:
    130 Ctrl-C, 143 SIGTERM, 129 SIGHUP)."""
    restore = handle_termination()  # SIGTERM/SIGHUP stop the work like Ctrl-C: temporary files removed, one line
    try:
        return _run(argv)
    finally:
        restore()  # main() called from Python (tests, notebooks) leaves the caller's handlers as they were


def _run(argv: list[str] | None) -> int:
    try:
        app(args=argv, prog_name="esrkit", standalone_mode=True)
    except SystemExit as exc:
        interrupt = _interrupt_behind(exc)
        if interrupt is not None:  # typer turns KeyboardInterrupt into a silent exit 130: say it in one line
            print(interrupt_line(interrupt), file=sys.stderr)
            return exit_code(interrupt)
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except EsrkitError as exc:
        print(f"esrkit: error: {render_error(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(interrupt_line(exc), file=sys.stderr)
        return exit_code(exc)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
