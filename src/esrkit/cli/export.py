"""``esrkit export --onnx OUT.onnx``: a zoo model or checkpoint as an ONNX file with dynamic height and width.

Thin: the model comes from ``Upscaler.from_name`` (the same name/checkpoint checks as ``evaluate``, deploy form)
and the file from :func:`esrkit.infer.backends.export_onnx` (atomic write, verified at a second size).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputError
from ..fileio import check_output_path
from ._app import app


@app.command("export")
def export_command(
    onnx: Annotated[Path, typer.Option("--onnx", help="ONNX file to write.")],
    model: Annotated[str | None, typer.Option("--model", help="Zoo model (its released weights) or esrkit_x4 "
                                              "(default, with no --weights: esrkit's bundled model).")] = None,
    weights: Annotated[Path | None, typer.Option("--weights", help="Checkpoint (.pth or .safetensors).")] = None,
    scale: Annotated[int | None, typer.Option("--scale", help="Scale (default: checkpoint's, else 4).")] = None,
    random_weights: Annotated[bool, typer.Option("--random-weights", help="Run a zoo name with random weights "
                                                 "instead of its released ones (tests, timing).")] = False,
    opset: Annotated[int, typer.Option("--opset", help="ONNX opset (17: read by ONNX Runtime and OpenVINO).")] = 17,
    deploy: Annotated[bool, typer.Option("--deploy/--train", help="Export the re-parameterized form.")] = True,
    verify: Annotated[bool, typer.Option("--verify/--no-verify", help="Run the file at a second size and compare "
                                         "with PyTorch (needs onnxruntime or openvino).")] = True,
) -> None:
    """Export a model to ONNX (dynamic batch, height and width; NCHW float32 RGB in [0, 1], ×scale out)."""
    from ..bundled import BUNDLED_MODEL, resolve_model_choice
    from ..hub import check_choice
    from ..infer import Upscaler
    from ..infer.backends import DEFAULT_OPSET, export_onnx

    # Validate everything before any work, so bad input costs nothing and leaves no file behind.
    bundled = weights is None and model in (None, BUNDLED_MODEL)
    model, weights = resolve_model_choice(model, weights)  # neither given: esrkit's bundled model
    check_choice(model, scale, weights, random_weights)  # a name without released weights stops here
    check_output_path(onnx, param="onnx")
    if not 7 <= opset <= 20:
        raise InputError(f"the TorchScript exporter writes opsets 7 to 20, got {opset} (default {DEFAULT_OPSET})",
                         param="opset")
    upscaler = Upscaler.from_name(model, scale=scale, weights=weights, deploy=deploy, backend=None,
                                  random_weights=random_weights)
    net, scale = upscaler.model, upscaler.scale  # --scale, or the checkpoint's own
    path = export_onnx(net, onnx, opset=opset, deploy=False, verify=verify)
    config = getattr(net, "esrkit_config", None)
    label = config.name if config is not None else (model or weights.stem)  # type: ignore[union-attr]
    if weights is not None:
        label = BUNDLED_MODEL if bundled else f"{label} ({weights.name})"
    form = "deploy" if deploy else "train"
    typer.echo(f"wrote {path}: {label} ×{scale}, {form} form, opset {opset}, input 'lr' N×3×H×W, output 'sr' "
               f"N×3×{scale}H×{scale}W (float32, RGB in [0, 1])")

