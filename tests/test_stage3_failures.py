"""Every failure a user can cause in stage 3 is one line (issue 12 item 12): a full disk, a read-only folder, a
damaged database page, a configuration that is not UTF-8, JSON nested too deeply, a lone surrogate. ``--verbose``
keeps the traceback. Stage 3 reads the UUID table without needing write access to ``UUIDs/``."""

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

from redss_pipeline.core.run_context import RunContext
from redss_pipeline.core.traced_data_json import read_traced_data_file, write_traced_data_file

PROJECT_ROOT = Path(__file__).resolve().parents[1]
GOLDEN_ROOT = PROJECT_ROOT / "tests/golden/data_root"
DEEP = "[" * 100_000 + "]" * 100_000


@pytest.fixture(scope="module")
def completed_root(tmp_path_factory) -> Path:
    """The golden data root after one stage-3 run (run once: every test below works on its own copy)."""
    completed = tmp_path_factory.mktemp("completed") / "root"
    shutil.copytree(GOLDEN_ROOT, completed)
    result = _stage3(completed)
    assert result.returncode == 0, result.stderr
    return completed


@pytest.fixture
def root(completed_root, tmp_path) -> Path:
    """A copy of the golden data root after one stage-3 run, file modes and times kept (copy2), for one test."""
    copy = tmp_path / "root"
    shutil.copytree(completed_root, copy)
    return copy


# Mounts a tmpfs of size $2 at $1 (holding a copy of what was there; read-only when $3 is "ro"), then runs the
# rest. It runs in a private mount namespace (unshare), so only the stage's process sees the small file system.
_MOUNT = """
set -e
target="$1"; size="$2"; mode="$3"; shift 3
keep="$(mktemp -d)"; cp -a "$target/." "$keep/"
mount -t tmpfs -o "size=$size" tmpfs "$target"
cp -a "$keep/." "$target/"
rm -rf "$keep"
if [ "$mode" = ro ]; then mount -o remount,ro "$target"; fi
set +e
exec "$@"
"""


def _stage3(root: Path, *extra: str, small_disk: tuple[Path, str, str] | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Runs stage 3 as users do; ``small_disk`` = (folder, size, "rw" or "ro") puts that folder on a tmpfs;
    ``env`` sets environment variables of the stage's process."""
    command = [sys.executable, str(PROJECT_ROOT / "generate_outputs.py"), *extra, "me@example.org", str(root)]
    if env:
        command = ["env", *(f"{name}={value}" for name, value in env.items()), *command]
    if small_disk is not None:
        folder, size, mode = small_disk
        command = _unshare() + ["sh", "-c", _MOUNT, "mount", str(folder), size, mode, *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def _unshare() -> list[str]:
    base = ["unshare", "--mount"] + ([] if os.geteuid() == 0 else ["--map-root-user"])
    probe = subprocess.run(base + ["sh", "-c", "mount -t tmpfs -o size=4k tmpfs /tmp"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("mounting a small file system in a private mount namespace is not allowed here")
    return base


def _one_line(result: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def _room_for(root: Path, times: float) -> str:
    """A tmpfs size holding the current outputs (analysis charts and maps included) ``times`` over."""
    total = sum(p.stat().st_size for p in (root / "Outputs").rglob("*") if p.is_file())
    return f"{int(total * times / 1024) + 64}k"


def _digests(root: Path) -> dict[str, str]:
    outputs = root / "Outputs"
    return {p.relative_to(outputs).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(outputs.rglob("*")) if p.is_file()}


def test_a_full_disk_is_one_line_and_the_outputs_stay(root):
    before = _digests(root)
    result = _stage3(root, small_disk=(root / "Outputs", _room_for(root, 1.5), "rw"))  # room once, not twice
    assert result.returncode == 1
    line = _one_line(result)
    assert "root/Outputs" in line and "the disk is full" in line and "nothing was replaced" in line
    assert _digests(root) == before
    assert not [p for p in (root / "Outputs").rglob("*") if p.name.startswith(".output-set")]


@pytest.mark.parametrize(("export", "coded", "encoding"), [
    ("Outputs/Coda Files/s01e02.json", "Coded Coda Files/s01e02.json", "utf-8"),
    ("Outputs/ICR/Coda Files/s01e02.json", "Coded Coda Files/s01e02.json", "utf-8"),
    ("Outputs/Coda Files/s01e02.json", "Coded Coda Files/s01e02.json", "utf-16"),  # Windows PowerShell 5
])
def test_a_coded_file_saved_over_its_export_stops_the_run_before_it_is_replaced(root, export, coded, encoding):
    """Coders download from Coda and save back where the upload came from: the run would replace that file with a
    fresh export and their work with it. The exports hold unchecked suggestions only (spec coda.md 4)."""
    (root / export).write_bytes((root / coded).read_text(encoding="utf-8").encode(encoding))
    messages = json.loads((root / coded).read_text(encoding="utf-8"))
    worked_on = sum(1 for message in messages if any(label.get("Checked") is True for label in message["Labels"]))
    before = _digests(root)
    result = _stage3(root)
    assert result.returncode == 1
    folder = "Coded Coda Files/ICR/" if "ICR" in export else "Coded Coda Files/"
    assert _one_line(result) == (
        f"error: {export}: holds labels a coder checked on {worked_on:,} messages, so it is a coded file saved over "
        f"the pipeline's export, which this run would replace: move it to {folder} (or delete it if its codes are "
        "there already) and run stage 3 again")
    assert _digests(root) == before


def test_verbose_keeps_the_traceback(root):
    result = _stage3(root, "--verbose", small_disk=(root / "Outputs", _room_for(root, 1.5), "rw"))
    assert result.returncode == 1
    assert "Traceback" in result.stderr


def test_a_read_only_outputs_folder_is_one_line(root):
    before = _digests(root)
    result = _stage3(root, small_disk=(root / "Outputs", _room_for(root, 2), "ro"))
    assert result.returncode == 1
    line = _one_line(result)
    assert "Outputs" in line and "read-only" in line
    assert _digests(root) == before


def test_a_uuid_table_of_another_user_is_named_not_the_outputs(root):
    """Stage 1 makes UUIDs/ readable by its owner only, so another login on a shared data root cannot open the
    table: the line names the table (it named Outputs/, as if the outputs could not be written). Here UUIDs/ belongs
    to another user and the stage runs without the power to read other users' files (root without its
    capabilities to pass permission checks), so the project itself, wherever it was cloned, stays readable."""
    command = [sys.executable, str(PROJECT_ROOT / "generate_outputs.py"), "me@example.org", str(root)]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running the stage without root's permission override needs setpriv")
        os.chown(root / "UUIDs", 65534, 65534)
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]
    os.chmod(root / "UUIDs", 0o700 if os.geteuid() == 0 else 0o000)
    before = _digests(root)
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    finally:
        os.chmod(root / "UUIDs", 0o700)
    assert result.returncode == 1, result.stderr
    assert _one_line(result) == (
        f"error: {root / 'UUIDs' / 'phone_uuids.sqlite'}: cannot open the table: permission denied (the folder or "
        "file is read-only or belongs to another user)")
    assert _digests(root) == before


def test_a_full_temporary_folder_is_one_line_naming_it(root, tmp_path):
    """The Coda exports and ICR candidates wait in a scratch database in the temporary folder (TMPDIR); when it
    is full, the run stops with one line naming the folder, the outputs stay, and no scratch file is left."""
    temporary = tmp_path / "temporary"
    temporary.mkdir()
    before = _digests(root)
    result = _stage3(root, small_disk=(temporary, "8k", "rw"), env={"TMPDIR": str(temporary)})
    assert result.returncode == 1
    line = _one_line(result)
    assert str(temporary) in line and "scratch database" in line and "the disk is full" in line
    assert _digests(root) == before
    assert list(temporary.iterdir()) == []


def test_stage3_reads_the_uuid_table_from_a_read_only_folder(root):
    """The table is opened read-only: no write access to UUIDs/ is needed, and nothing there changes."""
    uuids = root / "UUIDs"
    names_before = sorted(p.name for p in uuids.iterdir())
    result = _stage3(root, small_disk=(uuids, "1m", "ro"))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in uuids.iterdir()) == names_before


def test_a_damaged_uuid_table_page_is_one_line_naming_the_table(root):
    table = root / "UUIDs/phone_uuids.sqlite"
    with open(table, "r+b") as handle:
        handle.seek(4096 + 100)  # inside the second page: the header still reads, the rows do not
        handle.write(b"\xff" * 2000)
    result = _stage3(root)
    assert result.returncode == 1
    line = _one_line(result)
    assert "UUIDs/phone_uuids.sqlite" in line and "malformed" in line


def test_a_configuration_that_is_not_utf8_is_one_line(root, tmp_path):
    config = tmp_path / "pipeline_config.json"
    config.write_bytes((PROJECT_ROOT / "pipeline_config.json").read_bytes().replace(b"CSAP", b"CS\xffAP", 1))
    result = _stage3(root, "--config", str(config))
    assert result.returncode == 2
    assert str(config) in _one_line(result) and "- not UTF-8 text" in result.stderr


def test_a_deeply_nested_configuration_is_one_line(root, tmp_path):
    config = tmp_path / "pipeline_config.json"
    config.write_text(DEEP)
    result = _stage3(root, "--config", str(config))
    assert result.returncode == 2
    assert str(config) in _one_line(result) and "nested too deeply" in result.stderr


def test_a_deeply_nested_coded_file_is_one_line_naming_it(root):
    (root / "Coded Coda Files/gender.json").write_text(DEEP)
    result = _stage3(root)
    assert result.returncode == 1
    line = _one_line(result)
    assert "Coded Coda Files/gender.json" in line and "nested too deeply" in line


def test_a_deeply_nested_raw_file_is_one_line_naming_it(root):
    (root / "Raw Data/csap_demog.json").write_text(DEEP)
    result = _stage3(root)
    assert result.returncode == 1
    line = _one_line(result)
    assert "Raw Data/csap_demog.json" in line and "nested too deeply" in line


def test_a_lone_surrogate_in_a_raw_text_is_one_line_naming_file_and_key(root):
    """A text holding half of a UTF-16 pair (``\\ud83d``, a cut emoji) cannot be written as UTF-8."""
    path = root / "Raw Data/csap_s01e01_activation.json"
    records = read_traced_data_file(path)
    key = "Rqa_S01E01 (Text) - csap_s01e01_activation"
    first = next(i for i, r in enumerate(records) if key in r)
    # A later layer holding the cut text, written the way the pipeline writes raw files (so every _sha matches).
    step = RunContext("fetch@example.org", datetime(2019, 1, 19, tzinfo=timezone.utc)).step("test/cut emoji")
    records[first] = records[first].updated(step, {key: records[first][key] + " \ud83d"})
    write_traced_data_file(path, records)
    result = _stage3(root)
    assert result.returncode == 1
    line = _one_line(result)
    assert "Raw Data/csap_s01e01_activation.json" in line and "surrogate" in line
    assert key in line


def test_a_bad_time_in_a_raw_file_names_the_file_the_record_and_the_raw_key(root):
    """Not the pipeline's own name for the value (``sent_on``): the file, the record and the Rapid Pro key."""
    path = root / "Raw Data/csap_s01e01_activation.json"
    records = read_traced_data_file(path)
    key = "Rqa_S01E01 (Time) - csap_s01e01_activation"
    step = RunContext("fetch@example.org", datetime(2019, 1, 19, tzinfo=timezone.utc)).step("test/bad time")
    records[2] = records[2].updated(step, {key: "yesterday"})
    write_traced_data_file(path, records)
    result = _stage3(root)
    assert result.returncode == 1
    line = _one_line(result)
    assert "Raw Data/csap_s01e01_activation.json: record 2: field 'Rqa_S01E01 (Time) - csap_s01e01_activation'" in line
    assert "'yesterday'" in line and "sent_on" not in line


def test_a_first_run_that_fails_leaves_no_empty_output_folders(tmp_path):
    """A data root's first stage 3 stopping on a bad coded label (met while merging, after the run has begun)
    leaves no empty Coda Files/ or ICR/ folders in Outputs/ that look like a run's results; the folders people
    fill (Coded Coda Files/ICR) are there."""
    root = tmp_path / "root"
    shutil.copytree(GOLDEN_ROOT, root)
    coded = root / "Coded Coda Files/s01e01.json"
    messages = json.loads(coded.read_text(encoding="utf-8"))
    messages[0]["Labels"][0]["CodeID"] = "code-nope"
    coded.write_text(json.dumps(messages), encoding="utf-8")
    result = _stage3(root)
    assert result.returncode == 1 and "CodeID 'code-nope'" in _one_line(result)
    assert [p.relative_to(root).as_posix() for p in (root / "Outputs").rglob("*")] == []
    assert (root / "Coded Coda Files" / "ICR").is_dir()


@pytest.mark.parametrize("in_the_way", ["file", "link to nothing"])
def test_a_file_where_an_output_folder_must_be_is_one_line_before_the_run(root, tmp_path, in_the_way):
    before = _digests(root)
    shutil.rmtree(root / "Outputs" / "ICR")
    if in_the_way == "file":
        (root / "Outputs" / "ICR").write_text("not a folder")
    else:
        (root / "Outputs" / "ICR").symlink_to(tmp_path / "unmounted drive" / "ICR")
    result = _stage3(root)
    assert result.returncode == 1
    assert _one_line(result) == (f"error: {root / 'Outputs' / 'ICR'}: a file is where this folder must be; move or "
                                 "rename the file")
    assert {name: digest for name, digest in _digests(root).items() if name != "ICR"} == {
        name: digest for name, digest in before.items() if not name.startswith("ICR/")}


@pytest.mark.parametrize(("moved", "replaced_by", "expected"), [
    ("Raw Data", "file", "{root}/Raw Data: a file is where this folder must be; move or rename the file"),
    ("Raw Data/csap_demog.json", "folder",
     "{root}/Raw Data/csap_demog.json: a folder is where this file must be; move or rename the folder"),
    ("UUIDs", "file", "{root}/UUIDs: a file is where this folder must be; move or rename the file"),
    ("UUIDs/phone_uuids.sqlite", "folder",
     "{root}/UUIDs/phone_uuids.sqlite: a folder is where this file must be; move or rename the folder"),
])
def test_an_input_that_is_a_file_or_folder_in_the_way_is_named_as_such(root, moved, replaced_by, expected):
    """An input folder that is a file, or an input file that is a folder, was reported as missing (run stage 1 or 2
    first), which would send the user to make it again."""
    before = _digests(root)
    target = root / moved
    shutil.move(target, root / "kept aside")
    if replaced_by == "file":
        target.write_text("not a folder")
    else:
        target.mkdir()
    result = _stage3(root)
    assert result.returncode == 1
    assert _one_line(result) == "error: " + expected.format(root=root)
    assert _digests(root) == before


def test_a_folder_at_an_output_files_path_stops_the_run_before_it_reads_anything(root):
    """The switch would remove it with the previous outputs; found before the raw files are read, so a long run is
    not spent first."""
    (root / "Outputs" / "csap_mes.csv").unlink()
    (root / "Outputs" / "csap_mes.csv").mkdir()
    (root / "Outputs" / "csap_mes.csv" / "notes.txt").write_text("mine")
    result = _stage3(root)
    assert result.returncode == 1
    assert _one_line(result) == (f"error: {root / 'Outputs' / 'csap_mes.csv'}: a folder is where this file must be; "
                                 "move or rename the folder")
    assert "load raw files" not in result.stderr
    assert (root / "Outputs" / "csap_mes.csv" / "notes.txt").read_text() == "mine"
