"""Per-record rules composed into one audit layer.

A stage-3 step is often several small rules applied to every record in order (noise, then NA labels, then
channel keys, ...), each reading what the earlier ones wrote. Writing each rule's keys as its own layer would
multiply the audit trail and the copying by the number of rules; instead :func:`apply_rules` runs the rules of
a step on one plain dictionary of the record's content and writes everything they set as **one** layer.

A rule is a function ``rule(values) -> updates``: ``values`` is the record's current content (including what
earlier rules of the same pass wrote; read it, never change it) and ``updates`` the keys to write, or None.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from .records import Record, Step

__all__ = ["Rule", "apply_rules"]

Rule = Callable[[Mapping[str, Any]], "Mapping[str, Any] | None"]


def apply_rules(records: Sequence[Record], rules: Sequence[Rule], step: Step) -> list[Record]:
    """Each record with the rules' updates written as one layer by ``step`` (unchanged records are returned
    as they are); record order is kept."""
    result = []
    for record in records:
        values = record.to_dict()
        updates: dict[str, Any] = {}
        for rule in rules:
            written = rule(values)
            if written:
                values.update(written)
                updates.update(written)
        result.append(record.updated(step, updates))
    return result
