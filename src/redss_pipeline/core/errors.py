"""The pipeline's exception tree.

Every failure a user can fix has its own subclass. Each error carries the place it happened (file, record,
field) as structured attributes and renders them into one line, so the command-line entry points can print
``str(error)`` and exit without a traceback. ``--verbose`` on the entry points shows the traceback.

    PipelineError
    ├── UsageError          wrong command line (exit 2)
    ├── ConfigError         pipeline_config.json is invalid (exit 2); lists every problem at once
    ├── SchemeError         a code scheme file is invalid, or a value has no code in it
    ├── RawDataError        a raw Rapid Pro data file (TracedData JSON) is malformed
    ├── CodaFileError       a Coda messages file is malformed, or its labels cannot be merged
    ├── UuidTableError      the phone number <-> UUID table is missing, exists already, or is inconsistent
    ├── FetchError          Rapid Pro could not be read (bad token, unknown flow, retries exhausted)
    ├── StateError          the fetch store is unreadable or of an unknown version
    ├── DriveError          Google Cloud Storage or Google Drive refused or failed
    ├── AuditTrailError     traced_data.json is unreadable or has no such person (audit_trail)
    ├── ProfilingError      the CPU profile could not be taken (profiling)
    └── WorkspaceError      the bundled synthetic workspace was asked for something impossible (synthetic_workspace)

The last three live beside the code that raises them.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

__all__ = [
    "PipelineError",
    "UsageError",
    "ConfigError",
    "SchemeError",
    "RawDataError",
    "CodaFileError",
    "UuidTableError",
    "FetchError",
    "StateError",
    "DriveError",
    "json_type",
    "listed_with_and",
    "json_error_place",
    "note_repeated_keys",
    "repeated_keys",
]


class PipelineError(Exception):
    """Base of every error the pipeline raises on purpose.

    ``path``, ``record`` and ``field`` say where the problem is; any of them may be None. The rendered
    message reads ``<path>: record <record>: field <field>: <message>``, leaving out the parts that are None.
    """

    exit_status = 1
    #: Whether the command line adds "(run again with --verbose for the traceback)": not where the message says all
    #: there is to know (another process holds the data root).
    traceback_helps = True

    def __init__(self, message: str, *, path: object = None, record: object = None, field: object = None):
        self.message = message
        self.path = None if path is None else str(path)
        self.record = record
        self.field = field
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.path is not None:
            where.append(self.path)
        if self.record is not None:
            where.append(f"record {self.record}")
        if self.field is not None:
            where.append(f"field {self.field!r}")
        return ": ".join(where + [self.message])

    def with_context(self, *, path: object = None, record: object = None) -> "PipelineError":
        """Fills in the file and record when the raiser did not know them (used by ``record_context``)."""
        if self.path is None and path is not None:
            self.path = str(path)
        if self.record is None and record is not None:
            self.record = record
        self.args = (self._render(),)
        return self

    def with_hint(self, hint: str) -> "PipelineError":
        """Adds ``hint`` (what to do next, known only to the caller) to the end of the message."""
        self.message = f"{self.message} ({hint})"
        self.args = (self._render(),)
        return self

    def __str__(self) -> str:
        return self._render()


class UsageError(PipelineError):
    """The command line does not match the usage text."""

    exit_status = 2


class ConfigError(PipelineError):
    """The configuration file is invalid. ``problems`` lists every problem found, one line each."""

    exit_status = 2

    def __init__(self, problems: list[str], *, path: object = None):
        self.problems = list(problems)
        header = f"{len(self.problems)} problem(s) in the configuration file"
        super().__init__(header + ":\n" + "\n".join(f"- {p}" for p in self.problems), path=path)


class SchemeError(PipelineError):
    """A code scheme file is invalid, or a cleaner's value has no code in the scheme."""


class RawDataError(PipelineError):
    """A raw data file is not a list of records in the TracedData layout."""


class CodaFileError(PipelineError):
    """A Coda messages file is malformed, names an unknown code, or its labels contradict each other."""


class UuidTableError(PipelineError):
    """The phone number <-> UUID table cannot be created, read or extended."""


class FetchError(PipelineError):
    """Rapid Pro could not be read; what was stored before the failure is kept and a rerun resumes."""


class StateError(PipelineError):
    """The local fetch store cannot be used."""


class DriveError(PipelineError):
    """Google Cloud Storage or Google Drive refused or failed."""


def json_type(value: object) -> str:
    """What a value read from JSON is, in an error message's words (``an object``, ``a list``, ``null``, ...): the
    errors say what was found without echoing it, since a value in the wrong place may be a phone number."""
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)


def listed_with_and(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``: one or more names in one message (never none)."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def json_error_place(error: json.JSONDecodeError) -> str:
    """Where a file stops being JSON and why, for a one-line message: ``line 3, column 7: Expecting ',' delimiter``.

    The json module's texts that end in "at" ("Unterminated string starting at", "Invalid control character at")
    lose that word: its own message puts the place after it. A text that is never closed, or an error where the text
    ends, says so, since a file cut short (a copy or download that stopped) is the usual cause; only JSON's own
    white space counts as the end."""
    if not error.doc.strip(_JSON_SPACE):
        return "the file is empty"
    what = error.msg.removesuffix(" starting at").removesuffix(" at")
    if what == "Unterminated string":
        what = "a text starting here is never closed (the file ends inside it: cut short?)"
    elif error.pos >= len(error.doc.rstrip(_JSON_SPACE)):
        what += "; the file ends there (cut short?)"
    return f"line {error.lineno}, column {error.colno}: {what}"


_JSON_SPACE = " \t\n\r"


class _ObjectWithRepeatedKeys(dict[str, Any]):
    """A JSON object in which a key appears more than once, as :func:`note_repeated_keys` reads it: the last value
    of each key, as json.loads keeps it, and the keys that were repeated."""

    repeated: tuple[str, ...] = ()


def note_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for :func:`json.loads` that notes the keys an object repeats (JSON readers keep the last
    value, so a copied entry that kept its name silently replaces the first); :func:`repeated_keys` lists them."""
    read = dict(pairs)
    if len(read) == len(pairs):
        return read
    marked = _ObjectWithRepeatedKeys(read)
    counted: dict[str, int] = {}
    for key, _ in pairs:
        counted[key] = counted.get(key, 0) + 1
    marked.repeated = tuple(key for key, count in counted.items() if count > 1)
    return marked


def repeated_keys(data: Any, place: str = "$") -> list[str]:
    """One line per key an object of ``data`` (read with :func:`note_repeated_keys`) repeats, by its JSON path
    (``$.weeks.radio_participation_s01e04: ...``), in document order."""
    found = []
    if isinstance(data, _ObjectWithRepeatedKeys):
        found += [f"{place}.{key}: the key appears more than once in its object; only the last is read, so the "
                  "others would be silently ignored: rename or remove the copies" for key in data.repeated]
    if isinstance(data, dict):
        for key, value in data.items():
            found += repeated_keys(value, f"{place}.{key}")
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += repeated_keys(value, f"{place}[{index}]")
    return found
