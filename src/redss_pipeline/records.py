"""Audited records: the successor of the 2019 ``TracedData``.

A :class:`Record` is an immutable mapping of keys to values that remembers every write. Writing makes a new
record (``record.updated(step, {...})``); the old one is unchanged. Each write is a :class:`Layer`: the keys
it set and the :class:`Step` that set them. A step (who, which step, when) is one shared object for every
record it touches, so its metadata is stored once, not once per record; no write inspects the call stack or
hashes the record (the 2019 implementation spent most of its time doing both).

Semantics kept from 2019 (spec pipeline.md section 6, README decision 7):

- writes never delete a key; a later write to a key overrides the earlier value;
- a layer may attach other records (a respondent's survey record): reading a key looks in the newest layer's
  own values, then in the records attached in that layer, then in older layers. The effective content is
  computed once per write, so reads are plain dictionary look-ups;
- the full chain of values any key took can be listed with :meth:`Record.history`.

The 2019 JSON layout is read and written by :mod:`redss_pipeline.traced_data_json`; the compact audit trail
by :mod:`redss_pipeline.audit_trail`.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import ItemsView, KeysView, Mapping, ValuesView
from typing import Any, Iterator, NamedTuple

__all__ = ["Step", "Layer", "Record", "ValueChange"]


@dataclass(frozen=True, slots=True)
class Step:
    """Who wrote, where, and when: shared by every record one step of the pipeline touches.

    ``source`` names the step, rule, cleaner or input file (e.g. ``"generate/noise"``); for layers read from
    2019 files it is the 2019 ``"file:line:function"`` text. ``timestamp`` is epoch seconds as a float, or the
    ISO string some 2019 layers carry. The run's clock is read once by the entry point and passed in, so no
    step reads the clock itself (spec README decision 8).
    """

    user: str
    source: str
    timestamp: float | str

    def renamed(self, source: str) -> "Step":
        """The same run and user under another step name."""
        return Step(self.user, source, self.timestamp)


class Layer(NamedTuple):
    """One write: the keys it set (values may be attached :class:`Record` objects) and who set them."""

    step: Step
    data: Mapping[str, Any]


class ValueChange(NamedTuple):
    """One entry of a key's history: the step that wrote ``value``, and the attached record it came through
    (the attachment key) when the value was written on an attached record rather than on this one."""

    step: Step
    value: Any
    via: str | None


class Record:
    """An immutable, audited mapping. Build one with :meth:`create`, change it with :meth:`updated`.

    It is registered as a :class:`~collections.abc.Mapping` rather than derived from one: ``isinstance(x,
    Record)`` then stays a plain type check, which matters because every write tests its values with it.
    """

    __slots__ = ("_layers", "_values")

    _layers: tuple[Layer, ...]
    _values: dict[str, Any]

    def __init__(self, layers: tuple[Layer, ...], values: dict[str, Any]):
        # Private: use Record.create / Record.from_layers. ``values`` must be the effective content of ``layers``.
        self._layers = layers
        self._values = values

    # -- construction -------------------------------------------------------------------------------------

    @classmethod
    def create(cls, step: Step, data: Mapping[str, Any]) -> "Record":
        """A new record whose first layer is ``data``, written by ``step``."""
        return cls((), {}).updated(step, data)

    @classmethod
    def from_layers(cls, layers: list[Layer] | tuple[Layer, ...]) -> "Record":
        """Rebuilds a record from its layers, oldest first (used by the file readers)."""
        values: dict[str, Any] = {}
        for layer in layers:
            _apply_layer(values, layer.data)
        return cls(tuple(layers), values)

    def updated(self, step: Step, updates: Mapping[str, Any]) -> "Record":
        """A new record with ``updates`` written on top by ``step``; ``self`` is left as it was.

        An empty ``updates`` returns ``self`` (nothing was written, so there is nothing to remember).
        """
        if not updates:
            return self
        data = dict(updates)
        values = self._values.copy()
        _apply_layer(values, data)
        return Record(self._layers + (Layer(step, data),), values)

    def attached(self, step: Step, key: str, other: "Record") -> "Record":
        """A new record with ``other`` attached under ``key``: every key of ``other`` becomes readable here."""
        return self.updated(step, {key: other})

    # -- reading ------------------------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._values.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def keys(self) -> KeysView[str]:
        return self._values.keys()

    def values(self) -> ValuesView[Any]:
        return self._values.values()

    def items(self) -> ItemsView[str, Any]:
        return self._values.items()

    def to_dict(self) -> dict[str, Any]:
        """A plain copy of the effective content (attached records' keys included)."""
        return self._values.copy()

    @property
    def layers(self) -> tuple[Layer, ...]:
        """Every write, oldest first."""
        return self._layers

    def attached_records(self) -> list[tuple[str, "Record"]]:
        """The records attached to this one, with their attachment keys, oldest first."""
        return [(k, v) for layer in self._layers for k, v in layer.data.items() if isinstance(v, Record)]

    def history(self, key: str) -> list[ValueChange]:
        """Every value ``key`` took, oldest first, as seen through this record.

        Values written on an attached record are listed at the point the record was attached, in their own
        order, marked with the attachment key.
        """
        changes: list[ValueChange] = []
        for layer in self._layers:
            own = layer.data.get(key, _MISSING)
            for attach_key, value in layer.data.items():
                if isinstance(value, Record) and key in value:
                    changes.extend(
                        ValueChange(c.step, c.value, attach_key if c.via is None else f"{attach_key}/{c.via}")
                        for c in value.history(key)
                    )
            if own is not _MISSING and not isinstance(own, Record):
                changes.append(ValueChange(layer.step, own, None))
        return changes

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Record):
            return self._values == other._values and self._layers == other._layers
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Record({self._values!r}, layers={len(self._layers)})"


Mapping.register(Record)

_MISSING = object()


def _apply_layer(values: dict[str, Any], data: Mapping[str, Any]) -> None:
    """Folds one layer into an effective-content dict: attached records first, then the layer's own keys
    (2019 look-up order: own values, then attached records, then older layers)."""
    plain = data
    attached = [v for v in data.values() if isinstance(v, Record)]
    if attached:
        # Of several records attached in one layer, the first one attached wins a shared key (2019 order).
        for record in reversed(attached):
            values.update(record._values)
        plain = {k: v for k, v in data.items() if not isinstance(v, Record)}
    values.update(plain)
