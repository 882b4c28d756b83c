"""Sample messages per code (spec analysis.md 4.6): a reproducible sample of what people wrote.

The candidates of a code are the messages labelled under a theme dataset that carry the code; the reader keeps,
for each code, the ``per_code`` candidates with the smallest SHA-256 of ``<seed>|<D>|<c>|<r>`` (r = the row's
number in csap_mes.csv), and this table lists them in increasing r. Free text: never shareable.
"""

from __future__ import annotations

from redss_pipeline.analysis.datasets import AnalysisDatasets
from redss_pipeline.analysis.outputs_reader import SampleCandidate
from redss_pipeline.analysis.tables import Table

__all__ = ["sample_messages"]


def sample_messages(samples: dict[tuple[str, str], list[SampleCandidate]], *, datasets: AnalysisDatasets) -> Table:
    """``sample_messages.csv``: per theme dataset and code (scheme order), the sampled messages."""
    rows = []
    for name in datasets.themes:
        dataset = datasets[name]
        for code in dataset.codes:
            for candidate in sorted(samples.get((name, code.string_value), []), key=lambda c: c.row):
                rows.append((name, dataset.scheme.name, code.string_value, candidate.text))
    return Table("sample_messages.csv", ("Episode", "Code Scheme", "Code", "Message"), tuple(rows),
                 title="Sample messages", shareable=False)
