"""report.html in a real browser: headless Chromium (the Debian package ``chromium``) driven by Playwright.

The page is opened from disk with the network disabled; the test fails on any console error, any page error
and any request other than the file itself, checks that every chart and map is drawn with a non-zero size,
and saves screenshots in the test's temporary folder (the whole page, and the page as printed on A4).
That test is skipped, with the reason printed, when the system has no chromium (``.ci/run`` installs it); the
check of the file's text beside it runs everywhere.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from redss_pipeline.analysis.stage import run_analysis
from redss_pipeline.core.config import load_config

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="browser test skipped: no chromium on this system (apt-get install chromium)")


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """The report of the stage-3 outputs of the golden data root (2019-compatible), every map level drawn."""
    tmp_path = tmp_path_factory.mktemp("report")
    raw = json.loads((PROJECT_ROOT / "pipeline_config.json").read_text(encoding="utf-8"))
    raw["code_schemes"]["directory"] = str(PROJECT_ROOT / "code_schemes")
    raw["analysis"]["maps"]["dpi"] = 60
    config_path = tmp_path / "pipeline_config.json"
    config_path.write_text(json.dumps(raw), encoding="utf-8")
    root = tmp_path / "data root"
    (root / "Outputs").mkdir(parents=True)
    for name in ("csap_mes.csv", "csap_ind.csv"):
        shutil.copy(PROJECT_ROOT / "tests" / "golden" / "expected" / name, root / "Outputs" / name)
    summary = run_analysis(config=load_config(config_path), data_root=root, progress=None)
    assert summary.report is not None
    return summary.report


@needs_chromium
def test_report_renders_offline_with_every_chart_and_map(report: Path, tmp_path: Path):
    from playwright.sync_api import sync_playwright

    url = report.resolve().as_uri()
    requests: list[str] = []
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = browser.new_context(offline=True, viewport={"width": 1366, "height": 900})
            page = context.new_page()
            page.on("request", lambda request: requests.append(request.url))
            page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto(url, wait_until="load")
            images = page.eval_on_selector_all(
                "figure.chart img",
                "els => els.map(e => ({alt: e.alt, complete: e.complete, natural: e.naturalWidth,"
                " width: e.getBoundingClientRect().width, height: e.getBoundingClientRect().height}))")
            sections = page.eval_on_selector_all("main > section", "els => els.map(e => e.id)")
            summary_text = page.inner_text("#summary")
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
            page.set_viewport_size({"width": 390, "height": 844})  # a phone: nothing wider than the screen
            phone_width = page.evaluate("document.documentElement.scrollWidth")
            page.emulate_media(media="print")
            page.pdf(path=str(tmp_path / "report-a4.pdf"), format="A4")
            page.screenshot(path=str(tmp_path / "report-print.png"), full_page=False)
        finally:
            browser.close()

    assert requests == [url], f"requests other than the file itself: {requests}"
    assert problems == [], f"console errors: {problems}"
    maps = [image for image in images if image["alt"].startswith("Map of Somalia by ")]
    assert len(images) >= 20, images
    assert len(maps) >= 3, maps
    # Not the caption again (a screen reader reads both): what the image is, and where its numbers are.
    assert {image["alt"] for image in images if image not in maps} == {"Bar chart of the numbers in the table below"}
    assert "Map of Somalia by region, each region shaded by its number of opt-in people and labelled with it" in {
        image["alt"] for image in maps}
    broken = [image for image in images if not image["complete"] or image["natural"] == 0
              or image["width"] == 0 or image["height"] == 0]
    assert broken == [], f"charts or maps not drawn: {broken}"
    assert sections[:4] == ["summary", "engagement", "repeat", "new-returning"]
    assert {"themes", "demographics", "traffic", "maps", "definitions"} <= set(sections)
    assert "messages" in summary_text and "Coding progress: messages sent" in summary_text
    assert phone_width <= 390, f"the page is {phone_width} px wide on a 390 px phone screen"
    assert (tmp_path / "report.png").stat().st_size > 10_000
    assert (tmp_path / "report-a4.pdf").stat().st_size > 10_000
    print(f"screenshots: {tmp_path / 'report.png'}, {tmp_path / 'report-print.png'}")


def test_report_has_no_reference_to_another_file_or_host(report: Path):
    """Self-contained: no src/href to http(s), no stylesheet or script file."""
    html = report.read_text(encoding="utf-8")
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html
    assert "<link" not in html and "<script" not in html
