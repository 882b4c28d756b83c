"""Stage 3 respondent by respondent: the outputs do not depend on how many respondents a chunk holds, rows that
come out of order are put back in order (spilling to disk), and the audit trail written chunk by chunk still
explains a withdrawn participant's values from the command line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from redss_pipeline.core.config import load_config
from redss_pipeline.core.errors import RawDataError
from redss_pipeline.core.run_context import RunContext
from redss_pipeline.core.traced_data_json import read_traced_data_file, write_traced_data_file
from redss_pipeline.generate.ordered_rows import OrderedRows
from redss_pipeline.generate.stage import run_generate

PROJECT_ROOT = Path(__file__).resolve().parents[1]
GOLDEN = PROJECT_ROOT / "tests" / "golden"
EXPECTED = GOLDEN / "expected"
# The golden run's clock (tests/golden/make_expected.py), so the labels' times match the expected files.
RUN = RunContext("golden@example.org", datetime(2019, 1, 20, 16, 0, 0, 123456, tzinfo=timezone.utc))
# P07 withdrew consent in the gender survey (tests/golden/README.md): every one of their cells reads STOP.
WITHDRAWN_UID = "avf-phone-uuid-00000007-0000-4000-8000-000000000007"


def _golden_copy(tmp_path: Path) -> Path:
    root = tmp_path / "data_root"
    shutil.copytree(GOLDEN / "data_root", root)
    return root


@pytest.mark.parametrize("messages_per_chunk, workers", [(1, 1), (7, 1), (1_000_000, 1), (1, 2), (7, 3)])
def test_outputs_are_the_same_whatever_the_chunk_size_and_the_workers(tmp_path, messages_per_chunk, workers):
    """One respondent per chunk, a few, or all at once, in one process or shared by worker processes: every CSV,
    ICR and Coda file equals the golden one."""
    root = _golden_copy(tmp_path)
    run_generate(config=load_config(PROJECT_ROOT / "pipeline_config.json"), data_root=root, run=RUN,
                 progress=None, messages_per_chunk=messages_per_chunk, workers=workers)
    expected = sorted(p.relative_to(EXPECTED) for p in EXPECTED.rglob("*") if p.is_file())
    assert expected
    for name in expected:
        assert (root / "Outputs" / name).read_bytes() == (EXPECTED / name).read_bytes(), str(name)
    assert not [p.name for p in (root / "Outputs").iterdir() if p.name.startswith(".")]  # no spill left behind


def _outputs(root: Path) -> dict[str, bytes]:
    outputs = root / "Outputs"
    return {p.relative_to(outputs).as_posix(): p.read_bytes() for p in sorted(outputs.rglob("*")) if p.is_file()}


def test_workers_write_byte_identical_outputs_audit_trail_included(tmp_path):
    """The same run in one process and in two worker processes writes the same bytes in every file of Outputs:
    the CSVs, the audit trail, the Coda and ICR files, the analysis and the manifest."""
    config = load_config(PROJECT_ROOT / "pipeline_config.json")
    one, two = _golden_copy(tmp_path / "one"), _golden_copy(tmp_path / "two")
    alone = run_generate(config=config, data_root=one, run=RUN, progress=None, messages_per_chunk=3, workers=1)
    shared = run_generate(config=config, data_root=two, run=RUN, progress=None, messages_per_chunk=3, workers=2)
    # The stage's own keeping of the chunks is a step of its own; the analysis's reading and drawings' CPU in
    # the workers is counted.
    assert "keep chunks" in alone.step_seconds and "keep chunks" in shared.step_seconds
    assert alone.analysis is not None and shared.analysis is not None
    assert alone.analysis.worker_cpu_seconds == 0 < shared.analysis.worker_cpu_seconds
    first, second = _outputs(one), _outputs(two)
    assert "traced_data.json" in first and "csap_mes.csv" in first
    assert list(first) == list(second)
    assert [name for name in first if first[name] != second[name]] == []


def test_a_bad_record_in_a_worker_is_the_same_one_line_error_and_writes_no_output(tmp_path):
    """A step failing on a record of a later span, in a worker process: the run stops with the error a run in
    one process gives, naming the file, record and field, and Outputs holds none of the files."""
    config = load_config(PROJECT_ROOT / "pipeline_config.json")
    errors = []
    for workers in (1, 2):
        root = _golden_copy(tmp_path / str(workers))
        path = root / "Raw Data/csap_s01e01_activation.json"
        records = read_traced_data_file(path)
        step = RunContext("fetch@example.org", datetime(2019, 1, 19, tzinfo=timezone.utc)).step("test/bad time")
        records[-1] = records[-1].updated(step, {"Rqa_S01E01 (Time) - csap_s01e01_activation": "yesterday"})
        write_traced_data_file(path, records)
        with pytest.raises(RawDataError) as raised:
            run_generate(config=config, data_root=root, run=RUN, progress=None, messages_per_chunk=2, workers=workers)
        errors.append(str(raised.value))
        assert not (root / "Outputs" / "csap_mes.csv").exists() and not (root / "Outputs" / "traced_data.json").exists()
    assert errors[0] == errors[1]
    assert f"Raw Data/csap_s01e01_activation.json: record {len(records) - 1}: field 'Rqa_S01E01 (Time)" in errors[0]
    assert "'yesterday'" in errors[0]


def test_explain_works_on_a_withdrawn_participant_after_a_chunked_run(tmp_path):
    """P07's cells read STOP, yet explain finds them by the uid they had and shows the gender history from the
    raw answer to the coder's STOP and the withdrawal."""
    root = _golden_copy(tmp_path)
    run_generate(config=load_config(PROJECT_ROOT / "pipeline_config.json"), data_root=root, run=RUN,
                 progress=None, messages_per_chunk=2)
    assert WITHDRAWN_UID not in (root / "Outputs" / "csap_mes.csv").read_text(encoding="utf-8")
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "generate_outputs.py"), "explain", str(root),
                             WITHDRAWN_UID, "gender"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "gender is derived from: gender_coded <- gender_raw <- Gender (Value) - csap_demog" in out
    assert '"Stop"' in out  # the raw answer
    assert "step generate/withdrawn_consent" in out and '"STOP"' in out
    assert f'uid "{WITHDRAWN_UID}", key \'gender\': 2 record(s)' in out  # both of P07's messages (M09, M57)


def test_explain_says_which_key_label_and_coded_file_withdrew_consent(tmp_path):
    """consent_withdrawn is explained by the keys that set it, record by record (tests/golden/README.md): P07 coded
    STOP in the gender survey (both messages), P20 in the s01e02 reasons (M25 only; M40 is an ordinary row); only
    the histories of those keys follow, not those of the 16 others that could have set it."""
    root = _golden_copy(tmp_path)
    run_generate(config=load_config(PROJECT_ROOT / "pipeline_config.json"), data_root=root, run=RUN, progress=None)

    def explained(uid: str) -> list[str]:
        result = subprocess.run([sys.executable, str(PROJECT_ROOT / "generate_outputs.py"), "explain", str(root),
                                 uid, "consent_withdrawn"], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return result.stdout.splitlines()

    coder = "a label by Coder A <coder.a@example.org> of 2019-01-18T09:00:00.000Z, checked"
    p07 = explained(WITHDRAWN_UID)
    gender = f"gender_coded holds STOP ({coder}), read from Coded Coda Files/gender.json"
    assert [line for line in p07 if line.startswith("record ") and " of 2: " in line] == [
        f"record 1 of 2: {gender}", f"record 2 of 2: {gender}"]
    assert [line.split("key ")[1] for line in p07 if line.startswith("uid ")] == [
        "'consent_withdrawn': 2 record(s) in traced_data.json", "'gender_coded': 2 record(s) in traced_data.json"]

    p20 = explained("avf-phone-uuid-00000020-0000-4000-8000-000000000020")
    assert [line for line in p20 if line.startswith("record ") and " of 2: " in line] == [
        f"record 1 of 2: rqa_s01e02_codes lists STOP, made from rqa_s01e02_coded ({coder}), read from Coded Coda "
        "Files/s01e02.json"]
    assert "the other 1 record holds no STOP in them" in p20
    assert [line.split("key ")[1].split(":")[0] for line in p20 if line.startswith("uid ")] == [
        "'consent_withdrawn'", "'rqa_s01e02_codes'", "'rqa_s01e02_coded'"]

    p01 = explained("avf-phone-uuid-00000001-0000-4000-8000-000000000001")
    assert "no record of the 4 holds STOP in them, so this person did not withdraw consent" in p01
    assert [line for line in p01 if line.startswith("uid ")] == [
        "uid \"avf-phone-uuid-00000001-0000-4000-8000-000000000001\", key 'consent_withdrawn': 4 record(s) in "
        "traced_data.json"]


def test_explain_names_the_coder_of_a_location_stop_the_reconciliation_spread(tmp_path):
    """P04's location answer 'Puntland' (tests/golden/README.md) coded STOP in the state scheme: the reconciliation
    writes STOP on every location level (pipeline.md 7.6.4), so all five hold it; explain names the coder and the
    coded file for the state level, and the reconciliation, once, for the other four."""
    root = _golden_copy(tmp_path)
    location = root / "Coded Coda Files" / "location.json"
    messages = json.loads(location.read_text(encoding="utf-8"))
    [puntland] = [message for message in messages if message["Text"] == "Puntland"]
    puntland["Labels"] = [{"SchemeID": "Scheme-a390e6ce", "CodeID": "code-STOP-08b832a8",  # State's STOP
                           "DateTimeUTC": "2019-01-18T10:00:00.000Z", "Checked": True,
                           "Origin": {"OriginID": "coder.b@example.org", "Name": "Coder B", "OriginType": "Manual"}}]
    location.write_text(json.dumps(messages), encoding="utf-8")
    run_generate(config=load_config(PROJECT_ROOT / "pipeline_config.json"), data_root=root, run=RUN, progress=None)
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "generate_outputs.py"), "explain", str(root),
                             "avf-phone-uuid-00000004-0000-4000-8000-000000000004", "consent_withdrawn"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    reconciled = ("a label by Pipeline Auto-Coder <redss_pipeline.location_reconciliation@1> of "
                  "2019-01-20T16:00:00.123456+00:00, not checked")
    assert [line for line in result.stdout.splitlines() if line.startswith("record 1 of 1: ")] == [
        f"record 1 of 1: mogadishu_sub_district_coded, district_coded, region_coded and zone_coded hold STOP "
        f"({reconciled}), written by step generate/location_reconciliation; state_coded holds STOP (a label by "
        "Coder B <coder.b@example.org> of 2019-01-18T10:00:00.000Z, checked), read from Coded Coda Files/location.json"]


def test_ordered_rows_come_back_in_position_order_after_spilling(tmp_path):
    """Rows added out of order, more than the in-memory limit, come back sorted; the spill is removed."""
    positions = [7, 3, 11, 0, 5, 9, 1, 4, 10, 2, 8, 6]
    with OrderedRows(limit=3, directory=tmp_path) as rows:
        for position in positions:
            rows.add(position, ("row", position))
        assert list(rows.rows()) == [("row", n) for n in range(12)]
        assert list(rows.rows()) == [("row", n) for n in range(12)]  # may be read twice
        assert any(tmp_path.iterdir())
    assert not any(tmp_path.iterdir())
