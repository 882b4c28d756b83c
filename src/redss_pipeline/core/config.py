"""The pipeline configuration: one JSON file, validated before any work starts.

Everything the 2019 code hard-wired lives in ``pipeline_config.json`` (spec README, compatibility contract 4):
the Rapid Pro flows and their fetch modes, result keys, coding plans with the scheme file of each, the project
window, the channel and week windows, the operational corrections, the test contacts, the ICR sample, the output
and Drive file names. The Rapid Pro server is not in it: it is a command-line argument (README decision 5), and
secrets never are.

Loading validates the whole file and reports every problem at once, each naming the JSON path, what was
expected and what was found, then raises :class:`~redss_pipeline.core.errors.ConfigError` (exit status 2):

    pipeline_config.json: 3 problem(s) in the configuration file:
    - $.icr.sample_size: expected an integer, got "200"
    - $.rqa_plans[1]: missing key 'scheme'
    - $.code_schemes.files.gender: scheme file code_schemes/gendr.json does not exist

Paths inside the file (the code-scheme directory) are relative to the configuration file, never to the current
directory. The typed model below is frozen; stages receive it as a parameter.

The schema itself is :data:`CONFIG_SCHEMA` (JSON Schema, draft 2020-12); cross-field checks (names that must
refer to each other, windows that must be ordered, scheme files that must load) are in :func:`_check_references`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import jsonschema

from redss_pipeline.core.code_scheme import CONTROL_CODES, NA, NC, NR, CodeScheme, load_code_scheme
from redss_pipeline.core.errors import (
    ConfigError,
    SchemeError,
    UsageError,
    json_error_place,
    note_repeated_keys,
    repeated_keys,
)
from redss_pipeline.core.record_fields import PIPELINE_KEYS
from redss_pipeline.deidentify.phone_redaction import RedactionSettings, is_supported_region

__all__ = [
    "CONFIG_FILE_NAME",
    "CONFIG_SCHEMA",
    "FETCH_MODES",
    "CLEANER_NAMES",
    "LOCATION_LEVELS",
    "CODES_SUFFIX",
    "PipelineConfig",
    "FlowConfig",
    "RqaPlan",
    "BinaryPlan",
    "SurveyPlan",
    "OperatorPlan",
    "WsRedirect",
    "TimeWindowCorrection",
    "TimeRange",
    "IcrConfig",
    "OutputNames",
    "AnalysisConfig",
    "AgeCategory",
    "MAP_LEVELS",
    "default_config_path",
    "load_config",
    "parse_config",
]

CONFIG_FILE_NAME = "pipeline_config.json"
FORMAT_ID = "redss-pipeline-config/1"
FETCH_MODES = ("all", "latest-only")
CLEANER_NAMES = ("gender", "mogadishu_sub_district", "somalia_district", "age", "yes_no", "operator")
"""The cleaners a plan may name (the registry of stage 3's cleaners, :data:`~redss_pipeline.generate.cleaners.CLEANERS`)."""
LOCATION_LEVELS = ("mogadishu_sub_district", "district", "region", "state", "zone")
MAP_LEVELS = ("region", "district", "mogadishu_sub_district")
"""The location levels with bundled boundary files (participation maps, spec analysis.md section 5)."""
CODES_SUFFIX = "codes"
"""A show's codes are held in stage 3 under its analysis prefix and this (``rqa_s01e01_codes``)."""

_NAME = {"type": "string", "pattern": r"^[A-Za-z0-9_.\-]+$"}
# A name that becomes one file name inside a data-root folder (a flow's raw file, an output): never a path, never
# "." or "..", so no configuration can make the pipeline read or write outside its folder.
_FILE_NAME_PATTERN = r"^(?!\.\.?$)[^/\\\x00]+$"
_FILE_NAME = {"type": "string", "pattern": _FILE_NAME_PATTERN, "minLength": 1}
_DATETIME = {"type": "string", "format": "date-time-with-offset"}
_RANGE = {"type": "array", "prefixItems": [_DATETIME, _DATETIME], "minItems": 2, "maxItems": 2}
_RANGES = {"type": "array", "items": _RANGE, "minItems": 1}


#: Top-level sections a configuration may leave out (their defaults apply).
_OPTIONAL_SECTIONS = ("phone_redaction", "analysis")

_LEGEND_POSITIONS = ("lower right", "lower left", "upper right", "upper left", "center left", "center right")


def _obj(properties: dict, required: list[str] | None = None) -> dict:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
    }


CONFIG_SCHEMA: dict = _obj(
    {
        "format": {"const": FORMAT_ID},
        "project": _obj({"name": {"type": "string"}, "start": _DATETIME, "end": _DATETIME}),
        "rapid_pro": _obj(
            {
                "flows": {
                    "type": "array",
                    "minItems": 1,
                    "items": _obj({"name": _FILE_NAME, "mode": {"enum": list(FETCH_MODES)}}),
                },
                "test_contact_uuids": {"type": "array", "items": {"type": "string", "format": "uuid"}},
                # Incremental fetches re-read this many minutes before the newest modified_on seen (rapid-pro.md
                # section 3, decision 13): runs are stamped before they are committed. Default 60.
                "overlap_minutes": {"type": "integer", "minimum": 0, "maximum": 10080},
            },
            required=["flows", "test_contact_uuids"],
        ),
        "code_schemes": _obj(
            {
                "directory": {"type": "string", "minLength": 1},
                "files": {"type": "object", "additionalProperties": _FILE_NAME, "minProperties": 1},
            }
        ),
        "message_time_field": _NAME,
        "rqa_plans": {
            "type": "array",
            "minItems": 1,
            "items": _obj(
                {
                    "name": _NAME,
                    "flow": {"type": "string"},
                    "result_key": _NAME,
                    "raw_field": _NAME,
                    "id_field": _NAME,
                    "run_id_field": _NAME,
                    "coded_field": _NAME,
                    "scheme": _NAME,
                    "analysis_prefix": _NAME,
                    "binary": {
                        "oneOf": [
                            {"type": "null"},
                            _obj({"coded_field": _NAME, "scheme": _NAME, "analysis_key": _NAME}),
                        ]
                    },
                    "coda_file": _FILE_NAME,
                    "icr_file": _FILE_NAME,
                }
            ),
        },
        "survey_plans": {
            "type": "array",
            "minItems": 1,
            "items": _obj(
                {
                    "name": _NAME,
                    "flow": {"type": "string"},
                    "result_key": _NAME,
                    "raw_field": _NAME,
                    "time_field": _NAME,
                    "id_field": _NAME,
                    "coded_field": _NAME,
                    "scheme": _NAME,
                    "cleaner": {"enum": [None, *CLEANER_NAMES]},
                    "analysis_key": _NAME,
                    "coda_file": _FILE_NAME,
                    "location_level": {"enum": list(LOCATION_LEVELS)},
                },
                required=[
                    "name", "flow", "result_key", "raw_field", "time_field", "id_field", "coded_field", "scheme",
                    "cleaner", "analysis_key", "coda_file",
                ],
            ),
        },
        "operator": _obj(
            {"coded_field": _NAME, "scheme": _NAME, "cleaner": {"const": "operator"}, "analysis_key": _NAME}
        ),
        "operational_corrections": _obj(
            {
                "ws_redirect": {
                    "oneOf": [
                        {"type": "null"},
                        _obj(
                            {
                                "show": _NAME,
                                "scheme": _NAME,
                                "code_id": {"type": "string", "minLength": 1},
                                "to_show": _NAME,
                                "sent_on": _DATETIME,
                                "why": {"type": "string"},
                            },
                            required=["show", "scheme", "code_id", "to_show", "sent_on"],
                        ),
                    ]
                },
                "time_windows": {
                    "type": "array",
                    "items": _obj(
                        {
                            "id": {"type": "string", "minLength": 1},
                            "show": _NAME,
                            "after": _DATETIME,
                            "from": _DATETIME,
                            "until": _DATETIME,
                            "to_show": _NAME,
                            "sent_on": {"oneOf": [{"type": "null"}, _DATETIME]},
                            "why": {"type": "string"},
                        },
                        required=["id", "show", "to_show", "sent_on"],
                    ),
                },
            }
        ),
        "channels": {"type": "object", "additionalProperties": _RANGES, "minProperties": 1},
        "weeks": {"type": "object", "additionalProperties": _RANGES},
        "noise": _obj({"min_length": {"type": "integer", "minimum": 0}}),
        "icr": _obj({"sample_size": {"type": "integer", "minimum": 0}, "seed": {"type": "integer"}}),
        "outputs": _obj(
            {
                "messages_csv": _FILE_NAME,
                "individuals_csv": _FILE_NAME,
                "production_csv": _FILE_NAME,
                "audit_trail": _FILE_NAME,
            }
        ),
        "drive": _obj({"messages_csv": _FILE_NAME, "individuals_csv": _FILE_NAME, "production_csv": _FILE_NAME}),
        # Phone numbers typed into answers (deidentify/phone_redaction): Somalia is always read; these regions too.
        "phone_redaction": _obj(
            {"other_regions": {"type": "array", "items": {"type": "string", "format": "phone-region"},
                               "uniqueItems": True}}
        ),
        # -- analysis (issue 9): every key optional, absent keys take the defaults of AnalysisConfig ----------
        "analysis": _obj(
            {
                "breakdowns": {"type": "array", "items": _NAME},
                "cross_tabs": {"type": "array", "items": {"type": "array", "prefixItems": [_NAME, _NAME],
                                                          "minItems": 2, "maxItems": 2}},
                "age_categories": {
                    "type": "array",
                    "minItems": 1,
                    "items": _obj({"name": _NAME, "min": {"type": "integer"}, "max": {"type": "integer"}}),
                },
                "sample_messages": _obj({"per_code": {"type": "integer", "minimum": 0}, "seed": {"type": "integer"}},
                                        required=[]),
                "maps": _obj(
                    {
                        "levels": {"type": "array", "items": {"enum": list(MAP_LEVELS)}},
                        "themes": {"type": "boolean"},
                        "legend_position": {"enum": list(_LEGEND_POSITIONS)},
                        "dpi": {"type": "integer", "minimum": 50, "maximum": 2400},
                    },
                    required=[],
                ),
                "suppression": _obj({"k": {"type": "integer", "minimum": 1}}, required=[]),
                "drive": _obj({"report": _FILE_NAME, "tables_prefix": {"type": "string", "pattern": r"^[^/\\]*$"}},
                              required=[]),
            },
            required=[],
        ),
    },
)
CONFIG_SCHEMA["required"] = [key for key in CONFIG_SCHEMA["properties"] if key not in _OPTIONAL_SECTIONS]


# -- typed model -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimeRange:
    """A half-open time range ``[start, end)``: start inclusive, end exclusive (spec pipeline.md section 8)."""

    start: datetime
    end: datetime

    def __contains__(self, t: datetime) -> bool:
        return self.start <= t < self.end


@dataclass(frozen=True)
class FlowConfig:
    """A Rapid Pro flow to fetch. ``mode`` is ``all`` (one record per run) or ``latest-only`` (one record per
    respondent, newest answer per key)."""

    name: str
    mode: str


@dataclass(frozen=True)
class BinaryPlan:
    """The single-coded yes/no-style question some shows ask beside the reasons."""

    coded_field: str
    scheme: CodeScheme
    analysis_key: str


@dataclass(frozen=True)
class RqaPlan:
    """A radio show: its flow and result key, the record fields it uses, its schemes and its files."""

    name: str
    flow: str
    result_key: str
    raw_field: str
    id_field: str
    run_id_field: str
    coded_field: str
    scheme: CodeScheme
    analysis_prefix: str
    binary: BinaryPlan | None
    coda_file: str
    icr_file: str

    @property
    def codes_key(self) -> str:
        """The record key holding the show's codes in stage 3 (``rqa_s01e01_codes``), from which its matrix
        columns are rendered (:mod:`redss_pipeline.generate.analysis_columns`)."""
        return self.analysis_prefix + CODES_SUFFIX


@dataclass(frozen=True)
class SurveyPlan:
    """A survey question: where its answer comes from, how it is cleaned, coded, exported and analysed.

    The five location plans share one raw field and one Coda file; ``location_level`` tells them apart.
    """

    name: str
    flow: str
    result_key: str
    raw_field: str
    time_field: str
    id_field: str
    coded_field: str
    scheme: CodeScheme
    cleaner: str | None
    analysis_key: str
    coda_file: str
    location_level: str | None


@dataclass(frozen=True)
class OperatorPlan:
    """The mobile operator, derived from the phone number behind a uid (never exported to Coda)."""

    coded_field: str
    scheme: CodeScheme
    cleaner: str
    analysis_key: str


@dataclass(frozen=True)
class WsRedirect:
    """Correction C1: a message of ``show`` whose text coders labelled (checked) with ``code_id`` in ``scheme``
    belongs to ``to_show``; its ``sent_on`` is faked to ``sent_on`` (kept verbatim as written here)."""

    show: str
    scheme: CodeScheme
    code_id: str
    to_show: str
    sent_on: str


@dataclass(frozen=True)
class TimeWindowCorrection:
    """A late-delivery correction: a message of ``show`` whose own time falls in the window moves to
    ``to_show``; ``sent_on`` (when not None) replaces its time verbatim.

    Window bounds, each optional: ``after`` (strictly later), ``from`` (at or later), ``until`` (strictly
    earlier). Corrections of one show are tried in file order after the WS redirect; the first match wins.
    """

    id: str
    show: str
    after: datetime | None
    from_: datetime | None
    until: datetime | None
    to_show: str
    sent_on: str | None

    def matches(self, t: datetime) -> bool:
        return (
            (self.after is None or t > self.after)
            and (self.from_ is None or t >= self.from_)
            and (self.until is None or t < self.until)
        )


@dataclass(frozen=True)
class IcrConfig:
    """Inter-coder-reliability sample: rows per show, and the seed of ``random.Random``."""

    sample_size: int
    seed: int


@dataclass(frozen=True)
class OutputNames:
    """File names of the analysis outputs (under ``Outputs/``) or of their Drive copies."""

    messages_csv: str
    individuals_csv: str
    production_csv: str
    audit_trail: str | None = None


@dataclass(frozen=True)
class AgeCategory:
    """An age category of the analysis: ``name`` for the ages ``min`` to ``max`` (both inclusive)."""

    name: str
    min: int
    max: int


DEFAULT_AGE_CATEGORIES = (
    AgeCategory("10_to_14", 10, 14),
    AgeCategory("15_to_17", 15, 17),
    AgeCategory("18_to_35", 18, 35),
    AgeCategory("36_to_54", 36, 54),
    AgeCategory("55_to_99", 55, 99),
)


@dataclass(frozen=True)
class AnalysisConfig:
    """The automated analysis (spec analysis.md): what it breaks down, samples, maps and suppresses.

    Every key of the ``analysis`` block is optional; an absent key takes the default below.

    | key                          | default                                                   |
    | ---------------------------- | --------------------------------------------------------- |
    | ``breakdowns``               | gender, region, age_category, idp_camp, recently_displaced, hh_language |
    | ``cross_tabs``               | [[age_category, gender]]                                  |
    | ``age_categories``           | 10-14, 15-17, 18-35, 36-54, 55-99 (EDP's Somalia ones)    |
    | ``sample_messages``          | ``per_code`` 100, ``seed`` 0                              |
    | ``maps``                     | ``levels`` region, district, mogadishu_sub_district; ``themes`` false (true adds a map per theme code); ``legend_position`` lower right; ``dpi`` 1200 |
    | ``suppression``              | ``k`` 5: shareable counts from 1 to k-1 read ``<k``        |
    | ``drive``                    | ``report`` report.html, ``tables_prefix`` "" (Drive names of the shareable files) |
    """

    breakdowns: tuple[str, ...] = ("gender", "region", "age_category", "idp_camp", "recently_displaced", "hh_language")
    cross_tabs: tuple[tuple[str, str], ...] = (("age_category", "gender"),)
    age_categories: tuple[AgeCategory, ...] = DEFAULT_AGE_CATEGORIES
    sample_per_code: int = 100
    sample_seed: int = 0
    map_levels: tuple[str, ...] = MAP_LEVELS
    map_themes: bool = False
    legend_position: str = "lower right"
    map_dpi: int = 1200
    suppression_k: int = 5
    drive_report: str = "report.html"
    drive_tables_prefix: str = ""


@dataclass(frozen=True)
class PipelineConfig:
    """The validated configuration. Build it with :func:`load_config`."""

    path: Path
    project_name: str
    project_start: datetime
    project_end: datetime
    flows: tuple[FlowConfig, ...]
    test_contact_uuids: frozenset[str]
    schemes: Mapping[str, CodeScheme]
    #: The file of each scheme, by its name in the configuration (``code_schemes.files``), for messages.
    scheme_files: Mapping[str, str]
    message_time_field: str
    rqa_plans: tuple[RqaPlan, ...]
    survey_plans: tuple[SurveyPlan, ...]
    operator: OperatorPlan
    ws_redirect: WsRedirect | None
    time_window_corrections: tuple[TimeWindowCorrection, ...]
    channels: Mapping[str, tuple[TimeRange, ...]]
    weeks: Mapping[str, tuple[TimeRange, ...]]
    noise_min_length: int
    icr: IcrConfig
    outputs: OutputNames
    drive: OutputNames
    phone_redaction: RedactionSettings = RedactionSettings()
    #: How far before the newest ``modified_on`` seen an incremental fetch asks again (``rapid_pro.overlap_minutes``).
    fetch_overlap: timedelta = timedelta(hours=1)
    analysis: AnalysisConfig = AnalysisConfig()

    def flow(self, name: str) -> FlowConfig:
        for flow in self.flows:
            if flow.name == name:
                return flow
        raise KeyError(name)

    def rqa_plan(self, name: str) -> RqaPlan:
        for plan in self.rqa_plans:
            if plan.name == name:
                return plan
        raise KeyError(name)


# -- loading ---------------------------------------------------------------------------------------------------


def default_config_path() -> Path:
    """``$REDSS_PIPELINE_CONFIG`` if set, else ``pipeline_config.json`` at the project root (beside ``src/``),
    else ``pipeline_config.json`` in the current folder (an installed package has no project root).

    Raises UsageError, naming the ways to give one, when there is none."""
    override = os.environ.get("REDSS_PIPELINE_CONFIG")
    if override:
        return Path(override)
    candidates = (Path(__file__).resolve().parents[3] / CONFIG_FILE_NAME, Path.cwd() / CONFIG_FILE_NAME)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise UsageError(
        f"no configuration file: none given, and no {CONFIG_FILE_NAME} in the project or the current folder; "
        "give --config FILE or set REDSS_PIPELINE_CONFIG (the project's pipeline_config.json is the shipped one)"
    )


def load_config(path: str | os.PathLike | None = None) -> PipelineConfig:
    """Reads, validates and types the configuration file; raises ConfigError listing every problem."""
    config_path = Path(path) if path is not None else default_config_path()
    try:
        # utf-8-sig: a byte-order mark, which some Windows editors put at the start, is read past.
        text = config_path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ConfigError([f"not UTF-8 text ({error.reason} at byte {error.start})"], path=config_path) from None
    except OSError as error:
        raise ConfigError([f"cannot read the configuration file: {error.strerror}"], path=config_path) from None
    try:
        raw = json.loads(text, object_pairs_hook=note_repeated_keys)
    except json.JSONDecodeError as error:
        raise ConfigError(
            [f"not valid JSON ({json_error_place(error)})"], path=config_path
        ) from None
    except RecursionError:
        raise ConfigError(["not a configuration: JSON nested too deeply to be read"], path=config_path) from None
    repeated = repeated_keys(raw)
    if not repeated:
        return parse_config(raw, path=config_path)
    try:  # every problem at once: those of the keys read, after the repeated keys
        parse_config(raw, path=config_path)
    except ConfigError as error:
        repeated += error.problems
    raise ConfigError(repeated, path=config_path)


def parse_config(raw: Any, *, path: Path) -> PipelineConfig:
    """Validates an already-parsed configuration document; ``path`` anchors relative paths and messages."""
    path = Path(path).resolve()
    if isinstance(raw, dict) and {"RapidProBaseURL", "RapidProTokenFileURL"} & set(raw):
        raise ConfigError(
            [
                "this is the 2019 two-key pipeline_config.json format (RapidProBaseURL, RapidProTokenFileURL); "
                "the server is now the <rapid-pro-server> argument and the token an argument, @FILE or "
                f"RAPID_PRO_TOKEN. Replace this file with the {FORMAT_ID} configuration shipped with the pipeline"
            ],
            path=path,
        )
    problems = _schema_problems(raw)
    schemes: dict[str, CodeScheme] = {}
    if _scheme_section_is_usable(raw):
        # Checked even when other parts are broken, so one run reports every problem.
        schemes, scheme_problems = _load_schemes(raw, path.parent)
        problems += scheme_problems
    if not problems:
        problems = _check_references(raw, schemes)
    if problems:
        raise ConfigError(problems, path=path)
    return _build(raw, path, schemes)


def _scheme_section_is_usable(raw: Any) -> bool:
    section = raw.get("code_schemes") if isinstance(raw, dict) else None
    return (
        isinstance(section, dict)
        and isinstance(section.get("directory"), str)
        and isinstance(section.get("files"), dict)
        and all(isinstance(v, str) and v and "/" not in v for v in section["files"].values())
    )


def _parse_datetime(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError("no UTC offset")
    return value


_format_checker = jsonschema.FormatChecker()


@_format_checker.checks("date-time-with-offset", raises=ValueError)
def _is_datetime_with_offset(instance: object) -> bool:
    if not isinstance(instance, str):
        return True
    _parse_datetime(instance)
    return True


@_format_checker.checks("phone-region")
def _is_phone_region(instance: object) -> bool:
    return not isinstance(instance, str) or is_supported_region(instance)


@_format_checker.checks("uuid", raises=ValueError)
def _is_uuid(instance: object) -> bool:
    import uuid

    if isinstance(instance, str):
        uuid.UUID(instance)
    return True


_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "object": "an object",
    "array": "a list",
    "boolean": "true or false",
    "null": "null",
}


# JSON Schema counts 200.0 as an integer; the pipeline does not (it crashed later, in random.sample).
_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
    ),
)


def _schema_problems(raw: Any) -> list[str]:
    validator = _Validator(CONFIG_SCHEMA, format_checker=_format_checker)
    problems = []
    for error in sorted(validator.iter_errors(raw), key=lambda e: (list(map(str, e.absolute_path)), e.validator)):
        problems.extend(_describe(error))
    return problems


def _describe(error: jsonschema.ValidationError) -> list[str]:
    where = error.json_path
    # Set on every error a validator reports (the stubs allow them to be unset).
    instance: Any = error.instance
    expected: Any = error.validator_value
    schema: Any = error.schema
    got = json.dumps(instance, ensure_ascii=False)
    if len(got) > 60:
        got = got[:57] + "..."
    kind = error.validator
    if kind == "type":
        names = [expected] if isinstance(expected, str) else list(expected)
        return [f"{where}: expected {' or '.join(_TYPE_NAMES.get(n, n) for n in names)}, got {got}"]
    if kind == "required":
        missing = [k for k in expected if k not in instance]
        return [f"{where}: missing key {k!r}" for k in missing]
    if kind == "additionalProperties":
        known = set(schema.get("properties", {}))
        extra = [k for k in instance if k not in known]
        return [f"{where}: unknown key {k!r} (expected one of: {', '.join(sorted(known))})" for k in extra]
    if kind == "enum":
        return [f"{where}: expected one of {', '.join(json.dumps(v) for v in expected)}, got {got}"]
    if kind == "const":
        return [f"{where}: expected {json.dumps(expected)}, got {got}"]
    if kind == "format":
        what = {"date-time-with-offset": "an ISO 8601 date-time with a UTC offset", "uuid": "a UUID",
                "phone-region": "a two-letter region code libphonenumber knows (e.g. \"KE\")"}
        return [f"{where}: expected {what.get(expected, expected)}, got {got}"]
    if kind == "pattern" and expected == _FILE_NAME_PATTERN:
        return [f"{where}: {got} cannot be a file name (no '/', '\\', NUL, '.' or '..')"]
    if kind == "pattern":
        return [f"{where}: expected a plain name (letters, digits, '_', '-', '.'), got {got}"]
    if kind == "oneOf":
        # Report the most specific sub-problem of the alternative that is not null.
        best = jsonschema.exceptions.best_match(error.context) if error.context else None
        if best is not None and instance is not None:
            return _describe(best)
        return [f"{where}: unexpected value {got}"]
    if kind in ("minItems", "maxItems", "minProperties", "minLength"):
        return [f"{where}: {error.message}"]
    return [f"{where}: {error.message}"]


def _load_schemes(raw: dict, base: Path) -> tuple[dict[str, CodeScheme], list[str]]:
    directory = base / raw["code_schemes"]["directory"]
    schemes: dict[str, CodeScheme] = {}
    problems: list[str] = []
    if not directory.is_dir():  # one problem, not one per scheme file
        given = Path(raw["code_schemes"]["directory"])
        what = "is not a folder" if directory.exists() else "does not exist"
        where = "" if given.is_absolute() else " (relative to the configuration file's folder)"
        return schemes, [f"$.code_schemes.directory: {given.as_posix()} {what}{where}"]
    for name, file_name in raw["code_schemes"]["files"].items():
        where = f"$.code_schemes.files.{name}"
        scheme_path = directory / file_name
        if not scheme_path.is_file():
            shown = Path(raw["code_schemes"]["directory"]) / file_name
            problems.append(f"{where}: scheme file {shown.as_posix()} does not exist")
            continue
        try:
            schemes[name] = load_code_scheme(scheme_path)
        except SchemeError as error:
            problems.append(f"{where}: invalid scheme file: {error}")
    return schemes, problems


def _check_references(raw: dict, schemes: Mapping[str, CodeScheme]) -> list[str]:
    """Cross-field checks: every name that refers to another part of the file must resolve."""
    problems: list[str] = []
    scheme_files = raw["code_schemes"]["files"]

    def scheme(where: str, name: str) -> None:
        if name not in scheme_files:
            problems.append(f"{where}: unknown scheme {name!r} (not listed in $.code_schemes.files)")

    def unique(where: str, values: list[str], what: str) -> None:
        seen = set()
        for value in values:
            if value in seen:
                problems.append(f"{where}: {what} {value!r} appears twice")
            seen.add(value)

    flow_names = [f["name"] for f in raw["rapid_pro"]["flows"]]
    unique("$.rapid_pro.flows", flow_names, "flow name")
    show_names = [p["name"] for p in raw["rqa_plans"]]
    unique("$.rqa_plans", show_names, "show name")
    unique("$.survey_plans", [p["name"] for p in raw["survey_plans"]], "plan name")
    problems += _field_clashes(raw)
    problems += _codes_key_clashes(raw)
    problems += _matrix_column_clashes(raw, schemes)
    problems += _missing_control_codes(raw, schemes)

    for i, plan in enumerate(raw["rqa_plans"]):
        where = f"$.rqa_plans[{i}]"
        if plan["flow"] not in flow_names:
            problems.append(f"{where}.flow: unknown flow {plan['flow']!r} (not in $.rapid_pro.flows)")
        scheme(f"{where}.scheme", plan["scheme"])
        if plan["binary"] is not None:
            scheme(f"{where}.binary.scheme", plan["binary"]["scheme"])
    for i, plan in enumerate(raw["survey_plans"]):
        where = f"$.survey_plans[{i}]"
        if plan["flow"] not in flow_names:
            problems.append(f"{where}.flow: unknown flow {plan['flow']!r} (not in $.rapid_pro.flows)")
        scheme(f"{where}.scheme", plan["scheme"])
    levels = [p.get("location_level") for p in raw["survey_plans"] if p.get("location_level")]
    if levels and levels != list(LOCATION_LEVELS):
        problems.append(
            f"$.survey_plans: location plans must be {', '.join(LOCATION_LEVELS)} in this order, got {', '.join(levels)}"
        )
    scheme("$.operator.scheme", raw["operator"]["scheme"])

    corrections = raw["operational_corrections"]
    redirect = corrections["ws_redirect"]
    if redirect is not None:
        for key in ("show", "to_show"):
            if redirect[key] not in show_names:
                problems.append(f"$.operational_corrections.ws_redirect.{key}: unknown show {redirect[key]!r}")
        scheme("$.operational_corrections.ws_redirect.scheme", redirect["scheme"])
        ws_scheme = schemes.get(redirect["scheme"])
        if ws_scheme is not None and not ws_scheme.has_code_id(redirect["code_id"]):
            problems.append(
                f"$.operational_corrections.ws_redirect.code_id: {redirect['code_id']!r} is not a code of "
                f"scheme {redirect['scheme']!r}"
            )
    for i, window in enumerate(corrections["time_windows"]):
        where = f"$.operational_corrections.time_windows[{i}]"
        for key in ("show", "to_show"):
            if window[key] not in show_names:
                problems.append(f"{where}.{key}: unknown show {window[key]!r}")
        bounds = [k for k in ("after", "from", "until") if k in window]
        if not bounds:
            problems.append(f"{where}: give at least one of 'after', 'from', 'until'")
        if "after" in window and "from" in window:
            problems.append(f"{where}: give 'after' or 'from', not both")
        start = window.get("after") or window.get("from")
        if start and "until" in window and _parse_datetime(start) >= _parse_datetime(window["until"]):
            problems.append(f"{where}: the window ends before it starts")

    for group in ("channels", "weeks"):
        for key, ranges in raw[group].items():
            for j, (start, end) in enumerate(ranges):
                if _parse_datetime(start) >= _parse_datetime(end):
                    problems.append(f"$.{group}.{key}[{j}]: the range ends before it starts")
    if _parse_datetime(raw["project"]["start"]) > _parse_datetime(raw["project"]["end"]):
        problems.append("$.project: end is before start")
    problems += _file_name_clashes(raw)
    problems += _overlapping_ranges(raw)
    problems += _check_analysis(raw)
    problems += _uncategorised_ages(raw, schemes)
    return problems


# Names inside Outputs/ that the pipeline itself uses.
RESERVED_OUTPUT_NAMES = ("manifest.json", "ICR", "Coda Files", "Analysis")


def _record_fields(raw: dict) -> Iterator[tuple[str, str, str | None]]:
    """Every configured field that names a key of the message records, in configuration order, as (field, its JSON
    path, what may share it): only the fields of one survey answer (its raw text, id and time) may be shared, by
    the plans reading that answer (the same flow and result key: the five location levels read one answer)."""
    yield raw["message_time_field"], "$.message_time_field", None
    for i, plan in enumerate(raw["rqa_plans"]):
        for key in ("raw_field", "id_field", "run_id_field", "coded_field"):
            yield plan[key], f"$.rqa_plans[{i}].{key}", None
        if plan["binary"] is not None:
            for key in ("coded_field", "analysis_key"):
                yield plan["binary"][key], f"$.rqa_plans[{i}].binary.{key}", None
    for i, plan in enumerate(raw["survey_plans"]):
        for key in ("raw_field", "time_field", "id_field"):
            yield plan[key], f"$.survey_plans[{i}].{key}", f"{plan['flow']}/{plan['result_key']} {key}"
        for key in ("coded_field", "analysis_key"):
            yield plan[key], f"$.survey_plans[{i}].{key}", None
    for key in ("coded_field", "analysis_key"):
        yield raw["operator"][key], f"$.operator.{key}", None
    for group in ("channels", "weeks"):
        for key in raw[group]:
            yield key, f"$.{group}.{key}", None


def _field_clashes(raw: dict) -> list[str]:
    """Two configured fields of one name, or a configured field named like a key the pipeline writes itself
    (``uid``, ``consent_withdrawn``, ...: :data:`~redss_pipeline.core.record_fields.PIPELINE_KEYS`): each names a
    key of the message records, so the later write would silently overwrite the earlier one (a yes/no question's
    key named like a show's raw field would replace the listener's text), unless both are fields of one survey
    answer (see :func:`_record_fields`)."""
    problems: list[str] = []
    claimed: dict[str, tuple[str, str]] = {}  # field -> (JSON path of its first use, what may share it)
    for field, where, shared_as in _record_fields(raw):
        if field in PIPELINE_KEYS:
            problems.append(f"{where}: {field!r} is {PIPELINE_KEYS[field]}, a key the pipeline writes itself")
            continue
        held = claimed.get(field)
        if held is None:
            claimed[field] = (where, shared_as or where)
        elif shared_as is None or held[1] != shared_as:
            problems.append(f"{where}: {field!r} is also {held[0]} (each names its own key of the records)")
    return problems


def _codes_key_clashes(raw: dict) -> list[str]:
    """Each show's codes are held under ``<analysis_prefix>codes`` (:attr:`RqaPlan.codes_key`): two shows with one
    prefix, or another configured field of that name, would overwrite them."""
    problems: list[str] = []
    named: dict[str, str] = {}
    for field, where, _ in _record_fields(raw):
        named.setdefault(field, where)
    shows: dict[str, int] = {}
    for i, plan in enumerate(raw["rqa_plans"]):
        key = plan["analysis_prefix"] + CODES_SUFFIX
        where = f"$.rqa_plans[{i}].analysis_prefix"
        if key in shows:
            problems.append(f"{where}: {plan['analysis_prefix']!r} is also the prefix of $.rqa_plans[{shows[key]}] "
                            "(each show needs its own)")
        elif key in named:
            problems.append(f"{where}: the show's codes are held under {key!r}, which is also {named[key]}")
        shows.setdefault(key, i)
    return problems


def _missing_control_codes(raw: dict, schemes: Mapping[str, CodeScheme]) -> list[str]:
    """The control codes the pipeline writes in each role: NA (no answer, other shows), NC (noise) and NR (nothing a
    coder checked) in a show's and a yes/no question's scheme; NA and NR in a survey's; all seven in a location
    level's, as the location reconciliation copies one level's control code to every level (pipeline.md 7.6.4, and
    datasets-and-codebook.md 6.2: all schemes but two have all seven); NA and NC in Operator's, NR in WS - Correct
    Dataset's. The other control codes are only read where a scheme has them. A scheme without one it needs stopped
    the run midway with a message that named neither the scheme file nor the plan."""
    shows: tuple[str, ...] = (NA, NC, NR)
    surveys: tuple[str, ...] = (NA, NR)
    roles = [(f"$.rqa_plans[{i}].scheme", plan["scheme"], shows) for i, plan in enumerate(raw["rqa_plans"])]
    roles += [(f"$.rqa_plans[{i}].binary.scheme", plan["binary"]["scheme"], shows)
              for i, plan in enumerate(raw["rqa_plans"]) if plan["binary"] is not None]
    roles += [(f"$.survey_plans[{i}].scheme", plan["scheme"], CONTROL_CODES if plan.get("location_level") else surveys)
              for i, plan in enumerate(raw["survey_plans"])]
    roles.append(("$.operator.scheme", raw["operator"]["scheme"], (NA, NC)))
    redirect = raw["operational_corrections"]["ws_redirect"]
    if redirect is not None:
        roles.append(("$.operational_corrections.ws_redirect.scheme", redirect["scheme"], (NR,)))
    problems = []
    for where, name, needed in roles:
        scheme = schemes.get(name)
        missing = [] if scheme is None else [code for code in needed if scheme.control(code) is None]
        if missing:
            problems.append(f"{where}: scheme {name!r} ({raw['code_schemes']['files'][name]}) has no "
                            f"{', '.join(missing)} control code{'s' if len(missing) > 1 else ''}, which the "
                            f"pipeline writes in this role (it needs {', '.join(needed)})")
    return problems


def _matrix_column_clashes(raw: dict, schemes: Mapping[str, CodeScheme]) -> list[str]:
    """A show's matrix columns are named ``<analysis_prefix><StringValue>``, one per code of its scheme (pipeline.md
    section 9): one named like another column of the analysis files would make two columns of one name."""
    problems: list[str] = []
    named: dict[str, str] = {key: f"{held}, a key the pipeline writes itself" for key, held in PIPELINE_KEYS.items()}
    for field, where, _ in _record_fields(raw):
        named.setdefault(field, where)
    for i, plan in enumerate(raw["rqa_plans"]):
        scheme = schemes.get(plan["scheme"])
        for code in () if scheme is None else scheme.codes:
            column = plan["analysis_prefix"] + code.string_value
            if column in named:
                problems.append(f"$.rqa_plans[{i}].analysis_prefix: the show's column {column!r} (code "
                                f"{code.string_value!r} of scheme {plan['scheme']!r}) is also {named[column]}")
    return problems


def _file_name_clashes(raw: dict) -> list[str]:
    """Two outputs written to one file: the second silently replaced the first. Names are compared
    case-insensitively, as on the file systems of macOS and Windows."""
    problems: list[str] = []

    def claim(owners: dict[str, tuple[str, str | None]], where: str, name: str, content: str | None = None) -> None:
        other = owners.get(name.casefold())
        if other is None:
            owners[name.casefold()] = (where, content)
        elif content is None or other[1] is None:
            problems.append(f"{where}: the file name {name!r} is also {other[0]}")
        elif content != other[1]:
            problems.append(f"{where}: the file name {name!r} is also {other[0]}, which holds another answer "
                            f"({other[1]}, not {content})")

    for section in ("outputs", "drive"):
        owners: dict[str, tuple[str, str | None]] = {}
        for key, name in raw[section].items():
            if section == "outputs" and name.casefold() in {n.casefold() for n in RESERVED_OUTPUT_NAMES}:
                problems.append(f"$.outputs.{key}: the file name {name!r} is reserved in Outputs/")
                continue
            claim(owners, f"$.{section}.{key}", name)
    coda_files: dict[str, tuple[str, str | None]] = {}
    icr_files: dict[str, tuple[str, str | None]] = {}
    for i, plan in enumerate(raw["rqa_plans"]):
        claim(coda_files, f"$.rqa_plans[{i}].coda_file", plan["coda_file"])
        claim(icr_files, f"$.rqa_plans[{i}].icr_file", plan["icr_file"])
    for i, plan in enumerate(raw["survey_plans"]):
        # Survey plans share a Coda file when they code one answer (the five location levels).
        claim(coda_files, f"$.survey_plans[{i}].coda_file", plan["coda_file"], plan["raw_field"])
    return problems


def _overlapping_ranges(raw: dict) -> list[str]:
    """A message in two weeks was counted twice; at most one channel may match a message (pipeline.md 8)."""
    problems: list[str] = []
    for group in ("channels", "weeks"):
        seen: list[tuple[str, str, str, str, datetime, datetime]] = []  # key, path, start, end, parsed start/end
        for key, ranges in raw[group].items():
            for j, (start, end) in enumerate(ranges):
                begins, ends = _parse_datetime(start), _parse_datetime(end)
                if begins >= ends:
                    continue  # reported above
                for other_key, other_path, other_start, other_end, other_begins, other_ends in seen:
                    if other_key != key and other_begins < ends and begins < other_ends:
                        overlap_start = start if begins >= other_begins else other_start
                        overlap_end = end if ends <= other_ends else other_end
                        problems.append(f"$.{group}.{key}[{j}]: overlaps {other_path} "
                                        f"(from {overlap_start} to {overlap_end})")
                seen.append((key, f"$.{group}.{key}[{j}]", start, end, begins, ends))
    return problems


def _build(raw: dict, path: Path, schemes: Mapping[str, CodeScheme]) -> PipelineConfig:
    def ranges(items: list[list[str]]) -> tuple[TimeRange, ...]:
        return tuple(TimeRange(_parse_datetime(a), _parse_datetime(b)) for a, b in items)

    def optional_time(window: dict, key: str) -> datetime | None:
        return _parse_datetime(window[key]) if key in window else None

    redirect = raw["operational_corrections"]["ws_redirect"]
    return PipelineConfig(
        path=path,
        project_name=raw["project"]["name"],
        project_start=_parse_datetime(raw["project"]["start"]),
        project_end=_parse_datetime(raw["project"]["end"]),
        flows=tuple(FlowConfig(f["name"], f["mode"]) for f in raw["rapid_pro"]["flows"]),
        test_contact_uuids=frozenset(raw["rapid_pro"]["test_contact_uuids"]),
        fetch_overlap=timedelta(minutes=raw["rapid_pro"].get("overlap_minutes", 60)),
        schemes=dict(schemes),
        scheme_files=dict(raw["code_schemes"]["files"]),
        message_time_field=raw["message_time_field"],
        # The schema allows exactly the fields of each plan class, so a plan is its JSON object with the scheme
        # names replaced by the loaded schemes.
        rqa_plans=tuple(
            RqaPlan(**{
                **p,
                "scheme": schemes[p["scheme"]],
                "binary": None if p["binary"] is None
                else BinaryPlan(**{**p["binary"], "scheme": schemes[p["binary"]["scheme"]]}),
            })
            for p in raw["rqa_plans"]
        ),
        survey_plans=tuple(
            SurveyPlan(**{**p, "scheme": schemes[p["scheme"]], "location_level": p.get("location_level")})
            for p in raw["survey_plans"]
        ),
        operator=OperatorPlan(**{**raw["operator"], "scheme": schemes[raw["operator"]["scheme"]]}),
        ws_redirect=None
        if redirect is None
        else WsRedirect(
            redirect["show"], schemes[redirect["scheme"]], redirect["code_id"], redirect["to_show"], redirect["sent_on"]
        ),
        time_window_corrections=tuple(
            TimeWindowCorrection(
                id=w["id"],
                show=w["show"],
                after=optional_time(w, "after"),
                from_=optional_time(w, "from"),
                until=optional_time(w, "until"),
                to_show=w["to_show"],
                sent_on=w["sent_on"],
            )
            for w in raw["operational_corrections"]["time_windows"]
        ),
        channels={k: ranges(v) for k, v in raw["channels"].items()},
        weeks={k: ranges(v) for k, v in raw["weeks"].items()},
        noise_min_length=raw["noise"]["min_length"],
        icr=IcrConfig(raw["icr"]["sample_size"], raw["icr"]["seed"]),
        outputs=OutputNames(**raw["outputs"]),
        drive=OutputNames(**raw["drive"]),
        phone_redaction=RedactionSettings(tuple(raw.get("phone_redaction", {}).get("other_regions", ()))),
        analysis=_build_analysis(raw.get("analysis", {})),
    )


def _build_analysis(raw: dict) -> AnalysisConfig:
    default = AnalysisConfig()
    samples = raw.get("sample_messages", {})
    maps = raw.get("maps", {})
    drive = raw.get("drive", {})
    return AnalysisConfig(
        breakdowns=tuple(raw.get("breakdowns", default.breakdowns)),
        cross_tabs=tuple((a, b) for a, b in raw.get("cross_tabs", default.cross_tabs)),
        age_categories=tuple(AgeCategory(**c) for c in raw["age_categories"])
        if "age_categories" in raw else default.age_categories,
        sample_per_code=samples.get("per_code", default.sample_per_code),
        sample_seed=samples.get("seed", default.sample_seed),
        map_levels=tuple(maps.get("levels", default.map_levels)),
        map_themes=maps.get("themes", default.map_themes),
        legend_position=maps.get("legend_position", default.legend_position),
        map_dpi=maps.get("dpi", default.map_dpi),
        suppression_k=raw.get("suppression", {}).get("k", default.suppression_k),
        drive_report=drive.get("report", default.drive_report),
        drive_tables_prefix=drive.get("tables_prefix", default.drive_tables_prefix),
    )


def _dataset_name_clashes(raw: dict) -> list[str]:
    """Two datasets of the analysis of one name (analysis.md section 2): the age answers give a dataset of their
    own, ``age_category``, and a show's yes/no question is named by its analysis_key without the ``rqa_`` prefix, so
    a survey question named like either would be read as the other's column. (Two equal analysis_keys are
    reported by :func:`_field_clashes`.)"""
    named: dict[str, tuple[str, bool]] = {}  # dataset name -> (what names it, whether it is a configured field)
    problems = []
    candidates = []
    for i, plan in enumerate(raw["survey_plans"]):
        candidates.append((plan["analysis_key"], f"$.survey_plans[{i}].analysis_key", True))
        if plan["analysis_key"] == "age":
            candidates.append(("age_category", f"the categories of the age answers of $.survey_plans[{i}]", False))
    candidates.append((raw["operator"]["analysis_key"], "$.operator.analysis_key", True))
    for i, plan in enumerate(raw["rqa_plans"]):
        if plan["binary"] is not None:
            candidates.append((plan["binary"]["analysis_key"].removeprefix("rqa_"),
                               f"$.rqa_plans[{i}].binary.analysis_key, less its rqa_ prefix", False))
    for name, where, is_field in candidates:
        held = named.get(name)
        if held is None:
            named[name] = (where, is_field)
        elif not (is_field and held[1]):
            problems.append(f"$.analysis: two datasets are named {name!r}: {held[0]} and {where}; rename one")
    return problems


def _uncategorised_ages(raw: dict, schemes: Mapping[str, CodeScheme]) -> list[str]:
    """The analysis puts every age of the ``age`` question in an age category (analysis.md section 1): an age code
    of its scheme (a code that is not a control code) that is not a whole number in a category could not be read
    when the analysis met it, and the analysis stopped at that person's row of ``csap_ind.csv`` as if the file
    were wrong. Checked for the configured categories, or the default ones when none are configured."""
    categories = raw.get("analysis", {}).get("age_categories")
    bounds = ([(c["min"], c["max"]) for c in categories] if categories is not None
              else [(c.min, c.max) for c in DEFAULT_AGE_CATEGORIES])
    problems = []
    for i, plan in enumerate(raw["survey_plans"]):
        scheme = schemes.get(plan["scheme"])
        if plan["analysis_key"] != "age" or scheme is None:
            continue
        ages, others = [], []
        for code in scheme.codes:
            if code.control_code is None:
                value = code.string_value
                if not (value.isascii() and value.isdigit()):
                    others.append(value)
                elif not any(low <= int(value) <= high for low, high in bounds):
                    ages.append(int(value))
        named = f"scheme {plan['scheme']!r} ({raw['code_schemes']['files'][plan['scheme']]})"
        if others:
            problems.append(f"$.survey_plans[{i}].scheme: {named} has age codes that are not whole numbers "
                            f"({', '.join(map(repr, others[:5]))}), which no age category can hold")
        if ages:
            which = "$.analysis.age_categories" if categories is not None else "the default age categories"
            problems.append(f"{which}: no category holds the ages {_spans(sorted(ages))} of {named}, which coders "
                            "can give; add categories for them")
    return problems


def _spans(numbers: list[int]) -> str:
    """Sorted whole numbers as ranges: ``31-39, 100-110``, or ``5`` alone."""
    spans: list[list[int]] = []
    for number in numbers:
        if spans and number == spans[-1][1] + 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    return ", ".join(f"{low}" if low == high else f"{low}-{high}" for low, high in spans)


def analysis_dataset_names(raw: dict) -> tuple[list[str], list[str]]:
    """The demographic dataset names of the analysis (analysis.md section 2, DEMOGS) and the single-valued ones
    (DEMOGS plus the shows' binary questions), from a raw configuration document."""
    demogs: list[str] = []
    for plan in raw["survey_plans"]:
        if plan["analysis_key"] not in demogs:
            demogs.append(plan["analysis_key"])
            if plan["analysis_key"] == "age":
                demogs.append("age_category")
    demogs.append(raw["operator"]["analysis_key"])
    binaries = [p["binary"]["analysis_key"].removeprefix("rqa_") for p in raw["rqa_plans"] if p["binary"]]
    return demogs, demogs + binaries


def _check_analysis(raw: dict) -> list[str]:
    """Cross-field checks of the ``analysis`` block: names of datasets, levels and age categories."""
    section = raw.get("analysis", {})
    problems: list[str] = []
    demogs, single_valued = analysis_dataset_names(raw)
    for i, name in enumerate(section.get("breakdowns", [])):
        if name not in demogs:
            problems.append(f"$.analysis.breakdowns[{i}]: unknown demographic dataset {name!r} "
                            f"(expected one of: {', '.join(demogs)})")
    pairs = section.get("cross_tabs", [])
    for i, pair in enumerate(pairs):
        for j, name in enumerate(pair):
            if name not in single_valued:
                problems.append(f"$.analysis.cross_tabs[{i}][{j}]: {name!r} is not a single-valued dataset "
                                f"(expected one of: {', '.join(single_valued)})")
        if pair in pairs[:i]:  # one file, cross_tabs_<A>_vs_<B>.csv, per pair
            problems.append(f"$.analysis.cross_tabs[{i}]: the pair {pair} appears twice")
    categories = section.get("age_categories", [])
    for i, category in enumerate(categories):
        if category["min"] > category["max"]:
            problems.append(f"$.analysis.age_categories[{i}]: min {category['min']} is above max {category['max']}")
    for i, category in enumerate(categories):
        for j in range(i):
            other = categories[j]
            if category["name"] == other["name"]:
                problems.append(f"$.analysis.age_categories[{i}].name: {category['name']!r} appears twice")
            elif category["min"] <= other["max"] and other["min"] <= category["max"]:
                problems.append(f"$.analysis.age_categories[{i}]: overlaps age_categories[{j}] ({other['name']})")
    problems += _dataset_name_clashes(raw)
    levels = section.get("maps", {}).get("levels", [])
    if len(set(levels)) != len(levels):
        problems.append("$.analysis.maps.levels: a level appears twice")
    return problems


def main(argv: list[str] | None = None) -> int:
    """``python -m redss_pipeline.core.config [FILE]``: validates a configuration file and summarises it."""
    import sys

    from redss_pipeline.core.cli import run_main

    def check(args: Sequence[str]) -> int:
        # The cleaners are stage 3's: once the file is valid, what they give is checked against the schemes here
        # too, as stage 3 does before any work (a second pass: stages 1 and 2 do not need it).
        from redss_pipeline.generate.cleaners import cleaner_scheme_problems

        config = load_config(args[0] if args else None)
        problems = cleaner_scheme_problems(config)
        if problems:
            raise ConfigError(problems, path=config.path)
        print(
            f"{config.path}: valid ({len(config.flows)} flows, {len(config.rqa_plans)} shows, "
            f"{len(config.survey_plans)} survey plans, {len(config.schemes)} code schemes)"
        )
        return 0

    return run_main(check, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    raise SystemExit(main())
