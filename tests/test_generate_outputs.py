"""Stage 3's command line: usage, bad input (one clear line, exit 1, no output replaced), profiling, explain."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from data_roots import fetched_data_root

from redss_pipeline.core.audit_trail import AuditTrail
from redss_pipeline.deidentify.uuid_table import create_uuid_table

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ENTRY = str(PROJECT_ROOT / "generate_outputs.py")


@pytest.fixture(scope="module")
def fetched_root(tmp_path_factory) -> Path:
    """A data root after stages 1 and 2 on a small bundled workspace (no stage 3 yet)."""
    return fetched_data_root(tmp_path_factory.mktemp("fetched") / "root", seed=5, size=400)


@pytest.fixture(scope="module")
def generated_root(fetched_root, tmp_path_factory) -> Path:
    """The fetched data root after one stage-3 run (run once: tests get copies)."""
    generated = tmp_path_factory.mktemp("generated") / "root"
    shutil.copytree(fetched_root, generated)
    result = _generate("first@example.org", str(generated))
    assert result.returncode == 0, result.stderr
    return generated


@pytest.fixture
def root(generated_root, tmp_path) -> Path:
    """A fresh copy of the fetched data root with stage 3 run once."""
    copy = tmp_path / "root"
    shutil.copytree(generated_root, copy)
    return copy


def _generate(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, ENTRY, *args], capture_output=True, text=True, timeout=300,
                          env=None if env is None else dict(os.environ, **env))


def _digests(root: Path) -> dict[str, tuple[str, int]]:
    outputs = root / "Outputs"
    return {str(p.relative_to(outputs)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(outputs.rglob("*")) if p.is_file()}


def _error_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_wrong_call_prints_usage_and_exits_2():
    """One positional instead of two: the usage text and status 2."""
    result = _generate("only-a-user")
    assert result.returncode == 2
    assert "usage: 3_generate_outputs.sh [--drive-upload" in result.stderr


def test_options_may_come_in_any_order_before_the_positionals(fetched_root, tmp_path):
    """--drive-upload before the positionals: its missing key file is named, and found before the stage runs (it
    was found after the whole run, with the outputs written), so nothing is written."""
    copy = tmp_path / "root"
    shutil.copytree(fetched_root, copy)
    result = _generate("--drive-upload", str(tmp_path / "missing-key.json"), "CSAP/Outputs", "me", str(copy))
    assert result.returncode == 1
    assert _error_line(result) == f"error: {tmp_path / 'missing-key.json'}: credentials file not found"
    assert not (copy / "Outputs").exists()


@pytest.mark.parametrize("command", [[], ["analyse"]])
@pytest.mark.parametrize(("location", "message"), [
    ("missing-key.json", "{tmp}/missing-key.json: credentials file not found"),
    ("gs://only-a-bucket", "Cloud Storage URL must name a bucket and an object (gs://<bucket>/<object>): "
                           "'gs://only-a-bucket'"),
])
def test_a_drive_key_that_cannot_serve_stops_the_command_before_it_runs(root, tmp_path, command, location, message):
    """Stage 3 and the analysis command check what they can of --drive-upload's key before they start: a missing
    local file, a gs:// URL without an object. Nothing is written."""
    before = _digests(root)
    key = str(tmp_path / location) if "://" not in location else location
    users = [] if command else ["me"]
    result = _generate(*command, "--drive-upload", key, "CSAP/Outputs", *users, str(root))
    assert result.returncode == 1
    assert _error_line(result) == "error: " + message.format(tmp=tmp_path)
    assert _digests(root) == before


def test_missing_raw_data_says_to_run_stage_2(tmp_path):
    """A data root without raw files names the missing file and the stage to run."""
    create_uuid_table(tmp_path)
    result = _generate("me", str(tmp_path))
    assert result.returncode == 1
    line = _error_line(result)
    assert "Raw Data/csap_s01e01_activation.json" in line and "run stage 2" in line


def test_unknown_code_in_a_coded_file_names_file_message_and_field_and_replaces_nothing(root):
    """A coder's label with a CodeID the scheme lacks stops the run; every previous output stays as it was."""
    before = _digests(root)
    messages = json.loads((root / "Outputs/Coda Files/gender.json").read_text())
    messages[0]["Labels"].insert(0, {"SchemeID": "Scheme-12cb6f95", "CodeID": "code-unknown",
                                     "DateTimeUTC": "2019-01-21T09:00:00.000Z", "Checked": True,
                                     "Origin": {"OriginID": "c@example.org", "Name": "C", "OriginType": "Manual"}})
    (root / "Coded Coda Files/gender.json").write_text(json.dumps(messages))
    result = _generate("second@example.org", str(root))
    assert result.returncode == 1
    line = _error_line(result)
    assert "Coded Coda Files/gender.json" in line
    assert f"MessageID '{messages[0]['MessageID']}'" in line
    assert "field 'CodeID'" in line and "code-unknown" in line
    assert _digests(root) == before
    assert not [p for p in (root / "Outputs").rglob("*.tmp")]


def test_malformed_coded_file_is_one_clear_line(root):
    """A coded file that is not JSON names the file and the position of the syntax error."""
    before = _digests(root)
    (root / "Coded Coda Files/s01e02.json").write_text('[{"MessageID": "x", ')
    result = _generate("me", str(root))
    assert result.returncode == 1
    assert "Coded Coda Files/s01e02.json" in _error_line(result) and "not valid JSON" in _error_line(result)
    assert _digests(root) == before


@pytest.mark.parametrize(("folder", "replacement", "message"), [
    # On a drive that is not mounted: read through the link, every dataset was "nothing coded yet", and the run
    # replaced the outputs with uncoded ones.
    ("Coded Coda Files", "link to nothing",
     "a link to a folder that does not exist (moved, or on a drive not mounted?); restore the folder or remove the "
     "link"),
    # Made a file by mistake: mkdir said "File exists".
    ("Coded Coda Files/ICR", "file", "a file is where this folder must be; move or rename the file"),
])
def test_a_folder_of_the_data_root_that_is_not_one_is_one_error(root, tmp_path, folder, replacement, message):
    before = _digests(root)
    shutil.rmtree(root / folder)
    if replacement == "file":
        (root / folder).write_text("not a folder")
    else:
        (root / folder).symlink_to(tmp_path / "unmounted drive" / folder)
    result = _generate("me", str(root))
    assert result.returncode == 1
    assert _error_line(result) == f"error: {root / folder}: {message}"
    assert _digests(root) == before


def test_malformed_raw_file_names_file_record_and_field(root):
    """A raw record without the TracedData markers names the file and the record."""
    before = _digests(root)
    (root / "Raw Data/csap_demog.json").write_text('[{"_data": {"avf_phone_id": "x"}}]')
    result = _generate("me", str(root))
    assert result.returncode == 1
    line = _error_line(result)
    assert "Raw Data/csap_demog.json" in line and "record 0" in line
    assert _digests(root) == before


def test_scheme_without_a_code_for_a_cleaner_value_is_an_error(root, tmp_path):
    """When the Gender scheme has no code matching 'female', the run stops before it reads anything (a problem of
    the configuration: exit 2), naming the plan, the scheme and the value, and the outputs are left as they were."""
    schemes = tmp_path / "code_schemes"
    shutil.copytree(PROJECT_ROOT / "code_schemes", schemes)
    gender = json.loads((schemes / "gender.json").read_text())
    for code in gender["Codes"]:
        if code.get("MatchValues") == ["female"]:
            code["MatchValues"] = ["woman"]
    (schemes / "gender.json").write_text(json.dumps(gender))
    shutil.copy(PROJECT_ROOT / "pipeline_config.json", tmp_path / "pipeline_config.json")
    before = _digests(root)
    result = _generate("me", str(root), env={"REDSS_PIPELINE_CONFIG": str(tmp_path / "pipeline_config.json")})
    assert result.returncode == 2
    assert ("- $.survey_plans[0].scheme: scheme 'gender' (gender.json) has no code whose MatchValues hold "
            "'female', which the gender cleaner gives") in result.stderr.splitlines()
    assert _digests(root) == before


def test_profiling_writes_collapsed_stacks_and_a_flame_graph_without_changing_outputs(root, tmp_path):
    """3_generate_outputs.sh --profile-cpu FILE writes collapsed stacks and FILE.svg; CSV and ICR outputs are unchanged."""
    before = {k: v[0] for k, v in _digests(root).items() if k.endswith(".csv")}
    profile = tmp_path / "profile.txt"
    result = subprocess.run(
        [str(PROJECT_ROOT / "run_scripts/3_generate_outputs.sh"), "--profile-cpu", str(profile), "first@example.org",
         str(root)], capture_output=True, text=True, timeout=300, env=dict(os.environ, PIPELINE_RUNTIME="native"),
    )
    assert result.returncode == 0, result.stderr
    stacks = profile.read_text().splitlines()
    assert stacks and all(line.rsplit(" ", 1)[1].isdigit() for line in stacks)
    assert any("run_generate" in line for line in stacks)
    assert Path(f"{profile}.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    assert {k: v[0] for k, v in _digests(root).items() if k.endswith(".csv")} == before


def test_explain_finds_a_person_and_refuses_an_unknown_one(root):
    """explain prints the history of a column for a uid of the outputs, and names an unknown uid."""
    header, first = (root / "Outputs/csap_mes.csv").read_text().splitlines()[:2]
    uid = first.split(",")[0]
    result = _generate("explain", str(root), uid, "operator")
    assert result.returncode == 0, result.stderr
    assert "operator is derived from: operator_coded <- uid <- avf_phone_id" in result.stdout
    assert "step generate/" in result.stdout
    unknown = _generate("explain", str(root), "avf-phone-uuid-00000000-0000-4000-8000-000000000000", "gender")
    assert unknown.returncode == 2
    assert "avf-phone-uuid-00000000-0000-4000-8000-000000000000" in _error_line(unknown)
    # A phone number given in the uid's or the column's place is not repeated.
    number = _generate("explain", str(root), "+252 61 555 0199", "gender")
    assert number.returncode == 2
    assert _error_line(number).endswith("no record whose uid was a value not shown (it may hold a phone number)")
    swapped = _generate("explain", str(root), uid, "+252 61 555 0199")
    assert swapped.returncode == 2
    assert "555" not in _error_line(swapped) and "a value not shown (it may hold a phone number)" in _error_line(swapped)


def _output_rows(root: Path, name: str) -> list[dict[str, str]]:
    """The rows of one of stage 3's CSV files (``csap_mes.csv``, ``csap_ind.csv``) by column name."""
    with (root / "Outputs" / name).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _lone_answer(root: Path, raw_column: str) -> dict[str, str]:
    """The csap_mes.csv row of a person who sent one message, an answer in ``raw_column`` (their only record)."""
    rows = _output_rows(root, "csap_mes.csv")
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["uid"]] = counts.get(row["uid"], 0) + 1
    return next(row for row in rows if row[raw_column] and counts[row["uid"]] == 1 and row["uid"] != "STOP")


def _final_value(explained: str, *, before: str):
    """The final value explain printed for the first key, whose part of the output ends where ``before`` starts."""
    part = explained.split(before)[0]
    [final] = [line.split(": ", 1)[1] for line in part.splitlines() if line.strip().startswith("final value:")]
    return json.loads(final)


def test_explain_of_a_matrix_column_shows_the_codes_it_is_rendered_from(root):
    """A matrix column is rendered from the show's codes: explain says so, then gives the history of the codes. For a
    person with one message, the final list gives every matrix cell of the show in their csap_mes.csv row."""
    row = _lone_answer(root, "rqa_s01e01_raw")
    result = _generate("explain", str(root), row["uid"], "rqa_s01e01_NA")
    assert result.returncode == 0, result.stderr
    assert ("rqa_s01e01_NA is rendered from rqa_s01e01_codes: 1 when that list holds 'NA', 0 when it does not"
            in result.stdout)
    assert "key 'rqa_s01e01_NA' was never written" not in result.stdout
    assert "step generate/analysis_columns" in result.stdout
    held = _final_value(result.stdout, before="key 'rqa_s01e01_coded'")
    columns = [column for column in row if column.startswith("rqa_s01e01_") and column != "rqa_s01e01_raw"]
    assert len(columns) == 26
    assert {column: row[column] for column in columns} == {
        column: "1" if column.removeprefix("rqa_s01e01_") in held else "0" for column in columns}
    assert "NA" not in held  # the person answered s01e01 in this row


def test_explain_of_a_yes_no_question_a_mistyped_column_and_the_uid_stop(root):
    """A show's yes/no column comes from the question's own coded field, not from the show's reasons; a column that
    is neither an output column nor a key of the person's records is a usage error naming close matches; STOP (the
    uid of a withdrawn participant in the CSVs) is answered with where the id they had is found."""
    row = _lone_answer(root, "rqa_s01e02_raw")
    result = _generate("explain", str(root), row["uid"], "rqa_s01e02_integrate_return")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("rqa_s01e02_integrate_return is derived from: rqa_s01e02_integrate_return_coded "
                                    "<- rqa_s01e02_raw <- ")
    assert _final_value(result.stdout, before="key 'rqa_s01e02_integrate_return_coded'") == row[
        "rqa_s01e02_integrate_return"]
    assert "key 'rqa_s01e02_coded'" not in result.stdout  # the reasons are not where the answer came from

    mistyped = _generate("explain", str(root), row["uid"], "genderr")
    assert mistyped.returncode == 2
    line = _error_line(mistyped)
    assert line.startswith("error: 'genderr' is neither an output column nor a key of this person's records; "
                           "did you mean 'gender'")
    assert not mistyped.stdout

    stop = _generate("explain", str(root), "STOP", "gender")
    assert stop.returncode == 2
    assert "give the id they had" in _error_line(stop) and not stop.stdout


def test_explain_says_how_the_individuals_file_folds_a_person_with_several_messages(root):
    """For a person with several messages, explain says how their csap_ind.csv row combines them; for the show's
    raw text it says "joined with ';'", which is what the row holds: their texts, in message order."""
    messages = _output_rows(root, "csap_mes.csv")
    texts: dict[str, list[str]] = {}
    for row in messages:
        if row["rqa_s01e01_raw"] and row["uid"] != "STOP":
            texts.setdefault(row["uid"], []).append(row["rqa_s01e01_raw"])
    uid = next(uid for uid, sent in texts.items() if len(sent) >= 2)
    result = _generate("explain", str(root), uid, "rqa_s01e01_raw")
    assert result.returncode == 0, result.stderr
    said = [line for line in result.stdout.splitlines() if line.startswith("csap_ind.csv: ")]
    assert said == [f"csap_ind.csv: this person's {sum(row['uid'] == uid for row in messages)} message records are "
                    "folded into one row, where rqa_s01e01_raw is their texts joined with ';'; then come the fix-up "
                    "of pipeline.md 7.7.7 and, after a withdrawal, STOP",
                    f"csap_ind.csv: rqa_s01e01_raw = {';'.join(texts[uid])!r} in this person's row"]
    [person] = [row for row in _output_rows(root, "csap_ind.csv") if row["uid"] == uid]
    assert person["rqa_s01e01_raw"] == ";".join(texts[uid])


def test_explain_says_a_history_every_message_of_a_person_shares_once(root):
    """A survey answer is attached to every message of its sender: for a person with several messages, its history
    is printed for the first record and the others say they share it (a heavy sender's explain was thousands of
    lines of the same history)."""
    messages = _output_rows(root, "csap_mes.csv")
    sent: dict[str, int] = {}
    for row in messages:
        if row["uid"] != "STOP" and row["gender_raw"]:
            sent[row["uid"]] = sent.get(row["uid"], 0) + 1
    uid, count = max(sent.items(), key=lambda item: item[1])
    assert count >= 3
    result = _generate("explain", str(root), uid, "gender_raw")
    assert result.returncode == 0, result.stderr
    part = result.stdout.split("key 'gender_raw':", 1)[1].split("\nuid ", 1)[0]
    printed, shared = part.count("final value:"), part.count(": the same history as record ")
    assert printed + shared == count
    assert printed <= 2  # one history, and one more for a message a correction moved (C4), if any


def test_explain_refuses_an_audit_trail_of_another_run_and_suggests_a_column_in_other_letters(root, tmp_path):
    """A traced_data.json copied in from another run would explain other values than the CSVs hold: refused with
    one line (exit 1). A column typed in capitals is suggested as it is written."""
    uid = _output_rows(root, "csap_mes.csv")[0]["uid"]
    mistyped = _generate("explain", str(root), uid, "GENDER")
    assert mistyped.returncode == 2 and _error_line(mistyped).endswith("; did you mean 'gender'?")
    # A column of the ICR samples (Outputs/ICR/s01e04.csv) is an output column too, even for a person whose
    # records never had it: explain says so rather than refusing the column.
    trail = AuditTrail.load(root / "Outputs" / "traced_data.json")
    quiet = next(person for person in sorted({row["uid"] for row in _output_rows(root, "csap_mes.csv")} - {"STOP"})
                 if not any("rqa_s01e04_run_id" in record for record in trail.records_for(person)))
    icr = _generate("explain", str(root), quiet, "rqa_s01e04_run_id")
    assert icr.returncode == 0, icr.stderr
    assert "never written in any of this person's" in icr.stdout and "'rqa_s01e04_run_id'" in icr.stdout
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    trail = copy / "Outputs" / "traced_data.json"
    trail.write_bytes(trail.read_bytes().replace(b'"end"', b' "end"', 1))  # valid still, but not this run's file
    missing = tmp_path / "missing"
    shutil.copytree(root, missing)
    (missing / "Outputs" / "traced_data.json").unlink()  # deleted to save space, say
    gone = _generate("explain", str(missing), uid, "gender")
    assert gone.returncode == 1
    assert _error_line(gone) == (f"error: {missing / 'Outputs' / 'traced_data.json'}: not found: stage 3 writes it "
                                 "(3_generate_outputs.sh)")
    stale = _generate("explain", str(copy), uid, "gender")
    assert stale.returncode == 1 and not stale.stdout
    assert _error_line(stale) == (
        f"error: {trail}: is not the audit trail of the outputs beside it (its SHA-256 is not the one "
        "Outputs/manifest.json lists: copied in from another run?), so it would explain other values than theirs; "
        "run stage 3 again to write both")


def test_explain_of_a_key_the_lineage_knows_nothing_more_of_still_names_where_its_value_was_before(root):
    """sent_on has no chain of its own: its hint looks among every earlier key, and finds the raw answer's time."""
    row = next(row for row in _output_rows(root, "csap_mes.csv") if row["rqa_s01e01_raw"] and row["uid"] != "STOP")
    result = _generate("explain", str(root), row["uid"], "sent_on")
    assert result.returncode == 0, result.stderr
    assert "same value earlier under 'Rqa_S01E01 (Time) - csap_s01e01_activation'" in result.stdout


def test_explain_of_a_matrix_column_in_a_trail_written_before_the_codes_were_lists(tmp_path):
    """A data root whose audit trail holds the matrix column as a key of its own (written by an earlier release)
    is explained as it was: the column's own history, not a rendering from a list it never had."""
    from redss_pipeline.core.audit_trail import AuditTrailWriter, encode_segment
    from redss_pipeline.core.records import Record, Step

    step = Step("old@example.org", "generate/analysis_columns", 1548000000.0)
    record = Record.create(step, {"uid": "avf-phone-uuid-1", "rqa_s01e01_land": "1"})
    trail = tmp_path / "root/Outputs/traced_data.json"
    trail.parent.mkdir(parents=True)
    with open(trail, "wb") as handle, AuditTrailWriter(handle) as writer:
        writer.write(encode_segment([record]))
    result = _generate("explain", str(tmp_path / "root"), "avf-phone-uuid-1", "rqa_s01e01_land")
    assert result.returncode == 0, result.stderr
    assert "is rendered from" not in result.stdout
    assert result.stdout.startswith("rqa_s01e01_land is derived from: rqa_s01e01_coded <- ")  # no codes list then
    assert 'key \'rqa_s01e01_land\': 1 record(s)' in result.stdout and '1. "1"' in result.stdout


def test_explain_read_through_a_reader_that_stops_ends_quietly(root):
    """`explain ... | head` or `less` quit early: the reader closes the pipe (here before anything was read); the
    command stops without reporting a broken pipe, as Unix tools do."""
    row = _lone_answer(root, "rqa_s01e01_raw")
    with subprocess.Popen([sys.executable, ENTRY, "explain", str(root), row["uid"], "rqa_s01e01_raw"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()  # the reader leaves before the command has written anything
        errors = process.stderr.read()
        status = process.wait(timeout=120)
    assert (status, errors) == (0, b"")
