"""A self-contained HTML report of a challenge ranking: :mod:`.figures` (with :mod:`.labels`), :mod:`.crops` and
:mod:`.page`.

One file, no external references: CSS is inline and every figure is a base64 PNG drawn with matplotlib's Agg
backend (no display, no pyplot global state), so the page can be mailed, attached to a CI run or opened
offline. It contains the ranked table, PSNR vs runtime (log time axis, the PSNR floor drawn as a line),
params vs PSNR, and side-by-side crops when SR images are available.

Images folder layout (``--images DIR``)::

    DIR/
      HR/              ground truth, e.g. 0801.png          (required; folder name case-insensitive)
      LR/              optional LR inputs: the "bicubic" column upsamples these
      bicubic/         optional ready-made bicubic upscales (preferred over LR/)
      <model>/         one folder per model with its SR outputs, named like the HR file; a suffix after
                       the stem is allowed (0801_x4.png, 0801-SR.png, 0801x4.png)

Without ``bicubic/`` and ``LR/`` the bicubic column is a MATLAB-style bicubic down-and-up round trip of the
HR. The crop is the highest-variance square of the HR (textured regions are where SR models differ),
searched on a half-patch grid inside the area every image covers.
"""

from __future__ import annotations

from .crops import CropSet, find_crop_sets, pick_crop
from .figures import ScatterFigure, report_figures
from .page import render_report, write_report

__all__ = ["CropSet", "ScatterFigure", "find_crop_sets", "pick_crop", "render_report", "report_figures", "write_report"]
