"""Per-record rules, each written as one audit layer per record.

A rule is a function ``rule(values) -> updates``: ``values`` is the record's content (a read-only Mapping: the
record itself, so it is never copied into a dictionary for a rule reading a handful of its keys) and
``updates`` the keys to write, or None. :func:`apply_rule` writes one rule's updates on every record.

Many records get exactly the same updates (the same noise flag, the same NA labels, the same channel keys). A
rule returns those as a :class:`SharedUpdates`, which names by value what determines them (the values the rule
read); the layer written for the first record with that key is reused as it is for the next ones (see
:class:`LayerCache`, which lives for one pass).
"""

from __future__ import annotations

from typing import Any, Callable, Hashable, Mapping, Sequence

from redss_pipeline.core.records import Record, Step

__all__ = ["Rule", "SharedUpdates", "LayerCache", "apply_rule"]

Rule = Callable[[Mapping[str, Any]], "Mapping[str, Any] | None"]


class SharedUpdates(dict[str, Any]):
    """Updates that a rule returns for many records, with ``key``: the values the rule read that determine
    them completely (hashable). Never change one after it is returned.

    :func:`apply_rule` gives every record written with updates of the same key the same layer, which saves
    building the layer again for each record (the records then share one layer object, which also costs less
    memory).
    """

    __slots__ = ("key",)

    def __init__(self, key: Hashable, updates: Mapping[str, Any] | None = None):
        super().__init__(updates or {})
        self.key = key


class LayerCache:
    """Recurring writes of one step, by a key the step chooses: the layer written for a key is reused as it is.

    ``record.updated(step, updates)`` turns ``updates`` into a layer (a key tuple and a value tuple);
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


def apply_rule(records: Sequence[Record], rule: Rule, step: Step) -> list[Record]:
    """Each record with the rule's updates written as one layer by ``step`` (a record the rule writes nothing
    on is returned as it is); record order is kept."""
    shared = LayerCache(step, limit=10_000)
    result = []
    for record in records:
        written = rule(record)
        if type(written) is SharedUpdates:
            layer = shared.get(written.key)
            record = shared.write(record, written.key, written) if layer is None else record.updated(step, layer)
        elif written:
            record = record.updated(step, written)
        result.append(record)
    return result
