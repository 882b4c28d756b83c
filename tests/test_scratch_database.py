"""The run's scratch database: rows written and read back as they were, no file left behind, and a full disk as
one line naming the folder."""

from __future__ import annotations

import sqlite3

import pytest

from redss_pipeline.core.scratch_database import ScratchDatabase, ScratchDatabaseError


def test_rows_come_back_as_they_were_stored(tmp_path):
    """Texts, integers (beyond 32 bits), None and floats keep their types and values."""
    with ScratchDatabase(tmp_path) as scratch:
        table = scratch.new_table("values", "position INTEGER NOT NULL, value")
        rows = [(0, "2018-12-10T08:30:01+03:00"), (1, None), (2, 2**62), (3, 1.5), (4, "\u00e9\U0001f600")]
        scratch.insert(table, rows, width=2)
        assert list(scratch.query(f"SELECT position, value FROM {table} ORDER BY position")) == rows
        assert scratch.value(f"SELECT COUNT(*) FROM {table}") == 5


def test_tables_get_names_not_used_before(tmp_path):
    with ScratchDatabase(tmp_path) as scratch:
        first, second = scratch.new_table("export", "a"), scratch.new_table("export", "a")
        assert first != second


def test_no_file_is_left_in_the_folder_while_open_nor_after(tmp_path):
    """The file is unlinked once opened, so even a killed run leaves nothing behind."""
    with ScratchDatabase(tmp_path) as scratch:
        table = scratch.new_table("rows", "value")
        scratch.insert(table, [("x" * 1000,)] * 20_000, width=1)  # some 20 MB: more than the page cache holds
        assert list(tmp_path.iterdir()) == []
        assert scratch.value(f"SELECT COUNT(*) FROM {table}") == 20_000
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_is_one_line_naming_the_folder(tmp_path):
    """SQLite reports a database that cannot grow (here: capped at a few pages) as a full disk."""
    with ScratchDatabase(tmp_path) as scratch:
        table = scratch.new_table("rows", "value")
        scratch.execute("PRAGMA max_page_count = 8")
        with pytest.raises(ScratchDatabaseError) as raised:
            scratch.insert(table, [("x" * 1000,)] * 1000, width=1)
    message = str(raised.value)
    assert message.startswith(f"{tmp_path}: cannot use stage 3's scratch database")
    assert "the disk is full" in message and "TMPDIR" in message
    assert "\n" not in message


def test_a_missing_folder_is_one_line_naming_it(tmp_path):
    with pytest.raises(ScratchDatabaseError, match=f"^{tmp_path / 'gone'}: cannot use stage 3's scratch database"):
        ScratchDatabase(tmp_path / "gone")


def test_a_mistake_in_the_sql_is_not_blamed_on_the_temporary_folder(tmp_path):
    """Only a problem of the disk or the folder becomes the one-line "free some space" error; a bug shows as one."""
    with ScratchDatabase(tmp_path) as scratch:
        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            scratch.execute("INSERT INTO missing VALUES (1)")
