"""Per-record rules composed into one audit layer.

A stage-3 step is often several small rules applied to every record in order (noise, then NA labels, then
channel keys, ...), each reading what the earlier ones wrote. Writing each rule's keys as its own layer would
multiply the audit trail and the copying by the number of rules; instead :func:`apply_rules` runs the rules of
a step on a view of the record's content and writes everything they set as **one** layer.

A rule is a function ``rule(values) -> updates``: ``values`` is the record's current content (including what
earlier rules of the same pass wrote; read it, never change it) and ``updates`` the keys to write, or None.
``values`` is a read-only Mapping (the record itself for the first rule of a pass): rules read a handful of
keys of records holding a hundred or more, so the record is never copied into a dictionary for them.

Many records get exactly the same updates (the same noise flag, the same NA labels, the same channel keys). A
rule returns those as a :class:`SharedUpdates`, which names by value what determines them (the values the rule
read); the layer written for the first record with that key is reused as it is for the next ones (see
:class:`LayerCache`, which lives for one pass).
"""

from __future__ import annotations

from typing import Any, Callable, Hashable, Iterator, KeysView, Mapping, Sequence

from redss_pipeline.core.records import Record, Step

__all__ = ["Rule", "SharedUpdates", "LayerCache", "apply_rules"]

Rule = Callable[[Mapping[str, Any]], "Mapping[str, Any] | None"]


class SharedUpdates(dict[str, Any]):
    """Updates that a rule returns for many records, with ``key``: the values the rule read that determine
    them completely (hashable). Never change one after it is returned.

    :func:`apply_rules` gives every record written with updates of the same key the same layer, which saves
    building and interning the layer again for each record.
    """

    __slots__ = ("key",)

    def __init__(self, key: Hashable, updates: Mapping[str, Any] | None = None):
        super().__init__(updates or {})
        self.key = key


class LayerCache:
    """Recurring writes of one step, by a key the step chooses: the layer written for a key is reused as it is.

    ``record.updated(step, updates)`` turns ``updates`` into a layer (a key tuple and a value tuple, interned);
    for the second and later records written with the same updates, passing the layer data written on the first
    one (``Record.layers[-1].data``, itself a read-only Mapping of exactly those keys and values) skips that
    work. The key must determine the updates completely (e.g. a tuple of the values they were derived from).
    Holding at most ``limit`` layers, so a step whose updates rarely repeat does not keep them all.
    """

    __slots__ = ("step", "_layers", "_limit")

    def __init__(self, step: Step, limit: int = 100_000):
        self.step = step
        self._layers: dict[Hashable, Mapping[str, Any]] = {}
        self._limit = limit

    def get(self, key: Hashable) -> Mapping[str, Any] | None:
        """The updates to write for ``key`` (the layer data written earlier), or None if not known yet."""
        return self._layers.get(key)

    def write(self, record: Record, key: Hashable, updates: Mapping[str, Any]) -> Record:
        """``record`` with ``updates`` written by the step, remembering the layer under ``key``."""
        written = record.updated(self.step, updates)
        if len(self._layers) < self._limit:
            # An empty write adds no layer; the empty updates themselves are remembered then.
            self._layers[key] = written.layers[-1].data if written is not record else updates
        return written


def apply_rules(records: Sequence[Record], rules: Sequence[Rule], step: Step) -> list[Record]:
    """Each record with the rules' updates written as one layer by ``step`` (unchanged records are returned
    as they are); record order is kept."""
    shared = LayerCache(step, limit=10_000)
    result = []
    if len(rules) == 1:
        rule = rules[0]
        for record in records:
            written = rule(record)
            if type(written) is SharedUpdates:
                layer = shared.get(written.key)
                record = shared.write(record, written.key, written) if layer is None else record.updated(step, layer)
            elif written:
                record = record.updated(step, written)
            result.append(record)
        return result
    for record in records:
        updates: dict[str, Any] = {}
        values: Mapping[str, Any] = record
        for rule in rules:
            written = rule(values)
            if written:
                if not updates:
                    values = _Overlay(updates, record)
                updates.update(written)
        result.append(record.updated(step, updates))
    return result


class _Overlay(Mapping[str, Any]):
    """A record's content with the updates of earlier rules on top (the updates dict is read live)."""

    __slots__ = ("_updates", "_record")

    def __init__(self, updates: Mapping[str, Any], record: Record):
        self._updates = updates
        self._record = record

    def __getitem__(self, key: str) -> Any:
        if key in self._updates:
            return self._updates[key]
        return self._record[key]

    def get(self, key: str, default: Any = None) -> Any:
        if key in self._updates:
            return self._updates[key]
        return self._record.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._updates or key in self._record

    def keys(self) -> KeysView[str]:
        return (self._record.keys() | self._updates.keys())  # type: ignore[return-value]

    def __iter__(self) -> Iterator[str]:
        yield from self._record
        yield from (key for key in self._updates if key not in self._record)

    def __len__(self) -> int:
        return len(self._record) + sum(1 for key in self._updates if key not in self._record)
