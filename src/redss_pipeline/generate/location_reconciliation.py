"""One location per respondent at all five levels (spec pipeline.md 7.6.4).

Coders code a location answer at whichever level they can: a Mogadishu sub-district, a district, a region, a
state or a zone, in ``location.json``, one scheme per level. The analysis files need all five levels, and they
must agree. Per record:

1. walk the five location fields in plan order; the first code that is not NR is the location code; any later
   non-NR code with a different CodeID makes it NIC (control codes share CodeIDs across schemes, so NC at two
   levels does not conflict, but two checked levels do, even consistent ones); no non-NR code gives NR;
2. a control code is written at every level, each in that level's own scheme;
3. a Normal code's first MatchValue is a location name, and the Somalia location hierarchy derives the five
   levels from it (``hodan`` -> hodan / mogadishu / banadir / banadir / scz); a level that cannot be derived is
   NC. A zone-only name keeps its zone (2019 turned it into NC everywhere; fixed, see the README).

All five fields are rewritten in one update with unchecked pipeline labels; no import follows, so they stand.
"""

from __future__ import annotations

from typing import Any

from redss_pipeline.core.code_scheme import NC, NIC, NR, Code, CodeScheme
from redss_pipeline.core.config import PipelineConfig, SurveyPlan
from redss_pipeline.core.errors import RawDataError, SchemeError
from redss_pipeline.core.labels import lookup_by_code_id, make_label
from redss_pipeline.core.record_fields import record_id
from redss_pipeline.core.record_rules import LayerCache
from redss_pipeline.core.records import Record
from redss_pipeline.core.run_context import RunContext
from redss_pipeline.generate.locations import derive_location_levels

__all__ = ["LOCATION_RECONCILIATION_ORIGIN", "location_plans", "reconcile_locations"]

LOCATION_RECONCILIATION_ORIGIN = "redss_pipeline.location_reconciliation@1"
"""``Origin.OriginID`` of the labels this step writes (spec README decision 10)."""


def location_plans(config: PipelineConfig) -> list[SurveyPlan]:
    """The survey plans that hold a location level, in plan order (sub-district, district, ..., zone)."""
    return [plan for plan in config.survey_plans if plan.location_level is not None]


def reconcile_locations(records: list[Record], *, config: PipelineConfig, run: RunContext) -> list[Record]:
    """Rewrites the five location fields of every record from its one reconciled location (7.6.4).

    Every location field must hold a label by now (NA for a missing answer, else the imported label or NR); a
    missing field, or a CodeID its scheme does not have, is an error naming the record's uid and the field.
    """
    plans = location_plans(config)
    if not plans:
        return list(records)
    step = run.step("generate/location_reconciliation")
    labels = _Labels(run.label_time)
    codes_by_id = [{code.code_id: code for code in plan.scheme.codes} for plan in plans]

    fields = [plan.coded_field for plan in plans]
    layers = LayerCache(step)
    # The outcome depends only on the CodeIDs of the five labels: it is worked out once per combination of
    # CodeIDs (a field that holds no label has no key, and goes through the checks below).
    result = []
    for record in records:
        found = tuple(map(record.get, fields))
        key = _code_ids(found)
        layer = None if key is None else layers.get(key)
        if layer is not None:
            result.append(record.updated(step, layer))
            continue
        location: Code | str | None = None  # a code, or the synthetic NIC once levels disagree
        for plan, codes, label in zip(plans, codes_by_id, found):
            code = _code(record, label, plan, codes)
            if code.control_code == NR:
                continue
            if location is None:
                location = code
            elif isinstance(location, str) or code.code_id != location.code_id:  # NIC, or levels disagree
                location = NIC
        if location is None:
            location = NR

        if isinstance(location, str) or location.is_control:
            control = location if isinstance(location, str) else location.control_code
            assert control is not None  # a control code has its control value
            updates = {plan.coded_field: labels.control(plan.scheme, control) for plan in plans}
        else:
            updates = _derived(record, location, plans, labels)
        result.append(layers.write(record, key, updates) if key is not None else record.updated(step, updates))
    return result


def _code_ids(labels: tuple[Any, ...]) -> tuple[str, ...] | None:
    """The CodeID of each label, or None when a value is not a label with a CodeID."""
    code_ids = []
    for label in labels:
        if type(label) is not dict or type(code_id := label.get("CodeID")) is not str:
            return None
        code_ids.append(code_id)
    return tuple(code_ids)


def _derived(record: Record, location: Code, plans: list[SurveyPlan], labels: "_Labels") -> dict[str, Any]:
    if not location.match_values:
        raise SchemeError(
            f"the coded location {location.string_value!r} ({location.code_id}) has no MatchValues, so its "
            "place in the location hierarchy is unknown", record=record_id(record),
        )
    levels = derive_location_levels(location.match_values[0])
    updates = {}
    for plan in plans:
        assert plan.location_level is not None  # only location plans are reconciled
        value = levels[plan.location_level]
        updates[plan.coded_field] = (
            labels.control(plan.scheme, NC) if value == NC else labels.matching(plan.scheme, value)
        )
    return updates


def _code(record: Record, label: Any, plan: SurveyPlan, codes: dict[str, Code]) -> Code:
    """The code of ``label``, the record's value of the plan's location field."""
    if label is None:
        raise RawDataError("location field is missing; every location level must hold a label before the "
                           "levels are reconciled", record=record_id(record), field=plan.coded_field)
    return lookup_by_code_id(label, codes, plan.scheme, record=record_id(record), field=plan.coded_field)


class _Labels:
    """The labels this step writes, made once per (scheme, code) and shared: labels are never changed."""

    def __init__(self, label_time: str):
        self._label_time = label_time
        self._made: dict[tuple[str, str], dict[str, Any]] = {}

    def control(self, scheme: CodeScheme, control_code: str) -> dict[str, Any]:
        code = scheme.control(control_code)
        if code is None:
            raise SchemeError(f"scheme {scheme.name!r} ({scheme.scheme_id}) has no {control_code} code, which the "
                              "location reconciliation needs")
        return self._label(scheme, code)

    def matching(self, scheme: CodeScheme, value: str) -> dict[str, Any]:
        return self._label(scheme, scheme.code_for_match_value(value))

    def _label(self, scheme: CodeScheme, code: Code) -> dict[str, Any]:
        key = (scheme.scheme_id, code.code_id)
        label = self._made.get(key)
        if label is None:
            label = self._made[key] = make_label(scheme, code, origin_id=LOCATION_RECONCILIATION_ORIGIN,
                                                 label_time=self._label_time)
        return label
