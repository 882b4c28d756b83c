"""Reading typed values out of records, with errors that say which record and field broke the rule.

Stage-3 steps read a few values whose type the raw data only promises: times written as ISO 8601 strings,
the respondent id. A bad value must stop the run with one line naming the record and the key, not a bare
``KeyError`` or ``TypeError`` from deep inside a step.
"""

from __future__ import annotations

import operator
from datetime import datetime
from typing import Any, Callable, Mapping, Sequence

from redss_pipeline.core.errors import RawDataError
from redss_pipeline.fetch.rapid_pro_keys import PHONE_ID_KEY

__all__ = ["UID_KEY", "record_id", "record_time", "RecordColumns"]

UID_KEY = "uid"
"""The respondent id after key translation (pipeline.md 7.3.3)."""


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


_LAYOUTS = 4096
"""How many key layouts one :class:`RecordColumns` remembers."""


class RecordColumns:
    """Reads the values of a fixed list of keys out of many records: ``columns(record)`` is the tuple of the
    record's values under ``keys``, with ``missing`` for a key the record lacks.

    Looking a hundred keys up one by one in a wide record costs more than reading the record's values in order:
    records with the same keys in the same order (a key layout; most records share one with many others) hold
    their values in the same positions, so the positions of ``keys`` are worked out once per layout, remembered
    under the layout's keys, and the values are picked from the record's values with one
    ``operator.itemgetter`` call. (Iterating a Mapping gives its keys in the order of its values.) Position
    ``len(layout)`` is ``missing``, appended to the values. At most ``_LAYOUTS`` layouts are remembered, so an
    instance reading records of ever new layouts does not keep them all.
    """

    __slots__ = ("_keys", "_missing", "_getters")

    def __init__(self, keys: Sequence[str], missing: Any = None):
        self._keys = list(keys)
        self._missing = (missing,)
        self._getters: dict[tuple[str, ...], Callable[[tuple[Any, ...]], tuple[Any, ...]]] = {}

    def __call__(self, record: Mapping[str, Any]) -> tuple[Any, ...]:
        layout = tuple(record)
        getter = self._getters.get(layout)
        if getter is None:
            getter = self._getter(layout)
            if len(self._getters) >= _LAYOUTS:
                self._getters.clear()
            self._getters[layout] = getter
        return getter(tuple(record.values()) + self._missing)

    def _getter(self, layout: tuple[str, ...]) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
        position = {key: index for index, key in enumerate(layout)}
        absent = len(layout)
        positions = [position.get(key, absent) for key in self._keys]
        if len(positions) == 1:  # an itemgetter of one position returns the item itself, not a tuple
            def single(values: tuple[Any, ...], at: int = positions[0]) -> tuple[Any, ...]:
                return (values[at],)
            return single
        if not positions:
            return lambda values: ()
        return operator.itemgetter(*positions)
