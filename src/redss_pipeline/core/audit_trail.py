"""``Outputs/traced_data.json``: the compact audit trail of every message record.

The file lets anyone follow an output value back to its raw Rapid Pro answer and through every step that
changed it (who, which step, when), as 2019's jsonpickle dump of the message records did at 57 to 78 KB per
message, in well under 1 KB per message. :func:`encode_segment` encodes a batch of records and
:class:`AuditTrailWriter` appends the segments (stage 3 does so chunk by chunk, in a file its output set
stages); :meth:`AuditTrail.load` reads
it; :meth:`AuditTrail.records_for` rebuilds one person's records with all their layers and steps, and
:meth:`AuditTrail.explain` prints the history of one of their keys. Records are indexed by the **first**
value their id key took, so a withdrawn participant (whose ``uid`` reads ``STOP`` in the outputs, spec
README decision 9) is found by the uid they had.

Format (version 2)
------------------

The file is one JSON array with one entry per line, in UTF-8 (files of earlier pipelines escape every non-ASCII
character; both read alike), where NEL, LINE SEPARATOR and PARAGRAPH SEPARATOR are always written as ``\\u``
escapes so that no reader ends a line there: valid JSON as a whole, and each line is valid JSON once its trailing
comma is dropped. An entry is an array whose first item is a tag. After the header come
*segments*, each the records of one batch the writer was given (stage 3: one chunk of respondents), and the
``"end"`` entry. Each segment starts with a ``"segment"`` entry and is self-contained: its tables are
numbered from 0 in the order their entries appear in the segment, and an entry refers only to entries above
it in its own segment. A segment's bytes therefore depend only on its own records (chunks can be encoded in
any process, in any order, and the file is the same), and the file is written and read in one pass::

    [
    ["redss-audit-trail",2,{"id_key":"uid"}]     header: format name, version, the id key
    ["segment"]                                  a segment starts: every table below starts empty
    ["k","avf_phone_id"]                         key n
    ["v",<element>]                              value n
    ["s",<user>,<source>,<timestamp>]            step n (three elements): who, which step, when
    ["h",<step>,[<key>,...]]                     shape n: a step and the keys it wrote, in order
                                                 (step null: the keys of a dict value)
    ["l",<shape>,<element>,...]                  layer n: a shape and one element per key
    ["a",<layer>,...]                            attached record n (e.g. a survey record), oldest layer first
    ["r",<element>,<layer>,...]                  a message record: the first value its id key took, then
                                                 its layers, oldest first
    ["segment"]                                  the next segment, numbered from 0 again
    ...
    ["end",<number of "r" entries>]              the last entry; a file without it is truncated
    ]

Version 1 had no ``"segment"`` entries: its tables were numbered across the whole file. The reader reads it
as a file of one segment.

In an ``"a"`` or ``"r"`` entry a ``<layer>`` is a layer number or an inline ``[<shape>,<element>,...]``.
Values are written as *elements*:

=====================  =================================================================================
element                value
=====================  =================================================================================
``n`` (``n >= 0``)     value n
``-n``                 the n-th inline value of the same entry, counted 1, 2, ... in the order inline
                       values end (a dict or list after its contents), so a value repeated within one
                       record is spelled once. The id element of an ``"r"`` entry is counted on its own.
``"text"``             that string (inline)
``[x]``                the number, boolean or null ``x`` (inline)
``{"d":[s,e,...]}``    a dict (inline) with the keys of shape ``s``, one element per key
``{"l":[e,...]}``      a list (inline)
``{"r":n}``            attached record n (only as a value of a record's layer)
=====================  =================================================================================

Where the bytes go: each step, key and shape is written once per segment however many of its records share
it. A value gets a ``"v"`` entry the second time it is used by another entry of the segment (codes, "0"/"1",
the labels one rule makes, a respondent's uid), after which each use costs a small number; a value used by one
record only (the message text, its times) is written once inline and referred to as ``-n`` within that
record. A layer whose values all have numbers (e.g. the channel and week flags of 7.4.4) gets an ``"l"`` entry
the second time it occurs and then costs one number. A record attached to several messages of a segment is
written once in it.

What the writer remembers: :func:`encode_segment` encodes one segment with tables of its own, keyed by
values, and forgets them when it returns, so its memory is bounded by the segment (one chunk of respondents)
and nothing is carried from one segment to the next. Steps are found by the :class:`Step` value, shapes by
step and keys, values by a token of their JSON value, numbered layers by their element numbers, attached
records by their layers. A layer that is the very same object as one of the last few layers numbered for its
shape (steps share one layer between the records they write the same values on) costs a few comparisons; an equal
copy takes the longer way. Otherwise a layer holding dicts or lists (labels) is compared with the newest of them,
then each label with those met lately at the same place (shape and key): as itself among the last few dozen,
as an equal copy among the last few; either is much cheaper than walking it. "The same" means equal and equal in
``repr``, as the file tells values apart (1, 1.0 and True differ); a value is trivially the same as itself, so the
comparison costs least where steps share their labels.
:class:`AuditTrailWriter` only appends encoded segments to the file and counts their records. Entries are
encoded by orjson and read back by the :mod:`json` module.

Records read back are equal to those written (keys, values, steps, layer order). Equal values are shared
between the records read back from one segment; treat them as read-only, like the records themselves. The
reader keeps, per record, its place in the file and the first value of its id key, and per segment where it
starts; it reads a segment's tables again when it rebuilds records from it.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from array import array
from bisect import bisect_left, bisect_right
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator, NamedTuple, NoReturn, Sequence

import orjson

from redss_pipeline.core.errors import PipelineError
from redss_pipeline.core.records import Layer, Record, Step

__all__ = [
    "AuditTrailError", "AuditTrailSegment", "encode_segment", "AuditTrailWriter",
    "AuditTrail", "FORMAT_NAME", "FORMAT_VERSION",
]

FORMAT_NAME = "redss-audit-trail"
FORMAT_VERSION = 2
_READABLE_VERSIONS = (1, 2)

# Labels remembered per place (shape and key) of a segment's layers: a label is looked for as itself among all
# _RECENT_PER_PLACE of them (one identity test each), and as an equal copy only among the newest
# _COMPARED_PER_PLACE (each test compares the two labels and their reprs). On coded bench data (100,000 messages),
# two thirds of the already-numbered labels the newest 4 missed were among the 32, and are no longer walked.
_RECENT_PER_PLACE = 32
_COMPARED_PER_PLACE = 4
# Layers remembered per shape: found as themselves (a step's shared layer), or as an equal copy of the newest.
_RECENT_LAYERS_PER_SHAPE = 8

# One entry as one line of compact JSON text, written by orjson (the json module's encoder costs several times
# more per call, and a segment is a few lines per record). orjson escapes the control characters inside strings,
# "\n" among them, so an entry stays on its line (the reader splits lines at "\n" only). Each line is decoded to
# text at once and the segment encoded once: measured on stage 3's chunks, that is about 7 us per record faster
# than keeping and joining orjson's bytes. orjson writes what the encoder hands it (lists, dicts, strings,
# integers, floats, booleans, None), except that it writes non-finite floats as null (a silent change) and refuses
# integers outside 64 bits and strings with lone surrogates: the encoder refuses all three itself where it meets
# them (_check_text, _element), so the error names the key and the step. What is left (a value nested more deeply
# than orjson writes) is refused here.
def _line(entry: Any) -> str:
    try:
        return orjson.dumps(entry).decode("utf-8")
    except orjson.JSONEncodeError as error:
        raise _NotJson(f"a value cannot be written as JSON ({error})") from None


# Characters JSON allows raw inside a string but that some readers take for the end of a line (Python's
# str.splitlines, some editors): NEL, LINE SEPARATOR and PARAGRAPH SEPARATOR. orjson writes them raw, so they are
# escaped in the text it made (in JSON text they can only stand inside a string), and each entry stays on one line
# for any reader, not only for this module's, which splits at "\n". A text without them is scanned, not copied.
_LINE_BREAKS_JSON_ALLOWS = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _escape_line_breaks(text: str) -> str:
    for character, escape in _LINE_BREAKS_JSON_ALLOWS.items():
        if character in text:
            text = text.replace(character, escape)
    return text


_SEGMENT_LINE = _line(["segment"])
_DECODER = json.JSONDecoder()
_SCALAR_TYPES = frozenset({str, int, float, bool, type(None)})
_JSON_TYPES = _SCALAR_TYPES | {list, dict}
_JUST_STRINGS = {str}
_MISSING = object()
_INCOMPLETE = "(a partial copy, or a write that failed): run stage 3 again"


class AuditTrailError(PipelineError):
    """The audit trail cannot be written, is malformed, or has no record for the id asked for."""


# -- writing ----------------------------------------------------------------------------------------------


class AuditTrailSegment(NamedTuple):
    """One encoded segment: its lines as bytes (each ending in ``",\\n"``; empty for no records) and the number
    of message records in it. Plain data, so it can be made in a worker process and sent to the writer."""

    data: bytes
    records: int


def encode_segment(records: Iterable[Record], *, id_key: str = "uid", target: str | None = None) -> AuditTrailSegment:
    """Encodes ``records`` as one segment of the audit trail. Pure: the result depends only on ``records``
    and ``id_key``, so it may run in any process. Their values are read-only (see
    :mod:`~redss_pipeline.core.records`): a label changed in place while ``records`` is still being consumed may be
    written as it was when first met.

    An error names the file ``target``, the record by its number in ``records`` (counted from 0) and the first
    value of its id key, so it is the same in whichever process the segment is encoded."""
    return _SegmentEncoder(id_key).encode(records, target)


class AuditTrailWriter:
    """Writes the audit trail to an open binary file segment by segment: ``with AuditTrailWriter(handle) as
    trail: trail.write(segment)`` with a segment :func:`encode_segment` made anywhere (with the same id key; stage
    3 encodes each chunk's in the process that made it). The writer remembers only how many records it wrote. The
    closing ``"end"`` entry is written only when the block ends without an error, so an interrupted trail reads as
    truncated."""

    def __init__(self, handle: BinaryIO, *, id_key: str = "uid", target: str = "<audit trail>"):
        self._handle = handle
        self.id_key = id_key
        self.target = target
        self.written = 0  # message records written so far

    def __enter__(self) -> "AuditTrailWriter":
        try:
            header = _escape_line_breaks(_line([FORMAT_NAME, FORMAT_VERSION, {"id_key": self.id_key}]))
        except _NotJson as error:
            raise AuditTrailError(f"the id key {self.id_key!r}: {error}", path=self.target) from None
        self._handle.write(f"[\n{header},\n".encode("utf-8"))
        return self

    def write(self, segment: AuditTrailSegment) -> None:
        """Appends an encoded segment."""
        self._handle.write(segment.data)
        self.written += segment.records

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        if kind is None:
            self._handle.write(f"{_line(['end', self.written])}\n]\n".encode("utf-8"))


class _NotJson(Exception):
    """A value the file cannot hold; :meth:`locate` adds where it was met, once."""

    def __init__(self, message: str):
        super().__init__(message)
        self.located = False

    def locate(self, where: str) -> None:
        self.args = (f"{self.args[0]} {where}",)
        self.located = True


class _Scope:
    """The inline values of one entry: tokens that may be referred to as ``-n``, and how many there are."""

    __slots__ = ("tokens", "count")

    def __init__(self) -> None:
        self.tokens: dict[Any, int] = {}
        self.count = 0


class _SegmentEncoder:
    """Encodes the records of one segment into its lines. Its tables are keyed by values, start empty, and
    live as long as the segment's encoding: none needs a bound beyond the segment's records."""

    def __init__(self, id_key: str):
        self._id_key = id_key
        self._lines: list[str] = [_SEGMENT_LINE]
        # key -> key number.
        self._keys: dict[str, int] = {}
        # step -> step number (Step is a named tuple: compared and hashed by its user, source and time).
        self._steps: dict[Step, int] = {}
        # (step or None, keys) -> shape number.
        self._shapes: dict[tuple[Step | None, tuple[str, ...]], int] = {}
        # value token -> value number. A token stands for a value and its JSON type: a string is its own
        # token; another scalar is (type, value), a float by its repr (-0.0 apart from 0.0); a dict or list
        # whose items all have value numbers is (type, shape number or nothing, item numbers). Values whose
        # items do not all have numbers have no token and are always written inline.
        self._values: dict[Any, int] = {}
        # tokens met once, not yet numbered: a value gets a number the second time it is used.
        self._values_seen: set[Any] = set()
        # (shape number, element numbers...) -> layer number, for layers whose elements are all value
        # numbers; and the layers met once.
        self._layers: dict[tuple[int, ...], int] = {}
        self._layers_seen: set[tuple[int, ...]] = set()
        # (shape number, position) -> the last _RECENT_PER_PLACE dicts or lists with value numbers written at
        # that place of a layer (a column of labels), with their numbers, newest first (the most recently walked
        # or matched as an equal copy; one found as itself stays where it is). A label met again at
        # its place is found among these (as itself among all of them, as an equal copy among the newest
        # _COMPARED_PER_PLACE) instead of being walked; a column's labels repeat from message to message (NA
        # codes, a respondent's survey codes, the coders' labels of one text).
        self._recent_containers: dict[tuple[int, int], list[tuple[Any, int]]] = {}
        # shape number -> the last _RECENT_LAYERS_PER_SHAPE numbered layers of that shape, newest first, with
        # their numbers: a step that writes the same values on many messages (one layer shared by the records it
        # writes them on, e.g. the survey codes of one answer) is recognised by finding the very layer among
        # them before its values are looked up. A layer with labels is also compared value by value with the
        # newest (_same_data).
        self._recent_layers: dict[int, list[tuple[Any, int]]] = {}
        # Attached records written in the segment, found again by value: the bucket key is a hashable summary
        # of the record (_attached_key) and a candidate is the same record when its layers are the same
        # (_same_layers), which determines a record completely. Each holds (record, number, first id value).
        self._attached: dict[tuple[Any, ...], list[tuple[Record, int, Any]]] = {}
        self._attached_count = 0  # "a" entries so far

    def encode(self, records: Iterable[Record], target: str | None) -> AuditTrailSegment:
        count = 0
        for record in records:
            where = f"{count} of its chunk"
            if not isinstance(record, Record):
                raise AuditTrailError(f"expected a Record, found {type(record).__name__}", path=target, record=where)
            try:
                self._record(record)
            except _NotJson as error:
                history = record.history(self._id_key)
                named = "" if not history else f" (its first {self._id_key} was {history[0].value!r})"
                raise AuditTrailError(f"{error}{named}", path=target, record=where) from None
            count += 1
        if not count:
            return AuditTrailSegment(b"", 0)
        return AuditTrailSegment(_escape_line_breaks(",\n".join(self._lines) + ",\n").encode("utf-8"), count)

    def _emit(self, entry: list[Any]) -> None:
        self._lines.append(_line(entry))

    def _record(self, record: Record) -> None:
        layers, first_id = self._encode_record(record)
        # The id element is encoded last and on its own, so a reader indexes the file from the start of each
        # "r" line; by then the id has usually been met before and has a value number.
        self._emit(["r", self._element(None if first_id is _MISSING else first_id, _Scope()), *layers])

    def _encode_record(self, record: Record) -> tuple[list[Any], Any]:
        """The encoded layers of ``record`` (defining its attached records first) and the first value its id
        key took, in Record.history order: a layer's attached records, then the layer's own value."""
        id_key = self._id_key
        scope = _Scope()
        first_id: Any = _MISSING
        encoded = []
        attached_ids: list[Any] = []
        for layer in record.layers:
            encoded.append(self._layer(layer, scope, attached_ids))
            if first_id is _MISSING:
                for attached_id in attached_ids:
                    if attached_id is not _MISSING:
                        first_id = attached_id
                        break
                else:
                    value = layer.data.get(id_key, _MISSING)
                    if value is not _MISSING and not isinstance(value, Record):
                        first_id = value
            attached_ids.clear()
        return encoded, first_id

    def _attached_record(self, record: Record) -> tuple[int, Any]:
        """The number of ``record`` as an attached record (written now unless an equal one was written in
        this segment) and the first value its id key took."""
        key = _attached_key(record)
        bucket = self._attached.get(key)
        if bucket is not None:
            for held, number, first_id in bucket:
                if _same_layers(held, record):
                    return number, first_id
        encoded, first_id = self._encode_record(record)
        self._emit(["a", *encoded])
        number = self._attached_count
        self._attached_count += 1
        self._attached.setdefault(key, []).append((record, number, first_id))
        return number, first_id

    # -- tables -------------------------------------------------------------------------------------------

    def _key(self, key: Any) -> int:
        number = self._keys.get(key)
        if number is None:
            if type(key) is not str:
                raise _NotJson(f"key {key!r} is not a string")
            _check_text(key, f"the key {key!r}")
            number = self._keys[key] = len(self._keys)
            self._emit(["k", key])
        return number

    def _step(self, step: Step) -> int:
        number = self._steps.get(step)
        if number is None:
            scope = _Scope()
            try:
                self._emit(["s", self._element(step.user, scope), self._element(step.source, scope),
                            self._element(step.timestamp, scope)])
            except _NotJson as error:
                error.locate(f"in the step {step.source!r} by {step.user!r}")
                raise
            number = self._steps[step] = len(self._steps)
        return number

    def _shape(self, step: Step | None, keys: tuple[str, ...]) -> int:
        number = self._shapes.get((step, keys))
        if number is None:
            step_number = None if step is None else self._step(step)
            key_numbers = [self._key(key) for key in keys]
            self._emit(["h", step_number, key_numbers])
            number = self._shapes[(step, keys)] = len(self._shapes)
        return number

    def _layer(self, layer: Layer, scope: _Scope, attached_ids: list[Any]) -> int | list[Any]:
        """A layer number, or the layer inline; the first id values of the records it attaches are added to
        ``attached_ids``."""
        data = layer.data
        try:
            shape = self._shape(layer.step, tuple(data.keys()))
        except _NotJson as error:  # a key, or the step itself
            if not error.located:
                error.locate(f"in a layer written by step {layer.step.source!r}")
            raise
        items: list[Any] = [shape]
        recent = self._recent_layers.get(shape)
        if recent is not None:
            for held, number in recent:
                if held is data:  # a step's shared layer, met again: trivially the same
                    return number
        values = data.values()
        values_get = self._values.get
        # A layer of strings that all have value numbers (the analysis columns: a hundred "0", "1" and code
        # names) is looked up in one pass; any other layer value by value.
        kinds = set(map(type, values))
        if kinds == _JUST_STRINGS:
            numbers = list(map(values_get, values))
            if None not in numbers:
                items += numbers
                encoded = self._numbered_layer(items)
                if type(encoded) is int:
                    self._remember_layer(shape, data, encoded)
                return encoded
        with_containers = (dict in kinds or list in kinds) and Record not in kinds
        if with_containers:
            if recent is not None and _same_data(recent[0][0], data):
                number = recent[0][1]
                recent[0] = (data, number)  # keep the newest of equal layers, as for labels
                return number
        all_numbered = True
        element = self._element
        interned = self._interned
        position = 0
        try:
            for position, value in enumerate(values):
                kind = type(value)
                if kind is str:
                    item = values_get(value)  # a string is its own token: the common case, kept short
                    if item is None:
                        item = interned(value, value, scope)
                elif kind is dict or kind is list:
                    item = self._container_at((shape, position), value, scope)
                elif kind not in _JSON_TYPES and isinstance(value, Record):
                    number, first_id = self._attached_record(value)
                    attached_ids.append(first_id)
                    items.append({"r": number})
                    all_numbered = False
                    continue
                else:
                    item = element(value, scope)
                if type(item) is not int or item < 0:
                    all_numbered = False
                items.append(item)
        except _NotJson as error:
            if not error.located:  # the innermost layer names the key (an attached record's layer, not its own)
                error.locate(f"under key {tuple(data.keys())[position]!r}, written by step {layer.step.source!r}")
            raise
        if not all_numbered:
            return items
        encoded = self._numbered_layer(items)
        if type(encoded) is int:
            self._remember_layer(shape, data, encoded)
        return encoded

    def _remember_layer(self, shape: int, data: Any, number: int) -> None:
        recent = self._recent_layers.get(shape)
        if recent is None:
            recent = self._recent_layers[shape] = []
        recent.insert(0, (data, number))
        del recent[_RECENT_LAYERS_PER_SHAPE:]

    def _container_at(self, place: tuple[int, int], value: Any, scope: _Scope) -> Any:
        """The element of a dict or list ``value`` written at ``place`` (shape number, position) of a layer:
        the number of a recent value at that place that is the same value, else the walked element."""
        recent = self._recent_containers.get(place)
        if recent is not None:
            for held, number in recent:
                if held is value:  # a label the step shares between messages (e.g. those of one text), met again
                    return number
            for index, (held, number) in enumerate(recent[:_COMPARED_PER_PLACE]):
                if held == value and repr(held) == repr(value):  # _same_value without its identity test (done above)
                    # Keep the newest of equal values: the next messages of its step share it.
                    del recent[index]
                    recent.insert(0, (value, number))
                    return number
        element = self._element(value, scope)
        if type(element) is int and element >= 0:
            if recent is None:
                recent = self._recent_containers[place] = []
            recent.insert(0, (value, element))
            del recent[_RECENT_PER_PLACE:]
        return element

    def _numbered_layer(self, items: list[Any]) -> int | list[Any]:
        """The layer number of a layer whose items are all numbers, or the items while it is new."""
        token = tuple(items)
        number = self._layers.get(token)
        if number is not None:
            return number
        if token in self._layers_seen:
            number = self._layers[token] = len(self._layers)
            self._emit(["l", *items])
            return number
        self._layers_seen.add(token)
        return items

    def _element(self, value: Any, scope: _Scope) -> Any:
        kind = type(value)
        if kind is str:
            return self._interned(value, value, scope)
        if kind is dict:
            items = [self._shape(None, tuple(value))]
            self._items(value.values(), scope, items)
            return self._container(kind, items, {"d": items}, scope)
        if kind is list:
            items = []
            self._items(value, scope, items)
            return self._container(kind, items, {"l": items}, scope)
        if value is None or kind is bool:
            return self._interned((kind, value), [value], scope)
        if kind is int:
            if not _INT_MIN <= value <= _INT_MAX:
                raise _NotJson(f"the integer {value} is outside the range the file holds (64 bits)")
            return self._interned((kind, value), [value], scope)
        if kind is float:
            if not math.isfinite(value):
                raise _NotJson(f"the number {value!r} cannot be written as JSON")
            return self._interned((kind, float.__repr__(value)), [value], scope)  # repr keeps -0.0 apart
        raise _NotJson(f"a value of type {kind.__name__} cannot be written as JSON")

    def _items(self, values: Iterable[Any], scope: _Scope, items: list[Any]) -> None:
        values_get = self._values.get
        for value in values:
            if type(value) is str:
                number = values_get(value)
                items.append(self._interned(value, value, scope) if number is None else number)
            else:
                items.append(self._element(value, scope))

    def _container(self, kind: type, items: list[Any], inline: dict[str, Any], scope: _Scope) -> Any:
        for item in items:
            if type(item) is not int or item < 0:
                scope.count += 1  # its contents are not all numbered: written inline, never referred to
                return inline
        return self._interned((kind, *items), inline, scope)

    def _interned(self, token: Any, inline: Any, scope: _Scope) -> Any:
        """The value number of ``token``, a reference to it earlier in the entry, or ``inline``; gives the
        value a number the second time an entry uses it."""
        number = self._values.get(token)
        if number is not None:
            return number
        number = scope.tokens.get(token)
        if number is not None:
            return number
        if type(token) is str:
            _check_text(token)
        if token in self._values_seen:
            number = self._values[token] = len(self._values)
            self._emit(["v", inline])
            return number
        self._values_seen.add(token)
        scope.count += 1
        scope.tokens[token] = -scope.count
        return inline


# The integers orjson writes: those of a signed or an unsigned 64-bit integer.
_INT_MIN = -(1 << 63)
_INT_MAX = (1 << 64) - 1


def _check_text(text: str, what: str = "a text") -> None:
    """Refuses a text orjson cannot write as UTF-8: one holding a lone surrogate (a JSON file may spell one as
    ``\\ud800``); ``what`` names it in the error. ASCII text, the common case, is passed at the cost of one C
    call."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise _NotJson(f"{what} holds a lone surrogate (not a character) and cannot be written") from None


def _same_value(held: Any, value: Any) -> bool:
    """Whether two values are the same as the file tells values apart: equal, and equal in repr, which
    Python's equality is not for 1, 1.0 and True (a value is trivially the same as itself)."""
    return held is value or (held == value and repr(held) == repr(value))


def _same_data(held: Any, data: Any) -> bool:
    """Whether two layers' data are the same: the same keys in the same order, each value the same."""
    if held is data:
        return True
    if len(held) != len(data) or tuple(held.keys()) != tuple(data.keys()):
        return False
    return all(map(_same_value, held.values(), data.values()))


def _same_layers(held: Record, record: Record) -> bool:
    """Whether two records have the same layers as the file tells values apart: equal, and equal in repr,
    which Python's equality is not for 1, 1.0 and True (a record is trivially the same as itself)."""
    if held is record:
        return True
    return held.layers == record.layers and repr(held.layers) == repr(record.layers)


def _attached_key(record: Record) -> tuple[Any, ...]:
    """A hashable summary of a record's value that tells most records apart: its number of layers, its newest
    layer's step and the scalar values of its first layer (a survey record's first layer holds the respondent's
    raw answers)."""
    layers = record.layers
    if not layers:
        return ()
    first_values = tuple(layers[0].data.values())
    if not _SCALAR_TYPES.issuperset(map(type, first_values)):
        first_values = tuple(value for value in first_values if type(value) in _SCALAR_TYPES)
    return (len(layers), layers[-1].step, first_values)


# -- reading ----------------------------------------------------------------------------------------------


class _Tables:
    """The tables of one segment as far as it has been read, and its attached records (where they are in
    the file, and those rebuilt so far: the records of a segment share them)."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.values: list[Any] = []
        self.steps: list[Step] = []
        self.shapes: list[tuple[Step | None, tuple[str, ...]]] = []
        self.layers: list[Layer] = []
        self.attached_lines: list[tuple[int, int]] = []  # (byte offset, line number)
        self.attached: dict[int, Record] = {}

    def entry(self, entry: list[Any]) -> None:
        """Adds a table entry (any tag but "a", "r", "segment" and "end")."""
        tag = entry[0]
        if tag == "k":
            if len(entry) != 2 or type(entry[1]) is not str:
                raise ValueError("a key entry holds one string")
            self.keys.append(entry[1])
        elif tag == "v":
            if len(entry) != 2:
                raise ValueError("a value entry holds one element")
            self.values.append(self.decode(entry[1], []))
        elif tag == "s":
            if len(entry) != 4:
                raise ValueError("a step entry holds user, source and timestamp")
            local: list[Any] = []
            user, source, timestamp = (self.decode(item, local) for item in entry[1:])
            if type(user) is not str or type(source) is not str or type(timestamp) not in (float, int, str):
                raise ValueError("a step is a user string, a source string and a timestamp")
            if type(timestamp) is not str:
                try:  # read now, so that explain never meets a time it cannot print
                    _when(timestamp)
                except (OverflowError, OSError, ValueError):
                    raise ValueError(f"a step's timestamp {timestamp!r} is no time") from None
            self.steps.append(Step(user, source, timestamp))
        elif tag == "h":
            step = None if entry[1] is None else self.steps[_number(entry[1])]
            self.shapes.append((step, tuple(self.keys[_number(k)] for k in entry[2])))
        elif tag == "l":
            self.layers.append(self.decode_layer(entry[1:], [], None))
        else:
            raise ValueError(f"unknown entry tag {tag!r}")

    def decode(self, element: Any, local: list[Any]) -> Any:
        kind = type(element)
        if kind is int:
            if element >= 0:
                return self.values[element]
            if -element > len(local):
                raise ValueError(f"reference {element} points to no earlier value of the entry")
            return local[-element - 1]
        if kind is str:
            local.append(element)
            return element
        if kind is list:
            if len(element) != 1:
                raise ValueError("an inline literal is a one-item list")
            local.append(element[0])
            return element[0]
        if kind is dict and len(element) == 1:
            result: Any
            if "d" in element:
                shape, *items = element["d"]
                keys = self.shapes[_number(shape)][1]
                if len(keys) != len(items):
                    raise ValueError(f"a dict of shape {shape} needs {len(keys)} values, has {len(items)}")
                result = {key: self.decode(item, local) for key, item in zip(keys, items)}
                local.append(result)
                return result
            if "l" in element:
                result = [self.decode(item, local) for item in element["l"]]
                local.append(result)
                return result
        raise ValueError(f"not an element: {element!r}")

    def decode_layer(self, items: list[Any], local: list[Any], handle: BinaryIO | None) -> Layer:
        step, keys = self.shapes[_number(items[0])]
        if step is None:
            raise ValueError(f"shape {items[0]} has no step")
        if len(keys) != len(items) - 1:
            raise ValueError(f"a layer of shape {items[0]} needs {len(keys)} values, has {len(items) - 1}")
        data: dict[str, Any] = {}
        for key, item in zip(keys, items[1:]):
            if type(item) is dict and "r" in item:
                if handle is None:
                    raise ValueError("a layer entry cannot attach a record")
                data[key] = self.attached_record(_number(item["r"]), handle)
            else:
                data[key] = self.decode(item, local)
        return Layer(step, data)

    def record(self, entry: list[Any], handle: BinaryIO) -> Record:
        """The record of an "a" or "r" entry; ``handle`` reads the attached records it refers to."""
        local: list[Any] = []
        layers = []
        # entry[1] of an "r" entry is the id element, decoded when the file was loaded.
        for item in entry[2:] if entry[0] == "r" else entry[1:]:
            if type(item) is int:
                layers.append(self.layers[_number(item)])
            else:
                layers.append(self.decode_layer(item, local, handle))
        return Record.from_layers(layers)

    def attached_record(self, number: int, handle: BinaryIO) -> Record:
        record = self.attached.get(number)
        if record is None:
            offset, line_number = self.attached_lines[number]
            handle.seek(offset)
            try:
                record = self.attached[number] = self.record(json.loads(handle.readline().rstrip(b",\n")), handle)
            except (ValueError, TypeError, IndexError, KeyError) as error:
                raise _LineError(line_number, f"malformed attached record ({type(error).__name__}: {error})") from None
        return record


class _LineError(Exception):
    def __init__(self, line_number: int, message: str):
        super().__init__(message)
        self.line_number = line_number


class AuditTrail:
    """A loaded audit trail: where its segments and records are, and the first id value of each record; the
    records are rebuilt from the file when asked for.

    Loading reads the file once and keeps 16 bytes per record (its place in the file) and the index from
    first id values to record numbers; a segment's tables are read again, up to the records asked for, when
    records are rebuilt from it, so memory follows one segment (a chunk of respondents), not the file. A
    version-1 file is one segment, whose tables are kept from loading it (a few hundred megabytes for a
    million records).
    """

    def __init__(self, path: Path, id_key: str, version: int):
        # Use AuditTrail.load.
        self.path = path
        self.id_key = id_key
        self.version = version
        self._segment_offsets: list[int] = []  # byte offset of each segment's first entry
        self._segment_lines: list[int] = []  # and its line number
        self._record_offsets = array("q")  # byte offset of each record's line
        self._record_lines = array("q")  # and its line number
        self._index: dict[Any, list[int]] = {}
        # The tables of a version-1 file, whose one segment is the whole file, kept from loading it.
        self._whole_file: _Tables | None = None
        self._identity: tuple[int, ...] = ()  # of the file loaded, to know it again when records are rebuilt

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "AuditTrail":
        """Reads the segments and the record index of the audit trail at ``path``, checking every table entry and
        each record's id (the rest of a record is checked when it is rebuilt: :meth:`records_for`)."""
        path = Path(path)
        try:
            handle = open(path, "rb")
        except FileNotFoundError:
            raise AuditTrailError("not found: stage 3 writes it (3_generate_outputs.sh)", path=path) from None
        except OSError as error:
            raise AuditTrailError(f"cannot be read: {error.strerror or error}", path=path) from None
        with handle:
            trail = cls._read(path, handle)
            trail._identity = _identity(handle)
            return trail

    @classmethod
    def _read(cls, path: Path, handle: BinaryIO) -> "AuditTrail":
        def fail(line_number: int, message: str) -> NoReturn:
            raise AuditTrailError(f"line {line_number}: {message}", path=path)

        first = handle.readline()
        if not first:
            fail(1, f"the file is empty {_INCOMPLETE}")
        # The 2019 pipeline's traced_data.json (records dumped by jsonpickle) has the same name and is not one.
        other = "; a traced_data.json of the 2019 pipeline is not one: stage 3 writes one"
        if first != b"[\n":
            fail(1, f"not an audit trail (expected '[' alone on the first line){other}")
        second = handle.readline()
        try:
            header = json.loads(second.rstrip(b",\r\n"))
        except ValueError:
            header = None
        if not (type(header) is list and len(header) >= 2 and header[0] == FORMAT_NAME):
            fail(2, f"not an audit trail header (expected [{FORMAT_NAME!r}, version, options]){other}")
        if header[1] not in _READABLE_VERSIONS or type(header[1]) is not int:
            fail(2, f"format version {header[1]!r} is not supported (this pipeline reads versions "
                    f"{', '.join(map(str, _READABLE_VERSIONS))})")
        if len(header) != 3:
            fail(2, f"not an audit trail header (expected [{FORMAT_NAME!r}, version, options])")
        if not (type(header[2]) is dict and type(header[2].get("id_key")) is str):
            fail(2, "the header names no id_key")
        trail = cls(path, header[2]["id_key"], header[1])
        offset = handle.tell()
        line_number = 2
        tables: _Tables | None = None
        if trail.version == 1:  # one segment, without a "segment" entry
            tables = trail._start_segment(offset, line_number + 1)
        ended = False
        for line in handle:
            line_number += 1
            line_offset, offset = offset, offset + len(line)
            if ended:
                if line.rstrip(b"\n") == b"]" and not handle.read(1):
                    if trail.version == 1:
                        trail._whole_file = tables
                    return trail
                fail(line_number, "unexpected content after the end entry")
            if not line.endswith(b"\n"):
                fail(line_number, f"truncated in the middle of an entry {_INCOMPLETE}")
            try:
                if line.startswith(b'["r",') and tables is not None:
                    element, _ = _DECODER.raw_decode(line.decode("utf-8"), 5)
                    first_id = tables.decode(element, [])
                    number = len(trail._record_offsets)
                    trail._record_offsets.append(line_offset)
                    trail._record_lines.append(line_number)
                    if first_id is None or type(first_id) in (str, int, float, bool):
                        trail._index.setdefault(first_id, []).append(number)
                elif line.startswith(b'["a",') and tables is not None:
                    tables.attached_lines.append((line_offset, line_number))  # read when a record refers to it
                else:
                    entry = _parse(line, line_number, fail)
                    if type(entry) is not list or not entry:
                        fail(line_number, "an entry must be a non-empty list")
                    if entry[0] == "end":
                        if entry[1:] != [len(trail._record_offsets)]:
                            fail(line_number, f"the end entry counts {entry[1:]}, the file has "
                                              f"{len(trail._record_offsets)} records")
                        ended = True
                    elif entry == ["segment"] and trail.version >= 2:
                        tables = trail._start_segment(offset, line_number + 1)
                    elif tables is None:
                        fail(line_number, f"an entry {entry[0]!r} before the first segment")
                    else:
                        tables.entry(entry)
            except AuditTrailError:
                raise
            except (ValueError, TypeError, IndexError, KeyError) as error:
                fail(line_number, f"malformed entry ({type(error).__name__}: {error})")
        if ended:
            fail(line_number + 1, "missing the closing ']'")
        fail(line_number, f"truncated: no end entry {_INCOMPLETE}")

    def _start_segment(self, offset: int, line_number: int) -> _Tables:
        self._segment_offsets.append(offset)
        self._segment_lines.append(line_number)
        return _Tables()

    # -- rebuilding records -------------------------------------------------------------------------------

    def _segment_records(self, segment: int, numbers: Sequence[int]) -> Iterator[Record]:
        """The records ``numbers`` (ascending) of ``segment``, rebuilt with the segment's tables."""
        if not numbers:
            return
        line_number = self._segment_lines[segment]
        try:
            handle = open(self.path, "rb")  # noqa: SIM115 (closed by the with below)
        except OSError as error:
            raise AuditTrailError(f"cannot be read: {error.strerror or error}", path=self.path) from None
        with handle:
            if _identity(handle) != self._identity:
                raise AuditTrailError("the file changed since it was loaded (stage 3 wrote it again): read it again",
                                      path=self.path)
            try:
                tables = self._tables(segment, handle, self._record_offsets[numbers[-1]])
                for number in numbers:
                    handle.seek(self._record_offsets[number])
                    line_number = self._record_lines[number]
                    entry = json.loads(handle.readline().rstrip(b",\n"))
                    yield tables.record(entry, handle)
            except _LineError as error:
                raise AuditTrailError(f"line {error.line_number}: {error}", path=self.path) from None
            except (ValueError, TypeError, IndexError, KeyError) as error:
                raise AuditTrailError(f"line {line_number}: malformed record ({type(error).__name__}: {error})",
                                      path=self.path) from None

    def _tables(self, segment: int, handle: BinaryIO, stop: int) -> _Tables:
        """The tables of ``segment`` as far as the byte offset ``stop``, read from the file again (those of a
        version-1 file were kept from loading it)."""
        if self._whole_file is not None:
            return self._whole_file
        tables = _Tables()
        offset = self._segment_offsets[segment]
        line_number = self._segment_lines[segment]
        handle.seek(offset)
        while offset < stop:
            line = handle.readline()
            if line.startswith(b'["a",'):
                tables.attached_lines.append((offset, line_number))
            elif not line.startswith(b'["r",'):
                try:
                    tables.entry(json.loads(line.rstrip(b",\n")))
                except (ValueError, TypeError, IndexError, KeyError) as error:
                    raise _LineError(line_number, f"malformed entry ({type(error).__name__}: {error})") from None
            offset += len(line)
            line_number += 1
        return tables

    def _segment_numbers(self, segment: int) -> range:
        """The numbers of the records in ``segment``."""
        offsets = self._record_offsets
        end = self._segment_offsets[segment + 1] if segment + 1 < len(self._segment_offsets) else None
        return range(bisect_left(offsets, self._segment_offsets[segment]),
                     len(offsets) if end is None else bisect_left(offsets, end))

    # -- public reading -----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._record_offsets)

    def ids(self) -> list[Any]:
        """The first id-key value of the records, each once, in file order."""
        return list(self._index)

    def records(self) -> Iterator[Record]:
        """Every message record, in file order."""
        for segment in range(len(self._segment_offsets)):
            yield from self._segment_records(segment, self._segment_numbers(segment))

    def records_for(self, uid: Any) -> list[Record]:
        """The records whose id key first took the value ``uid``, in file order (empty if there are none)."""
        by_segment: dict[int, list[int]] = {}
        for number in self._index.get(uid, ()):
            segment = bisect_right(self._segment_offsets, self._record_offsets[number]) - 1
            by_segment.setdefault(segment, []).append(number)
        return [record for segment, numbers in by_segment.items() for record in self._segment_records(segment, numbers)]

    def explain(self, uid: Any, key: str, *, derived_from: Sequence[str] | None = None) -> str:
        """A readable history of ``key`` in the records of ``uid``.

        For each record: every value the key took, oldest first, with the time (ISO, UTC), user and step that
        wrote it and the attached record it came through; for its first value, the earlier keys that held the
        same value in an earlier write (how a pipeline key leads back to its raw Rapid Pro key). Those are looked
        for among ``derived_from``, the keys ``key`` is derived from (all keys when None), and only for values whose
        JSON text has at least 6 characters, so ``0``, ``1`` or ``"NA"`` are not traced to keys that merely hold the
        same short value (the texts ``"true"`` and ``"false"`` are long enough, hence the restriction to
        ``derived_from``).
        """
        numbers = self._index.get(uid)
        if not numbers:
            # The id is not echoed: one given in the wrong place may be a phone number (the command line names
            # the ids it may show before it asks).
            raise AuditTrailError(f"no record whose {self.id_key} was the one asked for", path=self.path)
        records = self.records_for(uid)
        lines = [f"{self.id_key} {_show(uid)}, key {key!r}: {len(records)} record(s) in {self.path.name}"]
        told: dict[tuple[str, ...], int] = {}  # a history already printed -> the record it was printed for
        for position, (number, record) in enumerate(zip(numbers, records), start=1):
            lines.append("")
            # Numbered in the file's order (chunk by chunk), which is not the row order of the CSVs.
            heading = (f"record {position} of {len(records)} (record {number + 1:,} of {self.path.name}; "
                       f"{self.id_key} now {_show(record.get(self.id_key))})")
            history = tuple(_explain_record(record, key, None if derived_from is None else frozenset(derived_from)))
            if history in told:  # a survey answer every message of the person carries: said once
                lines.append(f"{heading}: the same history as record {told[history]}")
                continue
            told[history] = position
            lines.append(f"{heading}:")
            lines.extend(history)
        return "\n".join(lines) + "\n"


def _identity(handle: BinaryIO) -> tuple[int, ...]:
    """What tells an open file from another one written in its place: device, inode, size and time of change."""
    status = os.fstat(handle.fileno())
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)


def _number(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise ValueError(f"{value!r} is not a table number")
    return value


def _parse(line: bytes, line_number: int, fail: Any) -> Any:
    try:
        return json.loads(line.rstrip(b",\n"))
    except ValueError as error:
        fail(line_number, f"not valid JSON ({error})")


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _when(timestamp: float | str) -> str:
    if isinstance(timestamp, str):
        return timestamp
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat()


class _Write(NamedTuple):
    step: Step
    key: str
    value: Any
    via: str | None  # the attached record it came through
    write: int  # which write (layer) of the record and its attached records, counted in the order listed


def _writes(record: Record, via: str | None, count: Iterator[int] | None = None) -> Iterator[_Write]:
    """Every key written into ``record``, in the order Record.history lists them."""
    count = itertools.count() if count is None else count
    for layer in record.layers:
        for attach_key, value in layer.data.items():
            if isinstance(value, Record):
                yield from _writes(value, attach_key if via is None else f"{via}/{attach_key}", count)
        write = next(count)
        for key, value in layer.data.items():
            if not isinstance(value, Record):
                yield _Write(layer.step, key, value, via, write)


def _explain_record(record: Record, key: str, derived_from: frozenset[str] | None) -> list[str]:
    writes = list(_writes(record, None))
    changes = [(position, write) for position, write in enumerate(writes) if write.key == key]
    if not changes:
        return [f"  key {key!r} was never written in this record"]
    lines = []
    for number, (position, (step, _, value, via, write)) in enumerate(changes, start=1):
        lines.append(f"  {number}. {_show(value)}")
        lines.append(f"     at {_when(step.timestamp)} by {step.user}, step {step.source}")
        if via is not None:
            lines.append(f"     through attached record {via!r}")
        if number == 1 and len(_show(value)) >= 6:
            # A value written by the same write under another key (two shows' ["NA"]) is not where it came from.
            earlier = [w for w in writes[:position]
                       if w.write != write and w.key != key and (derived_from is None or w.key in derived_from)
                       and type(w.value) is type(value) and w.value == value]
            for earlier_step, earlier_key, _, earlier_via, _ in earlier[:3]:
                through = "" if earlier_via is None else f" through attached record {earlier_via!r}"
                lines.append(f"     same value earlier under {earlier_key!r}{through}, at "
                             f"{_when(earlier_step.timestamp)} by {earlier_step.user}, step {earlier_step.source}")
    lines.append(f"  final value: {_show(record.get(key))}")
    return lines
