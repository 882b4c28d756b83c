"""Merging the coders' work back: the manual codes of ``Coded Coda Files/`` (spec pipeline.md 7.6.1-7.6.3).

After this step every coded field of every message record holds what the analysis files will show:

| step  | records                           | fields                                         | from                   |
| ----- | --------------------------------- | ---------------------------------------------- | ---------------------- |
| 7.6.1 | non-noise messages of each show   | reasons list (multi-coded), binary label       | ``<show>.json``        |
| 7.6.2 | noise messages                    | their own show's reasons ``[NC]``, binary NC   | (noise is not coded)   |
| 7.6.3 | every record with a survey answer | each survey plan's label, in plan order        | ``<plan>.json``,       |
|       |                                   |                                                | ``location.json``      |

The merge rules themselves (newest label, NR when nothing is checked, duplicate schemes) live in
:mod:`redss_pipeline.export.coda`. The five location plans all read ``location.json``, each with its own scheme; the
reconciliation of the five levels follows in :mod:`redss_pipeline.generate.location_reconciliation`.

A million message records would otherwise take one audit layer per Coda file (up to fourteen), each copying the
whole record. The show imports therefore apply the merge rules (:class:`~redss_pipeline.export.coda.MultiCodedImport`,
:class:`~redss_pipeline.export.coda.SingleCodedImport`) to each record's message id and field values directly; the
survey imports run once per distinct combination of answers and labels, since a respondent's answers repeat on
all of their messages. Each real record receives the outcome in one write by the
step ``generate/manual_codes``.
"""

from __future__ import annotations

import itertools
import operator
from typing import Any, Mapping

from redss_pipeline.core.code_scheme import NC
from redss_pipeline.core.config import PipelineConfig
from redss_pipeline.core.errors import PipelineError
from redss_pipeline.core.labels import control_label
from redss_pipeline.core.record_fields import NOISE_KEY, RecordColumns
from redss_pipeline.core.records import Record, Step
from redss_pipeline.core.run_context import RunContext
from redss_pipeline.export.coda import CodedMessages, MultiCodedImport, SingleCodedImport

__all__ = ["MANUAL_CODES_STEP", "NOISE_NOT_CODED_ORIGIN", "apply_manual_codes"]

MANUAL_CODES_STEP = "generate/manual_codes"
"""The step that writes the labels of the coded Coda files on the message records."""

NOISE_NOT_CODED_ORIGIN = "redss_pipeline.manual_codes.noise_not_coded@1"
"""``Origin.OriginID`` of the NC labels written on noise messages (7.6.2)."""


def apply_manual_codes(
    records: list[Record],
    *,
    config: PipelineConfig,
    run: RunContext,
    coded_files: Mapping[str, CodedMessages],
) -> list[Record]:
    """Imports the coded Coda files into the records (7.6.1-7.6.3); returns the records in the same order.

    ``coded_files`` maps a Coda file name (``s01e01.json``, ``location.json``, ...) to its coded messages as
    read by :func:`redss_pipeline.export.coda.read_coded_file`; a name missing from the mapping means nothing has been
    coded in that dataset yet, exactly like a missing file. Only records having a plan's message-id field take
    part in its import, so noise messages are never touched by the RQA imports; 7.6.2 then marks them not coded.

    The imports run in the order of the spec - each show's reasons then its binary question, noise, then the
    surveys in plan order - but record by record, holding nothing per record (a million message records). The
    spec's order also decides which problem is reported when the coded files have several: the merge notes each
    problem with the place of its import in that order, goes on, and raises the earliest one once every record
    of ``records`` is merged (of one import's problems, that of the first record); no record is returned then.
    Stage 3 merges a chunk of respondents at a time, so of problems in different chunks the first chunk's is
    reported (the same whatever the number of workers, as chunks are formed before they are handed out).
    """
    step = run.step(MANUAL_CODES_STEP)
    return _merged(records, _Imports(config, coded_files, run.label_time), step)


class _Imports:
    """The merge rules of every coded field of 7.6.1-7.6.3, in the order the spec applies them."""

    def __init__(self, config: PipelineConfig, coded_files: Mapping[str, CodedMessages], label_time: str):
        def coded(file_name: str) -> CodedMessages:
            found = coded_files.get(file_name)
            return CodedMessages(path=file_name) if found is None else found

        # Every import has its place in the spec's order (``order``), which ranks the problems they meet.
        order = itertools.count()
        # Per show: its message-id field and its merges (the reasons, multi-coded; then the binary question).
        self.shows: list[tuple[str, list[tuple[str, MultiCodedImport | SingleCodedImport, int]]]] = []
        for plan in config.rqa_plans:
            messages = coded(plan.coda_file)
            merges: list[tuple[str, MultiCodedImport | SingleCodedImport, int]] = [(plan.coded_field, MultiCodedImport(
                messages, coded_field=plan.coded_field, scheme=plan.scheme, label_time=label_time), next(order))]
            if plan.binary is not None:
                merges.append((plan.binary.coded_field, SingleCodedImport(
                    messages, coded_field=plan.binary.coded_field, scheme=plan.binary.scheme,
                    label_time=label_time), next(order)))
            self.shows.append((plan.id_field, merges))
        self.show_fields = _show_fields(config)
        self.noise_labels = _noise_not_coded_labels(config, label_time)
        # The surveys in plan order: the location plans share location.json, each with its own scheme.
        self.surveys = [(plan.id_field, plan.coded_field, SingleCodedImport(
            coded(plan.coda_file), coded_field=plan.coded_field, scheme=plan.scheme, label_time=label_time),
            next(order)) for plan in config.survey_plans]
        self.survey_ids = list(dict.fromkeys(plan.id_field for plan in config.survey_plans))
        self.survey_fields = list(dict.fromkeys(plan.coded_field for plan in config.survey_plans))


_ABSENT: Any = object()


class _Problems:
    """The problem to report: of those the imports meet, the one of the earliest import in the spec's order,
    and of one import's problems the first met (records are merged in order)."""

    __slots__ = ("first", "_order")

    def __init__(self) -> None:
        self.first: PipelineError | None = None
        self._order = -1

    def note(self, order: int, error: PipelineError) -> None:
        if self.first is None or order < self._order:
            self.first, self._order = error, order


def _merged(records: list[Record], imports: _Imports, step: Step) -> list[Record]:
    show_ids = [id_field for id_field, _ in imports.shows]
    keys = list(dict.fromkeys([NOISE_KEY, *show_ids, *imports.show_fields, *imports.survey_ids,
                               *imports.survey_fields]))
    position = {key: index for index, key in enumerate(keys)}
    columns = RecordColumns(keys, _ABSENT)
    noise_at = position[NOISE_KEY]
    shows = [(position[id_field], [(field, position[field], merge, order) for field, merge, order in merges])
             for id_field, merges in imports.shows]
    noise_labels = [(field, position[field], nc_list, binary_field, binary_nc)
                     for field, nc_list, binary_field, binary_nc in imports.noise_labels]
    survey_at = [position[key] for key in (*imports.survey_ids, *imports.survey_fields)]
    survey_getter = operator.itemgetter(*survey_at)
    id_count = len(imports.survey_ids)
    show_fields = imports.show_fields
    # A respondent's answers and their labels repeat on all of their messages, and the survey outcome depends on
    # nothing else: it is worked out once per distinct combination. The answers' message ids are the key; the
    # labels (dicts) are compared with ==, so records with equal labels share the outcome.
    survey_changes: dict[tuple[Any, ...], list[tuple[tuple[Any, ...], dict[str, Any]]]] = {}
    problems = _Problems()

    result = []
    for record in records:
        row = columns(record)

        # 7.6.1: each show the record has a message id of (normally its own show only).
        mine: dict[str, Any] = {}
        for id_at, merges in shows:
            mid = row[id_at]
            if mid is _ABSENT or mid is None:
                continue
            for field, field_at, merge, order in merges:
                current = mine[field] if field in mine else row[field_at]
                try:
                    mine[field] = merge.value(mid, None if current is _ABSENT else current)
                except PipelineError as error:
                    problems.note(order, error)

        # 7.6.2: noise messages were never exported, so their own show is "not coded".
        noise = row[noise_at]
        if noise is not _ABSENT and noise:
            for field, field_at, nc_list, binary_field, binary_nc in noise_labels:
                if field not in mine and row[field_at] is _ABSENT:
                    mine[field] = nc_list
                    if binary_field is not None:
                        mine[binary_field] = binary_nc

        changes: dict[str, Any] = {}
        if mine:
            for field in show_fields:
                value = mine.get(field)
                if value is not None and value is not _present(row[position[field]]):
                    changes[field] = value

        # 7.6.3: the surveys.
        answers = tuple(map(_present, survey_getter(row)))
        labels = answers[id_count:]
        known = survey_changes.setdefault(answers[:id_count], [])
        survey = next((outcome for known_labels, outcome in known if known_labels == labels), None)
        if survey is None:
            survey = _survey_changes(dict(zip((*imports.survey_ids, *imports.survey_fields), answers)), imports,
                                     problems)
            known.append((labels, survey))
        changes.update(survey)
        result.append(record.updated(step, changes))
    if problems.first is not None:
        raise problems.first
    return result


def _present(value: Any) -> Any:
    """A value read with RecordColumns as ``Mapping.get`` gives it: None for an absent key."""
    return None if value is _ABSENT else value


def _survey_changes(values: dict[str, Any], imports: _Imports, problems: _Problems) -> dict[str, Any]:
    """What the survey imports change for records holding ``values`` (their survey ids and coded fields)."""
    mine: dict[str, Any] = {}
    for id_field, field, merge, order in imports.surveys:
        mid = values.get(id_field)
        if mid is not None:
            try:
                mine[field] = merge.value(mid, mine[field] if field in mine else values.get(field))
            except PipelineError as error:
                problems.note(order, error)
    return _changes(values, mine, imports.survey_fields)


def _show_fields(config: PipelineConfig) -> list[str]:
    fields = []
    for plan in config.rqa_plans:
        fields.append(plan.coded_field)
        if plan.binary is not None:
            fields.append(plan.binary.coded_field)
    return fields


def _changes(before: Mapping[str, Any], after: Mapping[str, Any], fields: list[str]) -> dict[str, Any]:
    """The fields whose value the imports changed (the merge rules keep an unchanged value's object)."""
    return {field: value for field in fields
            if (value := after.get(field)) is not None and value is not before.get(field)}


def _noise_not_coded_labels(config: PipelineConfig, label_time: str) -> list[tuple[str, Any, str | None, Any]]:
    """7.6.2 per show: (reasons field, ``[NC]``, binary field or None, binary NC label or None)."""
    labels: list[tuple[str, Any, str | None, Any]] = []
    for plan in config.rqa_plans:
        nc = control_label(plan.scheme, NC, origin_id=NOISE_NOT_CODED_ORIGIN, label_time=label_time)
        binary_nc = None
        if plan.binary is not None:
            binary_nc = control_label(plan.binary.scheme, NC, origin_id=NOISE_NOT_CODED_ORIGIN,
                                      label_time=label_time)
        # One shared list and label per plan: labels are values and are never changed in place.
        labels.append((plan.coded_field, [nc], None if plan.binary is None else plan.binary.coded_field,
                       binary_nc))
    return labels
