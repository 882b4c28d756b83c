"""Small-cell suppression for the shareable copies (spec analysis.md section 6, beyond).

In ``Outputs/Analysis/shareable/`` and in the report, every count of people or messages from 1 to k-1 reads
``<k`` (k = ``analysis.suppression.k``, default 5), and every percentage or other figure computed from such a
count is left empty, so a reader cannot single out a person. Zeros stay, and so do rows a table exempts (the
``Total`` row of the engagement counts). There is no secondary suppression: a total minus the visible cells can
still reveal a suppressed cell, which the report says. Free-text tables are never shareable.
"""

from __future__ import annotations

from redss_pipeline.analysis.cells import Cell, Count, Derived, Percent
from redss_pipeline.analysis.tables import Table

__all__ = ["colour_counts", "is_small", "suppress_cell", "suppress_table", "suppressed_label"]


def is_small(n: int, k: int) -> bool:
    """A count that would let a reader single someone out: 1 to k-1."""
    return 0 < n < k


def suppressed_label(k: int) -> str:
    return f"<{k}"


def suppress_cell(cell: Cell, k: int) -> Cell:
    """The shareable form of one cell."""
    if isinstance(cell, Count):
        return suppressed_label(k) if is_small(cell.n, k) else cell
    if isinstance(cell, Percent):
        return "" if is_small(cell.x, k) or is_small(cell.y, k) else cell
    if isinstance(cell, Derived):
        return "" if any(is_small(n, k) for n in cell.sources) else cell
    return cell


def colour_counts(counts: dict[str, int], k: int) -> dict[str, int]:
    """The counts a shareable map is coloured by: every small count (1 to k-1) stands as k-1, so all of them
    share one colour class, labelled ``1 - <k-1 or more>`` in the legend. Coloured by the true counts, a class of
    its own per small value (a legend reading ``1``, ``2``, ``3``) would tell each suppressed count."""
    return {location: k - 1 if is_small(n, k) else n for location, n in counts.items()}


def suppress_table(table: Table, k: int) -> Table:
    """The shareable copy of a table (the table itself when k <= 1). A table with a figure written as text, which
    would pass through unsuppressed, is refused (:meth:`Table.check_figures`)."""
    table.check_figures()
    if k <= 1:
        return table
    rows = [
        row if i in table.exempt_rows else tuple(suppress_cell(cell, k) for cell in row)
        for i, row in enumerate(table.rows)
    ]
    return table.with_rows(rows)
