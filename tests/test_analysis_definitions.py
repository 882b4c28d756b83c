"""The definitions of the analysis (spec analysis.md section 2) on hand-made profiles, edge cases included."""

from __future__ import annotations

import pytest

from redss_pipeline.analysis.cells import Percent, percentage
from redss_pipeline.analysis.datasets import analysis_datasets
from redss_pipeline.analysis.definitions import (
    CodeSet,
    Profile,
    labelled,
    labelled_any,
    opted_in,
    relevant,
    relevant_any,
    responded,
    responded_any,
)


@pytest.fixture(scope="module")
def datasets(config):
    return analysis_datasets(config)


def _profile(datasets, withdrawn: bool = False, **codes: list[str]) -> Profile:
    """A profile with the given StringValues per dataset; every other dataset NA (a withdrawn one: no codes)."""
    cells = []
    for dataset in datasets.all:
        if withdrawn:
            cells.append(CodeSet())
            continue
        values = codes.get(dataset.name, ["NA"])
        by_value = {code.string_value: code for code in dataset.codes}
        cells.append(CodeSet(by_value[v] for v in values))
    return Profile(withdrawn, tuple(cells))


def _states(datasets, profile: Profile, name: str = "s01e01") -> tuple[bool, bool, bool]:
    d = datasets.index(name)
    return responded(profile, d), labelled(profile, d), relevant(profile, d)


def test_a_theme_code_is_responded_labelled_and_relevant(datasets):
    """One Normal code: all three."""
    assert _states(datasets, _profile(datasets, s01e01=["food_assistance"])) == (True, True, True)


def test_several_theme_codes_are_relevant(datasets):
    """Several Normal codes (CDM asserted on this; the spec's rule answers yes)."""
    assert _states(datasets, _profile(datasets, s01e01=["food_assistance", "job_creation"])) == (True, True, True)


@pytest.mark.parametrize("code", ["NA", "NS"])
def test_na_and_ns_are_not_responses(datasets, code):
    """NA (no answer) and NS (skipped) are not responses, so neither labelled nor relevant."""
    assert _states(datasets, _profile(datasets, s01e01=[code])) == (False, False, False)


def test_nr_is_a_response_not_yet_labelled(datasets):
    """NR: responded, but no coder reviewed it."""
    assert _states(datasets, _profile(datasets, s01e01=["NR"])) == (True, False, False)


def test_a_theme_with_nr_is_not_labelled(datasets):
    """A person whose messages are partly unreviewed (a theme and NR both 1) is not labelled, so not relevant."""
    assert _states(datasets, _profile(datasets, s01e01=["food_assistance", "NR"])) == (True, False, False)


@pytest.mark.parametrize("code", ["NC", "NIC", "WS"])
def test_nc_nic_ws_alone_are_labelled_but_not_relevant(datasets, code):
    """NC, NIC and WS are labelled; alone they are not relevant."""
    assert _states(datasets, _profile(datasets, s01e01=[code])) == (True, True, False)


def test_a_theme_beside_nc_is_relevant(datasets):
    """NC beside a Normal code: labelled and relevant."""
    assert _states(datasets, _profile(datasets, s01e01=["NC", "food_assistance"])) == (True, True, True)


def test_a_response_with_ns_beside_a_theme_counts_as_responded(datasets):
    """At least one code that is neither NA nor NS makes a response."""
    assert _states(datasets, _profile(datasets, s01e01=["NS", "food_assistance"])) == (True, True, True)


def test_withdrawn_consent_is_nothing_but_withdrawn(datasets):
    """A withdrawn row is not opt-in and responded to nothing, whatever its cells said."""
    profile = _profile(datasets, withdrawn=True)
    assert not opted_in(profile)
    shows = [datasets.index(name) for name in datasets.shows]
    assert not responded_any(profile, shows) and not labelled_any(profile, shows) and not relevant_any(profile, shows)


def test_any_holds_when_one_dataset_holds(datasets):
    """Responded / labelled / relevant to any: at least one of the datasets."""
    shows = [datasets.index(name) for name in datasets.shows]
    profile = _profile(datasets, s01e01=["NR"], s01e03=["WS"], s01e04=["peace_and_security"])
    assert responded_any(profile, shows) and labelled_any(profile, shows) and relevant_any(profile, shows)
    profile = _profile(datasets, s01e01=["NR"], s01e03=["WS"])
    assert responded_any(profile, shows) and labelled_any(profile, shows) and not relevant_any(profile, shows)


def test_stop_is_a_response_that_never_occurs_in_opt_in_rows(datasets):
    """STOP is not NA/NS, so it would count as a response; stage 3 withdraws anyone with a STOP, so the
    analysis never sees one in an opt-in row (the reader reads no codes of withdrawn rows)."""
    assert _states(datasets, _profile(datasets, s01e01=["STOP"]))[0] is True


def test_dataset_lists_follow_the_configuration(datasets):
    """SHOWS, THEMES (binary after its show) and DEMOGS (age_category after age, operator last)."""
    assert datasets.shows == ("s01e01", "s01e02", "s01e03", "s01e04")
    assert datasets.themes == ("s01e01", "s01e02", "s01e02_integrate_return", "s01e03", "s01e03_yes_no", "s01e04")
    assert datasets.demogs == ("gender", "mogadishu_sub_district", "district", "region", "state", "zone", "age",
                               "age_category", "idp_camp", "recently_displaced", "hh_language", "repeated",
                               "involved", "operator")
    assert [c.string_value for c in datasets["age_category"].codes] == [
        "10_to_14", "15_to_17", "18_to_35", "36_to_54", "55_to_99", "NA", "NS", "NC", "NR", "NIC", "STOP", "WS"]


@pytest.mark.parametrize(("x", "y", "text"), [
    (0, 0, "-"), (8, 17, "47.1"), (1, 1, "100.0"), (0, 3, "0.0"), (6, 5, "120.0"), (43, 10, "430.0"),
    (1, 3, "33.3"), (2, 3, "66.7"),
    # 0.125 * 100 = 12.5 exactly: ties go to even (12.5 -> 12.5 at one decimal; here 1/8 -> 12.5).
    (1, 8, "12.5"),
    # 1/16*100 = 6.25 exactly in binary: round half to even gives 6.2 (JavaScript toFixed would give 6.3).
    (1, 16, "6.2"),
])
def test_percentages_are_formatted_as_the_spec_says(x, y, text):
    """`-` for a zero denominator, one decimal, Python round-half-even on the double, values over 100 kept."""
    assert percentage(x, y) == text
    assert str(Percent(x, y)) == text
