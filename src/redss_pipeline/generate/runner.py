"""Stage 3 on one chunk of respondents at a time (spec pipeline.md section 7), with the few run-wide needs
gathered in small accumulators.

Every step of 7.2 - 7.7 reads one message or one respondent's messages, so :class:`ChunkRunner` runs all of
them on the records of whole respondents, about 5,000 messages at a time (a
:class:`~redss_pipeline.generate.respondents.Chunk`), and lets the records go once it has rendered their CSV lines
and encoded their audit-trail segment. Memory then depends on the chunk size, not on the size of the data root.
Only the fold (7.7.6) needs all of a respondent's messages; a respondent with more messages than a chunk holds
comes in chunks of their own (``chunk.continues`` until their last), folded piece by piece
(:class:`~redss_pipeline.generate.individuals.SplitRespondent`). So a chunk may hold part of one respondent: a new
step that groups messages by respondent must fold piece by piece in the same way.

The work is split in two so that it can be shared among processes:

- :meth:`ChunkRunner.process` turns a span of respondents into one :class:`ChunkOutcome` of plain values per
  chunk (rendered lines, Coda entries, ICR candidates, the audit-trail segment, counts); it writes no file and
  no database, so it may run in a worker process (:mod:`~redss_pipeline.core.workers`);
- :meth:`ChunkRunner.keep` adds an outcome to the run, in the run's own process, chunk after chunk in order.

What spans respondents is kept apart, in objects that live for the run and are fed by :meth:`~ChunkRunner.keep`:

- the Coda files' messages (:class:`~redss_pipeline.generate.show_messages.RqaCodaExport`,
  :class:`~redss_pipeline.generate.survey_autocode.SurveyCodaExport`): one entry per distinct text, the
  earliest by time and then by message position;
- the ICR candidates (:class:`~redss_pipeline.generate.show_messages.IcrSamples`): position, run id and text,
  sampled at the end with the configured seed, so the same rows as a run over all records at once;

  both grow with the data, so they wait in the run's scratch database
  (:class:`~redss_pipeline.core.scratch_database.ScratchDatabase`, a temporary SQLite file), one transaction
  per chunk and accumulator;
- the lines of ``csap_mes.csv`` and ``csap_prod.csv`` by message position, and those of ``csap_ind.csv`` in
  respondent order (:class:`~redss_pipeline.generate.ordered_rows.OrderedRows`, spilling to disk when large);
- the audit trail, to which the segments are appended (:class:`~redss_pipeline.core.audit_trail.AuditTrailWriter`);
- the counts the progress lines report (and the messages in no week, for a warning), and the time spent in each
  step (:class:`StepTimes`, summed over the processes).

The coded Coda files are read-only look-ups opened once by the caller; the UUID table is opened by each process
that runs :meth:`~ChunkRunner.process`.
"""

from __future__ import annotations

import resource
import sys
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, NamedTuple

from redss_pipeline.core.audit_trail import AuditTrailSegment, AuditTrailWriter, encode_segment
from redss_pipeline.core.code_scheme import NR
from redss_pipeline.core.config import PipelineConfig, RqaPlan, SurveyPlan
from redss_pipeline.core.record_fields import CONSENT_WITHDRAWN_KEY, NOISE_KEY, UID_KEY
from redss_pipeline.core.records import Record
from redss_pipeline.core.run_context import RunContext
from redss_pipeline.core.scratch_database import ScratchDatabase
from redss_pipeline.deidentify.uuid_table import UuidTable
from redss_pipeline.export import coda
from redss_pipeline.export.analysis_files import RecordLines, analysis_columns, in_production_file, production_columns
from redss_pipeline.export.csv_cells import CsvLines
from redss_pipeline.generate.analysis_columns import TRUE, add_analysis_columns, determine_consent
from redss_pipeline.generate.combine import combine_shows_and_surveys
from redss_pipeline.generate.corrections import translate_rapid_pro_keys
from redss_pipeline.generate.individuals import SplitRespondent, fold_individuals
from redss_pipeline.generate.location_reconciliation import reconcile_locations
from redss_pipeline.generate.manual_codes import apply_manual_codes
from redss_pipeline.generate.ordered_rows import OrderedRows
from redss_pipeline.generate.respondents import Chunk, RespondentIndex, Span
from redss_pipeline.generate.show_messages import (
    EMPTY_RUN,
    OUTSIDE_WINDOW,
    TEST_RUN,
    IcrSamples,
    MessageFilters,
    RqaCodaExport,
    WeeklessMessages,
    assign_rqa_message_ids,
    flag_noise,
    label_other_shows_na,
    set_channel_keys,
)
from redss_pipeline.generate.survey_autocode import SurveyCodaExport, auto_code_surveys

__all__ = ["StepTimes", "ChunkOutcome", "ChunkRunner", "peak_memory_mib"]


@dataclass
class StepTimes:
    """Wall-clock and CPU seconds spent in each step, summed over the chunks, in the order the steps first ran,
    and by how much the process's peak memory rose during each step (MiB). A step that holds much, but less than
    an earlier step held, shows no rise: the figures say which steps set the peak. With worker processes each
    figure is summed over the processes (:meth:`add`): the steps' seconds add up to more than the wall time, and
    a step that raised each of two workers' peaks by 50 MiB shows 100 MiB, what it added to the run's memory."""

    seconds: dict[str, float] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    peak_rise_mib: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started, cpu_started, peak_before = time.perf_counter(), time.process_time(), peak_memory_mib()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
            self.cpu_seconds[name] = self.cpu_seconds.get(name, 0.0) + time.process_time() - cpu_started
            self.peak_rise_mib[name] = self.peak_rise_mib.get(name, 0.0) + peak_memory_mib() - peak_before

    def add(self, other: "StepTimes") -> None:
        """Adds the figures of ``other`` (a span's, maybe from a worker process) to these, step by step."""
        for mine, theirs in ((self.seconds, other.seconds), (self.cpu_seconds, other.cpu_seconds),
                             (self.peak_rise_mib, other.peak_rise_mib)):
            for name, value in theirs.items():
                mine[name] = mine.get(name, 0.0) + value


def peak_memory_mib() -> float:
    """The process's peak resident memory so far, in MiB.

    Read from ``VmHWM`` in ``/proc/self/status`` where there is one (Linux): ``ru_maxrss`` is not reset when a
    program starts, so a stage started by a large process (a test runner, a benchmark that generated its data)
    would report that process's peak. Elsewhere ``ru_maxrss`` (bytes on macOS, KiB on other systems).
    """
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) / 1024  # "VmHWM:   123456 kB"
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


@dataclass
class ChunkOutcome:
    """What one chunk of respondents gives the run: everything the run keeps of it, and nothing else (the
    records themselves are let go). Plain values only, so a worker process can send it.

    ``message_lines`` hold each kept message's position with its ``csap_mes.csv`` line and its ``csap_prod.csv``
    line (None when the radio team does not see it); ``individual_lines`` each individual's ``csap_ind.csv`` line
    with the position that orders it. The Coda entries (per file) and ICR candidates are rows for the run's
    scratch database, and ``trail`` the chunk's finished message records as one audit-trail segment.
    """

    message_lines: list[tuple[int, tuple[str, str | None]]] = field(default_factory=list)
    individual_lines: list[tuple[int, str]] = field(default_factory=list)
    rqa_coda: list[list[tuple[Any, ...]]] = field(default_factory=list)  # per file
    survey_coda: list[list[tuple[Any, ...]]] = field(default_factory=list)
    icr: list[tuple[Any, ...]] = field(default_factory=list)
    trail: AuditTrailSegment = AuditTrailSegment(b"", 0)
    counts: Counter[str] = field(default_factory=Counter)  # see ChunkRunner.counts
    show_counts: Counter[int] = field(default_factory=Counter)  # show id -> messages after the corrections
    coded_counts: dict[str, list[int]] = field(default_factory=dict)  # Coda dataset -> [offered, NR]
    weekless: WeeklessMessages = field(default_factory=WeeklessMessages)  # kept messages in no week, for a warning
    phone_numbers_redacted: int = 0
    times: StepTimes = field(default_factory=StepTimes)
    respondents_done: int | None = None  # on a span's last chunk: how many respondents are done with it


class ChunkRunner:
    """Runs 7.2 - 7.7 on spans of respondents (:meth:`process`), and adds what each span gives to the run's
    accumulators, sinks and audit trail (:meth:`keep`).

    :meth:`process` reads the span's records from the index, runs every step and returns a
    :class:`ChunkOutcome`; it writes no file and no database, so it may run in a worker process (see
    :mod:`~redss_pipeline.core.workers`). :meth:`keep` runs in the run's own process, span after span in
    order, so the outputs are the same however many workers processed the spans.
    """

    def __init__(self, *, config: PipelineConfig, run: RunContext, index: RespondentIndex,
                 coded_files: Mapping[str, coda.CodedMessages], trail: AuditTrailWriter, messages: OrderedRows,
                 individuals: OrderedRows, scratch: ScratchDatabase, times: StepTimes):
        self._config = config
        self._run = run
        self._index = index
        self._coded_files = coded_files
        self._ws_coded = (coded_files[config.rqa_plan(config.ws_redirect.show).coda_file]
                          if config.ws_redirect else None)
        self._trail = trail
        self._messages = messages
        self._individuals = individuals
        self._times = times
        self._filters = MessageFilters(config)
        self.rqa_coda = RqaCodaExport(config, scratch)
        self.survey_coda = SurveyCodaExport(config, scratch)
        self.icr = IcrSamples(config, scratch)
        cells = CsvLines()  # shared: both files hold mostly the same few codes
        self._analysis_line = RecordLines(analysis_columns(config), cells, shows=config.rqa_plans)
        self._production_line = RecordLines(production_columns(config), cells, shows=config.rqa_plans)
        self.counts: Counter[str] = Counter({TEST_RUN: 0, EMPTY_RUN: 0, OUTSIDE_WINDOW: 0, "messages": 0,
                                             "noise": 0, "people": 0, "withdrawn messages": 0,
                                             "withdrawn people": 0})
        self.show_counts: Counter[int] = Counter()  # show id -> messages after the corrections
        self.coded_counts: dict[str, list[int]] = {}  # Coda dataset -> [messages offered, NR]
        self.weekless = WeeklessMessages()  # the kept messages whose time falls in no configured week
        self.phone_numbers_redacted = 0  # in the records the spans read
        self._coded_counts = CodedMessageCounts(config)

    def keep(self, outcome: ChunkOutcome) -> None:
        """Adds a chunk's outcome to the run: its lines to the sinks, its Coda entries and ICR candidates to the
        scratch database, its segment to the audit trail, its counts and step times to the run's."""
        self.rqa_coda.store(outcome.rqa_coda)
        self.survey_coda.store(outcome.survey_coda)
        self.icr.store(outcome.icr)
        for position, lines in outcome.message_lines:
            self._messages.add(position, lines)
        for position, line in outcome.individual_lines:
            self._individuals.add(position, line)
        self._trail.write(outcome.trail)
        self.counts.update(outcome.counts)
        self.show_counts.update(outcome.show_counts)
        for name, (offered, nr) in outcome.coded_counts.items():
            counts = self.coded_counts.setdefault(name, [0, 0])
            counts[0] += offered
            counts[1] += nr
        self.weekless.add_all(outcome.weekless)
        self.phone_numbers_redacted += outcome.phone_numbers_redacted
        self._times.add(outcome.times)

    def process(self, span: Span, uuid_table: UuidTable) -> Iterator[ChunkOutcome]:
        """All of stage 3's per-respondent work on the respondents of ``span``, one outcome per chunk (a heavy
        sender's span has several); ``uuid_table`` is opened by the process running this (an SQLite connection
        belongs to one process). The last outcome of the span has ``respondents_done`` set."""
        # A respondent whose messages come in several chunks: the index splits only a span of one respondent (a
        # heavy sender's own span, see RespondentIndex.read), so this holds that respondent's fold alone.
        split: SplitRespondent | None = None
        chunks = self._index.read(span)
        while True:
            outcome = ChunkOutcome()
            redacted_before = self._index.redactor.count
            with outcome.times.step("read chunks"):  # the chunk's records, decoded from the raw files and redacted
                chunk = next(chunks, None)
            if chunk is None:
                return
            if chunk.continues and split is None:
                split = SplitRespondent(config=self._config, run=self._run)
            self._process_chunk(chunk, uuid_table, split, outcome)
            outcome.phone_numbers_redacted = self._index.redactor.count - redacted_before
            if not chunk.continues:
                outcome.respondents_done = span.end
            yield outcome

    def _process_chunk(self, chunk: Chunk, uuid_table: UuidTable, split: SplitRespondent | None,
                       outcome: ChunkOutcome) -> None:
        config, run, step, counts = self._config, self._run, outcome.times.step, outcome.counts
        with step("combine shows and surveys"):
            records = combine_shows_and_surveys(chunk.show_files, chunk.survey_files, config=config, run=run)
        with step("translate keys and corrections"):
            records = translate_rapid_pro_keys(records, config=config, run=run, ws_coded=self._ws_coded)
            outcome.show_counts.update(show for record in records if (show := record.get("show_id")) is not None)
        with step("filter messages"):
            kept_positions, kept = [], []
            for position, record in zip(chunk.positions, records, strict=True):
                dropped_by = self._filters.dropped_by(record)
                if dropped_by is None:
                    kept_positions.append(position)
                    kept.append(record)
                else:
                    counts[dropped_by] += 1
            positions, records = kept_positions, kept
            counts["messages"] += len(records)
        with step("noise"):
            records = flag_noise(records, config=config, run=run)
            counts["noise"] += sum(1 for record in records if record.get(NOISE_KEY) is True)
        with step("NA labels, channels and weeks"):
            records = set_channel_keys(label_other_shows_na(records, config=config, run=run), config=config, run=run,
                                       weekless=outcome.weekless)
        with step("message ids"):
            records = assign_rqa_message_ids(records, config=config, run=run)
        with step("RQA Coda files"):
            outcome.rqa_coda = self.rqa_coda.entries(positions, records)
        with step("ICR samples"):
            outcome.icr += self.icr.candidates(positions, records)
        with step("operator look-up"):
            phone_keys = uuid_table.keys_for_uuids({uid for record in records if isinstance(uid := record.get(UID_KEY), str)})
        with step("survey auto-coding"):
            records = auto_code_surveys(records, config=config, run=run, phone_keys=phone_keys)
            outcome.survey_coda = self.survey_coda.entries(positions, records)
        with step("manual codes"):
            records = apply_manual_codes(records, config=config, run=run, coded_files=self._coded_files)
            self._coded_counts.count(records, outcome.coded_counts)
        with step("location reconciliation"):
            records = reconcile_locations(records, config=config, run=run)
        with step("analysis columns"):
            records = add_analysis_columns(records, config=config, run=run)
        with step("consent"):
            records = determine_consent(records, config=config, run=run)
            counts["withdrawn messages"] += _count(records, lambda r: r.get(CONSENT_WITHDRAWN_KEY) == TRUE)
        with step("individuals"):
            if split is not None:  # a piece of one respondent's messages
                if chunk.continues:
                    positions, messages = split.add(positions, records)
                    individuals: list[tuple[int, Record]] = []
                else:
                    positions, messages, individuals = split.finish(positions, records)
            else:
                messages, folded = fold_individuals(records, config=config, run=run)
                # csap_ind.csv lists respondents in the order of their first message (of those kept): the
                # position of that message orders the rows, as fold_individuals orders the chunk's individuals.
                first_positions: dict[Any, int] = {}
                for position, record in zip(positions, records, strict=True):
                    first_positions.setdefault(record.get(UID_KEY), position)
                individuals = list(zip(first_positions.values(), folded, strict=True))
            counts["people"] += len(individuals)
            counts["withdrawn people"] += _count((i for _, i in individuals),
                                                 lambda r: r.get(CONSENT_WITHDRAWN_KEY) == TRUE)
        with step("output rows"):
            analysis_line, production_line = self._analysis_line, self._production_line
            for position, message in zip(positions, messages, strict=True):
                production = production_line(message) if in_production_file(message, position) else None
                outcome.message_lines.append((position, (analysis_line(message), production)))
            for position, individual in individuals:
                outcome.individual_lines.append((position, analysis_line(individual)))
        with step("audit trail"):
            outcome.trail = encode_segment(messages, id_key=self._trail.id_key, target=self._trail.target)


class CodedMessageCounts:
    """Per Coda dataset, how many message records were offered to it, and how many of those are NR (the "manual
    codes" line of the run's progress; after the manual codes every offered record holds a code: a coder's, NA, NS,
    another control code, or NR when no coder's label stands). A message record counts for a dataset when it has
    the dataset's message-id field and is not a missing answer; its code is read from the coded field of the
    dataset's first plan (the reasons of a show, the sub-district of ``location.json``). These are records, not the
    Coda file's messages: a survey answer counts once per message of its respondent, and repeated texts once each."""

    def __init__(self, config: PipelineConfig):
        self._datasets: dict[str, _CodedDataset] = {}
        plans: list[RqaPlan | SurveyPlan] = [*config.rqa_plans, *config.survey_plans]
        for plan in plans:
            nr = plan.scheme.control(NR)
            self._datasets.setdefault(plan.coda_file, _CodedDataset(
                plan.id_field, plan.coded_field, nr.code_id if nr else None, plan.raw_field,
                isinstance(plan, SurveyPlan)))
        self._id_fields = frozenset(dataset.id_field for dataset in self._datasets.values())

    def count(self, records: list[Record], coded_counts: dict[str, list[int]]) -> None:
        """Adds the counts of ``records`` to ``coded_counts`` (dataset -> [messages offered, NR])."""
        id_fields = self._id_fields
        for name in self._datasets:
            coded_counts.setdefault(name, [0, 0])
        for record in records:
            present = record.keys() & id_fields  # the few datasets a message was exported to, found in C
            if not present:
                continue
            for name, dataset in self._datasets.items():
                if dataset.id_field in present:
                    if dataset.empty_is_missing and record.get(dataset.raw_field) == "":
                        continue  # a missing answer (7.5.1): its Coda file leaves it out (coda.md 4, rule 4)
                    counts = coded_counts[name]
                    counts[0] += 1
                    if _is_only_code(record.get(dataset.coded_field), dataset.nr_id):
                        counts[1] += 1


class _CodedDataset(NamedTuple):
    id_field: str  # a record having it was offered to the dataset
    coded_field: str
    nr_id: str | None
    raw_field: str
    empty_is_missing: bool  # a survey dataset: an empty answer is a missing answer, coded NA and not exported


def _is_only_code(value: Any, code_id: str | None) -> bool:
    """Whether a coded field's value is the one code ``code_id``: one label, or a list of one label (this is
    asked of every exported message, so no list of its codes is built). By then a coded field holds a label or a
    list of labels: the auto-coders and the Coda imports write nothing else."""
    if value is None:
        return False
    if isinstance(value, Mapping):
        return bool(value["CodeID"] == code_id)
    return len(value) == 1 and bool(value[0]["CodeID"] == code_id)


def _count(records: Any, predicate: Callable[[Record], bool]) -> int:
    return sum(1 for record in records if predicate(record))
