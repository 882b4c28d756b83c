"""Auto-coding the survey answers: NA labels, cleaner suggestions, operator, survey Coda files
(spec pipeline.md 7.5; cleaners.md section 11 for the labels).

:func:`auto_code_surveys` applies these rules to each record, in this order, and writes what they set as one
audit layer; :class:`SurveyCodaExport` gathers the Coda files:

| step  | rule                          | does                                                               |
| ----- | ----------------------------- | ------------------------------------------------------------------ |
| 7.5.1 | :func:`_missing_answer_rule`  | NA in each plan's coded field when the answer is absent or ""      |
| 7.5.2 | :func:`_cleaner_rule`         | the plan's cleaner's suggestion, unchecked (NC writes nothing)     |
| 7.5.3 | :func:`_one_location_rule`    | a sub-district suggestion silences the district suggestion         |
| 7.5.4 | :func:`_operator_rule`        | the operator from the phone number behind the uid                  |
| 7.5.5 | :func:`_message_id_rule`      | ``<raw>_id`` on every record holding the answer                    |
| 7.5.5 | :class:`SurveyCodaExport`     | the survey Coda files' messages, then ``location.json``            |

Survey answers are repeated on every message of their respondent, so each distinct answer is cleaned once
(the cleaners are memoised) and each distinct label is built once and shared by every record carrying it.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from redss_pipeline.core.code_scheme import NA, NC, NS, CodeScheme
from redss_pipeline.core.config import LOCATION_LEVELS, PipelineConfig, SurveyPlan
from redss_pipeline.core.errors import RawDataError, SchemeError, UuidTableError
from redss_pipeline.core.labels import control_label, make_label
from redss_pipeline.core.record_fields import UID_KEY, record_id
from redss_pipeline.core.record_rules import LayerCache, Rule
from redss_pipeline.core.records import Record
from redss_pipeline.core.run_context import RunContext
from redss_pipeline.core.scratch_database import ScratchDatabase
from redss_pipeline.export import coda
from redss_pipeline.generate.cleaners import cleaner_named

__all__ = [
    "MISSING_ANSWER_ORIGIN_ID",
    "ONE_LOCATION_ORIGIN_ID",
    "SurveyCodaExport",
    "auto_code_surveys",
]

MISSING_ANSWER_ORIGIN_ID = "redss_pipeline.survey_autocode.missing_answer@1"
"""Origin id of the NA labels of absent or empty survey answers (README decision 10)."""
ONE_LOCATION_ORIGIN_ID = "redss_pipeline.survey_autocode.one_location_suggestion@1"
"""Origin id of the NC label that hides the district suggestion behind a sub-district one."""


def auto_code_surveys(
    records: Sequence[Record],
    *,
    config: PipelineConfig,
    run: RunContext,
    phone_keys: Mapping[str, str],
) -> list[Record]:
    """Steps 7.5.1 to 7.5.5 in order (the Coda files of 7.5.5 are gathered by :class:`SurveyCodaExport`).
    ``phone_keys`` maps each uid to its UUID-table key (see :func:`_operator_rule`). The record writes are one pass and one audit layer per record, under the step
    ``generate/auto_code_surveys``.

    A respondent's answers repeat on every one of their messages, and what 7.5.1-7.5.3 and 7.5.5 write
    depends on nothing but the answers (and any labels already in the coded fields). So the rules run once per
    distinct combination of those values, on the first record that has it - the record an error would have
    named anyway - and the operator (7.5.4), which depends on the uid, is looked up per record. The keys are
    written in the order the rules write them.
    """
    answer_rules = [_missing_answer_rule(config, run), _cleaner_rule(config, run), _one_location_rule(config, run)]
    operator_rule = _operator_rule(config, run, phone_keys)
    id_rule = _message_id_rule(config)
    raw_fields = list(dict.fromkeys(plan.raw_field for plan in config.survey_plans))
    coded_fields = list(dict.fromkeys(plan.coded_field for plan in config.survey_plans))
    coded_set = frozenset(coded_fields)
    layers = LayerCache(run.step("generate/auto_code_surveys"))
    # answers signature -> (its number, what the answer rules write, the message ids)
    by_answers: dict[tuple[Any, ...], tuple[int, dict[str, Any], dict[str, Any]]] = {}

    result = []
    for record in records:
        signature = tuple([record.get(field, _ABSENT) for field in raw_fields])
        if record.keys() & coded_set:  # labels already there (not the case in a normal run) take part too
            # by value: the labels are dicts, so their repr stands for them (equal labels written in another
            # key order only miss the memo, never share a wrong entry)
            signature += tuple([repr(record[field]) if field in record else None for field in coded_fields])
        try:
            known = by_answers.get(signature)
        except TypeError:  # an unhashable answer: not a text, so the rules below report it
            known = None
        if known is None:
            values = record.to_dict()
            answers: dict[str, Any] = {}
            for rule in answer_rules:
                written = rule(values)
                if written:
                    values.update(written)
                    answers.update(written)
            operator = operator_rule(values)
            values.update(operator)
            ids = id_rule(values)
            known = by_answers[signature] = (len(by_answers), answers, ids)
        else:
            operator = operator_rule(record)
        number, answers, ids = known
        (label,) = operator.values()
        key = (number, label["CodeID"])  # every operator label is of one scheme, made at one label time
        layer = layers.get(key)
        if layer is None:
            updates = dict(answers)
            updates.update(operator)
            updates.update(ids)
            record = layers.write(record, key, updates)
        else:
            record = record.updated(layers.step, layer)
        result.append(record)
    return result


_ABSENT: Any = object()


# -- 7.5.1 ---------------------------------------------------------------------------------------------------------


def _missing_answer_rule(config: PipelineConfig, run: RunContext) -> Rule:
    """For every survey plan: coded field = an NA label of the plan's scheme when the answer is absent or empty."""
    na_by_answer: dict[str, dict[str, Any]] = {}  # raw field -> the NA labels of every plan reading it
    for plan in config.survey_plans:
        na_by_answer.setdefault(plan.raw_field, {})[plan.coded_field] = control_label(
            plan.scheme, NA, origin_id=MISSING_ANSWER_ORIGIN_ID, label_time=run.label_time
        )
    answers = list(na_by_answer.items())

    def missing_answers(values: Mapping[str, Any]) -> dict[str, Any]:
        updates: dict[str, Any] = {}
        for raw_field, labels in answers:
            if values.get(raw_field, "") == "":
                updates.update(labels)
        return updates

    return missing_answers


# -- 7.5.2 ---------------------------------------------------------------------------------------------------------


class _Suggester:
    """One plan's cleaner and the labels it suggests, each built once."""

    def __init__(self, plan: SurveyPlan, run: RunContext) -> None:
        cleaner = plan.cleaner or ""  # only plans with a cleaner get a suggester
        self.plan = plan
        rule = cleaner_named(cleaner)
        self.clean: Callable[[str], str] = rule.clean
        self._origin_id = rule.origin_id
        self._label_time = run.label_time
        self._labels: dict[str, dict[str, Any]] = {}
        self.skip = _control_ids(plan.scheme, NA, NS)

    def label(self, result: str, values: Mapping[str, Any]) -> dict[str, Any]:
        label = self._labels.get(result)
        if label is None:
            scheme = self.plan.scheme
            try:
                code = scheme.code_for_match_value(result)
            except SchemeError:
                raise SchemeError(
                    f"the {self.plan.cleaner} cleaner gave {result!r}, which no code of scheme {scheme.name!r} "
                    f"({scheme.scheme_id}) has among its MatchValues",
                    record=record_id(values), field=self.plan.raw_field,
                ) from None
            label = self._labels[result] = make_label(
                scheme, code, origin_id=self._origin_id, label_time=self._label_time, checked=False
            )
        return label


def _cleaner_rule(config: PipelineConfig, run: RunContext) -> Rule:
    """Each cleaner's suggestion, plan by plan: an unchecked label of the scheme code whose MatchValues contain
    the cleaner's result.

    A record whose coded field already holds NA or NS (a missing answer) is skipped; a result of ``NC`` writes
    nothing, so the field stays absent. Plans without a cleaner are coded by hand only. A result no code of the
    scheme matches is a SchemeError naming the scheme, the record and the value.
    """
    suggesters = [_Suggester(plan, run) for plan in config.survey_plans if plan.cleaner is not None]

    def cleaners(values: Mapping[str, Any]) -> dict[str, Any]:
        updates: dict[str, Any] = {}
        for suggester in suggesters:
            plan = suggester.plan
            if plan.raw_field not in values or _code_id(values, plan.coded_field) in suggester.skip:
                continue
            cleaned = suggester.clean(_text(values, plan.raw_field))
            if cleaned != NC:
                updates[plan.coded_field] = suggester.label(cleaned, values)
        return updates

    return cleaners


# -- 7.5.3 ---------------------------------------------------------------------------------------------------------


def _one_location_rule(config: PipelineConfig, run: RunContext) -> Rule:
    """Where the sub-district cleaner found a sub-district, the district field becomes NC, so coders see a
    single location suggestion in ``location.json`` (NC labels are never exported).

    As in 2019 the NC label carries the **sub-district** scheme's SchemeID; control codes share their CodeIDs
    across schemes, so only the CodeID, NC, matters downstream.
    """
    levels = {plan.location_level: plan for plan in config.survey_plans if plan.location_level is not None}
    finest, next_level = LOCATION_LEVELS[0], LOCATION_LEVELS[1]
    if finest not in levels or next_level not in levels:
        return lambda values: None
    source, target = levels[finest], levels[next_level]
    normal_ids = {code.code_id for code in source.scheme.normal_codes}
    nc = {target.coded_field: control_label(source.scheme, NC, origin_id=ONE_LOCATION_ORIGIN_ID,
                                            label_time=run.label_time)}

    def one_location(values: Mapping[str, Any]) -> dict[str, Any] | None:
        code_id = _code_id(values, source.coded_field)
        if code_id is None:
            return None
        if code_id in normal_ids:
            return nc
        if not source.scheme.has_code_id(code_id):
            raise SchemeError(
                f"CodeID {code_id!r} is not a code of scheme {source.scheme.name!r} ({source.scheme.scheme_id})",
                record=record_id(values), field=source.coded_field,
            )
        return None

    return one_location


# -- 7.5.4 ---------------------------------------------------------------------------------------------------------


def _operator_rule(
    config: PipelineConfig, run: RunContext, phone_keys: Mapping[str, str]
) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """The operator coded field from the phone number behind the record's uid (cleaners.md section 10).

    ``phone_keys`` maps a uid to its UUID-table key: a normalised phone number, or a whole non-phone URN
    (``telegram:...``), which the operator cleaner codes NC. A result of NC gives the Operator scheme's NC
    label, any other result the label of the code whose MatchValues contain it. A uid missing from the map is
    an error (the UUID table does not match the raw data). Error messages never show a phone number.
    """
    plan = config.operator
    cleaner = cleaner_named(plan.cleaner)
    clean, origin_id = cleaner.clean, cleaner.origin_id
    labels: dict[str, dict[str, Any]] = {}

    def label_of(operator: str, uid: str) -> dict[str, Any]:
        if operator == NC:
            return control_label(plan.scheme, NC, origin_id=origin_id, label_time=run.label_time)
        try:
            code = plan.scheme.code_for_match_value(operator)
        except SchemeError:
            raise SchemeError(
                f"the {plan.cleaner} cleaner gave {operator!r}, which no code of scheme {plan.scheme.name!r} "
                f"({plan.scheme.scheme_id}) has among its MatchValues",
                record=uid, field=plan.coded_field,
            ) from None
        return make_label(plan.scheme, code, origin_id=origin_id, label_time=run.label_time)

    def operator_code(values: Mapping[str, Any]) -> dict[str, Any]:
        uid = values.get(UID_KEY)
        key = phone_keys.get(uid) if isinstance(uid, str) else None
        if key is None:
            raise UuidTableError(
                "the respondent id is not in the phone number <-> UUID table", record=uid, field=UID_KEY
            )
        operator = clean(key)
        label = labels.get(operator)
        if label is None:
            label = labels[operator] = label_of(operator, str(uid))  # a key was found, so uid is a str
        return {plan.coded_field: label}

    return operator_code


# -- 7.5.5 ---------------------------------------------------------------------------------------------------------


def _message_id_rule(config: PipelineConfig) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """``<raw key>_id`` = SHA-256 of the answer on every record holding a survey answer (noise messages
    included; the location plans share one answer and one id)."""
    fields = list(dict.fromkeys((plan.raw_field, plan.id_field) for plan in config.survey_plans))
    ids: dict[str, str] = {}  # text -> message id: answers repeat on every message of a respondent

    def message_ids(values: Mapping[str, Any]) -> dict[str, Any]:
        updates: dict[str, str] = {}
        for raw_field, id_field in fields:
            if raw_field in values:
                text = _text(values, raw_field)
                mid = ids.get(text)
                if mid is None:
                    mid = ids[text] = coda.message_id(text)
                updates[id_field] = mid
        return updates

    return message_ids


class SurveyCodaExport:
    """The survey Coda files, gathered chunk by chunk: each non-location plan's file in plan order, with the
    plan's one scheme, then the location file with the five location schemes in level order.

    Built from all records (noise messages included); de-duplication by text leaves one Coda message per
    distinct answer, missing answers (NA everywhere) are left out and NC labels are not exported (coda.md 4).
    The creation time is the answer's ``<x>_time``. ``positions`` are the messages' places in the message order.
    The messages wait in the run's scratch database (see :class:`~redss_pipeline.export.coda.CodaExport`).
    """

    def __init__(self, config: PipelineConfig, scratch: ScratchDatabase):
        exports: list[tuple[str, SurveyPlan, list[tuple[str, CodeScheme]]]] = [
            (plan.coda_file, plan, [(plan.coded_field, plan.scheme)])
            for plan in config.survey_plans
            if plan.location_level is None
        ]
        by_level = {plan.location_level: plan for plan in config.survey_plans if plan.location_level is not None}
        location_plans = [by_level[level] for level in LOCATION_LEVELS if level in by_level]
        if location_plans:
            first = location_plans[0]
            exports.append((first.coda_file, first, [(p.coded_field, p.scheme) for p in location_plans]))
        self._files = coda.CodaFileExports(scratch, [
            (file_name, coda.CodaExport(scratch, raw_field=plan.raw_field, time_field=plan.time_field,
                                        id_field=plan.id_field, coded_fields=coded_fields))
            for file_name, plan, coded_fields in exports
        ])

    def entries(self, positions: Sequence[int], records: Sequence[Mapping[str, Any]]) -> list[list[tuple[Any, ...]]]:
        """A chunk's records, found at ``positions``, reduced to each file's entries, for :meth:`store`."""
        return self._files.entries(positions, records)

    def store(self, entries: list[list[tuple[Any, ...]]]) -> None:
        """Writes a chunk's :meth:`entries` to the scratch database."""
        self._files.store(entries)

    def files(self) -> dict[str, coda.ExportedMessages]:
        """Each file's Coda messages, by file name, read from the scratch database as used."""
        return self._files.files()


# -- helpers -------------------------------------------------------------------------------------------------------


def _control_ids(scheme: CodeScheme, *control_codes: str) -> frozenset[str]:
    codes = (scheme.control(c) for c in control_codes)
    return frozenset(code.code_id for code in codes if code is not None)


def _code_id(record: Mapping[str, Any], field: str) -> str | None:
    """The CodeID of the single label in ``field``, or None when the field is absent."""
    value = record.get(field)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise RawDataError(f"a survey coded field must hold one label, found {value!r}", record=record_id(record),
                           field=field)
    return value.get("CodeID")


def _text(record: Mapping[str, Any], field: str) -> str:
    value = record[field]
    if not isinstance(value, str):
        raise RawDataError(f"expected the answer's text, found {value!r}", record=record_id(record), field=field)
    return value
