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
    method: Annotated[str, typer.Option("--method", help="ptq (post-training) or qat (a short quantization-aware "
                                        "fine-tuning on the calibration photos first).")] = "ptq",
    backend: Annotated[str, typer.Option("--backend", help="openvino or onnxruntime.")] = "openvino",
    calib_count: Annotated[int, typer.Option("--calib-count", help="Calibration patches.")] = 60,
    calib_size: Annotated[int, typer.Option("--calib-size", help="Calibration patch side in LR pixels.")] = 64,
    qat_iters: Annotated[int | None, typer.Option("--qat-iters", help="Fine-tuning iterations of --method qat "
                                                  "(default: the int8_qat recipe's).")] = None,
) -> None:
    """Quantize a model to int8 (NNCF) for OpenVINO or ONNX Runtime; run it with --weights OUT anywhere."""
    from rich.console import Console

    from ..quantize import quantize_model
    from .train import train_progress

    result = quantize_model(model=model, weights=weights, calib=calib, out=out, method=method, backend=backend,
                            calib_count=calib_count, calib_size=calib_size, qat_iters=qat_iters,
                            train_hooks=train_progress(Console(stderr=True)))
    check = result.metadata["psnr_check"]
    kept = len(result.metadata["recipe"]["fp32_convolutions"])
    typer.echo(f"wrote {result.path}: {result.metadata['config']['name']} ×{result.metadata['config']['scale']} int8 "
               f"for {backend} ({kept} convolutions kept fp32); Y-PSNR on {len(check['images'])} held-out image(s) "
               f"{check['psnr_y_fp32']:.2f} → {check['psnr_y_int8']:.2f} dB ({check['change_db']:+.3f})")
