"""Inter-coder agreement (spec coding-quality.md sections 2-4): the measures against published and hand-worked
examples and an independent kappa, undefined cases, the row layout and the CSV format."""

from __future__ import annotations

import random

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from redss_pipeline.analysis.agreement import (
    ALL_CODES,
    COLUMNS,
    CodedScheme,
    Resamples,
    agreement_cells,
    alpha_band,
    cohen_kappa,
    decimal_text,
    krippendorff_alpha,
    scheme_agreement,
    write_agreement_csv,
)
from redss_pipeline.core.code_scheme import Code, CodeScheme

NAN = float("nan")


def _cells(row):
    """The row's cells as the CSV shows them."""
    return {column: None if value is None else str(value) for column, value in agreement_cells(row).items()}


def _two_by_two(tt: int, tf: int, ft: int, ff: int) -> tuple[list[int], list[int]]:
    """Units of a 2 x 2 table: coder 1's value, coder 2's value (1 = the code applies)."""
    pairs = [(1, 1)] * tt + [(1, 0)] * tf + [(0, 1)] * ft + [(0, 0)] * ff
    return [a for a, _ in pairs], [b for _, b in pairs]


# -- published and hand-worked examples ------------------------------------------------------------------------------


def test_krippendorffs_worked_nominal_example_gives_0_743():
    """Krippendorff's four-coder reliability matrix with missing values (coding-quality.md 3): alpha 0.743 with the
    package and the level of measurement the pipeline uses."""
    data = [[1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
            [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
            [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
            [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN]]
    assert round(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"), 3) == 0.743


def test_hand_worked_balanced_2x2_table():
    """4 both yes, 1 + 1 split, 4 both no: p_o = 0.8, p_e = 0.5, kappa = 0.6; n = 20 values, 10 of each,
    2 disagreeing units: alpha = 1 - 19 * 4 / (400 - 100 - 100) = 0.62."""
    x, y = _two_by_two(4, 1, 1, 4)
    assert cohen_kappa(x, y) == pytest.approx(0.6)
    assert krippendorff_alpha(x, y) == pytest.approx(0.62)


def test_hand_worked_skewed_2x2_table():
    """2 both yes, 3 only coder 1, 1 only coder 2, 14 both no: p_o = 16/20, p_e = 0.25 * 0.15 + 0.75 * 0.85 = 0.675,
    kappa = 0.125 / 0.325 = 0.3846; n = 40 values, 8 yes and 32 no, 4 disagreeing units:
    alpha = 1 - 39 * 8 / (1600 - 64 - 1024) = 0.390625."""
    x, y = _two_by_two(2, 3, 1, 14)
    assert cohen_kappa(x, y) == pytest.approx(0.125 / 0.325)
    assert krippendorff_alpha(x, y) == pytest.approx(0.390625)


def test_hand_worked_table_without_any_agreement_on_yes():
    """Coder 1 says yes once, coder 2 never, 6 units both no: kappa (7*6 - 42) / (49 - 42) = 0, alpha
    1 - 13 * 2 / (196 - 1 - 169) = 0."""
    x, y = _two_by_two(0, 1, 0, 6)
    assert cohen_kappa(x, y) == 0
    assert krippendorff_alpha(x, y) == pytest.approx(0.0)


@pytest.mark.parametrize("seed", range(20))
def test_kappa_equals_scikit_learns(seed: int):
    """An independent implementation (scikit-learn) gives the same kappa, with several categories."""
    rng = random.Random(seed)
    n = rng.randint(2, 60)
    categories = rng.randint(2, 6)
    x = [rng.randrange(categories) for _ in range(n)]
    y = [v if rng.random() < 0.6 else rng.randrange(categories) for v in x]
    expected = cohen_kappa_score(x, y)
    got = cohen_kappa(x, y)
    if np.isnan(expected):
        assert got is None
    else:
        assert got == pytest.approx(expected, abs=1e-12)


# -- undefined cases -------------------------------------------------------------------------------------------------


def test_one_category_only_is_undefined_not_nan():
    """Both coders said yes to every unit: chance agreement is certain, kappa and alpha are undefined."""
    assert cohen_kappa([1, 1, 1], [1, 1, 1]) is None
    assert krippendorff_alpha([1, 1, 1], [1, 1, 1]) is None
    assert cohen_kappa([], []) is None
    assert krippendorff_alpha([], []) is None


def test_undefined_measures_are_empty_cells(tmp_path):
    """A code every unit has for both coders: percent agreement 100, kappa and alpha and interval empty, no NaN."""
    scheme = _scheme("water", "food")
    both = frozenset({"c-water"})
    rows = scheme_agreement("s01e01", CodedScheme(scheme, True), {"m1": both, "m2": both}, {"m1": both, "m2": both},
                            ["m1", "m2"])
    water = _cells(rows[1])
    assert water["code"] == "water"
    assert water["percent_agreement"] == "100.0"
    assert [water[c] for c in ("cohen_kappa", "krippendorff_alpha", "alpha_ci_low", "alpha_ci_high")] == [None] * 4
    path = tmp_path / "icr_agreement.csv"
    write_agreement_csv(path, rows)
    text = path.read_text(encoding="utf-8")
    assert "nan" not in text.lower()
    assert text.splitlines()[2] == "s01e01,S01E01,water,2,0,1.000,100.0,,,,,"


def test_a_negative_coefficient_is_written_as_a_number(tmp_path):
    """Coders who disagree more than chance give a negative kappa and alpha: written as -0.250, not as text
    neutralised against spreadsheet formulas ('-0.250)."""
    scheme = _scheme("water", "food")
    w, f = frozenset({"c-water"}), frozenset({"c-food"})
    # m1 water/food, m2 food/water, m3 water/water, m4 food/food: p_o 0.5, p_e 0.5 -> kappa 0
    # m1 water/food, m2 food/water: p_o 0, p_e 0.5 -> kappa (2*0 - 2) / (4 - 2) = -1
    rows = scheme_agreement("s01e01", CodedScheme(scheme, True), {"m1": w, "m2": f}, {"m1": f, "m2": w}, ["m1", "m2"])
    path = tmp_path / "icr_agreement.csv"
    write_agreement_csv(path, rows)
    overall = path.read_text(encoding="utf-8").splitlines()[1].split(",")
    assert overall[7] == "-1.000"
    # alpha: 4 values, 2 of each, 2 disagreeing units: 1 - 3 * 4 / (16 - 8) = -0.5
    assert overall[8] == "-0.500"


def test_no_units_gives_the_counts_only():
    """Nobody coded a message twice: the overall row carries units 0 and the messages not coded by both."""
    scheme = _scheme("water")
    rows = scheme_agreement("s01e01", CodedScheme(scheme, True), {"m1": frozenset({"c-water"})}, {}, ["m1", "m2"])
    assert len(rows) == 1
    assert _cells(rows[0]) == {
        "show": "s01e01", "scheme": "S01E01", "code": ALL_CODES, "units": "0", "not_coded_by_both": "2",
        "prevalence": None, "percent_agreement": None, "cohen_kappa": None, "krippendorff_alpha": None,
        "alpha_ci_low": None, "alpha_ci_high": None, "mean_code_alpha": None,
    }


# -- rows --------------------------------------------------------------------------------------------------------------


def _scheme(*names: str) -> CodeScheme:
    codes = [Code(f"c-{name}", "Normal", None, name, i, name, True) for i, name in enumerate(names)]
    codes.append(Code("c-WS", "Control", "WS", "WS", 99, "WS", True))
    return CodeScheme("Scheme-1", "S01E01", "1", tuple(codes))


def test_rows_overall_first_then_used_codes_in_scheme_order():
    """Units: m1 {water} / {water}; m2 {food} / {food, WS}; m3 {water} / {food}; m4 only coder 1 (not a unit).
    Overall: sets agree on m1 only -> 33.3 %; codes used: water, food, WS in scheme order (shelter unused)."""
    scheme = _scheme("water", "shelter", "food")
    w, f, ws = "c-water", "c-food", "c-WS"
    first = {"m1": frozenset({w}), "m2": frozenset({f}), "m3": frozenset({w}), "m4": frozenset({f})}
    second = {"m1": frozenset({w}), "m2": frozenset({f, ws}), "m3": frozenset({f})}
    rows = scheme_agreement("s01e01", CodedScheme(scheme, True), first, second, ["m1", "m2", "m3", "m4"])
    assert [row.code for row in rows] == [ALL_CODES, "water", "food", "WS"]
    overall = _cells(rows[0])
    assert (overall["units"], overall["not_coded_by_both"], overall["percent_agreement"]) == ("3", "1", "33.3")
    # Overall kappa: coder 1 {w} x2, {f} x1; coder 2 {w}, {f, WS}, {f}: chance = 2*1 + 1*1 = 3, agreements 1:
    # (3*1 - 3) / (9 - 3) = 0.
    assert overall["cohen_kappa"] == "0.000"
    # water: x = 1,0,1  y = 1,0,0: prevalence 3/6, agreement 2/3; kappa (3*2 - (2*1 + 1*2)) / (9 - 4) = 0.4
    water = _cells(rows[1])
    assert (water["prevalence"], water["percent_agreement"], water["cohen_kappa"]) == ("0.500", "66.7", "0.400")
    # alpha: 6 values, 3 yes 3 no, 1 disagreeing unit: 1 - 5 * 2 / (36 - 18) = 0.444
    assert water["krippendorff_alpha"] == "0.444"
    # mean of the defined per-code alphas on the overall row only
    code_alphas = [row.krippendorff_alpha for row in rows[1:] if row.krippendorff_alpha is not None]
    assert rows[0].mean_code_alpha == pytest.approx(sum(code_alphas) / len(code_alphas))
    assert all(row.mean_code_alpha is None for row in rows[1:])


def test_bootstrap_alpha_of_every_resample_is_the_packages():
    """The resamples are evaluated together in matrix form; on each, the result equals the krippendorff package's
    alpha on the resampled units (undefined resamples are the ones with a single value)."""
    rng = np.random.default_rng(7)
    first = rng.integers(0, 4, 40)
    second = np.where(rng.random(40) < 0.7, first, rng.integers(0, 4, 40))
    draws = Resamples(40, resamples=200, seed=3)
    alphas = draws.alphas(first, second)
    expected = []
    for units in draws.draws:
        a, b = first[units], second[units]
        if len(set(a) | set(b)) > 1:
            expected.append(krippendorff.alpha(reliability_data=[a, b], level_of_measurement="nominal"))
    assert alphas == pytest.approx(expected, abs=1e-12)


def test_yes_no_questions_evaluated_together_equal_one_at_a_time():
    """The codes of a scheme are bootstrapped in one product; each equals the general evaluation on its own."""
    rng = np.random.default_rng(11)
    xs = [rng.integers(0, 2, 30).tolist() for _ in range(5)] + [[1] * 30]  # the last: one value throughout
    ys = [[v if rng.random() < 0.8 else 1 - v for v in x] for x in xs[:5]] + [[1] * 30]
    draws = Resamples(30, resamples=300, seed=5)
    together = draws.yes_no_alphas(xs, ys)
    for x, y, alphas in zip(xs, ys, together):
        assert alphas == pytest.approx(draws.alphas(x, y), abs=1e-12)
    assert together[-1].size == 0
    assert draws.yes_no_intervals(xs, ys)[-1] is None


def test_bootstrap_interval_is_seeded_and_brackets_the_estimate():
    x, y = _two_by_two(30, 5, 4, 61)
    low, high = Resamples(len(x)).interval(x, y)
    assert Resamples(len(x)).interval(x, y) == (low, high)
    assert low < krippendorff_alpha(x, y) < high
    assert Resamples(len(x), seed=1).interval(x, y) != (low, high)


def test_same_inputs_give_a_byte_identical_file(tmp_path):
    scheme = _scheme("water", "food")
    rng = random.Random(4)
    ids = [f"m{i}" for i in range(50)]
    codes = ["c-water", "c-food", "c-WS"]
    first = {m: frozenset(rng.sample(codes, rng.randint(1, 2))) for m in ids}
    second = {m: first[m] if rng.random() < 0.7 else frozenset(rng.sample(codes, 1)) for m in ids}
    paths = []
    for attempt in range(2):
        # the mappings' order must not matter
        f = dict(reversed(list(first.items()))) if attempt else first
        rows = scheme_agreement("s01e01", CodedScheme(scheme, True), f, second, ids)
        paths.append(tmp_path / f"run{attempt}.csv")
        write_agreement_csv(paths[-1], rows)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_text(encoding="utf-8").splitlines()[0] == ",".join(COLUMNS)


# -- formatting and bands ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, places, text", [
    (0.0625, 3, "0.063"), (0.8125, 3, "0.813"), (-0.0001, 3, "0.000"), (1.0, 3, "1.000"), (91.45, 1, "91.5"),
    (100.0, 1, "100.0"), (2 / 3 * 100, 1, "66.7"), (-0.25, 3, "-0.250"), (None, 3, None),
])
def test_numbers_are_rounded_halves_away_from_zero(value, places, text):
    assert decimal_text(value, places) == text


@pytest.mark.parametrize("alpha, band", [
    (1.0, "good"), (0.8, "good"), (0.7996, "good"), (0.7994, "tentative"), (0.667, "tentative"),
    (0.6665, "tentative"), (0.6664, "unreliable"), (-0.2, "unreliable"), (None, None),
])
def test_bands_follow_the_alpha_as_shown(alpha, band):
    """At least 0.800 good, 0.667 to 0.800 tentative, below unreliable; judged on the 3-decimal alpha."""
    assert alpha_band(alpha) == band
