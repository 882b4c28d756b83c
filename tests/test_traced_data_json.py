"""Reading and writing raw data files in the 2019 TracedData JSON layout (spec rapid-pro.md section 4)."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from redss_pipeline.core.errors import RawDataError
from redss_pipeline.core.records import Record, Step
from redss_pipeline.core.traced_data_json import (
    RawFile,
    read_traced_data_file,
    write_traced_data_file,
)

TD = "core_data_modules.traced_data.traced_data.TracedData"
MD = "core_data_modules.traced_data.traced_data.Metadata"
S01 = "Rqa_S01E01 (Value) - csap_s01e01_activation"
S01_RUN = "Rqa_S01E01 (Run ID) - csap_s01e01_activation"
S02 = "Rqa_S01E02 (Value) - csap_s01e02_activation"
GENDER = "Gender (Value) - csap_demog"
PHONE_A = "avf-phone-uuid-aaaaaaaa-0000-4000-8000-000000000001"
PHONE_B = "avf-phone-uuid-bbbbbbbb-0000-4000-8000-000000000002"
LABEL = {"CodeID": "code-f1", "SchemeID": "Scheme-12cb6f95", "Checked": True, "Confidence": 1.0,
         "DateTimeUTC": "2019-01-20T10:00:00.000000Z",
         "Origin": {"OriginID": "coder@example.org", "Name": "coder@example.org", "OriginType": "Manual"}}


def sha(data: dict, prev_sha: str) -> str:
    """The spec's rule: SHA-256 of json.dumps({"data": D, "prev_sha": P}, sort_keys=True)."""
    return hashlib.sha256(json.dumps({"data": data, "prev_sha": prev_sha}, sort_keys=True).encode("utf-8")).hexdigest()


def metadata(user: str, source: str, timestamp: object) -> dict:
    return {"py/object": MD, "user": user, "source": source, "timestamp": timestamp}


def layout(items: list) -> str:
    """The file text as the spec describes it: sorted keys, indent 2, ", " and ": ", ASCII, newline."""
    return json.dumps(items, sort_keys=True, indent=2, separators=(", ", ": ")) + "\n"


# Hand-built file. py/id numbers follow jsonpickle: the list is 0, then record layers, metadata objects and
# lists are numbered in the order a depth-first walk over sorted keys meets them (plain dicts are not).
A1 = {"avf_phone_id": PHONE_A, S01: "first", S01_RUN: 101}
A2 = {"avf_phone_id": PHONE_A, S01: "second", S01_RUN: 102}
A3 = {"avf_phone_id": PHONE_A, S02: "third"}
SHA_A1 = sha(A1, "")
SHA_A2 = sha(A2, SHA_A1)
SHA_A3 = sha(A3, SHA_A2)
SURVEY = {"avf_phone_id": PHONE_B, GENDER: "f", "gender_coded": [LABEL], "note": "from survey"}
SHA_SURVEY = sha(SURVEY, "")
B1 = {"avf_phone_id": PHONE_B, GENDER: "older own", "note": "older own"}
SHA_B1 = sha(B1, "")
SHA_B2 = sha({"demog": SHA_SURVEY, "note": "same layer own"}, SHA_B1)
C1 = {"avf_phone_id": PHONE_B, S02: "hello"}
SHA_C1 = sha(C1, "")
SHA_C2 = sha({"demog": SHA_SURVEY, "labels_copy": [LABEL]}, SHA_C1)

FILE = [
    # record 0: latest-only, three runs. Layers are objects 1 (newest), 3, 5; their metadata 2, 4, 6.
    {"py/object": TD, "_data": A3, "_sha": SHA_A3,
     "_metadata": metadata("fetcher@example.org", "fetch_runs.py:135:<module>", 1548000300.5),
     "_prev": {"py/object": TD, "_data": A2, "_sha": SHA_A2,
               "_metadata": metadata("fetcher@example.org", "fetch_runs.py:135:<module>", 1548000200.25),
               "_prev": {"py/object": TD, "_data": A1, "_sha": SHA_A1, "_prev": None,
                         "_metadata": metadata("fetcher@example.org", "fetch_runs.py:135:<module>", 1548000100.0)}}},
    # record 1: newest layer 7 attaches the survey record (8, its label list 9, its metadata 10) and writes
    # "note" itself; its metadata is 11; the older layer is 12 with metadata 13.
    {"py/object": TD, "_sha": SHA_B2,
     "_data": {"demog": {"py/object": TD, "_data": SURVEY, "_prev": None, "_sha": SHA_SURVEY,
                         "_metadata": metadata("fetcher@example.org", "fetch_runs.py:135:<module>", 1548000400.0)},
               "note": "same layer own"},
     "_metadata": metadata("analyst@example.org", "combine/surveys", "2019-02-01T09:00:00+00:00"),
     "_prev": {"py/object": TD, "_data": B1, "_prev": None, "_sha": SHA_B1,
               "_metadata": metadata("fetcher@example.org", "fetch_runs.py:135:<module>", 1548000500.0)}},
    # record 2: layer 14 refers to the survey record (8), to its label list (9) and to the step of record 1's
    # attaching layer (11); the older layer is 15 with metadata 16.
    {"py/object": TD, "_sha": SHA_C2,
     "_data": {"demog": {"py/id": 8}, "labels_copy": {"py/id": 9}},
     "_metadata": {"py/id": 11},
     "_prev": {"py/object": TD, "_data": C1, "_prev": None, "_sha": SHA_C1,
               "_metadata": metadata("fetcher@example.org", "fetch_runs.py:135:<module>", 1548000600.0)}},
]
TEXT = layout(FILE)


@pytest.fixture
def read(tmp_path):
    """Reads a raw file's text as stage 3 reads raw files (RawFile, streaming), from a file of the name given."""
    def read(text: str, *, name: str, verify_sha: bool = True) -> list[Record]:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return read_traced_data_file(path, verify_sha=verify_sha)
    return read


@pytest.fixture
def written(tmp_path):
    """The text of a raw file written as stage 2 writes them (write_traced_data_file)."""
    def written(records: list[Record]) -> str:
        path = tmp_path / "written.json"
        write_traced_data_file(path, records)
        return path.read_text(encoding="utf-8")
    return written


def test_latest_only_record_reads_as_three_layers_with_their_own_metadata(read):
    """Each 2019 layer becomes a layer whose step is that layer's own user, source and timestamp."""
    record = read(TEXT, name="s01e01.json")[0]
    assert [layer.data for layer in record.layers] == [A1, A2, A3]
    assert [layer.step for layer in record.layers] == [
        Step("fetcher@example.org", "fetch_runs.py:135:<module>", t) for t in (1548000100.0, 1548000200.25, 1548000300.5)
    ]
    assert record[S01] == "second" and record[S02] == "third" and record[S01_RUN] == 102
    assert [change.value for change in record.history(S01)] == ["first", "second"]


def test_key_lookup_follows_2019_order(read):
    """Own values of the newest layer win, then records attached in that layer, then older layers."""
    record = read(TEXT, name="x.json")[1]
    assert record["note"] == "same layer own"
    assert record[GENDER] == "f"
    assert record["gender_coded"] == [LABEL]
    assert record.layers[1].step.timestamp == "2019-02-01T09:00:00+00:00"


def test_py_id_references_resolve_to_the_values_read_earlier(read):
    """A referenced survey record, label list and step read as the values they refer to (each record is decoded
    on its own, so they are equal values, not necessarily the same objects)."""
    records = read(TEXT, name="x.json")
    survey_1 = records[1].layers[1].data["demog"]
    survey_2 = records[2].layers[1].data["demog"]
    assert survey_1 == survey_2 and survey_2[GENDER] == "f" and survey_2.layers == survey_1.layers
    assert records[2]["labels_copy"] == survey_1["gender_coded"] == [LABEL]
    assert records[2].layers[1].step == records[1].layers[1].step
    assert records[2][S02] == "hello" and records[2]["note"] == "from survey"


def test_writing_back_reproduces_the_file_byte_for_byte(read, written):
    """A file in the layout the pipeline writes comes back identical: data, layers, metadata, _sha, py/id."""
    assert written(read(TEXT, name="x.json")) == TEXT


def test_written_sha_values_follow_the_spec_rule(written):
    """Records made by the new pipeline get _sha values computed by the 2019 rule."""
    step = Step("analyst@example.org", "combine/surveys", 1549000000.0)
    survey = Record.create(step, SURVEY)
    record = Record.create(step, C1).updated(step, {"demog": survey}).updated(step, {"uid": PHONE_B})
    output = json.loads(written([record]))[0]
    survey_sha = sha(SURVEY, "")
    attach_sha = sha({"demog": survey_sha}, sha(C1, ""))
    assert output["_sha"] == sha({"uid": PHONE_B}, attach_sha)
    assert output["_prev"]["_sha"] == attach_sha
    assert output["_prev"]["_data"]["demog"]["_sha"] == survey_sha
    assert output["_metadata"] == metadata("analyst@example.org", "combine/surveys", 1549000000.0)
    assert output["_prev"]["_metadata"] == {"py/id": 2}  # the shared step is written once


def test_py_state_variant_reads_like_the_flat_layout(read, written):
    """Attributes wrapped in py/state (jsonpickle under newer Pythons) give the same records and _sha."""
    state_file = [
        {"py/object": TD, "py/state": {"_data": A2, "_sha": SHA_A2,
                                       "_metadata": {"py/object": MD, "py/state": {"user": "fetcher@example.org",
                                                     "source": "fetch_runs.py:135:<module>", "timestamp": 1548000200.25}},
                                       "_prev": {"py/object": TD, "py/state": {"_data": A1, "_prev": None, "_sha": SHA_A1,
                                                 "_metadata": metadata("fetcher@example.org", "fetch_runs.py:135:<module>", 1548000100.0)}}}},
        {"py/id": 1},
    ]
    records = read(json.dumps(state_file), name="x.json")
    assert records[0] == records[1] and records[0][S01] == "second"
    rewritten = json.loads(written(records[:1]))[0]
    assert rewritten["_sha"] == SHA_A2 and rewritten["_prev"]["_sha"] == SHA_A1
    assert rewritten["_data"] == A2 and "py/state" not in rewritten


def test_file_functions_round_trip_and_leave_no_temporary_file(tmp_path):
    """write_traced_data_file writes atomically and read_traced_data_file reads the same records back."""
    source = tmp_path / "source.json"
    source.write_text(TEXT, encoding="utf-8")
    records = read_traced_data_file(source)
    path = tmp_path / "s01e01.json"
    write_traced_data_file(path, records)
    assert path.read_text(encoding="utf-8") == TEXT
    assert read_traced_data_file(path) == records
    assert sorted(os.listdir(tmp_path)) == ["s01e01.json", "source.json"]


def test_failed_write_keeps_the_old_file(tmp_path):
    """A record that cannot be written leaves the previous file untouched and no temporary file behind."""
    path = tmp_path / "s01e01.json"
    path.write_text(TEXT, encoding="utf-8")
    bad = Record.create(Step("u", "s", 1.0), {"when": {1, 2}})
    with pytest.raises(RawDataError, match=r"s01e01.json: record 0: .*cannot be written as JSON"):
        write_traced_data_file(path, [bad])
    assert path.read_text(encoding="utf-8") == TEXT
    assert os.listdir(tmp_path) == ["s01e01.json"]


def _broken(change) -> str:
    items = json.loads(TEXT)
    change(items)
    return json.dumps(items)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda f: f[1]["_prev"].__setitem__("_data", ["x"]),
         r"x.json: record 1: field '_prev._data': expected an object, found a list"),
        (lambda f: f[0]["_prev"].pop("py/object"), r"x.json: record 0: field '_prev': missing py/object"),
        (lambda f: f[0].__setitem__("py/object", "os.system"),
         r"record 0: py/object is 'os.system', expected '.*TracedData'"),
        (lambda f: f[2]["_data"].__setitem__("demog", {"py/id": 99}),
         r"record 2: field \"_data\['demog'\]\": py/id 99 refers to no object read before it"),
        (lambda f: f[2].__setitem__("_metadata", {"py/id": 9}),
         r"record 2: field '_metadata': py/id 9 refers to list, not a Metadata object"),
        (lambda f: f[0]["_prev"]["_data"].__setitem__(S01, "edited"),
         r"record 0: field '_prev._sha': _sha [0-9a-f]{16}\.\.\. does not match the layer's content"),
        (lambda f: f[0]["_metadata"].__setitem__("user", 7), r"record 0: field '_metadata.user': expected a string"),
        (lambda f: f[0]["_data"].__setitem__("when", {"py/tuple": [1, 2]}),
         r"record 0: field \"_data\['when'\]\": unsupported jsonpickle tag 'py/tuple'"),
        (lambda f: f.__setitem__(0, "text"), r"record 0: expected a TracedData object, found a string"),
        (lambda f: f[2]["_data"].__setitem__("labels_copy", {"py/id": 0}),
         r"record 2: field \"_data\['labels_copy'\]\": py/id 0 refers to the file's own top-level list"),
    ],
)
def test_malformed_files_give_errors_naming_file_record_and_field(read, change, message):
    """Each kind of damage is reported with the file, the record index and the field."""
    with pytest.raises(RawDataError, match=message):
        read(_broken(change), name="x.json")


def test_non_json_and_non_list_files_are_refused(tmp_path, read):
    """A file that is not JSON, or not a list, is refused with its name and what was found."""
    path = tmp_path / "s01e02.json"
    path.write_text('[{"_data": ', encoding="utf-8")
    with pytest.raises(RawDataError, match=r"s01e02.json: not valid JSON \(line 1, column 12: Expecting value; "
                                           r"the file ends there \(cut short\?\)\)$"):
        read_traced_data_file(path)
    with pytest.raises(RawDataError, match=r"y.json: expected a JSON list of records, found an object$"):
        read("{}", name="y.json")


def test_sha_check_can_be_skipped_for_2019_stage_3_output(read):
    """verify_sha=False reads a file whose attaching layer was hashed before the survey record changed."""
    items = json.loads(TEXT)
    items[1]["_data"]["demog"]["_data"]["note"] = "changed after attaching"
    items[1]["_data"]["demog"]["_sha"] = sha(items[1]["_data"]["demog"]["_data"], "")
    with pytest.raises(RawDataError, match=r"record 1: field '_sha'"):
        read(json.dumps(items), name="x.json")
    records = read(json.dumps(items), name="x.json", verify_sha=False)
    assert records[2]["note"] == "changed after attaching"


def test_raw_file_streams_records_and_reads_chosen_ones_again(tmp_path):
    """Records read again by position equal those the stream gave, including a record referring (py/id) to a
    survey record and a list of an earlier record, which is decoded again from its place in the file. Non-ASCII
    texts keep the byte positions right."""
    path = tmp_path / "s01e01.json"
    items = json.loads(TEXT)
    items[0]["_data"][S02] = "caafimaad – ✓"
    items[0]["_sha"] = sha(items[0]["_data"], SHA_A2)
    path.write_text(json.dumps(items, sort_keys=True, indent=2, separators=(", ", ": "), ensure_ascii=False),
                    encoding="utf-8")
    raw = RawFile(path)
    expected = [record for _, record in raw.scan()]
    assert expected[0][S02] == "caafimaad – ✓" and len(raw) == 3
    assert raw.read([2, 0]) == [expected[2], expected[0]]
    again = raw.read([2])[0]
    assert again["note"] == "from survey" and again["labels_copy"] == [LABEL] and again[S02] == "hello"


def test_a_raw_file_that_is_not_utf8_says_at_which_byte(tmp_path, monkeypatch):
    """The byte is counted from the start of the file (hand-counted: '[' and 2,000 spaces, then the bad byte), also
    when the file is read in blocks that split a character before it."""
    path = tmp_path / "s01e01.json"
    path.write_bytes(b"[" + b" " * 2000 + b'"\xe2\x82 "]')
    for block in (1 << 16, 7):
        monkeypatch.setattr(RawFile, "_BLOCK", block)
        with pytest.raises(RawDataError, match=r"s01e01.json: not UTF-8 text \(invalid continuation byte at byte "
                                               r"2002\)$"):
            list(RawFile(path).scan())


def test_raw_file_in_small_blocks_and_with_a_truncated_end(tmp_path, monkeypatch):
    """Records split across read blocks decode the same; a file cut short is an error naming the file."""
    path = tmp_path / "s01e01.json"
    path.write_text(TEXT, encoding="utf-8")
    whole = read_traced_data_file(path)
    monkeypatch.setattr(RawFile, "_BLOCK", 7)
    assert [record for _, record in RawFile(path).scan()] == whole
    path.write_text(TEXT[: len(TEXT) // 2], encoding="utf-8")
    with pytest.raises(RawDataError, match=r"s01e01.json: not valid JSON \(line \d+, column \d+: .*cut short\?\)\)$"):
        list(RawFile(path).scan())


def test_a_raw_file_cut_inside_a_text_says_where_the_text_starts_and_that_the_file_ends_inside_it(tmp_path):
    """json's own words for it ("Unterminated string starting at") read garbled before the place; the message
    names the place where the text starts, and that the file ends inside it."""
    path = tmp_path / "s01e01.json"
    path.write_text('[{"_data": {"a": "unfinish', encoding="utf-8")
    with pytest.raises(RawDataError) as raised:
        list(RawFile(path).scan())
    assert str(raised.value) == (f"{path}: not valid JSON (line 1, column 18: a text starting here is never closed "
                                 "(the file ends inside it: cut short?))")


def test_raw_file_contents_give_each_records_values_without_building_it(tmp_path):
    """The index pass of stage 3 reads values without records: a one-layer record's values, a latest-only
    record's newest values, an attached survey record's values (2019 order), and the records can be read
    again by position afterwards. A damaged record is refused as :meth:`scan` refuses it."""
    single = {"avf_phone_id": PHONE_A, S01: "only", S01_RUN: 103}
    items = json.loads(TEXT) + [{"py/object": TD, "_data": single, "_prev": None, "_sha": sha(single, ""),
                                 "_metadata": {"py/id": 2}}]
    path = tmp_path / "s01e01.json"
    path.write_text(layout(items), encoding="utf-8")
    raw = RawFile(path)
    contents = [(index, dict(content)) for index, content in raw.contents()]
    assert [index for index, _ in contents] == [0, 1, 2, 3]
    assert contents[0][1] == {"avf_phone_id": PHONE_A, S01: "second", S01_RUN: 102, S02: "third"}
    assert contents[1][1]["note"] == "same layer own" and contents[1][1][GENDER] == "f"
    assert contents[2][1]["avf_phone_id"] == PHONE_B and contents[2][1]["note"] == "from survey"
    assert contents[3][1] == single
    assert raw.read([3])[0].to_dict() == single

    items[3]["_data"][S01] = "edited"
    path.write_text(layout(items), encoding="utf-8")
    with pytest.raises(RawDataError, match=r"s01e01.json: record 3: field '_sha': _sha [0-9a-f]{16}\.\.\. does not"):
        list(RawFile(path).contents())


def test_equal_values_built_apart_are_written_once_as_references(read, written):
    """Steps, survey records and lists equal in value are written once and then referred to with py/id, even
    when they were built separately; reading the file back gives equal records."""
    def survey():
        return Record.create(Step("fetcher@example.org", "fetch/csap_demog", 1548000400.0), SURVEY)

    records = [
        Record.create(Step("fetcher@example.org", "fetch/s02", 1548000600.0), C1)
        .updated(Step("analyst@example.org", "combine/surveys", 1549000000.0), {"demog": survey()})
        .updated(Step("analyst@example.org", "combine/surveys", 1549000000.0), {"labels_copy": [dict(LABEL)]})
        for _ in range(2)
    ]
    output = json.loads(written(records))
    # record 0: newest layer 1 (its labels_copy list 2, metadata 3), attaching layer 4 (the survey record 5,
    # whose gender_coded list equals list 2, metadata 6; the layer's own metadata is step 3 again), layer 7
    # with metadata 8. Record 1 refers to the step, the list, the survey record and the first layer's step.
    assert output[0]["_prev"]["_metadata"] == {"py/id": 3}
    assert output[0]["_prev"]["_data"]["demog"]["_data"] == dict(SURVEY, gender_coded={"py/id": 2})
    assert output[1]["_metadata"] == {"py/id": 3}
    assert output[1]["_data"]["labels_copy"] == {"py/id": 2}
    assert output[1]["_prev"]["_data"]["demog"] == {"py/id": 5}
    assert output[1]["_prev"]["_prev"]["_metadata"] == {"py/id": 8}
    assert read(json.dumps(output), name="x.json") == records

