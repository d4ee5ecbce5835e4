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


# --------------------------------------------------------------------------------------------------------------
# words, ticks and placement, on the AIS 2024 Table 1 rows of the notes


def _ais_table1_ranking():  # type: ignore[no-untyped-def]
    from helpers import shared_path

    text = shared_path("docs", "notes", "seed-ais2024.md").read_text(encoding="utf-8")
    section = text.split("## 3. Results", 1)[1].split("Row → team", 1)[0]
    lines = [ln for ln in section.splitlines() if ln.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    records = []
    for ln in lines[2:]:
        cells = [c.strip() for c in ln.strip().strip("|").split("|")]
        record = dict(zip(header, cells, strict=True))
        record["Team / Method (Sec.)"] = re.sub(r"\s*\(\d+\.\d+\)$", "", cells[0])
        record["baseline"] = cells[0].startswith("Baseline")
        records.append(record)
    return rank_rows(rows_from_records(records, "table1"), "ais2024")


METRIC_KEY = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b")  # psnr_y_mean, runtime_ms, params_m ...


def _intersects(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@pytest.mark.shared
def test_figures_speak_in_words_with_plain_log_ticks_and_free_labels() -> None:
    from esrkit.challenge.report import report_figures

    ranking = _ais_table1_ranking()
    figures = report_figures(ranking)
    runtime, params = figures["psnr-runtime"], figures["params-psnr"]
    assert runtime is not None and params is not None
    for fig in (runtime, params):
        for text in (fig.title, fig.x_label, fig.y_label, *fig.legend):
            assert not METRIC_KEY.search(text), text
        assert fig.y_label == "PSNR-Y, mean of QP31/QP63 [dB]"
        assert "Lanczos 30.935 dB" in fig.legend  # (32.75 + 29.12) / 2, Table 1's Lanczos row
        # names and the legend cover no marker; names stay inside the axes; the legend is outside them
        for box in fig.label_boxes:
            assert not any(_intersects(box, marker) for marker in fig.marker_boxes)
            x0, y0, x1, y1 = fig.frame
            assert x0 <= box[0] and box[2] <= x1 and y0 <= box[1] and box[3] <= y1
        assert sum(_intersects(a, b) for i, a in enumerate(fig.label_boxes) for b in fig.label_boxes[i + 1:]) == 0
        assert fig.legend_box is not None and not _intersects(fig.legend_box, fig.frame)
        # 17 entries have a runtime and a PSNR: nearly all are named, URPNet (below Lanczos) is in range
        assert len(fig.labelled) + len(fig.unlabelled) == 17 and len(fig.unlabelled) <= 2
        assert "URPNet" not in fig.hidden and fig.hidden == ()
    assert runtime.title == "PSNR-Y, mean of QP31/QP63 vs runtime"
    assert runtime.x_label == "Runtime [ms], log scale"
    assert runtime.x_ticks == ("0.5", "1", "2", "5")  # Table 1 spans 0.399 to 7.542 ms: plain numbers
    assert params.title == "PSNR-Y, mean of QP31/QP63 vs number of parameters"
    assert params.x_label == "Parameters [M]"

    page = render_report(ranking)
    body = re.sub(r'src="data:image/png;base64,[^"]+"', "", page)
    visible = re.sub(r"<style>.*?</style>|<[^>]+>", " ", body, flags=re.S)
    assert not METRIC_KEY.search(visible), METRIC_KEY.search(visible)  # no key anywhere a reader looks
    assert "ais_score" not in visible and "psnr_y_mean" not in page
    assert "Score S = 2·2^Δ / (√T · C) with C = 0.1" in visible
    assert "improve on Lanczos (Δ &gt; 0 dB); runtime under 33 ms" in body
    assert "The dashed line: Lanczos 30.935 dB." in visible
    assert "Δ -0.080 dB: no improvement over Lanczos" in visible  # URPNet, derived from Table 1's PSNR-Y


def test_notes_name_metrics_in_words() -> None:
    page = render_report(_ranking())
    table = page.split('id="ranking"', 1)[1].split("</table>", 1)[0]
    assert "Test PSNR 26.88 dB &lt; 26.95 dB floor" in table and "psnr_test" not in table
    assert "Val PSNR 28.96 dB below the stated 29.00 dB" in table and "psnr_val" not in table


TABLE_PROBE = """<script>
window.addEventListener("load", () => {
  const wrap = document.querySelector(".tablewrap");
  document.body.setAttribute("data-probe", JSON.stringify({images: 0, rendered: 0, figures: 0,
    rows: document.querySelectorAll("#ranking tbody tr").length, scroll: wrap.scrollWidth, width: wrap.clientWidth}));
});
</script>"""


@pytest.mark.shared
def test_ais_table_fits_the_page_in_headless_chromium(tmp_path: Path) -> None:
    browser = _chromium()
    path = tmp_path / "fit.html"
    path.write_text(render_report(_ais_table1_ranking()).replace("</body>", TABLE_PROBE + "</body>"), encoding="utf-8")
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,900", "--dump-dom", path.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    match = re.search(r'data-probe="([^"]*)"', proc.stdout)
    assert match, proc.stderr[-2000:]
    probe = json.loads(match.group(1).replace("&quot;", '"'))
    assert probe["rows"] == 18
    assert probe["scroll"] <= probe["width"], probe  # no horizontal scrolling at a 1280 px window
