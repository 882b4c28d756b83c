"""The second coder's round trip and coding progress through stage 3 (spec coding-quality.md sections 1, 4, 5).

The end-to-end case is the golden data root plus the hand-made second coder of ``tests/coding_quality`` (its
README works every expected cell by hand)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import shutil
from pathlib import Path

import pytest

from redss_pipeline.analysis.agreement import CodedScheme, write_agreement_csv
from redss_pipeline.analysis.coding_progress import ProgressTally, write_progress_csv
from redss_pipeline.analysis.coding_quality import measure_for_report, measure_from_data_root, section_context
from redss_pipeline.analysis.report import ReportSection, ReportSummary, render_report
from redss_pipeline.core.code_scheme import Code, CodeScheme
from redss_pipeline.core.config import load_config
from redss_pipeline.core.errors import CodaFileError
from redss_pipeline.core.run_context import RunContext
from redss_pipeline.export.coda import CodedMessages
from redss_pipeline.generate.icr_round_trip import icr_coda_messages
from redss_pipeline.generate.show_messages import IcrRow
from redss_pipeline.generate.stage import run_generate

TESTS = Path(__file__).resolve().parent
GOLDEN_ROOT = TESTS / "golden" / "data_root"
CASE = TESTS / "coding_quality"
PROJECT_ROOT = TESTS.parent
CONFIG = load_config(PROJECT_ROOT / "pipeline_config.json")
RUN = RunContext("quality@example.org", RunContext.now("x").started_at)


def _data_root(tmp_path: Path, *, second_coder: bool = True) -> Path:
    root = tmp_path / "data_root"
    shutil.copytree(GOLDEN_ROOT, root)
    if second_coder:
        shutil.copytree(CASE / "Coded Coda Files" / "ICR", root / "Coded Coda Files" / "ICR")
    return root


def _outputs(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "Outputs").rglob("*")) if p.is_file()}


def _mid(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.fixture(scope="module")
def coded_twice(tmp_path_factory) -> tuple[Path, str]:
    """Stage 3 on the golden root with the second coder's files; returns the root and the step summary."""
    root = _data_root(tmp_path_factory.mktemp("quality"))
    summary = io.StringIO()
    run_generate(config=CONFIG, data_root=root, run=RUN, progress=summary)
    return root, summary.getvalue()


@pytest.fixture(scope="module")
def coded_once(tmp_path_factory) -> Path:
    """The golden root after stage 3, before any second coder: it drew the ICR samples the second coder codes."""
    root = _data_root(tmp_path_factory.mktemp("quality"), second_coder=False)
    run_generate(config=CONFIG, data_root=root, run=RUN, progress=None)
    return root


@pytest.fixture
def root_coded_once(coded_once, tmp_path) -> Path:
    """A copy of :func:`coded_once` of the test's own, so a test that changes it changes only its copy."""
    root = tmp_path / "data_root"
    shutil.copytree(coded_once, root)
    return root


def test_agreement_file_is_the_hand_worked_one(coded_twice):
    root, _ = coded_twice
    got = (root / "Outputs" / "Analysis" / "icr_agreement.csv").read_text(encoding="utf-8")
    assert got == (CASE / "expected_icr_agreement.csv").read_text(encoding="utf-8")


def test_step_summary_has_one_line_per_show_with_alpha_and_band(coded_twice):
    _, summary = coded_twice
    assert "    s01e01: S01E01 no units coded by both, 0 units\n" in summary
    assert "    s01e02: no agreement yet (no second coder file)\n" in summary
    assert ("    s01e03: S01E03 Reasons alpha 0.690 [0.278, 1.000] tentative, 7 units; "
            "S01E03 Yes/No/Amb alpha 0.727 [-0.125, 1.000] tentative, 5 units\n") in summary
    assert "    s01e04: no agreement yet (no second coder file) (" in summary  # the step time follows


def test_analysing_from_the_files_gives_the_same_figures(coded_twice):
    """``measure_from_data_root`` reads what stage 3 wrote and the coded files: the same rows as the run, which
    counted the progress while it wrote the Coda files."""
    root, _ = coded_twice
    quality = measure_from_data_root(CONFIG, root)
    out = root / "again.csv"
    write_agreement_csv(out, quality.agreement)
    assert out.read_bytes() == (root / "Outputs" / "Analysis" / "icr_agreement.csv").read_bytes()
    write_progress_csv(out, quality.progress)
    assert out.read_bytes() == (root / "Outputs" / "Analysis" / "coding_progress.csv").read_bytes()


def test_progress_counts_every_message_of_each_coda_file(coded_twice):
    """The run's ``messages`` column is the number of messages in the Coda file it wrote, and some are coded."""
    root, _ = coded_twice
    with open(root / "Outputs" / "Analysis" / "coding_progress.csv", encoding="utf-8", newline="") as handle:
        rows = {row["dataset"]: row for row in csv.DictReader(handle)}
    for dataset in ("s01e01", "s01e03", "age"):
        written = json.loads((root / "Outputs" / "Coda Files" / f"{dataset}.json").read_text(encoding="utf-8"))
        assert int(rows[dataset]["messages"]) == len(written) > 0, dataset
    assert int(rows["Total"]["coded"]) > 0


def test_same_inputs_give_byte_identical_files(coded_twice, tmp_path):
    root, _ = coded_twice
    again = _data_root(tmp_path)
    run_generate(config=CONFIG, data_root=again, run=RUN, progress=None)
    for name in ("Analysis/icr_agreement.csv", "Analysis/coding_progress.csv", "ICR/Coda Files/s01e03.json"):
        assert (again / "Outputs" / name).read_bytes() == (root / "Outputs" / name).read_bytes(), name


def test_the_second_coders_files_are_inputs_of_the_run_manifest(coded_twice):
    root, _ = coded_twice
    manifest = json.loads((root / "Outputs" / "manifest.json").read_text(encoding="utf-8"))
    inputs = {entry["path"]: entry["sha256"] for entry in manifest["inputs"]}
    path = root / "Coded Coda Files" / "ICR" / "s01e03.json"
    assert inputs["Coded Coda Files/ICR/s01e03.json"] == hashlib.sha256(path.read_bytes()).hexdigest()
    outputs = {entry["path"] for entry in manifest["outputs"]}
    assert {"Outputs/Analysis/icr_agreement.csv", "Outputs/ICR/Coda Files/s01e03.json"} <= outputs


def test_the_icr_coda_file_has_the_main_datasets_ids_and_no_labels(coded_twice):
    root, _ = coded_twice
    icr = json.loads((root / "Outputs" / "ICR" / "Coda Files" / "s01e03.json").read_text(encoding="utf-8"))
    main = json.loads((root / "Outputs" / "Coda Files" / "s01e03.json").read_text(encoding="utf-8"))
    assert {m["MessageID"] for m in icr} == {m["MessageID"] for m in main}
    assert all(m["Labels"] == [] for m in icr)
    assert all(m["MessageID"] == _mid(m["Text"]) for m in icr)


# -- refused second-coder files: one error, nothing replaced -----------------------------------------------------------


def _second_coder_file(root: Path, messages: object, *, raw: str | None = None) -> Path:
    path = root / "Coded Coda Files" / "ICR" / "s01e04.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(raw if raw is not None else json.dumps(messages), encoding="utf-8")
    return path


def _label(scheme_id: str, code_id: str) -> dict:
    return {"SchemeID": scheme_id, "CodeID": code_id, "DateTimeUTC": "2019-02-01T09:00:00.000Z", "Checked": True,
            "Origin": {"OriginID": "b@example.org", "Name": "B", "OriginType": "Manual"}}


def _message(text: str, labels: list) -> dict:
    return {"MessageID": _mid(text), "Text": text, "CreationDateTimeUTC": "2018-12-23T16:00:44+00:00",
            "Labels": labels}


def _an_s01e04_text(root: Path) -> str:
    return json.loads((root / "Outputs" / "ICR" / "Coda Files" / "s01e04.json").read_text(encoding="utf-8"))[0]["Text"]


@pytest.mark.parametrize("case, expected", [
    ("foreign scheme", (r"s01e04\.json: record MessageID '[0-9a-f]{64}': field 'Labels\[0\]\.SchemeID': SchemeID "
                       r"'Scheme-12cb6f95' is not a scheme of s01e04")),
    ("unknown code", (r"s01e04\.json: record MessageID '[0-9a-f]{64}': field 'Labels\[1\]\.CodeID': CodeID "
                     r"'code-nope' is not a code of scheme 'S01E04'")),
    ("bad JSON", r"s01e04\.json: not valid JSON \(line 1, column 3"),
])
def test_a_second_coder_file_that_does_not_belong_is_refused_and_nothing_replaced(root_coded_once, case, expected):
    root = root_coded_once
    before = _outputs(root)
    text = _an_s01e04_text(root)
    if case == "foreign scheme":
        _second_coder_file(root, [_message(text, [_label("Scheme-12cb6f95", "code-63dcde9a")])])
    elif case == "unknown code":
        _second_coder_file(root, [_message(text, [_label("Scheme-3abe50d3", "code-5e1ce974"),
                                                  _label("Scheme-3abe50d3-1", "code-nope")])])
    else:
        _second_coder_file(root, None, raw="[{")
    with pytest.raises(CodaFileError, match=expected):
        run_generate(config=CONFIG, data_root=root, run=RUN, progress=None)
    assert _outputs(root) == before


def test_a_second_coder_file_coded_by_the_first_coder_is_a_warning(coded_twice, tmp_path):
    """Agreement of a coder with themselves is no agreement: when the ICR file's checked labels come from the coder
    of the main dataset (here the main dataset's own labels of the sample, saved as the ICR download), the run
    says so; the golden root's first coder is coder.a, the fixture's second coder coder.b."""
    root = tmp_path / "data_root"
    shutil.copytree(coded_twice[0], root)  # after a first stage 3, which drew the ICR sample
    sample = json.loads((root / "Outputs/ICR/Coda Files/s01e03.json").read_text(encoding="utf-8"))
    main = {m["MessageID"]: m for m in json.loads((root / "Coded Coda Files/s01e03.json").read_text(encoding="utf-8"))}
    copied = [main[m["MessageID"]] for m in sample if m["MessageID"] in main]
    checked = [m for m in copied if any(label.get("Checked") is True for label in m["Labels"])]
    path = root / "Coded Coda Files" / "ICR" / "s01e03.json"
    # Labels that name no coder (no Origin) say nothing about who coded them: no warning, and no failure.
    anonymous = [{**m, "Labels": [{**label, "Origin": None} for label in m["Labels"]]} for m in copied]
    path.write_text(json.dumps(anonymous), encoding="utf-8")
    summary = run_generate(config=CONFIG, data_root=root, run=RUN, progress=None)
    assert [w for w in summary.warnings if "same coder" in w] == []
    path.write_text(json.dumps(copied), encoding="utf-8")
    summary = run_generate(config=CONFIG, data_root=root, run=RUN, progress=None)
    assert [w for w in summary.warnings if "same coder" in w] == [
        f"Coded Coda Files/ICR/s01e03.json: {len(checked)} of the {len(checked)} sampled messages both coders "
        "checked a label of carry a checked label by the same coder (Origin) in Coded Coda Files/s01e03.json: the "
        "agreement compares that coder with themselves (was the main dataset's download saved here, or did its "
        "coder code the ICR dataset?)"]
    assert len(checked) > 0


def test_a_second_coder_file_with_nothing_checked_says_why_it_adds_nothing(tmp_path):
    """Labels applied in Coda but never ticked are not the coder's verdict (coda.md 5.2): the file adds no unit."""
    root = _data_root(tmp_path)
    path = root / "Coded Coda Files" / "ICR" / "s01e03.json"
    coded = json.loads(path.read_text(encoding="utf-8"))
    for message in coded:
        for label in message["Labels"]:
            label["Checked"] = False
    path.write_text(json.dumps(coded), encoding="utf-8")
    summary = run_generate(config=CONFIG, data_root=root, run=RUN, progress=None)
    assert [warning for warning in summary.warnings if warning.startswith("Coded Coda Files/ICR/")] == [
        f"Coded Coda Files/ICR/s01e03.json: none of its {len(coded)} messages has a checked label, so it adds nothing "
        "to the agreement: the second coder's labels count once checked (ticked) in Coda"]


@pytest.mark.parametrize("late_messages", [1, CONFIG.icr.sample_size + 1])
def test_second_coder_messages_outside_the_sample_are_a_warning_and_take_no_part(tmp_path, late_messages):
    """The sample is drawn again on every run, so messages that arrive after the second coder's download change
    it: the second coder's messages that are no longer in it are a one-line warning, not an error, and the
    agreement (measured on the sample's messages) is the hand-worked one. So it is when the ICR dataset has grown
    past a sample's size, as it does when each run's ICR file is added to the same Coda dataset."""
    root = _data_root(tmp_path)
    path = root / "Coded Coda Files" / "ICR" / "s01e03.json"
    coded = json.loads(path.read_text(encoding="utf-8"))
    label = _label(coded[0]["Labels"][0]["SchemeID"], coded[0]["Labels"][0]["CodeID"])
    late = [_message(f"a text the sample no longer holds {n}", [label]) for n in range(late_messages)]
    path.write_text(json.dumps([*coded, *late]), encoding="utf-8")
    summary = run_generate(config=CONFIG, data_root=root, run=RUN, progress=None)
    one = late_messages == 1
    assert [warning for warning in summary.warnings if warning.startswith("Coded Coda Files/ICR/")] == [
        f"Coded Coda Files/ICR/s01e03.json: {late_messages:,} of its {len(coded) + late_messages:,} messages "
        f"{'is' if one else 'are'} not in this run's ICR sample of s01e03 (Outputs/ICR/Coda Files/s01e03.json), "
        f"which is drawn again as messages arrive; {'it takes' if one else 'they take'} no part in the agreement"]
    got = (root / "Outputs" / "Analysis" / "icr_agreement.csv").read_text(encoding="utf-8")
    assert got == (CASE / "expected_icr_agreement.csv").read_text(encoding="utf-8")


def test_a_missing_second_coder_file_means_not_coded_yet(root_coded_once):
    """Without any second-coder file: the ICR Coda files are written, the agreement file holds its header."""
    root = root_coded_once
    assert (root / "Outputs" / "Analysis" / "icr_agreement.csv").read_text(encoding="utf-8").count("\n") == 1
    assert (root / "Coded Coda Files" / "ICR").is_dir()  # created for people to fill
    assert sorted(p.name for p in (root / "Outputs" / "ICR" / "Coda Files").iterdir()) == [
        "s01e01.json", "s01e02.json", "s01e03.json", "s01e04.json"]


# -- pieces ------------------------------------------------------------------------------------------------------------


def test_icr_coda_messages_one_per_text_at_its_earliest_sampled_time():
    rows = [IcrRow(2, "same text", "2018-12-05T12:00:00+03:00"), IcrRow(1, "other", "2018-12-04T12:00:00+03:00"),
            IcrRow(3, "same text", "2018-12-03T12:00:00+03:00")]
    assert icr_coda_messages(rows) == [
        {"MessageID": _mid("same text"), "Text": "same text", "CreationDateTimeUTC": "2018-12-03T09:00:00+00:00",
         "Labels": []},
        {"MessageID": _mid("other"), "Text": "other", "CreationDateTimeUTC": "2018-12-04T09:00:00+00:00",
         "Labels": []},
    ]


def _scheme() -> CodeScheme:
    return CodeScheme("Scheme-q", "Q", "1", (
        Code("c-a", "Normal", None, "a", 1, "a", True),
        Code("c-NC", "Control", "NC", "NC", 2, "NC", True),
        Code("c-WS", "Control", "WS", "WS", 3, "WS", True),
    ))


def _coded(*messages: tuple[str, list[tuple[str, str, bool]]]) -> CodedMessages:
    return CodedMessages.from_json([
        {"MessageID": mid, "Text": mid, "CreationDateTimeUTC": "2019-01-01T00:00:00+00:00",
         "Labels": [{"SchemeID": s, "CodeID": c, "DateTimeUTC": f"2019-01-0{9 - i}T00:00:00Z", "Checked": checked,
                     "Origin": {"OriginID": "x", "Name": "x", "OriginType": "Manual"}}
                    for i, (s, c, checked) in enumerate(labels)]}
        for mid, labels in messages])


def test_progress_counts_only_checked_current_labels():
    coded = _coded(
        ("m1", [("Scheme-q", "c-a", True)]),  # coded
        ("m2", [("Scheme-q", "c-a", False)]),  # a suggestion nobody checked
        ("m3", [("Scheme-q", "c-a", False), ("Scheme-q", "c-a", True)]),  # checked, then unticked
        ("m4", [("Scheme-q-1", "c-WS", True), ("Scheme-q", "c-NC", True)]),  # WS and NC (duplicate scheme)
        ("m5", [("Scheme-q", "SPECIAL-MANUALLY_UNCODED", False), ("Scheme-q", "c-a", True)]),  # cleared
        ("gone", [("Scheme-q", "c-a", True)]),  # not exported any more: not counted
    )
    row = _progress("q", ["m1", "m2", "m3", "m4", "m5", "m6"], coded, [CodedScheme(_scheme(), True)])
    assert (row.messages, row.coded, row.wrong_scheme, row.not_coded) == (6, 2, 1, 1)
    assert row.coded_percent == pytest.approx(100 * 2 / 6)


def test_progress_of_an_empty_dataset_has_no_percent():
    row = _progress("q", [], CodedMessages(), [CodedScheme(_scheme(), False)])
    assert (row.messages, row.coded, row.coded_percent) == (0, 0, None)


# -- the report's section ----------------------------------------------------------------------------------------------


def _render_section(context: dict) -> str:
    """The section as the report renders it (render_report, with a report of this one section), cut out of the
    page."""
    summary = ReportSummary(project="p", messages=0, people=0, opt_in_people=0, shows=(), date_range="",
                            coding_progress=(), suppression_k=5)
    page = render_report(summary=summary, title="t", sections=[
        ReportSection("coding-quality", "Coding quality", "coding_quality.html.j2", context)])
    start = page.index('id="coding-quality"')
    return page[start:page.index("</section>", start)]


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_report_section_shows_progress_alpha_band_and_codes_disagreed_on_first(coded_twice):
    root, _ = coded_twice
    context = section_context(root / "Outputs" / "Analysis")
    assert [row["dataset"] for row in context["progress"]][:4] == ["s01e01", "s01e02", "s01e03", "s01e04"]
    reasons, yes_no = (s for s in context["schemes"] if s["show"] == "s01e03")
    assert [code["code"] for code in reasons["codes"]] == [
        "discriminating_actor_government", "discriminating_actor_community",
        "reasons_for_lack_of_discrimination_religion", "axes_of_discrimination_access_to_housing",
        "axes_of_discrimination_access_to_health_care", "reasons_for_lack_of_discrimination_common_identity", "WS"]
    assert [code["code"] for code in yes_no["codes"]] == ["ambivalent", "yes", "no", "WS"]

    html = _render_section(context)
    text = _text(html)
    # The interval 0.278 to 1.000 is 0.3 or more wide; a prevalence of 0.071 of 2 x 7 judgements is 1 use.
    assert ("s01e03: S01E03 Reasons Krippendorff's alpha 0.690 (95% interval 0.278 to 1.000), tentative (wide "
            "interval: uncertain); exact agreement 71.4%, Cohen's kappa 0.674, mean alpha per code 0.745. 7 messages "
            "coded by both, 2 not.") in text
    assert ("discriminating_actor_government 0.000 -0.182 to 0.000 unreliable (given 1 time in the messages both "
            "coded: too rare to judge) 0.071 85.7 0.000") in text
    assert '<span class="band-tentative">tentative</span>' in html
    assert "s01e01: S01E01 No message of the sample is coded by both coders yet (11 not coded by both)." in text
    # the progress table with a bar per dataset, and the total
    assert "s01e01 11 6 54.5" in text and "s01e03 9 7 77.8" in text
    assert html.count('aria-label="') == len(context["progress"]) + 1 + 1  # the bars, the total's, the table's
    assert 'style="width: 77.8%;' in html


def test_report_section_from_the_run_is_the_one_from_its_files(coded_twice):
    """During stage 3 the CSVs are only staged, so the report takes the run's rows: the same section."""
    root, _ = coded_twice
    from_files = section_context(root / "Outputs" / "Analysis")
    assert measure_from_data_root(CONFIG, root).section_context() == from_files
    assert measure_for_report(CONFIG, root).section_context() == from_files


def test_analysing_a_root_without_icr_coda_files_has_no_section(tmp_path):
    root = _data_root(tmp_path, second_coder=False)
    assert measure_for_report(CONFIG, root) is None


def test_report_section_without_files_is_left_out(tmp_path):
    assert section_context(tmp_path) is None


def test_report_section_before_any_second_coder_says_how_to_start(coded_once):
    root = coded_once  # read only
    text = _text(_render_section(section_context(root / "Outputs" / "Analysis")))
    assert "No show has been coded by a second coder yet" in text
    assert "Total 88 52 59.1" in text


def _progress(name, message_ids, coded, schemes):
    """The progress row of a dataset whose Coda file exported ``message_ids``, counted as stage 3 counts it: one
    tally, each exported message added as the file is written."""
    tally = ProgressTally(name, coded, schemes)
    for mid in message_ids:
        tally.add(mid)
    return tally.row()
