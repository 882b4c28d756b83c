"""What people said and who they are: theme and demographic distributions, cross-tabs, confidence intervals.

Spec analysis.md 4.3, 4.4, 4.5 and the confidence intervals of section 6. Only opt-in individuals count. The
individuals' profiles are first projected onto the datasets a table needs, so each table works once per
distinct combination of codes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from redss_pipeline.analysis.cells import Cell, Count, Derived, Percent
from redss_pipeline.analysis.datasets import AnalysisDatasets
from redss_pipeline.analysis.definitions import CodeSet, Profile
from redss_pipeline.analysis.tables import Table
from redss_pipeline.core.code_scheme import STOP, Code

__all__ = [
    "TOTAL_RELEVANT",
    "cross_tab",
    "demographic_distributions",
    "theme_confidence_intervals",
    "theme_distributions",
    "wilson_interval",
]

TOTAL_RELEVANT = "Total Relevant Participants"
Z_95 = 1.959963984540054


def _project(individuals: Counter[Profile], indices: Sequence[int]) -> Counter[tuple[CodeSet, ...]]:
    projected: Counter[tuple[CodeSet, ...]] = Counter()
    for profile, n in individuals.items():
        if not profile.withdrawn:
            projected[tuple(profile.codes[i] for i in indices)] += n
    return projected


def _distribution(individuals: Counter[Profile], datasets: AnalysisDatasets, names: Sequence[str],
                  breakdowns: Sequence[str], *, file_name: str, title: str, note: str) -> Table:
    breakdown_codes = [[c for c in datasets[b].codes if c.control_code != STOP] for b in breakdowns]
    columns = ["Dataset", "Theme", "Total Participants", "Total Participants %"]
    column_of: list[dict[Code, int]] = []
    for b, codes in zip(breakdowns, breakdown_codes):
        place = {}
        for code in codes:
            place[code] = len(columns)
            columns += [f"{b}:{code.string_value}", f"{b}:{code.string_value} %"]
        column_of.append(place)
    count_columns = [2] + [i for place in column_of for i in place.values()]
    breakdown_indices = [datasets.index(b) for b in breakdowns]

    # One pass over the people: per dataset, how many have each combination of its codes and the breakdowns'.
    indices = [datasets.index(name) for name in names]
    projected: list[Counter[tuple[CodeSet, ...]]] = [Counter() for _ in names]
    for profile, n in individuals.items():
        if profile.withdrawn:
            continue
        others = tuple(profile.codes[i] for i in breakdown_indices)
        for counter, i in zip(projected, indices):
            counter[(profile.codes[i], *others)] += n

    rows: list[tuple[Cell, ...]] = []
    # Per breakdown, the columns a set of its codes counts in (worked out once per distinct set).
    columns_of_codes: list[dict[CodeSet, list[int]]] = [{} for _ in breakdowns]
    for name, combinations in zip(names, projected):
        dataset = datasets[name]
        theme_codes: list[Code] = [c for c in dataset.codes if c.control_code != STOP]
        row_of = {code: i + 1 for i, code in enumerate(theme_codes)}
        counts = [[0] * len(columns) for _ in range(len(theme_codes) + 1)]
        for key, n in combinations.items():
            theme_set, others = key[0], key[1:]
            target_rows = [row_of[c] for c in theme_set if c in row_of]
            if theme_set.relevant:
                target_rows.append(0)
            targets = [2]
            for cache, place, codes_b in zip(columns_of_codes, column_of, others):
                columns_b = cache.get(codes_b)
                if columns_b is None:
                    columns_b = cache[codes_b] = [place[c] for c in codes_b if c in place]
                targets += columns_b
            for r in target_rows:
                line = counts[r]
                for col in targets:
                    line[col] += n
        totals = counts[0]
        for r, line in enumerate(counts):
            row_code: Code | None = theme_codes[r - 1] if r else None
            cells: list[Cell] = [""] * len(columns)
            cells[0] = name if r == 0 else ""
            cells[1] = TOTAL_RELEVANT if row_code is None else row_code.string_value
            for col in count_columns:
                cells[col] = Count(line[col])
                if row_code is None:
                    cells[col + 1] = Percent(line[col], line[col])
                elif row_code.control_code is None:
                    cells[col + 1] = Percent(line[col], totals[col])
            rows.append(tuple(cells))
    return Table(file_name, tuple(columns), tuple(rows), title=title, note=note,
                 terms=("opt-in", "relevant", "labelled"), label_columns=2)


def theme_distributions(individuals: Counter[Profile], *, datasets: AnalysisDatasets) -> Table:
    """``theme_distributions.csv``: per theme dataset, the relevant people and each code, by breakdown (4.3)."""
    return _distribution(
        individuals, datasets, datasets.themes, datasets.breakdowns, file_name="theme_distributions.csv",
        title="Themes per episode",
        note="People (not messages) per theme. The percentages of a theme are over the people relevant to its "
        "episode in the same column; a person can give several themes, so they can add up to more than 100.",
    )


def demographic_distributions(individuals: Counter[Profile], *, datasets: AnalysisDatasets) -> Table:
    """``demographic_distributions.csv``: each demographic dataset's codes, without breakdowns (4.4)."""
    return _distribution(
        individuals, datasets, datasets.demogs, (), file_name="demographic_distributions.csv",
        title="Who took part",
        note="Opt-in people per answer to each demographic question. Percentages are over the people with a "
        "relevant (Normal) answer to that question.",
    )


def cross_tab(individuals: Counter[Profile], a: str, b: str, *, datasets: AnalysisDatasets) -> Table:
    """``cross_tabs_<A>_vs_<B>.csv``: opt-in people per pair of Normal codes of A and B (4.5)."""
    projected = _project(individuals, [datasets.index(a), datasets.index(b)])
    pairs: Counter[tuple[Code, Code]] = Counter()
    for (codes_a, codes_b), n in projected.items():
        for code_a in codes_a:
            for code_b in codes_b:
                pairs[(code_a, code_b)] += n
    rows: list[tuple[Cell, ...]] = []
    normal_b = datasets[b].scheme.normal_codes
    for code_a in datasets[a].scheme.normal_codes:
        total = sum(pairs[(code_a, code_b)] for code_b in normal_b)
        for code_b in normal_b:
            n = pairs[(code_a, code_b)]
            rows.append((code_a.string_value, code_b.string_value, Count(n), Percent(n, total)))
    return Table(
        f"cross_tabs_{a}_vs_{b}.csv", (a, b, "Number of Individuals", f"{b} / {a} (%)"), tuple(rows),
        title=f"{b} by {a}",
        note=f"Opt-in people per {a} and {b}; the percentages are within each {a}.",
        terms=("opt-in",),
        label_columns=2,
    )


def wilson_interval(x: int, n: int, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval of x successes in n, as percentages rounded to one decimal; None when n = 0
    or x > n (analysis.md section 6)."""
    if n == 0 or x > n:
        return None
    centre = x + z * z / 2
    spread = z * math.sqrt(x * (n - x) / n + z * z / 4)
    scale = n + z * z
    return round((centre - spread) / scale * 100, 1), round((centre + spread) / scale * 100, 1)


def theme_confidence_intervals(themes: Table) -> Table:
    """``theme_distributions_ci.csv``: a 95% Wilson interval for each Normal theme row of the themes table."""
    rows: list[tuple[Cell, ...]] = []
    dataset = ""
    total = 0
    for row in themes.rows:
        if row[0]:
            dataset = str(row[0])
        count = row[2]
        assert isinstance(count, Count)
        if row[1] == TOTAL_RELEVANT:
            total = count.n
            continue
        if not isinstance(row[3], Percent):  # a Control row
            continue
        interval = wilson_interval(count.n, total)
        low, high = ("-", "-") if interval is None else (f"{interval[0]:.1f}", f"{interval[1]:.1f}")
        sources = (count.n, total)
        rows.append((dataset, row[1], Count(count.n), Count(total), Derived(low, sources), Derived(high, sources)))
    return Table(
        "theme_distributions_ci.csv",
        ("Dataset", "Theme", "Total Participants", "Total Relevant Participants", "95% CI low %",
         "95% CI high %"),
        tuple(rows),
        title="Themes with 95% confidence intervals",
        note="Wilson score intervals for the share of relevant people giving each theme.",
        terms=("relevant",),
        label_columns=2,
    )
