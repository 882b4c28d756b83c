"""Rapid Pro keys translated, with the operational corrections C1-C4 (pipeline.md 7.3)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from redss_pipeline.core.config import load_config
from redss_pipeline.core.errors import RawDataError
from redss_pipeline.core.records import Record
from redss_pipeline.core.run_context import RunContext
from redss_pipeline.export.coda import CodedMessages, message_id, read_coded_file
from redss_pipeline.generate.corrections import translate_rapid_pro_keys, ws_redirect_texts

CONFIG = load_config()
RUN = RunContext("tester@example.org", datetime(2019, 1, 20, tzinfo=timezone.utc))
LOAD = RUN.step("test/load")
WS_SCHEME_ID = "Scheme-fffffc6e"
WS_S01E02 = "code-9a5f15d6"
WS_OTHER = "code-70ac05ab"


def _message(n: int, text: str, time: str, run_id: int = 100, uid: str = "avf-phone-uuid-1", **extra) -> Record:
    flow = f"csap_s01e0{n}_activation"
    key = f"Rqa_S01E0{n}"
    return Record.create(
        LOAD,
        {
            "avf_phone_id": uid,
            f"{key} (Value) - {flow}": text,
            f"{key} (Text) - {flow}": text + " (as typed)",
            f"{key} (Time) - {flow}": time,
            f"{key} (Run ID) - {flow}": run_id,
            **extra,
        },
    )


def _ws_file(*messages: tuple[str, list[dict]]) -> CodedMessages:
    return CodedMessages.from_json(
        [{"MessageID": message_id(text), "Text": text, "CreationDateTimeUTC": "2018-12-20T00:00:00+00:00",
          "Labels": labels} for text, labels in messages],
        path="Coded Coda Files/s01e03.json",
    )


def _ws_label(code_id: str, checked: bool | None, when: str = "2019-01-10T00:00:00.000Z") -> dict:
    label = {"SchemeID": WS_SCHEME_ID, "CodeID": code_id, "DateTimeUTC": when,
             "Origin": {"OriginID": "coder@example.org", "Name": "Coder", "OriginType": "Manual"}}
    if checked is not None:
        label["Checked"] = checked
    return label


def _translate(records: list[Record], ws: CodedMessages | None = None) -> list[Record]:
    return translate_rapid_pro_keys(records, config=CONFIG, run=RUN, ws_coded=ws or _ws_file())


# -- 7.3.1 ---------------------------------------------------------------------------------------------------


def test_show_id_and_message_come_from_the_shows_value_key():
    """rqa_message is the (Value) text and show_id the show's number."""
    (record,) = _translate([_message(3, "hello", "2018-12-18T10:00:00+00:00")])
    assert (record["rqa_message"], record["show_id"]) == ("hello", 3)


def test_record_without_a_show_answer_gets_no_show():
    """A run with no show answer gets no show id, message or show raw key; its keys are still renamed."""
    (record,) = _translate([Record.create(LOAD, {"avf_phone_id": "u"})])
    assert dict(record) == {"avf_phone_id": "u", "uid": "u"}


def test_two_show_answers_in_one_record_are_an_error():
    """At most one show's answer may be present."""
    record = _message(1, "a", "2018-12-03T00:00:00+00:00").updated(
        LOAD, {"Rqa_S01E02 (Value) - csap_s01e02_activation": "b"}
    )
    with pytest.raises(RawDataError, match=r"record avf-phone-uuid-1: field 'Rqa_S01E02 \(Value\).*two shows"):
        _translate([record])


# -- 7.3.2 ---------------------------------------------------------------------------------------------------


def _corrected(n: int, time: str, text: str = "some answer", redirected: bool = False) -> Record:
    """The message of show ``n`` translated; ``redirected``: its text is coded s01e02 in the WS scheme."""
    ws = _ws_file((text, [_ws_label(WS_S01E02, True)])) if redirected else None
    (record,) = _translate([_message(n, text, time)], ws)
    return record


def test_c1_moves_a_checked_s01e02_text_to_week_2_with_a_faked_date():
    """C1: a week-3 text coded s01e02 moves to show 2 with sent_on 2018-12-15T00:00:00+03:00."""
    record = _corrected(3, "2018-12-18T10:00:00+00:00", "wrong week", redirected=True)
    assert (record["show_id"], record["sent_on"]) == (2, "2018-12-15T00:00:00+03:00")


def test_c1_takes_precedence_over_c2():
    """A redirected text sent after 2018-12-23 goes to week 2, not week 4."""
    record = _corrected(3, "2018-12-25T10:00:00+03:00", "wrong week", redirected=True)
    assert (record["show_id"], record["sent_on"]) == (2, "2018-12-15T00:00:00+03:00")


def test_c2_moves_late_week_3_messages_to_week_4_keeping_their_time():
    """C2: a week-3 message strictly after 2018-12-23T00:00:00+03:00 becomes show 4, keeping its own time."""
    record = _corrected(3, "2018-12-22T21:00:00.000001+00:00")
    assert record["show_id"] == 4
    assert record["sent_on"] == "2018-12-22T21:00:00.000001+00:00"


def test_c2_does_not_move_a_message_sent_exactly_at_the_change_over():
    """C2 is strictly after: 2018-12-23T00:00:00+03:00 (= 2018-12-22T21:00:00Z) stays in week 3."""
    assert _corrected(3, "2018-12-22T21:00:00+00:00")["show_id"] == 3
    assert _corrected(3, "2018-12-23T00:00:00+03:00")["show_id"] == 3


@pytest.mark.parametrize(
    "time, moved",
    [
        ("2019-01-17T09:03:10.999999+00:00", False),
        ("2019-01-17T09:03:11+00:00", True),  # start 12:03:11+03:00, inclusive
        ("2019-01-17T09:24:41.999999+00:00", True),
        ("2019-01-17T09:24:42+00:00", False),  # end 12:24:42+03:00, exclusive
    ],
)
def test_c3_window_includes_its_start_and_excludes_its_end(time, moved):
    """C3: week-4 messages in [12:03:11, 12:24:42) on 2019-01-17 go to week 2, faked to 2018-12-13."""
    record = _corrected(4, time)
    if moved:
        assert (record["show_id"], record["sent_on"]) == (2, "2018-12-13T00:00:00+03:00")
    else:
        assert (record["show_id"], record["sent_on"]) == (4, time)


@pytest.mark.parametrize(
    "time, moved",
    [
        ("2019-01-12T06:45:11+00:00", False),
        ("2019-01-12T09:45:12+03:00", True),  # start inclusive
        ("2019-01-12T06:51:56+00:00", True),
        ("2019-01-12T09:51:57+03:00", False),  # end exclusive
    ],
)
def test_c4_window_includes_its_start_and_excludes_its_end(time, moved):
    """C4: week-4 messages in [09:45:12, 09:51:57) on 2019-01-12 go to week 2, faked to 2018-12-14."""
    record = _corrected(4, time)
    if moved:
        assert (record["show_id"], record["sent_on"]) == (2, "2018-12-14T00:00:00+03:00")
    else:
        assert (record["show_id"], record["sent_on"]) == (4, time)


def test_time_windows_apply_only_to_their_own_show():
    """A week-2 message in the C3 window is not touched, nor is a week-1 message after the C2 change-over."""
    assert _corrected(2, "2019-01-17T09:10:00+00:00")["show_id"] == 2
    assert _corrected(1, "2018-12-25T00:00:00+03:00")["show_id"] == 1


def test_each_correction_is_named_in_the_audit_trail():
    """The step that moved a message names its rule."""
    record = _corrected(4, "2019-01-12T09:46:00+03:00")
    assert record.history("show_id")[-1].step.source == "generate/translate_rapid_pro_keys/C4"


def test_unparseable_time_is_an_error_naming_the_record_and_key():
    """A week-4 time that is not ISO 8601 stops the run with a clear message."""
    with pytest.raises(RawDataError, match=r"record avf-phone-uuid-1: field 'Rqa_S01E04 \(Time\).*not an ISO 8601"):
        _corrected(4, "yesterday")


# -- the WS lookup -----------------------------------------------------------------------------------------------


def _redirected(ws: CodedMessages, text: str = "wrong week") -> frozenset[str]:
    return ws_redirect_texts([_message(3, text, "2018-12-18T00:00:00+00:00")], ws, config=CONFIG, run=RUN)


def test_only_a_checked_s01e02_label_counts():
    """A checked s01e02 label redirects; a checked label of another dataset does not."""
    assert _redirected(_ws_file(("wrong week", [_ws_label(WS_S01E02, True)]))) == {"wrong week"}
    assert _redirected(_ws_file(("wrong week", [_ws_label(WS_OTHER, True)]))) == frozenset()


def test_unchecked_ws_label_counts_as_not_reviewed():
    """An unchecked (or Checked-less) s01e02 label does not redirect and does not crash (2019 crashed)."""
    assert _redirected(_ws_file(("wrong week", [_ws_label(WS_S01E02, False)]))) == frozenset()
    assert _redirected(_ws_file(("wrong week", [_ws_label(WS_S01E02, None)]))) == frozenset()


def test_newest_ws_label_decides():
    """An unchecked newest label outweighs an older checked one (labels are newest first in the file)."""
    labels = [_ws_label(WS_S01E02, False, "2019-01-11T00:00:00.000Z"), _ws_label(WS_S01E02, True)]
    assert _redirected(_ws_file(("wrong week", labels))) == frozenset()


def test_missing_coded_file_redirects_nothing(tmp_path):
    """Without Coded Coda Files/s01e03.json (a first run) nothing is redirected and nothing crashes."""
    ws = read_coded_file(tmp_path / "Coded Coda Files" / "s01e03.json")
    records = _translate([_message(3, "wrong week", "2018-12-18T10:00:00+00:00")], ws)
    assert records[0]["show_id"] == 3 and records[0]["rqa_s01e03_raw"] == "wrong week"


def test_lookup_writes_nothing_on_the_records():
    """The WS import works on copies: the real records gain no id or WS field."""
    original = _message(3, "wrong week", "2018-12-18T10:00:00+00:00")
    ws = _ws_file(("wrong week", [_ws_label(WS_S01E02, True)]))
    ws_redirect_texts([original], ws, config=CONFIG, run=RUN)
    assert len(original.layers) == 1


# -- 7.3.3 and 7.3.4 ----------------------------------------------------------------------------------------------


def test_keys_are_renamed_to_pipeline_keys():
    """uid, the run id of the original flow, sent_on from the show's time, and survey raw/time keys."""
    record = _message(
        2, "answer", "2018-12-10T05:30:01.123456+00:00", run_id=42,
        **{"Gender (Value) - csap_demog": "f", "Gender (Time) - csap_demog": "2018-12-01T00:00:00+00:00",
           "Mog_Sub_District (Value) - csap_demog": "hodan",
           "Involved (Value) - csap_evaluation": "haa", "Involved (Text) - csap_evaluation": "HAA!"},
    )
    (out,) = _translate([record])
    assert out["uid"] == "avf-phone-uuid-1"
    assert out["rqa_s01e02_run_id"] == 42
    assert out["sent_on"] == "2018-12-10T05:30:01.123456+00:00"
    assert (out["gender_raw"], out["gender_time"]) == ("f", "2018-12-01T00:00:00+00:00")
    assert out["mogadishu_sub_district_raw"] == "hodan"
    assert out["involved_raw"] == "haa"  # the (Value) key, not (Text)
    assert "age_raw" not in out and "involved_time" not in out


def test_faked_sent_on_wins_and_the_run_id_follows_the_original_flow():
    """A week-3 message moved to week 2 keeps its faked time, has rqa_s01e03_run_id and rqa_s01e02_raw only."""
    ws = _ws_file(("wrong week", [_ws_label(WS_S01E02, True)]))
    (out,) = _translate([_message(3, "wrong week", "2018-12-18T10:00:00+00:00", run_id=7)], ws)
    assert out["sent_on"] == "2018-12-15T00:00:00+03:00"
    assert out["rqa_s01e03_run_id"] == 7 and "rqa_s01e02_run_id" not in out
    assert out["rqa_s01e02_raw"] == "wrong week"
    assert not any(f"rqa_s01e0{n}_raw" in out for n in (1, 3, 4))


def test_c2_message_gets_the_week_4_raw_key_and_keeps_its_time():
    """A late week-3 message is answered under rqa_s01e04_raw with its own time."""
    (out,) = _translate([_message(3, "late", "2018-12-24T08:00:00+00:00")])
    assert out["rqa_s01e04_raw"] == "late" and "rqa_s01e03_raw" not in out
    assert out["sent_on"] == "2018-12-24T08:00:00+00:00"


def test_existing_pipeline_key_is_not_overwritten():
    """A rename writes only when the new key is not yet present."""
    record = _message(1, "a", "2018-12-03T00:00:00+00:00").updated(LOAD, {"uid": "kept"})
    (out,) = _translate([record])
    assert out["uid"] == "kept"


def test_raw_key_needs_a_valid_show_id():
    """A record with rqa_message but no usable show_id is an error."""
    record = Record.create(LOAD, {"uid": "u", "rqa_message": "x", "show_id": 9})
    with pytest.raises(RawDataError, match=r"field 'show_id': expected a show number 1..4, got 9"):
        _translate([record])


def test_record_order_is_kept():
    """Translation never reorders records."""
    records = [_message(n, f"t{n}", "2018-12-10T00:00:00+00:00", run_id=n) for n in (4, 1, 3, 2)]
    assert [r["show_id"] for r in _translate(records)] == [4, 1, 3, 2]


def test_translation_is_one_layer_naming_the_correction_that_moved_the_message():
    """translate_rapid_pro_keys writes one layer per record; a moved message's layer names its rule."""
    moved, kept = _translate([_message(4, "burst", "2019-01-17T12:10:00+03:00"), _message(1, "a", "2018-12-03T00:00:00+00:00")])
    assert len(moved.layers) == len(kept.layers) == 2
    assert moved.history("show_id")[-1].step.source == "generate/translate_rapid_pro_keys/C3"
    assert kept.history("uid")[-1].step.source == "generate/translate_rapid_pro_keys"
    assert [c.value for c in moved.history("show_id")] == [2]  # the corrected show only, set once
