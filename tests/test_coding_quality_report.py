"""The analysis report shows the "coding quality" section (coding-quality.md section 6), made by stage 3 from the
run's own measures and by the analysis run alone from the files."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from redss_pipeline.analysis.stage import run_analysis
from redss_pipeline.core.config import load_config
from redss_pipeline.core.run_context import RunContext
from redss_pipeline.generate.stage import run_generate

TESTS = Path(__file__).resolve().parent
CONFIG = load_config(TESTS.parent / "pipeline_config.json")


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_stage_3_report_has_the_coding_quality_section(tmp_path):
    root = tmp_path / "data_root"
    shutil.copytree(TESTS / "golden" / "data_root", root)
    shutil.copytree(TESTS / "coding_quality" / "Coded Coda Files" / "ICR", root / "Coded Coda Files" / "ICR")
    run_generate(config=CONFIG, data_root=root, run=RunContext.now("report@example.org"), progress=None)
    report = root / "Outputs" / "Analysis" / "report.html"
    html = report.read_text(encoding="utf-8")
    assert '<section id="coding-quality">' in html
    text = _text(html)
    # The band with what a reader needs to weigh it (tests/coding_quality: 7 units, so a prevalence of 0.143 is
    # 2 of the 14 judgements, and 0.278 to 1.000 is a wide interval).
    assert ("s01e03: S01E03 Reasons Krippendorff's alpha 0.690 (95% interval 0.278 to 1.000), tentative (wide "
            "interval: uncertain)") in text
    assert ("axes_of_discrimination_access_to_housing 1.000 1.000 to 1.000 good (given 2 times in the messages both "
            "coded: too rare to judge)") in text
    assert ("discriminating_actor_government 0.000 -0.182 to 0.000 unreliable (given 1 time in the messages both "
            "coded: too rare") in text
    assert "a wide one (here 0.3 or more)" in text and "fewer than 5 times" in text
    assert "s01e01 11 6 54.5" in text  # the progress table

    # The analysis alone (generate_outputs.py analyse) measures from the files: the same section, and the two
    # CSVs written again with the rest of Outputs/Analysis.
    agreement = (root / "Outputs" / "Analysis" / "icr_agreement.csv").read_bytes()
    run_analysis(config=CONFIG, data_root=root, progress=None)
    again = report.read_text(encoding="utf-8")
    section = re.search(r'<section id="coding-quality">.*?</section>', html, re.S)
    assert section is not None and section.group(0) in again
    assert (root / "Outputs" / "Analysis" / "icr_agreement.csv").read_bytes() == agreement
