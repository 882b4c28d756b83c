"""Merging the coders' work back: the manual codes of ``Coded Coda Files/`` (spec pipeline.md 7.6.1-7.6.3).

After this step every coded field of every message record holds what the analysis files will show:

| step  | records                          | fields                                           | from                            |
| ----- | -------------------------------- | ------------------------------------------------ | ------------------------------- |
| 7.6.1 | non-noise messages of each show  | reasons list (multi-coded), binary label         | ``<show>.json``                 |
| 7.6.2 | noise messages                   | their own show's reasons ``[NC]`` and binary NC  | (noise is not coded)            |
| 7.6.3 | every record with a survey answer| each survey plan's label, in plan order          | ``<plan>.json``, ``location.json`` |

The merge rules themselves (newest label, NR when nothing is checked, duplicate schemes) live in
:mod:`redss_pipeline.coda`. The five location plans all read ``location.json``, each with its own scheme; the
reconciliation of the five levels follows in :mod:`redss_pipeline.location_reconciliation`.

A million message records would otherwise take one audit layer per Coda file (up to fourteen), each copying the
whole record. The show imports therefore apply the merge rules (:class:`~redss_pipeline.coda.MultiCodedImport`,
:class:`~redss_pipeline.coda.SingleCodedImport`) to each record's message id and field values directly; the
survey imports run once per distinct combination of answers and labels, since a respondent's answers repeat on
all of their messages. Each real record receives the outcome in one write by the
step ``generate/manual_codes``.
"""

from __future__ import annotations

from typing import Any, Mapping

from redss_pipeline.code_scheme import NC
from redss_pipeline.coda import CodedMessages, MultiCodedImport, SingleCodedImport
from redss_pipeline.config import PipelineConfig
from redss_pipeline.labels import control_label
from redss_pipeline.records import Record
from redss_pipeline.run_context import RunContext
from redss_pipeline.show_messages import NOISE_KEY

__all__ = ["NOISE_NOT_CODED_ORIGIN", "apply_manual_codes", "coded_fields"]

NOISE_NOT_CODED_ORIGIN = "redss_pipeline.manual_codes.noise_not_coded@1"
"""``Origin.OriginID`` of the NC labels written on noise messages (7.6.2)."""


def coded_fields(config: PipelineConfig) -> list[str]:
    """Every field this step may write: the shows' reasons and binary fields, then the survey fields."""
    return list(dict.fromkeys([*_show_fields(config), *(plan.coded_field for plan in config.survey_plans)]))


def apply_manual_codes(
    records: list[Record],
    *,
    config: PipelineConfig,
    run: RunContext,
    coded_files: Mapping[str, CodedMessages],
) -> list[Record]:
    """Imports the coded Coda files into the records (7.6.1-7.6.3); returns the records in the same order.

    ``coded_files`` maps a Coda file name (``s01e01.json``, ``location.json``, ...) to its coded messages as
    read by :func:`redss_pipeline.coda.read_coded_file`; a name missing from the mapping means nothing has been
    coded in that dataset yet, exactly like a missing file. Only records having a plan's message-id field take
    part in its import, so noise messages are never touched by the RQA imports; 7.6.2 then marks them not coded.
    """
    step = run.step("generate/manual_codes")
    label_time = run.label_time

    def coded(file_name: str) -> CodedMessages:
        found = coded_files.get(file_name)
        return CodedMessages(path=file_name) if found is None else found

    contents = [record.to_dict() for record in records]

    # 7.6.1: per show, the reasons (multi-coded, duplicate schemes included), then the binary question; each
    # import over all records before the next (so the first problem reported is the one 2019 met first). The
    # merge rules work on the message id and the field's current value, read from the records' contents with
    # what the earlier imports of this step wrote on top (``written``).
    written: list[dict[str, Any] | None] = [None] * len(contents)
    for plan in config.rqa_plans:
        messages = coded(plan.coda_file)
        imports: list[tuple[str, MultiCodedImport | SingleCodedImport]] = [(plan.coded_field, MultiCodedImport(
            messages, coded_field=plan.coded_field, scheme=plan.scheme, label_time=label_time))]
        if plan.binary is not None:
            imports.append((plan.binary.coded_field, SingleCodedImport(
                messages, coded_field=plan.binary.coded_field, scheme=plan.binary.scheme, label_time=label_time)))
        for field, merge in imports:
            for index, values in enumerate(contents):
                mid = values.get(plan.id_field)
                if mid is None:
                    continue
                mine = written[index]
                if mine is None:
                    mine = written[index] = {}
                mine[field] = merge.value(mid, mine[field] if field in mine else values.get(field))

    # 7.6.2: noise messages were never exported, so their own show is "not coded".
    noise_labels = _noise_not_coded_labels(config, label_time)
    for index, values in enumerate(contents):
        if values.get(NOISE_KEY):
            mine = written[index]
            if mine is None:
                mine = written[index] = {}
            for field, nc_list, binary_field, binary_nc in noise_labels:
                if field not in mine and field not in values:
                    mine[field] = nc_list
                    if binary_field is not None:
                        mine[binary_field] = binary_nc

    # 7.6.3: the surveys, in plan order; the location plans share location.json, each with its own scheme. A
    # respondent's answers and their labels (shared objects) repeat on all of their messages, and the outcome
    # depends on nothing else, so each distinct combination is imported once, on its first record's values.
    survey_ids = list(dict.fromkeys(plan.id_field for plan in config.survey_plans))
    survey_fields = list(dict.fromkeys(plan.coded_field for plan in config.survey_plans))
    distinct: dict[tuple[Any, ...], int] = {}
    firsts: list[dict[str, Any]] = []
    survey_of: list[int] = []
    for values in contents:
        signature = tuple(map(values.get, survey_ids)) + tuple(map(id, map(values.get, survey_fields)))
        index = distinct.get(signature)
        if index is None:
            index = distinct[signature] = len(firsts)
            firsts.append(values)
        survey_of.append(index)
    survey_written: list[dict[str, Any]] = [{} for _ in firsts]
    for plan in config.survey_plans:
        field = plan.coded_field
        merge = SingleCodedImport(coded(plan.coda_file), coded_field=field, scheme=plan.scheme,
                                  label_time=label_time)
        for values, mine in zip(firsts, survey_written):
            mid = values.get(plan.id_field)
            if mid is not None:
                mine[field] = merge.value(mid, mine[field] if field in mine else values.get(field))

    # The changes of a survey combination are the same for every record that has it.
    survey_changes = [_changes(values, mine, survey_fields) for values, mine in zip(firsts, survey_written)]
    show_fields = _show_fields(config)
    result = []
    for record, values, mine, survey_index in zip(records, contents, written, survey_of):
        changes = {} if mine is None else _changes(values, mine, show_fields)
        changes.update(survey_changes[survey_index])
        result.append(record.updated(step, changes))
    return result


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
