"""What goes to Drive from a data root (the manifests' files, checked), the ``upload`` command that sends them again
without running stage 3, and Drive folders given by their browser address. The real googleapiclient talks to the
local Drive-compatible server; only the service's root URL is pointed there (Google's own cannot be reached)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from data_roots import fetched_data_root
from drive_server import DriveServer, make_service_account_key

from redss_pipeline.commands.generate_outputs import main as generate_outputs_main
from redss_pipeline.core.config import load_config
from redss_pipeline.core.data_root import DataRoot
from redss_pipeline.core.errors import DriveError
from redss_pipeline.core.run_context import RunContext
from redss_pipeline.export.drive import drive_folder
from redss_pipeline.export.drive_uploads import drive_uploads
from redss_pipeline.generate.stage import run_generate

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ENTRY = str(PROJECT_ROOT / "generate_outputs.py")
# The tables the analysis marks shareable (spec analysis.md 4; sample_messages.csv holds free text, so it is not).
SHAREABLE_TABLES = [
    "engagement_counts.csv", "repeat_participations.csv", "new_and_returning_participants.csv",
    "theme_distributions.csv", "theme_distributions_ci.csv", "demographic_distributions.csv",
    "cross_tabs_age_category_vs_gender.csv", "traffic_analysis.csv",
]
CSVS = ["csap_mes.csv", "csap_ind.csv", "csap_prod.csv"]
# Their Drive names in the shipped pipeline_config.json (analysis.drive: tables_prefix, report).
DRIVE_TABLES = [f"csap_analysis_{name}" for name in SHAREABLE_TABLES]
DRIVE_REPORT = "csap_analysis_report.html"


@pytest.fixture(scope="module")
def generated_root(tmp_path_factory) -> Path:
    """A data root after stages 1 to 3 on a small bundled workspace."""
    root = fetched_data_root(tmp_path_factory.mktemp("generated") / "root", seed=7, size=120)
    run_generate(config=load_config(), data_root=root, run=RunContext("me@example.org", datetime(
        2019, 1, 20, tzinfo=timezone.utc)), progress=None, workers=1)
    return root


@pytest.fixture
def root(generated_root, tmp_path) -> Path:
    copy = tmp_path / "root"
    shutil.copytree(generated_root, copy)
    return copy


@pytest.fixture
def drive(monkeypatch):
    """The local Drive server with a Shared Drive "CSAP" holding a folder "Outputs", and the upload pointed at it."""
    import redss_pipeline.export.drive as drive_module

    with DriveServer() as server:
        real_build = drive_module.build_drive_service
        monkeypatch.setattr(drive_module, "build_drive_service",
                            lambda key: real_build(key, root_url=server.url, timeout=5))
        server.folder = server.add_folder("Outputs", parent=server.add_shared_drive("CSAP"))
        yield server


@pytest.fixture
def key_file(drive, tmp_path) -> Path:
    path = tmp_path / "drive-key.json"
    path.write_text(json.dumps(make_service_account_key(drive.token_uri, key_size=1024)), encoding="utf-8")
    return path


def _names(uploads) -> list[str]:
    return [name for _, name in uploads]


def test_a_stage3_run_sends_its_three_csvs_its_report_and_its_shareable_tables(root, config):
    uploads = drive_uploads(config, DataRoot(root))
    assert _names(uploads) == [*CSVS, DRIVE_REPORT, *DRIVE_TABLES]
    assert uploads[0][0] == root / "Outputs" / "csap_mes.csv"
    assert uploads[3][0] == root / "Outputs" / "Analysis" / "report.html"
    assert uploads[4][0] == root / "Outputs" / "Analysis" / "shareable" / "engagement_counts.csv"
    assert _names(drive_uploads(config, DataRoot(root), csvs=False)) == [DRIVE_REPORT, *DRIVE_TABLES]


def test_a_file_an_older_run_left_behind_is_not_sent(root, config):
    """A table of a dataset since removed from the configuration stays in the folder but in no manifest."""
    (root / "Outputs" / "Analysis" / "shareable" / "cross_tabs_gender_vs_age.csv").write_text("old\n")
    assert _names(drive_uploads(config, DataRoot(root))) == [*CSVS, DRIVE_REPORT, *DRIVE_TABLES]


def test_a_csv_saved_again_by_a_spreadsheet_is_refused(root, config):
    path = root / "Outputs" / "csap_ind.csv"
    path.write_bytes(path.read_bytes().replace(b",", b";"))  # saved again with another list separator
    with pytest.raises(DriveError, match=r"/Outputs/csap_ind\.csv: has changed since the pipeline wrote it .*"
                                         r"nothing was uploaded"):
        drive_uploads(config, DataRoot(root))


def test_the_analysis_commands_files_are_sent_when_it_ran_last(root, config, tmp_path):
    """``analyse`` (here with another suppression threshold, so its report differs from stage 3's) replaces the
    analysis files and lists them in Outputs/Analysis/manifest.json: those are checked and sent, with the CSVs of the
    stage-3 run. Checked against Outputs/manifest.json instead, its report would be refused as changed."""
    raw = json.loads((PROJECT_ROOT / "pipeline_config.json").read_text(encoding="utf-8"))
    raw["code_schemes"]["directory"] = str(PROJECT_ROOT / raw["code_schemes"]["directory"])
    raw["analysis"]["suppression"]["k"] = 2
    other = tmp_path / "other_config.json"
    other.write_text(json.dumps(raw), encoding="utf-8")
    report = root / "Outputs" / "Analysis" / "report.html"
    before = report.read_bytes()
    assert generate_outputs_main(["analyse", "--config", str(other), "--workers", "1", str(root)]) == 0
    assert report.read_bytes() != before
    uploads = drive_uploads(config, DataRoot(root))
    assert _names(uploads) == [*CSVS, DRIVE_REPORT, *DRIVE_TABLES]
    assert (report, DRIVE_REPORT) in uploads
    # The analysis manifest names the stage-3 run it analysed by its manifest's SHA-256, so the choice does not
    # depend on file times, which a copy of the data root (cp -r) does not keep.
    analysis_manifest = root / "Outputs" / "Analysis" / "manifest.json"
    outputs_sha256 = hashlib.sha256((root / "Outputs" / "manifest.json").read_bytes()).hexdigest()
    assert json.loads(analysis_manifest.read_text(encoding="utf-8"))["outputs_manifest_sha256"] == outputs_sha256
    os.utime(analysis_manifest, ns=(1, 1))
    assert (report, DRIVE_REPORT) in drive_uploads(config, DataRoot(root))


def test_an_analysis_of_other_outputs_is_not_read(root, config):
    """An analysis manifest naming another stage-3 run (an Analysis folder copied from elsewhere) lists files the
    stage-3 run here did not analyse: the stage-3 manifest is the one that describes the files beside it."""
    other = root / "Outputs" / "Analysis" / "manifest.json"
    other.write_text(json.dumps({"outputs_manifest_sha256": "0" * 64, "files": [
        {"path": "Analysis/report.html", "sha256": "0" * 64}]}), encoding="utf-8")
    assert _names(drive_uploads(config, DataRoot(root))) == [*CSVS, DRIVE_REPORT, *DRIVE_TABLES]


def test_an_analysis_manifest_older_than_the_outputs_is_not_read(root, config):
    """Left by a version of the pipeline whose stage 3 did not remove it (and whose manifest did not name the
    stage-3 run it analysed): the analysis files it lists were replaced by the later stage-3 run, so the stage-3
    manifest is the one that describes them."""
    stale = root / "Outputs" / "Analysis" / "manifest.json"
    stale.write_text(json.dumps({"files": [{"path": "Analysis/report.html", "sha256": "0" * 64}]}), encoding="utf-8")
    os.utime(stale, ns=(1, 1))
    assert _names(drive_uploads(config, DataRoot(root))) == [*CSVS, DRIVE_REPORT, *DRIVE_TABLES]


def test_outputs_never_written_are_one_line(tmp_path, config):
    (tmp_path / "Outputs").mkdir()
    with pytest.raises(DriveError, match=r"Outputs/manifest\.json: no manifest, so no outputs of a finished run to "
                                         r"upload: run stage 3 first$"):
        drive_uploads(config, DataRoot(tmp_path))


def test_the_upload_command_sends_the_outputs_without_running_stage_3(root, drive, key_file, capsys):
    before = {path: path.stat().st_mtime_ns for path in (root / "Outputs").rglob("*")}
    assert generate_outputs_main(["upload", str(key_file), "CSAP/Outputs", str(root)]) == 0
    out = capsys.readouterr().out
    assert "Drive: created CSAP/Outputs/csap_mes.csv" in out
    assert {item.name for item in drive.children(drive.folder)} == {*CSVS, *DRIVE_TABLES, DRIVE_REPORT}
    assert drive.child(drive.folder, "csap_prod.csv").content == (root / "Outputs" / "csap_prod.csv").read_bytes()
    assert {path: path.stat().st_mtime_ns for path in (root / "Outputs").rglob("*")} == before  # nothing rewritten
    # Sent again: updated in place, no second copy.
    assert generate_outputs_main(["upload", str(key_file), "CSAP/Outputs", str(root)]) == 0
    assert "Drive: updated CSAP/Outputs/csap_mes.csv" in capsys.readouterr().out
    assert len(drive.children(drive.folder)) == 3 + len(SHAREABLE_TABLES) + 1


def test_a_folder_given_by_its_browser_address_is_used_by_its_id(root, drive, key_file, capsys):
    address = f"https://drive.google.com/drive/u/0/folders/{drive.folder}?usp=sharing"
    assert generate_outputs_main(["upload", str(key_file), address, str(root)]) == 0
    assert "Drive: created Outputs/csap_mes.csv" in capsys.readouterr().out  # named by the folder's Drive name
    assert drive.child(drive.folder, "csap_mes.csv").content == (root / "Outputs" / "csap_mes.csv").read_bytes()


@pytest.mark.parametrize(("target", "expected"), [
    ("CSAP/Outputs", ("CSAP/Outputs", None)),
    ("https://drive.google.com/drive/folders/1AbC-d_9", ("", "1AbC-d_9")),
    ("https://drive.google.com/drive/u/2/folders/1AbC-d_9/", ("", "1AbC-d_9")),
    ("drive.google.com/drive/folders/1AbC-d_9?usp=sharing", ("", "1AbC-d_9")),  # pasted without https://
    ("https://drive.google.com/open?id=1AbC-d_9", ("", "1AbC-d_9")),  # an older sharing link
    ("HTTPS://Drive.Google.com/drive/folders/1AbC-d_9", ("", "1AbC-d_9")),
    (" https://drive.google.com/drive/folders/1AbC-d_9 ", ("", "1AbC-d_9")),  # pasted with spaces around it
])
def test_drive_folder_reads_paths_and_folder_addresses(target, expected):
    assert drive_folder(target) == expected


@pytest.mark.parametrize("target", ["", " ", "/"])
def test_an_empty_folder_is_refused_before_stage_3_runs(root, key_file, target):
    """An unset shell variable as the folder: refused at once (exit 2), not after the whole stage has run."""
    before = (root / "Outputs" / "csap_mes.csv").read_bytes()
    result = subprocess.run([sys.executable, ENTRY, "--drive-upload", str(key_file), target, "me@example.org",
                             str(root)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert [line for line in result.stderr.splitlines() if line.startswith("error: ")] == [
        "error: the Drive upload folder is empty: give a folder path such as CSAP/Outputs, or the address a browser "
        "shows in the folder"]
    assert "stage 3: generating" not in result.stderr
    assert (root / "Outputs" / "csap_mes.csv").read_bytes() == before


@pytest.mark.parametrize("target", [
    "https://drive.google.com/file/d/1AbC/view",  # a file's address, not a folder's
    "https://docs.google.com/drive/folders/1AbC",
    "https://drive.google.com/drive/my-drive",
    "https://drive.google.com/open?id=",
    "https://[drive.google.com/drive/folders/1AbC",  # not an address at all
])
def test_other_addresses_are_refused_before_anything_runs(root, key_file, target):
    digests = {path: path.read_bytes() for path in (root / "Outputs").rglob("*") if path.is_file()}
    result = subprocess.run([sys.executable, ENTRY, "upload", str(key_file), target, str(root)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2  # a wrong call (spec README decision 6)
    assert [line for line in result.stderr.splitlines() if line.startswith("error: ")] == [
        f"error: {target!r} is not the address of a Drive folder: give a folder path such as CSAP/Outputs, or the "
        "address a browser shows in the folder (https://drive.google.com/drive/folders/<folder id>)"]
    assert {path: path.read_bytes() for path in (root / "Outputs").rglob("*") if path.is_file()} == digests


def test_a_failed_upload_after_stage_3_says_how_to_send_the_outputs_again(root, drive, key_file):
    """The run's outputs are switched in before the upload starts, so a refused upload keeps them and names the
    command that sends them without running the stage again."""
    manifest = root / "Outputs" / "manifest.json"
    before = manifest.read_bytes()
    with pytest.raises(DriveError) as error:
        generate_outputs_main(["--drive-upload", str(key_file), "CSAP/Missing", "--workers", "1", "me@example.org",
                               str(root)])
    assert str(error.value).endswith(
        "(the outputs are written; once this is mended, generate_outputs.py upload "
        "<drive-service-account-credentials-url> <drive-upload-dir> <data-root> sends them without running stage 3)")
    assert "'CSAP/Missing'" in str(error.value)
    assert manifest.read_bytes() != before  # this run's outputs are in place
    assert drive.children(drive.folder) == []
