"""Analysis columns and consent on the message records (spec pipeline.md 7.7.1-7.7.5, and 7.7.8 for messages).

After the manual codes are in, every message record holds a label (or, for the shows, a list of labels) in every
coded field. The analysis files do not show labels: they show the code's ``StringValue``. This module writes the
values the columns of ``csap_mes.csv`` are rendered from:

| key                                | value                                                                       |
| ---------------------------------- | --------------------------------------------------------------------------- |
| survey analysis keys, ``operator`` | StringValue of the code in the plan's coded field (``male``, ``NR``, ...)   |
| binary analysis keys               | StringValue of the code in the binary coded field                           |
| a show's codes (``codes_key``)     | the StringValues of the codes of the show's labels, in scheme order         |
| ``consent_withdrawn``              | ``"true"`` when a survey field holds STOP (every message of the respondent), |
|                                    | or this message's show coded STOP (this message only); else ``"false"``     |

A show's *matrix columns* (``rqa_s01e01_land``, one per code of its reasons scheme: 90 for REDSS/CSAP) are not
record keys: the record holds the show's codes once, as a list (``rqa_s01e01_codes = ["shelter", "land"]``), the
fold (:mod:`~redss_pipeline.generate.individuals`) combines these lists, and the CSV writer renders each column
(:class:`~redss_pipeline.export.analysis_files.RecordLines`): ``"1"`` when the list holds the column's code,
``"0"`` when it does not, and any other value (``STOP`` after a withdrawal, empty when absent) in every column
of the show. The cells are those 2019 wrote; ``explain`` says which list a column is rendered from.

A respondent who withdrew consent keeps nothing readable: :func:`withdraw_consent` turns every key such a record
has into ``"STOP"`` (``uid``, the raw texts and the shows' codes included), as 2019 did, while keys the record
never had stay absent and their cells empty.
"""

from __future__ import annotations

from functools import partial
from operator import itemgetter
from typing import Any, Iterable

from redss_pipeline.core.code_scheme import NC, STOP, CodeScheme
from redss_pipeline.core.config import PipelineConfig, RqaPlan
from redss_pipeline.core.errors import RawDataError
from redss_pipeline.core.labels import lookup_by_code_id
from redss_pipeline.core.record_fields import CONSENT_WITHDRAWN_KEY, record_id
from redss_pipeline.core.record_rules import LayerCache
from redss_pipeline.core.records import Record
from redss_pipeline.core.run_context import RunContext

__all__ = [
    "TRUE",
    "FALSE",
    "matrix_keys",
    "ShowCodes",
    "add_analysis_columns",
    "CONSENT_STEP",
    "ConsentRule",
    "determine_consent",
    "withdraw_consent",
]

TRUE = "true"
FALSE = "false"


def matrix_keys(plan: RqaPlan) -> list[str]:
    """The plan's matrix columns, one per code of its reasons scheme, in scheme order (``rqa_s01e01_NA`` ...)."""
    return [plan.analysis_prefix + code.string_value for code in plan.scheme.codes]


class ShowCodes:
    """The codes of one show as its matrix columns see them: each code's StringValue in scheme order, the
    column of each (:func:`matrix_keys`), and which are the NC codes of the fold and the fix-up (7.7.6-7.7.7:
    2019 told an NC column by its name's ending, and so does this; no reasons StringValue ends in upper-case
    "NC" but NC itself)."""

    __slots__ = ("key", "string_values", "columns", "not_coded", "_rank")

    def __init__(self, plan: RqaPlan):
        # The record key of the codes (rqa_s01e01_codes). A code whose StringValue is "codes" would have a matrix
        # column of that name; it is rendered from the list like every other, so the cells are still right.
        self.key = plan.codes_key
        self.string_values: tuple[str, ...] = tuple(code.string_value for code in plan.scheme.codes)
        self.columns: dict[str, str] = dict(zip(matrix_keys(plan), self.string_values))  # column -> StringValue
        self.not_coded = frozenset(value for column, value in self.columns.items() if column.endswith(NC))
        # Each distinct StringValue's rank in scheme order (a value two codes share takes the first code's).
        self._rank = {value: place for place, value in enumerate(dict.fromkeys(self.string_values))}

    def in_scheme_order(self, string_values: Iterable[str]) -> list[str]:
        """The StringValues of ``string_values`` that are the scheme's, each once, in scheme order. Sorts the
        few values given (a message's one or two codes; a respondent's in the fold) by their rank rather than walking
        the whole scheme (18 to 26 codes in this project's)."""
        rank = self._rank
        return sorted({value for value in string_values if value in rank}, key=rank.__getitem__)


def add_analysis_columns(records: list[Record], *, config: PipelineConfig, run: RunContext) -> list[Record]:
    """Writes ``consent_withdrawn = "false"``, the survey, operator and binary columns, and each show's codes
    (7.7.1-7.7.4; the matrix columns are rendered from the codes, see the module notes).

    Every coded field must be present by now (the auto-coders and importers guarantee it); a missing field or a
    CodeID its scheme does not have is an error naming the record's uid and the field.
    """
    step = run.step("generate/analysis_columns")
    singles = [(plan.coded_field, plan.scheme, plan.analysis_key) for plan in config.survey_plans]
    singles.append((config.operator.coded_field, config.operator.scheme, config.operator.analysis_key))
    singles.extend(
        (plan.binary.coded_field, plan.binary.scheme, plan.binary.analysis_key)
        for plan in config.rqa_plans
        if plan.binary is not None
    )
    single_lookups = [(field, _StringValues(scheme, field), key) for field, scheme, key in singles]
    shows = [(plan.coded_field, _StringValues(plan.scheme, plan.coded_field), ShowCodes(plan))
             for plan in config.rqa_plans]
    fields = [field for field, _, _ in single_lookups] + [field for field, _, _ in shows]
    singles_count = len(single_lookups)
    # The values depend only on the CodeIDs of the coded fields, so the layer written for one combination of
    # codes is written again for every record with the same combination (most records share a few).
    layers = LayerCache(step)
    # One list object per distinct list of codes (["NA"] on most shows of most messages), so the fold and the audit
    # trail find equal lists by identity first.
    code_lists: dict[tuple[str, ...], list[str]] = {}

    def columns(record: Record) -> dict[str, Any]:
        # Each look-up is a plain dictionary access; one that fails is done again by lookup_by_code_id, which
        # raises the error naming the record, the field and the value.
        updates: dict[str, Any] = {CONSENT_WITHDRAWN_KEY: FALSE}
        for field, lookup, key in single_lookups:
            try:
                updates[key] = lookup.by_id[record[field]["CodeID"]]
            except (KeyError, TypeError):
                updates[key] = lookup.checked(_field(record, field), lookup.by_id, record)
        for field, lookup, show in shows:
            labels = _field(record, field)
            if type(labels) is not list:
                raise RawDataError("a show's coded field must hold a list of labels", record=_uid(record), field=field)
            present = []
            for label in labels:
                try:
                    present.append(lookup.by_id[label["CodeID"]])
                except (KeyError, TypeError):
                    present.append(lookup.checked(label, lookup.by_id, record))
            # Shared by every record given this layer or an equal list: lists in records are read-only (a step
            # writes a new list, as the fix-up does).
            codes = show.in_scheme_order(present)
            updates[show.key] = code_lists.setdefault(tuple(codes), codes)
        return updates

    result = []
    for record in records:
        values = record.pick(fields)
        try:
            # The CodeIDs of the single-coded fields, then per show the CodeIDs of its labels: all found in C,
            # raising for a value that is not a label (or a list of labels), which columns() then reports.
            codes = (*map(_CODE_ID, values[:singles_count]),
                     *map(tuple, map(_code_ids, values[singles_count:])))
            layer = layers.get(codes)
        except (KeyError, TypeError):
            codes, layer = None, None
        if layer is not None:
            result.append(record.updated(step, layer))
        elif codes is not None:
            result.append(layers.write(record, codes, columns(record)))
        else:
            result.append(record.updated(step, columns(record)))
    return result


CONSENT_STEP = "generate/consent"
"""The step that sets ``consent_withdrawn = "true"`` (:func:`determine_consent`)."""


class ConsentRule:
    """Which keys of a message record withdraw consent (7.7.5), for a configuration: a survey coded field (the
    location levels included) whose label is STOP, a show's codes that list STOP, or a show's yes/no question
    whose label is STOP. ``keys`` lists every key that can, in that order."""

    def __init__(self, config: PipelineConfig):
        self._survey = [(plan.coded_field, _stop_id(plan.scheme)) for plan in config.survey_plans]
        self._show_stops = [(plan.codes_key, code.string_value) for plan in config.rqa_plans
                            for code in plan.scheme.control_codes if code.control_code == STOP]
        self._binaries = [(plan.binary.coded_field, _stop_id(plan.binary.scheme)) for plan in config.rqa_plans
                          if plan.binary is not None]
        self.keys = list(dict.fromkeys([*(field for field, _ in self._survey), *(p.codes_key for p in config.rqa_plans),
                                        *(field for field, _ in self._binaries)]))

    def withdrawing_keys(self, record: Record) -> list[str]:
        """The keys of ``record`` that withdraw consent (none for a record that does not)."""
        keys = [field for field, stop_id in self._survey if _holds(record, field, stop_id)]
        keys += [key for key, string_value in self._show_stops if _lists(record.get(key), string_value)]
        keys += [field for field, stop_id in self._binaries if _holds(record, field, stop_id)]
        return keys


def determine_consent(records: list[Record], *, config: PipelineConfig, run: RunContext) -> list[Record]:
    """Sets ``consent_withdrawn = "true"`` where the respondent or the message withdrew consent (7.7.5, see
    :class:`ConsentRule`).

    A STOP in any survey coded field marks every message of that respondent, since they share the survey answers;
    a show coded STOP (its codes hold STOP, so its matrix ``<prefix>STOP`` column reads ``"1"``, or the binary
    field holds STOP) marks only that message. Records that did not withdraw are returned unchanged.
    """
    step = run.step(CONSENT_STEP)
    rule = ConsentRule(config)
    return [record.updated(step, {CONSENT_WITHDRAWN_KEY: TRUE}) if rule.withdrawing_keys(record) else record
            for record in records]


def withdraw_consent(records: list[Record], *, run: RunContext) -> list[Record]:
    """On every record whose ``consent_withdrawn`` is ``"true"``, every key it has except that one becomes
    ``"STOP"`` (7.7.8); other records are returned unchanged.

    "Every key" means every key readable through the record, including the attached survey answers, its uid,
    raw texts, ids, labels and ``noise``; keys it never had stay absent.
    """
    step = run.step("generate/withdrawn_consent")
    result = []
    for record in records:
        if record.get(CONSENT_WITHDRAWN_KEY) == TRUE:
            record = record.updated(step, {key: STOP for key in record if key != CONSENT_WITHDRAWN_KEY})
        result.append(record)
    return result


class _StringValues:
    """CodeID -> StringValue of one scheme, with errors that name the record and the field."""

    __slots__ = ("_scheme", "_field", "by_id")

    def __init__(self, scheme: CodeScheme, field: str):
        self._scheme = scheme
        self._field = field
        self.by_id = {code.code_id: code.string_value for code in scheme.codes}

    def checked(self, label: Any, by_code_id: dict[str, str], record: Record) -> str:
        """``by_code_id[label["CodeID"]]``, or the error naming the record and the field when ``label`` is not
        a label of a code of the scheme."""
        return lookup_by_code_id(label, by_code_id, self._scheme, record=_uid(record), field=self._field)


_CODE_ID = itemgetter("CodeID")  # a label's CodeID (KeyError or TypeError for a value that is not a label)
_code_ids = partial(map, _CODE_ID)  # the CodeIDs of a list of labels, as an iterator


def _stop_id(scheme: CodeScheme) -> str | None:
    code = scheme.control(STOP)
    return None if code is None else code.code_id


def _lists(codes: Any, string_value: str) -> bool:
    return type(codes) is list and string_value in codes


def _holds(record: Record, field: str, code_id: str | None) -> bool:
    label = record.get(field)
    return code_id is not None and isinstance(label, dict) and label.get("CodeID") == code_id


def _field(record: Record, field: str) -> Any:
    try:
        return record[field]
    except KeyError:
        raise RawDataError("coded field is missing; every coded field must be set before the analysis columns",
                           record=_uid(record), field=field) from None


def _uid(record: Record) -> Any:
    return record_id(record)
