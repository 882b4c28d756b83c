"""Phone numbers typed into messages, found with libphonenumber and replaced by ``<phone number>``.

Contacts' URNs never leave the UUID table, but listeners also type numbers into their answers ("call me on
0615 123 456"). Every answer text is therefore passed through a :class:`PhoneRedactor` before it is stored or
written anywhere outside ``UUIDs/``: stage 2 when a run is stored and when a raw record is made, stage 3 when it
reads raw files (2019 files hold the answers verbatim).

What counts as a phone number (decided with Somali formats and Somali answers in mind):

- a candidate is what libphonenumber's ``PhoneNumberMatcher`` finds with leniency ``VALID``: the digits must form
  a number that is valid in the region it is read for. Somalia (``SO``) is the default region: national numbers
  with or without the trunk ``0`` (``0615 123 456``, ``615123456``, ``061-5123456``), with ``+252``, ``00252`` or a
  bare ``252`` in front; further regions (configuration ``phone_redaction.other_regions``) are tried as well, so a
  Kenyan ``0712 345 678`` is found when ``KE`` is configured. A number written with its country code is found
  whatever the region. ``STRICT_GROUPING`` is not used: people group digits as they like (``0615 123 456``);
- ages, years, codes (``25``, ``1998``, ``4455``, ``S01E01``) and dates are not valid numbers and stay;
- exception: a Somali landline is 6 or 7 digits, exactly like an amount of money (``1000000`` or ``1 500 000``
  shillings). A number written without its country code is therefore kept when libphonenumber types it as a
  fixed line with fewer than 8 digits. Written with ``+252`` it is redacted. A 9-digit amount that reads as a
  valid mobile number (``615123456``) is redacted: no rule can tell it from the number.
- the matcher reads a run of space-separated digit groups as one number, so it misses a grouped number next
  to other groups (``25 0615 123 456``, two numbers in a row), and it does not read groups split by a line
  break, a tab or a thin space (``0615\n123456``: an SMS typed on two lines). Runs of digit groups separated by
  whitespace of any kind are read again group by group with libphonenumber's parser; a window of groups counts
  when it is a valid mobile number of at least 9 digits (stricter than the matcher: ``2018 2019`` read together
  would be a valid 8-digit number);
- the matcher never reads a number out of a word, but listeners glue numbers to words (``wac0615234567``,
  "call 0615234567"; ``0615234567pls``; ``wac061 777 0012``). A run of digits glued to a letter is redacted when
  it alone is a valid mobile number of at least 9 digits, by the same stricter check, and the runs of digit
  groups above may start or end glued to a word.

Speed: the matcher costs 0.1-0.3 ms a text, so a text with fewer digits than the shortest valid number is never
handed to it, and each distinct text is examined once per redactor (the same answers recur).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import phonenumbers
from phonenumbers import Leniency, PhoneNumberMatcher, PhoneNumberType

from redss_pipeline.core.records import Layer, Record

__all__ = [
    "PLACEHOLDER",
    "DEFAULT_REGION",
    "RedactionSettings",
    "PhoneRedactor",
    "is_supported_region",
    "redact_raw_records",
]

PLACEHOLDER = "<phone number>"
DEFAULT_REGION = "SO"

#: National-format fixed-line numbers shorter than this are kept (they read like amounts; see the docstring).
_MIN_NATIONAL_FIXED_LINE_DIGITS = 8
_DIGIT = re.compile(r"\d")
#: A run of digit groups separated by whitespace of any kind (spaces, tabs, line breaks, thin spaces; a group may
#: hold dashes, dots, brackets: ``061-512``), possibly glued to a word (``wac061 777 0012``), and what
#: :meth:`PhoneRedactor._numbers_among_digit_groups` splits it into.
_DIGIT_RUN = re.compile(r"(?<![\d().\-+])\+?[\d(][\d().\-]*+(?:\s+\+?[\d(][\d().\-]*+)*+")
_GROUP = re.compile(r"\S+")
#: What separates lines or columns rather than the groups of one number, and how a number written across them
#: starts (see :meth:`PhoneRedactor._numbers_among_digit_groups`).
_LINE_OR_TAB = re.compile(r"[\n\r\t\v\f\x1c-\x1e\x85\u2028\u2029]")
_NUMBER_START = re.compile(r"\+|0|252")
#: A run of digits glued to a letter before or after it (``wac0615234567``), which the matcher passes over.
_GLUED_DIGITS = re.compile(r"(?<=[^\W\d_])\+?\d+|\+?\d+(?=[^\W\d_])")
_MOBILE_TYPES = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)
_MIN_GROUPED_DIGITS = 9
#: Keys of a raw record holding a result's texts: ``"<K> (Category|Value|Text|Name) - <flow>"`` (rapid-pro.md
#: section 4.3). Times, run ids, the uid and the run's own fields are never read as phone numbers.
_RESULT_TEXT_KEY = re.compile(r" \((?:Category|Value|Text|Name)\) - ")


def is_supported_region(region: object) -> bool:
    """Whether libphonenumber knows the two-letter region code (``SO``, ``KE``, ...)."""
    return isinstance(region, str) and region in phonenumbers.SUPPORTED_REGIONS


@dataclass(frozen=True)
class RedactionSettings:
    """The regions numbers are read for: Somalia first, then the configured others."""

    other_regions: tuple[str, ...] = ()

    @property
    def regions(self) -> tuple[str, ...]:
        return (DEFAULT_REGION,) + tuple(r for r in self.other_regions if r != DEFAULT_REGION)


def _general_description(region: str) -> phonenumbers.PhoneNumberDesc:
    """libphonenumber's description of every number of a supported region (its possible lengths, ...)."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None or metadata.general_desc is None:
        raise ValueError(f"libphonenumber has no numbering plan for the region {region!r}")
    return metadata.general_desc


def _shortest_number(regions: Iterable[str]) -> int:
    """The fewest digits a number can have and still be valid: written nationally in one of ``regions``, or
    written with any country code in front."""
    national = min(min(_general_description(r).possible_length) for r in regions)
    international = min(
        len(str(metadata.country_code)) + min(metadata.general_desc.possible_length)
        for metadata in map(phonenumbers.PhoneMetadata.metadata_for_region, phonenumbers.SUPPORTED_REGIONS)
        if metadata is not None and metadata.general_desc is not None and metadata.general_desc.possible_length
    )
    return min(national, international)


class PhoneRedactor:
    """Replaces the phone numbers of texts by :data:`PLACEHOLDER` and counts them.

    One redactor serves one stage run: it remembers each distinct text it examined (a plain dict owned by the
    redactor, dropped with it) and counts every number it replaced in :attr:`count`, once per text it was asked
    about (a text that occurs twice counts twice).
    """

    def __init__(self, settings: RedactionSettings = RedactionSettings()):
        unknown = [r for r in settings.regions if not is_supported_region(r)]
        if unknown:
            raise ValueError(f"unknown phone number region(s): {', '.join(map(str, unknown))}")
        self._regions = settings.regions
        self._min_digits = _shortest_number(self._regions)
        self._seen: dict[str, tuple[str, int]] = {}
        self.count = 0

    def redact(self, text: str) -> str:
        """``text`` with every phone number replaced by ``<phone number>``; other text is kept as it is."""
        if _DIGIT.search(text) is None or len(_DIGIT.findall(text)) < self._min_digits:
            return text  # the common answer: no digit at all, found without building a list
        known = self._seen.get(text)
        if known is None:
            spans = self._spans(text)
            redacted = text
            for start, end in reversed(spans):
                redacted = redacted[:start] + PLACEHOLDER + redacted[end:]
            known = self._seen[text] = (redacted, len(spans))
        self.count += known[1]
        return known[0]

    def redact_value(self, value: Any) -> Any:
        """:meth:`redact` for strings; any other value (None, a number) is returned as it is."""
        return self.redact(value) if isinstance(value, str) else value

    def redact_fields(self, data: Mapping[str, Any], fields: Iterable[str]) -> dict[str, Any]:
        """A copy of ``data`` with the string values of ``fields`` (those present) redacted."""
        result = dict(data)
        for name in fields:
            if name in result:
                result[name] = self.redact_value(result[name])
        return result

    def _spans(self, text: str) -> list[tuple[int, int]]:
        """The (start, end) of every number in ``text``, overlapping finds of several regions merged."""
        found: list[tuple[int, int]] = []
        for region in self._regions:
            for match in PhoneNumberMatcher(text, region, leniency=Leniency.VALID):
                if self._is_kept(match.raw_string, match.number, region):
                    continue
                found.append((match.start, match.end))
        found += self._numbers_among_digit_groups(text, found)
        found += [(run.start(), run.end()) for run in _GLUED_DIGITS.finditer(text)
                  if not any(s < run.end() and run.start() < e for s, e in found) and self._is_number(run.group())]
        found.sort()
        merged: list[tuple[int, int]] = []
        for start, end in found:
            if merged and start < merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((start, end))
        return merged

    def _numbers_among_digit_groups(self, text: str, found: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Numbers the matcher misses: grouped numbers with other digit groups next to them (``25 0615 123 456``,
        two grouped numbers in a row), which it reads as one invalid number; numbers whose groups are split by a
        line break, a tab or a thin space; numbers in groups glued to a word.

        Each run of digit groups not already found is read again as consecutive groups, longest first from each
        group on, with libphonenumber's parser and validity check (:meth:`_is_number`). Groups on several lines
        (or split by tabs) are read together only when the first is written as a phone number starts (``0``,
        ``+``, ``00`` or ``252``): a list of amounts or ages one per line (``600\n800\n300``) can read as a
        valid number, a number typed across two lines starts as numbers do."""
        extra: list[tuple[int, int]] = []
        for run in _DIGIT_RUN.finditer(text):
            if len(_DIGIT.findall(run.group())) < self._min_digits:
                continue
            if any(start <= run.start() and run.end() <= end for start, end in found):
                continue
            groups = [(run.start() + g.start(), run.start() + len(g.group().rstrip(".-")) + g.start())
                      for g in _GROUP.finditer(run.group())]
            first = 0
            while first < len(groups):
                for last in range(len(groups) - 1, first - 1, -1):
                    start, end = groups[first][0], groups[last][1]
                    if any(s < end and start < e for s, e in found):
                        continue
                    if _LINE_OR_TAB.search(text, start, end) and not _NUMBER_START.match(text, start):
                        continue
                    if not self._is_number(text[start:end]):
                        continue
                    extra.append((start, end))
                    first = last
                    break
                first += 1
        return extra

    def _is_number(self, candidate: str) -> bool:
        """Whether digit groups read together are a mobile number of at least 9 digits: stricter than the
        matcher, since groups such as ``2018 2019`` or ``60 000 000`` read together can make a valid 8-digit
        number by chance."""
        if len(_DIGIT.findall(candidate)) < self._min_digits:
            return False
        candidate = " ".join(candidate.split())  # the parser reads groups split by spaces, not by line breaks
        for region in self._regions:
            try:
                number = phonenumbers.parse(candidate, region)
            except phonenumbers.NumberParseException:
                continue
            if (phonenumbers.is_valid_number(number)
                    and phonenumbers.number_type(number) in _MOBILE_TYPES
                    and len(phonenumbers.national_significant_number(number)) >= _MIN_GROUPED_DIGITS):
                return True
        return False

    @staticmethod
    def _is_kept(raw: str, number: phonenumbers.PhoneNumber, region: str) -> bool:
        """A short fixed-line number written without its country code: most likely an amount of money."""
        if phonenumbers.number_type(number) != PhoneNumberType.FIXED_LINE:
            return False
        if len(phonenumbers.national_significant_number(number)) >= _MIN_NATIONAL_FIXED_LINE_DIGITS:
            return False
        written = phonenumbers.parse(raw, region, keep_raw_input=True)
        return written.country_code_source == phonenumbers.CountryCodeSource.FROM_DEFAULT_COUNTRY


def redact_raw_records(records: Iterable[Record], redactor: PhoneRedactor) -> list[Record]:
    """Raw records (as read from a raw file) with the phone numbers in their result texts redacted.

    Every layer is redacted, not only the effective values, so neither the history nor the audit trail built
    from it holds the number; a layer keeps its step (who wrote it and when). A record without a number is
    returned as it is (the same object).
    """
    text_keys: dict[str, bool] = {}  # key -> whether it holds a result's text (looked up inline: a hot loop)

    def redacted_record(record: Record) -> Record:
        layers = []
        changed = False
        for layer in record.layers:
            data = None
            for key, value in layer.data.items():
                if isinstance(value, str):
                    is_text = text_keys.get(key)
                    if is_text is None:
                        is_text = text_keys[key] = _RESULT_TEXT_KEY.search(key) is not None
                    if not is_text:
                        continue
                    new_value: Any = redactor.redact(value)
                elif isinstance(value, Record):
                    new_value = redacted_record(value)
                else:
                    continue
                if new_value is not value and new_value != value:
                    if data is None:
                        data = dict(layer.data)
                    data[key] = new_value
            if data is not None:
                changed = True
                layer = Layer(layer.step, data)
            layers.append(layer)
        return Record.from_layers(tuple(layers)) if changed else record

    return [redacted_record(record) for record in records]
