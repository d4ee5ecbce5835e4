"""``esrkit quantize``: an int8 OpenVINO IR or ONNX QDQ model from fp32 weights (the work is
:func:`esrkit.quantize.quantize_model`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import app


@app.command("quantize")
def quantize_command(
    calib: Annotated[list[Path], typer.Option("--calib", help="Folder of calibration photos (repeatable); shrunk "
                                              "by the model's scale to LR patches.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output: .xml (OpenVINO IR, .bin beside it) or .onnx "
                                      "(ONNX Runtime QDQ).")],
    model: Annotated[str | None, typer.Option("--model", help="Model by name (its released weights): esrkit_x4.")]
    = None,
    weights: Annotated[Path | None, typer.Option("--weights", help="fp32 checkpoint (.pth or .safetensors).")] = None,
    method: Annotated[str, typer.Option("--method", help="ptq (post-training); qat is not available yet.")] = "ptq",
    backend: Annotated[str, typer.Option("--backend", help="openvino or onnxruntime.")] = "openvino",
    calib_count: Annotated[int, typer.Option("--calib-count", help="Calibration patches.")] = 60,
    calib_size: Annotated[int, typer.Option("--calib-size", help="Calibration patch side in LR pixels.")] = 64,
) -> None:
    """Quantize a model to int8 (NNCF) for OpenVINO or ONNX Runtime; run it with --weights OUT anywhere."""
    from ..quantize import quantize_model

    result = quantize_model(model=model, weights=weights, calib=calib, out=out, method=method, backend=backend,
                            calib_count=calib_count, calib_size=calib_size)
    check = result.metadata["psnr_check"]
    kept = len(result.metadata["recipe"]["fp32_convolutions"])
    typer.echo(f"wrote {result.path}: {result.metadata['config']['name']} ×{result.metadata['config']['scale']} int8 "
               f"for {backend} ({kept} convolutions kept fp32); Y-PSNR on {len(check['images'])} held-out image(s) "
               f"{check['psnr_y_fp32']:.2f} → {check['psnr_y_int8']:.2f} dB ({check['change_db']:+.3f})")
