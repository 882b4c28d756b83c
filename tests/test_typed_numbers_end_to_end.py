"""Issue 12, end to end through the bundled Rapid Pro server: listeners answer with a spreadsheet formula and with
phone numbers typed into their answers; after stages 1-3 (the numbered run scripts, native runtime) no file
outside ``UUIDs/`` holds any number - raw files, the fetch store and its SQLite side files, the CSVs, the Coda
and ICR files, the audit trail - and the formula reaches the CSVs neutralised."""

from __future__ import annotations

import csv
import os
import re
import subprocess
from pathlib import Path

import pytest

from redss_pipeline.demo.rapid_pro_server import RapidProServer
from redss_pipeline.demo.synthetic_workspace import generate_workspace

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TOKEN = "typed-numbers-token-7c2e"
FORMULA = '=HYPERLINK("http://x","y")'
# A friend's number, fictitious (Hormud prefix, 00 after it); built at run time so no number stands in the file.
FRIEND_DIGITS = "61" + "00" + "99555"
GLUED_DIGITS = "61" + "00" + "99556"  # typed in groups glued to a word: "wac0610 099 556"
SPLIT_DIGITS = "61" + "00" + "99557"  # typed across two lines of an SMS


def _run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PIPELINE_RUNTIME="native")
    result = subprocess.run([str(PROJECT_ROOT / "run_scripts" / script), *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{script} failed:\n{result.stdout}\n{result.stderr}"
    return result


def _number_scanner(numbers: list[str]) -> re.Pattern[bytes]:
    """Any of the numbers by its last nine digits, in any grouping (whitespace, dots, dashes, brackets, and the
    escapes of a line break or a tab in JSON text)."""
    patterns = [rb"(?:\\[nrt]|[\s.()\-]){0,2}".join(re.escape(d.encode()) for d in re.sub(r"\D", "", n)[-9:]) for n in numbers]
    return re.compile(b"|".join(patterns))


@pytest.fixture(scope="module")
def typed_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("typed")
    (work / "token").write_text(TOKEN)
    workspace = generate_workspace(seed=5, size=300)
    listener = next(c for c in workspace.contacts() if c["urns"] and c["urns"][0].startswith("tel:+252"))
    own = listener["urns"][0][len("tel:+252"):]
    workspace.add_run(
        flow="csap_s01e01_activation", contact=listener["uuid"], time="2018-12-06T12:00:00+03:00",
        answers={"rqa_s01e01": FORMULA},
    )
    workspace.add_run(
        flow="csap_s01e02_activation", contact=listener["uuid"], time="2018-12-13T12:00:00+03:00",
        answers={"rqa_s01e02": f"shaqo, call me on 0{FRIEND_DIGITS[:3]} {FRIEND_DIGITS[3:6]} {FRIEND_DIGITS[6:]}"},
    )
    workspace.add_run(
        flow="csap_s01e03_activation", contact=listener["uuid"], time="2018-12-20T12:00:00+03:00",
        answers={"rqa_s01e03": f"wac0{GLUED_DIGITS[:3]} {GLUED_DIGITS[3:6]} {GLUED_DIGITS[6:]} fadlan"},
    )
    workspace.add_run(
        flow="csap_s01e04_activation", contact=listener["uuid"], time="2018-12-27T12:00:00+03:00",
        answers={"rqa_s01e04": f"lambarkayga\n0{SPLIT_DIGITS[:3]}\n{SPLIT_DIGITS[3:]}"},
    )
    workspace.add_run(
        flow="csap_demog", contact=listener["uuid"], time="2018-12-13T13:00:00+03:00",
        answers={"gender": "naag", "age": f"25, lambarkayga waa +252 {own[:2]} {own[2:]}"},
    )
    with RapidProServer(workspace, token=TOKEN, page_size=50) as server:
        stage1 = _run("1_create_uuid_table.sh", "data root", cwd=work)
        stage2 = _run("2_fetch_raw_data.sh", "e2e@example.org", "rp-root", server.url, f"@{work / 'token'}",
                      "data root", cwd=work)
    stage3 = _run("3_generate_outputs.sh", "e2e@example.org", "data root", cwd=work)
    return {"work": work, "root": work / "data root", "workspace": workspace, "own": own,
            "outputs": [stage1, stage2, stage3]}


def test_no_number_typed_or_of_a_contact_is_in_any_file_outside_uuids(typed_run):
    numbers = typed_run["workspace"].phone_numbers() + ["+252" + d for d in (FRIEND_DIGITS, GLUED_DIGITS, SPLIT_DIGITS)]
    scanner = _number_scanner(numbers)
    work, root = typed_run["work"], typed_run["root"]
    scanned = []
    for path in work.rglob("*"):
        if path.is_file() and path.name != "token" and (root / "UUIDs") not in path.parents:
            assert scanner.search(path.read_bytes()) is None, f"a phone number is in {path.relative_to(work)}"
            scanned.append(path.relative_to(root).as_posix() if root in path.parents else path.name)
    # Every kind of file was looked at: raw files, the fetch store, CSVs, Coda files, ICR files, the audit trail.
    for expected in ("Raw Data/csap_s01e02_activation.json", "Raw Data/rapid_pro_store.sqlite",
                     "Outputs/csap_mes.csv", "Outputs/csap_prod.csv", "Outputs/Coda Files/s01e02.json",
                     "Outputs/Coda Files/age.json", "Outputs/ICR/s01e02.csv", "Outputs/traced_data.json"):
        assert expected in scanned
    # The scan finds numbers where they are allowed to be.
    assert scanner.search((root / "UUIDs" / "phone_uuids.sqlite").read_bytes()) is not None
    for result in typed_run["outputs"]:
        assert scanner.search((result.stdout + result.stderr).encode()) is None


def test_the_answers_reach_the_outputs_with_placeholders_and_the_formula_neutralised(typed_run):
    with open(typed_run["root"] / "Outputs" / "csap_mes.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert "'" + FORMULA in {r["rqa_s01e01_raw"] for r in rows}
    assert "shaqo, call me on <phone number>" in {r["rqa_s01e02_raw"] for r in rows}
    assert "25, lambarkayga waa <phone number>" in {r["age_raw"] for r in rows}
    assert "wac<phone number> fadlan" in {r["rqa_s01e03_raw"] for r in rows}
    assert "lambarkayga\n<phone number>" in {r["rqa_s01e04_raw"] for r in rows}


def test_both_stage_summaries_count_the_redactions(typed_run):
    """Stage 2 redacts when it stores the runs: the four numbers typed here, and the four answers with numbers
    of the synthetic workspace, each in the answer's value and its input (2 x 8 = 16). The raw files then hold
    none, so stage 3 finds none."""
    stage2, stage3 = typed_run["outputs"][1], typed_run["outputs"][2]
    assert "phone numbers typed into answers, redacted in the runs stored: 16" in stage2.stdout
    assert "0 typed phone numbers redacted" in stage3.stdout
