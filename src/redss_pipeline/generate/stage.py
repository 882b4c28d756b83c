"""Stage 3, orchestrated: open the inputs, run every step of spec pipeline.md section 7 respondent by respondent,
write the outputs.

This module only wires: reading files, handing spans of respondents to the runner's processes (the steps
themselves live each in its own module), and writing the outputs. Every output is staged as a temporary file and moved into
place only after all of them were written, so a failure at any point leaves the previous outputs untouched
(spec section 5).

Order of work (spec section 5):

 1. index the raw files by respondent, streaming them (7.1),   -> respondents, traced_data_json
    a file per worker process
 2. read the coded Coda files                                  -> coda
 3. for each chunk of respondents, 7.2 - 7.7, in worker        -> runner (combine ... individuals), workers
    processes sharing the spans (each opens the UUID table)
    - the chunk's CSV lines, Coda entries, ICR candidates and audit-trail segment come back in span order
      and go to the run's accumulators (Coda entries and ICR candidates wait in a scratch database, a
      temporary file removed when the run ends) and to the audit trail -> audit_trail
 4. write the Coda files, the ICR files and the CSVs          -> coda, analysis_files
 5. the automated analysis of the CSVs, its charts and maps    -> analysis.stage
    drawn by the worker processes
"""

from __future__ import annotations

import gc
import sys
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Iterator, TextIO

from redss_pipeline.analysis.coding_progress import progress_rows, progress_tallies
from redss_pipeline.analysis.coding_quality import measure_coding_quality, prepare_icr_round_trip
from redss_pipeline.analysis.stage import AnalysisSummary, analyse_into
from redss_pipeline.core.audit_trail import AuditTrailWriter
from redss_pipeline.core.config import PipelineConfig
from redss_pipeline.core.data_root import DataRoot, refuse_what_is_in_the_way
from redss_pipeline.core.errors import CodaFileError, ConfigError
from redss_pipeline.core.output_set import MANIFEST_NAME, OutputError, OutputSet, finish_interrupted_switches
from redss_pipeline.core.run_context import RunContext
from redss_pipeline.core.run_manifest import run_manifest
from redss_pipeline.core.scratch_database import ScratchDatabase
from redss_pipeline.core.workers import default_workers, in_order, usable_workers
from redss_pipeline.deidentify.phone_redaction import PhoneRedactor
from redss_pipeline.deidentify.uuid_table import open_uuid_table
from redss_pipeline.export import coda
from redss_pipeline.export.analysis_files import (
    analysis_columns,
    production_columns,
    write_analysis_lines,
    write_icr_csv,
    write_message_lines,
)
from redss_pipeline.generate.cleaners import cleaner_scheme_problems
from redss_pipeline.generate.input_warnings import (
    coded_file_warnings,
    raw_file_warnings,
    refuse_renamed_coded_files,
    unmatched_code_warnings,
    unread_answer_warnings,
    week_warnings,
)
from redss_pipeline.generate.ordered_rows import OrderedRows
from redss_pipeline.generate.respondents import RespondentIndex, Span
from redss_pipeline.generate.runner import ChunkOutcome, ChunkRunner, StepTimes
from redss_pipeline.generate.show_messages import EMPTY_RUN, OUTSIDE_WINDOW, TEST_RUN

__all__ = ["GenerateSummary", "run_generate", "output_paths"]


@dataclass
class GenerateSummary:
    """What a stage-3 run did: counts per step, the files written, and the time each step took."""

    counts: dict[str, int] = field(default_factory=dict)
    step_seconds: dict[str, float] = field(default_factory=dict)  # wall-clock seconds
    step_cpu_seconds: dict[str, float] = field(default_factory=dict)
    step_peak_rise_mib: dict[str, float] = field(default_factory=dict)  # how much each step raised the peak memory
    outputs: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # one line each, naming the file (input_warnings)
    analysis: AnalysisSummary | None = None  # the automated analysis of the outputs (Outputs/Analysis)


def output_paths(config: PipelineConfig, data_root: DataRoot) -> dict[str, Path]:
    """The analysis outputs of a data root, by role."""
    return {
        "messages": data_root.outputs_dir / config.outputs.messages_csv,
        "individuals": data_root.outputs_dir / config.outputs.individuals_csv,
        "production": data_root.outputs_dir / config.outputs.production_csv,
        "audit_trail": data_root.outputs_dir / (config.outputs.audit_trail or "traced_data.json"),
    }


def run_generate(
    *, config: PipelineConfig, data_root: str | Path, run: RunContext, progress: TextIO | None = sys.stderr,
    messages_per_chunk: int | None = None, workers: int | None = None,
) -> GenerateSummary:
    """Runs stage 3 on a data root and writes every output; returns what it did.

    Respondents are processed about ``messages_per_chunk`` messages at a time (default
    :data:`MESSAGES_PER_CHUNK`), by ``workers`` processes (default :func:`~redss_pipeline.core.workers.
    default_workers`); the outputs are the same whatever the number of workers, and so are the CSV, Coda and ICR
    files whatever the chunk size (the audit trail is written a segment per chunk).

    Python's cyclic garbage collector is paused for the run: stage 3 builds millions of small objects that
    never form cycles, and each full collection would walk all of them again (it doubled the run time).
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _run_generate(config=config, data_root=data_root, run=run, progress=progress,
                             messages_per_chunk=messages_per_chunk or MESSAGES_PER_CHUNK,
                             workers=default_workers() if workers is None else workers)
    finally:
        if collecting:
            gc.enable()


MESSAGES_PER_CHUNK = 5_000
"""About how many messages stage 3 holds at once (whole respondents; memory follows this, not the data root)."""


def _run_generate(
    *, config: PipelineConfig, data_root: str | Path, run: RunContext, progress: TextIO | None,
    messages_per_chunk: int, workers: int,
) -> GenerateSummary:
    root = DataRoot(data_root)
    summary = GenerateSummary()
    counts = summary.counts
    times = StepTimes(summary.step_seconds, summary.step_cpu_seconds, summary.step_peak_rise_mib)

    def say(line: str) -> None:
        if progress is not None:
            print(f"  {line}", file=progress, flush=True)

    def warn(warnings: list[str]) -> None:
        summary.warnings += warnings
        for warning in warnings:
            say(f"warning: {warning}")

    for note in finish_interrupted_switches(root.outputs_dir, root.analysis_dir):  # a killed run's switch first
        say(note)
    _refuse_replacing_what_is_not_an_output(config, root)  # before the long work, which would otherwise be lost
    root.check_raw_files_whole()
    unfit = cleaner_scheme_problems(config)  # as the configuration check does: a scheme its cleaner does not fit
    if unfit:
        raise ConfigError(unfit, path=config.path)

    redactor = PhoneRedactor(config.phone_redaction)
    with times.step("load raw files"):
        index = RespondentIndex(config, root, redactor, workers=workers)
    times.cpu_seconds["load raw files"] += index.worker_cpu_seconds  # as for the spans, summed over processes
    redacted_while_indexing = index.redactor.count  # in survey records no chunk reads
    say(f"load raw files: {index.message_count:,} show records, {index.survey_record_count:,} survey records, "
        f"{index.respondent_count:,} respondents ({times.seconds['load raw files']:.1f} s)")
    # The coded files' texts are redacted apart from the run's count of redacted numbers, which is of the raw files;
    # the warnings that show a coded text redact it with a redactor of their own, made when needed, so no
    # redactor's memory of the texts it saw is kept for the run.
    with times.step("load coded Coda files"):
        coded_messages = _load_coded_files(config, root, PhoneRedactor(config.phone_redaction))
    say(f"load coded Coda files: {sum(1 for v in coded_messages.values() if len(v))} of {len(coded_messages)} "
        f"datasets have coded messages ({times.seconds['load coded Coda files']:.1f} s)")
    warn(raw_file_warnings(config, root, index.show_runs)
         + unread_answer_warnings(config, root, index.raw_answers)
         + coded_file_warnings(config, root, coded_messages, PhoneRedactor(config.phone_redaction).redact))

    paths = output_paths(config, root)
    root.prepare_folders()
    describe = partial(run_manifest, config=config, data_root=root, run=run, counts=counts)
    spans = list(index.spans(messages_per_chunk))
    span_workers = min(usable_workers(workers), len(spans))
    # The analysis command's manifest describes an analysis this run replaces: it goes with the switch.
    analysis_manifest = (root.analysis_dir / MANIFEST_NAME).relative_to(root.outputs_dir).as_posix()
    with OutputSet(root.outputs_dir, manifest=describe, retire=[analysis_manifest]) as staged, OrderedRows() as message_rows, OrderedRows() as individual_rows, ScratchDatabase() as scratch, \
            open(staged.path_for(paths["audit_trail"]), "wb") as trail_file:
        with AuditTrailWriter(trail_file, id_key="uid", target=str(paths["audit_trail"])) as trail:
            runner = ChunkRunner(config=config, run=run, index=index, coded_files=coded_messages, trail=trail,
                                 messages=message_rows, individuals=individual_rows, scratch=scratch, times=times)

            @contextmanager
            def span_work() -> Iterator[Callable[[Span], Iterator[ChunkOutcome]]]:
                # Runs in each worker process (or here, with one worker): a connection of its own to the table.
                with open_uuid_table(root.root, read_only=True) as table:
                    yield partial(runner.process, uuid_table=table)

            if span_workers > 1:
                say(f"respondents: {len(spans):,} spans shared by {span_workers} worker processes")
            outcomes = in_order(spans, span_work, workers=span_workers)
            with closing(outcomes):  # the workers stop here whatever happens
                for outcome in outcomes:
                    with times.step("keep chunks"):  # in this process: the sinks, scratch database, audit trail
                        runner.keep(outcome)
                    done = outcome.respondents_done
                    if done is not None and done < index.respondent_count:
                        say(f"respondents: {done:,} of {index.respondent_count:,} done")
        redacted = redacted_while_indexing + runner.phone_numbers_redacted
        counts["phone numbers redacted"] = redacted
        say(f"phone redaction: {redacted:,} typed phone numbers redacted")
        _report(runner, times, config, say)
        warn(week_warnings(config, runner.weekless))
        counts.update(runner.counts)  # every step's counts: the runs dropped, messages, noise, people, withdrawals

        written = []
        # The end of the run's work, each under a name of its own (the chunks' steps have theirs): choosing each
        # Coda file's messages and drawing the ICR samples from the scratch database.
        with times.step("choose RQA Coda messages"):
            rqa_coda = runner.rqa_coda.files()
        with times.step("choose survey Coda messages"):
            survey_coda = runner.survey_coda.files()
        with times.step("draw ICR samples"):
            icr = runner.icr.samples()
        with times.step("ICR Coda files and second coder"):
            icr_round_trip = prepare_icr_round_trip(config, root, icr, coded_files=coded_messages)
        warn(icr_round_trip.warnings)
        with times.step("write outputs"):
            # Each dataset's coding progress is counted as its Coda file is written: its messages are made once.
            tallies = progress_tallies(config, coded_messages)
            coda_counts = {}
            for name, messages_of_file in {**rqa_coda, **survey_coda}.items():
                target = root.coda_dir / name
                tally = tallies.get(name)
                coda_counts[name] = coda.write_coda_file(
                    staged.path_for(target), messages_of_file if tally is None else tally.counted(messages_of_file))
                written.append(target)
            for plan in config.rqa_plans:
                target = root.icr_dir / plan.icr_file
                rows = [{plan.run_id_field: row.run_id, plan.raw_field: row.raw} for row in icr.get(plan.icr_file, [])]
                write_icr_csv(staged.path_for(target), plan, rows)
                written.append(target)
            columns = analysis_columns(config)
            messages_csv, individuals_csv = staged.path_for(paths["messages"]), staged.path_for(paths["individuals"])
            write_message_lines(messages_csv, staged.path_for(paths["production"]), message_rows.rows(),
                                columns=columns, production_columns=production_columns(config))
            write_analysis_lines(individuals_csv, individual_rows.rows(), columns)
        # The tallies have now seen every exported message.
        warn(unmatched_code_warnings(config, root, tallies, PhoneRedactor(config.phone_redaction).redact))
        with times.step("coding quality"):
            quality = measure_coding_quality(config, icr_round_trip, coded_files=coded_messages,
                                             progress=progress_rows(tallies.values()))
        with times.step("write outputs"):
            written += quality.write(staged, root)
            written += [paths["messages"], paths["individuals"], paths["production"], paths["audit_trail"]]
        say("RQA Coda files: " + ", ".join(f"{name} {coda_counts[name]:,}" for name in rqa_coda))
        say("ICR samples: " + ", ".join(f"{name} {len(rows):,}" for name, rows in icr.items()))
        say(f"ICR Coda files and second coder: {icr_round_trip.describe()} "
            f"({times.seconds['ICR Coda files and second coder']:.1f} s)")
        say(f"coding quality: {quality.summary()} ({times.seconds['coding quality']:.1f} s)")
        say(f"write outputs: {len(written)} files ({times.seconds['write outputs']:.1f} s)")
        # The automated analysis of the CSVs just staged (tables, charts, maps, report), in the same output set.
        with times.step("analysis"):
            summary.analysis = analyse_into(staged, config=config, data_root=root, messages_csv=messages_csv,
                                            individuals_csv=individuals_csv, progress=progress,
                                            coding_quality=quality, workers=workers, outputs_run=run.started_at)
        times.cpu_seconds["analysis"] += summary.analysis.worker_cpu_seconds  # its reading and drawings, in the workers
    summary.outputs = written
    return summary


def _report(runner: ChunkRunner, times: StepTimes, config: PipelineConfig, say: Callable[[str], None]) -> None:
    """One line per step: its name, its counts over all chunks and the time it took."""
    counts = runner.counts
    shows = ", ".join(f"{plan.name} {runner.show_counts.get(n, 0):,}" for n, plan in enumerate(config.rqa_plans, 1))
    coded = "; ".join(f"{name.removesuffix('.json')} {offered - nr:,} coded/{nr:,} NR"
                      for name, (offered, nr) in runner.coded_counts.items())
    details = {
        "combine shows and surveys": "",
        "translate keys and corrections": f"messages by show after corrections: {shows}",
        "filter messages": f"{counts['messages']:,} kept, {counts[TEST_RUN]:,} test runs, {counts[EMPTY_RUN]:,} "
                           f"empty runs, {counts[OUTSIDE_WINDOW]:,} outside the project window dropped",
        "noise": f"{counts['noise']:,} noise messages",
        "operator look-up": f"{counts['people']:,} people",
        "manual codes": coded,
        "consent": f"{counts['withdrawn messages']:,} messages withdrawn",
        "individuals": f"{counts['people']:,} people, {counts['withdrawn people']:,} withdrew consent",
    }
    for name, seconds in times.seconds.items():
        if name in ("load raw files", "load coded Coda files"):
            continue
        detail = details.get(name, "")
        say(f"{name}{': ' + detail if detail else ''} ({seconds:.1f} s)")


# -- inputs ------------------------------------------------------------------------------------------------------


def _coda_file_names(config: PipelineConfig) -> list[str]:
    names = [plan.coda_file for plan in config.rqa_plans]
    for plan in config.survey_plans:
        if plan.coda_file not in names:
            names.append(plan.coda_file)
    return names


def _refuse_replacing_what_is_not_an_output(config: PipelineConfig, root: DataRoot) -> None:
    """Stops the run before it reads anything when replacing an output would destroy what is not one: a folder
    standing at an output file's path (the switch would remove it), or an export holding labels a coder checked,
    which is a coded file saved back over the file it was uploaded from (the pipeline's exports carry unchecked
    suggestions only)."""
    exports = [(root.coda_dir / name, root.coded_dir) for name in _coda_file_names(config)]
    exports += [(root.icr_coda_dir / plan.coda_file, root.icr_coded_dir) for plan in config.rqa_plans]
    files = [*output_paths(config, root).values(), *(root.icr_dir / plan.icr_file for plan in config.rqa_plans),
             *(export for export, _ in exports)]
    for path in files:
        refuse_what_is_in_the_way(path, OutputError)
    for export, coded_folder in exports:
        coded = coda.messages_coded_in(export)
        if coded != 0:
            holds = "labels a coder checked" if coded is None else \
                f"labels a coder checked on {coded:,} message{'' if coded == 1 else 's'}"
            raise CodaFileError(
                f"holds {holds}, so it is a coded file saved over the pipeline's export, which this run would "
                f"replace: move it to {coded_folder.relative_to(root.root).as_posix()}/ (or delete it if its codes "
                "are there already) and run stage 3 again", path=export.relative_to(root.root).as_posix())


def _load_coded_files(
    config: PipelineConfig, root: DataRoot, redactor: PhoneRedactor
) -> dict[str, coda.CodedMessages]:
    """Every dataset's coded messages; a missing file reads as "nothing coded yet". Texts coded with a phone
    number in them (2019) are found by their redacted text too (a redactor of its own: the stage's counts the
    numbers of the answers, not of the coded files)."""
    root.check_coded_dir()
    refuse_renamed_coded_files(root, _coda_file_names(config), [plan.coda_file for plan in config.rqa_plans])
    return {name: coda.read_coded_file(root.coded_dir / name, redact=redactor.redact)
            for name in _coda_file_names(config)}
