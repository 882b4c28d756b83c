"""Stage 3 on one chunk of respondents at a time (spec pipeline.md section 7), with the few run-wide needs
gathered in small accumulators.

Every step of 7.2 - 7.7 reads one message or one respondent's messages, so :class:`ChunkRunner` runs all of
them on the records of a few thousand respondents (a :class:`~redss_pipeline.generate.respondents.Chunk`),
hands the finished message records to the audit trail and the rows to the output sinks, and lets the records
go. Memory then depends on the chunk size, not on the size of the data root. Only the fold (7.7.6) needs all
of a respondent's messages; a respondent with more messages than a chunk holds comes in chunks of their own
(``chunk.continues`` until their last), folded piece by piece
(:class:`~redss_pipeline.generate.individuals.SplitRespondent`). So a chunk may hold part of one respondent: a
new step that groups messages by respondent must fold piece by piece in the same way. What spans respondents is
kept apart, in objects that live for the run:

- the Coda files' messages (:class:`~redss_pipeline.generate.show_messages.RqaCodaExport`,
  :class:`~redss_pipeline.generate.survey_autocode.SurveyCodaExport`): one entry per distinct text, the
  earliest by time and then by message position;
- the ICR candidates (:class:`~redss_pipeline.generate.show_messages.IcrSamples`): position, run id and text,
  sampled at the end with the configured seed, so the same rows as a run over all records at once;

  both grow with the data, so they wait in the run's scratch database
  (:class:`~redss_pipeline.core.scratch_database.ScratchDatabase`, a temporary SQLite file), one transaction
  per chunk and accumulator;
- the rows of ``csap_mes.csv`` and ``csap_prod.csv`` by message position, and those of ``csap_ind.csv`` in
  respondent order (:class:`~redss_pipeline.generate.ordered_rows.OrderedRows`, spilling to disk when large);
- the counts the progress lines report, and the time spent in each step (:class:`StepTimes`).

The coded Coda files and the UUID table are read-only look-ups opened once by the caller.
"""

from __future__ import annotations

import resource
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

from redss_pipeline.core.audit_trail import AuditTrailWriter
from redss_pipeline.core.config import PipelineConfig, RqaPlan, SurveyPlan
from redss_pipeline.core.labels import code_ids
from redss_pipeline.core.record_fields import UID_KEY, RecordColumns
from redss_pipeline.core.records import Record
from redss_pipeline.core.run_context import RunContext
from redss_pipeline.core.scratch_database import ScratchDatabase
from redss_pipeline.deidentify.uuid_table import UuidTable
from redss_pipeline.export import coda
from redss_pipeline.export.analysis_files import analysis_columns, in_production_file, production_columns
from redss_pipeline.generate.analysis_columns import (
    CONSENT_WITHDRAWN_KEY,
    TRUE,
    add_analysis_columns,
    determine_consent,
)
from redss_pipeline.generate.combine import combine_shows_and_surveys
from redss_pipeline.generate.corrections import translate_rapid_pro_keys
from redss_pipeline.generate.individuals import SplitRespondent, fold_individuals
from redss_pipeline.generate.location_reconciliation import reconcile_locations
from redss_pipeline.generate.manual_codes import apply_manual_codes
from redss_pipeline.generate.ordered_rows import OrderedRows
from redss_pipeline.generate.respondents import Chunk
from redss_pipeline.generate.show_messages import (
    EMPTY_RUN,
    NOISE_KEY,
    OUTSIDE_WINDOW,
    TEST_RUN,
    IcrSamples,
    MessageFilters,
    RqaCodaExport,
    assign_rqa_message_ids,
    flag_noise,
    label_other_shows_na,
    set_channel_keys,
)
from redss_pipeline.generate.survey_autocode import SurveyCodaExport, auto_code_surveys

__all__ = ["StepTimes", "ChunkRunner", "peak_memory_mib"]


@dataclass
class StepTimes:
    """Wall-clock and CPU seconds spent in each step, summed over the chunks, in the order the steps first ran,
    and by how much the process's peak memory rose during each step (MiB). A step that holds much, but less than
    an earlier step held, shows no rise: the figures say which steps set the peak."""

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


class ChunkRunner:
    """Runs 7.2 - 7.7 on chunks of respondents, feeding the run's accumulators, sinks and audit trail."""

    def __init__(self, *, config: PipelineConfig, run: RunContext, coded_files: Mapping[str, coda.CodedMessages],
                 uuid_table: UuidTable, trail: AuditTrailWriter, messages: OrderedRows, individuals: OrderedRows,
                 scratch: ScratchDatabase, times: StepTimes):
        self._config = config
        self._run = run
        self._coded_files = coded_files
        self._ws_coded = (coded_files[config.rqa_plan(config.ws_redirect.show).coda_file]
                          if config.ws_redirect else None)
        self._uuid_table = uuid_table
        self._trail = trail
        self._messages = messages
        self._individuals = individuals
        self._times = times
        self._filters = MessageFilters(config)
        self.rqa_coda = RqaCodaExport(config, scratch)
        self.survey_coda = SurveyCodaExport(config, scratch)
        self.icr = IcrSamples(config, scratch)
        self._analysis_row = RecordColumns(analysis_columns(config))
        self._production_row = RecordColumns(production_columns(config))
        self.counts: dict[str, int] = {TEST_RUN: 0, EMPTY_RUN: 0, OUTSIDE_WINDOW: 0, "messages": 0, "noise": 0,
                                       "people": 0, "withdrawn messages": 0, "withdrawn people": 0}
        self.show_counts: dict[int, int] = {}  # show id -> messages after the corrections
        self.coded_counts: dict[str, list[int]] = {}  # Coda dataset -> [exported messages, NR]
        self._datasets = _coded_datasets(config)
        self._split: SplitRespondent | None = None  # the respondent whose messages continue in the next chunk

    def run(self, chunk: Chunk) -> None:
        """All of stage 3's per-respondent work on ``chunk``."""
        config, run, step = self._config, self._run, self._times.step
        with step("combine shows and surveys"):
            records = combine_shows_and_surveys(chunk.show_files, chunk.survey_files, config=config, run=run)
        with step("translate keys and corrections"):
            records = translate_rapid_pro_keys(records, config=config, run=run, ws_coded=self._ws_coded)
            for record in records:
                show = record.get("show_id")
                if show is not None:
                    self.show_counts[show] = self.show_counts.get(show, 0) + 1
        with step("filter messages"):
            kept_positions, kept = [], []
            for position, record in zip(chunk.positions, records):
                dropped_by = self._filters.dropped_by(record)
                if dropped_by is None:
                    kept_positions.append(position)
                    kept.append(record)
                else:
                    self.counts[dropped_by] += 1
            positions, records = kept_positions, kept
            self.counts["messages"] += len(records)
        with step("noise"):
            records = flag_noise(records, config=config, run=run)
            self.counts["noise"] += sum(1 for record in records if record.get(NOISE_KEY) is True)
        with step("NA labels, channels and weeks"):
            records = set_channel_keys(label_other_shows_na(records, config=config, run=run), config=config, run=run)
        with step("message ids"):
            records = assign_rqa_message_ids(records, config=config, run=run)
        with step("RQA Coda files"):
            self.rqa_coda.add(positions, records)
        with step("ICR samples"):
            self.icr.add(positions, records)
        with step("operator look-up"):
            phone_keys = self._uuid_table.keys_for_uuids({uid for record in records if isinstance(uid := record.get(UID_KEY), str)})
        with step("survey auto-coding"):
            records = auto_code_surveys(records, config=config, run=run, phone_keys=phone_keys)
            self.survey_coda.add(positions, records)
        with step("manual codes"):
            records = apply_manual_codes(records, config=config, run=run, coded_files=self._coded_files)
            self._count_coded(records)
        with step("location reconciliation"):
            records = reconcile_locations(records, config=config, run=run)
        with step("analysis columns"):
            records = add_analysis_columns(records, config=config, run=run)
        with step("consent"):
            records = determine_consent(records, config=config, run=run)
            self.counts["withdrawn messages"] += _count(records, lambda r: r.get(CONSENT_WITHDRAWN_KEY) == TRUE)
        with step("individuals"):
            if chunk.continues or self._split is not None:  # a piece of one respondent's messages
                if self._split is None:
                    self._split = SplitRespondent(config=config, run=run)
                if chunk.continues:
                    positions, messages = self._split.add(positions, records)
                    individuals: list[tuple[int, Record]] = []
                else:
                    positions, messages, individuals = self._split.finish(positions, records)
                    self._split = None
            else:
                messages, folded = fold_individuals(records, config=config, run=run)
                # csap_ind.csv lists respondents in the order of their first message (of those kept): the
                # position of that message orders the rows, as fold_individuals orders the chunk's individuals.
                first_positions: dict[Any, int] = {}
                for position, record in zip(positions, records):
                    first_positions.setdefault(record.get(UID_KEY), position)
                individuals = list(zip(first_positions.values(), folded))
            self.counts["people"] += len(individuals)
            self.counts["withdrawn people"] += _count((i for _, i in individuals),
                                                      lambda r: r.get(CONSENT_WITHDRAWN_KEY) == TRUE)
        with step("output rows"):
            for position, message in zip(positions, messages):
                production = self._production_row(message) if in_production_file(message, position) else None
                self._messages.add(position, (self._analysis_row(message), production))
            for position, individual in individuals:
                self._individuals.add(position, self._analysis_row(individual))
        with step("audit trail"):
            self._trail.add(messages)

    def _count_coded(self, records: list[Record]) -> None:
        """Per Coda dataset: how many messages hold a code, and how many are NR (see :func:`_coded_datasets`)."""
        for name, (id_field, coded_field, nr_id) in self._datasets.items():
            exported = [record for record in records if id_field in record]
            nr = sum(1 for record in exported if code_ids(record.get(coded_field)) == [nr_id])
            counts = self.coded_counts.setdefault(name, [0, 0])
            counts[0] += len(exported)
            counts[1] += nr


def _coded_datasets(config: PipelineConfig) -> dict[str, tuple[str, str, str | None]]:
    """Per Coda dataset, the fields it is counted on: those of its first plan (the reasons of a show, the
    sub-district of ``location.json``), over the records exported to it (those having its message-id field)."""
    datasets: dict[str, tuple[str, str, str | None]] = {}
    plans: list[RqaPlan | SurveyPlan] = [*config.rqa_plans, *config.survey_plans]
    for plan in plans:
        nr = plan.scheme.control("NR")
        datasets.setdefault(plan.coda_file, (plan.id_field, plan.coded_field, nr.code_id if nr else None))
    return datasets


def _count(records: Any, predicate: Callable[[Record], bool]) -> int:
    return sum(1 for record in records if predicate(record))
