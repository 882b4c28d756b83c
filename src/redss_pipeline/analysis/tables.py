"""A table of the analysis: its file name, columns and rows of cells, and what its shareable copy keeps.

Tables are built by the modules named after what they count (``engagement``, ``themes``, ``samples``,
``traffic``) and written by the orchestrator (``stage``) as CSV, shareable CSV and report section.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from redss_pipeline.analysis.cells import Cell, render

__all__ = ["Table"]


@dataclass(frozen=True)
class Table:
    """One table of ``Outputs/Analysis/``.

    ``name`` is its file name (``engagement_counts.csv``); ``title`` and ``note`` are what the report says
    above and below it. ``exempt_rows`` are row indices the shareable copy never suppresses (the ``Total`` row
    of the engagement counts). ``shareable`` is False for tables of free text (sample messages): they are left
    out of the shareable copy and the report. ``chart_key`` names the chart drawn for it, if any.
    """

    name: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    title: str = ""
    note: str = ""
    terms: tuple[str, ...] = ()
    exempt_rows: frozenset[int] = field(default_factory=frozenset)
    shareable: bool = True

    def __post_init__(self) -> None:
        for i, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise ValueError(f"{self.name}: row {i} has {len(row)} cells for {len(self.columns)} columns")

    def text_rows(self) -> list[list[str]]:
        """The rows as the CSV writes them."""
        return [[render(cell) for cell in row] for row in self.rows]

    def column(self, name: str) -> int:
        return self.columns.index(name)

    def with_rows(self, rows: Sequence[Sequence[Cell]]) -> Table:
        """The same table with other rows (the shareable copy)."""
        return Table(self.name, self.columns, tuple(tuple(r) for r in rows), self.title, self.note, self.terms,
                     self.exempt_rows, self.shareable)
