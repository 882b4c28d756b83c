"""Who took part and how often: engagement counts, repeat participation, new and returning participants.

Spec analysis.md 4.1, 4.2 and the "new vs returning" table of section 6. Counts run over the distinct profiles
of the messages and individuals (each with its number of rows), never over the rows themselves.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from functools import partial

from redss_pipeline.analysis.cells import Cell, Count, Percent
from redss_pipeline.analysis.datasets import AnalysisDatasets
from redss_pipeline.analysis.definitions import (
    Profile,
    labelled,
    labelled_any,
    opted_in,
    relevant,
    relevant_any,
    responded,
    responded_any,
)
from redss_pipeline.analysis.tables import TOTAL_ROW, Table

__all__ = ["count_where", "engagement_counts", "new_and_returning_participants", "repeat_participations"]


def _holds(definition: Callable[[Profile, int], bool], dataset: int, profile: Profile) -> bool:
    return definition(profile, dataset)


def count_where(profiles: Counter[Profile], predicate: Callable[[Profile], bool]) -> int:
    """How many rows have a profile for which ``predicate`` holds."""
    return sum(n for profile, n in profiles.items() if predicate(profile))


def engagement_counts(messages: Counter[Profile], individuals: Counter[Profile], *, message_rows: int,
                      individual_rows: int, datasets: AnalysisDatasets) -> Table:
    """``engagement_counts.csv``: per show, then ``Total`` (analysis.md 4.1)."""
    shows = [datasets.index(name) for name in datasets.shows]
    rows: list[tuple[Cell, ...]] = []
    for name, d in zip(datasets.shows, shows):
        rows.append((
            name, "-",
            Count(count_where(messages, partial(_holds, responded, d))),
            Count(count_where(messages, partial(_holds, labelled, d))),
            Count(count_where(messages, partial(_holds, relevant, d))),
            "-",
            Count(count_where(individuals, partial(_holds, responded, d))),
            Count(count_where(individuals, partial(_holds, relevant, d))),
        ))
    rows.append((
        TOTAL_ROW,
        Count(message_rows),
        Count(count_where(messages, lambda p: responded_any(p, shows))),
        Count(count_where(messages, lambda p: labelled_any(p, shows))),
        Count(count_where(messages, lambda p: relevant_any(p, shows))),
        Count(individual_rows),
        Count(count_where(individuals, lambda p: responded_any(p, shows))),
        Count(count_where(individuals, lambda p: relevant_any(p, shows))),
    ))
    return Table(
        "engagement_counts.csv",
        ("Dataset", "Total Messages", "Total Messages with Opt-Ins", "Total Labelled Messages",
         "Total Relevant Messages", "Total Participants", "Total Participants with Opt-Ins",
         "Total Relevant Participants"),
        tuple(rows),
        title="Engagement per episode",
        note="Messages and people per episode. A withdrawn message no longer tells its episode, so the totals "
        "of all messages and people are given only on the Total row.",
        terms=("opt-in", "responded", "labelled", "relevant"),
        exempt_rows=frozenset({len(rows) - 1}),
    )


def repeat_participations(individuals: Counter[Profile], *, datasets: AnalysisDatasets) -> Table:
    """``repeat_participations.csv``: opt-in people by the number of episodes they responded to (4.2)."""
    shows = [datasets.index(name) for name in datasets.shows]
    by_episodes: Counter[int] = Counter()
    opt_in = 0
    for profile, n in individuals.items():
        if not opted_in(profile):
            continue
        opt_in += n
        by_episodes[sum(1 for d in shows if responded(profile, d))] += n
    rows = tuple(
        (str(k), Count(by_episodes[k]), Percent(by_episodes[k], opt_in)) for k in range(1, len(shows) + 1)
    )
    return Table(
        "repeat_participations.csv",
        ("Number of Episodes Participated In", "Number of Participants with Opt-Ins",
         "% of Participants with Opt-Ins"),
        rows,
        title="Repeat participation",
        note="How many episodes each person responded to. The percentages are over every opt-in person, "
        "including any whose episode answers were all coded NA or NS: they responded to no episode and are in no "
        "row, so the rows may add up to less than 100%.",
        terms=("opt-in", "responded"),
    )


def new_and_returning_participants(individuals: Counter[Profile], *, datasets: AnalysisDatasets) -> Table:
    """``new_and_returning_participants.csv``: per episode, people new to the series and people returning."""
    shows = [datasets.index(name) for name in datasets.shows]
    rows = []
    for position, (name, d) in enumerate(zip(datasets.shows, shows)):
        earlier = shows[:position]
        took_part = returning = 0
        for profile, n in individuals.items():
            if responded(profile, d):
                took_part += n
                if responded_any(profile, earlier):
                    returning += n
        new = took_part - returning
        rows.append((name, Count(took_part), Count(new), Percent(new, took_part), Count(returning),
                     Percent(returning, took_part)))
    return Table(
        "new_and_returning_participants.csv",
        ("Dataset", "Participants with Opt-Ins", "New Participants", "New Participants %",
         "Returning Participants", "Returning Participants %"),
        tuple(rows),
        title="New and returning participants",
        note="Per episode, the people who responded to it: returning if they also responded to an earlier "
        "episode, new otherwise.",
        terms=("opt-in", "responded"),
    )
