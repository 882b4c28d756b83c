"""Show messages auto-coded: filters, noise, NA labels, channel keys, Coda messages and ICR (pipeline.md 7.4)."""

from __future__ import annotations

import dataclasses
import hashlib
import random
from datetime import datetime, timezone

import pytest

from redss_pipeline.core.config import TimeRange, load_config
from redss_pipeline.core.errors import PipelineError, RawDataError
from redss_pipeline.core.records import Record
from redss_pipeline.core.run_context import RunContext
from redss_pipeline.core.scratch_database import ScratchDatabase
from redss_pipeline.generate.show_messages import (
    EMPTY_RUN,
    OUTSIDE_WINDOW,
    TEST_RUN,
    IcrRow,
    IcrSamples,
    MessageFilters,
    RqaCodaExport,
    WeeklessMessages,
    assign_rqa_message_ids,
    flag_noise,
    label_other_shows_na,
    set_channel_keys,
)

CONFIG = load_config()
RUN = RunContext("tester@example.org", datetime(2019, 1, 20, tzinfo=timezone.utc))
LOAD = RUN.step("test/load")
NA_ID = "code-NA-f93d3eb7"  # the NA CodeID every shipped scheme shares
CHANNEL_KEYS = ("sms_ad", "radio_promo", "radio_show", "non_logical_time")
WEEK_KEYS = tuple(f"radio_participation_s01e0{n}" for n in range(1, 5))


def _message(n: int, text: str, sent_on: str = "2018-12-10T12:00:00+03:00", run_id: int | None = 1,
             uid: str = "avf-phone-uuid-1", **extra) -> Record:
    data = {"uid": uid, f"rqa_s01e0{n}_raw": text, "sent_on": sent_on, **extra}
    if run_id is not None:
        data[f"rqa_s01e0{n}_run_id"] = run_id
    return Record.create(LOAD, data)


def _prepared(records: list[Record]) -> list[Record]:
    """Records after 7.4.4-7.4.6 and the ids of 7.4.8."""
    records = flag_noise(records, config=CONFIG, run=RUN)
    records = label_other_shows_na(records, config=CONFIG, run=RUN)
    records = set_channel_keys(records, config=CONFIG, run=RUN)
    return assign_rqa_message_ids(records, config=CONFIG, run=RUN)


def _coda_files(records: list[Record]) -> dict[str, list[dict]]:
    """Each show's Coda messages, the records added in order as the chunk runner adds them (as one chunk)."""
    with ScratchDatabase() as scratch:
        export = RqaCodaExport(CONFIG, scratch)
        export.store(export.entries(range(len(records)), records))
        return {name: list(messages) for name, messages in export.files().items()}


def _icr_samples(records: list[Record]) -> dict[str, list[IcrRow]]:
    """The ICR rows drawn from the records, added in order as the chunk runner adds them (as one chunk)."""
    with ScratchDatabase() as scratch:
        samples = IcrSamples(CONFIG, scratch)
        samples.store(samples.candidates(range(len(records)), records))
        return samples.samples()


# -- filters ---------------------------------------------------------------------------------------------------


def test_test_runs_are_dropped():
    """A record whose test_run is true goes; false or absent stays."""
    records = [_message(1, "a", test_run=True), _message(1, "b", test_run=False), _message(1, "c")]
    assert [MessageFilters(CONFIG).dropped_by(r) for r in records] == [TEST_RUN, None, None]


def test_runs_without_a_show_answer_are_dropped():
    """Only records holding an RQA raw key survive."""
    empty = Record.create(LOAD, {"uid": "u", "sent_on": "2018-12-10T12:00:00+03:00"})
    assert [MessageFilters(CONFIG).dropped_by(r) for r in [empty, _message(4, "d")]] == [EMPTY_RUN, None]


def test_project_window_includes_both_ends():
    """2018-12-02T00:00:00+03:00 and 2018-12-31T00:00:00+03:00 are kept; a microsecond outside is not."""
    times = [
        "2018-12-01T20:59:59.999999+00:00",
        "2018-12-01T21:00:00+00:00",
        "2018-12-31T00:00:00+03:00",
        "2018-12-30T21:00:00.000001+00:00",
    ]
    dropped = [MessageFilters(CONFIG).dropped_by(_message(1, t, sent_on=t)) for t in times]
    assert dropped == [OUTSIDE_WINDOW, None, None, OUTSIDE_WINDOW]


# -- noise -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, noise",
    [
        ("ok", True),
        ("Mahad sanid", True),
        ("short", True),
        ("", True),
        ("hello there", False),
        ("haa", False),  # a Somali yes looks demographic
        ("m", False),  # reads as male
        ("25", False),  # reads as an age
        ("to", False),  # 70 after the digit look-alikes
        ("mogadishu", False),  # a district
        ("waan ku raacsanahay", False),
    ],
)
def test_noise_flag_follows_the_noise_rule_and_its_demographic_exceptions(text, noise):
    """noise is stored as a bool, true for acknowledgements and short texts unless they look demographic."""
    (record,) = flag_noise([_message(2, text)], config=CONFIG, run=RUN)
    assert record["noise"] is noise


# -- NA labels for the other shows ------------------------------------------------------------------------------


def test_other_shows_get_na_labels_shaped_by_their_schemes():
    """Reasons fields get a one-element list, binary fields a single label; the message's own show gets none."""
    (record,) = label_other_shows_na([_message(2, "answer")], config=CONFIG, run=RUN)
    assert "rqa_s01e02_coded" not in record and "rqa_s01e02_integrate_return_coded" not in record
    for field, scheme_id in [("rqa_s01e01_coded", "Scheme-d7eb83ef"), ("rqa_s01e03_coded", "Scheme-5b60cc33"),
                             ("rqa_s01e04_coded", "Scheme-3abe50d3")]:
        value = record[field]
        assert isinstance(value, list) and len(value) == 1
        assert (value[0]["SchemeID"], value[0]["CodeID"]) == (scheme_id, NA_ID)
    binary = record["rqa_s01e03_yes_no_amb_coded"]
    assert isinstance(binary, dict)
    assert (binary["SchemeID"], binary["CodeID"], binary["Checked"]) == ("Scheme-1161eddc", NA_ID, False)
    assert binary["DateTimeUTC"] == "2019-01-20T00:00:00.000000+00:00"
    assert binary["Origin"]["Name"] == "Pipeline Auto-Coder" and binary["Origin"]["OriginType"] == "External"


# -- channel and week keys ----------------------------------------------------------------------------------------


def _keys(sent_on: str) -> dict[str, str]:
    (record,) = set_channel_keys([_message(1, "x", sent_on=sent_on)], config=CONFIG, run=RUN)
    return {k: record[k] for k in CHANNEL_KEYS + WEEK_KEYS}


def _only(*true_keys: str) -> dict[str, str]:
    return {k: "true" if k in true_keys else "false" for k in CHANNEL_KEYS + WEEK_KEYS}


@pytest.mark.parametrize(
    "sent_on, true_keys",
    [
        ("2018-12-02T00:00:00+03:00", ("radio_promo", "radio_participation_s01e01")),
        ("2018-12-02T19:25:18.999999+03:00", ("radio_promo", "radio_participation_s01e01")),
        ("2018-12-02T19:25:19+03:00", ("sms_ad", "radio_participation_s01e01")),
        ("2018-12-03T00:00:00+03:00", ("radio_promo", "radio_participation_s01e01")),
        ("2018-12-05T00:00:00+03:00", ("non_logical_time", "radio_participation_s01e01")),
        ("2018-12-06T00:00:00+03:00", ("radio_show", "radio_participation_s01e01")),
        ("2018-12-07T00:00:00+03:00", ("non_logical_time", "radio_participation_s01e01")),
        ("2018-12-08T23:59:59.999999+03:00", ("non_logical_time", "radio_participation_s01e01")),
        ("2018-12-09T00:00:00+03:00", ("radio_promo", "radio_participation_s01e02")),
        ("2018-12-23T19:00:45+03:00", ("sms_ad", "radio_participation_s01e04")),
        ("2018-12-30T23:59:59+03:00", ("non_logical_time", "radio_participation_s01e04")),
    ],
)
def test_channel_and_week_keys_at_window_boundaries(sent_on, true_keys):
    """Every range is [start, end): a message at a boundary belongs to the range that starts there."""
    assert _keys(sent_on) == _only(*true_keys)


@pytest.mark.parametrize(
    "sent_on, true_keys",
    [
        ("2018-12-15T00:00:00+03:00", ("non_logical_time", "radio_participation_s01e02")),  # C1
        ("2018-12-13T00:00:00+03:00", ("radio_show", "radio_participation_s01e02")),  # C3
        ("2018-12-14T00:00:00+03:00", ("non_logical_time", "radio_participation_s01e02")),  # C4
    ],
)
def test_faked_times_of_corrected_messages(sent_on, true_keys):
    """The corrections' faked sent_on values give the channels pipeline.md section 8 lists."""
    assert _keys(sent_on) == _only(*true_keys)


def test_message_at_exactly_the_project_end_is_non_logical():
    """2018-12-31T00:00:00+03:00: non_logical_time true, every channel and week false (2019 crashed)."""
    assert _keys("2018-12-31T00:00:00+03:00") == _only("non_logical_time")


def test_participation_is_by_time_not_by_show():
    """A late reply in the s01e01 flow sent on 12-10 counts as s01e02 participation."""
    (record,) = set_channel_keys([_message(1, "late", sent_on="2018-12-10T12:00:00+03:00")], config=CONFIG, run=RUN)
    assert record["radio_participation_s01e02"] == "true" and record["radio_participation_s01e01"] == "false"


def _weekless(config, *sent_on: str) -> WeeklessMessages:
    weekless = WeeklessMessages()
    set_channel_keys([_message(1, "x", sent_on=time) for time in sent_on], config=config, run=RUN, weekless=weekless)
    return weekless


def test_messages_in_no_week_are_counted_with_the_earliest_time():
    """Without the s01e02 week, 12-09 to 12-16 is a gap; the project end, where the s01e04 week ends, is not a gap
    (the project window keeps it, no [start, end) week can hold it) and is not counted."""
    weeks = {name: ranges for name, ranges in CONFIG.weeks.items() if name != "radio_participation_s01e02"}
    config = dataclasses.replace(CONFIG, weeks=weeks)
    weekless = _weekless(config, "2018-12-12T12:00:00+03:00", "2018-12-08T23:59:59+03:00", "2018-12-09T00:00:00+03:00",
                         "2018-12-15T23:59:59+03:00", "2018-12-16T00:00:00+03:00", "2018-12-31T00:00:00+03:00")
    assert (weekless.count, weekless.earliest) == (3, datetime(2018, 12, 8, 21))  # 12-09 00:00 +03:00, in UTC
    assert _weekless(CONFIG, "2018-12-31T00:00:00+03:00", "2018-12-30T23:59:59+03:00").count == 0


def test_the_project_end_counts_in_no_week_when_no_week_ends_there():
    """A last week that ends before the project end leaves the end itself, too, in no week."""
    weeks = dict(CONFIG.weeks)
    weeks["radio_participation_s01e04"] = (TimeRange(datetime.fromisoformat("2018-12-23T00:00:00+03:00"),
                                                     datetime.fromisoformat("2018-12-30T00:00:00+03:00")),)
    weekless = _weekless(dataclasses.replace(CONFIG, weeks=weeks), "2018-12-31T00:00:00+03:00",
                         "2018-12-30T00:00:00+03:00", "2018-12-29T23:59:59+03:00")
    assert (weekless.count, weekless.earliest) == (2, datetime(2018, 12, 29, 21))


def test_overlapping_channel_windows_are_an_error():
    """Two channels containing one time means the configuration is wrong; the error names both."""
    overlapping = dict(CONFIG.channels)
    overlapping["radio_show"] = CONFIG.channels["radio_show"] + (
        TimeRange(datetime.fromisoformat("2018-12-02T00:00:00+03:00"), datetime.fromisoformat("2018-12-03T00:00:00+03:00")),
    )
    config = dataclasses.replace(CONFIG, channels=overlapping)
    with pytest.raises(PipelineError, match="'radio_promo' and 'radio_show' windows both contain"):
        set_channel_keys([_message(1, "x", sent_on="2018-12-02T10:00:00+03:00")], config=config, run=RUN)


# -- message ids and Coda files ------------------------------------------------------------------------------------


def test_ids_only_on_non_noise_answers():
    """A non-noise answer gets the SHA-256 of its text; a noise message gets no id."""
    records = _prepared([_message(1, "hello there"), _message(1, "ok")])
    assert records[0]["rqa_s01e01_raw_id"] == hashlib.sha256("hello there".encode("utf-8")).hexdigest()
    assert "rqa_s01e01_raw_id" not in records[1]


def test_rqa_coda_files_hold_non_noise_messages_without_labels():
    """Each show's file: its non-noise texts, de-duplicated, no labels, creation time in UTC."""
    records = _prepared([
        _message(2, "integration helps us", sent_on="2018-12-15T00:00:00+03:00"),
        _message(2, "ok"),
        _message(2, "integration helps us", sent_on="2018-12-16T00:00:00+03:00", uid="avf-phone-uuid-2"),
        _message(1, "we need water here"),
    ])
    files = _coda_files(records)
    assert list(files) == ["s01e01.json", "s01e02.json", "s01e03.json", "s01e04.json"]
    assert files["s01e03.json"] == [] and files["s01e04.json"] == []
    assert files["s01e02.json"] == [{
        "MessageID": hashlib.sha256(b"integration helps us").hexdigest(),
        "Text": "integration helps us",
        "CreationDateTimeUTC": "2018-12-14T21:00:00+00:00",
        "Labels": [],
    }]
    assert [m["Text"] for m in files["s01e01.json"]] == ["we need water here"]


# -- ICR -----------------------------------------------------------------------------------------------------------


def test_icr_rows_are_the_seeded_sample_of_the_candidates_in_order():
    """With 250 candidates, 200 rows in random.Random(0).sample order; noise and other shows are not candidates."""
    records = [_message(1, f"long enough answer {i}", run_id=1000 + i) for i in range(250)]
    records.insert(10, _message(1, "ok", run_id=1))  # noise
    records.insert(20, _message(2, "another show's answer", run_id=2))
    samples = _icr_samples(_prepared(records))
    candidates = [IcrRow(1000 + i, f"long enough answer {i}", "2018-12-10T12:00:00+03:00") for i in range(250)]
    assert samples["s01e01.csv"] == random.Random(0).sample(candidates, 200)
    assert samples["s01e01.csv"][:3] == [candidates[216], candidates[98], candidates[194]]
    assert samples["s01e02.csv"] == [IcrRow(2, "another show's answer", "2018-12-10T12:00:00+03:00")]


def test_icr_with_fewer_candidates_than_the_sample_size_is_a_permutation():
    """Five candidates give all five, shuffled as random.Random(0).sample(candidates, 5)."""
    records = [_message(4, f"answer number {i}", run_id=i) for i in range(5)]
    rows = _icr_samples(_prepared(records))["s01e04.csv"]
    assert [row.run_id for row in rows] == [3, 4, 0, 1, 2]


def test_icr_run_id_is_empty_for_a_message_moved_from_another_flow():
    """A week-3 message corrected into week 2 has no rqa_s01e02_run_id, so its cell is empty."""
    moved = _message(2, "moved into week two", run_id=None, rqa_s01e03_run_id=77)
    assert _icr_samples(_prepared([moved]))["s01e02.csv"] == [
        IcrRow(None, "moved into week two", "2018-12-10T12:00:00+03:00")]


def test_icr_refuses_a_coded_field_other_than_one_na_label():
    """A candidate whose show field already holds something other than [NA] breaks the invariant."""
    (record,) = _prepared([_message(1, "hello there")])
    bad = record.updated(LOAD, {"rqa_s01e02_coded": record["rqa_s01e03_coded"] * 2})
    with pytest.raises(RawDataError, match="record avf-phone-uuid-1: field 'rqa_s01e02_coded': expected exactly one NA"):
        _icr_samples([bad])
