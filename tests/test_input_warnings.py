"""Stage 3 says what it ignores (issue 12 items 11 and 12): coders' work it cannot use (labels under an unknown
SchemeID, a coded file that is not a configured dataset, a Text that does not match its MessageID, coded messages
no exported message matches), an empty show file, a run that appears twice, answers of a raw file that a
mistyped result_key leaves unread, and messages that fall in no configured week; each warning names the file and
the count, and the stage's summary ends with the number of warnings."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import pytest
from data_roots import fetched_data_root

from redss_pipeline.core.config import load_config
from redss_pipeline.core.run_context import RunContext
from redss_pipeline.generate.stage import run_generate

PROJECT_ROOT = Path(__file__).resolve().parents[1]
GENDER_SCHEME = "Scheme-12cb6f95"
S01E04_SCHEME, S01E04_CODE = "Scheme-3abe50d3", "code-5e1ce974"  # S01E04 reasons and one of its codes


@pytest.fixture(scope="module")
def generated_root(tmp_path_factory) -> Path:
    root = fetched_data_root(tmp_path_factory.mktemp("warnings") / "root", seed=3, size=300)
    run_generate(config=load_config(), data_root=root, progress=None,
                 run=RunContext("first@example.org", datetime(2019, 1, 20, tzinfo=timezone.utc)))
    return root


@pytest.fixture
def root(generated_root, tmp_path) -> Path:
    copy = tmp_path / "root"
    shutil.copytree(generated_root, copy)
    return copy


def _stage3(root: Path, config: Path | None = None) -> tuple[list[str], str]:
    """Runs stage 3 as users do (with the configuration file ``config``, if given); returns its warning lines and the
    last line of its summary."""
    options = [] if config is None else ["--config", str(config)]
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "generate_outputs.py"), *options, "me@example.org",
                             str(root)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    warnings = [line.strip() for line in result.stderr.splitlines() if line.strip().startswith("warning: ")]
    return warnings, result.stdout.strip().splitlines()[-1]


def _config(tmp_path: Path, change: Callable[[dict], None]) -> Path:
    """The shipped configuration as ``change`` edits it, written in ``tmp_path`` (its code schemes where they are)."""
    raw = json.loads((PROJECT_ROOT / "pipeline_config.json").read_text())
    raw["code_schemes"]["directory"] = str(PROJECT_ROOT / raw["code_schemes"]["directory"])
    change(raw)
    path = tmp_path / "pipeline_config.json"
    path.write_text(json.dumps(raw, indent=2))
    return path


def _result_keys(**keys: str) -> Callable[[dict], None]:
    """An edit of the configuration giving the plans named (shows and survey plans) these result keys."""
    def change(raw: dict) -> None:
        for plan in raw["rqa_plans"] + raw["survey_plans"]:
            plan["result_key"] = keys.get(plan["name"], plan["result_key"])
    return change


def _label(scheme_id: str, code_id: str) -> dict:
    return {"SchemeID": scheme_id, "CodeID": code_id, "DateTimeUTC": "2019-01-21T09:00:00.000Z", "Checked": True,
            "Origin": {"OriginID": "coder@example.org", "Name": "Coder", "OriginType": "Manual"}}


def test_a_clean_run_ends_with_no_warnings(root):
    """The synthetic workspace has a run exactly at the project end (2018-12-31T00:00:00+03:00), which the project
    window keeps and no week holds (pipeline.md 8, like the golden root's M50): not a week missing, so no warning."""
    warnings, summary = _stage3(root)
    assert warnings == []
    assert summary.endswith("0 warnings")


def test_labels_under_an_unknown_scheme_are_reported_with_their_count(root):
    messages = json.loads((root / "Outputs/Coda Files/gender.json").read_text())
    messages[0]["Labels"].insert(0, _label("Scheme-not-configured", "code-x"))
    messages[1]["Labels"].insert(0, _label("Scheme-not-configured", "code-y"))
    messages[2]["Labels"].insert(0, _label(GENDER_SCHEME + "-typo", "code-z"))
    (root / "Coded Coda Files/gender.json").write_text(json.dumps(messages))
    warnings, summary = _stage3(root)
    assert warnings == [
        "warning: Coded Coda Files/gender.json: 3 labels under SchemeIDs no plan reads from this file were ignored "
        f"(Scheme-not-configured 2, {GENDER_SCHEME}-typo 1)"]
    assert summary.endswith("1 warning")


def test_a_coded_file_of_another_dataset_is_named_by_its_schemes(root):
    """The s01e04 download saved as s01e01.json: its labels are under S01E04's scheme, which says what it is."""
    messages = json.loads((root / "Outputs/Coda Files/s01e01.json").read_text())
    for message in messages[:3]:
        message["Labels"] = [_label(S01E04_SCHEME, S01E04_CODE)]
    (root / "Coded Coda Files/s01e01.json").write_text(json.dumps(messages))
    warnings, _ = _stage3(root)
    assert warnings[0] == (
        "warning: Coded Coda Files/s01e01.json: 3 labels under SchemeIDs no plan reads from this file were ignored "
        f"({S01E04_SCHEME} 3 (a scheme of s01e04.json)); is it the coded download of s01e04.json, saved under another "
        "name?")


def test_a_coded_file_that_is_not_a_configured_dataset_is_reported(root):
    messages = json.loads((root / "Outputs/Coda Files/s01e01.json").read_text())
    (root / "Coded Coda Files/s01e01.json").write_text("[]")
    (root / "Coded Coda Files/S01E01.json").write_text(json.dumps(messages))
    (root / "Coded Coda Files/s01e09.json").write_text(json.dumps(messages[:2]))
    warnings, summary = _stage3(root)
    assert warnings == [
        f"warning: Coded Coda Files/S01E01.json: not a configured dataset (did you mean s01e01.json?); its "
        f"{len(messages)} messages were ignored",
        "warning: Coded Coda Files/s01e09.json: not a configured dataset; its 2 messages were ignored",
    ]
    assert summary.endswith("2 warnings")


def test_a_coded_file_saved_under_another_name_is_reported_whatever_its_extension(root):
    """An editor's added extension, other letters, a browser's copy and a misnamed second coder's file beside the
    file the run reads: each is read by nothing, so each is named (here a survey file whose STOP codes would
    otherwise be lost silently)."""
    messages = json.loads((root / "Outputs/Coda Files/gender.json").read_text())
    (root / "Coded Coda Files/gender.json").write_text(json.dumps(messages[:1]))
    (root / "Coded Coda Files/gender.json.txt").write_text(json.dumps(messages))
    (root / "Coded Coda Files/GENDER.JSON").write_text(json.dumps(messages[:3]))
    (root / "Coded Coda Files/gender (1).json").write_text("not json")
    (root / "Coded Coda Files/.DS_Store").write_bytes(b"\0\0\0\1Bud1")  # left by a file manager: not a coder's
    (root / "Coded Coda Files/ICR").mkdir(exist_ok=True)
    (root / "Coded Coda Files/ICR/s01e01.json").write_text("[]")
    (root / "Coded Coda Files/ICR/S01E01.json").write_text(json.dumps(messages[:4]))
    warnings, summary = _stage3(root)
    assert warnings == [
        "warning: Coded Coda Files/GENDER.JSON: not a configured dataset (did you mean gender.json?); its 3 messages "
        "were ignored",
        "warning: Coded Coda Files/gender (1).json: not a configured dataset (did you mean gender.json?); its content "
        "(not a readable messages file) was ignored",
        f"warning: Coded Coda Files/gender.json.txt: not a configured dataset (did you mean gender.json?); its "
        f"{len(messages)} messages were ignored",
        "warning: Coded Coda Files/ICR/S01E01.json: not a show's second-coder file (did you mean s01e01.json?); its 4 "
        "messages were ignored",
    ]
    assert summary.endswith("4 warnings")


@pytest.mark.parametrize("saved_as, folder", [
    ("s01e02 (1).json", "Coded Coda Files"),  # a browser's second download
    ("S01E02.json", "Coded Coda Files"),
    ("s01e02.json.txt", "Coded Coda Files"),
    ("S01E02.json", "Coded Coda Files/ICR"),
])
def test_a_coded_file_saved_under_another_name_in_place_of_the_one_read_stops_the_run(root, saved_as, folder):
    """With s01e02.json missing, its download under another name would leave s01e02 read as not coded yet: every
    output would lose its codes with a warning only. The run stops before writing anything, naming the file."""
    messages = json.loads((root / "Outputs/Coda Files/s01e02.json").read_text())
    (root / folder).mkdir(exist_ok=True)
    (root / folder / saved_as).write_text(json.dumps(messages))
    before = {p: p.read_bytes() for p in (root / "Outputs").rglob("*") if p.is_file()}
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "generate_outputs.py"), "me@example.org", str(root)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert [line for line in result.stderr.splitlines() if line.startswith("error: ")] == [
        f"error: {folder}/{saved_as}: not a file name the run reads, and s01e02.json is missing: if this is its "
        "coded download, rename it to s01e02.json, otherwise move it out of the folder (read as not coded yet, "
        "s01e02.json's codes would be left out of every output); nothing was written"]
    assert {p: p.read_bytes() for p in (root / "Outputs").rglob("*") if p.is_file()} == before


def test_messages_marked_as_a_dataset_the_redirect_does_not_move_to_are_reported(root):
    """Only s01e03's messages marked s01e02 in WS - Correct Dataset move (pipeline.md 7.3.2, the shipped
    operational_corrections.ws_redirect); marks of other datasets are kept in the file but change nothing."""
    ws = "Scheme-fffffc6e"
    messages = json.loads((root / "Outputs/Coda Files/s01e03.json").read_text())
    marks = {0: "code-f7a875ee", 1: "code-f7a875ee", 2: "code-6774cedd", 3: "code-9a5f15d6", 4: "code-e8621530"}
    for index, code_id in marks.items():  # s01e04, s01e04, gender, s01e02 (moved), s01e03 (itself)
        messages[index]["Labels"] = [_label(ws, code_id)]
    unchecked = dict(_label(ws, "code-6774cedd"), Checked=False)
    messages[5]["Labels"] = [unchecked]  # not the coder's verdict yet
    (root / "Coded Coda Files/s01e03.json").write_text(json.dumps(messages))
    warnings, _ = _stage3(root)
    assert warnings == [
        "warning: Coded Coda Files/s01e03.json: 3 messages marked as another dataset's in WS - Correct Dataset "
        "(s01e04 2, gender 1): the marks move nothing, as the pipeline moves only messages marked s01e02 "
        "(operational_corrections.ws_redirect)"]


def test_coded_files_in_a_misnamed_folder_are_reported(root):
    """The coders' files saved in a folder named by hand (case): stage 3 read no coded file and replaced every code
    by NR with "0 warnings". Two files (here, the exports as downloaded) are found under the near name."""
    (root / "Coded Coda Files").rename(root / "Coded coda files")
    for name in ("s01e01.json", "s01e02.json"):
        shutil.copy(root / "Outputs/Coda Files" / name, root / "Coded coda files" / name)
    warnings, summary = _stage3(root)
    assert warnings == [
        "warning: Coded Coda Files/: no coded message was read, but Coded coda files/ holds 2 JSON files: if they "
        "are the coders' files, rename the folder to 'Coded Coda Files' (the name stage 3 reads) and run stage 3 "
        "again; until then every message is NR"]
    assert summary.endswith("1 warning")


def test_coded_files_in_a_folder_stage_3_does_not_read_are_reported(root):
    """A show's coded file saved one folder too deep (a copy of the whole folder), a second coder's file in
    ``icr/`` by hand: stage 3 read neither and, with "0 warnings", made every s01e04 message NR."""
    (root / "Coded Coda Files/Coded Coda Files").mkdir()
    shutil.copy(root / "Outputs/Coda Files/s01e04.json", root / "Coded Coda Files/Coded Coda Files/s01e04.json")
    (root / "Coded Coda Files/icr").mkdir()
    shutil.copy(root / "Outputs/ICR/Coda Files/s01e01.json", root / "Coded Coda Files/icr/s01e01.json")
    (root / "Coded Coda Files/ICR/old").mkdir()
    shutil.copy(root / "Outputs/ICR/Coda Files/s01e02.json", root / "Coded Coda Files/ICR/old/s01e02.json")
    (root / "Coded Coda Files/empty").mkdir()
    (root / "Coded Coda Files/__MACOSX").mkdir()  # a Mac's zip: its notes on the files, not coded files
    (root / "Coded Coda Files/__MACOSX/._s01e03.json").write_bytes(b"\x00\x05\x16\x07")
    (root / "Coded Coda Files/week 5/.sync").mkdir(parents=True)
    (root / "Coded Coda Files/week 5/.sync/s01e03.json").write_text("[]")
    warnings, summary = _stage3(root)
    assert warnings == [
        "warning: Coded Coda Files/Coded Coda Files/: a folder stage 3 does not read holds 1 JSON file "
        "(s01e04.json), which was ignored: coded files are read from Coded Coda Files/ itself",
        "warning: Coded Coda Files/icr/: a folder stage 3 does not read holds 1 JSON file (s01e01.json), which was "
        "ignored: coded files are read from Coded Coda Files/ICR/ itself",
        "warning: Coded Coda Files/ICR/old/: a folder stage 3 does not read holds 1 JSON file (s01e02.json), which "
        "was ignored: coded files are read from Coded Coda Files/ICR/ itself",
    ]
    assert summary.endswith("3 warnings")


def test_a_text_that_does_not_match_its_message_id_is_reported(root):
    """The first such message is named as coders see it in Coda, by its text (on one line, phone numbers redacted,
    one split across two lines too; shortened), and by its MessageID."""
    messages = json.loads((root / "Outputs/Coda Files/s01e02.json").read_text())
    messages[0]["Text"] = "Call me on 0612\n345678, I have more to say about the peace talks in our district today"
    messages[3]["Text"] = "something else"
    (root / "Coded Coda Files/s01e02.json").write_text(json.dumps(messages))
    warnings, _ = _stage3(root)
    assert warnings == [
        "warning: Coded Coda Files/s01e02.json: 2 messages whose Text is not the text of their MessageID "
        "(first: 'Call me on <phone number>, I have more to say about the pea\u2026', "
        f"MessageID {messages[0]['MessageID']!r}); their codes go to the message with that MessageID, or "
        "to none if the run has no such message"]


def test_an_empty_show_file_is_reported(root):
    (root / "Raw Data/csap_s01e03_activation.json").write_text("[]")
    warnings, summary = _stage3(root)
    assert warnings == ["warning: Raw Data/csap_s01e03_activation.json: holds no runs (was the flow fetched?)"]
    assert summary.endswith("1 warning")


def test_an_empty_survey_file_is_reported(root):
    """An evaluation flow never fetched: its questions would be NA for everyone without a word."""
    (root / "Raw Data/csap_evaluation.json").write_text("[]")
    warnings, _ = _stage3(root)
    assert warnings == ["warning: Raw Data/csap_evaluation.json: holds no runs, so its questions are NA for everyone "
                        "(was the flow fetched, or not sent yet?)"]


def test_a_run_that_appears_twice_is_reported(root):
    path = root / "Raw Data/csap_s01e01_activation.json"
    records = json.loads(path.read_text())
    records += [records[0], records[4]]
    path.write_text(json.dumps(records))
    run_ids = [r["_data"]["Rqa_S01E01 (Run ID) - csap_s01e01_activation"] for r in (records[0], records[4])]
    warnings, _ = _stage3(root)
    assert warnings == [f"warning: Raw Data/csap_s01e01_activation.json: 2 runs appear more than once "
                        f"(first: run {run_ids[0]}); each copy counts as a message"]


def test_warning_lines_name_the_file_relative_to_the_data_root(root):
    (root / "Raw Data/csap_s01e03_activation.json").write_text("[]")
    warnings, _ = _stage3(root)
    assert any(line.startswith("warning: Raw Data/csap_s01e03_activation.json: ") for line in warnings), warnings
    assert all(not re.search(re.escape(str(root)), line) for line in warnings)


def test_a_coded_survey_answer_no_longer_exported_says_it_was_probably_answered_again(root):
    """A survey keeps each person's newest answer: week after week, the commonest reason a coded answer is no longer
    exported is a new answer to the same question, which the warning gives first."""
    messages = json.loads((root / "Outputs/Coda Files/gender.json").read_text())
    gone = {**messages[0], "MessageID": _mid("I am a man"), "Text": "I am a man",
            "Labels": [_label(GENDER_SCHEME, "code-63dcde9a")]}
    (root / "Coded Coda Files/gender.json").write_text(json.dumps([*messages, gone]))
    warnings, _ = _stage3(root)
    assert warnings == [
        f"warning: Coded Coda Files/gender.json: 1 coded message matches no message this run exported to Coda "
        f"(first: 'I am a man', MessageID {_mid('I am a man')!r}), so its codes are not used: answered again since "
        "(the newest answer is the one kept and exported), dropped (a test run), or coded in another project?"]


def test_coded_messages_no_exported_message_matches_are_reported(root):
    """A coded file of an earlier run still holds messages this run no longer exports (here: a text coded before
    it was edited in Rapid Pro, and one from another project): their codes reach no message."""
    messages = json.loads((root / "Outputs/Coda Files/s01e04.json").read_text())
    for message in messages[:3]:
        message["Labels"] = [_label(S01E04_SCHEME, S01E04_CODE)]
    gone = [{**messages[0], "MessageID": _mid(text), "Text": text} for text in ("an answer edited later", "x")]
    # Coders' work only counts: a message of the file that nobody checked a code of is not reported.
    unchecked = {**messages[0], "MessageID": _mid("never looked at"), "Text": "never looked at",
                 "Labels": [{**_label(S01E04_SCHEME, S01E04_CODE), "Checked": False}]}
    (root / "Coded Coda Files/s01e04.json").write_text(json.dumps([gone[0], *messages, unchecked, gone[1]]))
    warnings, summary = _stage3(root)
    assert warnings == [
        f"warning: Coded Coda Files/s01e04.json: 2 coded messages match no message this run exported to Coda "
        f"(first: 'an answer edited later', MessageID {_mid('an answer edited later')!r}), so their codes are not "
        "used: dropped (a test run, outside the project window), set aside as noise, moved to another show by a "
        "correction, or coded in another project?"]
    assert summary.endswith("1 warning")


def test_the_golden_data_roots_unused_codes_are_the_two_its_cases_drop(tmp_path):
    """The golden data root's coded files code two messages that no message of the run receives (tests/golden
    README): M02, sent a second before the project window, and the test contact P99's gender answer "boy". Not
    reported: M34, which correction C2 moves from show 3 to show 4, where s01e04.json codes it, and M30, which the
    WS redirect moves by its checked "WS - Correct Dataset" label (coders moved it themselves). M34's own checked
    WS label (s01e04) moves nothing, which is said once."""
    root = tmp_path / "root"
    shutil.copytree(PROJECT_ROOT / "tests" / "golden" / "data_root", root)
    warnings, _ = _stage3(root)
    # M34's checked WS label s01e04 moves nothing (C2 moves M34): said once, before the codes that reach no message.
    assert warnings[0] == (
        "warning: Coded Coda Files/s01e03.json: 1 message marked as another dataset's in WS - Correct Dataset "
        "(s01e04 1): the marks move nothing, as the pipeline moves only messages marked s01e02 "
        "(operational_corrections.ws_redirect)")
    unused = warnings[1:]
    assert [(line.split(":")[1].strip(), line.split("MessageID ")[1][1:65]) for line in unused] == [
        ("Coded Coda Files/s01e01.json", _mid("Waxaan rabaa in la i caawiyo")),
        ("Coded Coda Files/gender.json", _mid("boy")),
    ]
    assert all(" 1 coded message matches no message " in line for line in unused)


def _mid(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_a_mistyped_survey_result_key_names_the_answers_no_plan_reads(root, tmp_path):
    """csap_evaluation.json holds Repeated and Involved answers (the synthetic workspace's evaluation flow); with
    result_key "involvd" no plan reads the Involved ones, and the involved question would be NA for everyone."""
    config = _config(tmp_path, _result_keys(involved="involvd", repeated="heard_again"))
    warnings, summary = _stage3(root, config)
    assert warnings == [  # in the configuration's order of the plans: repeated, then involved
        "warning: Raw Data/csap_evaluation.json: no record holds 'Heard_Again (Value)', the answer that survey plan "
        "'repeated' reads (result_key 'heard_again'); the file holds answers under 'Involved (Value)' and "
        "'Repeated (Value)' that no plan reads: is result_key mistyped, or has nobody answered the question yet?",
        "warning: Raw Data/csap_evaluation.json: no record holds 'Involvd (Value)', the answer that survey plan "
        "'involved' reads (result_key 'involvd'); the file holds answers under 'Involved (Value)' and "
        "'Repeated (Value)' that no plan reads: is result_key mistyped (did you mean 'involved')?",
    ]
    assert summary.endswith("2 warnings")


def test_a_question_nobody_has_answered_yet_is_not_said_to_be_another_plans_answer(root, tmp_path):
    """A question added to the evaluation flow before anyone answered it: every answer of csap_evaluation.json is
    read by its own plan, so none is suggested (that would make two plans read one answer)."""
    def add_listened(raw: dict) -> None:
        [involved] = [plan for plan in raw["survey_plans"] if plan["name"] == "involved"]
        raw["survey_plans"].append({**involved, "name": "listened", "result_key": "listened",
                                    "raw_field": "listened_raw", "time_field": "listened_time",
                                    "id_field": "listened_id", "coded_field": "listened_coded",
                                    "analysis_key": "listened", "coda_file": "listened.json"})
    warnings, _ = _stage3(root, _config(tmp_path, add_listened))
    assert warnings == [
        "warning: Raw Data/csap_evaluation.json: no record holds 'Listened (Value)', the answer that survey plan "
        "'listened' reads (result_key 'listened'); every answer the file holds is read by another plan: is "
        "result_key mistyped, or has nobody answered the question yet?"]


def test_a_mistyped_result_key_of_plans_sharing_an_answer_is_said_once(root, tmp_path):
    """The five location plans read one answer of csap_demog.json (Mog_Sub_District): one warning names them all."""
    locations = ("mogadishu_sub_district", "district", "region", "state", "zone")
    config = _config(tmp_path, _result_keys(**{name: "mog_subdistrict" for name in locations}))
    warnings, _ = _stage3(root, config)
    assert warnings == [
        "warning: Raw Data/csap_demog.json: no record holds 'Mog_Subdistrict (Value)', the answer that survey plans "
        "'mogadishu_sub_district', 'district', 'region', 'state' and 'zone' read (result_key 'mog_subdistrict'); "
        "the file holds answers under 'Mog_Sub_District (Value)' that no plan reads: is result_key mistyped (did you "
        "mean 'mog_sub_district')?"]


def test_a_mistyped_show_result_key_is_reported_but_an_empty_show_file_only_once(root, tmp_path):
    """With result_key "rqa_s01e4" every s01e04 run would be dropped as an empty run. An empty show file has its
    own warning: its mistyped key is not reported again."""
    (root / "Raw Data/csap_s01e03_activation.json").write_text("[]")
    config = _config(tmp_path, _result_keys(s01e03="rqa_s01e3", s01e04="rqa_s01e4"))
    warnings, summary = _stage3(root, config)
    assert warnings == [
        "warning: Raw Data/csap_s01e03_activation.json: holds no runs (was the flow fetched?)",
        "warning: Raw Data/csap_s01e04_activation.json: no record holds 'Rqa_S01E4 (Value)', the answer that show "
        "'s01e04' reads (result_key 'rqa_s01e4'); the file holds answers under 'Rqa_S01E04 (Value)' that no plan "
        "reads: is result_key mistyped (did you mean 'rqa_s01e04')?",
    ]
    assert summary.endswith("2 warnings")


def test_messages_of_a_week_left_out_of_the_configuration_are_reported(tmp_path):
    """The golden data root without radio_participation_s01e03 (a week forgotten): its nine messages of 12-16 to
    12-23 +03:00 count in no week (tests/golden README, "Channel and week windows": M35, M38, M36, M31, M32, M3A,
    M37, M3C, M39; no withdrawn message falls in that week), the earliest M35 at the week's start, shown in the
    offset the configuration writes its times in."""
    with open(PROJECT_ROOT / "tests/golden/expected/csap_mes.csv", newline="", encoding="utf-8") as rows:
        assert sum(1 for row in csv.DictReader(rows) if row["radio_participation_s01e03"] == "true") == 9
    root = tmp_path / "root"
    shutil.copytree(PROJECT_ROOT / "tests" / "golden" / "data_root", root)
    config = _config(tmp_path, lambda raw: raw["weeks"].pop("radio_participation_s01e03"))
    warnings, _ = _stage3(root, config)
    assert [line for line in warnings if line.startswith("warning: pipeline_config.json: ")] == [
        "warning: pipeline_config.json: 9 messages fall in no week of 'weeks' (earliest: 2018-12-16T00:00:00+03:00), "
        "so no column of 'weeks' counts them: is a week missing, or does the project window reach past the weeks "
        "on purpose?"]


def test_messages_after_the_last_week_are_reported_with_the_project_end(tmp_path):
    """The golden data root with its last week ending a day early (12-30 00:00 +03:00): M54 (12-30 23:59:59) and
    M50 (12-31 00:00:00, the project end, which no week now ends at) fall in no week (tests/golden README, "Channel
    and week windows" and "Filters and project window"); the golden root's other warnings are as before."""
    root = tmp_path / "root"
    shutil.copytree(PROJECT_ROOT / "tests" / "golden" / "data_root", root)

    def shorten_last_week(raw: dict) -> None:
        raw["weeks"]["radio_participation_s01e04"] = [["2018-12-23T00:00:00+03:00", "2018-12-30T00:00:00+03:00"]]

    warnings, summary = _stage3(root, _config(tmp_path, shorten_last_week))
    weeks = [line for line in warnings if line.startswith("warning: pipeline_config.json: ")]
    assert weeks == [
        "warning: pipeline_config.json: 2 messages fall in no week of 'weeks' (earliest: 2018-12-30T23:59:59+03:00), "
        "so no column of 'weeks' counts them: is a week missing, or does the project window reach past the weeks "
        "on purpose?"]
    # With the golden root's own three (test_the_golden_data_roots_unused_codes_are_the_two_its_cases_drop), in the
    # order the stage finds them: the coded files as they are read, the weeks once the chunks are done, the unused
    # codes once every exported message is counted.
    assert [line.split(": ")[1] for line in warnings] == [
        "Coded Coda Files/s01e03.json", "pipeline_config.json", "Coded Coda Files/s01e01.json",
        "Coded Coda Files/gender.json"]
    assert summary.endswith("4 warnings")
