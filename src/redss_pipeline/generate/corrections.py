"""Translating Rapid Pro keys into pipeline keys, with the operational corrections (spec pipeline.md 7.3).

:func:`translate_rapid_pro_keys` applies four rules to each record, in this order, and writes what they set as
one audit layer:

1. 7.3.1 - ``rqa_message`` and ``show_id`` from whichever show's answer the record holds;
2. 7.3.2 - messages that arrived through the wrong show's flow move to the right show (and some get a faked
   ``sent_on``), by the configured corrections; the layer's step then names the correction;
3. 7.3.3 - ``uid``, run ids, ``sent_on`` and the survey raw/time keys renamed from the Rapid Pro keys;
4. 7.3.4 - ``<show raw key> = rqa_message`` for the (corrected) show.

Every correction is configuration (README contract 4): the WS redirect (coders marked a week-3 text as
belonging to week 2 in the "WS - Correct Dataset" scheme; :func:`ws_redirect_texts`) and the time-window
corrections (late flow change-over, delayed delivery bursts). For one record, the rules of its show are tried
in order, WS redirect first, and the first that matches wins, which gives 2019's precedence (C1 before C2; C3
before C4).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping, Sequence

from redss_pipeline.core.config import PipelineConfig, TimeWindowCorrection
from redss_pipeline.core.errors import RawDataError
from redss_pipeline.core.record_fields import MESSAGE_KEY, SHOW_ID_KEY, UID_KEY, record_id, record_time
from redss_pipeline.core.record_rules import Rule
from redss_pipeline.core.records import Record, Step
from redss_pipeline.core.run_context import RunContext
from redss_pipeline.export import coda
from redss_pipeline.fetch.rapid_pro_keys import PHONE_ID_KEY, raw_key

__all__ = [
    "WS_REDIRECT_RULE_ID",
    "ws_redirect_texts",
    "rename_pairs",
    "translate_rapid_pro_keys",
]

WS_REDIRECT_RULE_ID = "ws_redirect"
"""How the audit trail names the WS redirect rule (the time-window rules use their configured ids)."""

_STEP = "generate/translate_rapid_pro_keys"
_WS_CODED_KEY = "ws_redirect_coded"  # names the WS scheme's field in the import's errors


def translate_rapid_pro_keys(
    records: Sequence[Record],
    *,
    config: PipelineConfig,
    run: RunContext,
    ws_coded: coda.CodedMessages | None,
) -> list[Record]:
    """The four sub-steps of 7.3 in order, written as one layer per record.

    ``ws_coded`` is the coded Coda file of the WS redirect's show (``Coded Coda Files/s01e03.json``; an empty
    :class:`~redss_pipeline.export.coda.CodedMessages` when the file is missing); None only when the configuration
    has no WS redirect. The layer's step is ``generate/translate_rapid_pro_keys``, or
    ``generate/translate_rapid_pro_keys/<rule id>`` for a message a correction moved.
    """
    redirect_texts = ws_redirect_texts(records, ws_coded, config=config, run=run)
    show_ids = _show_id_rule(config)
    corrections = _Corrections(config, run, redirect_texts)
    rename = _rename_rule(config)
    raw_keys = _raw_key_rule(config)
    step = run.step(_STEP)
    result = []
    for record in records:
        values = record.to_dict()
        updates: dict[str, Any] = {}
        record_step = step
        written = show_ids(values)
        if written:
            values.update(written)
            updates.update(written)
        matched = corrections.match(values)
        if matched is not None:
            record_step, written = matched
            values.update(written)
            updates.update(written)
        for rule in (rename, raw_keys):
            written = rule(values)
            if written:
                values.update(written)
                updates.update(written)
        result.append(record.updated(record_step, updates))
    return result


# -- 7.3.1 --------------------------------------------------------------------------------------------------


def _show_id_rule(config: PipelineConfig) -> Rule:
    """Sets ``rqa_message`` and ``show_id`` (1-based plan position) on records holding a show answer.

    A record holding the answers of two shows is an error; records holding none are left unchanged.
    """
    value_keys = [(raw_key(p.result_key, "Value", p.flow), n) for n, p in enumerate(config.rqa_plans, start=1)]

    def show_id(values: Mapping[str, Any]) -> dict[str, Any] | None:
        found: tuple[str, int] | None = None
        for key, n in value_keys:
            if key in values:
                if found is not None:
                    raise RawDataError(
                        f"the message holds answers of two shows ({found[0]!r} and {key!r}); at most one expected",
                        record=record_id(values),
                        field=key,
                    )
                found = (key, n)
        if found is None:
            return None
        return {MESSAGE_KEY: values[found[0]], SHOW_ID_KEY: found[1]}

    return show_id


# -- 7.3.2 --------------------------------------------------------------------------------------------------


def ws_redirect_texts(
    records: Sequence[Record],
    ws_coded: coda.CodedMessages | None,
    *,
    config: PipelineConfig,
    run: RunContext,
) -> frozenset[str]:
    """The texts of the WS redirect's show that coders marked, with a checked label, as the target show's.

    Decides the single-coded Coda import (coda.md 5.2) of the redirect's scheme for each distinct text of the
    show's ``(Value)`` key, and writes nothing on the records. The import turns unchecked and absent labels into
    NR, so only a checked label with the configured code counts; an unchecked label in the WS scheme (which has no
    NS code) counts as not reviewed (2019 crashed on it). Empty when the configuration has no WS redirect.
    """
    redirect = config.ws_redirect
    if redirect is None:
        return frozenset()
    if ws_coded is None:
        raise ValueError("the configuration has a WS redirect, so its show's coded Coda messages are needed")
    plan = config.rqa_plan(redirect.show)
    value_key = raw_key(plan.result_key, "Value", plan.flow)
    merge = coda.SingleCodedImport(ws_coded, coded_field=_WS_CODED_KEY, scheme=redirect.scheme,
                                   label_time=run.label_time)
    texts = dict.fromkeys(record[value_key] for record in records if value_key in record)
    return frozenset(text for text in texts
                     if merge.value(coda.message_id(text), None)["CodeID"] == redirect.code_id)


class _Corrections:
    """The correction rules of each show, tried in order (WS redirect first); each with its audit step.

    A rule applies to records holding the ``(Time)`` key of the rule's show. The WS redirect matches when the
    record's ``rqa_message`` is in ``redirect_texts`` (see :func:`ws_redirect_texts`); a time window matches
    the record's own time of that show (bounds as configured: ``after`` strictly, ``from`` inclusive,
    ``until`` exclusive). The first matching rule of the show wins: it sets ``show_id`` to the target show and,
    when the rule has one, ``sent_on`` to its faked time, kept verbatim. Each rule writes under its own step
    name (``generate/translate_rapid_pro_keys/<rule id>``), so the audit trail says which rule moved a message.
    """

    def __init__(self, config: PipelineConfig, run: RunContext, redirect_texts: frozenset[str]):
        self._redirect_texts = redirect_texts
        show_ids = {plan.name: n for n, plan in enumerate(config.rqa_plans, start=1)}
        time_field = config.message_time_field
        # (the show's time key, [(step, time window or None for the WS redirect, updates)])
        self._by_show: list[tuple[str, list[tuple[Step, TimeWindowCorrection | None, dict[str, Any]]]]] = []
        for plan in config.rqa_plans:
            rules: list[tuple[Step, TimeWindowCorrection | None, dict[str, Any]]] = []
            redirect = config.ws_redirect
            if redirect is not None and redirect.show == plan.name:
                effect = {SHOW_ID_KEY: show_ids[redirect.to_show], time_field: redirect.sent_on}
                rules.append((run.step(f"{_STEP}/{WS_REDIRECT_RULE_ID}"), None, effect))
            for window in config.time_window_corrections:
                if window.show == plan.name:
                    effect = {SHOW_ID_KEY: show_ids[window.to_show]}
                    if window.sent_on is not None:
                        effect[time_field] = window.sent_on
                    rules.append((run.step(f"{_STEP}/{window.id}"), window, effect))
            if rules:
                self._by_show.append((raw_key(plan.result_key, "Time", plan.flow), rules))

    def match(self, values: Mapping[str, Any]) -> tuple[Step, dict[str, Any]] | None:
        """The step and updates of the rule that moves this message, or None. (A record holds one show's keys;
        were it to hold several, the last show's matching rule would win, as in 2019's sequential checks.)"""
        found = None
        for time_key, rules in self._by_show:
            if time_key not in values:
                continue
            time: datetime | None = None
            for step, window, effect in rules:
                if window is None:
                    matched = values.get(MESSAGE_KEY) in self._redirect_texts
                else:
                    if time is None:
                        time = record_time(values, time_key)
                    matched = window.matches(time)
                if matched:
                    found = (step, effect)
                    break
        return found


# -- 7.3.3 --------------------------------------------------------------------------------------------------


def rename_pairs(config: PipelineConfig) -> tuple[tuple[str, str], ...]:
    """The ``(new key, Rapid Pro key)`` pairs of the key renaming, in the order they are applied.

    ``uid``; each show's run id; ``sent_on`` from each show's time (plan order); then each survey answer's
    raw and time keys (plan order; the location plans share one answer, listed once).
    """
    pairs: list[tuple[str, str]] = [(UID_KEY, PHONE_ID_KEY)]
    pairs += [(p.run_id_field, raw_key(p.result_key, "Run ID", p.flow)) for p in config.rqa_plans]
    pairs += [(config.message_time_field, raw_key(p.result_key, "Time", p.flow)) for p in config.rqa_plans]
    for plan in config.survey_plans:
        for pair in (
            (plan.raw_field, raw_key(plan.result_key, "Value", plan.flow)),
            (plan.time_field, raw_key(plan.result_key, "Time", plan.flow)),
        ):
            if pair not in pairs:
                pairs.append(pair)
    return tuple(pairs)


def _rename_rule(config: PipelineConfig) -> Rule:
    """Copies each Rapid Pro key's value to its pipeline key when the pipeline key is not yet present.

    So a ``sent_on`` faked by a correction wins over the show's own time, and the run-id key follows the
    flow the message came through, not the corrected show (a week-3 message moved to week 2 has only
    ``rqa_s01e03_run_id``). The ``(Value)`` key is the raw text, not ``(Text)``.
    """
    pairs = rename_pairs(config)

    def rename(values: Mapping[str, Any]) -> dict[str, Any]:
        updates: dict[str, Any] = {}
        for new, old in pairs:
            if old in values and new not in updates and new not in values:
                updates[new] = values[old]
        return updates

    return rename


# -- 7.3.4 --------------------------------------------------------------------------------------------------


def _raw_key_rule(config: PipelineConfig) -> Rule:
    """Writes ``rqa_message`` under the raw key of the record's (corrected) show, e.g. ``rqa_s01e02_raw``.

    From here on this raw key, not ``show_id``, decides which show a message belongs to.
    """
    raw_fields = [plan.raw_field for plan in config.rqa_plans]

    def raw_key_of_show(values: Mapping[str, Any]) -> dict[str, Any] | None:
        if MESSAGE_KEY not in values:
            return None
        show_id = values.get(SHOW_ID_KEY)
        if not isinstance(show_id, int) or not 1 <= show_id <= len(raw_fields):
            raise RawDataError(
                f"expected a show number 1..{len(raw_fields)}, got {show_id!r}", record=record_id(values),
                field=SHOW_ID_KEY,
            )
        return {raw_fields[show_id - 1]: values[MESSAGE_KEY]}

    return raw_key_of_show
