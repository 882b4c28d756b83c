"""Reconciling the five location levels into one location (pipeline.md 7.6.4)."""

from __future__ import annotations

import pytest

from redss_pipeline.core.errors import RawDataError, SchemeError
from redss_pipeline.core.labels import make_label
from redss_pipeline.core.records import Record
from redss_pipeline.generate.location_reconciliation import (
    LOCATION_RECONCILIATION_ORIGIN,
    location_plans,
    reconcile_locations,
)

LEVELS = ("mogadishu_sub_district", "district", "region", "state", "zone")


def _record(config, run, **coded: str):
    """A record whose location levels hold checked labels of the given StringValues (NR where not given)."""
    data = {"uid": "u1"}
    for plan in location_plans(config):
        value = coded.get(plan.location_level, "NR")
        code = next(c for c in plan.scheme.codes if c.string_value == value)
        data[plan.coded_field] = make_label(plan.scheme, code, origin_id="coder@example.org",
                                            label_time="2019-01-20T10:00:00.000Z", checked=value != "NR")
    return Record.create(run.step("test/load"), data)


def _levels(config, record) -> tuple[str, ...]:
    return tuple(plan.scheme.code_by_id(record[plan.coded_field]["CodeID"]).string_value for plan in location_plans(config))


def _reconciled(config, run, **coded: str) -> tuple[str, ...]:
    [record] = reconcile_locations([_record(config, run, **coded)], config=config, run=run)
    return _levels(config, record)


def test_location_plans_are_the_five_levels_in_order(config):
    """The location plans are sub-district, district, region, state, zone."""
    assert tuple(plan.location_level for plan in location_plans(config)) == LEVELS


@pytest.mark.parametrize(
    ("coded", "expected"),
    [
        ({"mogadishu_sub_district": "hodan"}, ("hodan", "mogadishu", "banadir", "banadir", "scz")),
        ({"district": "mogadishu"}, ("NC", "mogadishu", "banadir", "banadir", "scz")),
        ({"district": "baidoa"}, ("NC", "baidoa", "bay", "south west state", "scz")),
        ({"district": "hargeysa"}, ("NC", "hargeysa", "woqooyi galbeed", "somaliland", "nwz")),
        ({"region": "bari"}, ("NC", "NC", "bari", "puntland", "nez")),
        ({"state": "somaliland"}, ("NC", "NC", "NC", "somaliland", "nwz")),
        ({"zone": "scz"}, ("NC", "NC", "NC", "NC", "scz")),
        ({"zone": "nwz"}, ("NC", "NC", "NC", "NC", "nwz")),
    ],
)
def test_one_coded_level_derives_all_five(config, run, coded, expected):
    """The single coded level gives every level through the hierarchy; a zone-only code keeps its zone."""
    assert _reconciled(config, run, **coded) == expected


def test_two_coded_levels_are_not_internally_consistent(config, run):
    """A checked sub-district plus a checked district is NIC at every level, even when they agree."""
    assert _reconciled(config, run, mogadishu_sub_district="hodan", district="mogadishu") == ("NIC",) * 5


def test_a_later_conflict_keeps_nic(config, run):
    """Once NIC, further codes do not undo it."""
    coded = {"mogadishu_sub_district": "hodan", "district": "baidoa", "zone": "scz"}
    assert _reconciled(config, run, **coded) == ("NIC",) * 5


def test_equal_control_codes_do_not_conflict(config, run):
    """NC at two levels shares one CodeID, so it is NC everywhere, not NIC."""
    assert _reconciled(config, run, mogadishu_sub_district="NC", district="NC") == ("NC",) * 5


def test_control_code_beside_a_location_conflicts(config, run):
    """NC at one level and a place at another differ in CodeID: NIC."""
    assert _reconciled(config, run, mogadishu_sub_district="NC", region="bari") == ("NIC",) * 5


def test_missing_answer_is_na_everywhere(config, run):
    """A respondent who never answered (NA at every level) stays NA at every level."""
    assert _reconciled(config, run, **{level: "NA" for level in LEVELS}) == ("NA",) * 5


def test_nothing_reviewed_is_nr_everywhere(config, run):
    """With NR at every level the location is NR."""
    assert _reconciled(config, run) == ("NR",) * 5


def test_stop_at_one_level_is_stop_everywhere(config, run):
    """A control code such as STOP is written at every level in that level's scheme."""
    [record] = reconcile_locations([_record(config, run, state="STOP")], config=config, run=run)
    assert _levels(config, record) == ("STOP",) * 5
    assert [record[p.coded_field]["SchemeID"] for p in location_plans(config)] == [
        p.scheme.scheme_id for p in location_plans(config)]


def test_written_labels_are_unchecked_pipeline_labels(config, run):
    """The reconciled labels are unchecked, carry the run's time and this step's origin, and are shared."""
    records = reconcile_locations([_record(config, run, district="baidoa"), _record(config, run, district="baidoa")],
                                  config=config, run=run)
    label = records[0]["region_coded"]
    assert label["Checked"] is False
    assert label["DateTimeUTC"] == run.label_time
    assert label["Origin"] == {"OriginID": LOCATION_RECONCILIATION_ORIGIN, "Name": "Pipeline Auto-Coder",
                               "OriginType": "External"}
    assert records[1]["region_coded"] is label


def test_all_five_levels_are_written_in_one_update(config, run):
    """The step adds one audit layer per record."""
    record = _record(config, run, district="baidoa")
    [result] = reconcile_locations([record], config=config, run=run)
    assert len(result.layers) == len(record.layers) + 1


def test_missing_location_field_is_an_error(config, run):
    """A record without a location label is an error naming the uid and the field."""
    record = Record.create(run.step("test/load"), {"uid": "u9"})
    with pytest.raises(RawDataError, match=r"record u9: field 'mogadishu_sub_district_coded'"):
        reconcile_locations([record], config=config, run=run)


def test_unknown_code_id_is_an_error(config, run):
    """A CodeID the level's scheme lacks names the record, the field and the code."""
    record = _record(config, run, district="baidoa")
    record = record.updated(run.step("test/break"), {"zone_coded": {**record["zone_coded"], "CodeID": "code-x"}})
    with pytest.raises(SchemeError, match=r"record u1: field 'zone_coded': CodeID 'code-x'"):
        reconcile_locations([record], config=config, run=run)
