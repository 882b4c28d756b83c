"""The cleaners: rules that read a respondent's free text and suggest a code, and the noise rule.

Every rule is a pure function of the text, specified in cleaners.md and reproducing the 2019 library
(AfricasVoices/CoreDataModules) character for character, except the age auto-coder, which the new pipeline
fixes (README): it accepts 10..99 and reads number words as whole words. The noise rule keeps the 2019 age
check, so noise flags, and with them the CSVs, stay as in 2019.

The patterns are data (``data/somali_demographic_patterns.json``, ``data/somalia_location_patterns.json``),
read and compiled once on first use, never at import. The same answers recur thousands of times in a
series, so each cleaner is memoised on its input text; a cache hit costs well under a microsecond, while the
district cleaner's uncached worst case tries all 74 of its district patterns.

| cleaner (``CLEANERS`` key) | function                        | returns                                   |
| -------------------------- | ------------------------------- | ----------------------------------------- |
| ``gender``                 | ``clean_gender``                | ``male``, ``female`` or ``NC``            |
| ``yes_no``                 | ``clean_yes_no``                | ``yes``, ``no`` or ``NC``                 |
| ``age``                    | ``clean_age``                   | ``"10"`` .. ``"99"`` or ``NC``            |
| ``mogadishu_sub_district`` | ``clean_mogadishu_sub_district``| one of the 16 sub-districts or ``NC``     |
| ``somalia_district``       | ``clean_somalia_district``      | one of the 74 districts or ``NC``         |
| ``operator``               | ``clean_operator``              | ``hormud``, ``somtel``, ... or ``NC``     |

Each cleaner's labels carry the origin id of its :class:`Cleaner` entry, e.g. ``redss_pipeline.cleaners.gender@1``
(README decision 10); the number is the rule's version and changes whenever the rule's results change. To add a
cleaner: write the function, add one :class:`Cleaner` to :data:`CLEANERS` and its name to
:data:`redss_pipeline.core.config.CLEANER_NAMES`, and give the plans that use it a scheme whose MatchValues hold its
results.
"""

from __future__ import annotations

import functools
import json
import re
import warnings
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, Callable, Mapping

from redss_pipeline.core.code_scheme import NC
from redss_pipeline.core.errors import ConfigError
from redss_pipeline.deidentify.operators import clean_operator, operator_prefixes
from redss_pipeline.generate.locations import derive_location_levels

if TYPE_CHECKING:
    from redss_pipeline.core.config import PipelineConfig

__all__ = [
    "CLEANERS",
    "Cleaner",
    "cleaner_named",
    "DEFAULT_NOISE_MIN_LENGTH",
    "AGE_RANGE",
    "cleaner_scheme_problems",
    "is_noise",
    "looks_demographic",
    "is_only_yes_no",
    "clean_gender",
    "clean_yes_no",
    "clean_urban_rural",
    "clean_age",
    "core_age_2019",
    "clean_mogadishu_sub_district",
    "clean_somalia_district",
    "clean_operator",
    "derive_location_levels",
]

AGE_RANGE = range(10, 100)
"""The ages the age cleaner gives (cleaners.md 5.5): 10 to 99."""
DEFAULT_NOISE_MIN_LENGTH = 10
"""The REDSS shows' minimum length: shorter texts are noise unless they look demographic."""

# Enough for every distinct answer of a series; least recently used texts are dropped beyond it.
_CACHE_SIZE = 1 << 17


# --- the compiled rules ------------------------------------------------------------------------------------

_Codes = tuple[tuple[str, "re.Pattern[str]"], ...]


@dataclass(frozen=True)
class _Rules:
    noise: re.Pattern[str]
    only_yes_no: re.Pattern[str]
    gender: _Codes
    yes_no: _Codes
    urban_rural: _Codes
    mogadishu_sub_district: _Codes
    somalia_district: _Codes
    look_alikes: dict[int, str]
    two_digits: re.Pattern[str]
    number_words_2019: tuple[tuple[float, re.Pattern[str]], ...]
    age_vocabulary: Mapping[str, float]


# A word for the age auto-coder: a maximal run of Unicode letters (digits, "_" and punctuation separate words).
_WORD = re.compile(r"[^\W\d_]+")


def _read_data(name: str) -> Any:
    return json.loads(resources.files("redss_pipeline").joinpath("data", name).read_text("utf-8"))


def _compile(alternatives: list[str]) -> re.Pattern[str]:
    # Joining the top-level alternatives with "|" gives back the 2019 pattern exactly (cleaners.md section 1).
    with warnings.catch_warnings():
        # Some 2019 alternatives are odd bracket expressions; Python may warn about them, never fail.
        warnings.simplefilter("ignore", FutureWarning)
        return re.compile("|".join(alternatives), re.IGNORECASE)


def _compile_codes(codes: list[dict[str, Any]]) -> _Codes:
    return tuple((entry["code"], _compile(entry["alternatives"])) for entry in codes)


@functools.cache
def _rules() -> _Rules:
    demographic = _read_data("somali_demographic_patterns.json")
    locations = _read_data("somalia_location_patterns.json")
    vocabulary = _read_data("somali_age_vocabulary.json")
    return _Rules(
        noise=_compile(demographic["noise"]),
        only_yes_no=_compile(demographic["only_yes_no"]),
        gender=_compile_codes(demographic["gender"]),
        yes_no=_compile_codes(demographic["yes_no"]),
        urban_rural=_compile_codes(demographic["urban_rural"]),
        mogadishu_sub_district=_compile_codes(locations["mogadishu_sub_district"]),
        somalia_district=_compile_codes(locations["somalia_district"]),
        look_alikes=str.maketrans(demographic["age_digit_look_alikes"]),
        # Case-sensitive on purpose: the 2019 digit search had no flags.
        two_digits=re.compile(demographic["age_two_digit_number"]),
        number_words_2019=tuple(
            (entry["value"], _compile(entry["alternatives"])) for entry in demographic["age_number_words_2019"]
        ),
        age_vocabulary={word.lower(): entry["value"] for entry in vocabulary["words"] for word in entry["words"]},
    )


def _first_code(codes: _Codes, text: str) -> str:
    """The first code, in list order, whose pattern matches anywhere in the text; NC if none does."""
    for code, pattern in codes:
        if pattern.search(text):
            return code
    return NC


# --- the cleaners ----------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=_CACHE_SIZE)
def clean_gender(text: str) -> str:
    """``male``, ``female`` or ``NC``: English and Somali words, given names, and the letters m and f."""
    return _first_code(_rules().gender, text)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def clean_yes_no(text: str) -> str:
    """``yes``, ``no`` or ``NC``; a text holding both (``haa maya``) is ``yes``, as yes is tested first."""
    return _first_code(_rules().yes_no, text)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def clean_urban_rural(text: str) -> str:
    """``urban``, ``rural`` or ``NC``. Used only by the noise rule; no column is coded with it."""
    return _first_code(_rules().urban_rural, text)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def clean_mogadishu_sub_district(text: str) -> str:
    """One of the 16 Mogadishu sub-districts (its canonical name, the scheme's MatchValue) or ``NC``."""
    return _first_code(_rules().mogadishu_sub_district, text)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def clean_somalia_district(text: str) -> str:
    """One of the 74 Somalia districts (canonical name) or ``NC``; ``mogadishu`` is tried last, as in 2019."""
    return _first_code(_rules().somalia_district, text)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def is_only_yes_no(text: str) -> bool:
    """Whether the whole text is a bare Somali yes or no (``haa``, ``haye``, ``maya``), maybe with filler."""
    return _rules().only_yes_no.search(text) is not None


def _two_digit_number(text: str) -> int | None:
    """The first standalone two-digit number after the digit look-alike replacement (``to`` -> 70)."""
    rules = _rules()
    match = rules.two_digits.search(text.translate(rules.look_alikes))
    return None if match is None else int(match.group())


@functools.lru_cache(maxsize=_CACHE_SIZE)
def core_age_2019(text: str) -> int | float | None:
    """The 2019 library's age reading, kept for the noise rule: a number with 10 < n < 90, or None.

    Digits first, then the sum of every 2019 number-word pattern found anywhere in the text, each once, so
    ``afartan`` reads 44 and ``labaatan iyo bar`` 22.5 (cleaners.md 5.3-5.4).
    """
    digits = _two_digit_number(text)
    if digits is not None and 10 < digits < 90:
        return digits
    total: int | float = 0
    found = False
    for value, pattern in _rules().number_words_2019:
        if pattern.search(text):
            total += value
            found = True
    if found and 10 < total < 90:
        return total
    return None


@functools.lru_cache(maxsize=_CACHE_SIZE)
def clean_age(text: str) -> str:
    """The age as a decimal string ``"10"`` .. ``"99"``, or ``NC`` (cleaners.md 5.5).

    Digits first (after the 2019 look-alike replacement, so ``I5`` is 15); otherwise the sum of the number
    words, read as whole words: ``toban iyo sideed`` is 18, ``afartan`` 40, ``lixdan`` 60, while ``often``
    holds no number word. A sum outside 10..99 or with a half (``bar``) is NC.
    """
    rules = _rules()
    digits = _two_digit_number(text)
    if digits is not None and digits in AGE_RANGE:
        return str(digits)
    vocabulary = rules.age_vocabulary
    total: float = 0
    found = False
    for word in _WORD.findall(text):
        value = vocabulary.get(word.lower())
        if value is not None:
            total += value
            found = True
    if found and float(total).is_integer() and int(total) in AGE_RANGE:
        return str(int(total))
    return NC


# --- the noise rule --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=_CACHE_SIZE)
def looks_demographic(text: str) -> bool:
    """Whether a text reads as an answer to a demographic question, which saves it from the noise flag.

    True for a bare yes/no, a gender, a yes/no answer, an urban/rural word, a district or town, or an age
    by the 2019 reading (cleaners.md 2.3). The tests are broad: ``m`` reads as male and ``to`` as age 70.
    """
    return (
        is_only_yes_no(text)
        or clean_gender(text) != NC
        or clean_yes_no(text) != NC
        or clean_urban_rural(text) != NC
        or clean_somalia_district(text) != NC
        or core_age_2019(text) is not None
    )


@functools.lru_cache(maxsize=_CACHE_SIZE)
def is_noise(text: str, min_length: int = DEFAULT_NOISE_MIN_LENGTH) -> bool:
    """The 2019 noise rule for a show message's text (cleaners.md 2.1).

    Noise is an acknowledgement (``ok``, ``asc``, ``kalkaal``, ``mahad sanid``, ...) or a text shorter than
    ``min_length`` code points, unless it looks demographic. The empty text is noise.
    """
    if len(text) >= min_length and _rules().noise.search(text) is None:
        return False
    return not looks_demographic(text)


# --- the registry ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cleaner:
    """A cleaner a configuration file may name (``survey_plans[].cleaner``, ``operator.cleaner``).

    ``clean`` is the rule. ``possible_results`` gives every value it can give besides NC (computed when asked, as the
    patterns are read on first use): what the scheme of a plan it
    cleans for must hold among its MatchValues (:func:`cleaner_scheme_problems`). ``version`` is the rule's
    version, in the origin id of its labels (:attr:`origin_id`): raise it whenever the rule's results change, so
    that labels say which rule made them. A cleaner the noise rule also reads (gender, yes/no, and the urban/rural
    and district patterns, via :func:`looks_demographic`) changes noise flags, and with them the CSVs, when its
    patterns change: the golden test then fails.
    """

    name: str
    clean: Callable[[str], str]
    possible_results: Callable[[], frozenset[str]]
    version: int = 1

    @property
    def origin_id(self) -> str:
        """The stable ``Origin.OriginID`` of its labels, e.g. ``redss_pipeline.cleaners.gender@1``."""
        return f"redss_pipeline.cleaners.{self.name}@{self.version}"


def _codes(rules: Callable[[], _Codes]) -> Callable[[], frozenset[str]]:
    return lambda: frozenset(code for code, _ in rules())


CLEANERS: dict[str, Cleaner] = {cleaner.name: cleaner for cleaner in (
    Cleaner("gender", clean_gender, _codes(lambda: _rules().gender)),
    Cleaner("mogadishu_sub_district", clean_mogadishu_sub_district, _codes(lambda: _rules().mogadishu_sub_district)),
    Cleaner("somalia_district", clean_somalia_district, _codes(lambda: _rules().somalia_district)),
    Cleaner("age", clean_age, lambda: frozenset(str(age) for age in AGE_RANGE)),
    Cleaner("yes_no", clean_yes_no, _codes(lambda: _rules().yes_no)),
    Cleaner("operator", clean_operator, lambda: frozenset(operator_prefixes().values())),
)}
"""The cleaners a configuration file may name, by name: the one list to add a cleaner to (the configuration's
schema takes its names from :data:`redss_pipeline.core.config.CLEANER_NAMES`, which a test keeps equal to it)."""


def cleaner_scheme_problems(config: PipelineConfig) -> list[str]:
    """A plan's cleaner suggests the code whose MatchValues hold its result (pipeline.md 7.5.2): one line per plan
    whose scheme lacks a result its cleaner can give (a new question's scheme made in Coda's editor, without
    MatchValues), by JSON path and scheme file, as the configuration check words its problems. Stage 3 and the
    configuration command check this once the file is valid, before any work; otherwise the run stopped at the
    first answer the cleaner understood."""
    cleaned = [(f"$.survey_plans[{i}].scheme", plan.scheme, plan.cleaner)
               for i, plan in enumerate(config.survey_plans) if plan.cleaner is not None]
    cleaned.append(("$.operator.scheme", config.operator.scheme, config.operator.cleaner))
    problems = []
    for where, scheme, cleaner in cleaned:
        possible = cleaner_named(cleaner).possible_results()
        missing = sorted(value for value in possible if not scheme.has_match_value(value))
        if missing:
            name = next(name for name, held in config.schemes.items() if held == scheme)
            shown = ", ".join(map(repr, missing[:5])) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            problems.append(f"{where}: scheme {name!r} ({config.scheme_files.get(name, scheme.scheme_id)}) has no "
                            f"code whose MatchValues hold {shown}, which the {cleaner} cleaner gives")
    return problems


def cleaner_named(name: str) -> Cleaner:
    """The cleaner a configuration names; a name the registry lacks is a configuration error (the configuration's
    schema refuses it first, unless :data:`redss_pipeline.core.config.CLEANER_NAMES` names a cleaner
    :data:`CLEANERS` lacks)."""
    try:
        return CLEANERS[name]
    except KeyError:
        raise ConfigError([f"unknown cleaner {name!r}; known cleaners: {', '.join(CLEANERS)}"]) from None
