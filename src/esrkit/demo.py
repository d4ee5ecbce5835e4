"""``esrkit demo``: esrkit's own model on a sample photo that ships with the package, against bicubic.

The first thing a newcomer runs should show, offline and in seconds, what the package is for. The demo takes the
sample (``esrkit/samples/astronaut.png``, a 256×256 crop of a public-domain NASA portrait, see ``SOURCE.md``
beside it) as the ground truth, makes its ×4 LR the way every benchmark does (MATLAB-exact bicubic ÷4, rounded to
uint8), and upscales that LR twice: with MATLAB bicubic ×4 (the baseline row of every SR table) and with the model
(the bundled ``esrkit_x4`` unless ``model``/``weights`` name another). It writes into one folder:

* ``lr.png`` (64×64), ``bicubic_x4.png``, ``sr_x4.png`` and ``hr.png`` (the sample itself);
* ``side_by_side.png``: LR (pixels enlarged ×4, nearest), bicubic, SR and the original in a row, labelled;
* ``demo.html``: one self-contained page (images inline as base64, no external reference) with the scores, the
  four panels and a zoomed crop of the most detailed square (:func:`detailed_crop`), where SR and bicubic differ.

Scores are the papers' (:func:`esrkit.metrics.calculate_metrics`: uint8 images, a border of 4 pixels cut, PSNR and
SSIM on Y and RGB), so the SR figures are comparable to a benchmark row, though a single 256×256 image is no
benchmark. The time is the model's forward on the 64×64 LR alone (model loading excluded): one warm-up call, then
the median of ``repeats`` calls.
"""

from __future__ import annotations

import base64
import html
import io
import os
import statistics
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError

__all__ = ["SAMPLE", "SCALE", "DemoResult", "load_sample", "run_demo", "sample_path", "summary_lines"]

SAMPLE = "astronaut.png"
SCALE = 4  # the bundled model's scale, and the challenges'
_ZOOM_CROP = 48  # HR pixels per side of the zoomed crop (shown 4× enlarged)
_GAP = 4  # pixels between panels of side_by_side.png


def sample_path() -> Path:
    """The packaged sample image (installed as package data beside its ``SOURCE.md``)."""
    path = Path(str(resources.files("esrkit").joinpath("samples", SAMPLE)))
    if not path.is_file():
        raise InputError(f"the sample image {path} is missing from this installation")
    return path


def load_sample() -> np.ndarray:
    """The sample as an H×W×3 uint8 RGB array, mod-cropped to the demo's scale."""
    from .data.io import mod_crop, read_image

    return mod_crop(read_image(sample_path()), SCALE)


@dataclass
class DemoResult:
    """What :func:`run_demo` measured and wrote."""

    out_dir: Path
    model: str  # the model's label: esrkit_x4, a zoo name, or the weights file's stem
    architecture: str  # the registry name the model was built as (dipnet, rlfn_ntire, bicubic, …)
    params: int
    hr_shape: tuple[int, int]
    lr_shape: tuple[int, int]
    sr: dict[str, float]  # calculate_metrics of SR against the sample
    bicubic: dict[str, float]  # the same for bicubic ×4
    seconds: float  # median forward time on the LR
    device: str
    files: dict[str, Path] = field(default_factory=dict)
    calls: int = 1  # timed calls behind ``seconds`` (after one warm-up)
    backend: str = "torch"  # what ran the model (``--backend auto`` picks it)

    @property
    def gain_db(self) -> float:
        """Y-PSNR of SR over bicubic."""
        return self.sr["psnr_y"] - self.bicubic["psnr_y"]


def run_demo(out: str | os.PathLike[str], *, model: str | None = None,
             weights: str | os.PathLike[str] | None = None, device: str | None = "auto", precision: str = "fp32",
             repeats: int = 3, random_weights: bool = False) -> DemoResult:
    """Run the demo into the folder ``out`` (created; existing files of the same names are replaced).

    Without ``model`` and ``weights`` the model is esrkit's bundled one (an :class:`InputError` with
    :data:`esrkit.bundled.MISSING_MESSAGE` when this installation has none). Everything is checked before any work;
    the files appear together at the end (written in a scratch folder, then moved), so a failed run leaves none.
    """
    from .bundled import BUNDLED_MODEL, resolve_model_choice
    from .data.io import write_image
    from .data.resize import imresize
    from .fileio import check_output_path, staged_dir
    from .hub import check_choice
    from .infer import Upscaler
    from .metrics import calculate_metrics
    from .models.registry import get_config

    out = check_output_path(out, param="out", kind="dir")
    if repeats < 1:
        raise InputError(f"must be >= 1, got {repeats}", param="repeats")
    label = model or (Path(weights).stem if weights is not None else BUNDLED_MODEL)
    model, weights = resolve_model_choice(model, weights)
    check_choice(model, SCALE, weights, random_weights)  # a name without released weights stops here
    hr = load_sample()
    upscaler = Upscaler.from_name(model, scale=SCALE, weights=weights, device=device, precision=precision,
                                  random_weights=random_weights)
    config = get_config(upscaler.model)

    lr = np.asarray(imresize(hr, 1.0 / SCALE))  # uint8 in, uint8 out (rounded), as the benchmarks' LR
    bicubic = np.asarray(imresize(lr, float(SCALE)))
    upscaler(lr)  # warm-up: first-call allocation and kernel selection are not the model's speed
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        sr = upscaler(lr)
        times.append(time.perf_counter() - start)
    result = DemoResult(
        out_dir=out, model=label, architecture=config.name if config is not None else type(upscaler.model).__name__,
        params=getattr(upscaler.model, "parameter_count", None) or sum(p.numel() for p in upscaler.model.parameters()),
        hr_shape=hr.shape[:2], lr_shape=lr.shape[:2],
        sr=calculate_metrics(sr, hr, SCALE), bicubic=calculate_metrics(bicubic, hr, SCALE),
        seconds=statistics.median(times), device=str(upscaler.device), calls=repeats,
        backend=getattr(upscaler.model, "describe", lambda: "torch")(),
    )
    images = {"lr.png": lr, "bicubic_x4.png": bicubic, "sr_x4.png": sr, "hr.png": hr,
              "side_by_side.png": _side_by_side(lr, bicubic, sr, hr, result)}
    with staged_dir(out) as scratch:
        for name, image in images.items():
            write_image(scratch / name, image)
        (scratch / "demo.html").write_text(_page(images, result), encoding="utf-8")
    result.files = {name: out / name for name in [*images, "demo.html"]}
    return result


# ---------------------------------------------------------------------------------------------------- pictures


def _nearest(image: np.ndarray, factor: int) -> np.ndarray:
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def _captions(result: DemoResult) -> list[str]:
    return [f"LR {result.lr_shape[1]}x{result.lr_shape[0]} (x{SCALE} nearest)",
            f"bicubic x{SCALE}: PSNR-Y {result.bicubic['psnr_y']:.2f} dB",
            f"{result.model}: PSNR-Y {result.sr['psnr_y']:.2f} dB",
            "original"]


def _side_by_side(lr: np.ndarray, bicubic: np.ndarray, sr: np.ndarray, hr: np.ndarray,
                  result: DemoResult) -> np.ndarray:
    """The four panels in a row on white, each with its caption above (Pillow's built-in font, so no font file
    is needed). Captions are ASCII: the built-in bitmap font has no ×."""
    from PIL import Image, ImageDraw, ImageFont

    panels = [_nearest(lr, SCALE), bicubic, sr, hr]
    h, w = hr.shape[:2]
    strip = 18
    canvas = Image.new("RGB", (len(panels) * w + (len(panels) - 1) * _GAP, h + strip), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for i, (panel, caption) in enumerate(zip(panels, _captions(result), strict=True)):
        x = i * (w + _GAP)
        canvas.paste(Image.fromarray(np.ascontiguousarray(panel[:h, :w])), (x, strip))
        draw.text((x + 2, 3), caption, fill="black", font=font)
    return np.asarray(canvas).copy()


def _png_b64(image: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(image: np.ndarray, caption: str) -> str:
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{_png_b64(image)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _box_mean(values: np.ndarray, size: int) -> np.ndarray:
    """Mean of every ``size``×``size`` window of ``values`` (valid windows only), from an integral image."""
    s = np.pad(values, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    return (s[size:, size:] - s[:-size, size:] - s[size:, :-size] + s[:-size, :-size]) / float(size * size)


def detailed_crop(hr: np.ndarray, size: int, step: int = SCALE) -> tuple[int, int, int]:
    """Top-left corner and side of the ``size``×``size`` square with the most detail: the highest mean *local*
    standard deviation (of luma in 5×5 neighbourhoods), on a grid of ``step`` pixels (the scale, so the LR crop
    is exact).

    Why not the variance of the whole square (:func:`esrkit.challenge.report.pick_crop`): one high-contrast
    edge maximises that, and on the sample it picked the dark collar against the white suit, a region where SR
    and bicubic look alike. The local deviation adds up fine structure everywhere in the square (fabric folds,
    the helmet ring), where an SR model and bicubic differ; a deviation rather than a variance, so that a single
    strong edge does not outweigh texture spread over the whole square."""
    img = hr.astype(np.float64)
    luma = img if img.ndim == 2 else img[..., :3] @ np.array([0.299, 0.587, 0.114])
    k = 5
    padded = np.pad(luma, k // 2, mode="reflect")
    local_std = np.sqrt(np.maximum(_box_mean(padded * padded, k) - _box_mean(padded, k) ** 2, 0.0))
    size = max(1, min(size, *luma.shape))
    detail = _box_mean(local_std, size)[::step, ::step]
    iy, ix = np.unravel_index(int(np.argmax(detail)), detail.shape)
    return int(iy * step), int(ix * step), size


def _page(images: dict[str, np.ndarray], result: DemoResult) -> str:
    """The one-page HTML: scores, the four panels, and the zoomed crop (4× nearest, so pixels stay pixels)."""
    hr = images["hr.png"]
    y, x, size = detailed_crop(hr, _ZOOM_CROP)
    zoom = 4
    lr_crop = images["lr.png"][y // SCALE:(y + size) // SCALE, x // SCALE:(x + size) // SCALE]
    crops = [(_nearest(lr_crop, SCALE * zoom), "LR"), (_nearest(images["bicubic_x4.png"][y:y + size, x:x + size], zoom),
             "bicubic"), (_nearest(images["sr_x4.png"][y:y + size, x:x + size], zoom), result.model),
             (_nearest(hr[y:y + size, x:x + size], zoom), "original")]
    panels = [(_nearest(images["lr.png"], SCALE), "LR (nearest ×4)"), (images["bicubic_x4.png"], "bicubic ×4"),
              (images["sr_x4.png"], f"{result.model} ×4"), (hr, "original")]
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{m['psnr_y']:.2f}</td><td>{m['ssim_y']:.4f}</td>"
        f"<td>{m['psnr_rgb']:.2f}</td><td>{m['ssim_rgb']:.4f}</td></tr>"
        for name, m in ((f"bicubic ×{SCALE}", result.bicubic), (result.model, result.sr)))
    esc = html.escape
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>esrkit demo: {esc(result.model)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }} td, th {{ padding: .25em .8em; border-bottom: 1px solid #ddd; }}
td + td, th + th {{ text-align: right; }} figure {{ display: inline-block; margin: 0 .6em .6em 0; }}
img {{ image-rendering: pixelated; display: block; }} figcaption {{ font-size: .9em; color: #555; }}
</style></head><body>
<h1>esrkit demo: {esc(result.model)} ×{SCALE}</h1>
<p>The sample ({esc(SAMPLE)}, {result.hr_shape[1]}×{result.hr_shape[0]}, a public-domain NASA photograph) is the
ground truth. Its LR ({result.lr_shape[1]}×{result.lr_shape[0]}) is MATLAB bicubic ÷{SCALE}; both upscales are
scored against the sample the papers' way (border {SCALE} pixels, Y = BT.601 luma).</p>
<table><tr><th></th><th>PSNR-Y [dB]</th><th>SSIM-Y</th><th>PSNR-RGB [dB]</th><th>SSIM-RGB</th></tr>{rows}</table>
<p>{esc(result.model)} ({esc(result.architecture)}, {result.params:,} parameters): {result.gain_db:+.2f} dB Y-PSNR over
bicubic; {result.seconds * 1000:.1f} ms for the {result.lr_shape[1]}×{result.lr_shape[0]} LR on {esc(result.device)}
(median of the timed calls after one warm-up).</p>
<h2>Side by side</h2>
{"".join(_figure(img, cap) for img, cap in panels)}
<h2>Zoomed crop ({size}×{size} HR pixels at ({x}, {y}), shown {zoom}×)</h2>
{"".join(_figure(img, cap) for img, cap in crops)}
</body></html>
"""


def summary_lines(result: DemoResult) -> list[str]:
    """What ``esrkit demo`` prints: the model, the scores of SR and bicubic, the time, the files."""
    bicubic = f"bicubic x{SCALE}"
    width = max(len(bicubic), len(result.model))

    def row(name: str, m: dict[str, Any]) -> str:
        return f"  {name:<{width}} {m['psnr_y']:>7.2f} {m['ssim_y']:>8.4f} {m['psnr_rgb']:>9.2f} {m['ssim_rgb']:>9.4f}"

    h, w = result.hr_shape
    return [
        f"{result.model} ({result.architecture}, {result.params:,} parameters) on {SAMPLE} {w}x{h}, "
        f"LR {result.lr_shape[1]}x{result.lr_shape[0]} (MATLAB bicubic /{SCALE})",
        f"  {'':<{width}} {'PSNR-Y':>7} {'SSIM-Y':>8} {'PSNR-RGB':>9} {'SSIM-RGB':>9}",
        row(bicubic, result.bicubic),
        row(result.model, result.sr),
        f"{result.gain_db:+.2f} dB Y-PSNR over bicubic; SR in {result.seconds * 1000:.1f} ms on {result.device} "
        f"({result.backend}; median of {result.calls} calls after a warm-up)",
        f"wrote {result.files['side_by_side.png']}, {result.files['demo.html']} "
        f"(and lr.png, bicubic_x4.png, sr_x4.png, hr.png)",
    ]
