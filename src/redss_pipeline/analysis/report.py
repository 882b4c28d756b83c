"""``Outputs/Analysis/report.html``: one self-contained page of the shareable tables, charts and maps.

The page is rendered from jinja2 templates shipped as package data (``templates/``): styles are inline, charts
and maps are embedded as ``data:`` SVG images, and nothing refers to another file or to the network, so the
report opens from a USB stick and prints on A4. Every number in it comes from the shareable (suppressed) tables.

A section is a :class:`ReportSection`: a template partial and the data it shows. The analysis builds its own
sections (one per table, the maps, the definitions); other parts of the pipeline add theirs the same way (the
coding-quality section), so the report never needs to know how a section computes what it shows.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jinja2

from redss_pipeline.analysis.cells import Cell, Count, render
from redss_pipeline.analysis.tables import Table

__all__ = [
    "TERMS",
    "DisplayTable",
    "Figure",
    "ReportSection",
    "ReportSummary",
    "TableSectionData",
    "TableView",
    "combined_cell",
    "display_table",
    "render_report",
]

TERMS: dict[str, str] = {
    "opt-in": "A person or message is opt-in when the person has not withdrawn consent (sent STOP). Withdrawn "
    "people are counted in the totals of messages and people only; nothing else about them is read.",
    "responded": "A person or message responded to an episode or question when at least one of its codes "
    "there is neither NA (no answer) nor NS (skipped).",
    "labelled": "A response is labelled when it has been reviewed: none of its codes is NR (not reviewed). "
    "NC (not coded), NIC (not internally consistent) and WS (wrong scheme) count as labelled. The pipeline itself "
    "codes NC the short acknowledgements it recognises as noise (such as \"ok\" or \"thanks\"), which never go "
    "to a coder, so they are labelled before any coding.",
    "relevant": "A labelled response is relevant when at least one of its codes is a theme (a Normal code); "
    "NC, NIC or WS alone are not relevant.",
    "suppression": "Counts of people or messages from 1 to k-1 are shown as <k, and every percentage computed "
    "from such a count is left empty, so that no one can be singled out. Zeros and the overall totals are "
    "shown. A total minus the visible cells can still reveal a hidden cell.",
}


@dataclass(frozen=True)
class Figure:
    """A chart or map as the report embeds it: title, SVG text (embedded as a data: image) and alt text."""

    title: str
    svg: str
    alt: str = ""

    @property
    def data_uri(self) -> str:
        return "data:image/svg+xml;base64," + base64.b64encode(self.svg.encode("utf-8")).decode("ascii")


@dataclass(frozen=True)
class DisplayTable:
    """A table as the report shows it: a caption, the header, rows of text, which columns are numbers, which
    rows are control codes (drawn muted), and the name a screen reader announces when there is no caption (the
    table's title, which the section's heading shows)."""

    caption: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...]
    muted_rows: frozenset[int] = frozenset()
    label: str = ""


@dataclass(frozen=True)
class ReportSection:
    """One section of the report.

    ``template`` is a partial in ``redss_pipeline/analysis/templates/`` that receives ``section`` and ``data``;
    ``tables`` are written beside the report as CSV (and as shareable copies) by the analysis stage.
    """

    key: str
    title: str
    template: str
    data: Any = None
    tables: tuple[Table, ...] = ()


@dataclass(frozen=True)
class ReportSummary:
    """The figures at the top of the report."""

    project: str
    messages: int
    people: int
    opt_in_people: int
    shows: tuple[str, ...]
    date_range: str
    coding_progress: tuple[tuple[str, str], ...]
    suppression_k: int
    generated_from: tuple[str, ...] = ()
    # When the stage-3 run that wrote the CSVs started (``2026-12-06 21:18:13 UTC``), as its Outputs/manifest.json
    # says, so a cited figure can be tied to the files it came from; "" when no manifest lists the CSVs as they are.
    outputs_run: str = ""
    coding_quality: bool = False  # whether the report has a coding quality section (its counts are not suppressed)


def combined_cell(count: Cell, percent: Cell | None) -> str:
    """``12 (40.0%)``: a count with its percentage when the percentage is shown."""
    text = render(count)
    if percent is not None:
        shown = render(percent)
        if shown not in ("", "-"):
            text += f" ({shown}%)"
    return text


def display_table(table: Table, *, caption: str = "", rows: Sequence[int] | None = None,
                  pairs: Sequence[tuple[str, str | None]] | None = None, label_columns: Sequence[str] = (),
                  headers: Sequence[str] | None = None, muted_rows: Sequence[int] = ()) -> DisplayTable:
    """A compact view of a table: its label columns, then each (count, percent) pair as one cell.

    ``rows`` picks rows by index (all by default); ``muted_rows`` are indices into the picked rows.
    """
    picked = range(len(table.rows)) if rows is None else rows
    if pairs is None:
        pairs = [(c, None) for c in table.columns if c not in label_columns]
    header = [*label_columns, *[count for count, _ in pairs]] if headers is None else list(headers)
    out_rows = []
    for i in picked:
        row = table.rows[i]
        cells = [render(row[table.column(c)]) for c in label_columns]
        for count, percent in pairs:
            cells.append(combined_cell(row[table.column(count)], row[table.column(percent)] if percent else None))
        out_rows.append(tuple(cells))
    numeric = tuple([False] * len(label_columns) + [True] * len(pairs))
    return DisplayTable(caption, tuple(header), tuple(out_rows), numeric, frozenset(muted_rows), table.title)


@dataclass(frozen=True)
class TableView:
    """One table of a section with its chart (or None)."""

    table: DisplayTable
    figure: Figure | None = None


@dataclass(frozen=True)
class TableSectionData:
    """What the standard table section shows: a note with its terms, the views, the files behind them."""

    note: str
    terms: tuple[str, ...]
    views: tuple[TableView, ...]
    files: tuple[str, ...] = ()


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("redss_pipeline.analysis", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["cell"] = render
    environment.filters["thousands"] = lambda n: f"{n:,}"
    environment.globals["Count"] = Count
    return environment


def render_report(*, summary: ReportSummary, sections: Sequence[ReportSection], title: str) -> str:
    """The report page as HTML text."""
    template = _environment().get_template("report.html.j2")
    return template.render(summary=summary, sections=list(sections), title=title, terms=TERMS)
