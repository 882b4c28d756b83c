"""Coda messages files: export rules, exact file layout, coded-file reading and the two imports
(redss_pipeline.export.coda; spec coda.md sections 4 and 5)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

import redss_pipeline.export.coda as coda_module
from redss_pipeline.core.code_scheme import NA, NC, NS, load_code_scheme
from redss_pipeline.core.errors import CodaFileError, PipelineError
from redss_pipeline.core.labels import MANUALLY_UNCODED, control_label, make_label
from redss_pipeline.core.records import Record, Step
from redss_pipeline.core.scratch_database import ScratchDatabase
from redss_pipeline.export.coda import (
    MULTI_CODED_IMPORT_ORIGIN,
    SINGLE_CODED_IMPORT_ORIGIN,
    CodaExport,
    CodedMessages,
    MultiCodedImport,
    SingleCodedImport,
    coda_messages,
    message_id,
    messages_coded_in,
    read_coded_file,
    write_coda_file,
)

SCHEME_DIR = Path(__file__).resolve().parents[1] / "code_schemes"
GENDER = load_code_scheme(SCHEME_DIR / "gender.json")
S01E01 = load_code_scheme(SCHEME_DIR / "s01e01.json")
WS_CORRECT = load_code_scheme(SCHEME_DIR / "ws_correct_dataset.json")
LOCATION_SCHEMES = [
    ("mogadishu_sub_district_coded", load_code_scheme(SCHEME_DIR / "mogadishu_sub_district.json")),
    ("district_coded", load_code_scheme(SCHEME_DIR / "district.json")),
    ("region_coded", load_code_scheme(SCHEME_DIR / "region.json")),
    ("state_coded", load_code_scheme(SCHEME_DIR / "state.json")),
    ("zone_coded", load_code_scheme(SCHEME_DIR / "zone.json")),
]

MALE, FEMALE = "code-63dcde9a", "code-86a4602c"
FINANCIAL, JOBS, SKILLS = "code-1c2837d7", "code-aaaab0f3", "code-8bd1ea02"
WS_TO_S01E02 = "code-9a5f15d6"
NA_ID, NS_ID, NC_ID, NR_ID = "code-NA-f93d3eb7", "code-NS-2c11b7c9", "code-NC-42f1d983", "code-NR-5e3eee23"

RUN_TIME = "2019-02-01T09:00:00.000001+00:00"
LOAD = Step("tester", "test/load", 1548000000.0)
IMPORT = Step("tester", "test/import", 1549000000.0)


def _record(**data) -> Record:
    return Record.create(LOAD, data)


def _suggestion(scheme, code_id, origin="redss_pipeline.cleaners.gender@1"):
    return make_label(scheme, scheme.code_by_id(code_id), origin_id=origin, label_time=RUN_TIME)


def _na(scheme):
    return control_label(scheme, NA, origin_id="redss_pipeline.surveys.missing@1", label_time=RUN_TIME)


def _coder(scheme_id, code_id, when, checked=True, **extra):
    """A label as Coda's UI writes it (Dart UTC time ending in Z)."""
    label = {"SchemeID": scheme_id, "CodeID": code_id, "DateTimeUTC": when,
             "Origin": {"OriginID": "coder.a@example.org", "Name": "Coder A", "OriginType": "Manual"}}
    if checked is not None:
        label["Checked"] = checked
    label.update(extra)
    return label


def _coded(*messages) -> CodedMessages:
    """A coded file held in memory; each message is (text, [labels newest first])."""
    return CodedMessages.from_json(
        [{"MessageID": message_id(text), "Text": text, "CreationDateTimeUTC": "2018-12-10T05:30:01+00:00",
          "Labels": labels, "SequenceNumber": n} for n, (text, labels) in enumerate(messages)],
        path="Coded Coda Files/test.json",
    )


def _gender_record(text, **extra):
    return _record(gender_raw=text, gender_raw_id=message_id(text), gender_time="2018-12-10T08:30:01+03:00", **extra)


def _decided(records, merge, *, id_field, coded_field):
    """Each record with ``coded_field`` as the import ``merge`` decides it for the record's message (its
    ``id_field``), written by the import step only where it changes, as the manual codes step writes it; records
    without the id as they are."""
    decided = []
    for record in records:
        if record.get(id_field) is not None:
            value = merge.value(record[id_field], record.get(coded_field))
            if value is not record.get(coded_field):
                record = record.updated(IMPORT, {coded_field: value})
        decided.append(record)
    return decided


def _import_gender(records, coded, source_file="Coded Coda Files/gender.json"):
    merge = SingleCodedImport(coded, coded_field="gender_coded", scheme=GENDER, label_time=RUN_TIME,
                              source_file=source_file)
    return _decided(records, merge, id_field="gender_raw_id", coded_field="gender_coded")


def _rqa_record(text):
    return _record(rqa_s01e01_raw=text, rqa_s01e01_raw_id=message_id(text), sent_on="2018-12-10T08:30:01+03:00")


def _import_s01e01(records, coded):
    merge = MultiCodedImport(coded, coded_field="rqa_s01e01_coded", scheme=S01E01, label_time=RUN_TIME,
                             source_file="Coded Coda Files/s01e01.json")
    return _decided(records, merge, id_field="rqa_s01e01_raw_id", coded_field="rqa_s01e01_coded")


# -- message ids ---------------------------------------------------------------------------------------------------


def test_message_id_is_the_sha256_hex_of_the_utf8_text():
    """The MessageID of a text is its SHA-256 in lower-case hex, over UTF-8 bytes."""
    assert message_id("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert message_id("\u00e9") == hashlib.sha256(b"\xc3\xa9").hexdigest()


# -- writing the file ----------------------------------------------------------------------------------------------


def test_write_coda_file_writes_the_exact_2019_layout(tmp_path):
    """Sorted keys, indent 2, lines ending in ", ", non-ASCII as \\uXXXX, and no newline at the end."""
    label = _suggestion(GENDER, MALE)
    messages = [
        {"MessageID": "m1", "Text": "Lab é\u2019", "CreationDateTimeUTC": "2018-12-10T05:30:01+00:00",
         "Labels": [label]},
        {"MessageID": "m2", "Text": "naag", "CreationDateTimeUTC": "2018-12-11T05:30:01.500000+00:00",
         "Labels": []},
    ]
    path = tmp_path / "Outputs" / "Coda Files" / "gender.json"
    write_coda_file(path, messages)
    expected = (
        '[\n'
        '  {\n'
        '    "CreationDateTimeUTC": "2018-12-10T05:30:01+00:00", \n'
        '    "Labels": [\n'
        '      {\n'
        '        "Checked": false, \n'
        '        "CodeID": "code-63dcde9a", \n'
        '        "DateTimeUTC": "2019-02-01T09:00:00.000001+00:00", \n'
        '        "Origin": {\n'
        '          "Name": "Pipeline Auto-Coder", \n'
        '          "OriginID": "redss_pipeline.cleaners.gender@1", \n'
        '          "OriginType": "External"\n'
        '        }, \n'
        '        "SchemeID": "Scheme-12cb6f95"\n'
        '      }\n'
        '    ], \n'
        '    "MessageID": "m1", \n'
        '    "Text": "Lab \\u00e9\\u2019"\n'
        '  }, \n'
        '  {\n'
        '    "CreationDateTimeUTC": "2018-12-11T05:30:01.500000+00:00", \n'
        '    "Labels": [], \n'
        '    "MessageID": "m2", \n'
        '    "Text": "naag"\n'
        '  }\n'
        ']'
    )
    assert path.read_bytes() == expected.encode("ascii")


def test_write_coda_file_writes_messages_as_they_come_and_counts_them(tmp_path):
    """Messages may come one by one (from the scratch database), more than are encoded at once: the file is the
    one a list would give."""
    messages = [{"MessageID": f"m{n}", "Text": f"t\u00e9{n}", "CreationDateTimeUTC": "2018-12-10T05:30:01+00:00",
                 "Labels": [_suggestion(GENDER, MALE)] * (n % 3)} for n in range(2_500)]
    path = tmp_path / "gender.json"
    assert write_coda_file(path, (message for message in messages)) == 2_500
    assert path.read_bytes() == json.dumps(messages, sort_keys=True, indent=2, separators=(", ", ": "),
                                           ensure_ascii=True).encode("ascii")


def test_write_coda_file_lays_out_many_distinct_labels_as_json_does(tmp_path):
    """More distinct labels than the writer remembers at once, with nested metadata, numbers, lists and non-ASCII
    text, in messages of none to three labels: the file is the one ``json.dumps`` gives for the list."""
    def label(n: int) -> dict:
        return {"SchemeID": f"Scheme-{n % 7}", "CodeID": f"code-{n}", "DateTimeUTC": f"2019-02-01T09:00:{n % 60:02d}Z",
                "Checked": n % 2 == 0, "Confidence": n / 3,
                "Origin": {"OriginID": f"coder{n % 5}@example.org", "Name": "Cabdi \u00c7\u2019", "OriginType": "Manual",
                           "Metadata": {"note": "a, \n  {b}", "steps": [n, None, {"deep": [1.5, "x"]}]}}}
    messages = [{"MessageID": f"m{n}", "Text": f"jawaab {n} \u00e9", "CreationDateTimeUTC": "2018-12-10T05:30:01+00:00",
                 "Labels": [label(n * 3 + k) for k in range(n % 4)]} for n in range(7_000)]
    assert sum(len(m["Labels"]) for m in messages) > 10_000
    path = tmp_path / "age.json"
    assert write_coda_file(path, iter(messages)) == 7_000
    assert path.read_bytes() == json.dumps(messages, sort_keys=True, indent=2, separators=(", ", ": "),
                                           ensure_ascii=True).encode("ascii")


def test_write_coda_file_forgets_labels_and_still_writes_those_met_again(tmp_path, monkeypatch):
    """With room for 5 labels and 4 messages per batch, labels are forgotten again and again while later batches
    repeat earlier ones: the file is still the one ``json.dumps`` gives."""
    monkeypatch.setattr(coda_module, "_LABELS_REMEMBERED", 5)
    monkeypatch.setattr(coda_module, "_WRITE_BATCH", 4)
    labels = [_suggestion(GENDER, MALE, origin=f"redss_pipeline.cleaners.gender@{n}") for n in range(9)]
    messages = [{"MessageID": f"m{n}", "Text": f"t{n}", "CreationDateTimeUTC": "2018-12-10T05:30:01+00:00",
                 "Labels": [labels[(n * 5 + k) % 9] for k in range(n % 4)]} for n in range(60)]
    path = tmp_path / "gender.json"
    assert write_coda_file(path, messages) == 60
    assert path.read_bytes() == json.dumps(messages, sort_keys=True, indent=2, separators=(", ", ": "),
                                           ensure_ascii=True).encode("ascii")


def test_write_coda_file_refuses_a_message_without_the_coda_keys(tmp_path):
    path = tmp_path / "age.json"
    with pytest.raises(ValueError, match="SequenceNumber"):
        write_coda_file(path, [{"MessageID": "m1", "Text": "t", "CreationDateTimeUTC": "2018-12-10T05:30:01+00:00",
                                "Labels": [], "SequenceNumber": 1}])
    assert not path.exists()


def test_write_coda_file_of_no_messages_is_two_brackets(tmp_path):
    """An empty dataset is written as ``[]`` with no newline."""
    path = tmp_path / "s01e01.json"
    write_coda_file(path, [])
    assert path.read_bytes() == b"[]"


def test_write_coda_file_replaces_the_previous_file_and_leaves_no_temporary_file(tmp_path):
    """Files are rewritten completely on every run, atomically."""
    path = tmp_path / "age.json"
    path.write_text("old content that is longer than the new one")
    write_coda_file(path, [])
    assert path.read_text() == "[]"
    assert [p.name for p in tmp_path.iterdir()] == ["age.json"]


# -- export --------------------------------------------------------------------------------------------------------


def _export_gender(records):
    return coda_messages(records, raw_field="gender_raw", time_field="gender_time", id_field="gender_raw_id",
                         coded_fields=[("gender_coded", GENDER)])


def test_export_keeps_only_records_that_have_the_raw_field():
    """Records without the raw text (respondents who did not answer) are not exported."""
    records = [_gender_record("lab"), _record(other="x"), _gender_record("naag")]
    assert [m["Text"] for m in _export_gender(records)] == ["lab", "naag"]


def test_export_message_has_id_text_utc_creation_time_and_labels_only():
    """A message is exactly MessageID, Text, CreationDateTimeUTC and Labels (no SequenceNumber)."""
    label = _suggestion(GENDER, MALE)
    [message] = _export_gender([_gender_record("lab", gender_coded=label)])
    assert message == {
        "MessageID": message_id("lab"),
        "Text": "lab",
        "CreationDateTimeUTC": "2018-12-10T05:30:01+00:00",
        "Labels": [label],
    }


@pytest.mark.parametrize(
    "created, written",
    [
        ("2018-12-15T00:00:00+03:00", "2018-12-14T21:00:00+00:00"),
        ("2018-12-10T08:30:01.123456+03:00", "2018-12-10T05:30:01.123456+00:00"),
        ("2018-12-10T08:30:01.000000+03:00", "2018-12-10T05:30:01+00:00"),
        ("2018-12-10T05:30:01.5Z", "2018-12-10T05:30:01.500000+00:00"),
        ("2018-12-10T05:30:01+00:00", "2018-12-10T05:30:01+00:00"),
    ],
)
def test_export_writes_creation_time_in_utc_with_microseconds_only_when_not_zero(created, written):
    """Creation times are converted to UTC and written by isoformat (+00:00; microseconds only when non-zero)."""
    record = _record(gender_raw="lab", gender_raw_id=message_id("lab"), gender_time=created)
    assert _export_gender([record])[0]["CreationDateTimeUTC"] == written


def test_export_keeps_the_earliest_record_of_each_text_in_time_order_with_ties_in_input_order():
    """De-duplication keeps the oldest record per message id; output is by creation time, ties in input order."""
    records = [
        _record(msg="c1", msg_id="id-c", t="2018-12-10T12:00:00+03:00"),
        _record(msg="a1", msg_id="id-a", t="2018-12-10T10:00:00+03:00"),
        _record(msg="a2", msg_id="id-a", t="2018-12-10T07:00:00+00:00"),  # same instant as a1, later in the input
        _record(msg="b1", msg_id="id-b", t="2018-12-10T07:00:00Z"),  # ties with a1
        _record(msg="c2", msg_id="id-c", t="2018-12-10T08:00:00+03:00"),  # earlier than c1
        _record(msg="d1", msg_id="id-d", t="2018-12-10T07:00:00.000+00:00"),  # ties with a1 and b1
    ]
    # Texts differ within an id here only to show which record was kept.
    messages = coda_messages(records, raw_field="msg", time_field="t", id_field="msg_id", coded_fields=[])
    assert [(m["Text"], m["CreationDateTimeUTC"]) for m in messages] == [
        ("c2", "2018-12-10T05:00:00+00:00"),
        ("a1", "2018-12-10T07:00:00+00:00"),
        ("b1", "2018-12-10T07:00:00+00:00"),
        ("d1", "2018-12-10T07:00:00+00:00"),
    ]


def test_export_of_one_answer_sharing_its_label_objects_keeps_the_earliest_record():
    """The auto-coder makes the labels of an answer text once and every record of that text shares them (many
    respondents answer "male"); the earliest of those records by time, then position, still stands for it."""
    shared = _suggestion(GENDER, MALE)
    earliest_time = "2018-12-10T08:00:00+03:00"  # 05:00 UTC
    records = [  # texts differ within the id here only to show which record was kept
        _record(gender_raw=text, gender_raw_id=message_id("male"), gender_time=when, gender_coded=shared)
        for text, when in (("late", "2018-12-10T12:00:00+03:00"),  # 09:00 UTC
                           ("earliest", earliest_time),
                           ("same instant, later", "2018-12-10T05:00:00+00:00"),
                           ("same time, later", earliest_time))  # the very same time value
    ]
    messages = coda_messages(records, raw_field="gender_raw", time_field="gender_time", id_field="gender_raw_id",
                             coded_fields=[("gender_coded", GENDER)])
    assert [(m["Text"], m["CreationDateTimeUTC"]) for m in messages] == [("earliest", "2018-12-10T05:00:00+00:00")]
    assert [label["CodeID"] for label in messages[0]["Labels"]] == [shared["CodeID"]]


def test_export_of_rqa_messages_without_schemes_writes_empty_labels_and_drops_nothing():
    """With no coded fields every message has ``"Labels": []`` and none is dropped."""
    records = [_rqa_record("Waxaan u baahanahay shaqo"), _rqa_record("Tababar xirfadeed")]
    messages = coda_messages(records, raw_field="rqa_s01e01_raw", time_field="sent_on",
                             id_field="rqa_s01e01_raw_id", coded_fields=[])
    assert [m["Labels"] for m in messages] == [[], []]


def test_export_refuses_equal_texts_with_different_codes():
    """Records of one message id must carry the same code; the error names the message id and field."""
    records = [_gender_record("lab", gender_coded=_suggestion(GENDER, MALE)),
               _gender_record("lab", gender_coded=_suggestion(GENDER, FEMALE))]
    with pytest.raises(CodaFileError, match=rf"record MessageID '{message_id('lab')}': field 'gender_coded': "
                                            r"records with the same message id .* 'code-63dcde9a' and "
                                            r"'code-86a4602c'"):
        _export_gender(records)


def test_export_refuses_equal_texts_where_only_one_record_has_a_code():
    """An absent code differs from a present one."""
    records = [_gender_record("lab"), _gender_record("lab", gender_coded=_suggestion(GENDER, MALE))]
    with pytest.raises(CodaFileError, match="no label and 'code-63dcde9a'"):
        _export_gender(records)


def test_export_accepts_equal_texts_whose_label_lists_hold_the_same_codes_in_any_order():
    """For lists the set of CodeIDs must agree (order aside); such NA lists are then dropped as missing."""
    na_1 = control_label(S01E01, NA, origin_id="a", label_time=RUN_TIME)
    na_2 = control_label(S01E01, NA, origin_id="b", label_time="2019-02-02T00:00:00+00:00")
    records = [_rqa_record("x") .updated(LOAD, {"rqa_s01e01_coded": [na_1, na_2]}),
               _rqa_record("x").updated(LOAD, {"rqa_s01e01_coded": [na_2]})]
    messages = coda_messages(records, raw_field="rqa_s01e01_raw", time_field="sent_on",
                             id_field="rqa_s01e01_raw_id", coded_fields=[("rqa_s01e01_coded", S01E01)])
    assert messages == []


def _export_in_chunks(chunks):
    """The messages of records added chunk by chunk as stage 3 adds them: ``chunks`` is a list of chunks, each a
    list of (position, record), positions in any order across chunks."""
    with ScratchDatabase() as scratch:
        export = CodaExport(scratch, raw_field="msg", time_field="t", id_field="msg_id", coded_fields=[])
        for chunk in chunks:
            for position, record in chunk:
                export.add(record, position)
            export.store(export.take())
        return [(m["Text"], m["CreationDateTimeUTC"]) for m in export.messages()]


def test_export_in_chunks_keeps_the_earliest_record_of_each_text_whichever_chunk_it_came_in():
    """The earliest by time, then by position, stands for its message id across chunks of respondents, and the
    messages come in time order whatever order the chunks came in."""
    def message(text, mid, time):
        return _record(msg=text, msg_id=mid, t=time)

    chunks = [
        [(5, message("a-late", "id-a", "2018-12-10T12:00:00+03:00")),
         (2, message("b-tie-later-position", "id-b", "2018-12-10T07:00:00+00:00"))],
        [(9, message("a-early", "id-a", "2018-12-10T06:00:00+00:00")),  # earlier than a-late, though added later
         (1, message("b-tie-earlier-position", "id-b", "2018-12-10T10:00:00+03:00")),  # same instant as position 2
         (0, message("c", "id-c", "2018-12-10T07:00:00.5+00:00"))],
    ]
    assert _export_in_chunks(chunks) == [
        ("a-early", "2018-12-10T06:00:00+00:00"),
        ("b-tie-earlier-position", "2018-12-10T07:00:00+00:00"),
        ("c", "2018-12-10T07:00:00.500000+00:00"),
    ]


def test_export_refuses_equal_texts_with_different_codes_in_different_chunks():
    """The codes of one message id must agree across chunks too; the error names the message id and field."""
    with ScratchDatabase() as scratch:
        export = CodaExport(scratch, raw_field="gender_raw", time_field="gender_time", id_field="gender_raw_id",
                            coded_fields=[("gender_coded", GENDER)])
        export.add(_gender_record("lab", gender_coded=_suggestion(GENDER, MALE)), 0)
        export.store(export.take())
        export.add(_gender_record("lab", gender_coded=_suggestion(GENDER, FEMALE)), 1)
        export.store(export.take())
        with pytest.raises(CodaFileError, match=rf"record MessageID '{message_id('lab')}': field 'gender_coded': "
                                                r"records with the same message id .* 'code-63dcde9a' and "
                                                r"'code-86a4602c'"):
            list(export.messages())


def test_export_refuses_a_multi_coded_field_that_is_not_missing():
    """A list of real codes cannot be written to Coda (2019 could not either)."""
    record = _rqa_record("x").updated(LOAD, {"rqa_s01e01_coded": [_suggestion(S01E01, FINANCIAL)]})
    with pytest.raises(CodaFileError, match="field 'rqa_s01e01_coded': a multi-coded field"):
        coda_messages([record], raw_field="rqa_s01e01_raw", time_field="sent_on", id_field="rqa_s01e01_raw_id",
                      coded_fields=[("rqa_s01e01_coded", S01E01)])


def _location_record(text, codes):
    record = _record(mogadishu_sub_district_raw=text, mogadishu_sub_district_raw_id=message_id(text),
                     mogadishu_sub_district_time="2018-12-10T08:30:01+03:00")
    return record.updated(LOAD, codes)


def _export_location(records):
    return coda_messages(records, raw_field="mogadishu_sub_district_raw", time_field="mogadishu_sub_district_time",
                         id_field="mogadishu_sub_district_raw_id", coded_fields=LOCATION_SCHEMES)


@pytest.mark.parametrize("control_code", [NA, NS])
def test_export_drops_a_record_coded_na_or_ns_in_every_field(control_code):
    """A missing answer (the same NA or NS under all mapped fields) is not sent to Coda."""
    missing = {field: control_label(scheme, control_code, origin_id="o", label_time=RUN_TIME)
               for field, scheme in LOCATION_SCHEMES}
    records = [_location_record("", missing), _location_record("hodan", {})]
    assert [m["Text"] for m in _export_location(records)] == ["hodan"]


def test_export_refuses_na_in_some_fields_but_not_all():
    """NA under some mapped fields and a real or absent code under others is an error naming the record."""
    sub, district = LOCATION_SCHEMES[0][1], LOCATION_SCHEMES[1][1]
    record = _location_record("hodan", {"mogadishu_sub_district_coded": _suggestion(sub, "code-d170504a"),
                                        "district_coded": _na(district)})
    with pytest.raises(CodaFileError, match=rf"MessageID '{message_id('hodan')}': field 'district_coded': "
                                            r"NA or NS must be in all coded fields or in none"):
        _export_location([record])


def test_export_refuses_na_in_some_fields_and_ns_in_the_others():
    """Mixed NA and NS is not one missing code."""
    codes = {field: control_label(scheme, NA if i else NS, origin_id="o", label_time=RUN_TIME)
             for i, (field, scheme) in enumerate(LOCATION_SCHEMES)}
    with pytest.raises(CodaFileError, match="NA or NS must be in all coded fields"):
        _export_location([_location_record("x", codes)])


def test_export_writes_labels_in_map_order_leaving_out_nc_and_absent_fields():
    """Labels follow the coded-field order; NC labels and absent fields are not exported."""
    sub, district, region = (scheme for _, scheme in LOCATION_SCHEMES[:3])
    district_label = _suggestion(district, "code-99f80d95", origin="redss_pipeline.cleaners.district@1")
    region_label = _suggestion(region, "code-74bcbe18", origin="o")
    # 2019 built the district NC label with the sub-district SchemeID; only its CodeID matters.
    record = _location_record("afgooye banadir", {
        "mogadishu_sub_district_coded": control_label(sub, NC, origin_id="o", label_time=RUN_TIME),
        "region_coded": region_label,
        "district_coded": district_label,
    })
    [message] = _export_location([record])
    assert [(label["SchemeID"], label["CodeID"]) for label in message["Labels"]] == [
        ("Scheme-5292e8fb", "code-99f80d95"), ("Scheme-644e3296", "code-74bcbe18")]


def test_export_label_keeps_only_coda_keys_and_leaves_out_nulls():
    """Exported labels carry SchemeID, CodeID, DateTimeUTC, Origin and the optional keys that are not null."""
    label = _coder(GENDER.scheme_id, MALE, "2019-01-20T10:00:00.000Z", checked=None, Confidence=0.8,
                   LabelSet=None, Note="not a Coda key")
    [message] = _export_gender([_gender_record("lab", gender_coded=label)])
    assert message["Labels"] == [{
        "SchemeID": GENDER.scheme_id, "CodeID": MALE, "DateTimeUTC": "2019-01-20T10:00:00.000Z",
        "Confidence": 0.8,
        "Origin": {"OriginID": "coder.a@example.org", "Name": "Coder A", "OriginType": "Manual"},
    }]


def test_export_refuses_a_label_whose_code_is_not_in_the_fields_scheme():
    """A label must name a code of the scheme it is exported under."""
    label = _coder(GENDER.scheme_id, "code-d170504a", "2019-01-20T10:00:00.000Z")
    with pytest.raises(CodaFileError, match=r"field 'gender_coded': CodeID 'code-d170504a' is not a code of "
                                            r"scheme 'Gender' \(Scheme-12cb6f95\)"):
        _export_gender([_gender_record("lab", gender_coded=label)])


def test_export_refuses_a_record_without_a_creation_time():
    """The creation time is required; the error names the message id and the time field."""
    record = _record(gender_raw="lab", gender_raw_id=message_id("lab"))
    with pytest.raises(CodaFileError, match=r"field 'gender_time': must be an ISO 8601 time with a UTC offset, "
                                            r"found None"):
        _export_gender([record])


def test_export_refuses_a_record_with_the_raw_field_but_no_message_id():
    """A raw text without its message id means the id step did not run; the error names the id field."""
    with pytest.raises(CodaFileError, match=r"record at position 1: field 'gender_raw_id': a record with "
                                            r"'gender_raw' has no message id"):
        _export_gender([_gender_record("lab"), _record(gender_raw="naag", gender_time="2018-12-10T08:30:01Z")])


def test_export_then_write_round_trips_through_json(tmp_path):
    """A written file parses back to the exported messages."""
    messages = _export_gender([_gender_record("Lab", gender_coded=_suggestion(GENDER, MALE)),
                               _gender_record("Naag \u00e9", gender_coded=_suggestion(GENDER, FEMALE))])
    write_coda_file(tmp_path / "gender.json", messages)
    assert json.loads((tmp_path / "gender.json").read_text()) == messages


# -- reading coded files -------------------------------------------------------------------------------------------


def test_read_coded_file_that_does_not_exist_reads_as_nothing_coded(tmp_path):
    """A missing coded file is an empty dataset (for every dataset, s01e03.json included)."""
    coded = read_coded_file(tmp_path / "Coded Coda Files" / "s01e03.json")
    assert len(coded) == 0
    assert coded.labels("any", "Scheme-fffffc6e") == ()


def test_a_coded_file_saved_with_a_byte_order_mark_is_read(tmp_path):
    """Some Windows editors start a UTF-8 file with a byte-order mark; json refuses one, the file is read past it."""
    path = tmp_path / "gender.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps([{"MessageID": "m1", "Text": "lab", "Labels": []}]).encode())
    assert read_coded_file(path).message_ids() == ["m1"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])
def test_a_coded_file_saved_as_utf16_is_read(tmp_path, encoding):
    """Windows PowerShell 5 writes `get.py ... > file` as UTF-16 with a byte-order mark."""
    path = tmp_path / "gender.json"
    label = {"SchemeID": "Scheme-1", "CodeID": "code-1", "DateTimeUTC": "2019-01-21T09:00:00.000Z", "Checked": True,
             "Origin": {"OriginID": "c@example.org", "Name": "Cabdi \u00c9", "OriginType": "Manual"}}
    text = json.dumps([{"MessageID": "m1", "Text": "wiil", "Labels": [label]}], ensure_ascii=False)
    path.write_bytes(("\ufeff" + text).encode(encoding) if encoding == "utf-16-be" else text.encode(encoding))
    coded = read_coded_file(path)
    assert coded.message_ids() == ["m1"]
    assert coded.labels("m1", "Scheme-1")[0]["Origin"]["Name"] == "Cabdi \u00c9"


def test_the_texts_warnings_show_are_read_from_the_coded_file_again(tmp_path):
    """A warning names a coded message by its text; a file gone or changed since it was read gives no text, not an
    error (the warning then names the MessageID only)."""
    path = tmp_path / "s01e01.json"
    path.write_bytes(json.dumps([{"MessageID": "m1", "Text": "nabad", "Labels": []},
                                 {"MessageID": "m2", "Text": "wiil", "Labels": []}]).encode("utf-16"))
    assert coda_module.coded_texts(path, ["m2", "m3"]) == {"m2": "wiil"}
    path.write_text("[{", encoding="utf-8")
    assert coda_module.coded_texts(path, ["m2"]) == {}
    assert coda_module.coded_texts(tmp_path / "gone.json", ["m2"]) == {}


@pytest.mark.parametrize(("encoding", "boundary"), [("utf-8", 5), ("utf-16-le", 7), ("utf-16-be", 9)])
def test_coders_work_in_an_export_is_found_across_scanned_blocks(tmp_path, monkeypatch, encoding, boundary):
    """The scan reads blocks of a few characters here, so '"Checked": true' is cut by a block boundary; a UTF-16
    file without a byte-order mark is scanned in its own encoding. Two of the three messages carry a checked label."""
    import redss_pipeline.export.coda as coda_module

    monkeypatch.setattr(coda_module, "_SCAN_BLOCK", boundary)
    checked = {"SchemeID": "Scheme-1", "CodeID": "code-1", "DateTimeUTC": "2019-01-21T09:00:00.000Z",
               "Checked": True, "Origin": {"OriginID": "c", "Name": "C", "OriginType": "Manual"}}
    messages = [{"MessageID": "m1", "Text": "a", "Labels": [checked]},
                {"MessageID": "m2", "Text": "b", "Labels": [dict(checked, Checked=False)]},
                {"MessageID": "m3", "Text": "c", "Labels": [dict(checked, Checked=False), checked]}]
    path = tmp_path / "s01e01.json"
    path.write_bytes(json.dumps(messages).encode(encoding))
    assert messages_coded_in(path) == 2
    path.write_bytes(json.dumps(messages[1:2]).encode(encoding))  # an export: unchecked suggestions only
    assert messages_coded_in(path) == 0
    assert messages_coded_in(tmp_path / "no such export.json") == 0


def test_a_link_to_a_missing_coded_file_is_an_error_not_nothing_coded(tmp_path):
    """A coded file that is a link whose file is gone (moved, an unmounted drive) would read as "nothing coded" and
    silently drop every code of the dataset."""
    path = tmp_path / "gender.json"
    path.symlink_to(tmp_path / "elsewhere" / "gender.json")
    with pytest.raises(CodaFileError) as raised:
        read_coded_file(path)
    assert str(raised.value) == (f"{path}: a link to a file that does not exist (a moved or unmounted file?); "
                                 "restore the file or remove the link")


@pytest.mark.parametrize(("message", "where"), [
    ('{"MessageID": "m1", "Text": "haa \\ud83d", "Labels": []}', "record MessageID 'm1': field 'Text'"),
    ('{"MessageID": "m1", "Text": "ok", "Labels": [{"Origin": {"Name": "coder\\udc00"}}]}',
     "record MessageID 'm1': field 'Labels'"),
    ('{"MessageID": "m\\ud800", "Text": "ok", "Labels": []}', "record message [1]: field 'MessageID'"),
])
def test_half_an_emoji_in_a_coded_file_is_one_error_naming_message_and_field(tmp_path, message, where):
    """A lone UTF-16 escape (an emoji cut in two) decodes to a string no output can hold: it is refused where it is
    read, naming the message and its field, not later by a writer naming an output file. A whole pair is a
    character like any other."""
    path = tmp_path / "s01e01.json"
    whole = '{"MessageID": "m0", "Text": "\\ud83d\\ude00", "Labels": []}'
    path.write_text(f"[{whole}, {message}]")
    with pytest.raises(CodaFileError) as raised:
        read_coded_file(path)
    assert str(raised.value) == (f"{path}: {where}: holds half of a UTF-16 pair (an emoji cut in two, written as a "
                                 "lone \\ud800-\\udfff escape), which is not text; correct or remove it in the file")
    path.write_text(f"[{whole}]")
    assert read_coded_file(path).message_ids() == ["m0"]


def test_a_text_coded_before_redaction_is_found_by_both_ids_and_counted_once(tmp_path):
    """2019 coded texts with phone numbers in them; stage 3 now redacts them, so the file's message is found by
    the id of the redacted text too, but the file still holds one message (no label is counted twice)."""
    typed, redacted = "call me on 0615 123 456", "call me on <phone number>"
    path = tmp_path / "s01e01.json"
    path.write_text(json.dumps([{"MessageID": message_id(typed), "Text": typed, "Labels": [_coder(
        GENDER.scheme_id, MALE, "2019-01-20T10:00:00.000Z")]}]))
    coded = read_coded_file(path, redact=lambda text: text.replace("0615 123 456", "<phone number>"))
    assert coded.all_labels(message_id(redacted)) == coded.all_labels(message_id(typed)) != ()
    assert coded.message_ids() == [message_id(typed)] and len(coded) == 1
    assert coded.file_message_id(message_id(redacted)) == coded.file_message_id(message_id(typed)) == message_id(typed)
    assert coded.file_message_id(message_id("another text")) is None


@pytest.mark.parametrize("copy_coded", [False, True])
def test_an_uncoded_copy_of_the_redacted_text_does_not_hide_the_codes_of_2019(tmp_path, copy_coded):
    """After a redacting run's Coda file is downloaded again, the file holds the 2019-coded text with the number
    and an uncoded copy of the redacted text: the redacted text's messages keep the 2019 codes. A copy a coder
    checked a label of is coded in its own right, and its own codes apply."""
    typed, redacted = "call me on 0615 123 456", "call me on <phone number>"
    coded_2019 = _coder(GENDER.scheme_id, MALE, "2019-01-20T10:00:00.000Z")
    recoded = _coder(GENDER.scheme_id, FEMALE, "2020-02-01T10:00:00.000Z")
    copy = {"MessageID": message_id(redacted), "Text": redacted, "Labels": [recoded] if copy_coded else []}
    path = tmp_path / "gender.json"
    path.write_text(json.dumps([{"MessageID": message_id(typed), "Text": typed, "Labels": [coded_2019]}, copy]))
    coded = read_coded_file(path, redact=lambda text: text.replace("0615 123 456", "<phone number>"))
    assert coded.all_labels(message_id(redacted)) == ((recoded,) if copy_coded else (coded_2019,))
    assert coded.message_ids() == [message_id(typed), message_id(redacted)] and len(coded) == 2
    assert coded.own_labels(message_id(redacted)) == ((recoded,) if copy_coded else ())
    assert coded.file_message_id(message_id(redacted)) == message_id(redacted if copy_coded else typed)


def test_of_two_typed_texts_that_redact_alike_the_coded_one_stands_for_both(tmp_path):
    """Two 2019 texts with different numbers redact to one text; the file also holds that redacted text with a
    label nobody checked. The redacted text's messages take the codes of the typed text a coder checked, and the
    redacted text's own label is still its own (counted once, under its own id)."""
    first, second, redacted = "call me on 0615 123 456", "call me on 0615 999 888", "call me on <phone number>"
    foreign = {**_coder("Scheme-other", "code-x", "2019-01-20T09:00:00.000Z"), "Checked": False}
    coded_2019 = _coder(GENDER.scheme_id, MALE, "2019-01-20T10:00:00.000Z")
    path = tmp_path / "gender.json"
    path.write_text(json.dumps([
        {"MessageID": message_id(redacted), "Text": redacted, "Labels": [foreign]},
        {"MessageID": message_id(first), "Text": first, "Labels": []},
        {"MessageID": message_id(second), "Text": second, "Labels": [coded_2019]},
    ]))
    coded = read_coded_file(path, redact=lambda text: re.sub(r"0615 \d{3} \d{3}", "<phone number>", text))
    assert coded.all_labels(message_id(redacted)) == (coded_2019,)
    assert coded.own_labels(message_id(redacted)) == (foreign,)
    assert coded.file_message_id(message_id(redacted)) == message_id(second)
    assert len(coded) == 3


def test_read_coded_file_groups_labels_by_scheme_oldest_first(tmp_path):
    """MessageID -> SchemeID -> labels, with Coda's newest-first list reversed."""
    newest = _coder(GENDER.scheme_id, FEMALE, "2019-01-21T10:00:00.000Z")
    other = _coder("Scheme-other", "code-x", "2019-01-20T11:00:00.000Z")
    oldest = _coder(GENDER.scheme_id, MALE, "2019-01-20T10:00:00.000Z")
    path = tmp_path / "gender.json"
    path.write_text(json.dumps([{"MessageID": "m1", "Text": "lab", "Labels": [newest, other, oldest],
                                 "SequenceNumber": 3, "LastUpdated": "2020-07-01T00:00:00Z"}], indent=2) + "\n")
    coded = read_coded_file(path)
    assert coded.labels("m1", GENDER.scheme_id) == (oldest, newest)
    assert coded.labels("m1", "Scheme-other") == (other,)
    assert coded.all_labels("m1") == (oldest, other, newest)
    assert "m1" in coded and coded.message_ids() == ["m1"]
    assert coded.path == str(path)


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"messages": []}', r"gender.json: a coded Coda file must hold a JSON list of messages .* found an object"),
        ('Users:\n["a@example.org"]', r"gender.json: not valid JSON \(line 1, column 1"),
        ('[{"Labels": []}]', r"gender.json: record message \[0\]: field 'MessageID': must be a non-empty string, "
                             r"found nothing"),
        ('[{"MessageID": "m1", "Text": "t"}]',
         r"gender.json: record MessageID 'm1': field 'Labels': must be a list of labels"),
        ('[{"MessageID": "m1", "Labels": []}]', r"record MessageID 'm1': field 'Text': must be the message's text, "
                                                r"found nothing"),
        # A single label's time is checked as a multi-coded message's are: a file that passes this week must not
        # fail next week because a coder added a label.
        ('[{"MessageID": "m1", "Text": "t", "Labels": [{"SchemeID": "s", "CodeID": "c", '
         '"DateTimeUTC": "20/01/2019 10:00"}]}]',
         r"record MessageID 'm1': field 'Labels\[0\].DateTimeUTC': must be an ISO 8601 time, found '20/01/2019 10:00'"),
        ('[{"MessageID": "m1", "Text": "t", "Labels": [{"CodeID": "c", "DateTimeUTC": "2019-01-20T10:00:00Z"}]}]',
         r"gender.json: record MessageID 'm1': field 'Labels\[0\].SchemeID': must be a non-empty string"),
        ('[{"MessageID": "m1", "Text": "t", "Labels": [{"SchemeID": "s", "DateTimeUTC": "2019-01-20T10:00:00Z"}]}]',
         r"record MessageID 'm1': field 'Labels\[0\].CodeID': must be a non-empty string, found nothing"),
        ('[{"MessageID": "m1", "Text": "t", "Labels": [{"SchemeID": "s", "CodeID": "c"}]}]',
         r"field 'Labels\[0\].DateTimeUTC': must be a non-empty string"),
        ('[{"MessageID": "m1", "Text": "t", "Labels": [{"SchemeID": "s", "CodeID": "c", '
         '"DateTimeUTC": "2019-01-20T10:00:00Z", "Checked": "yes"}]}]',
         r"field 'Labels\[0\].Checked': must be true or false, found 'yes'"),
        ('[{"MessageID": "m1", "Text": "t", "Labels": ["label"]}]',
         r"field 'Labels\[0\]': a label must be a JSON object"),
        ('[{"MessageID": "m1", "Text": "t", "Labels": []}, {"MessageID": "m1", "Text": "t", "Labels": []}]',
         r"record MessageID 'm1': field 'MessageID': the MessageID appears twice"),
        ('[[]]', r"record message \[0\]: a message must be a JSON object, found a list"),
    ],
)
def test_read_coded_file_refuses_malformed_files_naming_file_message_and_field(tmp_path, content, message):
    """A file that is not a list of Coda messages is a one-line CodaFileError saying where."""
    path = tmp_path / "gender.json"
    path.write_text(content)
    with pytest.raises(CodaFileError, match=message):
        read_coded_file(path)


# -- single-coded import -------------------------------------------------------------------------------------------


def test_single_import_writes_the_newest_checked_label():
    """The first label in Coda's list for the scheme (the newest) ends up in the field."""
    newest = _coder(GENDER.scheme_id, FEMALE, "2019-01-21T10:00:00.000Z")
    coded = _coded(("lab", [newest, _coder(GENDER.scheme_id, MALE, "2019-01-20T10:00:00.000Z")]))
    [record] = _import_gender([_gender_record("lab", gender_coded=_suggestion(GENDER, MALE))], coded)
    assert record["gender_coded"] is newest


def test_single_import_unchecked_newest_label_is_not_reviewed_even_over_an_older_checked_one():
    """Unticking in Coda writes an unchecked copy; the message then counts as not reviewed (NR)."""
    coded = _coded(("lab", [_coder(GENDER.scheme_id, MALE, "2019-01-21T10:00:00.000Z", checked=False),
                            _coder(GENDER.scheme_id, MALE, "2019-01-20T10:00:00.000Z", checked=True)]))
    [record] = _import_gender([_gender_record("lab")], coded)
    assert record["gender_coded"]["CodeID"] == NR_ID


def test_single_import_turns_an_unchecked_suggestion_into_nr():
    """An auto-code suggestion nobody checked (in the file or only in the record) becomes NR."""
    suggestion = _suggestion(GENDER, MALE)
    in_file = _coded(("lab", [suggestion]))
    records = [_gender_record("lab", gender_coded=suggestion), _gender_record("naag", gender_coded=suggestion)]
    assert [r["gender_coded"]["CodeID"] for r in _import_gender(records, in_file)] == [NR_ID, NR_ID]


def test_single_import_keeps_a_suggestion_a_coder_confirmed_by_ticking():
    """Ticking the checkbox writes a checked copy of the suggestion, which then counts."""
    ticked = dict(_suggestion(GENDER, MALE), Checked=True, DateTimeUTC="2019-01-22T10:00:00.000Z")
    coded = _coded(("lab", [ticked, _suggestion(GENDER, MALE)]))
    [record] = _import_gender([_gender_record("lab")], coded)
    assert record["gender_coded"] is ticked


def test_single_import_gives_nr_to_a_message_nobody_coded():
    """No label in the file and none in the record gives NR."""
    [record] = _import_gender([_gender_record("lab")], CodedMessages())
    assert record["gender_coded"]["CodeID"] == NR_ID


@pytest.mark.parametrize("control_code", [NA, NS])
def test_single_import_keeps_na_or_ns_already_in_the_field(control_code):
    """A missing answer's NA (or NS) stays, and the record comes back unchanged."""
    missing = control_label(GENDER, control_code, origin_id="o", label_time=RUN_TIME)
    original = _gender_record("", gender_coded=missing)
    [record] = _import_gender([original], _coded(("other text", [])))
    assert record is original


def test_single_import_keeps_an_unchecked_ns_label_from_the_file():
    """NA and NS count even unchecked (coda.md 5.2 step 2)."""
    ns = _coder(GENDER.scheme_id, NS_ID, "2019-01-21T10:00:00.000Z", checked=False)
    [record] = _import_gender([_gender_record("lab")], _coded(("lab", [ns])))
    assert record["gender_coded"] is ns


def test_single_import_treats_a_cleared_code_as_not_reviewed():
    """SPECIAL-MANUALLY_UNCODED (the coder cleared the code) gives NR."""
    cleared = _coder(GENDER.scheme_id, MANUALLY_UNCODED, "2019-01-21T10:00:00.000Z", checked=False)
    coded = _coded(("lab", [cleared, _coder(GENDER.scheme_id, MALE, "2019-01-20T10:00:00.000Z")]))
    [record] = _import_gender([_gender_record("lab")], coded)
    assert record["gender_coded"]["CodeID"] == NR_ID


def test_single_import_reads_a_label_without_checked_as_unchecked():
    """2019 crashed on a label without ``Checked``; it now counts as unchecked, giving NR."""
    coded = _coded(("lab", [_coder(GENDER.scheme_id, MALE, "2019-01-21T10:00:00.000Z", checked=None)]))
    [record] = _import_gender([_gender_record("lab")], coded)
    assert record["gender_coded"]["CodeID"] == NR_ID


def test_single_import_of_the_ws_scheme_unchecked_gives_nr_and_checked_counts():
    """WS - Correct Dataset has no NA or NS: an unchecked label gives NR (2019 crashed), a checked one counts."""
    def ws_record(text):
        return _record(rqa_s01e03=text, rqa_s01e03_id=message_id(text))

    checked = _coder(WS_CORRECT.scheme_id, WS_TO_S01E02, "2019-01-21T10:00:00.000Z")
    coded = _coded(("week two", [checked]),
                   ("not sure", [_coder(WS_CORRECT.scheme_id, WS_TO_S01E02, "2019-01-21T10:00:00.000Z",
                                        checked=False)]),
                   ("no field", [_coder(WS_CORRECT.scheme_id, WS_TO_S01E02, "2019-01-21T10:00:00.000Z",
                                        checked=None)]))
    merge = SingleCodedImport(coded, coded_field="ws_correct_dataset_coded", scheme=WS_CORRECT, label_time=RUN_TIME,
                              source_file="s01e03.json")
    records = _decided([ws_record("week two"), ws_record("not sure"), ws_record("no field"), ws_record("absent")],
                       merge, id_field="rqa_s01e03_id", coded_field="ws_correct_dataset_coded")
    assert [r["ws_correct_dataset_coded"]["CodeID"] for r in records] == [WS_TO_S01E02, NR_ID, NR_ID, NR_ID]
    assert records[1]["ws_correct_dataset_coded"]["SchemeID"] == WS_CORRECT.scheme_id


def test_single_import_reads_only_the_exact_scheme_id():
    """Labels of a duplicated scheme (``<id>-1``) or of other schemes do not count for a single-coded field."""
    coded = _coded(("lab", [_coder(GENDER.scheme_id + "-1", FEMALE, "2019-01-21T10:00:00.000Z"),
                            _coder("Scheme-07dfc611", "code-d170504a", "2019-01-21T10:00:00.000Z")]))
    [record] = _import_gender([_gender_record("lab")], coded)
    assert record["gender_coded"]["CodeID"] == NR_ID


def test_single_import_refuses_an_unknown_code_naming_file_message_and_code():
    """A CodeID that is not in the scheme is a CodaFileError naming the file, message id and code."""
    coded = _coded(("lab", [_coder(GENDER.scheme_id, "code-deleted", "2019-01-21T10:00:00.000Z")]))
    with pytest.raises(CodaFileError, match=rf"Coded Coda Files/gender.json: record MessageID "
                                            rf"'{message_id('lab')}': field 'CodeID': CodeID 'code-deleted' "
                                            r"\(SchemeID 'Scheme-12cb6f95'\) is not a code of scheme 'Gender'"):
        _import_gender([_gender_record("lab")], coded)


def test_single_import_names_the_coded_file_when_no_source_file_is_given(tmp_path):
    """Without ``source_file`` the error names the file the lookup was read from."""
    path = tmp_path / "gender.json"
    path.write_text(json.dumps([{"MessageID": message_id("lab"), "Labels": [
        _coder(GENDER.scheme_id, "code-deleted", "2019-01-21T10:00:00.000Z")]}]))
    with pytest.raises(PipelineError, match=rf"^{path}: record MessageID"):
        _import_gender([_gender_record("lab")], read_coded_file(path), source_file=None)


def test_single_import_nr_label_is_one_shared_unchecked_pipeline_label():
    """Every NR written by one import is the same label object, dated with the run's clock."""
    records = _import_gender([_gender_record("lab"), _gender_record("naag"), _gender_record("lab")], CodedMessages())
    first = records[0]["gender_coded"]
    assert all(r["gender_coded"] is first for r in records)
    assert first == {"SchemeID": GENDER.scheme_id, "CodeID": NR_ID, "DateTimeUTC": RUN_TIME, "Checked": False,
                     "Origin": {"OriginID": SINGLE_CODED_IMPORT_ORIGIN, "Name": "Pipeline Auto-Coder",
                                "OriginType": "External"}}


def test_single_import_shares_the_coders_label_between_records_of_one_text():
    """Records with the same text receive the same label object."""
    label = _coder(GENDER.scheme_id, FEMALE, "2019-01-21T10:00:00.000Z")
    records = _import_gender([_gender_record("lab"), _gender_record("lab")], _coded(("lab", [label])))
    assert records[0]["gender_coded"] is label and records[1]["gender_coded"] is label


def test_exported_suggestion_comes_back_as_nr_until_a_coder_checks_it(tmp_path):
    """Round trip: an exported unchecked suggestion, downloaded unchanged, is NR; after ticking it counts."""
    suggestion = _suggestion(GENDER, MALE)
    records = [_gender_record("lab", gender_coded=suggestion)]
    path = tmp_path / "gender.json"
    write_coda_file(path, _export_gender(records))
    assert _import_gender(records, read_coded_file(path))[0]["gender_coded"]["CodeID"] == NR_ID

    data = json.loads(path.read_text())
    data[0]["Labels"].insert(0, dict(data[0]["Labels"][0], Checked=True, DateTimeUTC="2019-01-22T10:00:00.000Z"))
    path.write_text(json.dumps(data))
    imported = _import_gender(records, read_coded_file(path))[0]["gender_coded"]
    assert (imported["CodeID"], imported["Checked"]) == (MALE, True)


# -- multi-coded import --------------------------------------------------------------------------------------------


def _ids(record):
    return [(label["SchemeID"], label["CodeID"]) for label in record["rqa_s01e01_coded"]]


def test_multi_import_keeps_one_label_per_duplicate_scheme():
    """Every SchemeID starting with the scheme's (``Scheme-x``, ``Scheme-x-1``) adds its latest label."""
    s, s1 = S01E01.scheme_id, S01E01.scheme_id + "-1"
    coded = _coded(("shaqo", [
        _coder(s1, JOBS, "2019-01-21T10:00:02.000Z"),
        _coder(s, SKILLS, "2019-01-21T10:00:01.000Z"),
        _coder(s, FINANCIAL, "2019-01-21T10:00:00.000Z"),
    ]))
    [record] = _import_s01e01([_rqa_record("shaqo")], coded)
    assert _ids(record) == [(s, SKILLS), (s1, JOBS)]


def test_multi_import_orders_labels_by_time_not_by_file_position():
    """Labels are sorted by parsed DateTimeUTC, so a later time wins even if it is listed lower in the file."""
    s = S01E01.scheme_id
    coded = _coded(("shaqo", [
        _coder(s, FINANCIAL, "2019-01-20T10:00:00.000Z"),  # first in the list (newest by position) but older
        _coder(s, JOBS, "2019-01-21T13:00:00+03:00"),  # 10:00 UTC on the 21st
    ]))
    [record] = _import_s01e01([_rqa_record("shaqo")], coded)
    assert _ids(record) == [(s, JOBS)]


def test_multi_import_equal_times_keep_the_oldest_first_file_order():
    """With equal times the order is Coda's list reversed, so the label listed first (newest) wins."""
    s = S01E01.scheme_id
    coded = _coded(("shaqo", [_coder(s, JOBS, "2019-01-21T10:00:00.000Z"),
                              _coder(s, FINANCIAL, "2019-01-21T10:00:00+00:00")]))
    [record] = _import_s01e01([_rqa_record("shaqo")], coded)
    assert _ids(record) == [(s, JOBS)]


def test_multi_import_lists_schemes_in_order_of_first_appearance():
    """A scheme first coded earlier stays first even when its label changes later."""
    s, s1 = S01E01.scheme_id, S01E01.scheme_id + "-1"
    coded = _coded(("shaqo", [
        _coder(s1, SKILLS, "2019-01-23T10:00:00.000Z"),
        _coder(s, JOBS, "2019-01-22T10:00:00.000Z"),
        _coder(s1, FINANCIAL, "2019-01-21T10:00:00.000Z"),
    ]))
    [record] = _import_s01e01([_rqa_record("shaqo")], coded)
    assert _ids(record) == [(s1, SKILLS), (s, JOBS)]


def test_multi_import_removes_cleared_codes():
    """A scheme whose latest label is SPECIAL-MANUALLY_UNCODED contributes nothing."""
    s, s1 = S01E01.scheme_id, S01E01.scheme_id + "-1"
    coded = _coded(("shaqo", [
        _coder(s1, MANUALLY_UNCODED, "2019-01-22T10:00:00.000Z", checked=False),
        _coder(s1, JOBS, "2019-01-21T10:00:01.000Z"),
        _coder(s, FINANCIAL, "2019-01-21T10:00:00.000Z"),
    ]))
    [record] = _import_s01e01([_rqa_record("shaqo")], coded)
    assert _ids(record) == [(s, FINANCIAL)]


def test_multi_import_gives_nr_when_every_code_was_cleared():
    """An empty result gives ``[NR]``."""
    s = S01E01.scheme_id
    coded = _coded(("shaqo", [_coder(s, MANUALLY_UNCODED, "2019-01-22T10:00:00.000Z", checked=False),
                              _coder(s, JOBS, "2019-01-21T10:00:00.000Z")]))
    [record] = _import_s01e01([_rqa_record("shaqo")], coded)
    assert _ids(record) == [(s, NR_ID)]


def test_multi_import_gives_nr_when_nothing_is_checked():
    """Unchecked labels only (or none at all, or no Checked key) give ``[NR]``."""
    s, s1 = S01E01.scheme_id, S01E01.scheme_id + "-1"
    coded = _coded(("shaqo", [_coder(s, JOBS, "2019-01-21T10:00:00.000Z", checked=False),
                              _coder(s1, SKILLS, "2019-01-21T10:00:00.000Z", checked=None)]))
    records = _import_s01e01([_rqa_record("shaqo"), _rqa_record("uncoded")], coded)
    assert [_ids(r) for r in records] == [[(s, NR_ID)], [(s, NR_ID)]]
    assert records[0]["rqa_s01e01_coded"] is records[1]["rqa_s01e01_coded"]
    assert records[0]["rqa_s01e01_coded"][0]["Origin"]["OriginID"] == MULTI_CODED_IMPORT_ORIGIN


def test_multi_import_keeps_unchecked_labels_beside_a_checked_one():
    """One checked label is enough: all remaining labels, checked or not, are kept."""
    s, s1 = S01E01.scheme_id, S01E01.scheme_id + "-1"
    unchecked = _coder(s1, SKILLS, "2019-01-21T10:00:01.000Z", checked=False)
    coded = _coded(("shaqo", [unchecked, _coder(s, JOBS, "2019-01-21T10:00:00.000Z")]))
    [record] = _import_s01e01([_rqa_record("shaqo")], coded)
    assert _ids(record) == [(s, JOBS), (s1, SKILLS)]
    assert record["rqa_s01e01_coded"][1] is unchecked


def test_multi_import_ignores_other_schemes_in_the_file():
    """The binary and WS schemes in the same file do not enter the reasons field."""
    s = S01E01.scheme_id
    coded = _coded(("shaqo", [_coder(WS_CORRECT.scheme_id, WS_TO_S01E02, "2019-01-22T10:00:00.000Z"),
                              _coder(s, JOBS, "2019-01-21T10:00:00.000Z")]))
    [record] = _import_s01e01([_rqa_record("shaqo")], coded)
    assert _ids(record) == [(s, JOBS)]


def test_multi_import_keeps_an_existing_na_list():
    """A field already holding ``[NA]`` with nothing in the file stays as it is."""
    original = _rqa_record("shaqo").updated(LOAD, {"rqa_s01e01_coded": [_na(S01E01)]})
    [record] = _import_s01e01([original], CodedMessages())
    assert _ids(record) == [(S01E01.scheme_id, NA_ID)]


def test_multi_import_refuses_na_or_ns_beside_another_code_naming_the_message():
    """NA/NS under one duplicate scheme and a real code under another is a clear error (2019 asserted)."""
    s, s1 = S01E01.scheme_id, S01E01.scheme_id + "-1"
    coded = _coded(("shaqo", [_coder(s1, NS_ID, "2019-01-21T10:00:01.000Z"),
                              _coder(s, JOBS, "2019-01-21T10:00:00.000Z")]))
    with pytest.raises(CodaFileError, match=rf"Coded Coda Files/s01e01.json: record MessageID "
                                            rf"'{message_id('shaqo')}': NA or NS cannot stand beside another code"):
        _import_s01e01([_rqa_record("shaqo")], coded)


def test_multi_import_accepts_the_same_missing_code_under_two_duplicate_schemes():
    """NS under both the scheme and its duplicate is one missing code, kept even unchecked."""
    s, s1 = S01E01.scheme_id, S01E01.scheme_id + "-1"
    coded = _coded(("shaqo", [_coder(s1, NS_ID, "2019-01-21T10:00:01.000Z", checked=False),
                              _coder(s, NS_ID, "2019-01-21T10:00:00.000Z", checked=False)]))
    [record] = _import_s01e01([_rqa_record("shaqo")], coded)
    assert _ids(record) == [(s, NS_ID), (s1, NS_ID)]


def test_multi_import_refuses_an_unknown_code_naming_file_message_and_code():
    """A kept label whose CodeID the scheme lacks names the file, message id and code."""
    coded = _coded(("shaqo", [_coder(S01E01.scheme_id + "-2", "code-deleted", "2019-01-21T10:00:00.000Z")]))
    with pytest.raises(CodaFileError, match=r"s01e01.json: record MessageID '.*': field 'CodeID': CodeID "
                                            r"'code-deleted' \(SchemeID 'Scheme-d7eb83ef-2'\)"):
        _import_s01e01([_rqa_record("shaqo")], coded)


def test_a_label_time_that_is_not_iso_8601_is_refused_when_the_file_is_read():
    """The multi-coded import sorts by each label's time, so an unreadable one is named, and so it is on a message
    with one label, which nothing sorts (the file must not pass until a coder adds a second label)."""
    s = S01E01.scheme_id
    for labels in ([_coder(s, JOBS, "yesterday"), _coder(s, SKILLS, "2019-01-21T10:00:00.000Z")],
                   [_coder(s, JOBS, "yesterday")]):
        with pytest.raises(CodaFileError, match=r"record MessageID '.*': field 'Labels\[0\].DateTimeUTC': must be an "
                                                r"ISO 8601 time, found 'yesterday'"):
            _coded(("shaqo", labels))


def test_all_names_are_public_and_exist():
    """Every name in ``__all__`` exists in the module."""
    assert all(hasattr(coda_module, name) for name in coda_module.__all__)


def test_a_deeply_nested_coded_file_with_half_an_emoji_is_still_one_error(tmp_path):
    """The walk that finds it does not recurse: a file nested as deeply as the json module reads is named."""
    path = tmp_path / "s01e01.json"
    deep = "[" * 900 + '"\\ud800"' + "]" * 900  # the json module reads it; a recursive walk would not
    path.write_text(f'[{{"MessageID": "m1", "Text": "ok", "Labels": [], "Notes": {deep}}}]')
    with pytest.raises(CodaFileError, match=r"record MessageID 'm1': field 'Notes': holds half of a UTF-16 pair"):
        read_coded_file(path)


def test_a_coded_file_with_whole_emoji_only_is_read_without_the_walk(tmp_path, monkeypatch):
    """Escaped emoji (two escapes each, as json.dumps writes them) are characters; the file is not walked."""
    path = tmp_path / "s01e01.json"
    path.write_text(json.dumps([{"MessageID": "m1", "Text": "asc \U0001F600", "Labels": []}]))
    monkeypatch.setattr(coda_module, "_refuse_lone_surrogates", lambda *args: pytest.fail("walked"))
    assert read_coded_file(path).message_ids() == ["m1"]
