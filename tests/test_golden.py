"""Acceptance test of stage 3: the golden data root (``tests/golden/data_root``), built by hand to exercise every
rule of the spec, must give exactly the expected outputs (``tests/golden/expected``), reviewed cell by cell
against the spec (``tests/golden/README.md`` lists each case, its rule and its expected cells).

Stage 3 runs once per test session, in-process, on a copy of the data root, with a fixed clock so that the
labels it creates carry a known ``DateTimeUTC`` and the Coda files compare byte for byte.
"""

from __future__ import annotations

import csv
import difflib
import importlib.util
import io
import json
import shutil
import sqlite3
import sys
from contextlib import closing
from pathlib import Path

import pytest

from redss_pipeline.analysis.stage import run_analysis
from redss_pipeline.core.config import load_config
from redss_pipeline.core.run_context import RunContext
from redss_pipeline.generate.stage import run_generate

GOLDEN = Path(__file__).resolve().parent / "golden"
DATA_ROOT = GOLDEN / "data_root"
EXPECTED = GOLDEN / "expected"
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    """A script of tests/golden as a module (the folder holds data and its generators, not a package)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, GOLDEN / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_data_root_module = _load("make_data_root")
_expected_module = _load("make_expected")

EXPECTED_FILES = sorted(str(p.relative_to(EXPECTED)) for p in EXPECTED.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def golden_run(tmp_path_factory) -> Path:
    """Stage 3 on a copy of the golden data root; returns the copy."""
    root = tmp_path_factory.mktemp("golden") / "data_root"
    shutil.copytree(DATA_ROOT, root)
    run = RunContext(_expected_module.RUN_USER, _expected_module.RUN_STARTED_AT)
    run_generate(config=load_config(PROJECT_ROOT / "pipeline_config.json"), data_root=root, run=run, progress=None)
    return root


def _csv_differences(expected: str, got: str) -> list[str]:
    """What differs, for a reader: columns added, removed or moved, by name and position; then cell by cell, row
    number, column name, expected vs got, for the columns both files have (at most 40 lines)."""
    exp_rows = list(csv.reader(io.StringIO(expected, newline="")))
    got_rows = list(csv.reader(io.StringIO(got, newline="")))
    exp_header = exp_rows[0] if exp_rows else []
    got_header = got_rows[0] if got_rows else []
    lines = []
    if exp_header != got_header:
        added = [f"{name!r} (column {i + 1})" for i, name in enumerate(got_header) if name not in exp_header]
        removed = [f"{name!r} (column {i + 1})" for i, name in enumerate(exp_header) if name not in got_header]
        if added:
            lines.append("columns not expected: " + ", ".join(added))
        if removed:
            lines.append("columns missing: " + ", ".join(removed))
        kept_exp = [name for name in exp_header if name in got_header]
        kept_got = [name for name in got_header if name in exp_header]
        if kept_exp != kept_got:
            lines.append(f"columns in another order:\n  expected {kept_exp}\n  got      {kept_got}")
    if len(exp_rows) != len(got_rows):
        lines.append(f"{len(exp_rows) - 1} data rows expected, got {len(got_rows) - 1}")
    got_index = {name: i for i, name in enumerate(got_header)}
    common = [(i, got_index[name], name) for i, name in enumerate(exp_header) if name in got_index]
    for number, (exp, got_row) in enumerate(zip(exp_rows[1:], got_rows[1:]), start=2):
        uid = exp[0] if exp else "?"
        for exp_at, got_at, column in common:
            e = exp[exp_at] if exp_at < len(exp) else "<missing>"
            g = got_row[got_at] if got_at < len(got_row) else "<missing>"
            if e != g:
                lines.append(f"line {number} ({uid}), column {column}: expected {e!r}, got {g!r}")
        if len(exp) != len(exp_header) or len(got_row) != len(got_header):  # a ragged row, beside its header
            lines.append(f"line {number} ({uid}): {len(got_row)} cells for a header of {len(got_header)}, "
                         f"{len(exp)} expected for {len(exp_header)}")
    if not lines:
        lines.append("same cells; the bytes differ (CSV dialect: quoting, line terminator, encoding)")
    return lines[:40] + ([f"... {len(lines) - 40} more"] if len(lines) > 40 else [])


def _text_differences(expected: str, got: str, name: str) -> list[str]:
    diff = list(difflib.unified_diff(expected.splitlines(), got.splitlines(), f"expected/{name}", f"got/{name}",
                                     lineterm="", n=2))
    if not diff:
        return ["same lines; the bytes differ (a trailing newline, or line endings)"]
    return diff[:80] + ([f"... {len(diff) - 80} more diff lines"] if len(diff) > 80 else [])


@pytest.mark.parametrize("name", EXPECTED_FILES)
def test_golden_output_matches_expected_file(golden_run: Path, name: str) -> None:
    """Every output file equals the reviewed expected file byte for byte."""
    got_path = golden_run / "Outputs" / name
    assert got_path.is_file(), f"Outputs/{name} was not written"
    expected_bytes = (EXPECTED / name).read_bytes()
    got_bytes = got_path.read_bytes()
    if got_bytes != expected_bytes:
        expected_text = expected_bytes.decode("utf-8", errors="replace")
        got_text = got_bytes.decode("utf-8", errors="replace")
        if name.endswith(".csv"):
            lines = _csv_differences(expected_text, got_text)
        else:
            lines = _text_differences(expected_text, got_text, name)
        pytest.fail(f"Outputs/{name} differs from tests/golden/expected/{name}:\n" + "\n".join(lines), pytrace=False)


def test_golden_run_writes_no_unexpected_output(golden_run: Path) -> None:
    """Outputs holds the expected files plus the audit trail, the run manifest and the analysis folder, and
    nothing else."""
    written = sorted(str(p.relative_to(golden_run / "Outputs")) for p in (golden_run / "Outputs").rglob("*")
                     if p.is_file() and (p.relative_to(golden_run / "Outputs").parts[0] != "Analysis"
                                         or str(p.relative_to(golden_run / "Outputs")) in EXPECTED_FILES))
    assert (golden_run / "Outputs" / "Analysis" / "report.html").is_file()
    assert written == sorted(EXPECTED_FILES + ["traced_data.json", "manifest.json"])
    assert (golden_run / "Outputs" / "traced_data.json").stat().st_size > 0


def test_the_report_names_the_stage_3_run_whose_files_it_was_made_from(golden_run: Path, tmp_path) -> None:
    """A figure cited from the report can be tied to its files: the report names the run that wrote the CSVs
    (started 2019-01-20 16:00:00.123456 UTC), whose manifest lists their SHA-256; so does the report of the
    analyse command run on those outputs later."""
    said = ("from csap_mes.csv and csap_ind.csv as written by the stage-3 run started 2019-01-20 16:00:00 UTC (its "
            "files and their SHA-256 are listed in Outputs/manifest.json)")
    assert said in (golden_run / "Outputs" / "Analysis" / "report.html").read_text(encoding="utf-8")
    again = tmp_path / "data root"
    shutil.copytree(golden_run / "Outputs", again / "Outputs", ignore=shutil.ignore_patterns("Analysis"))
    run_analysis(config=load_config(PROJECT_ROOT / "pipeline_config.json"), data_root=again, progress=None)
    assert said in (again / "Outputs" / "Analysis" / "report.html").read_text(encoding="utf-8")
    # A CSV saved again in a spreadsheet is no longer the run's file: the report names no run.
    messages = again / "Outputs" / "csap_mes.csv"
    messages.write_bytes(messages.read_bytes().replace(b"\n", b"\r\n"))
    run_analysis(config=load_config(PROJECT_ROOT / "pipeline_config.json"), data_root=again, progress=None)
    report = (again / "Outputs" / "Analysis" / "report.html").read_text(encoding="utf-8")
    assert "Tables, charts and maps from csap_mes.csv and csap_ind.csv &middot; project window" in report


def test_golden_uuid_table_imported_unchanged(golden_run: Path) -> None:
    """The 2019 phone_uuids.json is imported with every id kept, and the file itself is left untouched."""
    json_path = golden_run / "UUIDs" / "phone_uuids.json"
    assert json_path.read_bytes() == (DATA_ROOT / "UUIDs" / "phone_uuids.json").read_bytes()
    assert (golden_run / "UUIDs" / "phone_uuids.sqlite").is_file()
    with closing(sqlite3.connect(f"file:{golden_run / 'UUIDs' / 'phone_uuids.sqlite'}?mode=ro", uri=True)) as db:
        rows = db.execute("SELECT key, uuid FROM phone_uuids ORDER BY seq").fetchall()
    assert rows == list(json.loads(json_path.read_text(encoding="utf-8")).items())


def test_golden_inputs_left_untouched(golden_run: Path) -> None:
    """Stage 3 does not modify the raw files or the coded Coda files."""
    for folder in ("Raw Data", "Coded Coda Files"):
        for path in (DATA_ROOT / folder).iterdir():
            assert (golden_run / folder / path.name).read_bytes() == path.read_bytes(), f"{folder}/{path.name}"


def test_golden_no_phone_number_in_outputs(golden_run: Path) -> None:
    """No phone number (or other URN) of the UUID table appears in any output, the audit trail included."""
    keys = list(_data_root_module.PEOPLE.values())
    for path in (golden_run / "Outputs").rglob("*"):
        if path.is_file():
            content = path.read_bytes()  # the analysis folder holds PNG images too
            leaked = [key for key in keys if key.encode("utf-8") in content]
            assert not leaked, f"Outputs/{path.relative_to(golden_run / 'Outputs')} contains a table key"


def test_golden_dropped_people_absent_from_outputs(golden_run: Path) -> None:
    """The survey-only respondent, the test contact and a respondent whose only message is outside the project
    window appear in no output file."""
    absent = {person: _data_root_module.uid(person) for person in ("P15", "P16", "P99")}
    for name in EXPECTED_FILES:
        text = (golden_run / "Outputs" / name).read_text(encoding="utf-8")
        for person, uid in absent.items():
            assert uid not in text, f"{person} appears in Outputs/{name}"
    # Their survey answers were unique: no Coda file offers them to coders.
    for answer in ("Dheddig", "labaatan", "nin", "Kismayo", "sodon jir", "boy", "lix iyo labaatan"):
        for name in EXPECTED_FILES:
            if name.startswith("Coda Files/"):
                messages = json.loads((golden_run / "Outputs" / name).read_text(encoding="utf-8"))
                assert answer not in [m["Text"] for m in messages], f"{answer!r} in Outputs/{name}"
