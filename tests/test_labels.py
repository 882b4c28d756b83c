"""Making and reading Coda labels (redss_pipeline.core.labels)."""

from __future__ import annotations

from pathlib import Path

import pytest

import redss_pipeline.core.labels as labels_module
from redss_pipeline.core.code_scheme import NA, NR, load_code_scheme
from redss_pipeline.core.errors import SchemeError
from redss_pipeline.core.labels import (
    control_label,
    is_checked,
    make_label,
)

SCHEME_DIR = Path(__file__).resolve().parents[1] / "code_schemes"
GENDER = load_code_scheme(SCHEME_DIR / "gender.json")
WS_CORRECT = load_code_scheme(SCHEME_DIR / "ws_correct_dataset.json")
TIME = "2019-01-20T16:00:00.123456+00:00"


def test_make_label_has_the_coda_shape_of_a_pipeline_label():
    """A pipeline label names scheme, code, run time, unchecked, and the Pipeline Auto-Coder origin."""
    label = make_label(GENDER, GENDER.code_by_id("code-63dcde9a"), origin_id="redss_pipeline.cleaners.gender@1",
                       label_time=TIME)
    assert label == {
        "SchemeID": "Scheme-12cb6f95",
        "CodeID": "code-63dcde9a",
        "DateTimeUTC": TIME,
        "Checked": False,
        "Origin": {"OriginID": "redss_pipeline.cleaners.gender@1", "Name": "Pipeline Auto-Coder",
                   "OriginType": "External"},
    }


def test_make_label_can_be_checked():
    """``checked=True`` writes ``"Checked": true``."""
    label = make_label(GENDER, GENDER.normal_codes[1], origin_id="o", label_time=TIME, checked=True)
    assert label["Checked"] is True
    assert label["CodeID"] == "code-86a4602c"


def test_make_label_refuses_a_code_of_another_scheme():
    """A code the scheme does not have cannot be labelled with that scheme."""
    with pytest.raises(SchemeError, match=r"'WS - Correct Dataset' \(Scheme-fffffc6e\) has no code with CodeID "
                                          r"'code-63dcde9a'"):
        make_label(WS_CORRECT, GENDER.normal_codes[0], origin_id="o", label_time=TIME)


def test_control_label_uses_the_schemes_control_code():
    """The NA label of a scheme carries the shared NA CodeID and the scheme's SchemeID."""
    label = control_label(GENDER, NA, origin_id="redss_pipeline.surveys.missing@1", label_time=TIME)
    assert (label["SchemeID"], label["CodeID"], label["Checked"]) == ("Scheme-12cb6f95", "code-NA-f93d3eb7", False)
    assert label["Origin"]["OriginID"] == "redss_pipeline.surveys.missing@1"


def test_control_label_refuses_a_control_code_the_scheme_lacks():
    """WS - Correct Dataset has only NR, so asking for its NA label is a clear error."""
    assert control_label(WS_CORRECT, NR, origin_id="o", label_time=TIME)["CodeID"] == "code-NR-5e3eee23"
    with pytest.raises(SchemeError, match=r"'WS - Correct Dataset' \(Scheme-fffffc6e\) has no NA code"):
        control_label(WS_CORRECT, NA, origin_id="o", label_time=TIME)


def test_is_checked_reads_a_missing_or_null_checked_as_false():
    """Only ``"Checked": true`` counts as checked (a missing key is how Coda shows an unchecked label)."""
    assert is_checked({"Checked": True}) is True
    assert is_checked({"Checked": False}) is False
    assert is_checked({"Checked": None}) is False
    assert is_checked({}) is False


def test_all_names_are_public_and_exist():
    """Every name in ``__all__`` exists in the module."""
    assert all(hasattr(labels_module, name) for name in labels_module.__all__)
