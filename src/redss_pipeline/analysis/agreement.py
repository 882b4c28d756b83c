"""Inter-coder agreement on the ICR samples: how far two coders who coded the same messages agree
(spec coding-quality.md sections 2-4).

The first coder's codes are the main dataset's coded file (``Coded Coda Files/<show>.json``), the second coder's
the blind ICR dataset's (``Coded Coda Files/ICR/<show>.json``). For each show, scheme by scheme:

| step | what                                                                                                    |
| ---- | ------------------------------------------------------------------------------------------------------- |
| 1    | each coder's **code set** per sampled message: the checked current labels (coda.md 5.2 / 5.3 reading)   |
| 2    | a message is a **unit** when both sets are non-empty; the others are counted as ``not_coded_by_both``    |
| 3    | **per code** used by either coder: a yes/no value per coder and unit -> prevalence, percent agreement,  |
|      | Cohen's kappa, Krippendorff's alpha (nominal) with a bootstrap interval                                  |
| 4    | **overall** ``(all codes)``: each unit's value is its whole code set (equal sets agree) -> the same      |
|      | measures, plus the mean of the per-code alphas                                                          |

Krippendorff's alpha is the ``krippendorff`` package's (nominal). Cohen's kappa is ``(p_o - p_e) / (1 - p_e)``,
worked out in integers so that "undefined" (``p_e = 1``: both coders gave every unit one and the same value) is
exact. Undefined measures are ``None`` here and empty cells in the CSV, never NaN.

The interval is a percentile bootstrap over units: 1,000 resamples of the units with replacement, drawn by
``numpy.random.default_rng(0).integers(0, units, (1000, units))`` - a fresh generator for every show and scheme,
so every code of a scheme and its ``(all codes)`` row are judged on the same resamples, and a show's figures do
not depend on the other shows. Resamples in which alpha is undefined (a single value throughout) are left out;
the bounds are numpy's default (linear) 2.5th and 97.5th percentiles of the others. Evaluating the package a
thousand times per code would take seconds per show, so the resamples are evaluated together in matrix form:
nominal alpha for two coders and no missing values depends only on how often each value occurs and how many
units disagree, ``alpha = 1 - (n - 1) * D / (n**2 - sum(n_c**2))`` with ``n = 2 * units`` values, ``n_c`` the
count of value ``c`` and ``D`` twice the disagreeing units (Krippendorff 2011, "Computing Krippendorff's
alpha-reliability", nominal data). The tests check that this gives the package's alpha on every resample.

Interpretation bands (Krippendorff's conventional thresholds): at least 0.800 "good", 0.667 up to 0.800
"tentative", below 0.667 "unreliable"; judged on alpha as shown (3 decimals), so the band never contradicts the
figure next to it.

Numbers are rendered only when the CSV is written: proportions and coefficients to 3 decimals, percent agreement
to 1, rounding halves away from zero on the shortest decimal form of the value (0.0625 -> 0.063).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from statistics import fmean
from typing import Any, NamedTuple

import krippendorff
import numpy as np

from redss_pipeline.core.code_scheme import CodeScheme
from redss_pipeline.core.config import PipelineConfig, RqaPlan
from redss_pipeline.core.labels import is_checked
from redss_pipeline.export.coda import CodedMessages, current_labels
from redss_pipeline.export.csv_cells import write_csv

__all__ = [
    "ALL_CODES",
    "BOOTSTRAP_RESAMPLES",
    "BOOTSTRAP_SEED",
    "COLUMNS",
    "GOOD",
    "TENTATIVE",
    "UNRELIABLE",
    "AgreementRow",
    "CodedScheme",
    "Resamples",
    "agreement_cells",
    "alpha_band",
    "checked_codes",
    "cohen_kappa",
    "decimal_cell",
    "decimal_text",
    "icr_agreement",
    "krippendorff_alpha",
    "scheme_agreement",
    "show_schemes",
    "write_agreement_csv",
]

ALL_CODES = "(all codes)"
"""The ``code`` cell of a scheme's overall row."""

COLUMNS = (
    "show", "scheme", "code", "units", "not_coded_by_both", "prevalence", "percent_agreement", "cohen_kappa",
    "krippendorff_alpha", "alpha_ci_low", "alpha_ci_high", "mean_code_alpha",
)
"""The header of ``Outputs/Analysis/icr_agreement.csv`` (coding-quality.md section 4)."""

BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0

GOOD, TENTATIVE, UNRELIABLE = "good", "tentative", "unreliable"
_GOOD_FROM, _TENTATIVE_FROM = Decimal("0.800"), Decimal("0.667")


class CodedScheme(NamedTuple):
    """A scheme of a show and how coders apply it: several codes per message (reasons) or one (binary)."""

    scheme: CodeScheme
    multi_coded: bool


def show_schemes(plan: RqaPlan) -> list[CodedScheme]:
    """The schemes agreement is measured on for a show: its reasons scheme, then its binary scheme if any."""
    schemes = [CodedScheme(plan.scheme, True)]
    if plan.binary is not None:
        schemes.append(CodedScheme(plan.binary.scheme, False))
    return schemes


def checked_codes(coded: CodedMessages, mid: str, coded_scheme: CodedScheme) -> frozenset[str]:
    """A coder's code set for one message (coding-quality.md section 2): the CodeIDs of the checked current labels.

    Unchecked labels (auto-code suggestions nobody confirmed, unticked labels) say nothing about what the coder
    decided, so they are not part of it; an empty set means the coder has not coded the message.
    """
    labels = current_labels(coded, mid, coded_scheme.scheme, multi_coded=coded_scheme.multi_coded)
    return frozenset(label["CodeID"] for label in labels if is_checked(label))


# -- measures ------------------------------------------------------------------------------------------------------


def cohen_kappa(first: Sequence[Hashable], second: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two coders' values for the same units, ``(p_o - p_e) / (1 - p_e)``; None when undefined.

    It is undefined without units, and when chance agreement is certain (``p_e = 1``), which happens exactly when
    both coders gave every unit the same single value. Worked in integers: with ``n`` units, ``a`` agreements and
    ``e = sum_c n1_c * n2_c``, kappa is ``(n * a - e) / (n**2 - e)``.
    """
    n = len(first)
    if n != len(second):
        raise ValueError("both coders must have a value for every unit")
    if n == 0:
        return None
    agreements = sum(1 for a, b in zip(first, second) if a == b)
    counts_second = Counter(second)
    chance = sum(count * counts_second.get(value, 0) for value, count in Counter(first).items())
    if chance == n * n:
        return None
    return (n * agreements - chance) / (n * n - chance)


def krippendorff_alpha(first: Sequence[int], second: Sequence[int]) -> float | None:
    """Krippendorff's alpha (nominal) of two coders' values for the same units, from the ``krippendorff`` package;
    None when undefined (no units, or one value throughout: no disagreement is then expected by chance)."""
    if len(first) != len(second):
        raise ValueError("both coders must have a value for every unit")
    if len(set(first) | set(second)) < 2:
        return None
    return float(krippendorff.alpha(reliability_data=[list(first), list(second)], level_of_measurement="nominal"))


def alpha_band(alpha: float | None) -> str | None:
    """The interpretation band of an alpha, judged on its 3-decimal form: "good", "tentative" or "unreliable"."""
    if alpha is None:
        return None
    shown = _rounded(alpha, 3)
    if shown >= _GOOD_FROM:
        return GOOD
    if shown >= _TENTATIVE_FROM:
        return TENTATIVE
    return UNRELIABLE


class Resamples:
    """The bootstrap resamples of ``units`` units: ``draws[r]`` are the positions of the units drawn, with
    replacement, into resample ``r``; every resample has ``units`` units.

    The evaluations below count in integers (indexing, ``bincount``, integer products): a floating-point product
    would hand the work to the BLAS library, whose worker threads slow it down tenfold on a busy machine.
    """

    def __init__(self, units: int, *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED):
        self.units = units
        self.draws = (np.random.default_rng(seed).integers(0, units, size=(resamples, units)) if units
                      else np.zeros((0, 0), dtype=np.int64))
        # copies[r, u]: how many times unit u is drawn into resample r
        flat = (self.draws + np.arange(len(self.draws), dtype=np.int64)[:, np.newaxis] * units).ravel()
        self.copies = np.bincount(flat, minlength=self.draws.size).reshape(self.draws.shape)

    def alphas(self, first: Sequence[int], second: Sequence[int]) -> np.ndarray:
        """Nominal alpha of every resample in which it is defined (see the module documentation for the formula)."""
        if self.units == 0:
            return np.zeros(0)
        a = np.asarray(first, dtype=np.int64)
        b = np.asarray(second, dtype=np.int64)
        values = int(max(a.max(), b.max())) + 1
        resamples = self.draws.shape[0]
        drawn = np.concatenate([a[self.draws], b[self.draws]], axis=1)  # every value of each resample
        offsets = np.arange(resamples, dtype=np.int64)[:, np.newaxis] * values
        value_counts = np.bincount((drawn + offsets).ravel(), minlength=resamples * values).reshape(resamples, values)
        n = 2 * self.units
        expected = n * n - (value_counts * value_counts).sum(axis=1)  # sum over c != k of n_c * n_k
        observed = 2 * (a != b)[self.draws].sum(axis=1)  # ordered pairs of unequal values
        defined = expected > 0  # zero: a single value throughout
        alphas: np.ndarray = 1.0 - (n - 1) * observed[defined] / expected[defined]
        return alphas

    def interval(self, first: Sequence[int], second: Sequence[int]) -> tuple[float, float] | None:
        """The 2.5th and 97.5th percentiles of the resamples' alphas; None when no resample has one."""
        return _percentiles(self.alphas(first, second))

    def yes_no_alphas(self, first: Sequence[Sequence[int]], second: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """:meth:`alphas` of many yes/no questions on the same units at once (the codes of a scheme): ``first[i]``
        and ``second[i]`` are the coders' 0/1 values of question ``i``. With two values, ``n_c`` are the counts of
        yes and no, and the products run once for all questions."""
        if self.units == 0 or not first:
            return [np.zeros(0) for _ in first]
        x = np.asarray(first, dtype=np.int64)  # questions x units
        y = np.asarray(second, dtype=np.int64)
        n = 2 * self.units
        yes = self.copies @ (x + y).T  # resamples x questions; an integer product, exact and without BLAS
        expected = n * n - yes * yes - (n - yes) * (n - yes)
        observed = 2 * (self.copies @ (x != y).astype(np.int64).T)
        alphas = []
        for question in range(x.shape[0]):
            defined = expected[:, question] > 0
            alphas.append(1.0 - (n - 1) * observed[defined, question] / expected[defined, question])
        return alphas

    def yes_no_intervals(self, first: Sequence[Sequence[int]],
                         second: Sequence[Sequence[int]]) -> list[tuple[float, float] | None]:
        """:meth:`interval` of each yes/no question (see :meth:`yes_no_alphas`)."""
        return [_percentiles(alphas) for alphas in self.yes_no_alphas(first, second)]


def _percentiles(alphas: np.ndarray) -> tuple[float, float] | None:
    if alphas.size == 0:
        return None
    low, high = np.percentile(alphas, [2.5, 97.5])
    return float(low), float(high)


@dataclass(frozen=True)
class AgreementRow:
    """One row of ``icr_agreement.csv``: the measures of one code (or ``(all codes)``) of a show's scheme.

    Numbers are kept as numbers (None when undefined); :func:`agreement_cells` renders them.
    ``percent_agreement`` is a percentage (0-100); the other measures are proportions or coefficients.
    """

    show: str
    scheme: str
    code: str
    units: int
    not_coded_by_both: int
    prevalence: float | None = None
    percent_agreement: float | None = None
    cohen_kappa: float | None = None
    krippendorff_alpha: float | None = None
    alpha_ci_low: float | None = None
    alpha_ci_high: float | None = None
    mean_code_alpha: float | None = None


def scheme_agreement(
    show: str,
    coded_scheme: CodedScheme,
    first: Mapping[str, frozenset[str]],
    second: Mapping[str, frozenset[str]],
    message_ids: Sequence[str],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> list[AgreementRow]:
    """The rows of one show and scheme: ``(all codes)`` first, then each code either coder used, in scheme order.

    ``first`` and ``second`` give each coder's code set (CodeIDs) per message id; ``message_ids`` are the sample's
    distinct messages. Without units the overall row carries only the counts, and there are no code rows.
    """
    scheme = coded_scheme.scheme
    units = [(first.get(mid, frozenset()), second.get(mid, frozenset())) for mid in message_ids]
    units = [(a, b) for a, b in units if a and b]
    not_both = len(message_ids) - len(units)
    draws = Resamples(len(units), resamples=resamples, seed=seed)

    used = set().union(*(a | b for a, b in units)) if units else set()
    codes = [code for code in scheme.codes if code.code_id in used]
    xs = [[int(code.code_id in a) for a, _ in units] for code in codes]
    ys = [[int(code.code_id in b) for _, b in units] for code in codes]
    code_rows = [
        _measured(show, scheme.name, code.string_value, x, y, not_both, interval,
                  prevalence=(sum(x) + sum(y)) / (2 * len(units)))
        for code, x, y, interval in zip(codes, xs, ys, draws.yes_no_intervals(xs, ys))
    ]

    # Overall: each distinct code set is one value; numbered in a fixed order so the result never depends on
    # set iteration order.
    position = {code.code_id: index for index, code in enumerate(scheme.codes)}
    keys = {s: tuple(sorted(position.get(code_id, len(position)) for code_id in s)) for pair in units for s in pair}
    numbers = {s: number for number, s in enumerate(sorted(keys, key=keys.__getitem__))}
    first_values, second_values = [numbers[a] for a, _ in units], [numbers[b] for _, b in units]
    overall = _measured(show, scheme.name, ALL_CODES, first_values, second_values, not_both,
                        draws.interval(first_values, second_values), prevalence=None)
    code_alphas = [row.krippendorff_alpha for row in code_rows if row.krippendorff_alpha is not None]
    overall = _with_mean(overall, fmean(code_alphas) if code_alphas else None)
    return [overall, *code_rows]


def _measured(show: str, scheme: str, code: str, x: list[int], y: list[int], not_both: int,
              interval: tuple[float, float] | None, *, prevalence: float | None) -> AgreementRow:
    if not x:
        return AgreementRow(show, scheme, code, 0, not_both)
    alpha = krippendorff_alpha(x, y)
    if alpha is None:
        interval = None
    return AgreementRow(
        show, scheme, code, len(x), not_both,
        prevalence=prevalence,
        percent_agreement=100 * sum(1 for a, b in zip(x, y) if a == b) / len(x),
        cohen_kappa=cohen_kappa(x, y),
        krippendorff_alpha=alpha,
        alpha_ci_low=None if interval is None else interval[0],
        alpha_ci_high=None if interval is None else interval[1],
    )


def _with_mean(row: AgreementRow, mean: float | None) -> AgreementRow:
    return AgreementRow(**{**row.__dict__, "mean_code_alpha": mean})


def icr_agreement(
    config: PipelineConfig,
    *,
    samples: Mapping[str, Sequence[str]],
    first_coder: Mapping[str, CodedMessages],
    second_coder: Mapping[str, CodedMessages],
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> list[AgreementRow]:
    """Every row of ``icr_agreement.csv``: shows in configuration order, each show whose two coded files exist.

    The mappings are keyed by the show's Coda file name (``s01e01.json``): ``samples`` gives the ICR sample's
    distinct message ids, ``first_coder`` the main dataset's coded file and ``second_coder`` the ICR dataset's,
    each holding only the files that exist. A CodeID a scheme lacks is a CodaFileError naming file and message.
    """
    rows: list[AgreementRow] = []
    for plan in config.rqa_plans:
        name = plan.coda_file
        if name not in samples or name not in first_coder or name not in second_coder:
            continue
        message_ids = list(dict.fromkeys(samples[name]))
        for coded_scheme in show_schemes(plan):
            first = {mid: checked_codes(first_coder[name], mid, coded_scheme) for mid in message_ids}
            second = {mid: checked_codes(second_coder[name], mid, coded_scheme) for mid in message_ids}
            rows += scheme_agreement(plan.name, coded_scheme, first, second, message_ids, resamples=resamples,
                                     seed=seed)
    return rows


# -- the CSV edge --------------------------------------------------------------------------------------------------


def _rounded(value: float, places: int) -> Decimal:
    rounded = Decimal(repr(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return rounded + 0  # adding zero turns -0.000 into 0.000


def decimal_text(value: float | None, places: int) -> str | None:
    """A number as the coding-quality files show it: ``places`` decimals, halves away from zero on the value's
    shortest decimal form (so 0.0625 gives 0.063, as worked by hand), never ``-0.000``; None stays None."""
    return None if value is None else str(_rounded(value, places))


def decimal_cell(value: float | None, places: int) -> Decimal | None:
    """The CSV cell of a number: the rounded ``Decimal`` of :func:`decimal_text` (a number, not text, so the CSV
    writer never takes a negative kappa for a formula); None for an empty cell."""
    return None if value is None else _rounded(value, places)


def agreement_cells(row: AgreementRow) -> dict[str, Any]:
    """The row's CSV cells (coding-quality.md section 4): 3 decimals, percent agreement 1, None (an empty cell)
    when undefined. Numbers stay numbers (``Decimal``) so the CSV writer never takes a negative kappa for text."""
    return {
        "show": row.show,
        "scheme": row.scheme,
        "code": row.code,
        "units": row.units,
        "not_coded_by_both": row.not_coded_by_both,
        "prevalence": decimal_cell(row.prevalence, 3),
        "percent_agreement": decimal_cell(row.percent_agreement, 1),
        "cohen_kappa": decimal_cell(row.cohen_kappa, 3),
        "krippendorff_alpha": decimal_cell(row.krippendorff_alpha, 3),
        "alpha_ci_low": decimal_cell(row.alpha_ci_low, 3),
        "alpha_ci_high": decimal_cell(row.alpha_ci_high, 3),
        "mean_code_alpha": decimal_cell(row.mean_code_alpha, 3),
    }


def write_agreement_csv(path: str | os.PathLike[str], rows: Iterable[AgreementRow]) -> None:
    """Writes ``icr_agreement.csv`` (header always, one row per show, scheme and code) atomically."""
    write_csv(path, COLUMNS, ([agreement_cells(row)[column] for column in COLUMNS] for row in rows))
