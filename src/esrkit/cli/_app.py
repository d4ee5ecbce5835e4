"""The typer application object shared by every sub-command module, and its ``--version``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

app = typer.Typer(
    name="esrkit",
    help="Efficient super-resolution: evaluate, profile, rank and deploy the NTIRE/AIM/AIS models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"esrkit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print esrkit's version and exit.", is_eager=True,
                                          callback=_print_version)] = False,
) -> None:
    """Efficient super-resolution: evaluate, profile, rank and deploy the NTIRE/AIM/AIS models."""


def _hide_flag_types() -> None:
    """No type placeholder in ``--help`` for on/off flags (``--overwrite``, ``--help`` itself: they take no value,
    so typer's ``<bool>`` reads as if one were expected) nor for positional arguments (their help says what they
    are, where typer printed ``<list[Path]>``). Options that take a value keep their type (``<path>``, ``<int>``;
    ``<path>`` also for a repeatable one, which typer showed as ``<list[Path]>``)."""
    for cls, hide in ((getattr(typer.core, "TyperOption", None), lambda p: getattr(p, "is_flag", False)),
                      (getattr(typer.core, "TyperArgument", None), lambda p: True)):
        original = getattr(cls, "display_type_rich", None)
        if cls is None or original is None or getattr(original, "_esrkit", False):
            continue

        def display_type_rich(self: Any, ctx: object, _original: Any = original, _hide: Any = hide) -> str | None:
            if _hide(self):
                return None
            text = _original(self, ctx)
            if isinstance(text, str) and text.startswith("<list[") and text.endswith("]>"):
                text = f"<{text[6:-2].lower()}>"  # a repeatable option takes one value per use: <path>
            return text

        display_type_rich._esrkit = True  # type: ignore[attr-defined]
        cls.display_type_rich = display_type_rich


_hide_flag_types()
