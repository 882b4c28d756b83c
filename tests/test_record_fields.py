"""Typed reads out of records: times, ids, and many keys at once."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from redss_pipeline.core.errors import RawDataError
from redss_pipeline.core.record_fields import RecordColumns, record_time
from redss_pipeline.core.records import Record
from redss_pipeline.core.run_context import RunContext

RUN = RunContext("test@example.org", datetime(2019, 1, 20, tzinfo=timezone.utc))
STEP = RUN.step("test/load")


def test_record_columns_read_values_by_key_whatever_the_key_order():
    """RecordColumns gives each record's values under the keys asked for, a default for absent ones."""
    columns = RecordColumns(["c", "a"], missing="-")
    first = Record.create(STEP, {"a": 1, "b": 2})
    second = Record.create(STEP, {"c": 3}).updated(STEP, {"a": 4})
    assert [columns(first), columns(second), columns(first.updated(STEP, {"c": 5}))] == [
        ("-", 1), (3, 4), (5, 1)]
    assert columns({"a": 6}) == ("-", 6)
    assert RecordColumns(["b"])(first) == (2,)
    assert RecordColumns([])(first) == ()


def test_record_columns_are_right_for_every_key_order():
    """Records and dicts with the same keys in the same order, and many different key orders, each get their
    own values."""
    columns = RecordColumns(["b", "a", "z"], missing=0)
    assert columns(Record.create(STEP, {"a": 1, "b": 2})) == (2, 1, 0)
    assert columns({"a": 3, "b": 4}) == (4, 3, 0)
    assert columns(Record.create(STEP, {"b": 5}).updated(STEP, {"a": 6})) == (5, 6, 0)
    for n in range(200):  # a new key order each time: an extra key named after n, before or after "a"
        extra = f"k{n}"
        record = Record.create(STEP, {extra: n, "a": n} if n % 2 else {"a": n, extra: n})
        assert columns(record) == (0, n, 0)
    assert columns(Record.create(STEP, {"z": 7, "a": 8})) == (0, 8, 7)


def test_record_time_names_record_and_key():
    """A time without a UTC offset is an error naming the uid and the key."""
    record = Record.create(STEP, {"uid": "u1", "sent_on": "2018-12-02T10:00:00"})
    with pytest.raises(RawDataError, match=r"record u1: field 'sent_on': time has no UTC offset"):
        record_time(record, "sent_on")
    assert record_time(record.updated(STEP, {"sent_on": "2018-12-02T10:00:00+03:00"}), "sent_on") == datetime(
        2018, 12, 2, 7, tzinfo=timezone.utc)
