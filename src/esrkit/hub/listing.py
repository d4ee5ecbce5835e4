"""What ``esrkit models`` lists: the bundled model and every zoo model, each with its released weights.

One record per model, the same for the table and ``--json``: the registry's facts (:func:`esrkit.models.registry.
zoo_summary`: family, parameters, input range, scales, capabilities, paper) and the catalogue's (released files
per scale and form, each file's licence, whether it is cached). The bundled ``esrkit_x4`` comes first, read from
its file (:func:`esrkit.bundled.bundled_summary`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from ..bundled import BUNDLED_MODEL, LICENCE, bundled_summary
from .resolve import weights_summary

__all__ = ["zoo_listing"]


def _bundled_record(scale: int) -> dict[str, Any]:
    row = bundled_summary()
    if row is None:
        return {"name": BUNDLED_MODEL, "bundled": True, "available": False, "needs_weights": True, "released": [],
                "licences": []}
    provenance = row["provenance"]
    recipe = provenance.get("recipe")
    scores = provenance.get("scores") or provenance.get("val") or {}
    # the scores also hold SSIM and RGB figures: the listing shows the papers' figure, Y-PSNR, per benchmark
    text = ", ".join(f"{k.removeprefix('psnr_y_')} {float(v):.2f} dB" for k, v in scores.items()
                     if k.startswith("psnr_y_") and isinstance(v, int | float))
    paper = (f"esrkit's own, bundled: {row['architecture']} trained by esrkit (recipe "
             f"{(recipe.get('name') if isinstance(recipe, dict) else recipe) or '?'})" + (f"; Y-PSNR {text}" if text
                                                                                          else ""))
    return {
        "name": BUNDLED_MODEL, "bundled": True, "available": True, "family": row["family"],
        "architecture": row["architecture"], "params": None,
        "deploy_params": row["params"] if scale in row["scales"] else None, "input_range": row["input_range"],
        "scales": row["scales"], "capabilities": dataclasses.asdict(row["capabilities"]),
        "paper": paper, "provenance": provenance, "path": str(row["path"]), "needs_weights": True, "released": [],
        "licences": [str(provenance.get("licence") or LICENCE)],
    }


def zoo_listing(scale: int = 4, on_model: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Every model's record (JSON-ready): the bundled model first, then the zoo by name; parameters at ``scale``.
    ``on_model(name)`` follows each zoo model counted (seconds for the zoo: the caller's progress)."""
    from ..models.registry import zoo_summary

    records = [_bundled_record(scale)]
    for row in zoo_summary(scale, on_model=on_model):
        record = {**row, "capabilities": dataclasses.asdict(row["capabilities"]), "bundled": False}
        records.append({**record, **weights_summary(row["name"])})
    return records
