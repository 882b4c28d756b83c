"""A table of the analysis: its file name, columns and rows of cells, and what its shareable copy keeps.

Tables are built by the modules named after what they count (``engagement``, ``themes``, ``samples``,
``traffic``) and written by the orchestrator (``stage``) as CSV, shareable CSV and report section.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from redss_pipeline.analysis.cells import Cell, render

__all__ = ["TOTAL_ROW", "Table"]

#: The first cell of a table's total row, which the shareable copy keeps as it is.
TOTAL_ROW = "Total"
# What a figure's cell may hold besides a figure: nothing to show, or a percentage of nothing.
_EMPTY_FIGURES = frozenset({"", "-"})


@dataclass(frozen=True)
class Table:
    """One table of ``Outputs/Analysis/``.

    ``name`` is its file name (``engagement_counts.csv``); ``title`` and ``note`` are what the report says
    above and below it. The first ``label_columns`` columns hold labels (a dataset, a code, a date); every other
    cell of a shareable table is a figure the shareable copy can suppress (:class:`Count`, :class:`Percent`,
    :class:`Derived`) or empty (``""``, ``-``): a number written as text there would reach the shareable copy, the
    report and Drive unsuppressed, so :meth:`check_figures` refuses it. ``exempt_rows`` are the indices of the
    ``Total`` rows the shareable copy never suppresses (spec analysis.md 6). ``shareable`` is False for tables of
    free text (sample messages): they are left out of the shareable copy and the report.
    """

    name: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    title: str = ""
    note: str = ""
    terms: tuple[str, ...] = ()
    exempt_rows: frozenset[int] = field(default_factory=frozenset)
    shareable: bool = True
    label_columns: int = 1

    def __post_init__(self) -> None:
        for i, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise ValueError(f"{self.name}: row {i} has {len(row)} cells for {len(self.columns)} columns")
        for i in sorted(self.exempt_rows):
            if not 0 <= i < len(self.rows) or self.rows[i][0] != TOTAL_ROW:
                found = "no such row" if not 0 <= i < len(self.rows) else f"its first cell is {self.rows[i][0]!r}"
                raise ValueError(f"{self.name}: exempt row {i} is not a {TOTAL_ROW!r} row ({found}); only Total "
                                 "rows are kept unsuppressed")

    def check_figures(self) -> None:
        """Refuses a text cell outside the label columns (``""`` and ``-`` apart) of a shareable table, naming it:
        the shareable copy could not suppress it (:func:`~redss_pipeline.analysis.suppression.suppress_table`
        asks this of every table before it makes the copy)."""
        if not self.shareable:
            return
        for i, row in enumerate(self.rows):
            for column, cell in zip(self.columns[self.label_columns:], row[self.label_columns:]):
                if isinstance(cell, str) and cell not in _EMPTY_FIGURES:
                    raise ValueError(
                        f"{self.name}: row {i}, column {column!r}: {cell!r} is text, which the shareable copy "
                        "cannot suppress; a figure is a Count, Percent or Derived cell (or, for a label column, "
                        f"raise label_columns, now {self.label_columns})"
                    )

    def text_rows(self) -> list[list[str]]:
        """The rows as the CSV writes them."""
        return [[render(cell) for cell in row] for row in self.rows]

    def column(self, name: str) -> int:
        return self.columns.index(name)

    def with_rows(self, rows: Sequence[Sequence[Cell]]) -> Table:
        """The same table with other rows (the shareable copy)."""
        return Table(self.name, self.columns, tuple(tuple(r) for r in rows), self.title, self.note, self.terms,
                     self.exempt_rows, self.shareable, self.label_columns)
