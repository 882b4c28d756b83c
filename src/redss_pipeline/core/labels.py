"""Labels: the Coda V2 label objects that carry every code the pipeline and the coders assign.

A label is a plain JSON dictionary in exactly the shape a Coda messages file holds (spec coda.md section 2)::

    {"SchemeID": "Scheme-12cb6f95", "CodeID": "code-63dcde9a",
     "DateTimeUTC": "2019-01-20T16:00:00.123456+00:00", "Checked": false,
     "Origin": {"OriginID": "redss_pipeline.cleaners.gender@1", "Name": "Pipeline Auto-Coder",
                "OriginType": "External"}}

Keeping the file shape means a label read from a coded file can go into a record as it is, and a record's label
can be written back out without translation. Labels are values: once made, a label dictionary is never changed
(make a new one instead), which is what lets one label object be shared by every record that carries it - at a
million records, building each distinct label once matters.

Single-coded fields hold one label; multi-coded fields (the RQA reasons) hold a list of labels.
"""

from __future__ import annotations

from typing import Any, Mapping, TypeVar

from redss_pipeline.core.code_scheme import Code, CodeScheme
from redss_pipeline.core.errors import RawDataError, SchemeError

__all__ = [
    "PIPELINE_ORIGIN_NAME",
    "PIPELINE_ORIGIN_TYPE",
    "MANUALLY_UNCODED",
    "make_label",
    "control_label",
    "is_checked",
    "lookup_by_code_id",
]

PIPELINE_ORIGIN_NAME = "Pipeline Auto-Coder"
"""``Origin.Name`` of every label the pipeline creates (coda.md section 6)."""

PIPELINE_ORIGIN_TYPE = "External"
"""``Origin.OriginType`` of every label the pipeline creates."""

MANUALLY_UNCODED = "SPECIAL-MANUALLY_UNCODED"
"""The CodeID Coda writes when a coder clears a code; it belongs to no scheme (coda.md section 7)."""


def make_label(
    scheme: CodeScheme, code: Code, *, origin_id: str, label_time: str, checked: bool = False
) -> dict[str, Any]:
    """A new pipeline label assigning ``code`` of ``scheme``.

    ``origin_id`` names the rule that made the label and its version (``redss_pipeline.cleaners.gender@1``,
    spec README decision 10); ``label_time`` is the run's clock (``RunContext.label_time``), never read here, so
    golden tests can fix it. A code that is not in the scheme is a SchemeError: a label must name a code its
    scheme can resolve, or every later step would fail far from the cause.
    """
    if not scheme.has_code_id(code.code_id):
        raise SchemeError(
            f"cannot make a label: scheme {scheme.name!r} ({scheme.scheme_id}) has no code with CodeID "
            f"{code.code_id!r}"
        )
    return {
        "SchemeID": scheme.scheme_id,
        "CodeID": code.code_id,
        "DateTimeUTC": label_time,
        "Checked": checked,
        "Origin": {"OriginID": origin_id, "Name": PIPELINE_ORIGIN_NAME, "OriginType": PIPELINE_ORIGIN_TYPE},
    }


def control_label(scheme: CodeScheme, control_code: str, *, origin_id: str, label_time: str) -> dict[str, Any]:
    """A new unchecked pipeline label with the scheme's code for ``control_code`` (e.g. its ``NA`` code).

    Not every scheme has every control code (Operator has only NA and NC, WS - Correct Dataset only NR), so
    asking for one the scheme lacks is a SchemeError naming the scheme.
    """
    code = scheme.control(control_code)
    if code is None:
        raise SchemeError(f"scheme {scheme.name!r} ({scheme.scheme_id}) has no {control_code} code")
    return make_label(scheme, code, origin_id=origin_id, label_time=label_time)


def is_checked(label: Mapping[str, Any]) -> bool:
    """Whether a person has verified the label. A missing or null ``Checked`` reads as false, which is how Coda
    displays it (2019 crashed on a label without ``Checked``; spec README, deliberate differences)."""
    return label.get("Checked") is True


_Value = TypeVar("_Value")


def lookup_by_code_id(
    label: Any, by_code_id: Mapping[str, _Value], scheme: CodeScheme, *, record: Any, field: str
) -> _Value:
    """``by_code_id[label["CodeID"]]`` for the hot path of a step; otherwise the error that says what is wrong:
    the value is not a label (RawDataError), or its CodeID is not a code of ``scheme`` (SchemeError), naming
    the record and the field."""
    try:
        return by_code_id[label["CodeID"]]
    except (KeyError, TypeError):
        pass
    if not isinstance(label, dict) or "CodeID" not in label:
        raise RawDataError(f"expected a label with a CodeID, found {label!r}", record=record, field=field)
    raise SchemeError(
        f"CodeID {label['CodeID']!r} is not a code of scheme {scheme.name!r} ({scheme.scheme_id})",
        record=record, field=field,
    )
