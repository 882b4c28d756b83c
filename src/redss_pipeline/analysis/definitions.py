"""What the analysis counts: opt-in, responded, labelled and relevant (spec analysis.md section 2).

Every function reads a :class:`Profile`: whether the row withdrew consent, and the set of codes it holds under
each dataset (in :class:`~redss_pipeline.analysis.datasets.AnalysisDatasets` order). Rows that share a profile
are counted together, so these run once per distinct profile, not once per row.

| term          | a row is ... under dataset D when                                                   |
| ------------- | ----------------------------------------------------------------------------------- |
| opt-in        | it did not withdraw consent                                                          |
| responded     | opt-in, and at least one of its D codes is neither NA nor NS                         |
| labelled      | responded, and none of its D codes is NR (NC, NIC and WS are labelled)               |
| relevant      | labelled, and at least one D code is Normal (NC, NIC or WS alone are not relevant)   |

Over a list of datasets, "responded / labelled / relevant to any" holds when it holds for at least one of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple, Self

from redss_pipeline.core.code_scheme import NA, NR, NS, Code

__all__ = [
    "CodeSet",
    "Profile",
    "codes_labelled",
    "codes_relevant",
    "codes_respond",
    "labelled",
    "labelled_any",
    "opted_in",
    "relevant",
    "relevant_any",
    "responded",
    "responded_any",
]

class CodeSet(frozenset):
    """The codes of one row under one dataset, with whether they respond, are labelled and are relevant worked
    out once when the set is made (the reader makes one set per distinct combination of cells)."""

    __slots__ = ("labelled", "relevant", "respond")

    respond: bool
    labelled: bool
    relevant: bool

    def __new__(cls, codes: Iterable[Code] = ()) -> Self:
        self = super().__new__(cls, codes)
        self.respond = codes_respond(self)
        self.labelled = codes_labelled(self)
        self.relevant = codes_relevant(self)
        return self


class Profile(NamedTuple):
    """One row of csap_mes.csv or csap_ind.csv as the analysis sees it.

    ``codes[i]`` is the set of codes under dataset i (empty for a withdrawn row, whose codes are never read);
    ``flags`` are the channel and week columns of a message (empty for individuals and withdrawn rows).
    """

    withdrawn: bool
    codes: tuple[CodeSet, ...]
    flags: tuple[bool, ...] = ()


_NOT_A_RESPONSE = (NA, NS)


def codes_respond(codes: frozenset[Code]) -> bool:
    """At least one code is neither NA nor NS."""
    return any(code.control_code not in _NOT_A_RESPONSE for code in codes)


def codes_labelled(codes: frozenset[Code]) -> bool:
    """A response of which no code is NR."""
    return codes_respond(codes) and not any(code.control_code == NR for code in codes)


def codes_relevant(codes: frozenset[Code]) -> bool:
    """A labelled response with at least one Normal code."""
    return codes_labelled(codes) and any(code.control_code is None for code in codes)


def opted_in(profile: Profile) -> bool:
    """The row did not withdraw consent."""
    return not profile.withdrawn


def responded(profile: Profile, dataset: int) -> bool:
    """Opt-in, and at least one code under the dataset is neither NA nor NS."""
    return not profile.withdrawn and profile.codes[dataset].respond


def labelled(profile: Profile, dataset: int) -> bool:
    """Responded, and no code under the dataset is NR."""
    return not profile.withdrawn and profile.codes[dataset].labelled


def relevant(profile: Profile, dataset: int) -> bool:
    """Labelled, and at least one code under the dataset is Normal."""
    return not profile.withdrawn and profile.codes[dataset].relevant


def responded_any(profile: Profile, datasets: Iterable[int]) -> bool:
    """Responded to at least one of the datasets."""
    return any(responded(profile, d) for d in datasets)


def labelled_any(profile: Profile, datasets: Iterable[int]) -> bool:
    """Labelled under at least one of the datasets."""
    return any(labelled(profile, d) for d in datasets)


def relevant_any(profile: Profile, datasets: Iterable[int]) -> bool:
    """Relevant to at least one of the datasets."""
    return any(relevant(profile, d) for d in datasets)
