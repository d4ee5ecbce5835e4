"""The HTML challenge report: self-contained, holds the table and figures, and renders in a real browser."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from esrkit.challenge import rank_rows, rows_from_records
from esrkit.challenge.report import find_crop_sets, pick_crop, render_report, write_report
from esrkit.errors import InputError

ROWS = [
    {"team": "Quick", "runtime_ms": 18.3, "params_m": 0.243, "flops_g": 14.9, "acts_m": 72.97, "memory_mb": 495.9,
     "psnr_val": 29.04, "psnr_test": 26.95},
    {"team": "Small", "runtime_ms": 75.9, "params_m": 0.095, "flops_g": 5.58, "acts_m": 220.9, "memory_mb": 517.1,
     "psnr_val": 29.00, "psnr_test": 27.09},
    {"team": "Lean", "runtime_ms": 27.8, "params_m": 0.209, "flops_g": 13.3, "acts_m": 118.7, "memory_mb": 188.2,
     "psnr_val": 28.96, "psnr_test": 27.03},
    {"team": "Blurry", "runtime_ms": 26.9, "params_m": 0.198, "flops_g": 11.2, "acts_m": 86.2, "memory_mb": 731.0,
     "psnr_val": 28.81, "psnr_test": 26.88},
    {"team": "RFDN", "baseline": True, "runtime_ms": 35.5, "params_m": 0.433, "flops_g": 27.1, "acts_m": 112.0,
     "memory_mb": 788.1, "psnr_val": 29.04, "psnr_test": 27.11},
]  # fmt: skip

EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//|<link\b|@import|url\(\s*["']?https?:""", re.I)


def _ranking():  # type: ignore[no-untyped-def]
    return rank_rows(rows_from_records(ROWS, "rows"), "ntire2023")


def _images_dir(root: Path) -> Path:
    """HR with one textured 32×32 square at (y=64, x=96) on a smooth ramp, plus two models' SR outputs."""
    rng = np.random.default_rng(1)
    ramp = np.linspace(60, 180, 192)[None, :, None].repeat(160, 0).repeat(3, 2)
    hr = ramp.copy()
    hr[64:96, 96:128] = rng.integers(0, 256, (32, 32, 3))
    hr = hr.astype(np.uint8)
    (root / "HR").mkdir(parents=True)
    Image.fromarray(hr).save(root / "HR" / "0801.png")
    for model, noise in (("Quick", 6), ("Small", 2)):
        (root / model).mkdir()
        sr = np.clip(hr.astype(int) + rng.integers(-noise, noise + 1, hr.shape), 0, 255).astype(np.uint8)
        Image.fromarray(sr).save(root / model / "0801_x4.png")
    return root


def test_pick_crop_finds_the_textured_square(tmp_path: Path) -> None:
    hr = np.asarray(Image.open(_images_dir(tmp_path) / "HR" / "0801.png"))
    assert pick_crop(hr, 32) == (64, 96, 32)


def test_report_is_self_contained_with_table_and_figures(tmp_path: Path) -> None:
    ranking = _ranking()
    sets = find_crop_sets(_images_dir(tmp_path / "img"), 4, crop_size=32, order=["Small", "Quick"])
    page = render_report(ranking, crop_sets=sets)
    assert not EXTERNAL.search(page), EXTERNAL.search(page)
    assert "<script" not in page.lower()
    table = page.split('id="ranking"', 1)[1].split("</table>", 1)[0]
    for row in ROWS:
        assert f">{row['team']}<" in table
    assert "26.88 dB &lt; 26.95 dB floor" in table  # the unranked entry says why
    assert 'id="fig-psnr-runtime"' in page and 'id="fig-params-psnr"' in page
    pngs = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(pngs) == 2 + 4  # two figures, then HR / bicubic / Small / Quick crops
    for b64 in pngs:
        Image.open(io.BytesIO(base64.b64decode(b64))).verify()
    crops = page.split("Visual comparison", 1)[1]
    assert crops.index(">Small<") < crops.index(">Quick<")  # follows the given order
    # crops are 32×32 from (64, 96)
    crop = Image.open(io.BytesIO(base64.b64decode(pngs[2])))
    assert crop.size == (32, 32)


def test_write_report_is_atomic_and_cli_infers_challenge(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from esrkit.cli import app

    out = write_report(_ranking(), tmp_path / "r.html")
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]  # no temp file left behind

    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps({"challenge": "ntire2023", "rows": ROWS}), encoding="utf-8")
    result = CliRunner().invoke(app, ["report", str(rows), "-o", str(tmp_path / "cli.html")])
    assert result.exit_code == 0, result.output
    assert "Quick" in (tmp_path / "cli.html").read_text(encoding="utf-8")


def test_report_input_errors(tmp_path: Path) -> None:
    from esrkit.cli import main

    rows = tmp_path / "rows.csv"
    rows.write_text("team,runtime_ms\nA,1\n", encoding="utf-8")
    assert main(["report", str(rows), "-o", str(tmp_path / "r.html")]) == 2  # no --challenge to infer
    (tmp_path / "img").mkdir()
    with pytest.raises(InputError, match="HR"):
        find_crop_sets(tmp_path / "img", 4)


# --------------------------------------------------------------------------------------------------------------
# headless Chromium

PROBE = """<script>
window.addEventListener("load", () => {
  const imgs = Array.from(document.images);
  const ok = imgs.filter((i) => i.complete && i.naturalWidth > 0).length;
  document.body.setAttribute("data-probe", JSON.stringify({images: imgs.length, rendered: ok,
    figures: document.querySelectorAll("figure.fig img").length,
    rows: document.querySelectorAll("#ranking tbody tr").length}));
});
</script>"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("headless render check needs Debian's `chromium` on PATH (apt-get install chromium); not installed")


def _render(browser: str, page: str, tmp_path: Path) -> tuple[dict[str, int], list[str]]:
    """Load ``page`` (with the probe injected) in headless Chromium; the probe's findings and console lines."""
    path = tmp_path / "probe.html"
    path.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
         "--dump-dom", path.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    match = re.search(r'data-probe="([^"]*)"', proc.stdout)
    assert match, f"page did not finish loading (rc={proc.returncode}): {proc.stderr[-2000:]}"
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return json.loads(match.group(1).replace("&quot;", '"')), console


def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    browser = _chromium()
    sets = find_crop_sets(_images_dir(tmp_path / "img"), 4, crop_size=32)
    probe, console = _render(browser, render_report(_ranking(), crop_sets=sets), tmp_path)
    assert probe == {"images": 6, "rendered": 6, "figures": 2, "rows": len(ROWS)}
    assert console == []
    # the probe itself can fail: a corrupt inline image is reported as not rendered
    broken = render_report(_ranking()).replace("base64,iVBOR", "base64,AAAA", 1)
    probe, _ = _render(browser, broken, tmp_path)
    assert probe["rendered"] == probe["images"] - 1
