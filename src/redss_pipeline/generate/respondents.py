"""Where each respondent's raw records are, so stage 3 can work respondent by respondent (spec pipeline.md 7.1-7.2).

Every rule of stage 3 reads one message or one respondent (their surveys, operator, consent, fold), so the run
never needs every record in memory at once. :class:`RespondentIndex` reads each raw file once as a stream,
checking every record (``_sha`` included) before any output is written, and keeps only where the records lie:
for each respondent the positions of their show messages, and for each survey flow the record of each
respondent. That pass reads each record's content without building a record
(:meth:`~redss_pipeline.core.traced_data_json.RawFile.contents`), and only the keys the index needs: the
respondent id, and a show run's id and time. :meth:`RespondentIndex.chunks` then hands out respondents in the
order of their first message, a few thousand messages at a time, each chunk with its records decoded from the
files (without checking them again). Phone numbers typed into answers are redacted from every record a chunk
reads (:mod:`redss_pipeline.deidentify.phone_redaction`) before anything is derived from it; the keys the index
reads are never redacted (only result texts are), so they need no redaction.

A message's *position* is its place in the 2019 message order - the show files in coding-plan order, records
in file order - which is the row order of ``csap_mes.csv``; respondents come in the order of their first
message, which is the row order of ``csap_ind.csv``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from redss_pipeline.core.config import PipelineConfig
from redss_pipeline.core.data_root import DataRoot
from redss_pipeline.core.errors import RawDataError
from redss_pipeline.core.records import Record
from redss_pipeline.core.traced_data_json import RawFile
from redss_pipeline.deidentify.phone_redaction import PhoneRedactor, redact_raw_records
from redss_pipeline.generate.combine import (
    respondent_of_show_record,
    respondent_of_survey_record,
    show_flows,
    survey_flows,
)
from redss_pipeline.generate.input_warnings import ShowRunTally

__all__ = ["Chunk", "RespondentIndex"]

_REDACTION_BATCH = 1000  # records of respondents without messages decoded at a time, to count their phone numbers


@dataclass
class Chunk:
    """The raw records of some respondents: each show file's records and each survey file's records (in the
    orders :func:`show_flows` and :func:`survey_flows` give, records in file order), and the position of each
    show record in the message order, for the show records taken in file order.

    ``continues`` is true for a chunk that holds part of one respondent's messages, the rest following in the
    next chunks (a respondent with more messages than a chunk holds, see :meth:`RespondentIndex.chunks`)."""

    show_files: list[list[Record]]
    survey_files: list[list[Record]]
    positions: list[int]
    continues: bool = False


class RespondentIndex:
    """uid -> positions of their show messages, and per survey flow uid -> record number."""

    def __init__(self, config: PipelineConfig, root: DataRoot, redactor: PhoneRedactor):
        self._redactor = redactor
        self._shows = [_raw_file(root, flow) for flow in show_flows(config)]
        self._surveys = [_raw_file(root, flow) for flow in survey_flows(config)]
        self._first_positions: list[int] = []  # position of the first record of each show file
        self.messages: dict[str, list[int]] = {}  # uid -> positions, in order; respondents in first-message order
        self.surveys: list[dict[str, int]] = []  # per survey flow: uid -> record number
        self.show_runs = [ShowRunTally(plan.result_key, plan.flow) for plan in config.rqa_plans]
        position = 0
        for raw, flow, tally in zip(self._shows, show_flows(config), self.show_runs):
            self._first_positions.append(position)
            messages = self.messages
            # Unredacted values, but only the uid, run id and time are read: redaction rewrites result texts only.
            for _, content in raw.contents():
                tally.add(content)
                uid = respondent_of_show_record(content, flow)
                found = messages.get(uid)
                if found is None:
                    messages[uid] = [position]
                else:
                    found.append(position)
                position += 1
        self.message_count = position
        for raw, flow in zip(self._surveys, survey_flows(config)):
            index: dict[str, int] = {}
            unsent: list[int] = []  # the records of respondents who sent no message
            for number, content in raw.contents():
                uid = respondent_of_survey_record(content, flow, number)
                if uid in index:
                    raise RawDataError(
                        f"respondent appears twice in the {flow} survey (one record per respondent expected)",
                        path=f"Raw Data/{flow}.json", record=uid, field="avf_phone_id",
                    )
                index[uid] = number
                if uid not in self.messages:
                    unsent.append(number)
            # No chunk reads these records, and no output needs them, but their typed phone numbers count like
            # all others.
            for start in range(0, len(unsent), _REDACTION_BATCH):
                redact_raw_records(raw.read(unsent[start:start + _REDACTION_BATCH]), redactor)
            self.surveys.append(index)

    @property
    def survey_record_count(self) -> int:
        return sum(map(len, self.surveys))

    def chunks(self, messages_per_chunk: int) -> Iterator[Chunk]:
        """The respondents in the order of their first message, in chunks of about ``messages_per_chunk``
        messages, with their records. A respondent is never split between chunks, unless they alone have more
        messages than a chunk holds: such a respondent gets chunks of their own, ``messages_per_chunk`` of their
        messages each, in message order, every one but the last marked ``continues``."""
        uids: list[str] = []
        count = 0
        for uid, positions in self.messages.items():
            if len(positions) > messages_per_chunk:
                if uids:
                    yield self._chunk(uids)
                    uids, count = [], 0
                # Their survey records are read (and their phone numbers counted) once, for all their chunks.
                surveys = self._survey_files([uid])
                for start in range(0, len(positions), messages_per_chunk):
                    end = start + messages_per_chunk
                    yield Chunk(self._show_files(positions[start:end]), surveys, positions[start:end],
                                continues=end < len(positions))
                continue
            uids.append(uid)
            count += len(positions)
            if count >= messages_per_chunk:
                yield self._chunk(uids)
                uids, count = [], 0
        if uids:
            yield self._chunk(uids)

    def _chunk(self, uids: list[str]) -> Chunk:
        positions = sorted(position for uid in uids for position in self.messages[uid])
        return Chunk(self._show_files(positions), self._survey_files(uids), positions)

    def _show_files(self, positions: list[int]) -> list[list[Record]]:
        """The records of the show messages at ``positions`` (ascending), per show file."""
        show_files = []
        for number, raw in enumerate(self._shows):
            first = self._first_positions[number]
            end = first + len(raw)
            show_files.append(redact_raw_records(raw.read([p - first for p in positions if first <= p < end]),
                                                 self._redactor))
        return show_files

    def _survey_files(self, uids: list[str]) -> list[list[Record]]:
        """The survey records of ``uids``, per survey file."""
        survey_files = []
        for raw, index in zip(self._surveys, self.surveys):
            numbers = sorted(number for number in map(index.get, uids) if number is not None)
            survey_files.append(redact_raw_records(raw.read(numbers), self._redactor))
        return survey_files


def _raw_file(root: DataRoot, flow: str) -> RawFile:
    path = root.raw_file(flow)
    if not path.is_file():
        raise RawDataError("raw data file missing: run stage 2 (2_fetch_raw_data.sh) on this data root first",
                           path=path)
    return RawFile(path)
