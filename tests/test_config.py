"""The configuration file: the shipped values load, and a wrong file gives every problem at once."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from redss_pipeline.core.config import load_config, parse_config
from redss_pipeline.core.errors import ConfigError

EAT = timezone(timedelta(hours=3))


def _shipped(project_root: Path) -> dict:
    return json.loads((project_root / "pipeline_config.json").read_text())


def _write(tmp_path: Path, project_root: Path, raw: dict) -> Path:
    # Beside a copy of the scheme directory, so relative scheme paths resolve from the file's own folder.
    (tmp_path / "code_schemes").symlink_to(project_root / "code_schemes")
    path = tmp_path / "pipeline_config.json"
    path.write_text(json.dumps(raw))
    return path


def test_shipped_configuration_holds_the_redss_values(config):
    """The shipped file carries the 2019 constants: flows, modes, windows, test contacts, ICR."""
    assert [f.name for f in config.flows] == [
        "csap_s01e01_activation", "csap_s01e02_activation", "csap_s01e03_activation", "csap_s01e04_activation",
        "csap_demog", "csap_evaluation",
    ]
    assert [f.mode for f in config.flows] == ["all"] * 4 + ["latest-only"] * 2
    assert config.project_start == datetime(2018, 12, 2, tzinfo=EAT)
    assert config.project_end == datetime(2018, 12, 31, tzinfo=EAT)
    assert config.test_contact_uuids == {"6f251195-5889-437a-a8b5-ad74b8e4eb62", "ed65f87f-4805-42ad-9b66-27f34c81c4ff"}
    assert (config.icr.sample_size, config.icr.seed) == (200, 0)
    assert [p.analysis_key for p in config.survey_plans] == [
        "gender", "mogadishu_sub_district", "district", "region", "state", "zone", "age", "idp_camp",
        "recently_displaced", "hh_language", "repeated", "involved",
    ]
    assert config.rqa_plan("s01e02").binary.analysis_key == "rqa_s01e02_integrate_return"
    assert config.rqa_plan("s01e03").scheme.scheme_id == "Scheme-5b60cc33"
    assert config.ws_redirect.code_id == "code-9a5f15d6"
    assert config.outputs.messages_csv == "csap_mes.csv"


def test_time_window_corrections_keep_their_exact_bounds(config):
    """C2 is strictly after its start; C3 and C4 include their start and exclude their end."""
    c2, c3, c4 = config.time_window_corrections
    assert not c2.matches(datetime(2018, 12, 23, tzinfo=EAT))
    assert c2.matches(datetime(2018, 12, 23, 0, 0, 0, 1, tzinfo=EAT))
    assert c3.matches(datetime(2019, 1, 17, 12, 3, 11, tzinfo=EAT))
    assert not c3.matches(datetime(2019, 1, 17, 12, 24, 42, tzinfo=EAT))
    assert c4.matches(datetime(2019, 1, 12, 9, 45, 12, tzinfo=EAT))
    assert not c4.matches(datetime(2019, 1, 12, 9, 51, 57, tzinfo=EAT))
    assert (c3.sent_on, c4.sent_on, c2.sent_on) == ("2018-12-13T00:00:00+03:00", "2018-12-14T00:00:00+03:00", None)


def test_channel_windows_are_half_open(config):
    """A channel range includes its start and excludes its end."""
    first_sms_ad = config.channels["sms_ad"][0]
    assert datetime(2018, 12, 2, 19, 25, 19, tzinfo=EAT) in first_sms_ad
    assert datetime(2018, 12, 3, tzinfo=EAT) not in first_sms_ad


def test_three_problems_are_reported_together(tmp_path, project_root):
    """A wrong type, a missing key and an unknown scheme file: three lines, each naming its JSON path."""
    raw = _shipped(project_root)
    raw["icr"]["sample_size"] = "200"
    del raw["rqa_plans"][1]["coded_field"]
    raw["code_schemes"]["files"]["gender"] = "gendr.json"
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, project_root, raw))
    assert caught.value.problems == [
        '$.icr.sample_size: expected an integer, got "200"',
        "$.rqa_plans[1]: missing key 'coded_field'",
        "$.code_schemes.files.gender: scheme file code_schemes/gendr.json does not exist",
    ]
    assert str(caught.value).startswith(str(tmp_path / "pipeline_config.json") + ": 3 problem(s)")


def test_command_line_check_exits_2_with_the_problems(tmp_path, project_root):
    """Validating a broken file from the command line prints the problems and exits with status 2."""
    raw = _shipped(project_root)
    raw["rapid_pro"]["flows"][0]["mode"] = "everything"
    raw["unexpected"] = 1
    path = _write(tmp_path, project_root, raw)
    result = subprocess.run(
        [sys.executable, "-m", "redss_pipeline.core.config", str(path)], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 2
    assert "$: unknown key 'unexpected'" in result.stderr
    assert '$.rapid_pro.flows[0].mode: expected one of "all", "latest-only", got "everything"' in result.stderr


def test_references_between_sections_are_checked(tmp_path, project_root):
    """A plan naming an unknown flow or scheme, and a correction naming an unknown show, are reported."""
    raw = _shipped(project_root)
    raw["rqa_plans"][0]["flow"] = "csap_s01e05_activation"
    raw["survey_plans"][0]["scheme"] = "gendre"
    raw["operational_corrections"]["time_windows"][0]["to_show"] = "s01e09"
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, project_root, raw))
    assert caught.value.problems == [
        "$.rqa_plans[0].flow: unknown flow 'csap_s01e05_activation' (not in $.rapid_pro.flows)",
        "$.survey_plans[0].scheme: unknown scheme 'gendre' (not listed in $.code_schemes.files)",
        "$.operational_corrections.time_windows[0].to_show: unknown show 's01e09'",
    ]


def test_a_key_repeated_in_an_object_is_refused_by_its_path(tmp_path, project_root):
    """A week copied for a new episode without renaming it: JSON readers keep the last value, so the copied week
    would silently replace the first (its column would count the new episode's dates). Reported with the other
    problems of the file, by JSON path."""
    path = _write(tmp_path, project_root, {})
    text = json.dumps(_shipped(project_root), indent=2)
    copied = '"radio_participation_s01e04": [["2018-12-30T00:00:00+03:00", "2019-01-06T00:00:00+03:00"]],\n'
    text = text.replace('"radio_participation_s01e04": ', copied + '    "radio_participation_s01e04": ', 1)
    path.write_text(text.replace('"sample_size": 200', '"sample_size": "200"'))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [
        "$.weeks.radio_participation_s01e04: the key appears more than once in its object; only the last is read, "
        "so the others would be silently ignored: rename or remove the copies",
        '$.icr.sample_size: expected an integer, got "200"',
    ]


def test_2019_two_key_configuration_is_refused_with_its_name(tmp_path):
    """The 2019 pipeline_config.json format is recognised and refused with a message saying so."""
    path = tmp_path / "pipeline_config.json"
    path.write_text(json.dumps({"RapidProBaseURL": "https://textit.in", "RapidProTokenFileURL": "gs://b/t.txt"}))
    with pytest.raises(ConfigError, match="2019 two-key pipeline_config.json format"):
        load_config(path)


def test_invalid_json_names_line_and_column(tmp_path):
    """A syntax error is one problem with its position."""
    path = tmp_path / "pipeline_config.json"
    path.write_text('{"format": }')
    with pytest.raises(ConfigError, match=r"not valid JSON \(line 1, column 12: Expecting value\)"):
        load_config(path)


def test_loading_does_not_depend_on_the_current_directory(tmp_path, project_root):
    """The default configuration and its scheme files are found from any directory."""
    env = {k: v for k, v in os.environ.items() if k != "REDSS_PIPELINE_CONFIG"}
    result = subprocess.run(
        [sys.executable, "-m", "redss_pipeline.core.config"], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr
    assert "valid (6 flows, 4 shows, 12 survey plans, 20 code schemes)" in result.stdout


def test_invalid_scheme_file_is_a_configuration_problem(tmp_path, project_root):
    """A scheme file that does not parse is reported under the configuration key that names it."""
    schemes = tmp_path / "code_schemes"
    schemes.mkdir()
    for f in (project_root / "code_schemes").iterdir():
        (schemes / f.name).write_text(f.read_text())
    (schemes / "zone.json").write_text("[]")
    raw = _shipped(project_root)
    path = tmp_path / "pipeline_config.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ConfigError) as caught:
        parse_config(copy.deepcopy(raw), path=path)
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith("$.code_schemes.files.zone: invalid scheme file:")
