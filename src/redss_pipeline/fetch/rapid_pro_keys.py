"""Names of the keys a Rapid Pro result becomes in a raw record (spec datasets-and-codebook.md section 2).

Every result ``(result_key, value)`` of a run becomes six keys ``"<K> (<field>) - <flow>"`` with
``K = result_key.title()`` (Python's ``str.title``: ``rqa_s01e01`` -> ``Rqa_S01E01``).
"""

from __future__ import annotations

__all__ = ["RESULT_FIELDS", "raw_key", "PHONE_ID_KEY", "TEST_RUN_KEY"]

#: The six fields of a result, in the order 2019 wrote them.
RESULT_FIELDS = ("Category", "Value", "Text", "Name", "Time", "Run ID")
#: The de-identified respondent id in raw records.
PHONE_ID_KEY = "avf_phone_id"
#: Present (true) only on records of the configured test contacts.
TEST_RUN_KEY = "test_run"


def raw_key(result_key: str, field: str, flow: str) -> str:
    """``raw_key("rqa_s01e01", "Value", "csap_s01e01_activation")``
    -> ``"Rqa_S01E01 (Value) - csap_s01e01_activation"``."""
    if field not in RESULT_FIELDS:
        raise ValueError(f"unknown result field {field!r}")
    return f"{result_key.title()} ({field}) - {flow}"
