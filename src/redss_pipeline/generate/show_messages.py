"""Auto-coding the show messages: filters, noise, NA labels, channel keys, RQA Coda files, ICR samples
(spec pipeline.md 7.4 and section 8).

The steps, in the order stage 3 runs them:

| step  | name                           | does                                                               |
| ----- | ------------------------------ | ------------------------------------------------------------------ |
| 7.4.1 | :class:`MessageFilters`        | drops the configured test contacts' runs                           |
| 7.4.2 |                                | drops runs without a show answer                                   |
| 7.4.3 |                                | keeps messages sent in the project, both ends inclusive            |
| 7.4.4 | :func:`flag_noise`             | ``noise`` = True / False (the 2019 noise rule)                     |
| 7.4.5 | :func:`label_other_shows_na`   | NA labels in the coded fields of the shows a message does not answer |
| 7.4.6 | :func:`set_channel_keys`       | channel, ``non_logical_time`` and week keys from ``sent_on``       |
| 7.4.8 | :func:`assign_rqa_message_ids` | ``<raw>_id`` on non-noise answers                                  |
| 7.4.8 | :class:`RqaCodaExport`         | the messages of the RQA Coda files (no labels)                     |
| 7.4.9 | :class:`IcrSamples`            | the seeded inter-coder-reliability samples                         |

Record order is never changed: it decides the row order of every output. The two exports gather their rows
chunk by chunk with each message's position in the message order, so stage 3 can feed them one chunk of
respondents at a time; what they gather waits in the run's scratch database, not in memory.
"""

from __future__ import annotations

import json
import random
from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping, NamedTuple, Sequence

from redss_pipeline.core.code_scheme import NA, CodeScheme
from redss_pipeline.core.config import PipelineConfig, RqaPlan, TimeRange
from redss_pipeline.core.errors import PipelineError, RawDataError
from redss_pipeline.core.labels import control_label
from redss_pipeline.core.record_fields import NOISE_KEY, NON_LOGICAL_TIME_KEY, record_id, record_time
from redss_pipeline.core.record_rules import Rule, SharedUpdates, apply_rule
from redss_pipeline.core.records import Record
from redss_pipeline.core.run_context import RunContext
from redss_pipeline.core.scratch_database import ScratchDatabase
from redss_pipeline.export import coda
from redss_pipeline.fetch.rapid_pro_keys import TEST_RUN_KEY
from redss_pipeline.generate.cleaners import is_noise

__all__ = [
    "NA_ORIGIN_ID",
    "IcrRow",
    "MessageFilters",
    "TEST_RUN",
    "EMPTY_RUN",
    "OUTSIDE_WINDOW",
    "flag_noise",
    "label_other_shows_na",
    "set_channel_keys",
    "WeeklessMessages",
    "assign_rqa_message_ids",
    "RqaCodaExport",
    "IcrSamples",
]

NA_ORIGIN_ID = "redss_pipeline.show_messages.other_shows_na@1"
"""Origin id of the NA labels written for the shows a message does not answer (README decision 10)."""

_TRUE, _FALSE = "true", "false"


class IcrRow(NamedTuple):
    """One ICR row: the run id (None, an empty cell, for a message moved here from another show's flow) and
    the message text; ``sent_on`` is the sampled record's message time (the creation time of its message in the
    second coder's Coda file, coding-quality.md section 1)."""

    run_id: Any
    raw: str
    sent_on: Any = None


# -- 7.4.1 - 7.4.3: filters ---------------------------------------------------------------------------------------


TEST_RUN = "test runs dropped"
EMPTY_RUN = "empty runs dropped"
OUTSIDE_WINDOW = "outside the project window"


class MessageFilters:
    """7.4.1 - 7.4.3 for one message at a time: :meth:`dropped_by` names the filter that drops it, or None.

    In order: the configured test contacts' runs (``test_run`` set) go; runs without a show's raw answer go;
    messages sent outside the project go (``start <= sent_on <= end``: both ends inclusive, as in 2019).
    """

    def __init__(self, config: PipelineConfig):
        self._raw_fields = [plan.raw_field for plan in config.rqa_plans]
        self._start, self._end = config.project_start, config.project_end
        self._time_field = config.message_time_field

    def dropped_by(self, record: Mapping[str, Any]) -> str | None:
        if record.get(TEST_RUN_KEY):
            return TEST_RUN
        if not any(field in record for field in self._raw_fields):
            return EMPTY_RUN
        if not self._start <= record_time(record, self._time_field) <= self._end:
            return OUTSIDE_WINDOW
        return None


# -- 7.4.4 - 7.4.6: record writes --------------------------------------------------------------------------------


def flag_noise(records: Sequence[Record], *, config: PipelineConfig, run: RunContext) -> list[Record]:
    """Sets ``noise`` (a bool): True unless one of the record's show answers is not noise (cleaners.md 2)."""
    return apply_rule(records, _noise_rule(config), run.step("generate/noise"))


def _noise_rule(config: PipelineConfig) -> Rule:
    raw_fields = [plan.raw_field for plan in config.rqa_plans]
    wanted = frozenset(raw_fields)
    min_length = config.noise_min_length
    flags = {noise: SharedUpdates(noise, {NOISE_KEY: noise}) for noise in (True, False)}

    def noise(values: Mapping[str, Any]) -> dict[str, Any]:
        present = values.keys() & wanted  # typically the one show the message answers
        if present:
            for field in raw_fields:
                if field in present and not is_noise(_text(values, field), min_length):
                    return flags[False]
        return flags[True]

    return noise


def label_other_shows_na(records: Sequence[Record], *, config: PipelineConfig, run: RunContext) -> list[Record]:
    """For each show whose raw answer a record lacks: its coded field = ``[NA label]`` (a one-element list, as
    reasons are multi-coded) and, for a show with a binary question, the binary coded field = an NA label."""
    return apply_rule(records, _other_shows_na_rule(config, run), run.step("generate/other_shows_na"))


def _other_shows_na_rule(config: PipelineConfig, run: RunContext) -> Rule:
    writes: list[tuple[str, dict[str, Any]]] = []
    for plan in config.rqa_plans:
        # One label (and one list) per plan, shared by every record: labels are never changed once made.
        na: dict[str, Any] = {plan.coded_field: [_na_label(plan.scheme, run)]}
        if plan.binary is not None:
            na[plan.binary.coded_field] = _na_label(plan.binary.scheme, run)
        writes.append((plan.raw_field, na))
    wanted = frozenset(raw_field for raw_field, _ in writes)
    by_answered: dict[frozenset[str], SharedUpdates] = {}  # the raw fields a record holds -> its updates

    def other_shows_na(values: Mapping[str, Any]) -> dict[str, Any]:
        answered = frozenset(values.keys() & wanted)
        updates = by_answered.get(answered)
        if updates is None:
            updates = by_answered[answered] = SharedUpdates(answered)
            for raw_field, na in writes:
                if raw_field not in answered:
                    updates.update(na)
        return updates

    return other_shows_na


@dataclass
class WeeklessMessages:
    """The kept messages whose time falls in no configured week, counted as their week keys are set
    (:func:`set_channel_keys`), for a warning: how many, and the earliest time (naive UTC). Plain values, so a
    worker process can send a chunk's; the run adds up the chunks' (:meth:`add_all`)."""

    count: int = 0
    earliest: datetime | None = None

    def add(self, time: datetime) -> None:
        self.add_all(WeeklessMessages(1, time))

    def add_all(self, other: "WeeklessMessages") -> None:
        self.count += other.count
        if other.earliest is not None and (self.earliest is None or other.earliest < self.earliest):
            self.earliest = other.earliest


def set_channel_keys(records: Sequence[Record], *, config: PipelineConfig, run: RunContext,
                     weekless: WeeklessMessages | None = None) -> list[Record]:
    """The channel keys (``sms_ad``, ``radio_promo``, ``radio_show``), ``non_logical_time`` and the week keys
    (``radio_participation_s01e0n``), each ``"true"`` or ``"false"``, from the message's ``sent_on``
    (pipeline.md section 8; every range is ``[start, end)``).

    ``non_logical_time`` is ``"true"`` when no channel matched - including a message sent exactly at the project
    end, which 2019 let through the inclusive project window and then crashed on. Participation is by time, not
    by show, so corrected messages count in the week of their faked time. Two channels matching one time means
    the configured windows overlap: an error naming both.

    ``weekless``, if given, counts the messages that fall in no week (for a warning: a week left out of the
    configuration). A message sent exactly at the project end is not counted when a week ends there: the
    inclusive project window keeps it, but no ``[start, end)`` week can hold it (pipeline.md section 8).
    """
    return apply_rule(records, _channel_rule(config, weekless), run.step("generate/channel_keys"))


def _channel_rule(config: PipelineConfig, weekless: WeeklessMessages | None = None) -> Rule:
    channels = [(name, _utc_ranges(ranges)) for name, ranges in config.channels.items()]
    weeks = [(name, _utc_ranges(ranges)) for name, ranges in config.weeks.items()]
    time_field = config.message_time_field
    project_end = _naive_utc(config.project_end)
    week_ends_at_project_end = any(end == project_end for _, ranges in weeks for _, end in ranges)

    def keys_at(time: datetime) -> SharedUpdates | tuple[str, str]:
        """The keys of a message sent at ``time``, or the two channels whose windows both contain it."""
        updates = SharedUpdates(time)  # the keys depend on nothing but the time
        matched: str | None = None
        for name, ranges in channels:
            hit = _in_ranges(time, ranges)
            if hit:
                if matched is not None:
                    return (matched, name)
                matched = name
            updates[name] = _TRUE if hit else _FALSE
        updates[NON_LOGICAL_TIME_KEY] = _FALSE if matched is not None else _TRUE
        for name, ranges in weeks:
            updates[name] = _TRUE if _in_ranges(time, ranges) else _FALSE
        return updates

    # Every range starts and ends at one of these instants, so between two consecutive ones (a segment) each
    # range either contains every time or none: the keys are worked out once per segment, at its start, and
    # a message's segment is found by bisection. Segment 0 lies before every range.
    bounds = sorted({instant for _, ranges in channels + weeks for window in ranges for instant in window})
    segments = [keys_at(datetime.min)] + [keys_at(start) for start in bounds]
    # Whether the times of each segment fall in no week (none when no week is configured, or nothing counts them).
    weekless_at = [bool(weeks) and weekless is not None and not any(_in_ranges(start, ranges) for _, ranges in weeks)
                   for start in [datetime.min, *bounds]]

    def count_weekless(time: datetime) -> None:
        if weekless is not None and not (time == project_end and week_ends_at_project_end):
            weekless.add(time)

    def channel_keys(values: Mapping[str, Any]) -> dict[str, Any]:
        time = _naive_utc(record_time(values, time_field))
        segment = bisect_right(bounds, time)
        if weekless_at[segment]:
            count_weekless(time)
        keys = segments[segment]
        if isinstance(keys, tuple):
            raise PipelineError(
                f"the configured {keys[0]!r} and {keys[1]!r} windows both contain {values[time_field]}; "
                f"channel windows must not overlap",
                path=config.path, record=record_id(values), field=time_field,
            )
        return keys

    return channel_keys


# Times are compared as naive UTC datetimes: the same instants as the aware ones, without a UTC-offset
# computation in every comparison (a million messages times a dozen ranges).


def _naive_utc(time: datetime) -> datetime:
    return time.astimezone(timezone.utc).replace(tzinfo=None)


def _utc_ranges(ranges: Sequence[TimeRange]) -> tuple[tuple[datetime, datetime], ...]:
    return tuple((_naive_utc(r.start), _naive_utc(r.end)) for r in ranges)


def _in_ranges(time: datetime, ranges: tuple[tuple[datetime, datetime], ...]) -> bool:
    """Whether ``time`` falls in one of the ``[start, end)`` ranges."""
    for start, end in ranges:
        if start <= time < end:
            return True
    return False


# -- 7.4.7 - 7.4.8: RQA Coda files -------------------------------------------------------------------------------


def assign_rqa_message_ids(records: Sequence[Record], *, config: PipelineConfig, run: RunContext) -> list[Record]:
    """Sets ``<raw key>_id`` = SHA-256 of the answer on every non-noise record holding a show's raw answer.

    Noise messages get no id, so they are never exported to Coda nor touched by the later Coda import.
    """
    return apply_rule(records, _message_id_rule(config), run.step("generate/rqa_message_ids"))


def _message_id_rule(config: PipelineConfig) -> Rule:
    fields = [(plan.raw_field, plan.id_field) for plan in config.rqa_plans]
    wanted = frozenset(raw for raw, _ in fields)

    def message_ids(values: Mapping[str, Any]) -> dict[str, Any] | None:
        if _noise(values):
            return None
        present = values.keys() & wanted
        return {id_field: coda.message_id(_text(values, raw)) for raw, id_field in fields if raw in present}

    return message_ids


class RqaCodaExport:
    """The RQA Coda files, gathered chunk by chunk (7.4.8).

    Built from the non-noise records holding the show's raw answer (ids set by :func:`assign_rqa_message_ids`),
    with no scheme, so every message has ``"Labels": []``; the creation time is ``sent_on`` in UTC. ``positions``
    are the messages' places in the message order (messages are added respondent by respondent). The messages
    wait in the run's scratch database (see :class:`~redss_pipeline.export.coda.CodaExport`).
    """

    def __init__(self, config: PipelineConfig, scratch: ScratchDatabase):
        self._files = coda.CodaFileExports(scratch, [
            (plan.coda_file, coda.CodaExport(scratch, raw_field=plan.raw_field, time_field=config.message_time_field,
                                             id_field=plan.id_field, coded_fields=[]))
            for plan in config.rqa_plans
        ])

    def entries(self, positions: Sequence[int], records: Sequence[Mapping[str, Any]]) -> list[list[tuple[Any, ...]]]:
        """A chunk's records, found at ``positions``, reduced to each file's entries (noise is not exported), for
        :meth:`store`."""
        kept = [(position, record) for position, record in zip(positions, records, strict=True) if not _noise(record)]
        return self._files.entries([position for position, _ in kept], [record for _, record in kept])

    def store(self, entries: list[list[tuple[Any, ...]]]) -> None:
        """Writes a chunk's :meth:`entries` to the scratch database."""
        self._files.store(entries)

    def files(self) -> dict[str, coda.ExportedMessages]:
        """Each show's Coda messages, by file name in plan order, read from the scratch database as used."""
        return self._files.files()


# -- 7.4.9: ICR ----------------------------------------------------------------------------------------------------


# The ICR candidates of every show (``plan``: its index in the configuration), waiting in the scratch database.
# The run id and message time are JSON scalars of the raw files (texts or nothing), which SQLite gives back as
# they were stored; the columns have no type, so no value is converted.
_CANDIDATES = "plan INTEGER NOT NULL, position INTEGER NOT NULL, run_id, raw TEXT NOT NULL, sent_on"


class IcrSamples:
    """The inter-coder-reliability samples, their candidates gathered chunk by chunk (7.4.9).

    Candidates are the non-noise records whose show coded field is absent (those answering this show; a record
    holding the field must hold exactly one NA label, else it is an error), taken in message order (``position``;
    messages are added respondent by respondent). Each show draws with a fresh ``random.Random(seed)``:
    ``sample(candidates, size)``, or, with fewer candidates than the sample size, ``sample(candidates,
    len(candidates))`` - a permutation of them all, as in 2019. Rows keep the sample order; the run id is None
    for a message moved here from another show's flow. A candidate's position, run id, text and message time
    wait in the run's scratch database, and only the sampled ones are read back.
    """

    def __init__(self, config: PipelineConfig, scratch: ScratchDatabase):
        self._config = config
        self._scratch = scratch
        self._table = scratch.new_table("icr_candidates", _CANDIDATES)

    def candidates(self, positions: Sequence[int], records: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        """A chunk's candidates, found at ``positions``, as rows for :meth:`store` (touches no database, so a
        worker process can gather them)."""
        time_field = self._config.message_time_field
        rows = []
        for position, record in zip(positions, records, strict=True):
            if _noise(record):
                continue
            for number, plan in enumerate(self._config.rqa_plans):
                if _answers(record, plan):
                    rows.append((number, position, record.get(plan.run_id_field), _text(record, plan.raw_field),
                                 record.get(time_field)))
        return rows

    def store(self, rows: list[tuple[Any, ...]]) -> None:
        """Writes a chunk's :meth:`candidates` to the scratch database, in one transaction."""
        self._scratch.insert(self._table, rows, width=5)

    def samples(self) -> dict[str, list[IcrRow]]:
        """The ICR rows of each show, by ICR file name in plan order."""
        samples: dict[str, list[IcrRow]] = {}
        for number, plan in enumerate(self._config.rqa_plans):
            count = self._scratch.value(f"SELECT COUNT(*) FROM {self._table} WHERE plan = ?", (number,))
            size = min(self._config.icr.sample_size, count)
            # random.sample picks by index from the population's length alone, so drawing from the candidates'
            # ranks in message order picks the very candidates a draw from a list of them all would.
            ranks = random.Random(self._config.icr.seed).sample(range(count), size)
            sampled = {rank: IcrRow(run_id, raw, sent_on) for rank, run_id, raw, sent_on in self._scratch.query(
                f"SELECT rank, run_id, raw, sent_on FROM ("
                f"  SELECT ROW_NUMBER() OVER (ORDER BY position) - 1 AS rank, run_id, raw, sent_on"
                f"  FROM {self._table} WHERE plan = ?"
                f") WHERE rank IN (SELECT value FROM json_each(?))",
                (number, json.dumps(ranks)),
            )}
            samples[plan.icr_file] = [sampled[rank] for rank in ranks]
        return samples


def _answers(record: Mapping[str, Any], plan: RqaPlan) -> bool:
    """Whether the record answers the plan's show (its coded field is absent); if not, the field must hold
    the NA label of 7.4.5 and nothing else."""
    if plan.coded_field not in record:
        if plan.raw_field not in record:
            raise RawDataError(
                f"has neither the show's answer {plan.raw_field!r} nor its NA label", record=record_id(record),
                field=plan.coded_field,
            )
        return True
    value = record[plan.coded_field]
    na = plan.scheme.control(NA)
    if not (
        isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict)
        and na is not None and value[0].get("CodeID") == na.code_id
    ):
        raise RawDataError(
            f"expected exactly one NA label before coding, found {value!r}", record=record_id(record),
            field=plan.coded_field,
        )
    return False


# -- helpers -------------------------------------------------------------------------------------------------------


def _na_label(scheme: CodeScheme, run: RunContext) -> dict[str, Any]:
    return control_label(scheme, NA, origin_id=NA_ORIGIN_ID, label_time=run.label_time)


def _noise(record: Mapping[str, Any]) -> bool:
    value = record.get(NOISE_KEY)
    if not isinstance(value, bool):
        raise RawDataError(f"expected the noise flag (true or false), found {value!r}", record=record_id(record),
                           field=NOISE_KEY)
    return value


def _text(record: Mapping[str, Any], field: str) -> str:
    value = record[field]
    if not isinstance(value, str):
        raise RawDataError(f"expected the answer's text, found {value!r}", record=record_id(record), field=field)
    return value
