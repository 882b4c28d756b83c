"""Which record keys an output column is derived from, back to the raw Rapid Pro answer.

The audit trail keeps the history of every key of every message record; this module adds the map between keys,
read from the configuration, so ``generate_outputs.py explain`` can walk from an output column to the raw key it
came from (e.g. ``gender`` <- ``gender_coded`` <- ``gender_raw`` <- ``Gender (Value) - csap_demog``) and print
the history of each. A show's matrix column is no record key: it is rendered from the show's codes
(:mod:`redss_pipeline.generate.analysis_columns`), and :func:`matrix_column` says from which list and code.
"""

from __future__ import annotations

from typing import Any, Sequence

from redss_pipeline.core.code_scheme import STOP
from redss_pipeline.core.config import PipelineConfig
from redss_pipeline.core.errors import listed_with_and
from redss_pipeline.core.record_fields import (
    CONSENT_WITHDRAWN_KEY,
    MESSAGE_KEY,
    NON_LOGICAL_TIME_KEY,
    SHOW_ID_KEY,
    UID_KEY,
)
from redss_pipeline.core.records import Record
from redss_pipeline.fetch.rapid_pro_keys import PHONE_ID_KEY, raw_key
from redss_pipeline.generate.analysis_columns import CONSENT_STEP, ConsentRule, ShowCodes
from redss_pipeline.generate.manual_codes import MANUAL_CODES_STEP

__all__ = ["source_keys", "set_from_any", "matrix_column", "coded_file", "withdrawals"]


def matrix_column(config: PipelineConfig, column: str) -> tuple[str, str] | None:
    """For a show's matrix column, the key of the show's codes it is rendered from and its code's StringValue
    (``rqa_s01e01_land`` -> ``("rqa_s01e01_codes", "land")``); None for any other column."""
    for plan in config.rqa_plans:
        show = ShowCodes(plan)
        if column in show.columns:
            return show.key, show.columns[column]
    return None


def source_keys(config: PipelineConfig, column: str) -> list[str]:
    """``column`` followed by the keys it was derived from, nearest first (just ``[column]`` when the column
    is not derived from another key)."""
    chain = [column]
    location_fields = [p.coded_field for p in config.survey_plans if p.location_level]
    for survey in config.survey_plans:
        value_key = raw_key(survey.result_key, "Value", survey.flow)
        # A location level is reconciled from the codes of all five levels (spec pipeline.md 7.6.4).
        coded = [survey.coded_field] + (location_fields if survey.location_level else [])
        if column == survey.analysis_key:
            return _unique([column, *coded, survey.raw_field, value_key])
        if column == survey.coded_field:
            return _unique([*coded, survey.raw_field, value_key])
        if column == survey.raw_field:
            return [column, value_key]
    show_keys = [MESSAGE_KEY, SHOW_ID_KEY] + [raw_key(p.result_key, "Value", p.flow) for p in config.rqa_plans]
    # A show's own fields first: its yes/no question's column (rqa_s01e02_integrate_return) starts with the show's
    # prefix too, but comes from the question's coded field, not from the show's reasons.
    for plan in config.rqa_plans:
        if plan.binary is not None and column in (plan.binary.analysis_key, plan.binary.coded_field):
            return _unique(chain + [plan.binary.coded_field, plan.raw_field] + show_keys)
        if column in (plan.raw_field, plan.coded_field, plan.id_field):  # the message id is made from the text
            return _unique(chain + [plan.raw_field] + show_keys)
        if column == plan.run_id_field:
            return _unique(chain + [raw_key(plan.result_key, "Run ID", plan.flow)])
    matrix = matrix_column(config, column)
    if matrix is not None:
        chain.append(matrix[0])
    for plan in config.rqa_plans:
        if column.startswith(plan.analysis_prefix):
            return _unique(chain + [plan.coded_field, plan.raw_field] + show_keys)
    if column == config.operator.analysis_key:
        return [column, config.operator.coded_field, UID_KEY, PHONE_ID_KEY]
    if column == UID_KEY:
        return [column, PHONE_ID_KEY]
    if column in config.channels or column in config.weeks or column == NON_LOGICAL_TIME_KEY:
        time_keys = [raw_key(p.result_key, "Time", p.flow) for p in config.rqa_plans]
        return _unique([column, config.message_time_field, SHOW_ID_KEY] + time_keys)
    return chain


def set_from_any(config: PipelineConfig, column: str) -> list[str]:
    """The keys any one of which can set ``column`` on its own (not a chain): ``consent_withdrawn`` is ``"true"``
    when a survey's coded field, a show's codes or a show's yes/no question holds STOP (pipeline.md 7.7.5); empty
    for any other column."""
    return ConsentRule(config).keys if column == CONSENT_WITHDRAWN_KEY else []


def coded_file(config: PipelineConfig, key: str) -> str | None:
    """The coded Coda file whose labels a coded key holds (a survey's coded field, a show's coded field or codes,
    a show's yes/no question), by its name in ``Coded Coda Files/``; None for any other key."""
    for survey in config.survey_plans:
        if key == survey.coded_field:
            return survey.coda_file
    for plan in config.rqa_plans:
        if key in (plan.coded_field, plan.codes_key) or (plan.binary is not None and key == plan.binary.coded_field):
            return plan.coda_file
    return None


def _unique(keys: list[str]) -> list[str]:
    return list(dict.fromkeys(keys))


def withdrawals(config: PipelineConfig, records: Sequence[Record]) -> tuple[list[str], list[str]]:
    """Why a person's ``consent_withdrawn`` reads as it does: the keys that set it in any of their message records
    (records read back from the audit trail, oldest first; a show's codes are followed by the show's coded labels
    they were made from), and one line per record saying which of its keys held STOP as the consent step read them
    (:class:`~redss_pipeline.generate.analysis_columns.ConsentRule`), whose label it was and which coded file it
    came from."""
    rule = ConsentRule(config)
    found: set[str] = set()
    lines = []
    without = 0  # records none of whose keys held STOP: counted, not listed (a person may have a hundred)
    for position, record in enumerate(records, start=1):
        as_read = _before_step(record, CONSENT_STEP)
        keys = rule.withdrawing_keys(as_read)
        found.update(keys)
        # Keys that hold STOP for one reason are named together (the location levels the reconciliation wrote).
        alike: dict[tuple[str, str], list[str]] = {}
        for key in keys:
            alike.setdefault(_stop_reason(config, as_read, key), []).append(key)
        reasons = "; ".join(f"{listed_with_and(named)} {verb}{'' if len(named) > 1 else 's'} STOP{how}"
                            for (verb, how), named in alike.items())
        if reasons:
            lines.append(f"record {position} of {len(records)}: {reasons}")
        else:
            without += 1
    if not found:
        lines.append(f"no record of the {len(records)} holds STOP in them, so this person did not withdraw consent")
    elif without:
        lines.append(f"the other {without} record{'s hold' if without > 1 else ' holds'} no STOP in them")
    labels_of = {plan.codes_key: plan.coded_field for plan in config.rqa_plans}
    setting = [held for key in rule.keys if key in found for held in (key, labels_of.get(key)) if held is not None]
    return setting, lines


def _before_step(record: Record, source: str) -> Record:
    """The record as it was before the first layer the step ``source`` wrote (the record itself if none did)."""
    for position, layer in enumerate(record.layers):
        if layer.step.source == source:
            return Record.from_layers(record.layers[:position])
    return record


def _stop_reason(config: PipelineConfig, record: Record, key: str) -> tuple[str, str]:
    """Why ``key`` holds STOP, as the verb (``hold``, or ``list`` for a show's codes) and what follows "STOP":
    through which label (who, when, checked or not) and where it came from. A coder's label is found in the key's
    history where the manual-codes step wrote it, even when a later step rewrote the key (the location
    reconciliation writes the STOP of one level on every level): that names the coder and the coded file; a STOP no
    coder's label gave names the step that wrote it."""
    verb, shown, label_key = "hold", "", key
    for plan in config.rqa_plans:  # a show's codes list STOP: the label is among the show's coded labels
        if key == plan.codes_key:
            verb, shown, label_key = "list", f", made from {plan.coded_field}", plan.coded_field
    history = record.history(label_key)
    stops = _stop_code_ids(config, label_key)
    coded = next((change for change in reversed(history) if change.step.source == MANUAL_CODES_STEP), None)
    coder_label = None if coded is None else _stop_label(coded.value, stops)
    source = coded_file(config, label_key)
    if coder_label is not None and source is not None:
        return verb, f"{shown} ({_who(coder_label)}), read from Coded Coda Files/{source}"
    label = _stop_label(record.get(label_key), stops)
    if label is not None:
        shown += f" ({_who(label)})"
    return verb, f"{shown}, written by step {history[-1].step.source}" if history else shown


def _stop_code_ids(config: PipelineConfig, coded_field: str) -> frozenset[str]:
    """The CodeIDs of the STOP codes of the scheme whose labels a coded field holds."""
    schemes = [plan.scheme for plan in config.survey_plans if plan.coded_field == coded_field]
    schemes += [plan.scheme for plan in config.rqa_plans if plan.coded_field == coded_field]
    schemes += [plan.binary.scheme for plan in config.rqa_plans
                if plan.binary is not None and plan.binary.coded_field == coded_field]
    return frozenset(code.code_id for scheme in schemes for code in scheme.control_codes if code.control_code == STOP)


def _stop_label(value: Any, stops: frozenset[str]) -> dict[str, Any] | None:
    """The STOP label of a coded field's value (a label, or a show's list of labels), if it holds one."""
    labels = value if isinstance(value, list) else [value]
    return next((label for label in labels if isinstance(label, dict) and label.get("CodeID") in stops), None)


def _who(label: dict[str, Any]) -> str:
    held = label.get("Origin")
    origin: dict[str, Any] = held if isinstance(held, dict) else {}
    name, origin_id = origin.get("Name"), origin.get("OriginID")
    who = f"{name} <{origin_id}>" if name and origin_id and name != origin_id else (name or origin_id or "unknown")
    checked = "checked" if label.get("Checked") is True else "not checked"
    return f"a label by {who} of {label.get('DateTimeUTC')}, {checked}"
