"""The phone number <-> UUID table: stage 1, look-ups, append-only ids, the 2019 JSON form."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys

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
    """A 2019 phone_uuids.json counts as an existing table; it is left untouched."""
    _, json_path = table_paths(tmp_path)
    json_path.parent.mkdir()
    json_path.write_text("{}\n")
    with pytest.raises(UuidTableError, match="already exists"):
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
        assert dict(table.items()) == _table_2019()
        ids = table.uuids_for_keys(["252610000001", "252615000003"])
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
