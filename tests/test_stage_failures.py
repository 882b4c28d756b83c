"""Failures a user can cause in stages 1 and 2 are one line (issue 12 item 12): a full disk, a read-only folder, a
damaged database page, files that are not UTF-8. ``--verbose`` adds the traceback. A read-only ``Raw Data/``
holding a healthy fetch store must not be blamed on the store.

Full and read-only disks are real: the data root (or its ``Raw Data/``) is a small tmpfs, mounted in a private
mount namespace of the stage's process only (``unshare``); the tests are skipped where that is not allowed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from redss_pipeline.core.config import load_config
from redss_pipeline.core.data_root import DataRoot
from redss_pipeline.deidentify.uuid_table import create_uuid_table, open_uuid_table, table_paths
from redss_pipeline.demo.rapid_pro_server import RapidProServer
from redss_pipeline.demo.synthetic_workspace import generate_workspace

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TOKEN = "failures-token-4e1a"
STAGE_1 = [sys.executable, str(PROJECT_ROOT / "create_uuid_table.py")]
STAGE_2 = [sys.executable, str(PROJECT_ROOT / "fetch_raw_data.py")]
HINT = "(run again with --verbose for the traceback)"

# Mounts a tmpfs of size $2 at $1 (copying what was there into it; read-only when $3 is "ro"), then runs the rest.
_MOUNT = """
set -e
target="$1"; size="$2"; mode="$3"; shift 3
keep="$(mktemp -d)"; cp -a "$target/." "$keep/"
mount -t tmpfs -o "size=$size" tmpfs "$target"
cp -a "$keep/." "$target/" 2>/dev/null || true
rm -rf "$keep"
if [ "$mode" = ro ]; then mount -o remount,ro "$target"; fi
set +e
exec "$@"
"""


def _unshare() -> list[str]:
    base = ["unshare", "--mount"] + ([] if os.geteuid() == 0 else ["--map-root-user"])
    probe = subprocess.run(base + ["sh", "-c", "mount -t tmpfs -o size=4k tmpfs /tmp"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("mounting a small file system in a private mount namespace is not allowed here")
    return base


def _on_small_disk(folder: Path, size: str, command: list[str], *, read_only: bool = False,
                   cwd: Path | None = None) -> subprocess.CompletedProcess:
    folder.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        _unshare() + ["sh", "-c", _MOUNT, "mount", str(folder), size, "ro" if read_only else "rw", *command],
        capture_output=True, text=True, timeout=300, cwd=cwd,
    )


def _one_line(result: subprocess.CompletedProcess, *expected: str) -> str:
    """The stage failed with exit 1 and said so in one error line (plus the --verbose hint), no traceback."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line and line != HINT and not line.startswith("runtime:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for text in expected:
        assert text.casefold() in lines[0].casefold(), lines[0]
    return lines[0]


def _table_2019(count: int) -> dict[str, str]:
    return {f"2526100{n:05d}": f"avf-phone-uuid-{n:08d}-0000-4000-8000-{n:012d}" for n in range(count)}


# -- stage 1 ------------------------------------------------------------------------------------------------------


def test_stage_one_on_a_full_disk_is_one_line_and_leaves_no_table(tmp_path):
    """Importing a 2019 table onto a disk that fills up: one line saying the disk is full, nothing left behind
    in UUIDs/ that would block a retry."""
    source = tmp_path / "phone_uuids.json"
    source.write_text(json.dumps(_table_2019(20000)))
    root = tmp_path / "root"
    result = _on_small_disk(root, "256k", STAGE_1 + ["--import-json", str(source), str(root)])
    _one_line(result, "full")
    assert not (root / "UUIDs").exists() or list((root / "UUIDs").iterdir()) == []
    verbose = _on_small_disk(root, "256k", STAGE_1 + ["--verbose", "--import-json", str(source), str(root)])
    assert verbose.returncode == 1 and "Traceback" in verbose.stderr


def test_stage_one_in_a_read_only_folder_is_one_line(tmp_path):
    root = tmp_path / "root"
    _one_line(_on_small_disk(root, "1m", STAGE_1 + [str(root)], read_only=True), "read-only")


def test_a_damaged_page_of_the_table_is_one_line_naming_the_table(tmp_path):
    """A table whose pages past the first are damaged reads as damaged (with the file named), not a traceback."""
    create_uuid_table(tmp_path)
    with open_uuid_table(tmp_path) as table:
        table.uuids_for_keys(f"2526100{n:05d}" for n in range(3000))
    sqlite_path, _ = table_paths(tmp_path)
    data = bytearray(sqlite_path.read_bytes())
    assert len(data) > 8 * 4096
    data[4 * 4096:6 * 4096] = b"\xa5" * (2 * 4096)
    sqlite_path.write_bytes(bytes(data))
    result = subprocess.run(STAGE_1 + ["--export-json", str(tmp_path / "out.json"), str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    _one_line(result, "phone_uuids.sqlite", "damaged")


def test_a_2019_table_that_is_not_utf8_is_one_line(tmp_path):
    source = tmp_path / "phone_uuids.json"
    source.write_bytes(b'{"252610000001": "avf-phone-uuid-\xff"}')
    result = subprocess.run(STAGE_1 + ["--import-json", str(source), str(tmp_path / "root")],
                            capture_output=True, text=True, timeout=120)
    _one_line(result, "phone_uuids.json", "UTF-8")


# -- stage 2 ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server():
    workspace = generate_workspace(seed=3, size=400)
    with RapidProServer(workspace, token=TOKEN, page_size=100) as running:
        yield running


def _stage_two(server, root: Path, *extra: str) -> list[str]:
    return STAGE_2 + [*extra, "me@example.org", str(root.parent / "rp-root"), server.url, TOKEN, str(root)]


def _fetched(tmp_path: Path, server) -> Path:
    root = tmp_path / "root"
    create_uuid_table(root)
    result = subprocess.run(_stage_two(server, root), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return root


def test_stage_two_on_a_full_disk_is_one_line(tmp_path, server):
    root = tmp_path / "root"
    create_uuid_table(root)
    _one_line(_on_small_disk(root / "Raw Data", "96k", _stage_two(server, root)), "full")


def test_a_read_only_raw_data_folder_is_one_line_and_does_not_blame_the_store(tmp_path, server):
    root = _fetched(tmp_path, server)
    line = _one_line(_on_small_disk(root / "Raw Data", "16m", _stage_two(server, root), read_only=True),
                     "read-only")
    assert "move" not in line
    # The store is healthy: with the folder writable again, the next fetch works.
    again = subprocess.run(_stage_two(server, root), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr


def test_a_raw_file_that_cannot_be_written_is_named_and_the_next_fetch_mends_it(tmp_path, server):
    """A folder took a raw file's name: the line names the raw file (it named the fetch's temporary file, or said
    only "the disk is full" for a full disk) and says that running the stage again writes the raw files anew.
    Until then the other raw files are of this fetch and that one is missing (or, after a killed fetch, of the
    one before): stage 3 refuses them; it read them without a word, and wrote outputs of two fetches."""
    root = tmp_path / "root"
    create_uuid_table(root)
    flow = load_config().flows[-1].name
    (root / "Raw Data" / f"{flow}.json").mkdir(parents=True)
    result = subprocess.run(_stage_two(server, root), capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("error: ")] == [
        f"error: {root / 'Raw Data' / f'{flow}.json'}: cannot write the raw file: a folder is where this file must be; "
        "move or rename the folder. Every run fetched is kept in the fetch store, so stage 2 run again once this is "
        "mended writes the raw files anew (until then they may be of two fetches)"]
    assert not [path.name for path in (root / "Raw Data").iterdir() if path.name.endswith(".tmp")]
    stage3 = subprocess.run([sys.executable, str(PROJECT_ROOT / "generate_outputs.py"), "me@example.org", str(root)],
                            capture_output=True, text=True, timeout=300)
    assert stage3.returncode == 1 and "Traceback" not in stage3.stderr
    assert [line for line in stage3.stderr.splitlines() if line.startswith("error: ")] == [
        f"error: {root / 'Raw Data'}: stage 2 stopped while it replaced the raw files, so they may be of two "
        "fetches: run stage 2 again (it writes them anew from its fetch store) before stage 3"]
    assert not (root / "Outputs").exists()
    (root / "Raw Data" / f"{flow}.json").rmdir()
    again = subprocess.run(_stage_two(server, root), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert (root / "Raw Data" / f"{flow}.json").is_file()
    DataRoot(root).check_raw_files_whole()  # as stage 3 checks: whole again


def test_a_file_where_raw_data_must_be_is_named_as_such(tmp_path, server):
    root = tmp_path / "root"
    create_uuid_table(root)
    (root / "Raw Data").write_text("not a folder")
    result = subprocess.run(_stage_two(server, root), capture_output=True, text=True, timeout=300)
    assert _one_line(result) == f"error: {root / 'Raw Data'}: a file is where this folder must be; move or rename the file"


def test_a_raw_files_write_a_killed_fetch_left_is_removed_by_the_next(tmp_path, server):
    root = _fetched(tmp_path, server)
    leftover = root / "Raw Data" / ".csap_evaluation.json.4242.0a1b2c3d.tmp"
    leftover.write_text("[\n")  # what a fetch killed while writing the raw file leaves
    result = subprocess.run(_stage_two(server, root), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "removed .csap_evaluation.json.4242.0a1b2c3d.tmp, left by an interrupted write" in result.stdout
    assert not leftover.exists()


def test_a_configuration_that_is_not_utf8_is_one_line(tmp_path, server):
    config = tmp_path / "pipeline_config.json"
    config.write_bytes((PROJECT_ROOT / "pipeline_config.json").read_bytes().replace(b"season 1", b"season \xe9"))
    root = tmp_path / "root"
    create_uuid_table(root)
    result = subprocess.run(_stage_two(server, root, "--config", str(config)), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode in (1, 2) and "Traceback" not in result.stderr
    assert "UTF-8" in result.stderr and result.stderr.startswith("error: ")


def test_a_token_file_that_is_not_utf8_is_one_line(tmp_path, server):
    token = tmp_path / "token"
    token.write_bytes(b"\xfe\xff-token")
    root = tmp_path / "root"
    create_uuid_table(root)
    result = subprocess.run(
        STAGE_2 + ["me@example.org", str(tmp_path / "rp-root"), server.url, f"@{token}", str(root)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "UTF-8" in result.stderr and result.stderr.startswith("error: ")
    assert not (tmp_path / "rp-root").exists()


def test_a_damaged_page_of_the_fetch_store_is_one_line_naming_the_store(tmp_path, server):
    root = _fetched(tmp_path, server)
    store = root / "Raw Data" / "rapid_pro_store.sqlite"
    data = bytearray(store.read_bytes())
    assert len(data) > 12 * 4096
    data[3 * 4096:len(data) - 4096] = b"\x5a" * (len(data) - 4 * 4096)
    store.write_bytes(bytes(data))
    shutil.rmtree(root / "Raw Data" / "rapid_pro_store.sqlite-wal", ignore_errors=True)
    _one_line(subprocess.run(_stage_two(server, root, "--full"), capture_output=True, text=True, timeout=300),
              "rapid_pro_store.sqlite")


def test_an_emptied_fetch_store_beside_raw_files_is_refused_as_a_damaged_one(tmp_path, server):
    """Emptied from outside, the store read as a first fetch: the check that keeps a data root to its workspace
    had nothing to compare with, and another workspace's runs replaced the raw files with exit 0. The raw files
    are left as they were."""
    root = _fetched(tmp_path, server)
    store = root / "Raw Data" / "rapid_pro_store.sqlite"
    store.write_bytes(b"")
    raw = {p.name: p.read_bytes() for p in (root / "Raw Data").glob("*.json")}
    line = _one_line(subprocess.run(_stage_two(server, root), capture_output=True, text=True, timeout=300))
    assert line == (f"error: {store}: not a readable fetch store (it is empty, though raw files of an earlier fetch "
                    "are beside it); move it away to fetch everything again")
    assert {p.name: p.read_bytes() for p in (root / "Raw Data").glob("*.json")} == raw


def test_a_table_lost_from_a_fetched_data_root_is_to_be_restored_not_made_anew(tmp_path, server):
    """The advice for a new data root (make a table with stage 1) made a fetched one worse: stage 2 then gave
    every contact a new id with exit 0, and only stage 3 failed, on the raw files' ids. Stage 1 no longer makes an
    empty table there."""
    root = _fetched(tmp_path, server)
    (root / "UUIDs" / "phone_uuids.sqlite").unlink()
    line = _one_line(subprocess.run(_stage_two(server, root), capture_output=True, text=True, timeout=300))
    table = root / "UUIDs" / "phone_uuids.sqlite"
    assert line == (f"error: {table}: no phone number <-> UUID table, though Raw Data/ holds fetched data: restore "
                    "the table from a backup (a JSON export with 1_create_uuid_table.sh --import-json), or fetch into "
                    "a new data root; a new empty table would give every contact a new id, and stage 3 would find the "
                    "fetched ids in no table")
    # Stage 1 refuses to make the empty table; a JSON export imported restores the table.
    line = _one_line(subprocess.run(STAGE_1 + [str(root)], capture_output=True, text=True, timeout=120))
    assert line == (f"error: {table}: Raw Data/ holds fetched data, so this data root had a table: restore it from a "
                    "backup (a JSON export with --import-json), or fetch into a new data root; a new empty table "
                    "would give every contact a new id")
    assert not table.exists()


def test_stage_two_reads_a_table_on_a_read_only_disk_with_one_line_not_a_traceback(tmp_path):
    """Closing the table's permissions must not fail on a read-only file system: the stage goes on to SQLite,
    which says in one line that it cannot write beside the table."""
    root = tmp_path / "root"
    create_uuid_table(root)
    sqlite_path, _ = table_paths(root)
    os.chmod(sqlite_path, 0o644)  # as an older version made it
    result = _on_small_disk(root / "UUIDs", "1m", STAGE_1 + ["--export-json", str(tmp_path / "out.json"), str(root)],
                            read_only=True)
    assert "Traceback" not in result.stderr
    assert result.returncode == 0 or result.stderr.startswith("error: "), result.stderr
