"""Reading typed values out of records, with errors that say which record and field broke the rule.

Stage-3 steps read a few values whose type the raw data only promises: times written as ISO 8601 strings,
the respondent id. A bad value must stop the run with one line naming the record and the key, not a bare
``KeyError`` or ``TypeError`` from deep inside a step.
"""

from __future__ import annotations

from datetime import datetime
from itertools import repeat
from typing import Any, Mapping, Sequence

from redss_pipeline.core.errors import RawDataError
from redss_pipeline.core.records import Record
from redss_pipeline.fetch.rapid_pro_keys import PHONE_ID_KEY, TEST_RUN_KEY

__all__ = [
    "UID_KEY", "MESSAGE_KEY", "SHOW_ID_KEY", "NOISE_KEY", "NON_LOGICAL_TIME_KEY", "CONSENT_WITHDRAWN_KEY",
    "PIPELINE_KEYS", "record_id", "record_time", "RecordColumns",
]

# The keys the pipeline writes on the records under names of its own (stage 2 the first two of PIPELINE_KEYS,
# stage 3 the others; every other key is named in the configuration). A configured field must not take one of them,
# so the configuration check refuses it.
UID_KEY = "uid"
"""The respondent id after key translation (pipeline.md 7.3.3)."""
MESSAGE_KEY = "rqa_message"
"""The show answer's text, whichever show's flow it came through."""
SHOW_ID_KEY = "show_id"
"""The show a message belongs to: 1 for the first RQA plan, 2 for the second, ..."""
NOISE_KEY = "noise"
"""True when the message is noise (an acknowledgement or too short, and not a demographic-looking answer)."""
NON_LOGICAL_TIME_KEY = "non_logical_time"
"""``"true"`` when the message was sent in none of the configured channels' windows."""
CONSENT_WITHDRAWN_KEY = "consent_withdrawn"
"""``"true"`` on a record whose respondent (or, for a show STOP, whose message) withdrew consent."""
PIPELINE_KEYS = {
    PHONE_ID_KEY: "the de-identified respondent id of the raw records",
    TEST_RUN_KEY: "the mark of a test contact's runs",
    UID_KEY: "the respondent id",
    MESSAGE_KEY: "the show answer's text",
    SHOW_ID_KEY: "the show a message belongs to",
    NOISE_KEY: "the noise mark",
    NON_LOGICAL_TIME_KEY: "the mark of a message sent in no channel's window",
    CONSENT_WITHDRAWN_KEY: "the consent column",
}
"""Each key the pipeline names itself, with what it holds (for the configuration check's messages)."""


def record_id(record: Mapping[str, object]) -> object:
    """How error messages name a record: its respondent id (``uid``, or ``avf_phone_id`` before translation)."""
    uid = record.get(UID_KEY)
    return uid if uid is not None else record.get(PHONE_ID_KEY)


def record_time(record: Mapping[str, object], key: str) -> datetime:
    """The timezone-aware time held under ``key`` (an ISO 8601 string with a UTC offset).

    Raises RawDataError naming the record and key when the key is absent, not a string, not ISO 8601, or has
    no UTC offset (a naive time cannot be compared with the configured windows).
    """
    value = record.get(key)
    if value is None:
        raise RawDataError("has no time", record=record_id(record), field=key)
    if not isinstance(value, str):
        raise RawDataError(f"expected an ISO 8601 time string, got {value!r}", record=record_id(record), field=key)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise RawDataError(f"not an ISO 8601 time: {value!r}", record=record_id(record), field=key) from None
    if parsed.tzinfo is None:
        raise RawDataError(f"time has no UTC offset: {value!r}", record=record_id(record), field=key)
    return parsed


class RecordColumns:
    """Reads the values of a fixed list of keys out of many records: ``columns(record)`` is the tuple of the
    record's values under ``keys``, with ``missing`` for a key the record lacks.

    A record's values are read with :meth:`~redss_pipeline.core.records.Record.pick`, one look-up per key done in C
    (a hundred keys cost about what one ``get`` per key costs in Python for five); any other mapping with its
    ``get``.
    """

    __slots__ = ("_keys", "_missing")

    def __init__(self, keys: Sequence[str], missing: Any = None):
        self._keys = tuple(keys)
        self._missing = missing

    def __call__(self, record: Mapping[str, Any]) -> tuple[Any, ...]:
        if type(record) is Record:
            return record.pick(self._keys, self._missing)
        return tuple(map(record.get, self._keys, repeat(self._missing)))
