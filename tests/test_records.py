"""Audited records: immutable writes, the 2019 look-up order, and the history of a key."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from redss_pipeline.core.records import Record, Step

FETCH = Step("fetcher@example.org", "fetch/csap_demog", 1545000000.0)
RENAME = Step("analyst@example.org", "generate/rename_rapid_pro_keys", 1548000000.0)
CODE = Step("analyst@example.org", "generate/survey_cleaners", 1548000000.0)


def test_writing_makes_a_new_record_and_leaves_the_old_one_alone():
    """``updated`` returns a new record; the original keeps its values and layers."""
    first = Record.create(FETCH, {"Gender (Value) - csap_demog": "man"})
    second = first.updated(RENAME, {"gender_raw": "man"})
    assert dict(first) == {"Gender (Value) - csap_demog": "man"}
    assert dict(second) == {"Gender (Value) - csap_demog": "man", "gender_raw": "man"}
    assert len(first.layers) == 1 and len(second.layers) == 2


def test_later_writes_override_and_keys_are_never_deleted():
    """A second write to a key wins; every key once written stays readable."""
    record = Record.create(FETCH, {"a": "1", "b": "2"}).updated(CODE, {"a": "3"})
    assert record["a"] == "3" and record["b"] == "2"
    assert [c.value for c in record.history("a")] == ["1", "3"]
    assert [c.step for c in record.history("a")] == [FETCH, CODE]


def test_attached_records_are_read_after_own_newest_values_and_before_older_ones():
    """The 2019 order: own newest layer, then records attached in it, then older layers."""
    survey = Record.create(FETCH, {"gender_raw": "female", "shared": "survey"})
    message = Record.create(FETCH, {"shared": "message-old", "rqa": "text"})
    message = message.updated(RENAME, {"csap_demog": survey})
    assert message["shared"] == "survey"  # the attached record shadows the older own layer
    assert message["gender_raw"] == "female"
    message = message.updated(CODE, {"shared": "message-new"})
    assert message["shared"] == "message-new"  # a newer own layer wins over the attachment


def test_a_survey_record_is_shared_by_all_messages_it_is_attached_to():
    """Attaching does not copy the survey record: every message sees the same object."""
    survey = Record.create(FETCH, {"age_raw": "25"})
    one = Record.create(FETCH, {"rqa": "a"}).updated(RENAME, {"csap_demog": survey})
    two = Record.create(FETCH, {"rqa": "b"}).updated(RENAME, {"csap_demog": survey})
    assert one.layers[-1].data["csap_demog"] is two.layers[-1].data["csap_demog"] is survey


def test_history_follows_values_through_attached_records():
    """A key written on an attached record is listed with the attachment it came through."""
    survey = Record.create(FETCH, {"Gender (Value) - csap_demog": "man"}).updated(
        FETCH, {"Gender (Value) - csap_demog": "male"}
    )
    message = Record.create(FETCH, {"rqa": "x"}).updated(RENAME, {"csap_demog": survey})
    history = message.history("Gender (Value) - csap_demog")
    assert [(c.value, c.via) for c in history] == [("man", "csap_demog"), ("male", "csap_demog")]


def test_steps_are_shared_not_copied_per_record():
    """One step object stands for the metadata of every record it wrote."""
    records = [Record.create(FETCH, {"n": str(i)}).updated(CODE, {"coded": True}) for i in range(3)]
    assert all(r.layers[1].step is CODE for r in records)


def test_empty_write_adds_no_layer():
    """Writing nothing returns the same record (nothing happened, so nothing to remember)."""
    record = Record.create(FETCH, {"a": 1})
    assert record.updated(CODE, {}) is record


def test_record_is_a_read_only_mapping():
    """Records behave as mappings for readers, and offer no way to change them in place."""
    record = Record.create(FETCH, {"a": 1})
    assert isinstance(record, Mapping)
    assert record.get("missing", "default") == "default"
    assert list(record.items()) == [("a", 1)]
    with pytest.raises(TypeError):
        record["a"] = 2  # type: ignore[index]
    with pytest.raises(TypeError):
        hash(record)


def test_writes_do_not_leak_into_the_callers_dict():
    """The caller's dict is copied: changing it afterwards does not change the record."""
    data = {"a": 1}
    record = Record.create(FETCH, data)
    data["a"] = 2
    assert record["a"] == 1


def test_layers_compare_like_dicts_whatever_the_key_order():
    """A record read back from a file with sorted keys equals the record that was written."""
    written = Record.create(FETCH, {"b": 1, "a": 2})
    read_back = Record.create(FETCH, {"a": 2, "b": 1})
    assert written == read_back
    assert written != Record.create(FETCH, {"a": 2, "b": 3})


def test_keys_are_in_the_order_they_were_first_written():
    """Iteration order is first-write order: a rewrite keeps a key's place, new keys come after the old ones,
    and keys met through an attached record come after older keys (the last attached first, then the
    earlier ones, then the layer's own new keys)."""
    record = Record.create(FETCH, {"b": 1, "a": 2}).updated(CODE, {"c": 3, "a": 4})
    assert list(record) == ["b", "a", "c"] and list(record.values()) == [1, 4, 3]
    first = Record.create(FETCH, {"x": "first", "y": "first"})
    second = Record.create(FETCH, {"x": "second", "z": "second"})
    attaching = record.updated(RENAME, {"one": first, "d": 5, "two": second})
    assert list(attaching.items()) == [("b", 1), ("a", 4), ("c", 3), ("x", "first"), ("z", "second"),
                                       ("y", "first"), ("d", 5)]


def test_a_record_and_the_record_it_was_written_on_are_independent():
    """Writing on a record (or attaching it) changes neither it nor any other record made from it."""
    base = Record.create(FETCH, {"a": 1})
    left = base.updated(CODE, {"a": 2, "b": 2})
    right = base.updated(CODE, {"c": 3})
    holder = Record.create(FETCH, {"n": 0}).updated(RENAME, {"base": left}).updated(CODE, {"a": 9})
    assert dict(base) == {"a": 1}
    assert dict(left) == {"a": 2, "b": 2} and dict(right) == {"a": 1, "c": 3}
    assert holder["a"] == 9 and left["a"] == 2
    copy = left.to_dict()
    copy["a"] = 7
    assert left["a"] == 2
