"""The respondent index of stage 3: which raw records each chunk of respondents gets, and the survey files'
one-record-per-respondent rule. The expected grouping is worked out from the raw files read whole."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from redss_pipeline.core.config import load_config
from redss_pipeline.core.data_root import DataRoot
from redss_pipeline.core.errors import RawDataError
from redss_pipeline.core.records import Record, Step
from redss_pipeline.core.traced_data_json import read_traced_data_file, write_traced_data_file
from redss_pipeline.deidentify.phone_redaction import PhoneRedactor
from redss_pipeline.generate.combine import show_flows, survey_flows
from redss_pipeline.generate.respondents import RespondentIndex

PROJECT_ROOT = Path(__file__).resolve().parents[1]
GOLDEN_ROOT = PROJECT_ROOT / "tests/golden/data_root"
CONFIG = load_config(PROJECT_ROOT / "pipeline_config.json")
UID = "avf_phone_id"


@pytest.fixture
def root(tmp_path) -> Path:
    copy = tmp_path / "root"
    shutil.copytree(GOLDEN_ROOT, copy)
    return copy


def _index(root: Path, workers: int = 1) -> RespondentIndex:
    return RespondentIndex(CONFIG, DataRoot(root), PhoneRedactor(CONFIG.phone_redaction), workers=workers)


def _raw(root: Path, flow: str) -> list[Record]:
    return read_traced_data_file(root / "Raw Data" / f"{flow}.json")


@pytest.mark.parametrize(("messages_per_chunk", "workers"), [(1, 1), (3, 1), (1_000, 1), (3, 2)])
def test_chunks_hold_whole_respondents_in_first_message_order(root, messages_per_chunk, workers):
    """Every message once; a respondent's messages in one chunk, in message order - or, when they alone have
    more messages than a chunk holds, in chunks of their own that continue one another; respondents in the
    order of their first message; each chunk with exactly its respondents' survey records, in file order."""
    messages = [record for flow in show_flows(CONFIG) for record in _raw(root, flow)]  # the message order
    positions_of: dict[str, list[int]] = {}
    for position, record in enumerate(messages):
        positions_of.setdefault(record[UID], []).append(position)
    surveys = [_raw(root, flow) for flow in survey_flows(CONFIG)]

    index = _index(root, workers)  # with 2 workers, the files are read in two processes
    # Workers' CPU is counted for the step times, so a run without workers counts none. (With workers it is not
    # asserted to be above 0: the process clock counts in ticks of 10 ms, more than reading these records may take.)
    if workers == 1:
        assert index.worker_cpu_seconds == 0
    assert (index.message_count, index.respondent_count) == (len(messages), len(positions_of))
    assert index.survey_record_count == sum(map(len, surveys))
    respondents_in_order: list[str] = []
    split = 0
    pieces: list[int] = []  # the positions of a split respondent's chunks so far
    chunks = (chunk for span in index.spans(messages_per_chunk) for chunk in index.read(span))
    for chunk in chunks:
        uids = list(dict.fromkeys(messages[p][UID] for p in chunk.positions))
        shown = [record for file in chunk.show_files for record in file]
        assert [record.to_dict() for record in shown] == [messages[p].to_dict() for p in chunk.positions]
        for file, survey in zip(chunk.survey_files, surveys):
            assert [record.to_dict() for record in file] == [r.to_dict() for r in survey if r[UID] in uids]
        if pieces or chunk.continues:  # part of one respondent's messages
            assert len(uids) == 1 and len(chunk.positions) <= messages_per_chunk
            pieces += chunk.positions
            if chunk.continues:
                continue
            assert pieces == positions_of[uids[0]] and len(pieces) > messages_per_chunk
            respondents_in_order += uids
            split, pieces = split + 1, []
            continue
        respondents_in_order += sorted(uids, key=lambda uid: positions_of[uid][0])
        assert chunk.positions == sorted(p for uid in uids for p in positions_of[uid])
    assert respondents_in_order == list(positions_of)  # first-message order, each respondent once
    assert split == sum(1 for found in positions_of.values() if len(found) > messages_per_chunk)


def _add_survey_records(root: Path, flow: str, *uids: str) -> None:
    path = root / "Raw Data" / f"{flow}.json"
    records = read_traced_data_file(path)
    step = Step("fetcher@example.org", f"fetch/{flow}", 1548000400.0)
    write_traced_data_file(path, records + [Record.create(step, {UID: uid}) for uid in uids])


@pytest.mark.parametrize("workers", [1, 2])
def test_a_respondent_twice_in_a_survey_is_an_error_naming_them(root, workers):
    """Whether or not the respondent sent a message, a second record of theirs in a survey file is refused."""
    flow = survey_flows(CONFIG)[0]
    sender = _raw(root, show_flows(CONFIG)[0])[0][UID]
    _add_survey_records(root, flow, sender, sender)
    with pytest.raises(RawDataError, match=rf"{flow}.json: record {sender}: .*appears twice in the {flow} survey"):
        _index(root, workers)

    shutil.copy(GOLDEN_ROOT / "Raw Data" / f"{flow}.json", root / "Raw Data" / f"{flow}.json")
    silent = "avf-phone-uuid-99999999-0000-4000-8000-000000000099"
    _add_survey_records(root, flow, silent)
    assert _index(root).survey_record_count == len(_raw(root, flow)) + sum(
        len(_raw(root, other)) for other in survey_flows(CONFIG)[1:])
    _add_survey_records(root, flow, silent)
    with pytest.raises(RawDataError, match=rf"record {silent}: .*appears twice in the {flow} survey"):
        _index(root)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_survey_file_reports_its_first_bad_record(root, workers):
    """A respondent twice, then a record without a respondent id: the duplicate comes first in the file, so it
    is the error, as when the file is read record by record."""
    flow = survey_flows(CONFIG)[0]
    _add_survey_records(root, flow, "avf-phone-uuid-twice", "avf-phone-uuid-twice")
    path = root / "Raw Data" / f"{flow}.json"
    stray = Record.create(Step("fetcher@example.org", f"fetch/{flow}", 1548000400.0), {"note": "no uid"})
    write_traced_data_file(path, read_traced_data_file(path) + [stray])
    with pytest.raises(RawDataError, match=rf"record avf-phone-uuid-twice: .*appears twice in the {flow} survey"):
        _index(root, workers)


@pytest.mark.parametrize("survey", survey_flows(CONFIG))
def test_with_workers_the_first_bad_file_in_file_order_is_reported(root, survey):
    """Two bad files: a show record without a respondent id in the second show file, and a respondent twice in
    a survey file, each found by the process reading the file. Read in two processes, the biggest file first,
    the files may finish in any order; the error is the one a run in one process meets first, the show
    file's. Each survey file in turn is the bad one, so the bad file read first (the biggest) is among them."""
    flow = show_flows(CONFIG)[1]
    path = root / "Raw Data" / f"{flow}.json"
    records = read_traced_data_file(path)
    stray = Record.create(Step("fetcher@example.org", f"fetch/{flow}", 1548000400.0), {"note": "no uid"})
    write_traced_data_file(path, records + [stray])
    _add_survey_records(root, survey, "avf-phone-uuid-twice", "avf-phone-uuid-twice")
    for workers in (1, 2):
        with pytest.raises(RawDataError, match=rf"{flow}.json: .*show record has no respondent id"):
            _index(root, workers)


def test_a_respondent_id_that_is_not_a_text_is_one_error_naming_file_and_field(root):
    """A uid of another JSON type (here a number) would otherwise be looked up in the phone number table and
    reported as unknown there, naming neither the raw file nor the record."""
    flow = show_flows(CONFIG)[0]
    records = _raw(root, flow)
    records[2] = records[2].updated(Step("editor@example.org", "hand edit", 1548000400.0), {UID: 12345})
    write_traced_data_file(root / "Raw Data" / f"{flow}.json", records)
    with pytest.raises(RawDataError) as raised:
        _index(root)
    message = str(raised.value)
    assert message.startswith(f"Raw Data/{flow}.json: record ")
    assert message.endswith(f"field '{UID}': show record has a respondent id that is not a text "
                            f"(a UUID of the phone number table) but a number")
    assert "12345" not in message  # a number in the uid's place may be a phone number: never echoed


@pytest.mark.parametrize("kind", ["show", "survey"])
def test_a_phone_number_in_the_respondent_id_is_reported_by_record_number_and_never_echoed(root, kind):
    """Stage 2 writes only ids of the UUID table; a number typed into a raw file in their place is refused at its
    record (its number in the file, not its id), and the message holds none of its digits. Before, the look-up
    in the UUID table reported it, naming the table and printing the number."""
    flow = (show_flows if kind == "show" else survey_flows)(CONFIG)[0]
    records = _raw(root, flow)
    records[3] = records[3].updated(Step("editor@example.org", "hand edit", 1548000400.0), {UID: "+252615551234"})
    write_traced_data_file(root / "Raw Data" / f"{flow}.json", records)
    with pytest.raises(RawDataError) as raised:
        _index(root)
    assert str(raised.value) == (f"Raw Data/{flow}.json: record 3: field '{UID}': the respondent id is not an id of "
                                 "the UUID table (avf-phone-uuid-...); it is not shown, as it may be a phone number")


def test_a_run_id_that_is_not_a_number_or_text_is_one_error_naming_file_record_and_field(root):
    flow = show_flows(CONFIG)[0]
    key = next(k for k in _raw(root, flow)[2].keys() if k.endswith(f"(Run ID) - {flow}"))
    records = _raw(root, flow)
    records[2] = records[2].updated(Step("editor@example.org", "hand edit", 1548000400.0), {key: [1]})
    write_traced_data_file(root / "Raw Data" / f"{flow}.json", records)
    with pytest.raises(RawDataError) as raised:
        _index(root)
    assert str(raised.value) == (f"Raw Data/{flow}.json: record 2: field '{key}': expected the run's id (a whole "
                                 f"number, or the run's uuid), found a list")


@pytest.mark.parametrize(("kind", "value", "found"), [("show", 42, "a number"), ("survey", 42, "a number"),
                                                     ("show", None, "null"), ("survey", None, "null")])
def test_an_answer_that_is_not_a_text_is_one_error_under_its_rapid_pro_key(root, kind, value, found):
    """The steps know an answer only under its pipeline key (``rqa_s01e01_raw``); the file's own key and the
    record's number are what a user can find in the raw file. An answer's ``(Value)`` is always a text (spec
    rapid-pro.md 4.3), so a null one is refused too (a missing key is an unanswered question)."""
    flow = show_flows(CONFIG)[0] if kind == "show" else survey_flows(CONFIG)[0]
    records = _raw(root, flow)
    key = next(k for k in records[2].keys() if k.endswith(f"(Value) - {flow}"))
    records[2] = records[2].updated(Step("editor@example.org", "hand edit", 1548000400.0), {key: value})
    write_traced_data_file(root / "Raw Data" / f"{flow}.json", records)
    with pytest.raises(RawDataError) as raised:
        _index(root)
    assert str(raised.value) == (f"Raw Data/{flow}.json: record 2: field '{key}': expected the answer's text, "
                                 f"found {found}")
