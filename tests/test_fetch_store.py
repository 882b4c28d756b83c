"""Tests of fetch_store: the de-identified SQLite store of runs, contacts and cursors."""

from __future__ import annotations

import sqlite3

import pytest

from redss_pipeline.core.errors import StateError
from redss_pipeline.fetch.fetch_store import FetchStore, StoredContact, runs_cursor


def _run(run_id, modified, value="x", *, run_uuid=None, contact="c1"):
    return {
        "id": run_id,
        "uuid": run_uuid or f"run-{run_id}",
        "flow": {"uuid": "flow-1", "name": "csap_demog"},
        "contact": {"uuid": contact, "name": "Name Example", "urn": "tel:+252610000099"},
        "values": {"age": {"value": value, "input": value, "time": modified}},
        "created_on": modified,
        "modified_on": modified,
        "exited_on": None,
        "exit_type": None,
    }


@pytest.fixture
def store(tmp_path):
    with FetchStore.open(tmp_path / "Raw Data" / "rapid_pro_store.sqlite") as opened:
        yield opened


def test_a_modified_run_replaces_its_older_version_and_an_older_copy_does_not(store):
    """Runs merge by identity, the newer modified_on winning; nothing is duplicated."""
    assert store.merge_runs([_run(1, "2018-12-10T05:00:00Z", "20")]).new == 1
    counts = store.merge_runs([_run(1, "2018-12-11T05:00:00Z", "21"), _run(2, "2018-12-11T06:00:00Z")])
    assert (counts.new, counts.updated) == (1, 1)
    assert store.merge_runs([_run(1, "2018-12-10T05:00:00Z", "20")]).unchanged == 1
    runs = list(store.runs_of_flow("flow-1"))
    assert [(r["id"], r["values"]["age"]["value"]) for r in runs] == [(1, "21"), (2, "x")]


def test_a_run_known_by_id_is_matched_when_a_newer_server_sends_only_its_uuid(store):
    """Identity is id or uuid: a run resent without its id replaces the stored copy."""
    store.merge_runs([_run(1, "2018-12-10T05:00:00Z", "20", run_uuid="R1")])
    copy = _run(None, "2018-12-12T05:00:00Z", "22", run_uuid="R1")
    assert store.merge_runs([copy]).updated == 1
    assert store.run_count() == 1
    assert next(store.runs_of_flow("flow-1"))["values"]["age"]["value"] == "22"


def test_stored_runs_keep_no_contact_name_or_urn(store, tmp_path):
    """The store file holds neither the contact's name nor its phone number."""
    store.merge_runs([_run(1, "2018-12-10T05:00:00Z")])
    store.close()
    content = (tmp_path / "Raw Data" / "rapid_pro_store.sqlite").read_bytes()
    assert b"252610000099" not in content and b"Name Example" not in content


def test_runs_of_a_flow_come_oldest_modified_first_then_by_id(store):
    """The order is the 2019 processing order: ascending modified_on, then ascending id."""
    store.merge_runs(
        [_run(3, "2018-12-10T05:00:00Z"), _run(2, "2018-12-10T05:00:00Z"), _run(1, "2018-12-11T00:00:00Z")]
    )
    assert [r["id"] for r in store.runs_of_flow("flow-1")] == [2, 3, 1]


def test_a_deletion_wins_over_an_older_copy_of_the_contact(store):
    """A deleted contact stays deleted when an older active copy arrives later."""
    store.merge_contacts([StoredContact("c1", "avf-phone-uuid-1", False, "2018-12-10T00:00:00.000000Z")])
    store.merge_contacts([StoredContact("c1", None, False, "2018-12-12T00:00:00.000000Z", deleted=True)])
    store.merge_contacts([StoredContact("c1", "avf-phone-uuid-1", False, "2018-12-11T00:00:00.000000Z")])
    assert store.contact_refs()["c1"].deleted is True
    assert store.contact_counts() == {"active": 0, "deleted": 1, "no_urn": 0}


def test_a_cursor_only_moves_forward(store):
    """Saving an older cursor value leaves the newer one in place."""
    store.set_cursor(runs_cursor("flow-1"), "2018-12-11T00:00:00.000000Z")
    store.set_cursor(runs_cursor("flow-1"), "2018-12-10T00:00:00.000000Z")
    assert store.cursor(runs_cursor("flow-1")) == "2018-12-11T00:00:00.000000Z"
    assert store.cursor("contacts") is None


def test_an_interrupted_transaction_leaves_nothing_behind(store):
    """A page is stored whole or not at all."""
    with pytest.raises(KeyboardInterrupt):
        with store.transaction():
            store.merge_runs([_run(1, "2018-12-10T05:00:00Z")])
            raise KeyboardInterrupt
    assert store.run_count() == 0


def test_a_store_of_an_unknown_schema_version_is_refused(tmp_path):
    """A store written by a newer pipeline is not silently misread."""
    path = tmp_path / "rapid_pro_store.sqlite"
    FetchStore.open(path).close()
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA user_version=99")
    with pytest.raises(StateError, match="schema version 99"):
        FetchStore.open(path)


def test_a_file_that_is_not_a_store_is_refused(tmp_path):
    """A corrupt store gives a one-line error naming the file."""
    path = tmp_path / "rapid_pro_store.sqlite"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StateError, match="rapid_pro_store.sqlite"):
        FetchStore.open(path)
