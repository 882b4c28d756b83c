"""Stage 3, orchestrated: load the inputs, run every step of spec pipeline.md section 7 in order, write outputs.

This module only wires: reading files, calling the pure steps (each in its own module), and writing the outputs.
No transformation lives here. Every output is staged as a temporary file and moved into place only after all
of them were written, so a failure at any point leaves the previous outputs untouched (spec section 5).

Order of work (spec section 5):

 1. load the UUID table and the raw files (7.1)            -> traced_data_json, uuid_table
 2. combine show records with survey records (7.2)         -> combine
 3. translate Rapid Pro keys and apply corrections (7.3)   -> corrections
 4. auto-code the show messages (7.4)                      -> show_messages
 5. auto-code the surveys (7.5)                            -> survey_autocode
 6. apply the manual codes, reconcile locations (7.6)      -> manual_codes, location_reconciliation
 7. analysis columns, consent, individuals (7.7)           -> analysis, individuals
 8. write the CSVs, ICR and Coda files, the audit trail    -> analysis_files, coda, audit_trail
"""

from __future__ import annotations

import gc
import sys
import time
from functools import partial
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TextIO

from redss_pipeline.analysis.coding_quality import measure_coding_quality, prepare_icr_round_trip
from redss_pipeline.export import coda
from redss_pipeline.generate.analysis_columns import add_analysis_columns, determine_consent
from redss_pipeline.export.analysis_files import analysis_columns, production_columns, production_rows, write_analysis_csv, write_icr_csv
from redss_pipeline.core.output_set import OutputSet, finish_interrupted_switch
from redss_pipeline.core.run_manifest import run_manifest
from redss_pipeline.core.audit_trail import write_audit_trail
from redss_pipeline.generate.combine import combine_shows_and_surveys, show_flows, survey_flows
from redss_pipeline.core.config import PipelineConfig
from redss_pipeline.generate.corrections import translate_rapid_pro_keys
from redss_pipeline.core.data_root import DataRoot
from redss_pipeline.core.errors import RawDataError
from redss_pipeline.generate.individuals import fold_individuals
from redss_pipeline.generate.input_warnings import coded_file_warnings, raw_file_warnings
from redss_pipeline.core.labels import code_ids
from redss_pipeline.generate.location_reconciliation import reconcile_locations
from redss_pipeline.generate.manual_codes import apply_manual_codes
from redss_pipeline.core.records import Record
from redss_pipeline.core.run_context import RunContext
from redss_pipeline.generate.show_messages import (
    assign_rqa_message_ids,
    drop_empty_runs,
    drop_test_runs,
    flag_noise,
    icr_samples,
    keep_project_window,
    label_other_shows_na,
    rqa_coda_messages,
    set_channel_keys,
)
from redss_pipeline.generate.survey_autocode import auto_code_surveys
from redss_pipeline.core.traced_data_json import read_traced_data_file
from redss_pipeline.deidentify.phone_redaction import PhoneRedactor, redact_raw_records
from redss_pipeline.deidentify.uuid_table import open_uuid_table

__all__ = ["GenerateSummary", "run_generate", "output_paths"]


@dataclass
class GenerateSummary:
    """What a stage-3 run did: counts per step, the files written, and the time each step took."""

    counts: dict[str, int] = field(default_factory=dict)
    step_seconds: dict[str, float] = field(default_factory=dict)
    outputs: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # one line each, naming the file (input_warnings)


class _Progress:
    """One line per step on ``stream``: its name, its counts and how long it took."""

    def __init__(self, summary: GenerateSummary, stream: TextIO | None):
        self._summary = summary
        self._stream = stream

    def warn(self, warnings: list[str]) -> None:
        self._summary.warnings.extend(warnings)
        for warning in warnings:
            self.note(f"warning: {warning}")

    def note(self, text: str) -> None:
        if self._stream is not None:
            print(f"  {text}", file=self._stream, flush=True)

    def step(self, name: str, work: Callable[[], Any], describe: Callable[[Any], str] | None = None) -> Any:
        started = time.perf_counter()
        result = work()
        seconds = time.perf_counter() - started
        self._summary.step_seconds[name] = seconds
        if self._stream is not None:
            detail = f": {describe(result)}" if describe else ""
            print(f"  {name}{detail} ({seconds:.1f} s)", file=self._stream, flush=True)
        return result


def output_paths(config: PipelineConfig, data_root: DataRoot) -> dict[str, Path]:
    """The analysis outputs of a data root, by role."""
    return {
        "messages": data_root.outputs_dir / config.outputs.messages_csv,
        "individuals": data_root.outputs_dir / config.outputs.individuals_csv,
        "production": data_root.outputs_dir / config.outputs.production_csv,
        "audit_trail": data_root.outputs_dir / (config.outputs.audit_trail or "traced_data.json"),
    }


def run_generate(
    *, config: PipelineConfig, data_root: str | Path, run: RunContext, progress: TextIO | None = sys.stderr
) -> GenerateSummary:
    """Runs stage 3 on a data root and writes every output; returns what it did.

    Python's cyclic garbage collector is paused for the run: stage 3 builds millions of small objects that
    never form cycles, and each full collection would walk all of them again (it doubled the run time).
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _run_generate(config=config, data_root=data_root, run=run, progress=progress)
    finally:
        if collecting:
            gc.enable()


def _run_generate(
    *, config: PipelineConfig, data_root: str | Path, run: RunContext, progress: TextIO | None
) -> GenerateSummary:
    root = DataRoot(data_root)
    summary = GenerateSummary()
    counts = summary.counts
    p = _Progress(summary, progress)
    for note in finish_interrupted_switch(root.outputs_dir):  # a killed run's switch completes first
        p.note(note)

    redactor = PhoneRedactor(config.phone_redaction)
    show_files, survey_files = p.step(
        "load raw files", lambda: _load_raw_files(config, root, redactor),
        lambda files: f"{sum(map(len, files[0])):,} show records, {sum(map(len, files[1])):,} survey records, "
        f"{redactor.count:,} typed phone numbers redacted",
    )
    counts["phone numbers redacted"] = redactor.count
    coded_messages = p.step(
        "load coded Coda files", lambda: _load_coded_files(config, root, PhoneRedactor(config.phone_redaction)),
        lambda c: f"{sum(1 for v in c.values() if len(v))} of {len(c)} datasets have coded messages",
    )
    p.warn(raw_file_warnings(config, root, show_files) + coded_file_warnings(config, root, coded_messages))

    records = p.step("combine shows and surveys",
                     partial(combine_shows_and_surveys, show_files, survey_files, config=config, run=run),
                     lambda r: f"{len(r):,} show records")
    del show_files, survey_files  # the combined records replace them; at a million messages this is GBs
    ws_coded = coded_messages[config.rqa_plan(config.ws_redirect.show).coda_file] if config.ws_redirect else None
    records = p.step("translate keys and corrections",
                     lambda: translate_rapid_pro_keys(records, config=config, run=run, ws_coded=ws_coded),
                     lambda r: _moved(r, config))

    def filters() -> list[Record]:
        kept = drop_test_runs(records)
        counts["test runs dropped"] = len(records) - len(kept)
        answered = drop_empty_runs(kept, config=config)
        counts["empty runs dropped"] = len(kept) - len(answered)
        in_window = keep_project_window(answered, config=config)
        counts["outside the project window"] = len(answered) - len(in_window)
        counts["messages"] = len(in_window)
        return in_window

    records = p.step("filter messages", filters, lambda r: (
        f"{len(r):,} kept, {counts['test runs dropped']:,} test runs, {counts['empty runs dropped']:,} empty runs, "
        f"{counts['outside the project window']:,} outside the project window dropped"))
    records = p.step("noise", lambda: flag_noise(records, config=config, run=run),
                     lambda r: f"{_count(r, lambda x: x.get('noise') is True):,} noise messages")
    records = p.step("NA labels, channels and weeks", lambda: set_channel_keys(
        label_other_shows_na(records, config=config, run=run), config=config, run=run))
    records = p.step("message ids", lambda: assign_rqa_message_ids(records, config=config, run=run))
    rqa_coda = p.step("RQA Coda files", lambda: rqa_coda_messages(records, config=config),
                      lambda files: ", ".join(f"{name} {len(msgs):,}" for name, msgs in files.items()))
    icr = p.step("ICR samples", lambda: icr_samples(records, config=config),
                 lambda files: ", ".join(f"{name} {len(rows):,}" for name, rows in files.items()))
    icr_round_trip = p.step("ICR Coda files and second coder", lambda: prepare_icr_round_trip(config, root, icr),
                            lambda rt: rt.describe())

    with open_uuid_table(root.root) as table:
        uids = {r["uid"] for r in records}
        phone_keys = p.step("operator look-up", lambda: table.keys_for_uuids(uids), lambda k: f"{len(k):,} people")
    surveys = p.step("survey auto-coding",
                     lambda: auto_code_surveys(records, config=config, run=run, phone_keys=phone_keys))
    records, survey_coda = surveys.records, surveys.coda_files
    del surveys

    records = p.step("manual codes", lambda: apply_manual_codes(records, config=config, run=run,
                                                                   coded_files=coded_messages),
                     lambda r: _coded_counts(r, config))
    records = p.step("location reconciliation", lambda: reconcile_locations(records, config=config, run=run))
    records = p.step("analysis columns", lambda: add_analysis_columns(records, config=config, run=run))
    records = p.step("consent", lambda: determine_consent(records, config=config, run=run),
                     lambda r: f"{_count(r, lambda x: x.get('consent_withdrawn') == 'true'):,} messages withdrawn")
    messages, individuals = p.step(
        "individuals", lambda: fold_individuals(records, config=config, run=run),
        lambda mi: f"{len(mi[1]):,} people, "
        f"{_count(mi[1], lambda x: x.get('consent_withdrawn') == 'true'):,} withdrew consent",
    )
    quality = p.step("coding quality", lambda: measure_coding_quality(
        config, icr_round_trip, coded_files=coded_messages, exported={**rqa_coda, **survey_coda}),
        lambda q: q.summary())
    counts["people"] = len(individuals)
    counts["withdrawn people"] = _count(individuals, lambda x: x.get("consent_withdrawn") == "true")

    paths = output_paths(config, root)
    root.create_output_dirs()

    def write_all() -> list[Path]:
        written = []
        describe = partial(run_manifest, config=config, data_root=root, run=run, counts=counts)
        with OutputSet(root.outputs_dir, manifest=describe) as staged:
            for name, messages_of_file in {**rqa_coda, **survey_coda}.items():
                target = root.coda_dir / name
                coda.write_coda_file(staged.path_for(target), messages_of_file)
                written.append(target)
            for plan in config.rqa_plans:
                target = root.icr_dir / plan.icr_file
                rows = [{plan.run_id_field: row.run_id, plan.raw_field: row.raw} for row in icr.get(plan.icr_file, [])]
                write_icr_csv(staged.path_for(target), plan, rows)
                written.append(target)
            columns = analysis_columns(config)
            write_analysis_csv(staged.path_for(paths["messages"]), messages, columns)
            write_analysis_csv(staged.path_for(paths["individuals"]), individuals, columns)
            write_analysis_csv(staged.path_for(paths["production"]), production_rows(messages),
                               production_columns(config))
            write_audit_trail(staged.path_for(paths["audit_trail"]), messages, id_key="uid")
            written += quality.write(staged, root)
            written += [paths["messages"], paths["individuals"], paths["production"], paths["audit_trail"]]
        return written

    summary.outputs = p.step("write outputs", write_all, lambda w: f"{len(w)} files")
    return summary


# -- inputs ------------------------------------------------------------------------------------------------------


def _load_raw_files(
    config: PipelineConfig, root: DataRoot, redactor: PhoneRedactor
) -> tuple[list[list[Record]], list[list[Record]]]:
    """The records of the show files and of the survey files, with phone numbers typed into answers redacted
    before anything is derived from them (2019 raw files hold the answers verbatim)."""
    def read(flow: str) -> list[Record]:
        path = root.raw_file(flow)
        if not path.is_file():
            raise RawDataError("raw data file missing: run stage 2 (2_fetch_raw_data.sh) on this data root first",
                               path=path)
        return redact_raw_records(read_traced_data_file(path), redactor)

    return [read(flow) for flow in show_flows(config)], [read(flow) for flow in survey_flows(config)]


def _coda_file_names(config: PipelineConfig) -> list[str]:
    names = [plan.coda_file for plan in config.rqa_plans]
    for plan in config.survey_plans:
        if plan.coda_file not in names:
            names.append(plan.coda_file)
    return names


def _load_coded_files(
    config: PipelineConfig, root: DataRoot, redactor: PhoneRedactor
) -> dict[str, coda.CodedMessages]:
    """Every dataset's coded messages; a missing file reads as "nothing coded yet". Texts coded with a phone
    number in them (2019) are found by their redacted text too (a redactor of its own: the stage's counts the
    numbers of the answers, not of the coded files)."""
    return {name: coda.read_coded_file(root.coded_dir / name, redact=redactor.redact)
            for name in _coda_file_names(config)}


# -- progress details ----------------------------------------------------------------------------------------------


def _count(records: Any, predicate: Callable[[Record], bool]) -> int:
    return sum(1 for record in records if predicate(record))


def _moved(records: list[Record], config: PipelineConfig) -> str:
    by_show: dict[int, int] = {}
    for record in records:
        show = record.get("show_id")
        if show is not None:
            by_show[show] = by_show.get(show, 0) + 1
    shows = ", ".join(f"{plan.name} {by_show.get(n, 0):,}" for n, plan in enumerate(config.rqa_plans, start=1))
    return f"messages by show after corrections: {shows}"


def _coded_counts(records: list[Record], config: PipelineConfig) -> str:
    """Per Coda dataset: how many messages hold a code, and how many are NR (nothing checked by a coder).

    A dataset is counted on the coded field of its first plan (the reasons of a show, the sub-district of
    ``location.json``), over the records that were exported to it (those having its message-id field).
    """
    datasets: dict[str, tuple[str, str, str | None]] = {}
    for plan in (*config.rqa_plans, *config.survey_plans):
        nr = plan.scheme.control("NR")
        datasets.setdefault(plan.coda_file, (plan.id_field, plan.coded_field, nr.code_id if nr else None))
    parts = []
    for name, (id_field, coded_field, nr_id) in datasets.items():
        exported = [record for record in records if id_field in record]
        nr = sum(1 for record in exported if code_ids(record.get(coded_field)) == [nr_id])
        parts.append(f"{name.removesuffix('.json')} {len(exported) - nr:,} coded/{nr:,} NR")
    return "; ".join(parts)

