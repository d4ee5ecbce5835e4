"""Command-line entry point ``esrkit``.

Each sub-command lives in its own module and registers itself on the shared :data:`app`. User errors
(:class:`esrkit.errors.EsrkitError`) become a one-line message on stderr and exit code 2, like typer's own usage
errors; anything else keeps its traceback because it is a bug.
"""

from __future__ import annotations

import sys

from ..errors import EsrkitError
from . import challenge, convert, demo, evaluate, export, models, profile, quantize, recommend, report, train, upscale  # noqa: F401  (command registration)
from ._app import app

__all__ = ["app", "main", "render_error"]

# Library parameter names whose command-line flag is spelled differently; every other ``param`` is shown as
# ``--`` + the name with dashes (``tile_overlap`` → ``--tile-overlap``). ``root`` is resolve_benchmark's name for
# the data root; ``dst`` is convert's positional argument, shown as its metavar.
_FLAG_NAMES = {
    "input_size": "--input",
    "json_out": "--json",
    "csv_out": "--csv",
    "all_models": "--all",
    "root": "--data-root",
    "dst": "DST",
}


def render_error(exc: EsrkitError) -> str:
    """The one-line message of a user error, naming the flag the user typed when the error concerns one."""
    if exc.param is None:
        return str(exc)
    flag = _FLAG_NAMES.get(exc.param, "--" + exc.param.replace("_", "-"))
    return f"{flag}: {exc.message}"


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 runtime failure, 2 bad input)."""
    try:
        app(args=argv, prog_name="esrkit", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except EsrkitError as exc:
        print(f"esrkit: error: {render_error(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("esrkit: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
