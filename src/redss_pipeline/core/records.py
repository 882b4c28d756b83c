"""Audited records: the successor of the 2019 ``TracedData``.

A :class:`Record` is an immutable mapping of keys to values that remembers every write. Writing makes a new
record (``record.updated(step, {...})``); the old one is unchanged. Each write is a :class:`Layer`: the keys
it set and the :class:`Step` that set them. A step (who, which step, when) is one shared object for every
record it touches, so its metadata is stored once, not once per record; no write inspects the call stack or
hashes the record (the 2019 implementation spent most of its time doing both).

Values are shared as they are, not copied: a step that writes the same values on many records writes one layer
(a list of a show's codes, a label, a step's shared layer), and records made from one another share their older
values. So a value held by a record is read-only: a step that changes one writes a new value (a new list, a new
label), never changes it in place, which would change it in every record and layer that shares it.

Semantics kept from 2019 (spec pipeline.md section 6, README decision 7):

- writes never delete a key; a later write to a key overrides the earlier value;
- a layer may attach other records (a respondent's survey record, written as a value:
  ``record.updated(step, {"csap_demog": survey})``): reading a key looks in the newest layer's
  own values, then in the records attached in that layer, then in older layers. The effective content is
  computed once per write (the previous record's dictionary, copied, with the new values written in) and
  kept by the record as its own dictionary, so reads are plain dictionary look-ups;
- the full chain of values any key took can be listed with :meth:`Record.history`.

The 2019 JSON layout is read and written by :mod:`redss_pipeline.core.traced_data_json`; the compact audit trail
by :mod:`redss_pipeline.core.audit_trail`.
"""

from __future__ import annotations

from collections.abc import ItemsView, KeysView, Mapping, ValuesView
from itertools import repeat
from typing import TYPE_CHECKING, Any, Iterator, NamedTuple, Sequence

__all__ = ["Step", "Layer", "Record", "ValueChange"]

if TYPE_CHECKING:
    # To the type checker, Record and _LayerData are the Mappings they are registered as (see Mapping.register
    # below); at run time they derive from object only, so ``isinstance(x, Record)`` stays a plain type check.
    _RegisteredMapping = Mapping[str, Any]
else:
    _RegisteredMapping = object


class Step(NamedTuple):
    """Who wrote, where, and when: shared by every record one step of the pipeline touches.

    ``source`` names the step, rule, cleaner or input file (e.g. ``"generate/noise"``); for layers read from
    2019 files it is the 2019 ``"file:line:function"`` text. ``timestamp`` is epoch seconds as a float, or the
    ISO string some 2019 layers carry. The run's clock is read once by the entry point and passed in, so no
    step reads the clock itself (spec README decision 8).

    A named tuple: immutable, and compared and hashed in C, which matters because the audit trail looks every
    layer's step up by value.
    """

    user: str
    source: str
    timestamp: float | str


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


class Record(_RegisteredMapping):
    """An immutable, audited mapping. Build one with :meth:`create`, change it with :meth:`updated`.

    It is registered as a :class:`~collections.abc.Mapping` rather than derived from one: ``isinstance(x,
    Record)`` then stays a plain type check, which matters because every write tests its values with it.

    A record holds its layers and its effective content as a plain dictionary of its own. A write copies the
    previous record's dictionary (one copy in C, however wide the record) and writes the new values into the
    copy; nothing is shared between records but the layers and the values themselves.
    """

    __slots__ = ("_layers", "_content")

    _layers: tuple[Layer, ...]
    _content: dict[str, Any]

    def __init__(self, layers: tuple[Layer, ...], content: dict[str, Any]):
        # Private: use Record.create / Record.from_layers. ``content`` is owned by the record from now on.
        self._layers = layers
        self._content = content

    # -- construction -------------------------------------------------------------------------------------

    @classmethod
    def create(cls, step: Step, data: Mapping[str, Any]) -> "Record":
        """A new record whose first layer is ``data``, written by ``step``."""
        return cls((), {}).updated(step, data)

    @classmethod
    def from_layers(cls, layers: list[Layer] | tuple[Layer, ...]) -> "Record":
        """Rebuilds a record from its layers, oldest first (used by the file readers)."""
        record = cls((), {})
        for layer in layers:
            record = record.updated(layer.step, layer.data)
        return record

    def updated(self, step: Step, updates: Mapping[str, Any]) -> "Record":
        """A new record with ``updates`` written on top by ``step``; ``self`` is left as it was.

        An empty ``updates`` returns ``self`` (nothing was written, so there is nothing to remember).
        """
        if not updates:
            return self
        data = _LayerData.of(updates)
        if data.attaches:
            return self._attaching(step, data)
        # dict() rather than .copy(): a copy keeps all the spare room the previous dictionary grew into, dict()
        # packs a sparse one, so a chunk's records take less memory and reading them misses the cache less.
        content = dict(self._content)
        # A dict merges into a dict without building a pair per key: the common case, kept short.
        content.update(updates if type(updates) is dict else zip(data.key_tuple, data.row))
        return Record(self._layers + (_new_layer(Layer, (step, data)),), content)

    def _attaching(self, step: Step, data: "_LayerData") -> "Record":
        # The rare path (once per message): a layer that attaches records. 2019 order: the layer's own keys,
        # then its attached records (the first attached wins a shared key), then older layers.
        content = dict(self._content)
        attached = [v for v in data.row if type(v) is Record]
        for record in reversed(attached):
            content.update(record._content)
        content.update((k, v) for k, v in zip(data.key_tuple, data.row) if type(v) is not Record)
        return Record(self._layers + (Layer(step, data),), content)

    # -- reading ------------------------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        return self._content[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._content.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._content

    def __iter__(self) -> Iterator[str]:
        return iter(self._content)

    def __len__(self) -> int:
        return len(self._content)

    def keys(self) -> KeysView[str]:
        return self._content.keys()

    def values(self) -> ValuesView[Any]:
        return self._content.values()

    def items(self) -> ItemsView[str, Any]:
        return self._content.items()

    def pick(self, keys: Sequence[str], missing: Any = None) -> tuple[Any, ...]:
        """The values under ``keys``, in that order, with ``missing`` for a key the record lacks; the look-ups run
        in C, which for many keys is much cheaper than a :meth:`get` per key."""
        return tuple(map(self._content.get, keys, repeat(missing)))

    def to_dict(self) -> dict[str, Any]:
        """A plain copy of the effective content (attached records' keys included)."""
        return self._content.copy()

    @property
    def layers(self) -> tuple[Layer, ...]:
        """Every write, oldest first."""
        return self._layers

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
            return self._content == other._content and self._layers == other._layers
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Record({self._content!r}, layers={len(self._layers)})"


Mapping.register(Record)

_MISSING = object()
# Builds a Layer without the Python-level NamedTuple constructor (a third of the cost of a small write).
_new_layer = tuple.__new__


class _LayerData(_RegisteredMapping):
    """The keys one layer wrote and their values: a read-only mapping of two tuples (never assign its
    attributes). A step that writes the same updates on many records may pass the layer data of the first record
    to the others, which then share it (see :class:`~redss_pipeline.core.record_rules.LayerCache`)."""

    __slots__ = ("key_tuple", "row", "attaches")

    def __init__(self, keys: tuple[str, ...], row: tuple[Any, ...]):
        self.key_tuple = keys
        self.row = row
        # Whether it attaches records: found once here, not on every write of a layer the records share.
        self.attaches = Record in map(type, row)

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled as its keys and values only: what it derives from them is derived again when unpickled.
        return (_LayerData, (self.key_tuple, self.row))

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> "_LayerData":
        if type(data) is _LayerData:
            return data
        keys = tuple(data)
        row = tuple(data.values()) if type(data) is dict else tuple(data[k] for k in keys)
        return cls(keys, row)

    def get(self, key: str, default: Any = None) -> Any:
        for position, k in enumerate(self.key_tuple):
            if k == key:
                return self.row[position]
        return default

    def __getitem__(self, key: str) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return key in self.key_tuple

    def __iter__(self) -> Iterator[str]:
        return iter(self.key_tuple)

    def __len__(self) -> int:
        return len(self.key_tuple)

    def items(self) -> Iterator[tuple[str, Any]]:  # type: ignore[override]
        return zip(self.key_tuple, self.row)

    def keys(self) -> tuple[str, ...]:  # type: ignore[override]
        return self.key_tuple

    def values(self) -> tuple[Any, ...]:  # type: ignore[override]
        return self.row

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _LayerData) and self.key_tuple == other.key_tuple:
            return self.row == other.row
        if isinstance(other, Mapping):  # as for dicts, the order of the keys does not matter
            return dict(zip(self.key_tuple, self.row)) == dict(other.items())
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(dict(zip(self.key_tuple, self.row)))


Mapping.register(_LayerData)
