"""Coda V2 files: exporting messages for coders and merging their codes back into records.

The pipeline never talks to Coda. It writes a **messages file** per dataset (``Outputs/Coda Files/<name>.json``),
coders work on it in Coda, and the data tools download the coded messages into ``Coded Coda Files/``, which the
next stage-3 run merges back (spec coda.md). This module holds both directions:

| function                                   | spec            | does                                               |
| ------------------------------------------ | --------------- | -------------------------------------------------- |
| ``message_id(text)``                       | coda.md 2       | SHA-256 hex of the UTF-8 text                      |
| ``coda_messages(records, ...)``            | coda.md 4.1-4.5 | records -> de-duplicated Coda message dicts        |
| ``CodaExport``                             | coda.md 4.1-4.5 | the same, record by record, in a scratch database  |
| ``write_coda_file(path, messages)``        | coda.md 4.6     | the exact 2019 JSON layout, streamed, atomically   |
| ``read_coded_file(path)``                  | coda.md 5.1     | coded file -> ``CodedMessages`` lookup             |
| ``SingleCodedImport(coded, ...).value``    | coda.md 5.2     | newest label per message, or NR when unchecked     |
| ``MultiCodedImport(coded, ...).value``     | coda.md 5.3     | latest label per duplicate scheme, or ``[NR]``     |
| ``current_labels(coded, mid, scheme, ...)``| coda.md 5.2/5.3 | a coder's current labels of one message            |

Everything except the two file functions and the export's scratch database is pure: no clock (the run's
``label_time`` is passed in), no paths beyond the one used in error messages, and records are never changed: the
imports decide a coded field's value, and the manual codes step (:mod:`redss_pipeline.generate.manual_codes`)
writes it.

Both directions work per *distinct message id*, not per record: a survey answer is repeated on every message of
its respondent, so a million records typically hold far fewer distinct texts. The lookup is built once, each
distinct result is decided once, and the label objects are shared by every record that carries them.
"""

from __future__ import annotations

import codecs
import hashlib
import itertools
import json
import operator
import os
import pickle
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, NamedTuple, Sequence

from dateutil.parser import isoparse

from redss_pipeline.core.atomic_files import atomic_open
from redss_pipeline.core.code_scheme import NA, NC, NR, NS, CodeScheme
from redss_pipeline.core.disk_errors import describe_os_error
from redss_pipeline.core.errors import CodaFileError, PipelineError, json_error_place, json_type
from redss_pipeline.core.labels import MANUALLY_UNCODED, control_label, is_checked
from redss_pipeline.core.scratch_database import ScratchDatabase
from redss_pipeline.core.traced_data_json import has_lone_surrogate_escape, holds_lone_surrogate

__all__ = [
    "SINGLE_CODED_IMPORT_ORIGIN",
    "MULTI_CODED_IMPORT_ORIGIN",
    "message_id",
    "coda_messages",
    "CodaExport",
    "CodaFileExports",
    "ExportedMessages",
    "write_coda_file",
    "CodedMessages",
    "read_coded_file",
    "coded_texts",
    "read_messages_text",
    "messages_coded_in",
    "messages_file_encoding",
    "current_labels",
    "SingleCodedImport",
    "MultiCodedImport",
]

SINGLE_CODED_IMPORT_ORIGIN = "redss_pipeline.coda.import_single_coded@1"
"""``Origin.OriginID`` of the NR labels the single-coded import writes (spec README decision 10)."""

MULTI_CODED_IMPORT_ORIGIN = "redss_pipeline.coda.import_multi_coded@1"
"""``Origin.OriginID`` of the NR labels the multi-coded import writes."""

# Optional label keys copied to an exported label when they are not null (coda.md 4.5).
_OPTIONAL_LABEL_KEYS = ("Checked", "Confidence", "LabelSet")


def message_id(text: str) -> str:
    """The Coda MessageID of a text: SHA-256 hex of its UTF-8 bytes, so equal texts are one Coda message."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- export ------------------------------------------------------------------------------------------------------


def coda_messages(
    records: Iterable[Mapping[str, Any]],
    *,
    raw_field: str,
    time_field: str,
    id_field: str,
    coded_fields: Sequence[tuple[str, CodeScheme]],
) -> list[dict[str, Any]]:
    """The Coda messages for ``records`` (coda.md section 4, steps 1-5), ready for :func:`write_coda_file`.

    The records are taken in order by a :class:`CodaExport` (see there for the rules) of a scratch database of
    their own; meant for a few records (the ICR sample), as the messages come back as one list.
    """
    with ScratchDatabase() as scratch:
        export = CodaExport(scratch, raw_field=raw_field, time_field=time_field, id_field=id_field,
                            coded_fields=coded_fields)
        for position, record in enumerate(records):
            export.add(record, position)
        return list(export.messages())


class _Entry(NamedTuple):
    """What a Coda export keeps of a record: its message id, creation time (``instant``: microseconds since 1970
    UTC, so times with different UTC offsets compare as instants), position, text, the codes that must agree
    (``signature``, see :func:`_signature_text`) and the values of the coded fields (pickled once stored)."""

    mid: str
    instant: int
    position: int
    text: str
    signature: str
    coded: Any


def _comes_first(instant: int, position: int, kept: _Entry) -> bool:
    """Rule 3 of :class:`CodaExport`, the only place it is stated: whether a record of the message id of ``kept``,
    at ``instant`` and ``position``, stands for the message instead (the earlier by time, then by position)."""
    return (instant, position) < (kept.instant, kept.position)


def _earliest(kept: _Entry, other: _Entry, fields: Sequence[str]) -> _Entry:
    """Rules 2 and 3 of :class:`CodaExport` for two records of one message id: their codes must agree (decided
    only here), and the one that comes first (:func:`_comes_first`) stands for the message."""
    if other.signature != kept.signature:
        codes, differing = _signature(kept.signature), _signature(other.signature)
        index = next(i for i, (a, b) in enumerate(zip(codes, differing)) if a != b)
        raise CodaFileError(
            f"records with the same message id (the same text) carry different codes: "
            f"{_shown(codes[index])} and {_shown(differing[index])}",
            record=f"MessageID {kept.mid!r}", field=fields[index],
        )
    return other if _comes_first(other.instant, other.position, kept) else kept


# A CodaExport's tables: each chunk's earliest entry per message id (``entries``), then, once all are in, the
# earliest per message id of the whole run, stored earliest first (``chosen``: their rowids give the order).
_COLUMNS = ("mid TEXT NOT NULL, instant INTEGER NOT NULL, position INTEGER NOT NULL, text TEXT NOT NULL, "
            "signature TEXT NOT NULL, coded BLOB NOT NULL")


class CodaExport:
    """The messages of one Coda file, gathered record by record (coda.md section 4, steps 1-5).

    1. only records having ``raw_field`` take part;
    2. records sharing a message id must carry the same codes in every coded field (the same CodeID, the same
       set of CodeIDs for a list, or all absent), since they become one Coda message;
    3. the earliest record of each message id (by parsed ``time_field``; ties keep the order of the records'
       ``position``) stands for it, and messages come out in that order;
    4. a record coded NA (or NS) in *every* coded field is a missing answer and is left out; NA or NS in only
       some fields is an error;
    5. each message carries its text, its creation time in UTC, and the labels of the coded fields in
       ``coded_fields`` order, leaving out absent fields and NC labels. No ``SequenceNumber`` is written:
       Coda's ``add`` tool assigns one.

    Records may come in any order as long as ``position`` is their place in the stage's message order, so the
    records of a run can be added respondent by respondent. Rules 2 and 3 are decided by :func:`_earliest`, first
    among the records added since the last :meth:`take` (a chunk's, held in memory), then, in :meth:`choose`,
    among the entries :meth:`store` wrote to the run's scratch database, read back grouped by message id; so memory
    does not grow with the number of distinct texts. ``coded_fields`` is empty for the RQA files (every message
    then has ``"Labels": []``). Errors are CodaFileErrors naming the message id and field; callers add the file
    with ``error.with_context(path=...)``.
    """

    def __init__(self, scratch: ScratchDatabase, *, raw_field: str, time_field: str, id_field: str,
                 coded_fields: Sequence[tuple[str, CodeScheme]]):
        self._scratch = scratch
        self.raw_field = raw_field
        self._time_field = time_field
        self._id_field = id_field
        self._fields = [(name, _FieldCodes.of(scheme)) for name, scheme in coded_fields]
        self._names = [name for name, _ in self._fields]
        self._parse_time = _TimeParser(time_field)
        self._entries = scratch.new_table("coda_entries", _COLUMNS)
        self._chosen: str | None = None  # the table choose() makes, once every record is in
        # message id -> (the earliest entry since the last take, its record's time value)
        self._chunk: dict[str, tuple[_Entry, Any]] = {}
        self._signatures: dict[tuple[Any, ...], str] = {}  # codes -> their text, since the last take

    def add(self, record: Mapping[str, Any], position: int) -> None:
        """Takes part ``record``, found at ``position`` in the message order."""
        raw_field = self.raw_field
        if raw_field not in record:
            return
        mid = record.get(self._id_field)
        if not isinstance(mid, str) or not mid:
            raise CodaFileError(
                f"a record with {raw_field!r} has no message id (found {mid!r})",
                record=f"at position {position}", field=self._id_field,
            )
        names = self._names
        coded = [record.get(name) for name in names]
        time_value = record.get(self._time_field)
        earlier = self._chunk.get(mid)
        if earlier is not None and all(map(operator.is_, coded, earlier[0].coded)):
            # The very label objects of the entry kept: a survey answer repeats on every message of its
            # respondent, and an answer text ("male") on many respondents' messages, with the labels the
            # auto-coder made once for it. Its codes are the kept entry's (rule 2 holds), so only rule 3 is
            # left to decide; its time is often the very same value too.
            kept = earlier[0]
            instant = kept.instant if earlier[1] is time_value else self._parse_time(time_value, mid)
            if _comes_first(instant, position, kept):
                self._chunk[mid] = (_Entry(mid, instant, position, record[raw_field], kept.signature, coded),
                                    time_value)
            return
        codes = tuple([_code_signature(value, mid, name) for value, name in zip(coded, names)])
        signature = self._signatures.get(codes)
        if signature is None:
            signature = self._signatures[codes] = _signature_text(codes)
        instant = self._parse_time(time_value, mid)
        entry = _Entry(mid, instant, position, record[raw_field], signature, coded)
        if earlier is not None:
            entry = _earliest(earlier[0], entry, names)
            if entry is earlier[0]:
                return
        self._chunk[mid] = (entry, time_value)

    def take(self) -> list[tuple[Any, ...]]:
        """The entries kept since the last :meth:`take`, as rows for :meth:`store`, and forgets them. Taking
        touches no database, so a worker process can gather a chunk's entries and send them to the process that
        stores them."""
        rows = [(mid, instant, position, text, signature, pickle.dumps(coded, protocol=pickle.HIGHEST_PROTOCOL))
                for (mid, instant, position, text, signature, coded), _ in self._chunk.values()]
        self._chunk = {}
        self._signatures = {}
        self._parse_time.forget()
        return rows

    def store(self, rows: list[tuple[Any, ...]]) -> None:
        """Writes rows from :meth:`take` to the scratch database (one insert; the caller may group the stores of
        a chunk in one transaction)."""
        if rows:
            self._scratch.insert(self._entries, rows, width=len(_Entry._fields))

    def choose(self) -> None:
        """Rules 2 and 3 over every entry written (once; :meth:`messages` does it when needed): the entries of
        each message id are read back together and reduced by :func:`_earliest`, and the chosen ones stored
        earliest first. Codes that disagree are a CodaFileError naming the message id and the field."""
        if self._chosen is not None:
            return
        self.store(self.take())
        chosen = self._scratch.new_table("coda_chosen", _COLUMNS)
        by_message = self._scratch.new_table("coda_by_message", _COLUMNS)

        def reduced() -> Iterator[tuple[Any, ...]]:
            kept: tuple[Any, ...] | None = None
            for row in self._scratch.query(f"SELECT * FROM {self._entries} ORDER BY mid, instant, position"):
                if kept is not None and kept[0] == row[0]:  # the same message id (most texts have one entry)
                    kept = _earliest(_Entry(*kept), _Entry(*row), self._names)
                    continue
                if kept is not None:
                    yield kept
                kept = row
            if kept is not None:
                yield kept

        with self._scratch.transaction():
            self._scratch.insert(by_message, reduced(), width=len(_Entry._fields))
            self._scratch.execute(f"INSERT INTO {chosen} SELECT * FROM {by_message} ORDER BY instant, position")
            for table in (self._entries, by_message):
                self._scratch.execute(f"DROP TABLE {table}")  # their pages are reused by the tables made later
        self._chosen = chosen

    def messages(self) -> Iterator[dict[str, Any]]:
        """The Coda messages, earliest first, ready for :func:`write_coda_file`; read from the scratch database
        as they are used (each call reads them again)."""
        self.choose()
        fields = self._fields
        for mid, instant, text, coded in self._scratch.query(
                f"SELECT mid, instant, text, coded FROM {self._chosen} ORDER BY rowid"):
            values = dict(zip(self._names, pickle.loads(coded)))
            if fields and _is_missing_answer(values, fields, mid):
                continue
            labels = []
            for name, codes in fields:
                value = values[name]
                if value is None:
                    continue
                if not isinstance(value, dict):
                    raise CodaFileError(
                        "a multi-coded field (a list of labels) cannot be exported to Coda; only single labels can",
                        record=f"MessageID {mid!r}", field=name,
                    )
                if value["CodeID"] == codes.nc:
                    continue
                if not codes.scheme.has_code_id(value["CodeID"]):
                    raise CodaFileError(
                        f"CodeID {value['CodeID']!r} is not a code of scheme {codes.scheme.name!r} "
                        f"({codes.scheme.scheme_id})",
                        record=f"MessageID {mid!r}", field=name,
                    )
                labels.append(_exported_label(value, mid, name))
            yield {
                "MessageID": mid,
                "Text": text,
                "CreationDateTimeUTC": (_EPOCH + timedelta(microseconds=instant)).isoformat(),
                "Labels": labels,
            }


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def _instant(time: datetime) -> int:
    """An aware time as microseconds since 1970 UTC (the ``instant`` of an entry)."""
    return (time - _EPOCH) // _MICROSECOND


class CodaFileExports:
    """The exports of several Coda files fed the same records a chunk at a time (a run's RQA files, or its survey
    files): an error names its file, and a chunk's entries go to the scratch database in one transaction."""

    def __init__(self, scratch: ScratchDatabase, exports: Sequence[tuple[str, CodaExport]]):
        self._scratch = scratch
        self._exports = [(f"Outputs/Coda Files/{file_name}", file_name, export) for file_name, export in exports]
        self._raw_fields = frozenset(export.raw_field for _, export in exports)

    def entries(self, positions: Sequence[int], records: Sequence[Mapping[str, Any]]) -> list[list[tuple[Any, ...]]]:
        """A chunk's records, found at ``positions``, reduced to each file's entries (rules 1-3 within the
        chunk), for :meth:`store`. Touches no database (see :meth:`CodaExport.take`)."""
        # A record takes part in the few files whose raw field it has (a show message in its show's RQA file):
        # those are found for all files at once, in C, rather than by asking each file in turn.
        raw_fields = self._raw_fields
        for position, record in zip(positions, records, strict=True):
            present = record.keys() & raw_fields
            if not present:
                continue
            for path, _, export in self._exports:
                if export.raw_field in present:
                    try:
                        export.add(record, position)
                    except PipelineError as error:
                        raise error.with_context(path=path) from None
        return [export.take() for _, _, export in self._exports]

    def store(self, entries: list[list[tuple[Any, ...]]]) -> None:
        """Writes a chunk's :meth:`entries` to the scratch database, in one transaction."""
        with self._scratch.transaction():
            for (_, _, export), rows in zip(self._exports, entries):
                export.store(rows)

    def files(self) -> dict[str, ExportedMessages]:
        """Each file's Coda messages, by file name in the order given, read from the scratch database as used."""
        files: dict[str, ExportedMessages] = {}
        for path, file_name, export in self._exports:
            try:
                export.choose()
            except PipelineError as error:
                raise error.with_context(path=path) from None
            files[file_name] = ExportedMessages(export, path)
        return files


class ExportedMessages:
    """The messages of one Coda file of the run, as a stream read from the scratch database (each iteration reads
    them again; stage 3 reads them once, counting the coding progress as it writes the file); errors name the
    file."""

    def __init__(self, export: CodaExport, path: str):
        self._export = export
        self.path = path

    def __iter__(self) -> Iterator[dict[str, Any]]:
        try:
            yield from self._export.messages()
        except PipelineError as error:
            raise error.with_context(path=self.path) from None


def write_coda_file(path: str | os.PathLike[str], messages: Iterable[Mapping[str, Any]]) -> int:
    """Writes a messages file exactly as 2019 did (coda.md 4.6; pipeline.md 11), replacing it atomically;
    returns the number of messages written.

    The layout is that of ``json.dumps(messages, sort_keys=True, indent=2, separators=(", ", ": "))``: sorted keys,
    two-space indent, so a line ending in a comma ends in ``", "``, non-ASCII escaped as ``\\uXXXX``, no newline at
    the end; an empty list is ``[]``. Coders' tools and diff-based checks depend on it byte for byte.

    The messages are written as they come, :data:`_WRITE_BATCH` at a time. Each has the four keys of a Coda message
    (``CreationDateTimeUTC``, ``Labels``, ``MessageID``, ``Text``; a ValueError otherwise), the first, third and
    fourth strings, the labels a list of JSON objects, so its lines are laid out here around its values as
    :mod:`json` encodes them. :mod:`json`'s indenting encoder, pure Python and the slow part, is used for the labels
    only, each distinct label encoded once while it is remembered (up to :data:`_LABELS_REMEMBERED` texts, then
    all dropped and learnt again; :class:`_LabelTexts`): a survey's auto-coded labels repeat on many messages,
    and an RQA file's messages have none.
    """
    value = json.JSONEncoder(ensure_ascii=True).encode  # a string, a time, an id: one call into C
    labels = _LabelTexts()
    count = 0
    stream = iter(messages)
    with atomic_open(path, "w", encoding="ascii", newline="") as handle:
        while batch := list(itertools.islice(stream, _WRITE_BATCH)):
            for message in batch:
                if message.keys() != _MESSAGE_KEYS:
                    raise ValueError(f"a Coda message has the keys {sorted(_MESSAGE_KEYS)}, not {sorted(message)}")
            for message, labels_text in zip(batch, labels.texts([message["Labels"] for message in batch])):
                handle.write(f'{", " if count else "["}\n  {{\n'
                             f'    "CreationDateTimeUTC": {value(message["CreationDateTimeUTC"])}, \n'
                             f'    "Labels": {labels_text}, \n'
                             f'    "MessageID": {value(message["MessageID"])}, \n'
                             f'    "Text": {value(message["Text"])}\n  }}')
                count += 1
        handle.write("\n]" if count else "[]")
    return count


_WRITE_BATCH = 1000
"""Messages taken at once by :func:`write_coda_file` (their new labels are encoded in one call)."""

_MESSAGE_KEYS = frozenset({"CreationDateTimeUTC", "Labels", "MessageID", "Text"})


class _LabelTexts:
    """The ``Labels`` of messages as they are written at their place in a messages file (a list at depth 2 of the
    indented layout), each distinct label encoded by :mod:`json`'s indenting encoder once while it is remembered.

    A label is found again by its compact JSON text (made in C; equal texts are equal labels as the file tells
    them apart). The labels of a batch not met before are encoded in one call, as a list: the indenting encoder
    leaves a reference cycle behind on each call, which only the garbage collector frees, and stage 3 runs with
    it paused. The texts remembered are all dropped when they would pass :data:`_LABELS_REMEMBERED`, and the
    batch's labels encoded afresh, so memory stays bounded whatever the number of distinct labels (coders' labels
    each carry their own time)."""

    def __init__(self) -> None:
        self._key = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode
        self._indented = json.JSONEncoder(sort_keys=True, indent=2, separators=(", ", ": "), ensure_ascii=True).encode
        self._texts: dict[str, str] = {}  # compact JSON of a label -> its text at depth 3

    def texts(self, label_lists: Sequence[Sequence[Any]]) -> list[str]:
        """The text of each list of labels."""
        keys = [[self._key(label) for label in labels] for labels in label_lists]
        batch = {key: label for labels, its_keys in zip(label_lists, keys) for key, label in zip(its_keys, labels)}
        new = {key: label for key, label in batch.items() if key not in self._texts}
        if new:
            if len(self._texts) + len(new) > _LABELS_REMEMBERED:
                self._texts.clear()
                new = batch
            self._learn(new)
        text = self._texts.__getitem__
        return ["[]" if not its_keys else "[\n      " + ", \n      ".join(map(text, its_keys)) + "\n    ]"
                for its_keys in keys]

    def _learn(self, labels: dict[str, Any]) -> None:
        for label in labels.values():
            if not isinstance(label, dict):
                raise ValueError(f"a Coda label is a JSON object, not {label!r}")
        # A list of objects at depth 0 is "[", then each object at depth 1 ("  {" ... "  }"), joined by
        # ", " + line break, then "]". Every line inside an object is indented deeper, and JSON strings hold no
        # raw line break, so ", \n  {" is found only between two objects.
        listed = self._indented(list(labels.values()))
        items = listed[len("[\n  "):-len("\n]")].split(", \n  {")
        for index, (key, item) in enumerate(zip(labels, items, strict=True)):
            # From depth 1 to depth 3: four more spaces after each line break.
            self._texts[key] = ("{" if index else "") + item.replace("\n", "\n    ")


_LABELS_REMEMBERED = 10_000


@dataclass(frozen=True)
class _FieldCodes:
    """The CodeIDs of a scheme's NA, NS and NC codes (None where the scheme lacks the code)."""

    scheme: CodeScheme
    na: str | None
    ns: str | None
    nc: str | None

    @classmethod
    def of(cls, scheme: CodeScheme) -> "_FieldCodes":
        def code_id(control_code: str) -> str | None:
            code = scheme.control(control_code)
            return None if code is None else code.code_id

        return cls(scheme, code_id(NA), code_id(NS), code_id(NC))

    def missing_code(self, code_id: str) -> str | None:
        """``NA`` or ``NS`` when the CodeID is the scheme's code for it, else None."""
        if code_id == self.na:
            return NA
        if code_id == self.ns:
            return NS
        return None


def _code_signature(value: Any, mid: str, name: str) -> Any:
    """What must agree between records of one message id: None, a CodeID, or a frozen set of CodeIDs."""
    if value is None:
        return None
    try:
        if isinstance(value, dict):
            return value["CodeID"]
        return frozenset(label["CodeID"] for label in value)
    except (KeyError, TypeError):
        raise CodaFileError(
            f"must hold a label or a list of labels (objects with a CodeID), found {value!r}",
            record=f"MessageID {mid!r}", field=name,
        ) from None


def _signature_text(signature: Sequence[Any]) -> str:
    """The codes of a record's coded fields (see :func:`_code_signature`) as text that is equal exactly when they
    are: JSON, a set of CodeIDs as a sorted list (a list never equals a single CodeID)."""
    return json.dumps([sorted(codes) if isinstance(codes, frozenset) else codes for codes in signature])


def _signature(text: str) -> list[Any]:
    """:func:`_signature_text` read back."""
    return [frozenset(codes) if isinstance(codes, list) else codes for codes in json.loads(text)]


def _shown(signature: Any) -> str:
    if signature is None:
        return "no label"
    if isinstance(signature, frozenset):
        return "{" + ", ".join(sorted(signature)) + "}"
    return repr(signature)


def _is_missing_answer(record: Mapping[str, Any], fields: list[tuple[str, _FieldCodes]], mid: str) -> bool:
    """True when every coded field holds the same missing code (NA, or NS); coda.md 4.4.

    An absent field counts as "not missing", so NA or NS in some fields but not in all of them - or NA in some
    and NS in others - cannot be a missing answer and is reported: it means the record was half processed.
    """
    found: list[tuple[str, str | None]] = []
    for name, codes in fields:
        value = record.get(name)
        if value is None:
            kinds: set[str | None] = {None}
        elif isinstance(value, dict):
            kinds = {codes.missing_code(value["CodeID"])}
        else:
            kinds = {codes.missing_code(label["CodeID"]) for label in value} or {None}
            if len(kinds) > 1:
                raise CodaFileError("the list of labels mixes NA or NS with other codes",
                                    record=f"MessageID {mid!r}", field=name)
        found.append((name, kinds.pop()))
    all_kinds = {kind for _, kind in found}
    if all_kinds == {None}:
        return False
    if len(all_kinds) == 1:
        return True
    described = ", ".join(f"{name}={kind or 'not NA/NS'}" for name, kind in found)
    raise CodaFileError(
        f"NA or NS must be in all coded fields or in none of them (a missing answer is missing everywhere): "
        f"{described}",
        record=f"MessageID {mid!r}", field=next(name for name, kind in found if kind is not None),
    )


def _exported_label(label: Mapping[str, Any], mid: str, name: str) -> dict[str, Any]:
    """The label as an exported message carries it (coda.md 4.5): the Coda keys only, nulls left out."""
    try:
        out: dict[str, Any] = {
            "SchemeID": label["SchemeID"],
            "CodeID": label["CodeID"],
            "DateTimeUTC": label["DateTimeUTC"],
        }
        for key in _OPTIONAL_LABEL_KEYS:
            if label.get(key) is not None:
                out[key] = label[key]
        origin = label["Origin"]
        out["Origin"] = {"OriginID": origin["OriginID"], "Name": origin["Name"], "OriginType": origin["OriginType"]}
        if origin.get("Metadata") is not None:
            out["Origin"]["Metadata"] = origin["Metadata"]
    except (KeyError, TypeError) as error:
        raise CodaFileError(f"the label lacks {error} and cannot be exported: {label!r}",
                            record=f"MessageID {mid!r}", field=name) from None
    return out


class _TimeParser:
    """Reads creation times (ISO 8601 strings or aware datetimes) as instants: microseconds since 1970 UTC, so
    times with different UTC offsets compare as instants. A string is parsed once until :meth:`forget`: a
    respondent's survey time is repeated on each of their messages, so the cache saves most of the parsing.
    """

    def __init__(self, field_name: str) -> None:
        self._field = field_name
        self._cache: dict[str, int] = {}

    def forget(self) -> None:
        """Lets the parsed times go (called after each chunk, so the cache does not grow with the run)."""
        self._cache = {}

    def __call__(self, value: Any, mid: str) -> int:
        if isinstance(value, str):
            instant = self._cache.get(value)
            if instant is None:
                instant = self._cache[value] = _instant(self._parse(value, mid))
            return instant
        if isinstance(value, datetime) and value.tzinfo is not None:
            return _instant(value)
        raise CodaFileError(
            f"must be an ISO 8601 time with a UTC offset, found {value!r}", record=f"MessageID {mid!r}",
            field=self._field,
        )

    def _parse(self, text: str, mid: str) -> datetime:
        parsed = _parse_iso(text)
        if parsed is None or parsed.tzinfo is None:
            raise CodaFileError(
                f"must be an ISO 8601 time with a UTC offset, found {text!r}", record=f"MessageID {mid!r}",
                field=self._field,
            )
        return parsed


def _parse_iso(text: str) -> datetime | None:
    """An ISO 8601 string as a datetime (Python's parser, then dateutil's for the rarer forms), or None."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    try:
        return isoparse(text)
    except (ValueError, OverflowError):
        return None


# -- import: the lookup ------------------------------------------------------------------------------------------


_NO_LABELS: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class CodedMessages:
    """The labels of a coded Coda file: MessageID -> SchemeID -> labels, oldest first (coda.md 5.1).

    Coda lists a message's labels newest first; here they are reversed, so the last label of a scheme is its
    current one. ``path`` is the file they came from (None when built in memory), used in error messages.
    Build one with :func:`read_coded_file` or :meth:`from_json`; an empty one stands for "nothing coded yet".
    """

    path: str | None = None
    # MessageID -> every label of the message, oldest first. Grouping by scheme is done on request: a message
    # has a handful of labels, and a file may hold a million messages, so no per-message index is kept.
    _messages: Mapping[str, tuple[dict[str, Any], ...]] = field(default_factory=dict, repr=False)
    # The MessageIDs whose Text is not the text they are the id of (a coder's tool edited the text, or the id was
    # copied from another message): their labels follow the MessageID, which the stage warns about.
    mismatched_texts: tuple[str, ...] = ()
    # The ids of redacted texts under which a message of the file is found too (see from_json): id -> MessageID.
    _aliases: Mapping[str, str] = field(default_factory=dict, repr=False)
    # The file's own MessageIDs in file order, and the own labels of those an alias took the place of.
    _file_ids: tuple[str, ...] = ()
    _replaced: Mapping[str, tuple[dict[str, Any], ...]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Any, *, path: str | os.PathLike[str] | None = None,
                  redact: Callable[[str], str] | None = None) -> "CodedMessages":
        """Validates a parsed messages file (a list of message objects) and builds the lookup.

        Every problem is a CodaFileError naming the file, the message (its MessageID, or its index when it has
        none) and the field: a file that is not what Coda's ``get`` tool writes must not be half merged.

        ``redact`` is the stage's phone-number redaction: a message coded before its text was redacted (2019)
        has the id of the text with the number; its labels are found under the id of the redacted text too,
        unless the file codes that text itself.
        """
        shown_path = None if path is None else str(path)
        if not isinstance(data, list):
            raise CodaFileError(
                f"a coded Coda file must hold a JSON list of messages (as written by Coda's get tool), "
                f"found {json_type(data)}",
                path=shown_path,
            )
        messages: dict[str, tuple[dict[str, Any], ...]] = {}
        mismatched: list[str] = []
        aliases: list[tuple[str, str]] = []  # (id of the redacted text, id the file gives)
        for index, raw in enumerate(data):
            mid, labels = _validated_message(raw, index, shown_path)
            text = raw.get("Text")
            text_id = message_id(text) if type(text) is str else None
            if text_id is not None and text_id != mid:
                mismatched.append(mid)
            if mid in messages:
                raise CodaFileError("the MessageID appears twice in the file; Coda message ids are unique",
                                    path=shown_path, record=f"MessageID {mid!r}", field="MessageID")
            messages[mid] = tuple(reversed(labels)) if labels else _NO_LABELS
            if redact is not None and type(text) is str and text_id == mid:
                redacted = redact(text)
                if redacted != text:
                    aliases.append((message_id(redacted), mid))
        file_ids = tuple(messages)
        found_as: dict[str, str] = {}
        replaced: dict[str, tuple[dict[str, Any], ...]] = {}
        for alias, mid in aliases:
            if alias in found_as:
                # Of two texts that redact alike, the first the file codes with a checked label stands for both.
                if _any_checked(messages[alias]) or not _any_checked(messages[mid]):
                    continue
            elif alias in messages:
                # The redacted text is coded in the file itself only if someone checked a label of it: an uncoded
                # copy (exported by a redacting run and downloaded again) must not hide the original's codes.
                if _any_checked(messages[alias]):
                    continue
                replaced[alias] = messages[alias]
            messages[alias] = messages[mid]
            found_as[alias] = mid
        return cls(shown_path, messages, tuple(mismatched), found_as, file_ids, replaced)

    def labels(self, message_id: str, scheme_id: str) -> tuple[dict[str, Any], ...]:
        """The labels of a message under exactly ``scheme_id``, oldest first (empty when there are none)."""
        labels = self._messages.get(message_id, _NO_LABELS)
        if not labels:
            return _NO_LABELS
        return tuple(label for label in labels if label["SchemeID"] == scheme_id)

    def all_labels(self, message_id: str) -> tuple[dict[str, Any], ...]:
        """Every label of a message, whatever its scheme, oldest first (the file's list reversed)."""
        return self._messages.get(message_id, _NO_LABELS)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._messages

    def __len__(self) -> int:
        """How many messages the file holds."""
        return len(self._file_ids)

    def message_ids(self) -> list[str]:
        """The file's MessageIDs in file order (not the ids of redacted texts its messages are also found by)."""
        return list(self._file_ids)

    def own_labels(self, message_id: str) -> tuple[dict[str, Any], ...]:
        """The labels the file gives ``message_id`` itself, oldest first: unlike :meth:`all_labels`, never those of
        the message a redacted text's id finds (for counting what the file holds)."""
        own = self._replaced.get(message_id)
        if own is not None:
            return own
        return _NO_LABELS if message_id in self._aliases else self._messages.get(message_id, _NO_LABELS)

    def file_message_id(self, message_id: str) -> str | None:
        """The MessageID of the file's message whose labels ``message_id`` finds: itself, or for the id of a
        redacted text, the MessageID of the text the file codes; None when the file has no such message."""
        if message_id not in self._messages:
            return None
        return self._aliases.get(message_id, message_id)


def _any_checked(labels: Sequence[Mapping[str, Any]]) -> bool:
    return any(is_checked(label) for label in labels)


def read_coded_file(path: str | os.PathLike[str], *, redact: Callable[[str], str] | None = None) -> CodedMessages:
    """Reads ``Coded Coda Files/<dataset>.json`` into a :class:`CodedMessages` lookup (``redact`` as in
    :meth:`CodedMessages.from_json`).

    A missing file means nothing has been coded yet and reads as empty - for every dataset, including
    ``s01e03.json``, whose absence crashed 2019's first run (spec README, deliberate differences).
    """
    try:
        text = read_messages_text(path)
    except FileNotFoundError:
        if Path(path).is_symlink():  # not "nothing coded yet": the coders' file is somewhere the link lost
            raise CodaFileError("a link to a file that does not exist (a moved or unmounted file?); restore the "
                                "file or remove the link", path=path) from None
        return CodedMessages(str(path))
    except (OSError, UnicodeDecodeError) as error:
        shown = describe_os_error(error) if isinstance(error, OSError) else str(error)
        raise CodaFileError(f"cannot read the coded Coda file: {shown}", path=path) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise CodaFileError(
            f"not valid JSON ({json_error_place(error)}); save only the messages "
            f"of Coda's get tool (`get.py <key> <dataset> messages`) into this file",
            path=path,
        ) from None
    except RecursionError:
        raise CodaFileError("not a messages file: JSON nested too deeply to be read", path=path) from None
    if has_lone_surrogate_escape(text):  # only a file with such an escape is walked
        _refuse_lone_surrogates(data, path)
    return CodedMessages.from_json(data, path=path, redact=redact)


def coded_texts(path: str | os.PathLike[str], message_ids: Iterable[str]) -> dict[str, str]:
    """The Text of some messages of a coded Coda file, read from the file again: a :class:`CodedMessages` keeps no
    texts (a file may hold a million messages), and warnings name a message by the text coders see in Coda.

    Only for what is shown, never for what is computed: the file was read and checked earlier in the run, so a file
    that can no longer be read, or no longer holds a message, gives no text for it rather than an error."""
    wanted = set(message_ids)
    try:
        data = json.loads(read_messages_text(path))
    except (OSError, ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return {}
    if not isinstance(data, list):
        return {}
    return {message["MessageID"]: message["Text"] for message in data
            if isinstance(message, dict) and message.get("MessageID") in wanted and type(message.get("Text")) is str}


def read_messages_text(path: str | os.PathLike[str]) -> str:
    """The text of a messages file (a coded file, or an export), decoded in its own encoding
    (:func:`messages_file_encoding`); OSError or UnicodeDecodeError when it cannot be read."""
    content = Path(path).read_bytes()
    return content.decode(messages_file_encoding(content))


def messages_file_encoding(head: bytes) -> str:
    """The encoding of a messages file that starts with ``head`` (its first bytes): UTF-16 when it starts with that
    encoding's byte-order mark (Windows PowerShell 5 writes `get.py ... > file` so), else UTF-8, with or without the
    mark some Windows editors put first."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    # Without the mark, a JSON text in UTF-16 still shows itself: its first character is ASCII ("[" or a space),
    # so one of its first two bytes is zero.
    if head[1:2] == b"\0":
        return "utf-16-le"
    if head[:1] == b"\0":
        return "utf-16-be"
    return "utf-8-sig"


# A checked label in a messages file, however it is spaced (this pipeline writes '"Checked": true', other tools may
# not). A quotation mark inside a text is escaped, so only a label's key can match.
_CHECKED = re.compile(r'"Checked"\s*:\s*true')
_SCAN_BLOCK = 1 << 20  # characters read at a time while a file is scanned for one
_SCAN_OVERLAP = 64  # characters kept from the previous block, so that a match across two blocks is found


def messages_coded_in(path: str | os.PathLike[str]) -> int | None:
    """How many messages of the messages file at ``path`` have a label a coder checked: 0 for a file that holds none
    (every export of the pipeline: its suggestions are unchecked, coda.md section 4) or that does not exist, None
    for a file with checked labels that cannot be read as messages. A file that cannot be read at all is a
    CodaFileError.

    The file is scanned block by block, so memory does not grow with it; only a file with a checked label (a coded
    file where an export belongs, which is rare) is then read whole to count its messages."""
    try:
        with open(path, "rb") as raw:
            encoding = messages_file_encoding(raw.read(4))
        with open(path, encoding=encoding, errors="replace") as handle:
            tail = ""
            for block in iter(lambda: handle.read(_SCAN_BLOCK), ""):
                window = tail + block
                if _CHECKED.search(window):
                    break
                tail = window[-_SCAN_OVERLAP:]
            else:
                return 0
    except (FileNotFoundError, NotADirectoryError):
        return 0  # no file, so nothing to lose
    except OSError as error:  # the switch would still replace it (a move needs only the folder writable)
        raise CodaFileError(f"cannot be read ({describe_os_error(error)}), so whether it holds coders' work cannot "
                            "be told, and this run would replace it: make it readable, or move it away",
                            path=path) from None
    try:
        messages = json.loads(Path(path).read_text(encoding=encoding))
    except (OSError, UnicodeError, ValueError, RecursionError):
        return None
    if not isinstance(messages, list):
        return None
    return sum(1 for message in messages if isinstance(message, dict) and isinstance(message.get("Labels"), list)
               and any(isinstance(label, dict) and is_checked(label) for label in message["Labels"]))


def _refuse_lone_surrogates(data: Any, path: str | os.PathLike[str]) -> None:
    """Names the message and field of the first value holding half of a UTF-16 pair: JSON may spell an emoji as two
    escapes (\\ud83d\\ude00), and one of them alone (an emoji cut in two) decodes to a string that is no text and
    that no output file can hold. A file of another shape is left to :meth:`CodedMessages.from_json` to report."""
    if not isinstance(data, list):
        return
    for index, message in enumerate(data):
        if not isinstance(message, dict):
            continue
        for key, value in message.items():
            if holds_lone_surrogate(key) or holds_lone_surrogate(value):
                mid = message.get("MessageID")
                named = isinstance(mid, str) and not holds_lone_surrogate(mid)
                raise CodaFileError(
                    "holds half of a UTF-16 pair (an emoji cut in two, written as a lone \\ud800-\\udfff escape), "
                    "which is not text; correct or remove it in the file",
                    path=path, record=f"MessageID {mid!r}" if named else f"message [{index}]",
                    field=key if not holds_lone_surrogate(key) else None,
                )


def _validated_message(raw: Any, index: int, path: str | None) -> tuple[str, list[dict[str, Any]]]:
    """A message of a coded file checked as coda.md 2 describes it: its MessageID, its Text and its labels, each
    with a SchemeID, a CodeID, an ISO 8601 DateTimeUTC and, if any, a true or false Checked. Every label's time is
    checked, not only the times the merge compares (those of a message with several labels): a file must not pass
    this week and fail the next because a coder added a label (Python's parser reads Coda's times in well under a
    microsecond each)."""
    if not isinstance(raw, dict):
        raise CodaFileError(f"a message must be a JSON object, found {json_type(raw)}", path=path,
                            record=f"message [{index}]")
    mid = raw.get("MessageID")
    if not isinstance(mid, str) or not mid:
        raise CodaFileError(f"must be a non-empty string, found {_found(raw, 'MessageID')}", path=path,
                            record=f"message [{index}]", field="MessageID")
    where = f"MessageID {mid!r}"
    if type(raw.get("Text")) is not str:
        raise CodaFileError(f"must be the message's text, found {_found(raw, 'Text')}", path=path, record=where,
                            field="Text")
    labels = raw.get("Labels")
    if not isinstance(labels, list):
        raise CodaFileError(f"must be a list of labels, found {_found(raw, 'Labels')}", path=path, record=where,
                            field="Labels")
    for position, label in enumerate(labels):
        # The common case in one expression; the slow path below finds and names the problem.
        if (type(label) is dict and type(label.get("SchemeID")) is str and label["SchemeID"]
                and type(label.get("CodeID")) is str and label["CodeID"]
                and type(label.get("DateTimeUTC")) is str and label["DateTimeUTC"]
                and (type(label.get("Checked")) is bool or label.get("Checked") is None)):
            if _parse_iso(label["DateTimeUTC"]) is None:
                raise CodaFileError(f"must be an ISO 8601 time, found {label['DateTimeUTC']!r}", path=path,
                                    record=where, field=f"Labels[{position}].DateTimeUTC")
            continue
        place = f"Labels[{position}]"
        if not isinstance(label, dict):
            raise CodaFileError(f"a label must be a JSON object, found {json_type(label)}", path=path,
                                record=where, field=place)
        for key in ("SchemeID", "CodeID", "DateTimeUTC"):
            if not isinstance(label.get(key), str) or not label[key]:
                raise CodaFileError(f"must be a non-empty string, found {_found(label, key)}", path=path,
                                    record=where, field=f"{place}.{key}")
        raise CodaFileError(f"must be true or false, found {label['Checked']!r}", path=path, record=where,
                            field=f"{place}.Checked")
    return mid, labels


def _found(obj: Mapping[str, Any], key: str) -> str:
    return "nothing" if key not in obj else repr(obj[key])


# -- import: merging ---------------------------------------------------------------------------------------------


class SingleCodedImport:
    """The merge of the coders' labels of one single-coded scheme into a coded field (coda.md 5.2), one message at
    a time: :meth:`value` gives the field's value for a message id and what the field holds.

    The message's newest label under exactly ``scheme``'s SchemeID counts; without one, the field keeps what it
    holds. The result stands when it is ``Checked`` or is the scheme's NA or NS; otherwise - an auto-code
    suggestion nobody checked, a cleared code (``SPECIAL-MANUALLY_UNCODED``), an unchecked newest label even over
    an older checked one, or nothing at all - the field becomes the scheme's NR label (one label object, shared).
    A label without ``Checked`` counts as unchecked, and a scheme lacking NA or NS (WS - Correct Dataset) simply
    has nothing to compare with, so its unchecked labels give NR (2019 crashed in both cases). A newest label
    whose CodeID is not in the scheme is a CodaFileError naming the file (``source_file``, else the coded file's
    path), message id and code. Each distinct outcome is one shared object: the label of a message is decided once
    and given to every record of its text."""

    def __init__(self, coded: CodedMessages, *, coded_field: str, scheme: CodeScheme, label_time: str,
                 source_file: str | os.PathLike[str] | None = None):
        self._coded = coded
        self._coded_field = coded_field
        self._scheme = scheme
        self._source = coded.path if source_file is None else str(source_file)
        codes = _FieldCodes.of(scheme)
        self._keep_unchecked = {code_id for code_id in (codes.na, codes.ns) if code_id is not None}
        self._nr_label = _LazyLabel(scheme, NR, SINGLE_CODED_IMPORT_ORIGIN, label_time)
        self._decided: dict[str, dict[str, Any]] = {}  # message id -> its label, for messages with coded labels

    def _settled(self, value: dict[str, Any]) -> dict[str, Any]:
        code_id = value["CodeID"]
        if code_id != MANUALLY_UNCODED and (is_checked(value) or code_id in self._keep_unchecked):
            return value
        nr: dict[str, Any] = self._nr_label.get()
        return nr

    def value(self, mid: str, current: Any) -> Any:
        """The field's value for message ``mid`` whose field holds ``current`` (None when absent); ``current``
        itself when it stands."""
        value = self._decided.get(mid)
        if value is None:
            labels = self._coded.labels(mid, self._scheme.scheme_id)
            if labels:
                newest = labels[-1]
                _check_code(newest, self._scheme, self._source, mid)
                value = self._decided[mid] = self._settled(newest)
            else:
                if current is not None and not isinstance(current, dict):
                    raise CodaFileError(
                        f"a single-coded field must hold one label, found {type(current).__name__}",
                        record=f"MessageID {mid!r}", field=self._coded_field,
                    )
                value = self._nr_label.get() if current is None else self._settled(current)
        return value


class MultiCodedImport:
    """The merge of the coders' labels of a multi-coded scheme and its duplicates into a coded field (coda.md
    5.3), one message at a time, as :class:`SingleCodedImport`.

    Coda's ``duplicate_scheme`` tool copies a scheme as ``<SchemeID>-1``, ``-2``, ...; each copy holds one more
    code for the same message, so every SchemeID that starts with ``scheme``'s SchemeID counts. The message's
    labels under those schemes are sorted by ``DateTimeUTC`` (ties keep the oldest-first file order) and the
    latest label per SchemeID is kept, on top of any list the field already holds; cleared codes
    (``SPECIAL-MANUALLY_UNCODED``) are dropped. The field becomes that list, in order of each SchemeID's first
    appearance - unless no remaining label is ``Checked`` and they are not all the same NA or NS, in which case it
    becomes ``[NR]`` (so does an empty result). NA or NS beside a different code is a contradiction 2019 failed an
    assertion on; here it is a CodaFileError naming the file and message, as is a kept label whose CodeID the
    scheme does not have."""

    def __init__(self, coded: CodedMessages, *, coded_field: str, scheme: CodeScheme, label_time: str,
                 source_file: str | os.PathLike[str] | None = None):
        self._coded = coded
        self._coded_field = coded_field
        self._source = coded.path if source_file is None else str(source_file)
        self._codes = _FieldCodes.of(scheme)
        self._prefix = scheme.scheme_id
        self._nr_list = _LazyLabel(scheme, NR, MULTI_CODED_IMPORT_ORIGIN, label_time, as_list=True)
        self._decided: dict[str, list[dict[str, Any]]] = {}  # message id -> its list, when the field started absent

    def value(self, mid: str, current: Any) -> Any:
        """The field's value for message ``mid`` whose field holds ``current`` (None when absent)."""
        if current is None:
            value = self._decided.get(mid)
            if value is None:
                value = self._decided[mid] = _merge_multi(self._coded, mid, (), self._prefix, self._codes,
                                                          self._nr_list, self._source)
            return value
        if isinstance(current, dict) or not isinstance(current, (list, tuple)):
            raise CodaFileError(
                f"a multi-coded field must hold a list of labels, found {type(current).__name__}",
                record=f"MessageID {mid!r}", field=self._coded_field,
            )
        return _merge_multi(self._coded, mid, current, self._prefix, self._codes, self._nr_list, self._source)


def _merge_multi(
    coded: CodedMessages,
    mid: str,
    current: Sequence[Mapping[str, Any]],
    prefix: str,
    codes: _FieldCodes,
    nr_list: "_LazyLabel",
    source: str | None,
) -> list[dict[str, Any]]:
    """Steps 1-6 of coda.md 5.3 for one message."""
    labels = _multi_coded_labels_by_time(coded, mid, prefix)
    nr: list[dict[str, Any]]
    if not labels and not current:
        nr = nr_list.get()  # the common case of a message nobody has coded yet
        return nr
    latest: dict[str, Any] = {label["SchemeID"]: label for label in current}
    for label in labels:
        latest[label["SchemeID"]] = label  # re-assigning keeps the SchemeID's first position
    remaining = [label for label in latest.values() if label["CodeID"] != MANUALLY_UNCODED]
    if not remaining:
        nr = nr_list.get()
        return nr

    distinct = set()
    for label in remaining:
        _check_code(label, codes.scheme, source, mid)
        distinct.add(label["CodeID"])
    missing = codes.na in distinct or codes.ns in distinct
    if missing and len(distinct) > 1:
        shown = ", ".join(f"{label['SchemeID']}={label['CodeID']}" for label in remaining)
        raise CodaFileError(
            f"NA or NS cannot stand beside another code of the same question, found {shown}; "
            f"remove the contradicting label in Coda",
            path=source, record=f"MessageID {mid!r}",
        )
    if missing or any(is_checked(label) for label in remaining):
        return remaining
    nr = nr_list.get()
    return nr


def _multi_coded_labels_by_time(coded: CodedMessages, mid: str, prefix: str) -> list[dict[str, Any]]:
    """Steps 1-2 of coda.md 5.3: the message's labels under every SchemeID starting with ``prefix``, sorted by
    ``DateTimeUTC`` (stable, so equal times keep the oldest-first file order)."""
    labels = [label for label in coded.all_labels(mid) if label["SchemeID"].startswith(prefix)]
    if len(labels) > 1:
        labels.sort(key=_label_time)
    return labels


def current_labels(coded: CodedMessages, mid: str, scheme: CodeScheme, *, multi_coded: bool) -> list[dict[str, Any]]:
    """What a coder currently says about message ``mid`` in ``scheme``, read as the imports read it, checked or not.

    Single-coded (coda.md 5.2 step 1): the newest label under exactly the scheme's SchemeID. Multi-coded (5.3
    steps 1-4): the latest label of each SchemeID starting with it (by ``DateTimeUTC``), in order of each
    SchemeID's first appearance. Cleared codes (``SPECIAL-MANUALLY_UNCODED``) are left out. A CodeID the scheme
    does not have is a CodaFileError naming the file, the message and the code. Used where a coder's work is
    measured rather than merged (coding progress, inter-coder agreement).
    """
    if multi_coded:
        latest: dict[str, dict[str, Any]] = {}
        for label in _multi_coded_labels_by_time(coded, mid, scheme.scheme_id):
            latest[label["SchemeID"]] = label
        found = list(latest.values())
    else:
        found = list(coded.labels(mid, scheme.scheme_id)[-1:])
    kept = [label for label in found if label["CodeID"] != MANUALLY_UNCODED]
    for label in kept:
        _check_code(label, scheme, coded.path, mid)
    return kept


def _label_time(label: Mapping[str, Any]) -> datetime:
    """A label's DateTimeUTC as a time that compares with the others. Every label's time was checked when its file
    was read (:func:`_validated_message` names the file, message and label of one that is not ISO 8601)."""
    parsed = _parse_iso(label["DateTimeUTC"])
    assert parsed is not None, "coded files' label times are checked when the file is read"
    # The key is named UTC; a time written without an offset is read as UTC so all times compare.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


def _check_code(label: Mapping[str, Any], scheme: CodeScheme, source: str | None, mid: str) -> None:
    code_id = label["CodeID"]
    if code_id != MANUALLY_UNCODED and not scheme.has_code_id(code_id):
        raise CodaFileError(
            f"CodeID {code_id!r} (SchemeID {label['SchemeID']!r}) is not a code of scheme {scheme.name!r} "
            f"({scheme.scheme_id}); the coded file does not match the scheme files",
            path=source, record=f"MessageID {mid!r}", field="CodeID",
        )


class _LazyLabel:
    """A control label made on first use and then shared, so a scheme without the code only fails if needed."""

    __slots__ = ("_scheme", "_control_code", "_origin_id", "_label_time", "_as_list", "_value")

    def __init__(self, scheme: CodeScheme, control_code: str, origin_id: str, label_time: str,
                 *, as_list: bool = False) -> None:
        self._scheme = scheme
        self._control_code = control_code
        self._origin_id = origin_id
        self._label_time = label_time
        self._as_list = as_list
        self._value: Any = None

    def get(self) -> Any:  # a label, or a list of one label (as_list)
        if self._value is None:
            label = control_label(self._scheme, self._control_code, origin_id=self._origin_id,
                                  label_time=self._label_time)
            self._value = [label] if self._as_list else label
        return self._value
