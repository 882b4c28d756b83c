"""Configurations that would silently give wrong results are refused at validation, each problem naming its JSON
path (issue 12 item 10): two outputs with one name, two shows with one Coda file, overlapping weeks or channels,
a float where an integer is needed, flow and file names that leave their folder."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import pytest

from redss_pipeline.core.config import load_config
from redss_pipeline.core.errors import ConfigError
from redss_pipeline.core.run_context import RunContext
from redss_pipeline.generate.stage import run_generate


def _shipped(project_root: Path) -> dict:
    return json.loads((project_root / "pipeline_config.json").read_text())


def _problems(tmp_path: Path, project_root: Path, raw: dict) -> list[str]:
    (tmp_path / "code_schemes").symlink_to(project_root / "code_schemes")
    path = tmp_path / "pipeline_config.json"
    path.write_text(json.dumps(raw))
    return _refusals(path)


def _refusals(path: Path) -> list[str]:
    """The problems for which loading the configuration file ``path`` is refused (exit status 2)."""
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.exit_status == 2
    return caught.value.problems


def _with_edited_schemes(tmp_path: Path, project_root: Path, **edits: Callable[[list[dict]], list[dict]]) -> Path:
    """The shipped configuration over a copy of its schemes, the codes of each scheme file named (without .json) in
    ``edits`` replaced by what its edit makes of them; the configuration file's path."""
    schemes = tmp_path / "schemes"
    schemes.mkdir()
    for source in (project_root / "code_schemes").iterdir():
        scheme = json.loads(source.read_text(encoding="utf-8"))
        if source.stem in edits:
            scheme["Codes"] = edits[source.stem](scheme["Codes"])
        (schemes / source.name).write_text(json.dumps(scheme), encoding="utf-8")
    raw = _shipped(project_root)
    raw["code_schemes"]["directory"] = "schemes"
    path = tmp_path / "pipeline_config.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


def _without(*control_codes: str) -> Callable[[list[dict]], list[dict]]:
    return lambda codes: [code for code in codes if code.get("ControlCode") not in control_codes]


def test_two_outputs_with_one_name_are_refused(tmp_path, project_root):
    """individuals_csv = messages_csv replaced the messages with the individuals."""
    raw = _shipped(project_root)
    raw["outputs"]["individuals_csv"] = "csap_mes.csv"
    problems = _problems(tmp_path, project_root, raw)
    assert problems == ["$.outputs.individuals_csv: the file name 'csap_mes.csv' is also $.outputs.messages_csv"]


def test_two_drive_copies_with_one_name_are_refused(tmp_path, project_root):
    raw = _shipped(project_root)
    raw["drive"]["production_csv"] = "csap_ind.csv"
    assert _problems(tmp_path, project_root, raw) == [
        "$.drive.production_csv: the file name 'csap_ind.csv' is also $.drive.individuals_csv"]


def test_an_output_may_not_take_a_name_the_outputs_folder_needs(tmp_path, project_root):
    raw = _shipped(project_root)
    raw["outputs"]["audit_trail"] = "manifest.json"
    raw["outputs"]["production_csv"] = "ICR"
    raw["outputs"]["messages_csv"] = "analysis"  # the analysis folder, on a file system that ignores case
    problems = _problems(tmp_path, project_root, raw)
    assert "$.outputs.audit_trail: the file name 'manifest.json' is reserved in Outputs/" in problems
    assert "$.outputs.production_csv: the file name 'ICR' is reserved in Outputs/" in problems
    assert "$.outputs.messages_csv: the file name 'analysis' is reserved in Outputs/" in problems


def test_an_unknown_cleaner_is_refused_listing_the_cleaners(tmp_path, project_root):
    """The message lists what may stand there, not only null."""
    raw = _shipped(project_root)
    raw["survey_plans"][0]["cleaner"] = "genderx"
    (problem,) = _problems(tmp_path, project_root, raw)
    assert problem.startswith('$.survey_plans[0].cleaner: expected one of null, "gender", ')
    assert problem.endswith(', got "genderx"')


def test_two_shows_with_one_coda_file_are_refused(tmp_path, project_root):
    raw = _shipped(project_root)
    raw["rqa_plans"][1]["coda_file"] = "s01e01.json"
    raw["rqa_plans"][3]["icr_file"] = "s01e03.csv"
    raw["survey_plans"][0]["coda_file"] = "s01e03.json"
    problems = _problems(tmp_path, project_root, raw)
    assert problems == [
        "$.rqa_plans[1].coda_file: the file name 's01e01.json' is also $.rqa_plans[0].coda_file",
        "$.rqa_plans[3].icr_file: the file name 's01e03.csv' is also $.rqa_plans[2].icr_file",
        "$.survey_plans[0].coda_file: the file name 's01e03.json' is also $.rqa_plans[2].coda_file",
    ]


def test_survey_plans_share_a_coda_file_only_for_one_raw_answer(tmp_path, project_root):
    """The five location levels share location.json (one answer); gender and age may not share a file."""
    raw = _shipped(project_root)
    age = next(i for i, p in enumerate(raw["survey_plans"]) if p["name"] == "age")
    raw["survey_plans"][age]["coda_file"] = "gender.json"
    assert _problems(tmp_path, project_root, raw) == [
        f"$.survey_plans[{age}].coda_file: the file name 'gender.json' is also $.survey_plans[0].coda_file, "
        "which holds another answer (gender_raw, not age_raw)"]


def test_overlapping_weeks_are_refused(tmp_path, project_root):
    """241 messages were counted in two weeks when week 2 started a day early."""
    raw = _shipped(project_root)
    raw["weeks"]["radio_participation_s01e02"][0][0] = "2018-12-08T00:00:00+03:00"
    assert _problems(tmp_path, project_root, raw) == [
        "$.weeks.radio_participation_s01e02[0]: overlaps $.weeks.radio_participation_s01e01[0] "
        "(from 2018-12-08T00:00:00+03:00 to 2018-12-09T00:00:00+03:00)"]


def test_overlapping_channels_are_refused(tmp_path, project_root):
    """At most one channel key may match a message (pipeline.md section 8; 2019 asserted it)."""
    raw = _shipped(project_root)
    raw["channels"]["radio_show"][0] = ["2018-12-04T12:00:00+03:00", "2018-12-07T00:00:00+03:00"]
    assert _problems(tmp_path, project_root, raw) == [
        "$.channels.radio_show[0]: overlaps $.channels.radio_promo[1] "
        "(from 2018-12-04T12:00:00+03:00 to 2018-12-05T00:00:00+03:00)"]


def test_a_float_is_not_an_integer(tmp_path, project_root):
    """200.0 passed the schema and crashed later in random.sample."""
    raw = _shipped(project_root)
    raw["icr"]["sample_size"] = 200.0
    raw["icr"]["seed"] = 0.0
    raw["noise"]["min_length"] = 10.5
    assert _problems(tmp_path, project_root, raw) == [
        "$.icr.sample_size: expected an integer, got 200.0",
        "$.icr.seed: expected an integer, got 0.0",
        "$.noise.min_length: expected an integer, got 10.5",
    ]


@pytest.mark.parametrize("name", ["../../x", "..", "sub/flow", "a\\b", ".", "nul\x00byte"])
def test_a_flow_name_that_leaves_the_raw_data_folder_is_refused(tmp_path, project_root, name):
    """A flow's raw file is Raw Data/<flow>.json: the name must stay a plain file name."""
    raw = _shipped(project_root)
    old = raw["rapid_pro"]["flows"][0]["name"]
    raw["rapid_pro"]["flows"][0]["name"] = name
    raw["rqa_plans"][0]["flow"] = name
    problems = _problems(tmp_path, project_root, raw)
    assert problems == [f"$.rapid_pro.flows[0].name: {json.dumps(name)} cannot be a file name "
                        "(no '/', '\\', NUL, '.' or '..')"], old


@pytest.mark.parametrize("where", [("outputs", "messages_csv"), ("rqa_plans", 0, "icr_file"),
                                   ("survey_plans", 0, "coda_file")])
def test_an_output_file_name_of_dot_dot_is_refused(tmp_path, project_root, where):
    raw = _shipped(project_root)
    node = raw
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = ".."
    path = "$." + ".".join(str(k) for k in where).replace(".0.", "[0].")
    problems = _problems(tmp_path, project_root, raw)
    assert f"{path}: \"..\" cannot be a file name (no '/', '\\', NUL, '.' or '..')" in problems


def test_a_shows_codes_key_taken_by_another_field_or_show_is_refused(tmp_path, project_root):
    """A show's codes are held under <analysis_prefix>codes: a second show with the same prefix, or a binary key of
    that name, would overwrite them, and so every matrix column of the show."""
    raw = _shipped(project_root)
    raw["rqa_plans"][1]["binary"]["analysis_key"] = "rqa_s01e01_codes"
    raw["rqa_plans"][3]["analysis_prefix"] = raw["rqa_plans"][2]["analysis_prefix"]
    problems = _problems(tmp_path, project_root, raw)
    assert problems == [
        "$.rqa_plans[0].analysis_prefix: the show's codes are held under 'rqa_s01e01_codes', which is also "
        "$.rqa_plans[1].binary.analysis_key",
        "$.rqa_plans[3].analysis_prefix: 'rqa_s01e03_' is also the prefix of $.rqa_plans[2] (each show needs its own)",
    ]


def test_two_configured_fields_of_one_name_are_refused(tmp_path, project_root):
    """Each configured field names a key of the message records: a yes/no key named like a show's raw field would
    overwrite the listener's text, a survey's key named like a channel flag the flag. The five location plans share
    the fields of the one answer they code, which stays allowed (the shipped configuration does so)."""
    raw = _shipped(project_root)
    raw["rqa_plans"][1]["binary"]["analysis_key"] = raw["rqa_plans"][0]["raw_field"]
    channel = next(iter(raw["channels"]))
    raw["survey_plans"][-1]["coded_field"] = channel
    raw["survey_plans"][-2]["time_field"] = raw["survey_plans"][-3]["raw_field"]
    gender, age = raw["survey_plans"][0], raw["survey_plans"][6]  # two answers of csap_demog
    gender["id_field"] = age["id_field"]
    last = len(raw["survey_plans"]) - 1
    problems = _problems(tmp_path, project_root, raw)
    assert problems == [
        "$.rqa_plans[1].binary.analysis_key: 'rqa_s01e01_raw' is also $.rqa_plans[0].raw_field (each names its own "
        "key of the records)",
        "$.survey_plans[6].id_field: 'age_raw_id' is also $.survey_plans[0].id_field (each names its own key of the "
        "records)",
        f"$.survey_plans[{last - 1}].time_field: {raw['survey_plans'][-3]['raw_field']!r} is also "
        f"$.survey_plans[{last - 2}].raw_field (each names its own key of the records)",
        f"$.channels.{channel}: {channel!r} is also $.survey_plans[{last}].coded_field (each names its own key of the "
        "records)",
    ]


def test_a_configuration_saved_with_a_byte_order_mark_is_read(tmp_path, project_root):
    """Some Windows editors start a UTF-8 file with a byte-order mark; the configuration is read past it."""
    (tmp_path / "code_schemes").symlink_to(project_root / "code_schemes")
    path = tmp_path / "pipeline_config.json"
    path.write_bytes(b"\xef\xbb\xbf" + (project_root / "pipeline_config.json").read_bytes())
    assert load_config(path).rqa_plans == load_config(project_root / "pipeline_config.json").rqa_plans


def test_a_missing_code_schemes_folder_is_one_problem(tmp_path, project_root):
    """Not one problem per scheme file (20 lines for the shipped configuration)."""
    raw = _shipped(project_root)
    raw["code_schemes"]["directory"] = "schemes-moved"
    assert _problems(tmp_path, project_root, raw) == [
        "$.code_schemes.directory: schemes-moved does not exist (relative to the configuration file's folder)"]
    raw["code_schemes"]["directory"] = str(project_root / "pipeline_config.json")
    (tmp_path / "again").mkdir()
    assert _problems(tmp_path / "again", project_root, raw) == [
        f"$.code_schemes.directory: {project_root / 'pipeline_config.json'} is not a folder"]


def test_a_field_named_like_a_key_the_pipeline_writes_itself_is_refused(tmp_path, project_root):
    """A new question given analysis_key uid (or consent_withdrawn) would overwrite the respondent's id (or the
    consent column) on every record; the run then failed far from the cause, or not at all."""
    raw = _shipped(project_root)
    raw["survey_plans"][10]["analysis_key"] = "uid"
    raw["survey_plans"][11]["coded_field"] = "consent_withdrawn"
    assert _problems(tmp_path, project_root, raw) == [
        "$.survey_plans[10].analysis_key: 'uid' is the respondent id, a key the pipeline writes itself",
        "$.survey_plans[11].coded_field: 'consent_withdrawn' is the consent column, a key the pipeline writes itself",
    ]


def test_a_field_named_like_a_shows_matrix_column_is_refused(tmp_path, project_root):
    """s01e04's scheme has a code 'other', so its matrix has a column rqa_s01e04_other (pipeline.md section 9): a
    question of that name would give the analysis files two columns of one name."""
    raw = _shipped(project_root)
    raw["survey_plans"][11]["analysis_key"] = "rqa_s01e04_other"
    assert _problems(tmp_path, project_root, raw) == [
        "$.rqa_plans[3].analysis_prefix: the show's column 'rqa_s01e04_other' (code 'other' of scheme 's01e04') is "
        "also $.survey_plans[11].analysis_key"]


def test_a_question_named_like_the_age_categories_is_refused(tmp_path, project_root):
    """The age answers give the analysis a dataset age_category (analysis.md section 2): a question of that name
    would be read as the age categories' column, and its own answers would not be analysed."""
    raw = _shipped(project_root)
    raw["survey_plans"][11]["analysis_key"] = "age_category"
    assert _problems(tmp_path, project_root, raw) == [
        "$.analysis: two datasets are named 'age_category': the categories of the age answers of "
        "$.survey_plans[6] and $.survey_plans[11].analysis_key; rename one"]


def test_a_scheme_without_a_control_code_its_role_needs_is_refused(tmp_path, project_root):
    """The pipeline writes NA and NR in a survey's scheme, every control code in a location level's (the
    reconciliation copies one level's to all), NA and NC in Operator's: a new question's scheme made without NR
    stopped stage 3 midway. A scheme without NIC is fine where the pipeline never writes it."""
    path = _with_edited_schemes(tmp_path, project_root, involved=_without("NR", "NIC"), region=_without("WS"),
                                operator=_without("NC"))
    assert _refusals(path) == [
        "$.survey_plans[3].scheme: scheme 'region' (region.json) has no WS control code, which the pipeline writes in "
        "this role (it needs NA, NS, NC, NR, NIC, STOP, WS)",
        "$.survey_plans[11].scheme: scheme 'involved' (involved.json) has no NR control code, which the pipeline "
        "writes in this role (it needs NA, NR)",
        "$.operator.scheme: scheme 'operator' (operator.json) has no NC control code, which the pipeline writes in "
        "this role (it needs NA, NC)",
    ]


def test_ages_no_age_category_holds_are_refused(tmp_path, project_root):
    """The analysis puts each age in a category (analysis.md section 1): an age scheme extended to 104 for a new
    season, under the shipped categories (up to 55_to_99), stopped the analysis at the first person aged 100, as if
    csap_ind.csv were wrong; an age code whose StringValue is not a number could never be put in one."""
    extra = [{"CodeID": f"code-age-{age}", "CodeType": "Normal", "DisplayText": str(age), "NumericValue": age,
              "StringValue": str(age), "VisibleInCoda": True, "MatchValues": [str(age)]} for age in range(100, 105)]
    extra.append({"CodeID": "code-age-old", "CodeType": "Normal", "DisplayText": "old", "NumericValue": 200,
                  "StringValue": "old", "VisibleInCoda": True})
    path = _with_edited_schemes(tmp_path, project_root, age=lambda codes: codes + extra)
    assert _refusals(path) == [
        "$.survey_plans[6].scheme: scheme 'age' (age.json) has age codes that are not whole numbers ('old'), which "
        "no age category can hold",
        "$.analysis.age_categories: no category holds the ages 100-104 of scheme 'age' (age.json), which coders "
        "can give; add categories for them",
    ]


def test_a_scheme_without_the_match_values_its_cleaner_gives_is_refused(tmp_path, project_root):
    """A yes/no question's scheme made in Coda's editor has no MatchValues: the yes_no cleaner's 'yes' and 'no'
    (cleaners.md) have no code, which stopped stage 3 at the first answer the cleaner understood. The configuration
    command and stage 3, before it reads anything, refuse it (exit 2)."""
    path = _with_edited_schemes(tmp_path, project_root, involved=lambda codes: [
        {key: value for key, value in code.items() if key != "MatchValues"} for code in codes])
    problem = ("$.survey_plans[11].scheme: scheme 'involved' (involved.json) has no code whose MatchValues hold "
               "'no', 'yes', which the yes_no cleaner gives")
    checked = subprocess.run([sys.executable, "-m", "redss_pipeline.core.config", str(path)], capture_output=True,
                             text=True, timeout=60)
    assert checked.returncode == 2
    assert f"- {problem}" in checked.stderr.splitlines()

    root = tmp_path / "root"
    shutil.copytree(project_root / "tests" / "golden" / "data_root", root)
    with pytest.raises(ConfigError) as caught:
        run_generate(config=load_config(path), data_root=root, run=RunContext("me@example.org", datetime(
            2019, 1, 20, tzinfo=timezone.utc)), progress=None)
    assert caught.value.problems == [problem]
    assert not (root / "Outputs").exists()
