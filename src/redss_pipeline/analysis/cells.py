"""The cells of the analysis tables: counts and percentages as values, rendered to text only at the edge.

A table holds ``Count`` and ``Percent`` objects (and plain strings such as a dataset name, ``-`` or ``""``),
so the shareable copy can suppress a small count and every percentage computed from it without parsing text.

Percentage of x over y (spec analysis.md section 3): ``-`` when y = 0; otherwise q = x / y * 100 in doubles
(divide, then multiply), rounded to one decimal with Python's ``round`` (ties to even on q's binary value) and
written with exactly one decimal: ``47.1``, ``100.0``, ``0.0``; values above 100 are kept.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Cell", "Count", "Derived", "Percent", "percentage", "render"]


@dataclass(frozen=True)
class Count:
    """A number of people or messages."""

    n: int

    def __str__(self) -> str:
        return str(self.n)


@dataclass(frozen=True)
class Percent:
    """x over y as a percentage; the shareable copy hides it when x or y is a suppressed count."""

    x: int
    y: int

    @property
    def value(self) -> float | None:
        """The percentage rounded to one decimal, or None when y is 0."""
        if self.y == 0:
            return None
        return round(self.x / self.y * 100, 1)

    def __str__(self) -> str:
        return percentage(self.x, self.y)


@dataclass(frozen=True)
class Derived:
    """Any other figure computed from counts (a confidence bound): its text and the counts it came from."""

    text: str
    sources: tuple[int, ...]

    def __str__(self) -> str:
        return self.text


Cell = Count | Percent | Derived | str


def percentage(x: int, y: int) -> str:
    """``x`` over ``y`` in the analysis format: ``-`` for y = 0, else one decimal (``47.1``)."""
    if y == 0:
        return "-"
    return f"{round(x / y * 100, 1):.1f}"


def render(cell: Cell) -> str:
    """The text of a cell as the CSV and the report show it."""
    return cell if isinstance(cell, str) else str(cell)
