"""Where each respondent's raw records are, so stage 3 can work respondent by respondent (spec pipeline.md 7.1-7.2).

Every rule of stage 3 reads one message or one respondent (their surveys, operator, consent, fold), so the run
never needs every record in memory at once. :class:`RespondentIndex` reads each raw file once as a stream,
checking every record (``_sha`` included) before any output is written, and keeps only where the records lie:
for each respondent the positions of their show messages, and for each survey flow the record of each
respondent. That pass reads each record's content without building a record
(:meth:`~redss_pipeline.core.traced_data_json.RawFile.contents`), and only the keys the index needs: the
respondent id, and a show run's id and time; it also adds each record's keys to one set per file (a C-level
update of a few dozen keys, about a second over a million records), so a plan whose answer no record holds can be
named (:class:`~redss_pipeline.generate.input_warnings.RawAnswers`).
:meth:`RespondentIndex.spans` then divides the respondents, in the order of their first message, into spans of a
few thousand messages (a span is three numbers, so it can be handed to a worker process), and
:meth:`RespondentIndex.read` gives a span's chunks with their records decoded from the files (without checking
them again). Phone numbers typed into answers are redacted from every record a chunk
reads (:mod:`redss_pipeline.deidentify.phone_redaction`) before anything is derived from it; the keys the index
reads are never redacted (only result texts are), so they need no redaction.

A message's *position* is its place in the 2019 message order - the show files in coding-plan order, records
in file order - which is the row order of ``csap_mes.csv``; respondents come in the order of their first
message, which is the row order of ``csap_ind.csv``.
"""

from __future__ import annotations

from array import array
from contextlib import closing, contextmanager
from dataclasses import dataclass
from itertools import islice
from typing import Any, Callable, Iterable, Iterator, Mapping

from redss_pipeline.core.config import PipelineConfig, RqaPlan, SurveyPlan
from redss_pipeline.core.data_root import DataRoot, refuse_what_is_in_the_way
from redss_pipeline.core.errors import RawDataError, json_type
from redss_pipeline.core.records import Record
from redss_pipeline.core.traced_data_json import RawFile
from redss_pipeline.core.workers import ended_workers_cpu_seconds, in_order
from redss_pipeline.deidentify.phone_redaction import PhoneRedactor, redact_raw_records
from redss_pipeline.deidentify.uuid_table import UUID_PREFIX
from redss_pipeline.fetch.rapid_pro_keys import PHONE_ID_KEY, raw_key
from redss_pipeline.generate.combine import (
    respondent_of_show_record,
    respondent_of_survey_record,
    show_flows,
    survey_flows,
)
from redss_pipeline.generate.input_warnings import RawAnswers, ShowRuns, ShowRunTally

__all__ = ["Span", "Chunk", "RespondentIndex"]

_REDACTION_BATCH = 1000  # records of respondents without messages decoded at a time, to count their phone numbers


@dataclass(frozen=True)
class Span:
    """Some respondents, numbered ``first`` to ``end - 1`` in the order of their first message, to be read in
    chunks of about ``messages_per_chunk`` messages (:meth:`RespondentIndex.read`). A span is a few numbers, so
    it is cheap to hand to a worker process, which reads the records itself."""

    first: int
    end: int
    messages_per_chunk: int


@dataclass
class Chunk:
    """The raw records of some respondents: each show file's records and each survey file's records (in the
    orders :func:`show_flows` and :func:`survey_flows` give, records in file order), and the position of each
    show record in the message order, for the show records taken in file order.

    ``continues`` is true for a chunk that holds part of one respondent's messages, the rest following in the
    next chunks (a respondent with more messages than a chunk holds, see :meth:`RespondentIndex.read`)."""

    show_files: list[list[Record]]
    survey_files: list[list[Record]]
    positions: list[int]
    continues: bool = False


class RespondentIndex:
    """Where each respondent's show messages and survey records lie in the raw files.

    Respondents are numbered 0, 1, 2, ... in the order of their first message. The index keeps, for the whole
    run, only machine integers in flat arrays (about 8 bytes per message and 8 per respondent and survey flow):
    every respondent's message positions, ascending, one respondent after the other, and per survey flow each
    respondent's record number. Each raw file's :class:`~redss_pipeline.core.traced_data_json.RawFile` keeps
    where its records lie, as numbers (each record's byte offset in the file and the number of its first JSON
    object: 16 bytes per record), so about 24 bytes per message in all. The uids are needed only
    while the files are read, to match a survey record to its respondent; they are let go afterwards.

    With ``workers`` above 1 the raw files are read through in that many worker processes, a file each, the
    biggest handed out first (:func:`~redss_pipeline.core.workers.in_order`); each sends back its file's uids,
    the places of its records, the answers its records hold and a show file's run counts, and this process takes
    them in file order.
    """

    def __init__(self, config: PipelineConfig, root: DataRoot, redactor: PhoneRedactor, *, workers: int = 1):
        self.redactor = redactor
        answers: dict[str, dict[str, None]] = {}  # flow -> the Rapid Pro keys of the answers read from it
        answer_plans: list[RqaPlan | SurveyPlan] = [*config.rqa_plans, *config.survey_plans]
        for answer_plan in answer_plans:
            answers.setdefault(answer_plan.flow, {})[raw_key(answer_plan.result_key, "Value", answer_plan.flow)] = None
        shows = [_FileToScan(_raw_file(root, flow), flow, ShowRunTally(plan.result_key, plan.flow),
                             tuple(answers.get(flow, ())))
                 for flow, plan in zip(show_flows(config), config.rqa_plans)]
        surveys = [_FileToScan(_raw_file(root, flow), flow, None, tuple(answers.get(flow, ())))
                   for flow in survey_flows(config)]
        files = shows + surveys

        @contextmanager
        def scanning() -> Iterator[Callable[[int], list[_FileScan]]]:
            yield lambda number: [files[number].scan()]

        # The files are read through in worker processes, a file each, handed out biggest first so that the
        # workers finish at about the same time (the survey file of demographics is often the biggest, and comes
        # last). Their scans come back in file order, so a bad record stops the run with the error a run in one
        # process meets first.
        biggest_first = sorted(range(len(files)), key=lambda number: -files[number].raw.path.stat().st_size)
        cpu_before = ended_workers_cpu_seconds()
        with closing(in_order(range(len(files)), scanning, workers=min(workers, len(files)),
                              hand_out=biggest_first)) as scans:
            numbers = self._read_show_scans(islice(scans, len(shows)))
            self._read_survey_scans(islice(scans, len(surveys)), numbers)
        self.worker_cpu_seconds = ended_workers_cpu_seconds() - cpu_before  # what the reading took in workers

    def _read_show_scans(self, scans: Iterable[_FileScan]) -> dict[str, int]:
        """Numbers the respondents in the order of their first message, and lists each one's positions; returns
        the numbers by uid, which only the survey files need."""
        self._shows: list[RawFile] = []
        self.show_runs: list[ShowRuns] = []  # for the warnings
        self.raw_answers: list[RawAnswers] = []  # for the warnings: every raw file's, in file order
        self._first_positions: list[int] = []  # position of the first record of each show file
        numbers: dict[str, int] = {}  # uid -> respondent number
        respondent_at = array("q")  # position -> respondent number
        message_counts = array("q")  # respondent number -> how many messages
        position = 0
        for scan in scans:  # in file order; a file's uids are let go once numbered
            assert scan.runs is not None
            self._shows.append(scan.raw)
            self.show_runs.append(scan.runs)
            self.raw_answers.append(scan.answers)
            self._first_positions.append(position)
            for uid in scan.uids:
                number = numbers.get(uid)
                if number is None:
                    number = numbers[uid] = len(message_counts)
                    message_counts.append(1)
                else:
                    message_counts[number] += 1
                respondent_at.append(number)
            position += len(scan.uids)
        self.message_count = position
        self.respondent_count = len(message_counts)
        # Respondent r's positions are self._positions[self._starts[r]:self._starts[r + 1]], ascending.
        self._starts = array("q", [0])
        for count in message_counts:
            self._starts.append(self._starts[-1] + count)
        self._positions = array("q", bytes(8 * position))
        free = self._starts[:-1]  # the next free slot of each respondent
        for position, number in enumerate(respondent_at):
            self._positions[free[number]] = position
            free[number] += 1
        return numbers

    def _read_survey_scans(self, scans: Iterable[_FileScan], numbers: dict[str, int]) -> None:
        """Finds each respondent's record in each survey file (one at most), and counts the phone numbers typed
        into the records of respondents who sent no message."""
        self._surveys: list[RawFile] = []
        self._survey_records: list[array[int]] = []  # per survey flow: respondent number -> record number, or -1
        self.survey_record_count = 0
        for scan in scans:
            self._surveys.append(scan.raw)
            self.raw_answers.append(scan.answers)
            record_of = array("q", [-1]) * self.respondent_count
            unsent: list[int] = []  # the records of respondents who sent no message
            for number, uid in enumerate(scan.uids):  # each uid once (the scan checked it)
                respondent = numbers.get(uid)
                if respondent is None:
                    unsent.append(number)
                else:
                    record_of[respondent] = number
            self.survey_record_count += len(scan.uids)
            # No chunk reads these records, and no output needs them, but their typed phone numbers count like
            # all others.
            for start in range(0, len(unsent), _REDACTION_BATCH):
                redact_raw_records(scan.raw.read(unsent[start:start + _REDACTION_BATCH]), self.redactor)
            self._survey_records.append(record_of)

    def spans(self, messages_per_chunk: int) -> Iterator[Span]:
        """The respondents in the order of their first message, in spans of about ``messages_per_chunk``
        messages: which respondents, not their records (:meth:`read` reads them). A respondent is never split
        between spans; one who alone has more messages than a chunk holds gets a span of their own, read in
        several chunks (see :meth:`read`)."""
        starts = self._starts
        first = 0  # the first respondent of the span being gathered
        for respondent in range(self.respondent_count):
            start, end = starts[respondent], starts[respondent + 1]
            if end - start > messages_per_chunk:
                if first < respondent:
                    yield Span(first, respondent, messages_per_chunk)
                yield Span(respondent, respondent + 1, messages_per_chunk)
                first = respondent + 1
            elif end - starts[first] >= messages_per_chunk:
                yield Span(first, respondent + 1, messages_per_chunk)
                first = respondent + 1
        if first < self.respondent_count:
            yield Span(first, self.respondent_count, messages_per_chunk)

    def read(self, span: Span) -> Iterator[Chunk]:
        """The chunks of ``span``, with their records: one chunk, or for a respondent with more messages than a
        chunk holds, ``span.messages_per_chunk`` of their messages per chunk, in message order, every chunk but
        the last marked ``continues`` (their survey records are read once, for all their chunks)."""
        starts = self._starts
        start, end = starts[span.first], starts[span.end]
        if span.end - span.first > 1 or end - start <= span.messages_per_chunk:
            yield self._chunk(span.first, span.end)
            return
        surveys = self._survey_files(span.first, span.end)
        for piece in range(start, end, span.messages_per_chunk):
            positions = self._positions[piece:min(piece + span.messages_per_chunk, end)].tolist()
            yield Chunk(self._show_files(positions), surveys, positions,
                        continues=piece + span.messages_per_chunk < end)

    def _chunk(self, first: int, end: int) -> Chunk:
        """The records of the respondents numbered ``first`` to ``end - 1``."""
        positions = sorted(self._positions[self._starts[first]:self._starts[end]])
        return Chunk(self._show_files(positions), self._survey_files(first, end), positions)

    def _show_files(self, positions: list[int]) -> list[list[Record]]:
        """The records of the show messages at ``positions`` (ascending), per show file."""
        show_files = []
        for number, raw in enumerate(self._shows):
            first = self._first_positions[number]
            end = first + len(raw)
            show_files.append(redact_raw_records(raw.read([p - first for p in positions if first <= p < end]),
                                                 self.redactor))
        return show_files

    def _survey_files(self, first: int, end: int) -> list[list[Record]]:
        """The survey records of the respondents numbered ``first`` to ``end - 1``, per survey file."""
        survey_files = []
        for raw, record_of in zip(self._surveys, self._survey_records):
            numbers = sorted(number for number in record_of[first:end] if number >= 0)
            survey_files.append(redact_raw_records(raw.read(numbers), self.redactor))
        return survey_files


@dataclass
class _FileScan:
    """One raw file read through: the file, which now knows where its records lie, the respondent id of each
    record in file order (a survey file's each once), the answers its records hold, and for a show file its runs.
    Plain values, so a worker process can send it."""

    raw: RawFile
    uids: list[str]
    runs: ShowRuns | None
    answers: RawAnswers


@dataclass
class _FileToScan:
    """A raw file to read through once, checking every record; ``tally`` counts a show file's runs."""

    raw: RawFile
    flow: str
    tally: ShowRunTally | None
    answer_keys: tuple[str, ...]  # the answers' ``(Value)`` keys: a text where present (rapid-pro.md 4.3)

    def scan(self) -> _FileScan:
        # Unredacted values: the uid, run id and time are read, and the answers' types checked (errors name a
        # value's JSON type, never the value); redaction rewrites result texts only.
        uids = []
        keys: set[str] = set()  # every key a record holds, each once (a few dozen per flow)
        if self.tally is None:
            seen: set[str] = set()
            for number, content in self.raw.contents():
                self._check_answers(content, number)
                keys.update(content)
                uid = self._checked_uid(respondent_of_survey_record(content, self.flow, number), number)
                if uid in seen:  # raised here, at the record, so a later bad record is not reported first
                    raise RawDataError(
                        f"respondent appears twice in the {self.flow} survey (one record per respondent expected)",
                        path=f"Raw Data/{self.flow}.json", record=uid, field=PHONE_ID_KEY,
                    )
                seen.add(uid)
                uids.append(uid)
        else:
            for number, content in self.raw.contents():
                self._check_answers(content, number)
                keys.update(content)
                self.tally.add(content)
                uids.append(self._checked_uid(respondent_of_show_record(content, self.flow), number))
        runs = None if self.tally is None else self.tally.finished()
        return _FileScan(self.raw, uids, runs, RawAnswers.of(len(uids), keys, self.flow))

    def _checked_uid(self, uid: str, number: int) -> str:
        """``uid``, which must be an id of the UUID table (stage 2 writes nothing else). Anything else, such as a
        phone number typed into the file, is reported under the record's number in the file and never echoed."""
        if not uid.startswith(UUID_PREFIX):
            raise RawDataError(f"the respondent id is not an id of the UUID table ({UUID_PREFIX}...); it is not "
                               "shown, as it may be a phone number", path=f"Raw Data/{self.flow}.json",
                               record=number, field=PHONE_ID_KEY)
        return uid

    def _check_answers(self, content: Mapping[str, Any], number: int) -> None:
        """An answer that is not a text (null included) is reported here, under its Rapid Pro key and the record's
        number in the file; the steps know it only under its pipeline key."""
        for key in self.answer_keys:
            value = content.get(key, "")  # a missing key is a question not answered
            if type(value) is not str:
                raise RawDataError(f"expected the answer's text, found {json_type(value)}",
                                   path=f"Raw Data/{self.flow}.json", record=number, field=key)


def _raw_file(root: DataRoot, flow: str) -> RawFile:
    path = root.raw_file(flow)
    if not path.is_file():
        refuse_what_is_in_the_way(path, RawDataError)
        raise RawDataError("raw data file missing: run stage 2 (2_fetch_raw_data.sh) on this data root first",
                           path=path)
    return RawFile(path)
