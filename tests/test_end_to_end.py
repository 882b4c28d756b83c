"""The whole pipeline as its users run it: bundled workspace -> stage 1 -> stage 2 -> stage 3 -> coders' codes
-> stage 3 again, through the numbered run scripts (native runtime), against the bundled Rapid Pro server."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from redss_pipeline.demo.rapid_pro_server import RapidProServer
from redss_pipeline.demo.synthetic_workspace import generate_workspace

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TOKEN = "e2e-token-5b1d0c7a9e3f"
FOOD_ASSISTANCE = "code-69260ca0"  # S01E01 "food_assistance"
STOP_CODE = "code-STOP-08b832a8"
GENDER_SCHEME = "Scheme-12cb6f95"
FEMALE, MALE = "code-86a4602c", "code-63dcde9a"


def _run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PIPELINE_RUNTIME="native")
    result = subprocess.run([str(PROJECT_ROOT / "run_scripts" / script), *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{script} failed:\n{result.stdout}\n{result.stderr}"
    return result


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _coder_label(scheme_id: str, code_id: str) -> dict:
    # What Coda's UI writes when a coder picks a code (a Dart UTC time, a Manual origin).
    return {"SchemeID": scheme_id, "CodeID": code_id, "DateTimeUTC": "2019-01-21T09:00:00.000Z", "Checked": True,
            "Origin": {"OriginID": "coder.a@example.org", "Name": "Coder A", "OriginType": "Manual"}}


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory):
    """Runs stages 1-3, codes a few messages as a coder would, runs stage 3 again."""
    work = tmp_path_factory.mktemp("e2e")
    (work / "token").write_text(TOKEN)
    workspace = generate_workspace(seed=11, size=700)
    root = work / "data root"
    with RapidProServer(workspace, token=TOKEN, page_size=60) as server:
        stage1 = _run("1_create_uuid_table.sh", "data root", cwd=work)
        stage2 = _run("2_fetch_raw_data.sh", "e2e@example.org", "rp-root", server.url, f"@{work / 'token'}",
                      "data root", cwd=work)
    first = _run("3_generate_outputs.sh", "e2e@example.org", str(root), cwd=work)
    first_messages = _rows(root / "Outputs/csap_mes.csv")

    # A coder codes the first week-1 message as food assistance, marks the second as STOP, checks the first
    # gender suggestion and corrects the second one to the other gender.
    coda_dir, coded_dir = root / "Outputs/Coda Files", root / "Coded Coda Files"
    s01e01 = json.loads((coda_dir / "s01e01.json").read_text())
    s01e01[0]["Labels"] = [_coder_label("Scheme-d7eb83ef", FOOD_ASSISTANCE)]
    s01e01[1]["Labels"] = [_coder_label("Scheme-d7eb83ef", STOP_CODE)]
    for message in s01e01:
        message["SequenceNumber"] = s01e01.index(message)  # added by Coda's tools; must be ignored
    (coded_dir / "s01e01.json").write_text(json.dumps(s01e01))
    gender = json.loads((coda_dir / "gender.json").read_text())
    suggested = [m for m in gender if m["Labels"]]
    checked, corrected = suggested[0], suggested[1]
    checked["Labels"].insert(0, dict(checked["Labels"][0], Checked=True))
    other = FEMALE if corrected["Labels"][0]["CodeID"] == MALE else MALE
    corrected["Labels"].insert(0, _coder_label(GENDER_SCHEME, other))
    (coded_dir / "gender.json").write_text(json.dumps(gender))

    second = _run("3_generate_outputs.sh", "e2e@example.org", str(root), cwd=work)
    return {
        "root": root, "workspace": workspace, "stdout": [stage1.stdout, stage2.stdout, first.stdout, second.stdout],
        "stderr": [stage2.stderr, first.stderr, second.stderr], "first_messages": first_messages,
        "food_text": s01e01[0]["Text"], "stop_text": s01e01[1]["Text"],
        "checked": checked, "corrected": corrected, "corrected_to": other,
    }


def test_first_run_writes_every_output(pipeline_run):
    """Stage 3 writes the three CSVs, the audit trail, twelve Coda files and four ICR files."""
    outputs = pipeline_run["root"] / "Outputs"
    for name in ("csap_mes.csv", "csap_ind.csv", "csap_prod.csv", "traced_data.json"):
        assert (outputs / name).is_file()
    assert len(list((outputs / "Coda Files").glob("*.json"))) == 12
    assert sorted(p.name for p in (outputs / "ICR").glob("*.csv")) == [f"s01e0{n}.csv" for n in range(1, 5)]
    header = next(csv.reader(open(outputs / "csap_mes.csv", encoding="utf-8")))
    assert len(header) == 127 and header[:3] == ["uid", "operator", "consent_withdrawn"]


def test_uncoded_messages_come_out_not_reviewed(pipeline_run):
    """Before any coding, every answered week-1 message that is not noise is NR in its own show."""
    answered = [r for r in pipeline_run["first_messages"] if r["rqa_s01e01_raw"] and r["rqa_s01e01_NC"] == "0"]
    assert answered
    assert all(r["rqa_s01e01_NR"] == "1" for r in answered)


def test_coders_reasons_appear_in_the_messages_file(pipeline_run):
    """Every message with the coded text gets food_assistance = 1 and is no longer NR."""
    rows = [r for r in _rows(pipeline_run["root"] / "Outputs/csap_mes.csv") if r["rqa_s01e01_raw"] == pipeline_run["food_text"]]
    assert rows
    for row in rows:
        assert (row["rqa_s01e01_food_assistance"], row["rqa_s01e01_NR"]) == ("1", "0")


def test_a_stop_code_withdraws_the_message_and_the_person(pipeline_run):
    """The STOP-coded message is all STOP in csap_mes.csv, and its sender is withdrawn in csap_ind.csv."""
    messages = _rows(pipeline_run["root"] / "Outputs/csap_mes.csv")
    stopped = [r for r in messages if r["consent_withdrawn"] == "true"]
    assert stopped and all(r["uid"] == "STOP" and r["rqa_s01e01_raw"] == "STOP" for r in stopped)
    individuals = _rows(pipeline_run["root"] / "Outputs/csap_ind.csv")
    assert any(r["consent_withdrawn"] == "true" and r["uid"] == "STOP" for r in individuals)
    production = _rows(pipeline_run["root"] / "Outputs/csap_prod.csv")
    assert pipeline_run["stop_text"] not in {r["rqa_s01e01_raw"] for r in production}


def test_checked_and_corrected_survey_codes_replace_not_reviewed(pipeline_run):
    """A checked suggestion keeps its value; a corrected one takes the coder's code; others stay NR."""
    messages = _rows(pipeline_run["root"] / "Outputs/csap_mes.csv")
    names = {MALE: "male", FEMALE: "female"}
    checked_value = names[pipeline_run["checked"]["Labels"][0]["CodeID"]]
    by_raw = {}
    for row in messages:
        if row["consent_withdrawn"] == "false":
            by_raw.setdefault(row["gender_raw"], set()).add(row["gender"])
    assert by_raw[pipeline_run["checked"]["Text"]] == {checked_value}
    assert by_raw[pipeline_run["corrected"]["Text"]] == {names[pipeline_run["corrected_to"]]}
    others = {v for raw, values in by_raw.items() if raw not in (pipeline_run["checked"]["Text"],
                                                                    pipeline_run["corrected"]["Text"], "") for v in values}
    assert others == {"NR"}


def test_no_phone_number_leaves_the_uuid_table(pipeline_run):
    """No number of the workspace, in any formatting (its last nine digits), is in any file outside UUIDs/."""
    tails = {re.sub(r"\D", "", n)[-9:].encode() for n in pipeline_run["workspace"].phone_numbers()}
    assert tails
    root = pipeline_run["root"]
    for path in root.rglob("*"):
        if path.is_file() and "UUIDs" not in path.relative_to(root).parts:
            data = path.read_bytes()
            leaked = [t for t in tails if t in data]
            assert not leaked, f"{path.relative_to(root)} holds phone numbers"
    assert not any(t.decode() in out for out in pipeline_run["stdout"] + pipeline_run["stderr"] for t in tails)


def test_the_token_is_never_printed(pipeline_run):
    """The Rapid Pro token appears in no output of any stage."""
    assert not any(TOKEN in out for out in pipeline_run["stdout"] + pipeline_run["stderr"])


def test_explain_traces_a_coded_value_to_the_coder_and_the_raw_answer(pipeline_run):
    """explain shows the coder's label and the raw Rapid Pro key a person's gender came from."""
    messages = _rows(pipeline_run["root"] / "Outputs/csap_mes.csv")
    uid = next(r["uid"] for r in messages if r["gender_raw"] == pipeline_run["corrected"]["Text"]
               and r["consent_withdrawn"] == "false")
    result = subprocess.run(
        [str(PROJECT_ROOT / ".venv/bin/python"), str(PROJECT_ROOT / "generate_outputs.py"), "explain",
         str(pipeline_run["root"]), uid, "gender"], capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "gender is derived from: gender_coded <- gender_raw <- Gender (Value) - csap_demog" in result.stdout
    assert "coder.a@example.org" in result.stdout
    assert "step generate/manual_codes" in result.stdout
    assert "step fetch/csap_demog" in result.stdout


def test_progress_lines_name_each_step_with_counts(pipeline_run):
    """Stage 3 reports each step with its counts and time."""
    progress = pipeline_run["stderr"][2]
    assert re.search(r"filter messages: [\d,]+ kept, [\d,]+ test runs, ", progress)
    assert re.search(r"manual codes: s01e01 [1-9][\d,]* coded/[\d,]+ NR", progress)
    assert re.search(r"individuals: [\d,]+ people, [1-9][\d,]* withdrew consent \(\d+\.\d s\)", progress)
