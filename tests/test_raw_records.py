"""Tests of raw_records: Rapid Pro runs -> de-identified raw records (rapid-pro.md section 2)."""

from __future__ import annotations

import pytest

from redss_pipeline.core.errors import FetchError
from redss_pipeline.core.records import Step
from redss_pipeline.deidentify.phone_redaction import PhoneRedactor
from redss_pipeline.fetch.raw_records import (
    ContactRef,
    build_raw_records,
    deidentified_run,
    modified_key,
    run_record_data,
    time_key,
    utc_isoformat,
)

STEP = Step("user@example.org", "fetch/csap_demog", 1548000000.0)


def _run(run_id, contact, modified, values, **extra):
    run = {
        "id": run_id,
        "uuid": f"00000000-0000-4000-8000-{run_id:012d}" if isinstance(run_id, int) else "u",
        "flow": {"uuid": "flow-1", "name": "csap_demog"},
        "contact": {"uuid": contact, "name": "Amina Example", "urn": "tel:+252610000001"},
        "start": None,
        "responded": True,
        "path": [],
        "values": {
            key: {"value": v, "category": "All Responses", "node": "n", "time": modified, "input": v.upper(),
                  "name": key.title()}
            for key, v in values.items()
        },
        "created_on": modified,
        "modified_on": modified,
        "exited_on": None,
        "exit_type": None,
    }
    run.update(extra)
    return run


def test_utc_isoformat_drops_a_zero_fraction_as_python_isoformat_does():
    """Times are UTC isoformat: microseconds kept, none shown when they are 0, offsets converted to UTC."""
    assert utc_isoformat("2018-12-10T05:31:12.000001Z") == "2018-12-10T05:31:12.000001+00:00"
    assert utc_isoformat("2018-12-10T05:31:12.000000Z") == "2018-12-10T05:31:12+00:00"
    assert utc_isoformat("2018-12-10T08:31:12+03:00") == "2018-12-10T05:31:12+00:00"
    assert utc_isoformat(None) is None


def test_time_key_sorts_like_the_instant_whatever_the_offset():
    """The store's time form is fixed-width UTC, so string order is time order."""
    assert time_key("2018-12-10T08:00:00+03:00") == "2018-12-10T05:00:00.000000Z"
    assert time_key("2018-12-10T05:00:00.5Z") > time_key("2018-12-10T05:00:00Z")


def test_run_record_has_six_keys_per_result_and_the_text_from_input():
    """Each result becomes Category/Value/Text/Name/Time/Run ID keys; Text is the value's input."""
    run = _run(4092373, "c1", "2018-12-10T05:31:12.000001Z", {"gender": "m"})
    data = run_record_data(run, flow="csap_demog", uid="avf-phone-uuid-1", test=False, mode="all")
    assert data == {
        "avf_phone_id": "avf-phone-uuid-1",
        "Gender (Category) - csap_demog": "All Responses",
        "Gender (Value) - csap_demog": "m",
        "Gender (Text) - csap_demog": "M",
        "Gender (Name) - csap_demog": "Gender",
        "Gender (Time) - csap_demog": "2018-12-10T05:31:12.000001+00:00",
        "Gender (Run ID) - csap_demog": 4092373,
        "created_on": "2018-12-10T05:31:12.000001+00:00",
        "modified_on": "2018-12-10T05:31:12.000001+00:00",
        "exited_on": None,
        "exit_type": None,
    }


def test_run_id_is_the_uuid_when_the_server_sends_no_integer_id():
    """Newer servers identify runs by uuid only: (Run ID) holds the uuid then."""
    run = _run(1, "c1", "2018-12-10T05:31:12Z", {"age": "20"})
    del run["id"]
    data = run_record_data(run, flow="csap_demog", uid="u", test=True, mode="latest-only")
    assert data["Age (Run ID) - csap_demog"] == run["uuid"]
    assert data["test_run"] is True
    assert "created_on" not in data


def test_a_run_with_neither_id_nor_uuid_is_an_error():
    """A run that cannot be identified cannot be merged: a clear error, not a silent duplicate."""
    run = _run(1, "c1", "2018-12-10T05:31:12Z", {})
    del run["id"], run["uuid"]
    with pytest.raises(FetchError, match="neither 'id' nor 'uuid'"):
        run_record_data(run, flow="csap_demog", uid="u", test=False, mode="all")


def test_deidentified_run_keeps_no_contact_name_or_urn():
    """What is stored of a run names its contact by uuid only."""
    kept = deidentified_run(_run(7, "c1", "2018-12-10T05:31:12Z", {"gender": "m"}))
    assert kept["contact"] == {"uuid": "c1"}
    assert "Amina" not in str(kept) and "252610000001" not in str(kept)
    assert kept["values"]["gender"]["input"] == "M"


def test_mode_all_gives_one_record_per_run_and_skips_unknown_and_urnless_contacts():
    """Runs of unknown, deleted or URN-less contacts are left out and counted by reason."""
    runs = [
        _run(1, "a", "2018-12-10T05:00:00Z", {"gender": "m"}),
        _run(2, "ghost", "2018-12-10T05:01:00Z", {"gender": "f"}),
        _run(3, "nourn", "2018-12-10T05:02:00Z", {"gender": "f"}),
        _run(4, "gone", "2018-12-10T05:03:00Z", {"gender": "f"}),
        _run(5, "a", "2018-12-10T05:04:00Z", {"gender": "f"}),
    ]
    contacts = {"a": ContactRef("uid-a"), "nourn": ContactRef(None), "gone": ContactRef("uid-g", deleted=True)}
    build = build_raw_records(runs, contacts, flow="csap_demog", mode="all", test_contact_uuids={"a"}, step=STEP)
    assert [r["Gender (Run ID) - csap_demog"] for r in build.records] == [1, 5]
    assert all(r["test_run"] is True for r in build.records)
    assert (build.skipped.unknown, build.skipped.no_urn, build.skipped.deleted) == (1, 1, 1)
    assert build.skipped.unknown_contacts == {"ghost"}


def test_latest_only_keeps_a_key_answered_only_in_an_older_run():
    """One record per respondent: newest value per key, older-only keys survive, one layer per run."""
    runs = [
        _run(1, "a", "2018-12-10T05:00:00Z", {"gender": "m", "age": "20"}),
        _run(2, "b", "2018-12-10T05:01:00Z", {"gender": "f"}),
        _run(3, "a", "2018-12-11T05:00:00Z", {"gender": "f"}),
    ]
    contacts = {"a": ContactRef("uid-a"), "b": ContactRef("uid-b")}
    build = build_raw_records(
        runs, contacts, flow="csap_demog", mode="latest-only", test_contact_uuids=set(), step=STEP
    )
    first, second = build.records
    assert (first["avf_phone_id"], second["avf_phone_id"]) == ("uid-a", "uid-b")
    assert first["Gender (Value) - csap_demog"] == "f"
    assert first["Age (Value) - csap_demog"] == "20"
    assert first["Age (Run ID) - csap_demog"] == 1 and first["Gender (Run ID) - csap_demog"] == 3
    assert len(first.layers) == 2
    assert [c.value for c in first.history("Gender (Value) - csap_demog")] == ["m", "f"]


def test_two_contacts_with_the_same_uid_are_one_respondent_in_latest_only():
    """Grouping is by uid, as 2019 grouped by avf_phone_id."""
    runs = [_run(1, "a", "2018-12-10T05:00:00Z", {"age": "20"}), _run(2, "b", "2018-12-10T06:00:00Z", {"age": "21"})]
    contacts = {"a": ContactRef("same"), "b": ContactRef("same")}
    build = build_raw_records(runs, contacts, flow="csap_demog", mode="latest-only", test_contact_uuids=set(),
                              step=STEP)
    assert len(build.records) == 1 and build.records[0]["Age (Value) - csap_demog"] == "21"


def test_an_object_without_a_readable_modified_on_is_an_error_naming_it():
    """A run whose modified_on is missing or garbled is reported with its id and the field."""
    with pytest.raises(FetchError, match=r"record run 12: field 'modified_on': expected an ISO 8601 datetime"):
        modified_key({"id": 12, "modified_on": "yesterday"}, what="run")
    assert modified_key({"modified_on": "2018-12-10T05:00:00Z"}, what="run") == "2018-12-10T05:00:00.000000Z"


def test_numbers_typed_into_answers_are_redacted_before_storing_and_in_raw_records():
    """Issue 12 item 3: an answer's value and input never carry a typed phone number, neither in what is stored
    of a run nor in its raw record; the redactor counts each number it replaced."""
    run = _run(8, "c1", "2018-12-10T05:31:12Z", {"rqa_s01e01": "call me on 0615 123 456"})
    redactor = PhoneRedactor()
    kept = deidentified_run(run, redactor=redactor)
    assert kept["values"]["rqa_s01e01"]["value"] == "call me on <phone number>"
    assert kept["values"]["rqa_s01e01"]["input"] == "CALL ME ON <phone number>"
    assert redactor.count == 2
    data = run_record_data(run, flow="f", uid="u", test=False, mode="all", redactor=redactor)
    assert data["Rqa_S01E01 (Value) - f"] == "call me on <phone number>"
    assert data["Rqa_S01E01 (Text) - f"] == "CALL ME ON <phone number>"
    # Times, run ids and the uid are never read as numbers.
    assert data["Rqa_S01E01 (Run ID) - f"] == 8
    build = build_raw_records([run], {"c1": ContactRef("u")}, flow="f", mode="all", test_contact_uuids=set(),
                              step=STEP)
    assert build.records[0]["Rqa_S01E01 (Text) - f"] == "CALL ME ON <phone number>"
