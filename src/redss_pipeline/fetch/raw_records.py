"""Rapid Pro runs -> de-identified raw records: pure functions, no network, no files, no clock.

The rules are the 2019 fetcher's (spec rapid-pro.md section 2, steps 5 and 6):

- every result ``(result_key, value)`` of a run becomes six keys ``"<K> (<field>) - <flow>"``
  (:func:`~redss_pipeline.fetch.rapid_pro_keys.raw_key`): Category, Value, Text (= the value's ``input``), Name, Time
  (UTC ``isoformat()``, no fraction when the microseconds are 0) and Run ID: one rule per file, the integer
  ``id`` when every run of the flow has one, else the run ``uuid`` (rapid-pro.md 1.8);
- ``avf_phone_id`` is the uid of the contact's identity URN (rapid-pro.md 6.3), ``test_run: true`` marks the
  configured test contacts;
- mode ``all`` adds ``created_on``, ``modified_on``, ``exited_on`` and ``exit_type`` and gives one record per run;
- mode ``latest-only`` gives one record per respondent (uid), in order of their oldest run: the oldest run's
  record is the base and every later run's complete record is written over it as a new layer, so a key
  answered only in an older run survives and older values stay in the history.

Runs are expected oldest-modified first (ascending ``modified_on``, then run id), the order the 2019 fetcher
processed them in. This module also decides what of a run may be kept at all (:func:`deidentified_run`): the
contact is referenced by its Rapid Pro uuid only, never by name or URN, and every text of a result (its value,
input, category and name) goes through the :class:`~redss_pipeline.deidentify.phone_redaction.PhoneRedactor`,
so a phone number a listener typed into an answer is neither stored nor written to a raw file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from redss_pipeline.core.errors import FetchError
from redss_pipeline.core.records import Record, Step
from redss_pipeline.deidentify.phone_redaction import PhoneRedactor
from redss_pipeline.fetch.rapid_pro_keys import PHONE_ID_KEY, TEST_RUN_KEY, raw_key

__all__ = [
    "MODE_ALL",
    "MODE_LATEST_ONLY",
    "ContactRef",
    "SkippedRuns",
    "RawBuild",
    "parse_time",
    "utc_isoformat",
    "time_key",
    "modified_key",
    "run_identity",
    "run_id_value",
    "RUN_ID_INTEGER",
    "RUN_ID_UUID",
    "RUN_ID_EITHER",
    "deidentified_run",
    "run_record_data",
    "build_raw_records",
]

MODE_ALL = "all"
MODE_LATEST_ONLY = "latest-only"

#: Rules for the ``(Run ID)`` keys of a raw file: every run's integer id, every run's uuid, or (only when some
#: runs lack one and others the other) what each run has.
RUN_ID_INTEGER = "id"
RUN_ID_UUID = "uuid"
RUN_ID_EITHER = "either"

#: Keys of a run object that are kept (the contact is reduced to its uuid separately). ``path``, the trail of
#: flow nodes, is left out: no stage reads it and it is a quarter of a run's size.
_RUN_KEYS = (
    "id", "uuid", "flow", "start", "responded", "values", "created_on", "modified_on", "exited_on", "exit_type",
)
#: Keys of a result value that are kept.
_VALUE_KEYS = ("value", "category", "node", "time", "input", "name")
#: The texts of a result value that may hold what a person typed (or a flow copied from it): phone numbers in
#: them are redacted.
_TEXT_KEYS = ("value", "input", "category", "name")


def parse_time(text: str) -> datetime:
    """A Rapid Pro datetime (ISO 8601 with ``Z`` or an offset) as an aware UTC datetime."""
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"datetime without a UTC offset: {text!r}")
    return value.astimezone(timezone.utc)


def utc_isoformat(text: str | None) -> str | None:
    """``2018-12-10T05:31:12.000001Z`` -> ``2018-12-10T05:31:12.000001+00:00`` (2019 ``isoformat()``); None stays."""
    if text is None:
        return None
    return parse_time(text).isoformat()


def time_key(text: str) -> str:
    """A fixed-width UTC form that sorts like the time (``%Y-%m-%dT%H:%M:%S.%fZ``, also the API's filter form)."""
    return parse_time(text).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def modified_key(item: Mapping[str, Any], *, what: str) -> str:
    """The :func:`time_key` of an API object's ``modified_on``; an object without a readable one is an error
    naming it (``what`` is e.g. ``"run"`` or ``"contact"``)."""
    value = item.get("modified_on")
    try:
        return time_key(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        ident = item.get("uuid") or item.get("id")
        raise FetchError(
            f"expected an ISO 8601 datetime, got {value!r}", record=f"{what} {ident}", field="modified_on"
        ) from None


def run_id_value(run: Mapping[str, Any], rule: str = RUN_ID_EITHER) -> int | str:
    """The ``(Run ID)`` of a run under ``rule``: its integer ``id`` (``RUN_ID_INTEGER``), its ``uuid``
    (``RUN_ID_UUID``), or with ``RUN_ID_EITHER`` its id, or its uuid when the server sent no id."""
    if rule != RUN_ID_EITHER:
        value: int | str | None = run.get(rule)
        if value is None:
            raise FetchError(f"a run has no {rule!r}, which the (Run ID) rule of its file needs", record=_describe(run))
        return value
    run_id: int | None = run.get("id")
    if run_id is not None:
        return run_id
    run_uuid: str | None = run.get("uuid")
    if run_uuid is None:
        raise FetchError("a run has neither 'id' nor 'uuid'", record=_describe(run))
    return run_uuid


def run_identity(run: Mapping[str, Any]) -> tuple[int | None, str | None]:
    """(id, uuid) of a run, either possibly None but not both: runs are merged when either matches."""
    run_id, run_uuid = run.get("id"), run.get("uuid")
    if run_id is None and run_uuid is None:
        raise FetchError("a run has neither 'id' nor 'uuid'", record=_describe(run))
    return run_id, run_uuid


def _describe(run: Mapping[str, Any]) -> str:
    flow = run.get("flow") or {}
    return f"run of flow {flow.get('name', '?')} modified {run.get('modified_on', '?')}"


def deidentified_run(run: Mapping[str, Any], *, redactor: PhoneRedactor | None = None) -> dict[str, Any]:
    """What of a run JSON object may be stored: every field the raw records need, the contact as its uuid only.

    Contact names and URNs (newer servers put ``urn`` inside ``contact``) are dropped, as is anything a server
    may add later that this pipeline does not know to be harmless, and the run's ``path``. Phone numbers typed
    into the results' texts are redacted by ``redactor`` (the stage's, which counts them; Somalia's numbers
    alone when none is given).
    """
    redactor = redactor or PhoneRedactor()
    kept = {key: run.get(key) for key in _RUN_KEYS if key in run}
    contact = run.get("contact") or {}
    kept["contact"] = {"uuid": contact.get("uuid")}
    values = run.get("values") or {}
    kept["values"] = {
        key: redactor.redact_fields({k: v for k, v in (value or {}).items() if k in _VALUE_KEYS}, _TEXT_KEYS)
        for key, value in values.items()
    }
    flow = run.get("flow") or {}
    kept["flow"] = {"uuid": flow.get("uuid"), "name": flow.get("name")}
    return kept


@dataclass(frozen=True, slots=True)
class ContactRef:
    """A contact as the raw records see it: its uid (None when it has no URN) and whether it was deleted."""

    uid: str | None
    deleted: bool = False


def run_record_data(
    run: Mapping[str, Any],
    *,
    flow: str,
    uid: str,
    test: bool,
    mode: str,
    redactor: PhoneRedactor | None = None,
    run_id_rule: str = RUN_ID_EITHER,
) -> dict[str, Any]:
    """The keys of one run's raw record (spec rapid-pro.md section 2 step 5), in the 2019 order.

    The result texts are redacted again (runs stored by an older version of the pipeline were not).
    """
    redactor = redactor or PhoneRedactor()
    data: dict[str, Any] = {PHONE_ID_KEY: uid}
    run_id = run_id_value(run, run_id_rule)
    for result_key, value in (run.get("values") or {}).items():
        value = redactor.redact_fields(value or {}, _TEXT_KEYS)
        data[raw_key(result_key, "Category", flow)] = value.get("category")
        data[raw_key(result_key, "Value", flow)] = value.get("value")
        data[raw_key(result_key, "Text", flow)] = value.get("input")
        data[raw_key(result_key, "Name", flow)] = value.get("name")
        data[raw_key(result_key, "Time", flow)] = utc_isoformat(value.get("time"))
        data[raw_key(result_key, "Run ID", flow)] = run_id
    if test:
        data[TEST_RUN_KEY] = True
    if mode == MODE_ALL:
        data["created_on"] = utc_isoformat(run.get("created_on"))
        data["modified_on"] = utc_isoformat(run.get("modified_on"))
        data["exited_on"] = utc_isoformat(run.get("exited_on"))
        data["exit_type"] = run.get("exit_type")
    return data


@dataclass
class SkippedRuns:
    """Runs left out of a raw file, by reason, with the distinct contacts behind them.

    ``unknown``: the contact is not (yet) known, typically created moments before the contacts were read; the
    run stays in the store and is used once the contact arrives. ``no_urn``: the contact has no URN, so it
    cannot be identified (2019 skipped these too). ``deleted``: the contact was deleted in Rapid Pro.
    """

    unknown: int = 0
    no_urn: int = 0
    deleted: int = 0
    unknown_contacts: set[str] = field(default_factory=set)
    no_urn_contacts: set[str] = field(default_factory=set)
    deleted_contacts: set[str] = field(default_factory=set)


@dataclass
class RawBuild:
    """The records of one raw file and the runs that could not be turned into records."""

    records: list[Record]
    skipped: SkippedRuns


def build_raw_records(
    runs: Iterable[Mapping[str, Any]],
    contacts: Mapping[str, ContactRef],
    *,
    flow: str,
    mode: str,
    test_contact_uuids: frozenset[str] | set[str],
    step: Step,
    redactor: PhoneRedactor | None = None,
    run_id_rule: str = RUN_ID_EITHER,
) -> RawBuild:
    """The raw records of one flow from its runs (oldest-modified first) and the known contacts.

    Mode ``all``: one record per run, in run order. Mode ``latest-only``: one record per uid, in order of the
    uid's first run, with one layer per run (see the module docstring).
    """
    if mode not in (MODE_ALL, MODE_LATEST_ONLY):
        raise ValueError(f"unknown fetch mode {mode!r}")
    redactor = redactor or PhoneRedactor()
    skipped = SkippedRuns()
    records: list[Record] = []
    by_uid: dict[str, int] = {}  # uid -> index in records (latest-only)
    for run in runs:
        contact_uuid = (run.get("contact") or {}).get("uuid")
        contact = contacts.get(contact_uuid) if contact_uuid is not None else None
        if contact is None:
            skipped.unknown += 1
            skipped.unknown_contacts.add(str(contact_uuid))
            continue
        if contact.deleted:
            skipped.deleted += 1
            skipped.deleted_contacts.add(str(contact_uuid))
            continue
        if contact.uid is None:
            skipped.no_urn += 1
            skipped.no_urn_contacts.add(str(contact_uuid))
            continue
        data = run_record_data(
            run, flow=flow, uid=contact.uid, test=contact_uuid in test_contact_uuids, mode=mode, redactor=redactor,
            run_id_rule=run_id_rule,
        )
        if mode == MODE_ALL:
            records.append(Record.create(step, data))
            continue
        index = by_uid.get(contact.uid)
        if index is None:
            by_uid[contact.uid] = len(records)
            records.append(Record.create(step, data))
        else:
            records[index] = records[index].updated(step, data)
    return RawBuild(records, skipped)
