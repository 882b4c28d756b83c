"""The analysis tables on a hand-made pair of CSVs (tests/analysis_golden), worked out by hand; shareable
suppression; input errors; the analysis configuration block."""

from __future__ import annotations

import csv
import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from redss_pipeline.analysis.cells import Count, Percent
from redss_pipeline.analysis.charts import bar_chart, bar_from_cell
from redss_pipeline.analysis.maps import class_colour, jenks_classes, legend_labels
from redss_pipeline.analysis.outputs_reader import AnalysisInputError
from redss_pipeline.analysis.stage import _labelled_share, run_analysis
from redss_pipeline.analysis.suppression import suppress_table
from redss_pipeline.analysis.tables import Table
from redss_pipeline.analysis.themes import wilson_interval
from redss_pipeline.core.config import load_config
from redss_pipeline.core.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
GOLDEN = PROJECT_ROOT / "tests" / "analysis_golden"
EXPECTED = GOLDEN / "expected"


def _config_file(tmp_path: Path, **analysis) -> Path:
    """The shipped configuration with another ``analysis`` block (code schemes read from the project)."""
    raw = json.loads((PROJECT_ROOT / "pipeline_config.json").read_text(encoding="utf-8"))
    raw["code_schemes"]["directory"] = str(PROJECT_ROOT / "code_schemes")
    raw["analysis"] = analysis
    path = tmp_path / "pipeline_config.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


def _data_root(tmp_path: Path, source: Path = GOLDEN) -> Path:
    root = tmp_path / "data root"
    (root / "Outputs").mkdir(parents=True)
    for name in ("csap_mes.csv", "csap_ind.csv"):
        shutil.copy(source / name, root / "Outputs" / name)
    return root


def _rows(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


@pytest.fixture(scope="module")
def golden(tmp_path_factory) -> Path:
    """The analysis of the hand-made CSVs, breakdowns by gender only, maps of regions only."""
    tmp_path = tmp_path_factory.mktemp("analysis")
    config = load_config(_config_file(tmp_path, breakdowns=["gender"], maps={"levels": ["region"], "dpi": 60}))
    root = _data_root(tmp_path)
    run_analysis(config=config, data_root=root, progress=None)
    return root / "Outputs" / "Analysis"


@pytest.mark.parametrize("name", sorted(p.name for p in EXPECTED.glob("*.csv")))
def test_table_matches_the_hand_worked_table(golden: Path, name: str):
    """Every byte of the table: quoting, order, counts, percentages."""
    assert (golden / name).read_text(encoding="utf-8") == (EXPECTED / name).read_text(encoding="utf-8")


def _block(rows: list[list[str]], dataset: str) -> dict[str, list[str]]:
    """The rows of one dataset in a theme or demographic table, by Theme."""
    out, inside = {}, False
    for row in rows[1:]:
        if row[0]:
            inside = row[0] == dataset
        if inside:
            out[row[1]] = row[2:]
    return out


def test_theme_distribution_rows_worked_out_by_hand(golden: Path):
    """s01e01: only A is relevant; food_assistance is A and C (C also has NR: counted, not relevant), so its
    share of the relevant people is 200.0; control rows have no percentages."""
    rows = _rows(golden / "theme_distributions.csv")
    assert rows[0][:6] == ["Dataset", "Theme", "Total Participants", "Total Participants %", "gender:male",
                           "gender:male %"]
    assert len(rows[0]) == 4 + 2 * 8  # gender: 8 codes without STOP
    block = _block(rows, "s01e01")
    # columns: total, %, male, %, female, %, NA, %, NS, %, NC, %, NR, %, NIC, %, WS, %
    assert block["Total Relevant Participants"] == ["1", "100.0", "1", "100.0", "0", "-", "0", "-"] + ["0", "-"] * 5
    assert block["food_assistance"] == ["2", "200.0", "1", "100.0", "0", "-", "1", "-"] + ["0", "-"] * 5
    assert block["job_creation"] == ["1", "100.0", "1", "100.0", "0", "-", "0", "-"] + ["0", "-"] * 5
    assert block["financial_support"] == ["0", "0.0", "0", "0.0", "0", "-", "0", "-"] + ["0", "-"] * 5
    assert block["NC"] == ["1", "", "0", "", "1", ""] + ["0", ""] * 6
    assert block["NR"] == ["1", "", "0", "", "0", "", "1", ""] + ["0", ""] * 5
    assert block["NS"] == ["1", "", "0", "", "1", ""] + ["0", ""] * 6
    assert block["NA"] == ["1", "", "1", "", "0", ""] + ["0", ""] * 6  # E said nothing to any show
    assert "STOP" not in block
    assert list(block)[1:4] == ["financial_support", "job_creation", "skills_training"]  # scheme order


def test_demographic_distribution_rows_worked_out_by_hand(golden: Path):
    """gender: A, B, E, F relevant (C is NA); age categories from the ages 20, 16, 40 and 25."""
    rows = _rows(golden / "demographic_distributions.csv")
    assert rows[0] == ["Dataset", "Theme", "Total Participants", "Total Participants %"]
    gender = _block(rows, "gender")
    assert gender == {"Total Relevant Participants": ["4", "100.0"], "male": ["2", "50.0"],
                      "female": ["2", "50.0"], "NA": ["1", ""], "NS": ["0", ""], "NC": ["0", ""],
                      "NR": ["0", ""], "NIC": ["0", ""], "WS": ["0", ""]}
    ages = _block(rows, "age_category")
    assert ages["Total Relevant Participants"] == ["4", "100.0"]
    assert [ages[c] for c in ("10_to_14", "15_to_17", "18_to_35", "36_to_54", "55_to_99")] == [
        ["0", "0.0"], ["1", "25.0"], ["2", "50.0"], ["1", "25.0"], ["0", "0.0"]]
    region = _block(rows, "region")
    assert region["banadir"] == ["2", "66.7"] and region["bay"] == ["1", "33.3"] and region["NC"] == ["1", ""]
    assert _block(rows, "operator")["hormud"] == ["5", "100.0"]


def test_confidence_intervals(golden: Path):
    """Wilson intervals per Normal theme row; `-` when the theme count exceeds the relevant people."""
    rows = {(r[0], r[1]): r[2:] for r in _rows(golden / "theme_distributions_ci.csv")[1:]}
    assert rows[("s01e01", "food_assistance")] == ["2", "1", "-", "-"]
    assert rows[("s01e01", "job_creation")] == ["1", "1", "20.7", "100.0"]
    assert rows[("s01e01", "financial_support")] == ["0", "1", "0.0", "79.3"]
    assert ("s01e01", "NC") not in rows


def test_wilson_interval_against_a_worked_example():
    """x = 8 of n = 17: bounds (8 + 1.92 -+ 1.96 sqrt(8*9/17 + 0.96)) / (17 + 3.84) -> 26.2 % and 69.0 %."""
    assert wilson_interval(8, 17) == (26.2, 69.0)
    assert wilson_interval(0, 0) is None and wilson_interval(3, 2) is None


def test_shareable_copies_suppress_small_counts(golden: Path):
    """Counts from 1 to 4 read <5 and their percentages are empty; zeros and the Total row stay; the sample
    messages are never shareable."""
    shared = golden / "shareable"
    engagement = _rows(shared / "engagement_counts.csv")
    assert engagement[1] == ["s01e01", "-", "<5", "<5", "<5", "-", "<5", "<5"]
    assert engagement[-1] == ["Total", "13", "10", "8", "6", "6", "4", "4"]  # the Total row stays
    assert _rows(shared / "repeat_participations.csv")[1:] == [
        ["1", "0", "0.0"], ["2", "<5", ""], ["3", "<5", ""], ["4", "0", "0.0"]]
    cross = _rows(shared / "cross_tabs_age_category_vs_gender.csv")
    assert cross[3] == ["15_to_17", "male", "0", ""]  # 0 of a suppressed 1: the percentage is hidden too
    assert not (shared / "sample_messages.csv").exists()
    assert (golden / "sample_messages.csv").exists()
    # The unsuppressed tables stay for the research team.
    assert _rows(golden / "repeat_participations.csv")[2] == ["2", "3", "60.0"]


def test_every_chart_and_map_is_written_as_png_and_svg(golden: Path):
    """A chart per table (themes and demographics per dataset) and the maps of the configured levels."""
    charts = sorted(p.stem for p in (golden / "charts").glob("*.svg"))
    assert charts == sorted(p.stem for p in (golden / "charts").glob("*.png"))
    assert {"engagement_counts", "repeat_participations", "new_and_returning_participants", "traffic_analysis",
            "themes_s01e01", "themes_s01e03_yes_no", "demographics_gender", "demographics_age_category",
            "cross_tabs_age_category_vs_gender"} <= set(charts)
    maps = sorted(p.name for p in (golden / "maps" / "region").iterdir())
    assert "region_total_participants.png" in maps and "region_total_participants.svg" in maps
    assert "region_s01e04_1_total_relevant.png" in maps
    assert not (golden / "maps" / "district").exists()
    svg = (golden / "maps" / "region" / "region_total_participants.svg").read_text(encoding="utf-8")
    assert "<dc:date>" not in svg  # deterministic: no date in the SVG


def test_charts_are_byte_identical_between_runs(golden: Path, tmp_path):
    """The same CSVs give the same SVG (fixed hash salt, no date)."""
    config = load_config(_config_file(tmp_path, breakdowns=["gender"], maps={"levels": ["region"], "dpi": 60}))
    root = _data_root(tmp_path)
    run_analysis(config=config, data_root=root, progress=None)
    again = root / "Outputs" / "Analysis"
    for name in ("charts/engagement_counts.svg", "charts/themes_s01e01.svg", "maps/region/region_total_participants.svg",
                 "report.html"):
        assert (again / name).read_bytes() == (golden / name).read_bytes(), name


# Each table the analysis writes, and where its figures are worked out by hand: a file of tests/analysis_golden/
# expected, or the tests named. A new table joins this list with hand-worked figures of its own.
_HAND_WORKED = {
    "cross_tabs_age_category_vs_gender.csv": "expected file",
    "demographic_distributions.csv": "test_demographic_distribution_rows_worked_out_by_hand",
    "engagement_counts.csv": "expected file",
    "new_and_returning_participants.csv": "expected file",
    "repeat_participations.csv": "expected file",
    "sample_messages.csv": "expected file",
    "theme_distributions.csv": "test_theme_distribution_rows_worked_out_by_hand",
    "theme_distributions_ci.csv": "test_confidence_intervals",
    "traffic_analysis.csv": "expected file",
}


def test_every_table_written_has_figures_worked_out_by_hand(golden: Path):
    """A table added to the analysis without a hand-worked check of its figures fails here, by name."""
    written = sorted(p.name for p in golden.glob("*.csv"))
    assert written == sorted(_HAND_WORKED), "tables without hand-worked figures (see _HAND_WORKED)"
    for name, where in _HAND_WORKED.items():
        if where == "expected file":
            assert (EXPECTED / name).is_file(), name
        else:
            assert where in globals(), where


def test_a_figure_written_as_text_is_refused_before_it_escapes_suppression():
    """A count put in a table as text would pass the shareable copy unsuppressed: the copy is refused, naming the
    table, row and column; labels, empty cells and ``-`` are text by right."""
    good = Table("t.csv", ("Week", "People", "People %"),
                 (("s01e01", Count(3), Percent(3, 4)), ("s01e02", Count(0), "-"), ("", Count(7), "")))
    assert suppress_table(good, 5).rows[0] == ("s01e01", "<5", "")
    bad = Table("t.csv", ("Week", "People", "People %"), (("s01e01", "3", Percent(3, 4)),))
    with pytest.raises(ValueError, match=r"^t\.csv: row 0, column 'People': '3' is text, which the shareable copy "
                                         r"cannot suppress"):
        suppress_table(bad, 5)
    with pytest.raises(ValueError, match="'3' is text"):
        suppress_table(bad, 1)  # whatever k is
    two_labels = Table("t.csv", ("Week", "Channel", "People"), (("s01e01", "sms_ad", Count(3)),), label_columns=2)
    assert suppress_table(two_labels, 5).rows == (("s01e01", "sms_ad", "<5"),)
    free_text = Table("t.csv", ("Week", "Message"), (("s01e01", "hello 3"),), shareable=False)
    free_text.check_figures()  # never shared, never checked


@pytest.mark.parametrize("exempt, found", [(2, "no such row"), (0, "its first cell is 's01e01'")])
def test_only_a_total_row_is_kept_unsuppressed(exempt, found):
    """The shareable copy keeps the Total rows only (analysis.md 6): an exempt index that is off by one, or names
    another row, is refused when the table is made instead of leaking that row's small counts."""
    rows = (("s01e01", Count(3)), ("Total", Count(3)))
    assert suppress_table(Table("t.csv", ("Dataset", "People"), rows, exempt_rows=frozenset({1})), 5).rows == (
        ("s01e01", "<5"), ("Total", Count(3)))
    with pytest.raises(ValueError, match=rf"t\.csv: exempt row {exempt} is not a 'Total' row \({found}\)"):
        Table("t.csv", ("Dataset", "People"), rows, exempt_rows=frozenset({exempt}))


def test_the_analysis_is_the_same_whatever_the_hash_seed(tmp_path):
    """Tables, shareable copies, charts and report are the same bytes under two hash seeds: no row order or label
    comes from iterating a set or a dict of hashed values (workers forked from one process share a seed, so only
    separate processes show this)."""
    config = _config_file(tmp_path, breakdowns=["gender"], maps={"levels": ["region"], "dpi": 60})
    outputs = {}
    for seed in ("1", "2"):
        root = _data_root(tmp_path / seed)
        result = subprocess.run([sys.executable, str(PROJECT_ROOT / "generate_outputs.py"), "analyse", "--config",
                                 str(config), str(root)], capture_output=True, text=True, timeout=300, check=False,
                                env=dict(os.environ, PYTHONHASHSEED=seed))
        assert result.returncode == 0, result.stderr
        analysis = root / "Outputs" / "Analysis"
        outputs[seed] = {str(path.relative_to(analysis)): path.read_bytes() for path in sorted(analysis.rglob("*"))
                         if path.is_file() and path.suffix in (".csv", ".svg", ".html")}
    assert sorted(outputs["1"]) == sorted(outputs["2"])
    assert [name for name in outputs["1"] if outputs["1"][name] != outputs["2"][name]] == []


def test_sample_keeps_the_smallest_keys(tmp_path):
    """per_code 1: for each code the candidate with the smallest SHA-256 of '<seed>|<D>|<c>|<r>'."""
    config = load_config(_config_file(tmp_path, sample_messages={"per_code": 1, "seed": 7}, maps={"levels": []}))
    root = _data_root(tmp_path)
    run_analysis(config=config, data_root=root, progress=None)
    rows = _rows(root / "Outputs" / "Analysis" / "sample_messages.csv")
    job = [r for r in rows if r[:3] == ["s01e01", "S01E01", "job_creation"]]
    texts = {1: "msg A1", 13: "msg A1b"}  # rows of csap_mes.csv labelled job_creation under s01e01

    def key(r: int) -> str:
        return hashlib.sha256(f"7|s01e01|job_creation|{r}".encode()).hexdigest()

    assert job == [["s01e01", "S01E01", "job_creation", texts[min(texts, key=key)]]]
    peace = [r[3] for r in rows if r[2] == "peace_and_security"]
    assert len(peace) == 1


def _broken(tmp_path: Path, row: int, column: str, value: str, name: str = "csap_mes.csv") -> Path:
    root = _data_root(tmp_path)
    _broken_in_place(root / "Outputs" / name, row, column, value)
    return root


@pytest.mark.parametrize(("row", "column", "value", "message"), [
    (1, "consent_withdrawn", "maybe", (r"csap_mes.csv: record row 1 \(uid 'avf-phone-uuid-golden-A'\): field "
                                       r"'consent_withdrawn': expected true or false, got 'maybe'")),
    (2, "rqa_s01e02_NR", "2", r"record row 2 .*field 'rqa_s01e02_NR': expected 0 or 1, got '2'"),
    (-3, "gender", "man", r"csap_ind.csv: record row 3 .*field 'gender': 'man' is not a code of scheme 'Gender'"),
    (-5, "age", "120", r"csap_ind.csv: record row 5 .*field 'age': '120' is not a code of scheme 'Age'"),
    (5, "sms_ad", "yes", r"record row 5 .*field 'sms_ad': expected true or false, got 'yes'"),
])
def test_bad_input_is_one_error_naming_file_row_and_column(tmp_path, config, row, column, value, message):
    """Nothing is written when an input is bad (a negative row: of csap_ind.csv, whose demographics are read;
    the messages are read for their episodes only)."""
    root = _broken(tmp_path, abs(row), column, value, "csap_ind.csv" if row < 0 else "csap_mes.csv")
    with pytest.raises(AnalysisInputError, match=message):
        run_analysis(config=config, data_root=root, progress=None)
    assert not [p for p in (root / "Outputs").rglob("*") if p.is_file() and "Analysis" in p.parts]


@pytest.mark.parametrize(("column", "value"), [("age", "+252 61 555 0199"), ("uid", "252615550199")])
def test_a_phone_number_typed_into_a_cell_is_not_shown_in_the_error(tmp_path, config, column, value):
    """A hand-edited file may hold a phone number where a code or a uid belongs: the error names the row and the
    column but does not repeat the number (in the uid's case the row is refused for an age out of range)."""
    root = _broken(tmp_path, 5, column, value, "csap_ind.csv")
    if column == "uid":
        _broken_in_place(root / "Outputs" / "csap_ind.csv", 5, "age", "120")
    with pytest.raises(AnalysisInputError) as raised:
        run_analysis(config=config, data_root=root, progress=None)
    assert "csap_ind.csv: record row 5 " in str(raised.value) and "field 'age'" in str(raised.value)
    assert "555" not in str(raised.value) and "a value not shown (it may hold a phone number)" in str(raised.value)


@pytest.mark.parametrize("workers", [1, 2])
def test_with_both_files_bad_the_messages_file_is_reported_however_many_workers_read_them(tmp_path, config, workers):
    """The two files are read at once by two workers; the error is still the one reading them in turn meets."""
    root = _broken(tmp_path, 2, "consent_withdrawn", "maybe")
    _broken_in_place(root / "Outputs" / "csap_ind.csv", 1, "consent_withdrawn", "perhaps")
    with pytest.raises(AnalysisInputError, match=r"csap_mes\.csv: record row 2 .*got 'maybe'"):
        run_analysis(config=config, data_root=root, progress=None, workers=workers)
    shutil.copy(GOLDEN / "csap_mes.csv", root / "Outputs" / "csap_mes.csv")  # mended: the other file's error
    with pytest.raises(AnalysisInputError, match=r"csap_ind\.csv: record row 1 .*got 'perhaps'"):
        run_analysis(config=config, data_root=root, progress=None, workers=workers)


def _broken_in_place(path: Path, row: int, column: str, value: str) -> None:
    rows = _rows(path)
    rows[row][rows[0].index(column)] = value
    with open(path, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)


def test_a_cell_longer_than_the_csv_modules_default_limit_is_read(tmp_path):
    """One person's joined answers to a question can exceed 128 KiB (thousands of messages): the analysis
    reads the file and its tables are the hand-worked ones (the long cell is a raw answer no table reads)."""
    config = load_config(_config_file(tmp_path, breakdowns=["gender"], maps={"levels": ["region"], "dpi": 60}))
    root = _broken(tmp_path, 1, "hh_language_raw", "waan dhageystaa " * 20_000, "csap_ind.csv")
    run_analysis(config=config, data_root=root, progress=None)
    for expected in sorted(EXPECTED.glob("*.csv")):
        written = root / "Outputs" / "Analysis" / expected.name
        assert written.read_text(encoding="utf-8") == expected.read_text(encoding="utf-8"), expected.name


def test_missing_outputs_say_to_run_stage_3(tmp_path, config):
    root = tmp_path / "empty"
    (root / "Outputs").mkdir(parents=True)
    with pytest.raises(AnalysisInputError, match=r"csap_mes.csv: file not found: run stage 3"):
        run_analysis(config=config, data_root=root, progress=None)


def test_missing_column_is_named(tmp_path, config):
    root = _data_root(tmp_path)
    path = root / "Outputs" / "csap_ind.csv"
    rows = _rows(path)
    at = rows[0].index("region")
    with open(path, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows([r[:at] + r[at + 1:] for r in rows])
    with pytest.raises(AnalysisInputError, match=r"csap_ind.csv: column 'region' is missing"):
        run_analysis(config=config, data_root=root, progress=None)


def test_analyse_command_runs_on_outputs_the_2019_pipeline_wrote(tmp_path):
    """`generate_outputs.py analyse <data-root>` on a data root holding only the 2019 CSVs."""
    root = _data_root(tmp_path, PROJECT_ROOT / "tests" / "golden" / "expected")
    config = _config_file(tmp_path, maps={"levels": ["mogadishu_sub_district"], "dpi": 60})
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "generate_outputs.py"), "analyse", "--config",
                             str(config), str(root)], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert "Report:" in result.stdout
    engagement = _rows(root / "Outputs" / "Analysis" / "engagement_counts.csv")
    total = engagement[-1]
    assert total[0] == "Total" and int(total[1]) == len(_rows(root / "Outputs" / "csap_mes.csv")) - 1
    assert (root / "Outputs" / "Analysis" / "report.html").stat().st_size > 10_000


def test_analyse_command_usage_error_exits_2(tmp_path):
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "generate_outputs.py"), "analyse"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2 and "usage:" in result.stderr


@pytest.mark.parametrize(("analysis", "message"), [
    ({"breakdowns": ["gender", "shoe_size"]}, r"\$.analysis.breakdowns\[1\]: unknown demographic dataset 'shoe_size'"),
    ({"cross_tabs": [["age_category", "s01e01"]]}, r"\$.analysis.cross_tabs\[0\]\[1\]: 's01e01' is not a single-valued"),
    ({"cross_tabs": [["age_category", "gender"], ["region", "gender"], ["age_category", "gender"]]},
     r"\$.analysis.cross_tabs\[2\]: the pair \['age_category', 'gender'\] appears twice"),
    ({"age_categories": [{"name": "young", "min": 10, "max": 30}, {"name": "old", "min": 30, "max": 99}]},
     r"\$.analysis.age_categories\[1\]: overlaps age_categories\[0\] \(young\)"),
    ({"age_categories": [{"name": "young", "min": 10, "max": 30}, {"name": "old", "min": 40, "max": 99}]},
     r"\$.analysis.age_categories: no category holds the ages 31-39 of scheme 'age'"),
    ({"suppression": {"k": 0}}, r"\$.analysis.suppression.k"),
    ({"maps": {"levels": ["state"]}}, r"\$.analysis.maps.levels\[0\]"),
])
def test_bad_analysis_configuration_is_refused(tmp_path, analysis, message):
    with pytest.raises(ConfigError, match=message):
        load_config(_config_file(tmp_path, **analysis))


def test_absent_analysis_keys_take_the_defaults(tmp_path):
    settings = load_config(_config_file(tmp_path)).analysis
    assert settings.breakdowns == ("gender", "region", "age_category", "idp_camp", "recently_displaced",
                                   "hh_language")
    assert settings.cross_tabs == (("age_category", "gender"),)
    assert (settings.sample_per_code, settings.sample_seed, settings.suppression_k) == (100, 0, 5)


def test_jenks_classes_and_legend():
    """Natural breaks split the values where the within-class squared deviations are smallest."""
    assert jenks_classes([1, 2, 3, 10, 11, 12, 50], 3) == [3, 12, 50]
    assert jenks_classes([4, 4, 4], 5) == [4]  # one distinct value, one class
    assert legend_labels([3, 12, 50]) == ["1 - 3", "4 - 12", "13 - 50"]
    assert legend_labels([1, 5]) == ["1", "2 - 5"]
    assert class_colour(3, 3) == "#993e46" and class_colour(0, 3) == "#ffffff"


def test_each_breakdown_is_counted_on_its_own_columns(golden: Path, tmp_path):
    """With several breakdowns, each one's columns hold what it holds alone (region first, then gender)."""
    config = load_config(_config_file(tmp_path, breakdowns=["region", "gender"], maps={"levels": []}))
    root = _data_root(tmp_path)
    run_analysis(config=config, data_root=root, progress=None)
    both = _rows(root / "Outputs" / "Analysis" / "theme_distributions.csv")
    alone = _rows(golden / "theme_distributions.csv")
    gender_at = [i for i, name in enumerate(both[0]) if name.startswith("gender:")]
    assert [[row[i] for i in gender_at] for row in both] == [row[4:] for row in alone]
    block = _block(both, "s01e01")
    region = both[0].index("region:banadir")
    assert block["food_assistance"][region - 2:region] == ["1", "100.0"]  # A lives in banadir; C gave no region


def _map_texts(path: Path) -> list[str]:
    """The texts an SVG map shows (its printed counts and its legend), in drawing order."""
    return _svg_texts(path.read_text(encoding="utf-8"))


def _svg_texts(svg: str) -> list[str]:
    return [html.unescape(text) for text in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]


def test_a_shareable_map_does_not_tell_a_suppressed_count_by_its_colour(golden: Path):
    """Opt-in people by region: banadir 2 (A, E), bay 1 (B). Coloured by the true counts, the map has one class
    per count, and its legend (1, 2) tells what the printed <5 hides; the shareable map colours every count
    from 1 to 4 alike, in one class labelled 1 - 4."""
    full = _map_texts(golden / "maps" / "region" / "region_total_participants.svg")
    shared = _map_texts(golden / "shareable" / "maps" / "region" / "region_total_participants.svg")
    assert full[-4:] == ["Participants", "0", "1", "2"]
    assert shared[-3:] == ["Participants", "0", "1 - 4"]
    assert shared.count("<5") == 2 and "1" not in shared and "2" not in shared


def test_a_chart_of_many_bars_leaves_out_the_zeros_then_keeps_the_largest():
    """A chart shows at most 25 bars. Of 30 districts in table order (ten zeros first, then ten <5, then ten of 5
    to 14 people), the zeros are left out and the other 20 kept, the <5 among them (each more than zero, though
    drawn at 0): the title says so. Before, five zeros took bars and the title said "the 25 largest". With 30
    counted districts, the 25 largest are kept: of the ten <5, the five first in the table (ties in table order)."""
    cells = [Count(0)] * 10 + ["<5"] * 10 + [Count(n) for n in range(5, 15)]
    bars = [bar_from_cell(f"district {i:02d}", cell) for i, cell in enumerate(cells)]
    texts = set(_svg_texts(bar_chart("districts", "People by district", bars).svg))
    assert {f"district {i:02d}" for i in range(30)} & texts == {f"district {i:02d}" for i in range(10, 30)}
    assert "People by district (codes of 0 people not shown)" in texts

    cells = ["<5"] * 10 + [Count(n) for n in range(5, 25)]
    bars = [bar_from_cell(f"district {i:02d}", cell) for i, cell in enumerate(cells)]
    texts = set(_svg_texts(bar_chart("districts", "People by district", bars).svg))
    assert {f"district {i:02d}" for i in range(30)} & texts == {f"district {i:02d}" for i in [*range(5), *range(10, 30)]}
    assert "People by district (the 25 largest)" in texts


def _report_text(golden: Path) -> str:
    """The report's text as a reader sees it: tags dropped, entities decoded, whitespace collapsed."""
    report = (golden / "report.html").read_text(encoding="utf-8")
    report = re.sub(r"<(style|svg)\b.*?</\1>", " ", report, flags=re.S)
    report = re.sub(r"</?(a|code|b)\b[^>]*>", "", report)  # inline: no space in their place
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", report)).split())


def test_the_report_says_what_its_tables_leave_out(golden: Path):
    """A reader adding up the traffic rows (9 of 11 opt-in messages, README table) learns that B's s01e03 and F's
    s01e01 messages fell in no channel's window (2, shown <5); the theme tables' breakdowns are named; the project
    window has its times and UTC offset (its end, 2018-12-31 00:00, is not the whole of 31 December); the
    suppression sentence says where it applies."""
    text = _report_text(golden)
    assert ("<5 of the 11 opt-in messages were sent in no channel's window (non_logical_time in csap_mes.csv): no "
            "row counts them.") in text
    assert ("Here each theme is broken down by the answers to gender; the full table also breaks them down by the "
            "people who gave no answer (NA, NC, ...).") in text
    assert "project window 2018-12-02 00:00 to 2018-12-31 00:00 (UTC+03:00)" in text
    # analysis.md 4.2: an opt-in person who responded to no episode stays in the denominator and in no row.
    assert ("The percentages are over every opt-in person, including any whose episode answers were all coded NA "
            "or NS: they responded to no episode and are in no row, so the rows may add up to less than 100%.") in text
    assert ("In the tables, charts and maps of participation, themes, demographics and traffic, counts of people or "
            "messages below 5 are shown as <5 (suppression).") in text


def test_every_table_of_the_report_has_a_name_a_screen_reader_announces(golden: Path):
    """Each table has a caption or, where the section's heading names it, an aria-label."""
    report = (golden / "report.html").read_text(encoding="utf-8")
    tables = re.findall(r"<table[^>]*>\s*(?:<caption>)?", report)
    assert len(tables) >= 10
    assert [t for t in tables if "aria-label=" not in t and not t.endswith("<caption>")] == []


def _coding_progress(report_text: str) -> str:
    """The rows of the summary's coding-progress table, up to the suppression sentence after it."""
    rows = report_text.split("Labelled messages", 1)[1]
    return re.split(r"In the tables|No count is hidden", rows, maxsplit=1)[0].strip()


def test_the_summarys_coding_progress_hides_what_the_engagement_table_hides(golden: Path, tmp_path):
    """The summary's labelled messages per episode are the engagement table's Labelled and Opt-In counts (README
    table: s01e01 3 of 4, s01e02 1 of 2, s01e03 2 of 2, s01e04 2 of 2): all below 5, so shown <5 like the table,
    with no percentage; with k = 1 they are shown in full."""
    assert _coding_progress(_report_text(golden)) == "s01e01 <5 of <5 s01e02 <5 of <5 s01e03 <5 of <5 s01e04 <5 of <5"

    config = load_config(_config_file(tmp_path, breakdowns=["gender"], suppression={"k": 1},
                                      maps={"levels": ["region"], "dpi": 60}))
    root = _data_root(tmp_path)
    run_analysis(config=config, data_root=root, progress=None)
    assert _coding_progress(_report_text(root / "Outputs" / "Analysis")) == (
        "s01e01 3 of 4 (75.0%) s01e02 1 of 2 (50.0%) s01e03 2 of 2 (100.0%) s01e04 2 of 2 (100.0%)")


def test_the_summarys_coding_progress_of_an_episode_without_messages_and_of_large_counts():
    """analysis.md section 3: the percentage of x over 0 is "-", which the report's tables leave out; large counts
    have thousands separators, as the summary's other figures."""
    engagement = Table("engagement_counts.csv", ("Dataset", "Total Messages", "Total Messages with Opt-Ins",
                                                 "Total Labelled Messages"), ())
    row = ("s01e03", "-", Count(0), Count(0))
    assert _labelled_share(row, row, engagement, 5) == "0 of 0"
    row = ("s01e01", "-", Count(1_234), Count(1_000))
    assert _labelled_share(row, row, engagement, 5) == "1,000 of 1,234 (81.0%)"


def test_every_row_of_a_report_table_is_named_by_its_row_header(golden: Path):
    """A screen reader moving along a row announces its label (the theme, the code, the episode) with each cell;
    the age table, which leaves out the ages nobody gave, says so in its caption."""
    report = (golden / "report.html").read_text(encoding="utf-8")
    rows = re.findall(r"<tr(?: class=\"\w+\")?>(<t[hd][^>]*>)", "".join(re.findall(r"<tbody>.*?</tbody>", report, re.S)))
    assert len(rows) > 50 and set(rows) == {'<th scope="row">'}
    assert "<caption>age (codes of 0 people not shown)</caption>" in report
    # Both label columns of a cross-tab name its rows (15_to_17 male, 15_to_17 female).
    assert '<tr><th scope="row">15_to_17</th><th scope="row">male</th><td class="num">' in report


def test_a_theme_chart_says_what_its_percentages_are_of(golden: Path):
    """A chart exported on its own (charts/themes_s01e01.png, .svg) is cited without its table: its axis names
    the denominator of its percentages, the people relevant to the episode (analysis.md 4.3)."""
    svg = html.unescape((golden / "charts" / "themes_s01e01.svg").read_text(encoding="utf-8"))
    assert "s01e01: people per code" in svg and "People (% of the people relevant to s01e01)" in svg
