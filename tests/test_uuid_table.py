"""The phone number <-> UUID table: stage 1, look-ups, append-only ids, the 2019 JSON form."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
from contextlib import closing

import pytest

from redss_pipeline.core.errors import UuidTableError
from redss_pipeline.deidentify.uuid_table import (
    create_uuid_table,
    normalise_phone_number,
    open_uuid_table,
    table_paths,
    urn_key,
)

UUID_RE = r"^avf-phone-uuid-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"


@pytest.mark.parametrize(
    "urn, key",
    [
        ("tel:+252610000001", "252610000001"),
        ("tel:+252 61-000 0001", "252610000001"),
        ("0-0 0123123", "123123"),
        ("twitter:franky6342", "twitter:franky6342"),
        ("telegram:123", "telegram:123"),
        ("TEL:00252610000001", "252610000001"),
    ],
)
def test_urns_are_keyed_as_the_spec_says(urn, key):
    """tel: URNs become digits without leading zeros; other URNs stay whole and never collide with numbers."""
    assert urn_key(urn) == key


def test_normalisation_matches_2019():
    """Every non-digit is deleted, then leading zeros are stripped."""
    assert normalise_phone_number("+252 (61) 000-0001") == "252610000001"


def test_stage_one_creates_an_empty_table_and_refuses_a_second_time(tmp_path):
    """A second run exits with an error and leaves the table byte-identical."""
    sqlite_path = create_uuid_table(tmp_path)
    before = hashlib.sha256(sqlite_path.read_bytes()).hexdigest()
    with pytest.raises(UuidTableError, match="already exists here; refusing to overwrite it"):
        create_uuid_table(tmp_path)
    assert hashlib.sha256(sqlite_path.read_bytes()).hexdigest() == before
    with open_uuid_table(tmp_path) as table:
        assert len(table) == 0


def test_stage_one_refuses_a_2019_json_table(tmp_path):
    """A 2019 phone_uuids.json counts as an existing table; it is left untouched, and the refusal says that such a
    data root needs no stage 1 (it said to remove the table to start a new one)."""
    _, json_path = table_paths(tmp_path)
    json_path.parent.mkdir()
    json_path.write_text("{}\n")
    with pytest.raises(UuidTableError, match=r"phone_uuids.json: a phone number <-> UUID table of the 2019 pipeline "
                                             r"already exists here; .* A 2019 data root needs no stage 1: stages 2 "
                                             r"and 3 import this table themselves.$"):
        create_uuid_table(tmp_path)
    assert json_path.read_text() == "{}\n"
    assert not table_paths(tmp_path)[0].exists()


def test_ids_are_stable_and_new_ones_are_uuid4(tmp_path):
    """The same number always gets the same id, across reopenings; different URNs get different ids."""
    create_uuid_table(tmp_path)
    with open_uuid_table(tmp_path) as table:
        first = table.uuids_for_urns(["tel:+252610000001", "telegram:252610000001", "tel:0252610000001"])
    assert first["tel:+252610000001"] == first["tel:0252610000001"]
    assert first["telegram:252610000001"] != first["tel:+252610000001"]
    for uid in first.values():
        assert __import__("re").match(UUID_RE, uid)
    with open_uuid_table(tmp_path) as table:
        again = table.uuids_for_urns(["tel:252610000001"])
        assert again["tel:252610000001"] == first["tel:+252610000001"]
        assert table.keys_for_uuids([first["telegram:252610000001"]]) == {
            first["telegram:252610000001"]: "telegram:252610000001"
        }
        assert len(table) == 2


def test_table_is_append_only(tmp_path):
    """Changing or deleting an id is refused by the database itself."""
    create_uuid_table(tmp_path)
    with open_uuid_table(tmp_path) as table:
        table.uuids_for_keys(["252610000001"])
    db = sqlite3.connect(table_paths(tmp_path)[0])
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE phone_uuids SET uuid = 'x'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM phone_uuids")


def test_unknown_uid_is_an_error(tmp_path):
    """Looking up the number of a uid that is not in the table names the uid."""
    create_uuid_table(tmp_path)
    with open_uuid_table(tmp_path) as table, pytest.raises(UuidTableError, match="avf-phone-uuid-nope"):
        table.keys_for_uuids(["avf-phone-uuid-nope"])


def test_an_unknown_uid_holding_digits_is_not_shown(tmp_path):
    """An id not of the table's form with a run of digits in it (a number typed after the prefix) is not echoed;
    one of the table's own form is."""
    create_uuid_table(tmp_path)
    with open_uuid_table(tmp_path) as table:
        with pytest.raises(UuidTableError) as raised:
            table.keys_for_uuids(["avf-phone-uuid-+252615551234"])
        assert "615551234" not in str(raised.value) and "not shown" in str(raised.value)
        with pytest.raises(UuidTableError) as raised:
            table.keys_for_uuids(["avf-phone-uuid-+252 61 555 1234"])  # spaced as numbers are typed
        assert "555" not in str(raised.value) and "not shown" in str(raised.value)
        own_form = "avf-phone-uuid-3f0c6a5e-0d5f-4b8e-9a41-712345678901"
        with pytest.raises(UuidTableError, match=own_form):
            table.keys_for_uuids([own_form])


def test_stage_three_looks_up_a_large_batch_of_ids_in_a_read_only_table(tmp_path):
    """More ids than one query holds, some asked twice, come back each with its own number, in the order asked,
    from a table opened read-only as stage 3 opens it; one unknown id among them is named."""
    create_uuid_table(tmp_path)
    numbers = [f"2526100{n:05d}" for n in range(1, 1301)]
    with open_uuid_table(tmp_path) as table:
        ids = table.uuids_for_keys(numbers)
    asked = [ids[n] for n in reversed(numbers)] + [ids[numbers[0]], ids[numbers[-1]]]
    with open_uuid_table(tmp_path, read_only=True) as table:
        found = table.keys_for_uuids(asked)
        assert list(found) == [ids[n] for n in reversed(numbers)]
        assert found == {ids[n]: n for n in numbers}
        unknown = "avf-phone-uuid-00000000-0000-4000-8000-000000000000"
        with pytest.raises(UuidTableError, match=unknown):
            table.keys_for_uuids(asked[:700] + [unknown] + asked[700:])


def test_reading_the_table_as_stage_three_does_leaves_uuids_folder_as_it_was(tmp_path):
    """Stage 3's read-only look-ups create no -wal or -shm file beside the table and change nothing in UUIDs/
    (SQLite's merely read-only mode would leave both behind, which a reader cannot remove)."""
    create_uuid_table(tmp_path)
    with open_uuid_table(tmp_path) as table:
        ids = table.uuids_for_keys(["252610000001", "252610000002"])
    folder = tmp_path / "UUIDs"
    before = {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()}
    assert list(before) == ["phone_uuids.sqlite"]
    with open_uuid_table(tmp_path, read_only=True) as table:
        assert table.keys_for_uuids([ids["252610000002"]]) == {ids["252610000002"]: "252610000002"}
    assert {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()} == before


def test_ids_a_killed_writer_left_in_the_wal_are_read_by_stage_three(tmp_path):
    """A writer killed before folding its WAL into the table (here: the files copied while it is still open) leaves
    committed ids only in the -wal file; stage 3's read-only look-up still finds them."""
    source, killed = tmp_path / "source", tmp_path / "killed"
    create_uuid_table(source)
    with open_uuid_table(source) as table:
        table.uuids_for_keys(["252610000001"])
    with open_uuid_table(source) as table:
        ids = table.uuids_for_keys(["252610000002", "252610000003"])  # committed to the WAL, not yet folded in
        (killed / "UUIDs").mkdir(parents=True)
        for name in ("phone_uuids.sqlite", "phone_uuids.sqlite-wal"):
            shutil.copy2(source / "UUIDs" / name, killed / "UUIDs" / name)
    assert (killed / "UUIDs" / "phone_uuids.sqlite-wal").stat().st_size > 0
    with open_uuid_table(killed, read_only=True) as table:
        assert table.keys_for_uuids([ids["252610000003"], ids["252610000002"]]) == {
            ids["252610000003"]: "252610000003", ids["252610000002"]: "252610000002"}


def test_missing_table_says_to_run_stage_one(tmp_path):
    """Stages 2 and 3 on a data root without a table point at stage 1."""
    with pytest.raises(UuidTableError, match="run run_scripts/1_create_uuid_table.sh"):
        open_uuid_table(tmp_path)


def _table_2019() -> dict:
    return {
        "252610000001": "avf-phone-uuid-3f0c6a5e-0d5f-4b8e-9a41-7c2d1e0b9f11",
        "252907000002": "avf-phone-uuid-0b7d2c1e-5a6f-4e3d-8c2b-1a0f9e8d7c6b",
        "6342": "avf-phone-uuid-1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f",
    }


def test_2019_table_is_imported_once_keeping_every_id(tmp_path):
    """A data root with only phone_uuids.json gets a SQLite table with the same ids; the JSON stays as it was."""
    _, json_path = table_paths(tmp_path)
    json_path.parent.mkdir()
    text = json.dumps(_table_2019())
    json_path.write_text(text)
    with open_uuid_table(tmp_path) as table:
        ids = table.uuids_for_keys(["252610000001", "252615000003"])
    # Every 2019 id kept, in its order; the one new number asked for comes after them.
    assert _rows(tmp_path) == [*_table_2019().items(), ("252615000003", ids["252615000003"])]
    assert ids["252610000001"] == _table_2019()["252610000001"]
    assert json_path.read_text() == text
    with open_uuid_table(tmp_path) as table:
        assert len(table) == 4  # imported once, not again on the second opening


def test_export_gives_the_2019_table_back(tmp_path):
    """Importing a 2019 table and exporting it yields the same JSON text (order and format)."""
    source = tmp_path / "old.json"
    source.write_text(json.dumps(_table_2019()))
    result = subprocess.run(
        [sys.executable, "create_uuid_table.py", "--import-json", str(source), str(tmp_path / "root")],
        capture_output=True, text=True, cwd=__import__("pathlib").Path(__file__).resolve().parents[1],
    )
    assert result.returncode == 0, result.stderr
    assert "3 ids imported" in result.stdout
    exported = tmp_path / "exported.json"
    result = subprocess.run(
        [sys.executable, "create_uuid_table.py", "--export-json", str(exported), str(tmp_path / "root")],
        capture_output=True, text=True, cwd=__import__("pathlib").Path(__file__).resolve().parents[1],
    )
    assert result.returncode == 0, result.stderr
    assert exported.read_text() == source.read_text()


def test_conflicting_import_is_refused_whole(tmp_path):
    """Importing a number that already has another id changes nothing."""
    create_uuid_table(tmp_path)
    with open_uuid_table(tmp_path) as table:
        table.uuids_for_keys(["252610000001"])
    source = tmp_path / "old.json"
    source.write_text(json.dumps(_table_2019()))
    with open_uuid_table(tmp_path) as table:
        with pytest.raises(UuidTableError, match="already has another id"):
            table.import_json(source)
        assert len(table) == 1


def test_malformed_2019_table_names_the_entry(tmp_path):
    """An id without the avf-phone-uuid- prefix is reported with its position, not its number."""
    _, json_path = table_paths(tmp_path)
    json_path.parent.mkdir()
    json_path.write_text(json.dumps({"252610000001": "not-an-id"}))
    with pytest.raises(UuidTableError) as caught:
        open_uuid_table(tmp_path)
    assert "record #0" in str(caught.value)
    assert "252610000001" not in str(caught.value)


@pytest.mark.parametrize(("text", "problem"), [
    # json.loads alone keeps the second id of a repeated number: the first person's id would be lost.
    ('{"252610000001": "avf-phone-uuid-3f0c6a5e-0d5f-4b8e-9a41-7c2d1e0b9f11", '
     '"252610000001": "avf-phone-uuid-0b7d2c1e-5a6f-4e3d-8c2b-1a0f9e8d7c6b"}',
     "record #1: this number is given an id earlier in the file too (each number has one id)"),
    # Stage 2 looks numbers up as digits without a leading + or 0: these would never be found again.
    ('{"+252610000001": "avf-phone-uuid-3f0c6a5e-0d5f-4b8e-9a41-7c2d1e0b9f11"}', "record #0: the number is not in"),
    ('{"6342": "avf-phone-uuid-1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f", '
     '"0252 61 000 0001": "avf-phone-uuid-3f0c6a5e-0d5f-4b8e-9a41-7c2d1e0b9f11"}', "record #1: the number is not in"),
])
def test_a_2019_table_stage_two_could_not_use_is_refused_without_showing_its_numbers(tmp_path, text, problem):
    source = tmp_path / "old.json"
    source.write_text(text)
    with pytest.raises(UuidTableError) as caught:
        create_uuid_table(tmp_path / "root", import_from=source)
    assert f"{source}: {problem}" in str(caught.value)
    assert "610000001" not in str(caught.value) and "61 000" not in str(caught.value)
    assert not (tmp_path / "root" / "UUIDs" / "phone_uuids.sqlite").exists()


def test_a_file_named_uuids_is_not_taken_for_an_existing_table(tmp_path):
    """A file where the UUIDs folder must be is said to be one, not reported as a table that exists already."""
    (tmp_path / "UUIDs").write_text("")
    with pytest.raises(UuidTableError) as caught:
        create_uuid_table(tmp_path)
    assert str(caught.value) == f"{tmp_path / 'UUIDs'}: a file is where this folder must be; move or rename the file"


@pytest.mark.parametrize("read_only", [False, True])
@pytest.mark.parametrize("content", ["empty", "another database"])
def test_a_file_that_is_no_uuid_table_is_refused_and_left_as_it_was(tmp_path, content, read_only):
    """An empty file where the table belongs (a copy that failed) or another SQLite database is one line saying
    it is no UUID table; the empty file is not written to (SQLite would take it for a new database)."""
    sqlite_path, _ = table_paths(tmp_path)
    sqlite_path.parent.mkdir()
    if content == "empty":
        sqlite_path.write_bytes(b"")
    else:
        other = sqlite3.connect(sqlite_path)
        other.execute("CREATE TABLE notes (text)")
        other.commit()
        other.close()
    before = sqlite_path.read_bytes()
    with pytest.raises(UuidTableError) as caught:
        open_uuid_table(tmp_path, read_only=read_only)
    assert str(caught.value) == (f"{sqlite_path}: not a UUID table (an empty file, or another database); restore the "
                                 "table from a backup: it is the only link between people and their ids")
    if content == "empty":
        assert sqlite_path.read_bytes() == before


def test_a_non_phone_urn_in_a_2019_table_is_kept(tmp_path):
    """A contact known by another channel (telegram) is keyed by the URN whole, as stage 2 looks it up; 2019 kept
    only the digits of any URN, so one without digits got the empty key, which is kept too (its id may be in the
    raw files)."""
    source = tmp_path / "old.json"
    source.write_text(json.dumps({"telegram:252610000013": "avf-phone-uuid-1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f",
                                  "": "avf-phone-uuid-3f0c6a5e-0d5f-4b8e-9a41-7c2d1e0b9f11"}))
    create_uuid_table(tmp_path / "root", import_from=source)
    with open_uuid_table(tmp_path / "root") as table:
        assert table.uuids_for_urns(["telegram:252610000013"]) == {
            "telegram:252610000013": "avf-phone-uuid-1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"}
        assert table.keys_for_uuids(["avf-phone-uuid-3f0c6a5e-0d5f-4b8e-9a41-7c2d1e0b9f11"]) == {
            "avf-phone-uuid-3f0c6a5e-0d5f-4b8e-9a41-7c2d1e0b9f11": ""}


# -- issue 12 items 8 and 9: owner-only files, imports that leave nothing behind ----------------------------------

PROJECT_ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def _stage_one(*args: str, umask: int = 0o022) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "create_uuid_table.py", *args], capture_output=True, text=True, cwd=PROJECT_ROOT,
        preexec_fn=lambda: os.umask(umask),
    )


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_the_table_and_its_folder_are_owner_only_whatever_the_umask(tmp_path, umask):
    """UUIDs/ is 0700, the database and its -wal/-shm files 0600, an exported JSON table 0600."""
    root = tmp_path / "root"
    assert _stage_one(str(root), umask=umask).returncode == 0
    sqlite_path, _ = table_paths(root)
    assert _mode(sqlite_path.parent) == 0o700
    assert _mode(sqlite_path) == 0o600
    previous = os.umask(umask)
    try:
        with open_uuid_table(root) as table:
            table.uuids_for_keys(["252610000001"])  # stage 2 adding a number: the WAL files exist now
            side_files = [sqlite_path.with_name(sqlite_path.name + s) for s in ("-wal", "-shm")]
            assert [p.name for p in side_files if p.exists()] == [p.name for p in side_files]
            assert [_mode(p) for p in side_files] == [0o600, 0o600]
    finally:
        os.umask(previous)
    exported = tmp_path / "exported.json"
    result = _stage_one("--export-json", str(exported), str(root), umask=umask)
    assert result.returncode == 0, result.stderr
    assert _mode(exported) == 0o600


@pytest.mark.parametrize("target", ["the table itself", "another file"])
def test_an_export_never_overwrites_a_file(tmp_path, target):
    """An export given the table's own path (or any existing file) would replace it: refused, file untouched."""
    root = tmp_path / "root"
    assert _stage_one(str(root)).returncode == 0
    sqlite_path, _ = table_paths(root)
    path = sqlite_path if target == "the table itself" else tmp_path / "notes.txt"
    if target == "another file":
        path.write_text("keep me")
    before = path.read_bytes()
    result = _stage_one("--export-json", str(path), str(root))
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (f"error: {path}: exists already; the export writes a new file only (choose "
                                     "another name, or move the file away first)")
    if target == "another file":
        assert path.read_bytes() == before
    else:  # still the table (opening it to export may switch its journal mode, a header byte, but no row)
        with open_uuid_table(root) as table:
            assert len(table) == 0


def test_a_2019_table_imported_by_stage_two_is_owner_only_too(tmp_path):
    """A 2019 data root's UUIDs/ (0755 as 2019 made it) is closed when its table is imported."""
    sqlite_path, json_path = table_paths(tmp_path)
    json_path.parent.mkdir(mode=0o755)
    os.chmod(json_path.parent, 0o755)
    json_path.write_text(json.dumps(_table_2019()))
    with open_uuid_table(tmp_path):
        pass
    assert _mode(json_path.parent) == 0o700
    assert _mode(sqlite_path) == 0o600


def test_a_failed_import_leaves_no_table_and_a_retry_works(tmp_path):
    """--import-json of a bad file exits 1 with one line and leaves no table (nor a temporary file), so the
    corrected file can be imported next."""
    root = tmp_path / "root"
    source = tmp_path / "old.json"
    source.write_text(json.dumps({**_table_2019(), "252610000009": "not-an-id"}))
    result = _stage_one("--import-json", str(source), str(root))
    assert result.returncode == 1
    assert result.stderr.splitlines()[0].startswith("error: ")
    assert "record #3" in result.stderr and "Traceback" not in result.stderr
    assert not any(p.name.startswith("phone_uuids.sqlite") for p in (root / "UUIDs").glob("*"))
    source.write_text(json.dumps(_table_2019()))
    result = _stage_one("--import-json", str(source), str(root))
    assert result.returncode == 0, result.stderr
    assert _rows(root) == list(_table_2019().items())


def test_what_a_killed_import_left_is_removed_by_the_next_stage_one(tmp_path):
    """A stage killed while it built the table leaves its temporary database (phone numbers in it) beside the
    table; the next stage 1 on the data root removes it, says so, and goes on."""
    root = tmp_path / "root"
    assert _stage_one(str(root)).returncode == 0
    folder = root / "UUIDs"
    left = [folder / ".phone_uuids.sqlite.k1ll3d.building", folder / ".phone_uuids.sqlite.k1ll3d.building-wal"]
    for path in left:
        path.write_text("252610000001")
    result = _stage_one("--export-json", str(tmp_path / "export.json"), str(root))
    assert result.returncode == 0, result.stderr
    assert result.stderr == f"removed the unfinished table of 1 interrupted import(s) from {folder}\n"
    assert sorted(p.name for p in folder.iterdir()) == ["phone_uuids.sqlite"]


def test_stage_one_runs_at_the_same_moment_leave_one_complete_table(tmp_path):
    """Of several table creations racing on one data root, exactly one succeeds, the others are refused, and
    the table left has its schema (no half-made table moved into place over another)."""
    for attempt in range(15):
        root = tmp_path / f"root{attempt}"
        outcomes: list[str] = []
        barrier = threading.Barrier(6)

        def create(root=root, barrier=barrier, outcomes=outcomes) -> None:
            barrier.wait()
            try:
                create_uuid_table(root)
                outcomes.append("created")
            except UuidTableError as error:
                outcomes.append("refused" if "already exists" in str(error) else f"other: {error}")
            except Exception as error:  # noqa: BLE001 - any other failure is what this test looks for
                outcomes.append(f"crash: {type(error).__name__}: {error}")

        threads = [threading.Thread(target=create) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["created"] + ["refused"] * 5, outcomes
        with open_uuid_table(root) as table:
            assert len(table) == 0
        assert [p.name for p in (root / "UUIDs").iterdir()] == ["phone_uuids.sqlite"]


def _rows(data_root) -> list[tuple[str, str]]:
    """The (key, id) rows of a data root's SQLite table in the order they were added, read from the file itself."""
    sqlite_path, _ = table_paths(data_root)
    with closing(sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)) as connection:
        return connection.execute("SELECT key, uuid FROM phone_uuids ORDER BY seq").fetchall()


def test_a_raw_data_folder_without_fetched_data_does_not_stop_stage_1(tmp_path):
    """Stage 1 refuses to make an empty table where stage 2 has fetched (the table was lost), but a folder holding
    only what a desktop or a template leaves (.DS_Store, .gitkeep) is no fetch."""
    (tmp_path / "Raw Data").mkdir()
    (tmp_path / "Raw Data" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (tmp_path / "Raw Data" / ".gitkeep").write_text("")
    assert create_uuid_table(tmp_path).is_file()
