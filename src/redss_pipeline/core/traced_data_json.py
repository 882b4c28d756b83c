"""The 2019 TracedData JSON layout of ``Raw Data/<flow>.json``, read and written without jsonpickle.

2019 wrote raw files with jsonpickle, which instantiates whatever class a ``py/object`` names, so decoding a
file with it runs code chosen by the file. This module understands the layout itself (spec rapid-pro.md
section 4) and never imports or instantiates anything a file names:

- a file is a JSON list of record objects; a record object is its newest layer, holding ``_data`` (the keys
  that layer wrote), ``_metadata`` (``user``, ``source``, ``timestamp``), ``_sha`` and ``_prev`` (the older
  layers, nested, ``null`` for the first);
- the ``py/state`` variant (attributes wrapped in a ``"py/state"`` object) is accepted;
- ``{"py/id": n}`` refers to the n-th object of the file, counted as jsonpickle counts: the top-level list
  is 0, and every record layer, metadata object and list is numbered when a depth-first walk over sorted keys
  first meets it (plain dicts are not numbered).

Each 2019 layer becomes one :class:`~redss_pipeline.core.records.Layer` whose :class:`~redss_pipeline.core.records.Step`
carries that layer's own metadata, so a file read and written back keeps its data, layers, metadata and
``_sha`` values, and a file in the layout this module writes comes back byte for byte. Values met twice (a
step shared by many records, an attached survey record shared by several messages, a list) are written once
and then as ``py/id`` references. jsonpickle decided that by object identity; this writer decides it by value,
which gives the same file wherever equal values were one object (a 2019 file whose equal metadata objects
were written apart comes back with references instead, holding the same records).

``_sha`` is SHA-256 of ``json.dumps({"data": D, "prev_sha": P}, sort_keys=True)``, where ``D`` is the layer's
``_data`` with attached records replaced by their ``_sha`` and ``P`` the previous layer's ``_sha`` (``""`` for
the first). It is checked on read and computed on write, once per layer (an attached record's once per
record attaching it); records never carry it.

Caveat for 2019 stage-3 output: 2019 records were mutable, so a survey record attached to a message and
updated afterwards has a newer ``_sha`` than the one the attaching layer was hashed with. Such files fail the
check; read them with ``verify_sha=False``.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import re
import secrets
from array import array
from bisect import bisect_right
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Mapping, NoReturn, Sequence, TextIO

from redss_pipeline.core.errors import RawDataError, json_error_place, json_type
from redss_pipeline.core.records import Layer, Record, Step

__all__ = [
    "RawFile", "read_traced_data_file", "write_traced_data_file", "has_lone_surrogate_escape", "holds_lone_surrogate",
]

_TRACED_DATA = "core_data_modules.traced_data.traced_data.TracedData"
_METADATA = "core_data_modules.traced_data.traced_data.Metadata"
_ABSENT: Any = object()
_SCALARS = frozenset({str, int, float, bool, type(None)})
_RECORD_ATTRIBUTES = frozenset({"_data", "_metadata", "_prev", "_sha", "py/object"})
_METADATA_ATTRIBUTES = frozenset({"user", "source", "timestamp", "py/object"})

# A string as JSON text, ASCII only (the layout escapes every non-ASCII character).
_quote: Callable[[str], str] = json.JSONEncoder().encode

# json.dumps(obj, sort_keys=True) with Python's default separators: the text the 2019 _sha is computed from.
_SHA_JSON: Callable[[Any], str] = json.JSONEncoder(sort_keys=True).encode


def _layer_sha(data_for_sha: dict[str, Any], prev_sha: str) -> str:
    return hashlib.sha256(_SHA_JSON({"data": data_for_sha, "prev_sha": prev_sha}).encode("utf-8")).hexdigest()


# -- reading ----------------------------------------------------------------------------------------------


def read_traced_data_file(path: str | os.PathLike[str], *, verify_sha: bool = True) -> list[Record]:
    """Reads a raw data file in the 2019 TracedData layout; raises RawDataError naming file, record and field."""
    return [record for _, record in RawFile(path, verify_sha=verify_sha).scan()]


class RawFile:
    """A raw data file read as a stream, one record at a time, so no file is ever decoded whole.

    :meth:`scan` decodes every record in file order (checking each, ``_sha`` included) and remembers where it
    lies in the file (:meth:`contents` does the same without building records, for a reader that only needs
    some values); :meth:`read` decodes chosen records again from their place. Between the two the file keeps,
    per record, two integers (where it starts, and the number of its first object), and the metadata objects
    that a later record referred to with ``py/id`` (a raw file of stage 2 has one, written with its first
    record). Any other object a ``py/id`` refers to - a record or list of an earlier record, which the layout
    allows and the raw files of stage 2 never hold - is found by decoding its record again. It also keeps one
    string object per distinct key of its records, which every record it decodes shares (a few dozen keys).
    """

    _BLOCK = 1 << 20

    def __init__(self, path: str | os.PathLike[str], *, verify_sha: bool = True):
        self.path = Path(path)
        self._verify = verify_sha
        # A record's text runs from its start to the next record's start (the separator between them is
        # ignored when the record is decoded again); the last one's to ``_end``.
        self._starts = array("q")  # byte offset where each record starts
        self._end = 0  # byte offset where the last record ends
        self._bases = array("q")  # the object number of each record (the first object it numbers)
        self._steps: dict[int, Step] = {}  # object number -> Step, for the metadata objects records referred to
        self._keys: dict[str, str] = {}  # one string object per distinct key of its records (see _Reader)
        self._scanned = False

    def __len__(self) -> int:
        return len(self._starts)

    def scan(self) -> Iterator[tuple[int, Record]]:
        """Every record of the file with its position, in file order (the file is read once, in blocks)."""
        return self._checked(_Reader.record_of, keys=self._keys)

    def contents(self) -> Iterator[tuple[int, Mapping[str, Any]]]:
        """What each record maps its keys to, with its position, in file order: :meth:`scan` without building
        records. Every record is checked as :meth:`scan` checks it (``_sha`` included); the common raw record, one
        layer of plain values, is given as that layer's data (exactly the content its record would have), any
        other as its record. The mappings must not be changed."""
        return self._checked(_Reader.content_of, keys=None)  # read once and let go: no keys to share

    def _checked(self, content: Callable[["_Reader", "_Node"], Any], *,
                 keys: dict[str, str] | None) -> Iterator[tuple[int, Any]]:
        reader = _Reader(str(self.path), self._verify, outer=self._object, keys=keys)
        reader.register(None)  # the top-level list is object 0
        index = 0
        for start, end, item in self._items():
            base = reader.next_number
            self._starts.append(start)  # before decoding: a later record may need this one's end
            self._bases.append(base)
            value = content(reader, reader.decode(item, index))
            self._end = end
            reader.forget_from(base)
            yield index, value
            index += 1
        self._scanned = True

    def read(self, indices: Iterable[int]) -> list[Record]:
        """The records at ``indices`` (positions given by :meth:`scan`), in that order, decoded again."""
        if not self._scanned:
            raise ValueError("RawFile.read needs a completed scan")
        records = []
        with open(self.path, "rb") as handle:
            for index in indices:
                reader, node = self._decode(handle, index)
                records.append(reader.record_of(node))
        return records

    def _decode(self, handle: BinaryIO, index: int) -> tuple["_Reader", "_Node"]:
        start = self._starts[index]
        end = self._starts[index + 1] if index + 1 < len(self._starts) else self._end
        handle.seek(start)
        item, _ = _DECODER.raw_decode(handle.read(end - start).decode("utf-8"))
        reader = _Reader(str(self.path), False, outer=self._object, first_number=self._bases[index],
                         keys=self._keys)
        return reader, reader.decode(item, index)

    def _object(self, number: int) -> Any:
        """The object numbered ``number`` (a metadata object, or an object of an earlier record)."""
        step = self._steps.get(number)
        if step is not None:
            return step
        owner = bisect_right(self._bases, number) - 1
        with open(self.path, "rb") as handle:
            found = self._decode(handle, owner)[0].object(number)
        if type(found) is Step:
            self._steps[number] = found  # records refer to it: decoded again once, not once per record
        return found

    def _items(self) -> Iterator[tuple[int, int, Any]]:
        """(start byte, end byte, decoded JSON value) of each item of the file's top-level list."""
        source = str(self.path)
        decoder = json.JSONDecoder()
        utf8 = codecs.getincrementaldecoder("utf-8")()
        try:
            handle = open(self.path, "rb")
        except OSError as error:
            raise RawDataError(f"cannot be read: {error.strerror or error}", path=source) from None
        with handle:
            buffer, pos, byte_pos, at_end = "", 0, 0, False
            ascii_only = True
            bytes_read = 0

            def more() -> bool:
                nonlocal buffer, pos, at_end, ascii_only, bytes_read
                if at_end:
                    return False
                block = handle.read(self._BLOCK)
                bytes_read += len(block)
                try:
                    text = utf8.decode(block, final=not block)
                except UnicodeDecodeError as error:
                    # The decoder reports the place in what it held over from the last block and this block.
                    at = bytes_read - len(error.object) + error.start
                    raise RawDataError(f"not UTF-8 text ({error.reason} at byte {at})", path=source) from None
                at_end = not block
                buffer = buffer[pos:] + text
                pos = 0
                ascii_only = buffer.isascii()
                return True

            def advance(to: int) -> None:
                nonlocal pos, byte_pos
                byte_pos += (to - pos) if ascii_only else len(buffer[pos:to].encode("utf-8"))
                pos = to

            def skip_space() -> str:
                while True:
                    match = _SPACE.match(buffer, pos)
                    advance(match.end())  # type: ignore[union-attr]  # a run of spaces matches, even empty
                    if pos < len(buffer):
                        return buffer[pos]
                    if not more():
                        return ""

            def invalid() -> NoReturn:
                self._raise_json_error()

            first = skip_space()
            if first != "[":
                if first == "":
                    invalid()
                self._raise_not_a_list()
            advance(pos + 1)
            if skip_space() == "]":
                return
            count = 0
            while True:
                while True:
                    try:
                        item, end = decoder.raw_decode(buffer, pos)
                        break
                    except json.JSONDecodeError:
                        if not more():
                            invalid()
                    except RecursionError:
                        raise RawDataError("not a raw data file: JSON nested too deeply to be read",
                                           path=source) from None
                if has_lone_surrogate_escape(buffer, pos, end):
                    _refuse_lone_surrogates([item], source, first_index=count)
                count += 1
                start = byte_pos
                advance(end)
                yield start, byte_pos, item
                separator = skip_space()
                if separator == "]":
                    return
                if separator != ",":
                    invalid()
                advance(pos + 1)
                skip_space()

    def _raise_json_error(self) -> NoReturn:
        # The file is not valid JSON: decoded whole once, for the json module's exact line and column.
        try:
            text = self.path.read_text(encoding="utf-8")
            json.loads(text)
        except json.JSONDecodeError as error:
            raise RawDataError(f"not valid JSON ({json_error_place(error)})",
                               path=str(self.path)) from None
        raise RawDataError("not valid JSON", path=str(self.path))

    def _raise_not_a_list(self) -> NoReturn:
        try:
            value = json.loads(self.path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            self._raise_json_error()
        raise RawDataError(f"expected a JSON list of records, found {json_type(value)}", path=str(self.path))


_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


# Half of a UTF-16 pair written as a JSON escape (a cut emoji): a high one not followed by a low one, or a low one
# not preceded by a high one. Decoded, it is a string that is no text: it cannot be written as UTF-8 or hashed.
_LONE_SURROGATE_ESCAPE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)
_SURROGATE = re.compile("[\ud800-\udfff]")
# What every match of _LONE_SURROGATE_ESCAPE starts with. The full pattern tries its look-behind at every
# character, which cost a few seconds on the raw files of 100,000 messages; this one is searched for as a
# literal prefix, and texts without it (nearly all) are never searched with the full pattern.
_SURROGATE_ESCAPE_START = re.compile(r"\\u[dD][89a-fA-F]")


def has_lone_surrogate_escape(text: str, start: int = 0, end: int | None = None) -> bool:
    """Whether the JSON text ``text[start:end]`` holds an escaped lone surrogate (the look-behind may see before
    ``start``). Also used for the coded Coda files."""
    end = len(text) if end is None else end
    return (_SURROGATE_ESCAPE_START.search(text, start, end) is not None
            and _LONE_SURROGATE_ESCAPE.search(text, start, end) is not None)


def holds_lone_surrogate(value: Any) -> bool:
    """Whether a decoded JSON value holds a surrogate anywhere, keys included (pairs were joined into one character
    when the JSON was decoded, so any left is alone); walked without recursion, as deep as the json module reads.
    Used for the coded Coda files, whose errors name the message's own field."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def _refuse_lone_surrogates(items: list[Any], source_name: str, *, first_index: int = 0) -> None:
    """Names the record and raw key of the first string holding a lone surrogate (only called when the file's
    text has such an escape, so the walk is rare)."""
    for index, item in enumerate(items, start=first_index):
        pending: list[tuple[Any, str | None]] = [(item, None)]
        while pending:
            value, key = pending.pop()
            if isinstance(value, dict):
                pending.extend(reversed([(v, k) for k, v in value.items()]))  # in file order
            elif isinstance(value, list):
                pending.extend(reversed([(v, key) for v in value]))
            elif isinstance(value, str):
                found = _SURROGATE.search(value)
                if found:
                    raise RawDataError(
                        f"holds a lone surrogate {found.group()!r} (half of a UTF-16 pair, e.g. a cut emoji), which "
                        "is not text and cannot be written; correct the value in the file",
                        path=source_name, record=index, field=key,
                    )


class _Node:
    """One 2019 layer while a file is being decoded."""

    __slots__ = ("data", "step", "prev", "sha", "attached", "done", "record")

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.step: Step | None = None
        self.prev: _Node | None = None
        self.sha: str | None = None
        self.attached = False  # whether ``data`` holds attached records (_Node values)
        self.done = False
        self.record: Record | None = None


def _sub(where: str, attribute: str) -> str:
    return f"{where}.{attribute}" if where else attribute


class _Reader:
    """Decodes one file: numbers objects the way jsonpickle did so ``py/id`` references resolve."""

    def __init__(self, source_name: str, verify_sha: bool, *, outer: Callable[[int], Any] | None = None,
                 first_number: int = 0, keys: dict[str, str] | None = None):
        self._source = source_name
        self._verify = verify_sha
        # One string object per distinct key of the layers decoded (a RawFile shares its own between the
        # readers of the records it keeps): the records of one file then share their keys, rather than each
        # holding the new strings a JSON decoder makes. None: the keys are kept as decoded (contents read once).
        self._keys = keys
        # Object number -> object; numbers below those this reader has seen are asked of ``outer``.
        self._objects: dict[int, Any] = {}
        self._outer = outer
        self.next_number = first_number
        self._index = 0

    def _fail(self, where: str, message: str) -> NoReturn:
        raise RawDataError(message, path=self._source, record=self._index, field=where or None)

    def register(self, obj: Any) -> None:
        """Gives ``obj`` the next object number."""
        self._objects[self.next_number] = obj
        self.next_number += 1

    def decode(self, item: Any, index: int) -> _Node:
        """Decodes the top-level item at ``index`` (its first object gets the next number)."""
        self._index = index
        return self._node(item, "")

    def record(self, item: Any, index: int) -> Record:
        return self.record_of(self.decode(item, index))

    def object(self, number: int) -> Any:
        return self._lookup(number)

    def forget_from(self, first: int) -> None:
        """Forgets the objects numbered from ``first`` on (those of the record just read)."""
        for number in range(first, self.next_number):
            self._objects.pop(number, None)

    def _lookup(self, number: int) -> Any:
        found = self._objects.get(number, _ABSENT)
        if found is _ABSENT:
            if self._outer is None:
                raise KeyError(number)
            found = self._outer(number)
        return found

    # Every object kind of the layout has its decoder; each numbers its object before its contents.

    def _reference(self, obj: dict[str, Any], where: str) -> Any:
        number = obj["py/id"]
        if len(obj) != 1:
            self._fail(where, f"a py/id reference has other keys: {sorted(k for k in obj if k != 'py/id')}")
        if type(number) is not int or not 0 <= number < self.next_number:
            self._fail(where, f"py/id {number!r} refers to no object read before it")
        if number == 0:
            self._fail(where, "py/id 0 refers to the file's own top-level list")
        return self._lookup(number)

    def _attributes(self, obj: dict[str, Any], py_object: str, allowed: frozenset[str], where: str) -> dict:
        name = obj.get("py/object")
        if name is None:
            self._fail(where, "missing py/object")
        if name != py_object:
            self._fail(where, f"py/object is {name!r}, expected {py_object!r}")
        if "py/state" in obj:
            state = obj["py/state"]
            if len(obj) != 2:
                self._fail(where, f"unexpected keys beside py/state: {sorted(set(obj) - {'py/object', 'py/state'})}")
            if type(state) is not dict:
                self._fail(_sub(where, "py/state"), f"expected an object, found {json_type(state)}")
            obj = state
        unknown = obj.keys() - allowed
        if unknown:
            self._fail(where, f"unexpected attribute(s) {sorted(unknown)}")
        return obj

    def _node(self, obj: Any, where: str) -> _Node:
        """Decodes a record object (a layer and, through ``_prev``, its older layers)."""
        if type(obj) is not dict:
            self._fail(where, f"expected a TracedData object, found {json_type(obj)}")
        if "py/id" in obj:
            return self._node_reference(obj, where)
        node = self._single_layer_node(obj, where)
        if node is not None:
            return node
        chain: list[tuple[_Node, str]] = []
        while True:
            attributes = self._attributes(obj, _TRACED_DATA, _RECORD_ATTRIBUTES, where)
            node = _Node()
            self.register(node)
            chain.append((node, where))
            if "_data" not in attributes:
                self._fail(where, "missing _data")
            if "_metadata" not in attributes:
                self._fail(where, "missing _metadata")
            self._data(node, attributes["_data"], _sub(where, "_data"))
            node.step = self._metadata(attributes["_metadata"], _sub(where, "_metadata"))
            sha = attributes.get("_sha")
            if sha is not None and type(sha) is not str:
                self._fail(_sub(where, "_sha"), f"expected a string, found {json_type(sha)}")
            node.sha = sha
            prev = attributes.get("_prev")
            where = _sub(where, "_prev")
            if prev is None:
                break
            if type(prev) is dict and "py/id" in prev:
                node.prev = self._node_reference(prev, where)
                break
            if type(prev) is not dict:
                self._fail(where, f"expected a TracedData object or null, found {json_type(prev)}")
            obj = prev
        for (newer, _), (older, _) in zip(chain, chain[1:]):
            newer.prev = older
        for node, node_where in reversed(chain):
            self._check_sha(node, node_where)
            node.done = True
        return chain[0][0]

    def _single_layer_node(self, obj: dict[str, Any], where: str) -> _Node | None:
        """The most common record object decoded in one go, or None for any other (decoded by :meth:`_node`):
        a single layer of plain values, its metadata a reference to one read before, its ``_sha`` given."""
        if obj.keys() != _RECORD_ATTRIBUTES or obj["_prev"] is not None or obj["py/object"] != _TRACED_DATA:
            return None
        data, metadata, sha = obj["_data"], obj["_metadata"], obj["_sha"]
        if type(data) is not dict or type(sha) is not str or type(metadata) is not dict or len(metadata) != 1:
            return None
        number = metadata.get("py/id")
        if type(number) is not int or not 0 < number < self.next_number:
            return None
        step = self._lookup(number)
        if type(step) is not Step or not _SCALARS.issuperset(map(type, data.values())):
            return None
        node = _Node()
        self.register(node)
        node.data = self._layer_data(data)
        node.step = step
        node.sha = sha
        self._check_sha(node, where)
        node.done = True
        return node

    def _layer_data(self, obj: dict[str, Any]) -> dict[str, Any]:
        """A layer of plain values: its keys sorted (as 2019 wrote them) and shared (see ``_keys``)."""
        if self._keys is None:
            return dict(sorted(obj.items()))
        ordered = sorted(obj)
        return dict(zip(map(self._keys.setdefault, ordered, ordered), map(obj.__getitem__, ordered)))

    def _node_reference(self, obj: dict[str, Any], where: str) -> _Node:
        target = self._reference(obj, where)
        if not isinstance(target, _Node):
            self._fail(where, f"py/id {obj['py/id']} refers to {type(target).__name__}, not a record")
        if not target.done:
            self._fail(where, f"py/id {obj['py/id']} refers to a record that contains this reference")
        return target

    def _check_sha(self, node: _Node, where: str) -> None:
        if not self._verify:
            return
        data = node.data
        if node.attached:
            data = {k: (v.sha if isinstance(v, _Node) else v) for k, v in data.items()}
        prev_sha = "" if node.prev is None else node.prev.sha
        try:
            computed = _layer_sha(data, prev_sha or "")
        except (TypeError, ValueError) as error:
            self._fail(_sub(where, "_data"), f"cannot be hashed: {error}")
        if node.sha is None:
            node.sha = computed
        elif node.sha != computed:
            self._fail(
                _sub(where, "_sha"),
                f"_sha {node.sha[:16]}... does not match the layer's content (computed {computed[:16]}...)",
            )

    def _metadata(self, obj: Any, where: str) -> Step:
        if type(obj) is not dict:
            self._fail(where, f"expected a Metadata object, found {json_type(obj)}")
        if "py/id" in obj:
            target = self._reference(obj, where)
            if not isinstance(target, Step):
                self._fail(where, f"py/id {obj['py/id']} refers to {type(target).__name__}, not a Metadata object")
            return target
        attributes = self._attributes(obj, _METADATA, _METADATA_ATTRIBUTES, where)
        for name in ("user", "source", "timestamp"):
            if name not in attributes:
                self._fail(where, f"missing {name}")
        user, source, timestamp = attributes["user"], attributes["source"], attributes["timestamp"]
        if type(user) is not str:
            self._fail(_sub(where, "user"), f"expected a string, found {json_type(user)}")
        if type(source) is not str:
            self._fail(_sub(where, "source"), f"expected a string, found {json_type(source)}")
        if type(timestamp) not in (float, int, str):
            self._fail(_sub(where, "timestamp"), f"expected a number or a string, found {json_type(timestamp)}")
        step = Step(user, source, timestamp)
        self.register(step)  # metadata holds no numbered objects, so numbering it now is in order
        return step

    def _data(self, node: _Node, obj: Any, where: str) -> None:
        if type(obj) is not dict:
            self._fail(where, f"expected an object, found {json_type(obj)}")
        if _SCALARS.issuperset(map(type, obj.values())):
            # The common layer of texts, numbers and times: no value is numbered or decoded further.
            node.data = self._layer_data(obj)
            return
        data = node.data
        for key in sorted(obj):
            value = obj[key]
            kind = type(value)
            if kind is str or kind is int or kind is float or kind is bool or value is None:
                data[key] = value
            elif kind is list:
                data[key] = self._list(value, f"{where}[{key!r}]")
            elif "py/object" in value and value["py/object"] == _TRACED_DATA:
                data[key] = self._node(value, f"{where}[{key!r}]")
                node.attached = True
            elif "py/id" in value:
                target = self._reference(value, f"{where}[{key!r}]")
                if isinstance(target, _Node):
                    data[key] = self._node_reference(value, f"{where}[{key!r}]")
                    node.attached = True
                elif isinstance(target, list):
                    data[key] = target
                else:
                    self._fail(f"{where}[{key!r}]", f"py/id {value['py/id']} refers to a Metadata object")
            else:
                data[key] = self._dict(value, f"{where}[{key!r}]")

    def _value(self, value: Any, where: str) -> Any:
        """A value nested inside a dict or list of ``_data``: plain JSON, lists numbered, no records."""
        kind = type(value)
        if kind is list:
            return self._list(value, where)
        if kind is dict:
            if "py/id" in value:
                target = self._reference(value, where)
                if not isinstance(target, list):
                    self._fail(where, f"py/id {value['py/id']} refers to {type(target).__name__} inside a value")
                return target
            return self._dict(value, where)
        return value

    def _list(self, value: list[Any], where: str) -> list[Any]:
        result: list[Any] = []
        self.register(result)
        for position, item in enumerate(value):
            result.append(self._value(item, f"{where}[{position}]"))
        return result

    def _dict(self, value: dict[str, Any], where: str) -> dict[str, Any]:
        for key in value:
            if key.startswith("py/"):
                if key == "py/object":
                    self._fail(where, f"unsupported py/object {value[key]!r} (only TracedData records are read)")
                self._fail(where, f"unsupported jsonpickle tag {key!r}")
        return {key: self._value(value[key], f"{where}[{key!r}]") for key in sorted(value)}

    # -- from decoded layers to Records -------------------------------------------------------------------

    def content_of(self, node: _Node) -> Mapping[str, Any]:
        """The effective content of the record ``node`` is the newest layer of: for one layer of plain values
        that layer's data (what :meth:`record_of` would give it, as ``Record.create`` keeps the data's values),
        otherwise the record built."""
        if node.prev is None and not node.attached:
            return node.data
        return self.record_of(node)

    def record_of(self, node: _Node) -> Record:
        if node.record is not None:
            return node.record
        if node.prev is None and not node.attached:  # one layer of plain values: the common raw record
            assert node.step is not None
            node.record = Record.create(node.step, node.data)
            return node.record
        chain = []
        base: _Node | None = node
        while base is not None and base.record is None:
            chain.append(base)
            base = base.prev
        layers = list(base.record.layers) if base is not None and base.record is not None else []
        for layer_node in reversed(chain):
            data = layer_node.data
            if layer_node.attached:
                data = {k: (self.record_of(v) if isinstance(v, _Node) else v) for k, v in data.items()}
            assert layer_node.step is not None
            layers.append(Layer(layer_node.step, data))
        node.record = Record.from_layers(tuple(layers))
        return node.record


# -- writing ----------------------------------------------------------------------------------------------


def write_traced_data_file(path: str | os.PathLike[str], records: Iterable[Record]) -> None:
    """Writes ``records`` to ``path`` atomically: a crash leaves the old file or the new one, never half."""
    path = Path(path)
    records = list(records)
    with _atomic_text_file(path) as handle:
        buffer: list[str] = []

        def emit(text: str) -> None:
            buffer.append(text)
            if len(buffer) >= 4096:
                handle.write("".join(buffer))
                buffer.clear()

        _Writer(emit, str(path)).write(records)
        handle.write("".join(buffer))


class _atomic_text_file:
    """A temporary file beside ``path`` that replaces ``path`` when the ``with`` block succeeds."""

    def __init__(self, path: Path):
        self._path = path

    def __enter__(self) -> TextIO:
        # A new name opened exclusively (not mkstemp, which makes the file private): the file gets the
        # permissions the user's umask gives any output.
        self._temporary = self._path.with_name(f".{self._path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        self._handle = open(self._temporary, "x", encoding="utf-8", newline="\n")
        return self._handle

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        try:
            if kind is None:
                self._handle.flush()
                os.fsync(self._handle.fileno())
            self._handle.close()
            if kind is None:
                os.replace(self._temporary, self._path)
        finally:
            if os.path.exists(self._temporary):
                os.unlink(self._temporary)


class _Writer:
    """Emits the layout exactly as ``json.dumps(..., sort_keys=True, indent=2, separators=(", ", ": "))``
    would print the jsonpickle form, numbering objects in the same walk.

    jsonpickle refers back to an object it meets again by the object's identity; this writer refers back to a
    value it wrote before, which gives the same file wherever equal values are the same object (the records
    stage 2 writes share one step per flow and nothing else). A metadata object is written once per
    :class:`Step` value, a list once per value, and an attached record once per value; a top-level record is
    always written in full."""

    def __init__(self, emit: Any, target: str):
        self._emit = emit
        self._target = target
        self._count = 1  # the number of the next object; the top-level list is object 0
        # py/id of each metadata object written, by its Step (a named tuple, compared by user, source and
        # time). Bounded by the distinct steps of the records written.
        self._steps: dict[Step, int] = {}
        # py/id of each list written, by its repr (which tells 1, 1.0 and True apart, as the file does, and
        # gives the order of nested keys, which the file sorts). Bounded by the distinct lists written.
        self._lists: dict[str, int] = {}
        # py/id of each attached record written, by the value key _summary gives. Bounded by the distinct
        # attached records written.
        self._attached: dict[tuple[Any, ...], int] = {}
        self._index = 0

    def _fail(self, field: str | None, message: str) -> NoReturn:
        raise RawDataError(message, path=self._target, record=self._index, field=field)

    def write(self, records: Sequence[Record]) -> None:
        emit = self._emit
        if not records:
            emit("[]\n")
            return
        emit("[\n  ")
        for index, record in enumerate(records):
            self._index = index
            if index:
                emit(", \n  ")
            self._record(record, 1, attached=False)
        emit("\n]\n")

    def _summary(self, record: Record) -> tuple[list[str], tuple[Any, ...]]:
        """The ``_sha`` of each layer of ``record``, oldest first, and a key that determines the record's value:
        its newest ``_sha`` (which covers the data of every layer, attached records by their ``_sha``) with each
        layer's step and the keys of the records it attaches (which cover their steps)."""
        if not isinstance(record, Record):
            self._fail(None, f"expected a Record, found {type(record).__name__}")
        if not record.layers:
            self._fail(None, "a record with no layers cannot be written (TracedData always has one)")
        shas: list[str] = []
        parts = []
        prev = ""
        for position, layer in enumerate(record.layers):
            data = layer.data
            attached: tuple[Any, ...] = ()
            if any(isinstance(v, Record) for v in data.values()):
                summaries = {k: self._summary(v) for k, v in data.items() if isinstance(v, Record)}
                data = {k: (summaries[k][0][-1] if k in summaries else v) for k, v in data.items()}
                attached = tuple(summary[1] for summary in summaries.values())
            try:
                prev = _layer_sha(data if type(data) is dict else dict(data), prev)
            except (TypeError, ValueError) as error:
                self._fail(f"layer {position}", f"data cannot be written as JSON: {error}")
            shas.append(prev)
            parts.append((layer.step, attached))
        return shas, (prev, tuple(parts))

    def _record(self, record: Record, level: int, *, attached: bool) -> None:
        emit = self._emit
        shas, key = self._summary(record)
        if attached:
            number = self._attached.get(key)
            if number is not None:
                emit(_reference(number, level))
                return
            self._attached[key] = self._count
        self._count += 1  # the newest layer is the record's own object
        layers = record.layers
        newest = len(layers) - 1
        for position in range(newest, -1, -1):
            depth = level + newest - position
            inner = "\n" + "  " * (depth + 1)
            if position != newest:
                self._count += 1  # older layers are numbered objects too, never referred to on their own
            emit("{" + inner + '"_data": ')
            self._data(layers[position].data, depth + 1, position)
            emit(", " + inner + '"_metadata": ')
            self._metadata(layers[position].step, depth + 1)
            emit(", " + inner + '"_prev": ')
        emit("null")
        for position in range(newest + 1):
            depth = level + newest - position
            inner = "\n" + "  " * (depth + 1)
            emit(f', {inner}"_sha": "{shas[position]}", {inner}"py/object": "{_TRACED_DATA}"\n' + "  " * depth + "}")

    def _metadata(self, step: Step, level: int) -> None:
        if type(step.user) is not str or type(step.source) is not str:
            self._fail("_metadata", "a step's user and source must be strings")
        timestamp = step.timestamp
        if type(timestamp) is str:
            stamp = _quote(timestamp)
        elif type(timestamp) in (float, int):
            stamp = _scalar(timestamp)
        else:
            self._fail("_metadata", f"timestamp must be a number or a string, found {type(timestamp).__name__}")
        number = self._steps.get(step)
        if number is not None:
            self._emit(_reference(number, level))
            return
        self._steps[step] = self._count
        self._count += 1
        inner = "\n" + "  " * (level + 1)
        self._emit(
            f'{{{inner}"py/object": "{_METADATA}", {inner}"source": {_quote(step.source)}, '
            f'{inner}"timestamp": {stamp}, {inner}"user": {_quote(step.user)}\n' + "  " * level + "}"
        )

    def _data(self, data: Any, level: int, position: int) -> None:
        emit = self._emit
        if not data:
            emit("{}")
            return
        inner = "\n" + "  " * (level + 1)
        separator = "{" + inner
        for key in sorted(data):
            if type(key) is not str:
                self._fail(f"layer {position}", f"key {key!r} is not a string")
            value = data[key]
            emit(separator + _quote(key) + ": ")
            separator = ", " + inner
            if type(value) is str:
                emit(_quote(value))
            elif isinstance(value, Record):
                self._record(value, level + 1, attached=True)
            else:
                self._value(value, level + 1, position, key)
        emit("\n" + "  " * level + "}")

    def _value(self, value: Any, level: int, position: int, key: str) -> None:
        emit = self._emit
        kind = type(value)
        if kind is str:
            emit(_quote(value))
        elif kind is list:
            text = repr(value)
            number = self._lists.get(text)
            if number is not None:
                emit(_reference(number, level))
                return
            self._lists[text] = self._count
            self._count += 1
            if not value:
                emit("[]")
                return
            inner = "\n" + "  " * (level + 1)
            separator = "[" + inner
            for item in value:
                emit(separator)
                separator = ", " + inner
                self._value(item, level + 1, position, key)
            emit("\n" + "  " * level + "]")
        elif kind is dict:
            if not value:
                emit("{}")
                return
            inner = "\n" + "  " * (level + 1)
            separator = "{" + inner
            for item_key in sorted(value):
                if type(item_key) is not str:
                    self._fail(f"layer {position} key {key!r}", f"nested key {item_key!r} is not a string")
                emit(separator + _quote(item_key) + ": ")
                separator = ", " + inner
                self._value(value[item_key], level + 1, position, key)
            emit("\n" + "  " * level + "}")
        elif value is None or kind is bool or kind is int or kind is float:
            emit(_scalar(value))
        else:
            self._fail(f"layer {position} key {key!r}", f"a {kind.__name__} value cannot be written as JSON")


def _reference(number: int, level: int) -> str:
    """``{"py/id": n}`` as the indented dump prints it (a one-key object spread over three lines)."""
    return f'{{\n{"  " * (level + 1)}"py/id": {number}\n{"  " * level}}}'


def _scalar(value: Any) -> str:
    """A JSON scalar exactly as the json module prints it."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is float:
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "Infinity" if value > 0 else "-Infinity"
        return float.__repr__(value)
    return int.__repr__(value)
