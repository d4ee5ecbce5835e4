"""The typer application object shared by every sub-command module."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="esrkit",
    help="Efficient super-resolution: evaluate, profile, rank and deploy the NTIRE/AIM/AIS models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
