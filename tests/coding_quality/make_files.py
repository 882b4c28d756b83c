#!/usr/bin/env python3
"""Writes the second coder's files and the expected ``icr_agreement.csv`` of the coding-quality end-to-end test.

The data root is the golden one (``tests/golden/data_root``); its ``Coded Coda Files/s01e03.json`` and
``s01e01.json`` are the first coder. This script adds a second coder:

- ``Coded Coda Files/ICR/s01e03.json``: the labels declared in ``SECOND_CODER`` below, as Coda's get tool saves
  them (newest label first);
- ``Coded Coda Files/ICR/s01e01.json``: an empty list (the dataset exists, nobody has coded it yet);
- no file for s01e02 and s01e04 (not coded a second time: no rows).

The expected point measures are worked by hand in ``README.md`` and declared in ``EXPECTED_ROWS``. The bootstrap
interval cannot be worked by hand; ``reference_interval`` follows the documented procedure independently of the
pipeline: the units in the order of the ICR Coda file (creation time), ``numpy.random.default_rng(0)
.integers(0, units, (1000, units))``, the ``krippendorff`` package's nominal alpha on each resample that has more
than one value, numpy's 2.5th and 97.5th percentiles.

Run from the project root: ``.venv/bin/python tests/coding_quality/make_files.py``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import krippendorff
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "golden"))

from make_data_root import message_text  # noqa: E402

SECOND = {"OriginID": "coder.b@example.org", "Name": "Coder B", "OriginType": "Manual"}
T1, T2, T3 = "2019-02-01T09:00:00.000Z", "2019-02-01T09:05:00.000Z", "2019-02-01T09:10:00.000Z"
REASONS, REASONS_1, YES_NO = "Scheme-5b60cc33", "Scheme-5b60cc33-1", "Scheme-1161eddc"
GOVERNMENT, NGOS, COMMUNITY = "code-352129d8", "code-04bc53ff", "code-89cd0dc6"
HOUSING, HEALTH, RELIGION, COMMON = "code-e6364a7c", "code-a64a8dd5", "code-49e980c2", "code-5e688ce8"
YES, NO, AMBIVALENT = "code-be86bca5", "code-c209a282", "code-61a373a0"
WS = "code-WS-adb25603b7af"


def label(scheme_id: str, code_id: str, at: str, checked: bool = True) -> dict[str, Any]:
    return {"SchemeID": scheme_id, "CodeID": code_id, "DateTimeUTC": at, "Checked": checked, "Origin": dict(SECOND)}


# The ICR sample of s01e03 is all nine candidates (golden README). Labels newest first, as Coda lists them.
# First coder (golden Coded Coda Files/s01e03.json), reasons / yes-no, for reference:
#   M31 - / -   M32 health / yes   M33 common / no   M35 community / yes   M36 WS / WS   M37 government / yes
#   M39 housing / -   M3A - (cleared) / -   M3C religion / no
SECOND_CODER: list[tuple[str, str, list[dict[str, Any]]]] = [
    ("M35", "2018-12-15T21:00:00+00:00", [label(YES_NO, AMBIVALENT, T2), label(REASONS, COMMUNITY, T1)]),
    ("M36", "2018-12-16T16:00:55+00:00", [label(YES_NO, WS, T2), label(REASONS, WS, T1)]),
    # Coded only by the second coder: not a unit in either scheme.
    ("M31", "2018-12-16T21:00:00+00:00", [label(YES_NO, YES, T2), label(REASONS, GOVERNMENT, T1)]),
    ("M32", "2018-12-18T20:59:59+00:00", [label(YES_NO, YES, T2), label(REASONS, HEALTH, T1)]),
    ("M3A", "2018-12-18T21:00:00+00:00", []),  # not coded by anyone
    # Yes/no changed from no to yes: the newest label counts.
    ("M37", "2018-12-19T21:00:00+00:00", [
        label(YES_NO, YES, T2), label(YES_NO, NO, T1), label(REASONS, COMMUNITY, T1)]),
    # Reasons changed from common_identity to religion under one SchemeID: the latest counts. Yes/no checked, then
    # unticked: the newest label is unchecked, so the second coder has no yes/no code for it.
    ("M3C", "2018-12-21T07:00:00+00:00", [
        label(YES_NO, NO, T3, checked=False), label(REASONS, RELIGION, T2), label(YES_NO, NO, T1),
        label(REASONS, COMMON, T1)]),
    # An unchecked label under the duplicate scheme is not part of the code set.
    ("M39", "2018-12-22T20:59:59+00:00", [
        label(YES_NO, NO, T2), label(REASONS_1, NGOS, T2, checked=False), label(REASONS, HOUSING, T1)]),
    # Two reasons, the second under the duplicate scheme.
    ("M33", "2018-12-22T21:00:00+00:00", [
        label(YES_NO, NO, T3), label(REASONS_1, RELIGION, T2), label(REASONS, COMMON, T1)]),
]

COLUMNS = ["show", "scheme", "code", "units", "not_coded_by_both", "prevalence", "percent_agreement",
           "cohen_kappa", "krippendorff_alpha", "alpha_ci_low", "alpha_ci_high", "mean_code_alpha"]

# Hand-worked (README.md): show, scheme, code, units, not coded by both, prevalence, % agreement, kappa, alpha,
# mean code alpha; the interval follows from UNITS below.
EXPECTED_ROWS = [
    ("s01e01", "S01E01", "(all codes)", 0, 11, "", "", "", "", ""),
    ("s01e03", "S01E03 Reasons", "(all codes)", 7, 2, "", "71.4", "0.674", "0.690", "0.745"),
    ("s01e03", "S01E03 Reasons", "discriminating_actor_government", 7, 2, "0.071", "85.7", "0.000", "0.000", ""),
    ("s01e03", "S01E03 Reasons", "discriminating_actor_community", 7, 2, "0.214", "85.7", "0.588", "0.606", ""),
    ("s01e03", "S01E03 Reasons", "axes_of_discrimination_access_to_housing", 7, 2, "0.143", "100.0", "1.000",
     "1.000", ""),
    ("s01e03", "S01E03 Reasons", "axes_of_discrimination_access_to_health_care", 7, 2, "0.143", "100.0", "1.000",
     "1.000", ""),
    ("s01e03", "S01E03 Reasons", "reasons_for_lack_of_discrimination_religion", 7, 2, "0.214", "85.7", "0.588",
     "0.606", ""),
    ("s01e03", "S01E03 Reasons", "reasons_for_lack_of_discrimination_common_identity", 7, 2, "0.143", "100.0",
     "1.000", "1.000", ""),
    ("s01e03", "S01E03 Reasons", "WS", 7, 2, "0.143", "100.0", "1.000", "1.000", ""),
    ("s01e03", "S01E03 Yes/No/Amb", "(all codes)", 5, 4, "", "80.0", "0.706", "0.727", "0.660"),
    ("s01e03", "S01E03 Yes/No/Amb", "yes", 5, 4, "0.500", "80.0", "0.615", "0.640", ""),
    ("s01e03", "S01E03 Yes/No/Amb", "no", 5, 4, "0.200", "100.0", "1.000", "1.000", ""),
    ("s01e03", "S01E03 Yes/No/Amb", "ambivalent", 5, 4, "0.100", "80.0", "0.000", "0.000", ""),
    ("s01e03", "S01E03 Yes/No/Amb", "WS", 5, 4, "0.200", "100.0", "1.000", "1.000", ""),
]

# The units of each scheme in the ICR Coda file's order (creation time): (first coder's set, second coder's set).
UNITS = {
    "S01E03 Reasons": [  # M35 M36 M32 M37 M3C M39 M33 (M31 and M3A are not coded by both)
        ({"community"}, {"community"}), ({"WS"}, {"WS"}), ({"health"}, {"health"}),
        ({"government"}, {"community"}), ({"religion"}, {"religion"}), ({"housing"}, {"housing"}),
        ({"common"}, {"common", "religion"}),
    ],
    "S01E03 Yes/No/Amb": [  # M35 M36 M32 M37 M33 (M31, M39, M3C, M3A are not)
        ({"yes"}, {"ambivalent"}), ({"WS"}, {"WS"}), ({"yes"}, {"yes"}), ({"yes"}, {"yes"}), ({"no"}, {"no"}),
    ],
}
CODE_NAMES = {
    "discriminating_actor_government": "government", "discriminating_actor_community": "community",
    "axes_of_discrimination_access_to_housing": "housing", "axes_of_discrimination_access_to_health_care": "health",
    "reasons_for_lack_of_discrimination_religion": "religion",
    "reasons_for_lack_of_discrimination_common_identity": "common", "WS": "WS", "yes": "yes", "no": "no",
    "ambivalent": "ambivalent",
}


def reference_interval(values: list[tuple[Any, Any]]) -> tuple[str, str]:
    """The documented bootstrap, evaluated with the package on each resample (see the module docstring)."""
    n = len(values)
    draws = np.random.default_rng(0).integers(0, n, size=(1000, n))
    numbers = {v: i for i, v in enumerate(sorted({v for pair in values for v in pair}, key=repr))}
    first = np.array([numbers[a] for a, _ in values])
    second = np.array([numbers[b] for _, b in values])
    alphas = []
    for units in draws:
        a, b = first[units], second[units]
        if len(set(a.tolist()) | set(b.tolist())) > 1:
            alphas.append(krippendorff.alpha(reliability_data=[a, b], level_of_measurement="nominal"))
    low, high = np.percentile(alphas, [2.5, 97.5])
    return _three(low), _three(high)


def _three(value: float) -> str:
    return str(Decimal(repr(float(value))).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP) + 0)


def expected_rows() -> list[list[Any]]:
    rows = []
    for show, scheme, code, units, not_both, prevalence, agreement, kappa, alpha, mean in EXPECTED_ROWS:
        interval = ("", "")
        if units:
            pairs = UNITS[scheme]
            if code == "(all codes)":
                values = [(frozenset(a), frozenset(b)) for a, b in pairs]
            else:
                name = CODE_NAMES[code]
                values = [(name in a, name in b) for a, b in pairs]
            interval = reference_interval(values)
        rows.append([show, scheme, code, units, not_both, prevalence, agreement, kappa, alpha, *interval, mean])
    return rows


def main() -> None:
    icr = HERE / "Coded Coda Files" / "ICR"
    icr.mkdir(parents=True, exist_ok=True)
    messages = [{"CreationDateTimeUTC": created, "Labels": labels,
                 "MessageID": hashlib.sha256(message_text(m).encode("utf-8")).hexdigest(),
                 "SequenceNumber": number, "Text": message_text(m)}
                for number, (m, created, labels) in enumerate(SECOND_CODER, start=1)]
    (icr / "s01e03.json").write_text(json.dumps(messages, indent=2) + "\n", encoding="utf-8")
    (icr / "s01e01.json").write_text("[]\n", encoding="utf-8")
    with open(HERE / "expected_icr_agreement.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(expected_rows())
    print(f"wrote {icr} and {HERE / 'expected_icr_agreement.csv'}")


if __name__ == "__main__":
    main()
