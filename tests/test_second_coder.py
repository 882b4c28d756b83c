"""The demo's second coder (coding-quality.md section 1, the demo part of issue 10): it codes the ICR Coda files
blind into Coded Coda Files/ICR/, seeded, with its own mistakes and confusions between neighbouring codes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

from redss_pipeline.core.config import load_config
from redss_pipeline.core.data_root import DataRoot
from redss_pipeline.demo.second_coder import SECOND_CODER, code_icr_datasets

CONFIG = load_config(Path(__file__).resolve().parents[1] / "pipeline_config.json")
TEXTS = ["shaqo abuur dhalinyarada iyo haweenka", "jobs for youth", "guryo loo dhiso barakacayaasha",
         "biyo nadiif ah ayay u baahan yihiin dadka barakacayaasha ah"]


def _root(tmp_path: Path) -> DataRoot:
    root = DataRoot(tmp_path)
    root.icr_coda_dir.mkdir(parents=True)
    messages = [{"CreationDateTimeUTC": f"2018-12-0{i + 3}T09:00:00+00:00", "Labels": [],
                 "MessageID": hashlib.sha256(text.encode()).hexdigest(), "Text": text} for i, text in enumerate(TEXTS)]
    (root.icr_coda_dir / "s01e01.json").write_text(json.dumps(messages), encoding="utf-8")
    return root


def _codes(root: DataRoot) -> dict[str, list[str]]:
    scheme = CONFIG.rqa_plan("s01e01").scheme
    coded = json.loads((root.icr_coded_dir / "s01e01.json").read_text(encoding="utf-8"))
    return {m["Text"]: [scheme.code_by_id(label["CodeID"]).string_value for label in m["Labels"]
                        if label["Checked"] and label["Origin"]["OriginID"] == SECOND_CODER.coder] for m in coded}


def test_a_careful_second_coder_gives_the_truth(tmp_path):
    root = _root(tmp_path)
    done = code_icr_datasets(str(root.root), config=CONFIG, profile=replace(SECOND_CODER, error=0, skip=0),
                             confusion=0)
    assert done == {"s01e01.json": 4}  # shows without an ICR file are skipped
    assert _codes(root) == {TEXTS[0]: ["job_creation"], TEXTS[1]: ["job_creation"], TEXTS[2]: ["shelter"],
                            TEXTS[3]: ["access_to_water"]}


def test_confused_codes_get_their_neighbour(tmp_path):
    """With every confusion applied, job creation reads as skills training; other codes are untouched."""
    root = _root(tmp_path)
    code_icr_datasets(str(root.root), config=CONFIG, profile=replace(SECOND_CODER, error=0, skip=0), confusion=1)
    codes = _codes(root)
    assert codes[TEXTS[0]] == codes[TEXTS[1]] == ["skills_training"]
    assert codes[TEXTS[2]] == ["shelter"]


def test_the_same_data_root_gives_the_same_file(tmp_path):
    first, second = _root(tmp_path / "a"), _root(tmp_path / "b")
    for root in (first, second):
        code_icr_datasets(str(root.root), config=CONFIG)
    assert (first.icr_coded_dir / "s01e01.json").read_bytes() == (second.icr_coded_dir / "s01e01.json").read_bytes()
