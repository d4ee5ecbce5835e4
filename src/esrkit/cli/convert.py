"""``esrkit convert``: any supported checkpoint → esrkit safetensors (optionally re-parameterized)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ..errors import InputError
from ..fileio import check_output_path
from ._app import app


@app.command()
def convert(
    src: Annotated[Path, typer.Argument(help="Checkpoint to read (.pth or .safetensors).")],
    dst: Annotated[Path, typer.Argument(help="Output .safetensors file.")],
    deploy: Annotated[bool, typer.Option("--deploy", help="Fold training branches (re-parameterize) first.")] = False,
    allow_nonfinite: Annotated[bool, typer.Option("--allow-nonfinite", help="Convert weights holding NaN or Inf "
                                                  "(refused by default).")] = False,
) -> None:
    """Convert a checkpoint into esrkit's safetensors format with its model description."""
    from ..checkpoints import load_checkpoint, save_checkpoint
    from ..models import get_config, reparameterize

    if dst.suffix != ".safetensors":
        raise InputError(f"must end in .safetensors, got {dst}", param="dst")
    check_output_path(dst, param="dst")
    model = load_checkpoint(src, allow_nonfinite=allow_nonfinite)
    if deploy:
        model = reparameterize(model)
    config = get_config(model)
    save_checkpoint(model, dst, provenance={"converted_from": src.name})
    n = sum(p.numel() for p in model.parameters())
    assert config is not None
    Console().print(f"{src} → {dst}: {config.name} ×{config.scale} ({config.form}), {n:,} parameters")
