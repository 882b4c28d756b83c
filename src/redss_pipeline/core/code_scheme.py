"""Code schemes: the Coda V2 scheme files that give every code its id, label text and analysis value.

A scheme file is configuration data, so it is validated completely when it is loaded: a bad file stops the
run before any work with a ``SchemeError`` naming the file, the code (its index in ``Codes`` and its CodeID)
and the field. After loading, a ``CodeScheme`` is an immutable value with constant-time lookups by CodeID,
control code and MatchValue, which is what the auto-coders, the Coda importers and the CSV writers need.

Usage::

    scheme = load_code_scheme("code_schemes/gender.json")
    scheme.code_for_match_value("male").code_id   # "code-63dcde9a"
    scheme.control(NA).string_value               # "NA"

The file format is described in the specification (datasets-and-codebook.md 6.1, coda.md section 3).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from redss_pipeline.core.errors import SchemeError, json_error_place, json_type, note_repeated_keys, repeated_keys

__all__ = [
    "NA",
    "NS",
    "NC",
    "NR",
    "NIC",
    "STOP",
    "WS",
    "CONTROL_CODES",
    "NORMAL",
    "CONTROL",
    "Code",
    "CodeScheme",
    "load_code_scheme",
]

# The seven control codes every scheme may carry (datasets-and-codebook.md 6.2).
NA = "NA"
"""True missing: the respondent did not answer this question."""
NS = "NS"
"""Skipped."""
NC = "NC"
"""Not coded: noise, or a location level that cannot be derived."""
NR = "NR"
"""Not reviewed: no coder has checked a label."""
NIC = "NIC"
"""Not internally consistent: the coded location levels disagree."""
STOP = "STOP"
"""Consent withdrawn."""
WS = "WS"
"""Wrong scheme: the message answers another question."""

CONTROL_CODES: tuple[str, ...] = (NA, NS, NC, NR, NIC, STOP, WS)
"""The control codes in the order they follow the Normal codes in every scheme file."""

NORMAL = "Normal"
CONTROL = "Control"
_CODE_TYPES = (NORMAL, CONTROL)

# Keys a code object may have. Coda also knows "Color"; it is accepted and not kept, as no 2019 file has it.
_CODE_KEYS = frozenset(
    {"CodeID", "CodeType", "ControlCode", "DisplayText", "NumericValue", "StringValue", "VisibleInCoda",
     "Shortcut", "MatchValues"}
)
_IGNORED_CODE_KEYS = frozenset({"Color"})
_SCHEME_KEYS = frozenset({"SchemeID", "Name", "Version", "Codes"})
_IGNORED_SCHEME_KEYS = frozenset({"Documentation"})


@dataclass(frozen=True, slots=True)
class Code:
    """One code of a scheme, exactly as its file states it.

    ``control_code`` is set only for Control codes; ``shortcut`` and ``match_values`` are None when the file
    leaves them out.
    """

    code_id: str
    code_type: str
    control_code: str | None
    display_text: str
    numeric_value: int
    string_value: str
    visible_in_coda: bool
    shortcut: str | None = None
    match_values: tuple[str, ...] | None = None

    @property
    def is_control(self) -> bool:
        """True for a Control code (NA, NS, NC, NR, NIC, STOP, WS)."""
        return self.code_type == CONTROL

    @property
    def is_normal(self) -> bool:
        """True for a Normal code (an answer category)."""
        return self.code_type == NORMAL


@dataclass(frozen=True)
class CodeScheme:
    """A code scheme: its identity and its codes in file order, with lookups built once.

    | lookup                             | gives                                               |
    | ---------------------------------- | --------------------------------------------------- |
    | ``code_by_id("code-63dcde9a")``    | that code, or SchemeError                           |
    | ``has_code_id("code-63dcde9a")``   | True / False                                        |
    | ``control(NC)``                    | the scheme's NC code, or None if it has none        |
    | ``code_for_match_value("male")``   | first code whose MatchValues contain it, or error   |
    | ``normal_codes``                   | the Normal codes in file order                      |
    """

    scheme_id: str
    name: str
    version: str
    codes: tuple[Code, ...]
    _by_id: dict[str, Code] = field(init=False, repr=False, compare=False)
    _by_control: dict[str, Code] = field(init=False, repr=False, compare=False)
    _by_match_value: dict[str, Code] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_id: dict[str, Code] = {}
        by_control: dict[str, Code] = {}
        by_match_value: dict[str, Code] = {}
        for code in self.codes:
            by_id.setdefault(code.code_id, code)
            if code.control_code is not None:
                by_control.setdefault(code.control_code, code)
            for value in code.match_values or ():
                # The first code in file order wins, as in 2019.
                by_match_value.setdefault(value, code)
        object.__setattr__(self, "_by_id", by_id)
        object.__setattr__(self, "_by_control", by_control)
        object.__setattr__(self, "_by_match_value", by_match_value)

    def code_by_id(self, code_id: str) -> Code:
        """The code with this CodeID; a SchemeError naming the scheme and the id if there is none."""
        try:
            return self._by_id[code_id]
        except KeyError:
            raise SchemeError(
                f"scheme {self.name!r} ({self.scheme_id}) has no code with CodeID {code_id!r}"
            ) from None

    def has_match_value(self, value: str) -> bool:
        """Whether a code of the scheme holds ``value`` among its MatchValues."""
        return value in self._by_match_value

    def has_code_id(self, code_id: str) -> bool:
        """Whether the scheme has a code with this CodeID."""
        return code_id in self._by_id

    def control(self, control_code: str) -> Code | None:
        """The scheme's code for a control code such as ``NA``, or None when the scheme lacks it.

        Operator has only NA and NC, and WS - Correct Dataset only NR, so callers must handle None.
        """
        return self._by_control.get(control_code)

    def code_for_match_value(self, value: str) -> Code:
        """The first code in file order whose MatchValues contain ``value``.

        Raises a SchemeError naming the scheme and the value when no code matches; with the shipped schemes and
        cleaners this cannot happen, so it signals a scheme file that does not fit its cleaner.
        """
        try:
            return self._by_match_value[value]
        except KeyError:
            raise SchemeError(
                f"scheme {self.name!r} ({self.scheme_id}) has no code whose MatchValues contain {value!r}"
            ) from None

    @property
    def normal_codes(self) -> tuple[Code, ...]:
        """The Normal codes, in file order."""
        return tuple(code for code in self.codes if code.code_type == NORMAL)

    @property
    def control_codes(self) -> tuple[Code, ...]:
        """The Control codes, in file order."""
        return tuple(code for code in self.codes if code.code_type == CONTROL)


def load_code_scheme(path: str | os.PathLike[str]) -> CodeScheme:
    """Reads and validates one scheme file.

    Every check of datasets-and-codebook.md 6.1 and coda.md section 3 is applied; the first problem raises a
    SchemeError naming the file, the code (index in ``Codes`` and CodeID) and the field.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark (some Windows editors) is read past
    except FileNotFoundError:
        raise SchemeError("code scheme file not found", path=path) from None
    except (OSError, UnicodeDecodeError) as error:
        raise SchemeError(f"cannot read code scheme file: {error}", path=path) from None
    try:
        data = json.loads(text, object_pairs_hook=note_repeated_keys)
    except json.JSONDecodeError as error:
        raise SchemeError(
            f"not valid JSON ({json_error_place(error)})", path=path
        ) from None
    repeated = repeated_keys(data)
    if repeated:
        raise SchemeError(repeated[0], path=path)
    return _scheme_from_json(data, path)


def _scheme_from_json(data: object, path: Path) -> CodeScheme:
    if not isinstance(data, dict):
        raise SchemeError(f"a scheme file must hold a JSON object, found {json_type(data)}", path=path)
    unknown = sorted(set(data) - _SCHEME_KEYS - _IGNORED_SCHEME_KEYS)
    if unknown:
        raise SchemeError(f"unknown key; allowed: {', '.join(sorted(_SCHEME_KEYS))}", path=path,
                          field=unknown[0])
    scheme_id = _required_text(data, "SchemeID", path, None)
    name = _required_text(data, "Name", path, None)
    version = _required_text(data, "Version", path, None)
    raw_codes = data.get("Codes")
    if not isinstance(raw_codes, list):
        raise SchemeError(f"must be a list of code objects, found {json_type(raw_codes)}", path=path,
                          field="Codes")

    codes: list[Code] = []
    first_index: dict[tuple[str, object], int] = {}
    for index, raw in enumerate(raw_codes):
        code = _code_from_json(raw, index, path)
        # Coda refuses a scheme whose CodeIDs, DisplayTexts or NumericValues repeat (coda.md section 3); a repeated
        # StringValue would name two matrix columns alike and make a CSV cell stand for either code.
        for key, value in (("CodeID", code.code_id), ("DisplayText", code.display_text),
                           ("NumericValue", code.numeric_value), ("StringValue", code.string_value)):
            earlier = first_index.setdefault((key, value), index)
            if earlier != index:
                raise SchemeError(f"{value!r} repeats Codes[{earlier}]; it must be unique in the scheme",
                                  path=path, record=_code_place(index, code.code_id), field=key)
        codes.append(code)
    return CodeScheme(scheme_id=scheme_id, name=name, version=version, codes=tuple(codes))


def _code_from_json(raw: object, index: int, path: Path) -> Code:
    if not isinstance(raw, dict):
        raise SchemeError(f"a code must be a JSON object, found {json_type(raw)}", path=path,
                          record=_code_place(index, None))
    code_id = raw.get("CodeID")
    place = _code_place(index, code_id if isinstance(code_id, str) and code_id else None)
    unknown = sorted(set(raw) - _CODE_KEYS - _IGNORED_CODE_KEYS)
    if unknown:
        raise SchemeError(f"unknown key; allowed: {', '.join(sorted(_CODE_KEYS))}", path=path, record=place,
                          field=unknown[0])

    code_id = _required_text(raw, "CodeID", path, place)
    code_type = raw.get("CodeType")
    if code_type not in _CODE_TYPES:
        raise SchemeError(f"must be one of {', '.join(_CODE_TYPES)}, found {code_type!r}", path=path,
                          record=place, field="CodeType")
    control_code = raw.get("ControlCode")
    if code_type == CONTROL:
        if control_code not in CONTROL_CODES:
            raise SchemeError(f"a Control code needs one of {', '.join(CONTROL_CODES)}, found {control_code!r}",
                              path=path, record=place, field="ControlCode")
    elif "ControlCode" in raw:
        raise SchemeError("only Control codes may have a ControlCode", path=path, record=place,
                          field="ControlCode")
    display_text = _required_text(raw, "DisplayText", path, place)
    numeric_value = raw.get("NumericValue")
    if not isinstance(numeric_value, int) or isinstance(numeric_value, bool):
        raise SchemeError(f"must be an integer, found {numeric_value!r}", path=path, record=place,
                          field="NumericValue")
    string_value = _required_text(raw, "StringValue", path, place)
    visible = raw.get("VisibleInCoda")
    if not isinstance(visible, bool):
        raise SchemeError(f"must be true or false, found {visible!r}", path=path, record=place,
                          field="VisibleInCoda")
    shortcut = raw.get("Shortcut")
    if shortcut is not None and not (isinstance(shortcut, str) and len(shortcut) == 1):
        raise SchemeError(f"must be a single character, found {shortcut!r}", path=path, record=place,
                          field="Shortcut")
    match_values = raw.get("MatchValues")
    if match_values is not None:
        if not isinstance(match_values, list) or not all(isinstance(v, str) and v for v in match_values):
            raise SchemeError(f"must be a list of non-empty strings, found {match_values!r}", path=path,
                              record=place, field="MatchValues")
        match_values = tuple(match_values)
    return Code(
        code_id=code_id,
        code_type=code_type,
        control_code=control_code if code_type == CONTROL else None,
        display_text=display_text,
        numeric_value=numeric_value,
        string_value=string_value,
        visible_in_coda=visible,
        shortcut=shortcut,
        match_values=match_values,
    )


def _required_text(obj: Mapping[str, object], key: str, path: Path, place: str | None) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        found = "nothing" if key not in obj else repr(value)
        raise SchemeError(f"must be a non-empty string, found {found}", path=path, record=place, field=key)
    return value


def _code_place(index: int, code_id: str | None) -> str:
    return f"Codes[{index}]" if code_id is None else f"Codes[{index}] (CodeID {code_id!r})"
