"""Bar charts of the analysis tables, as PNG and deterministic SVG (matplotlib, no display needed).

Figures are made with matplotlib's object interface (``Figure`` on the Agg canvas), never through pyplot, so
nothing global is changed and no window system is needed. The SVG text is reproducible: the hash salt that
names clip paths is fixed and no date is written, so the same table gives byte-identical SVG.

A chart is drawn from a table's cells as the reader will see them: a suppressed count (``<5``) is a bar of
height 0 labelled ``<5``, so a shareable chart never shows what its table hides.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from redss_pipeline.analysis.cells import Cell, Count, render

__all__ = ["AVF_RED", "Bar", "Chart", "bar_chart", "figure_png", "figure_svg", "grouped_bar_chart"]

AVF_RED = "#993e46"
_SERIES_COLOURS = (AVF_RED, "#d08770", "#5e81ac", "#a3be8c")
_SVG_SETTINGS: Any = {"svg.hashsalt": "redss-pipeline", "svg.fonttype": "none", "font.family": "DejaVu Sans"}
MAX_BARS = 25


@dataclass(frozen=True)
class Chart:
    """A drawn chart: its file stem (``engagement``), title, SVG text and PNG bytes."""

    key: str
    title: str
    svg: str
    png: bytes


@dataclass(frozen=True)
class Bar:
    """One bar: its label, its height (0 for a suppressed count) and the text written at its end; ``hidden``
    marks a suppressed count, drawn 0 high but more than 0, so it ranks above the true zeros."""

    label: str
    value: float
    text: str
    hidden: bool = False


def bar_from_cell(label: str, cell: Cell, percent: Cell | None = None) -> Bar:
    """A bar of a count cell, labelled with the count and, when shown, its percentage."""
    value = cell.n if isinstance(cell, Count) else 0
    text = render(cell)
    if percent is not None and render(percent) not in ("", "-"):
        text += f" ({render(percent)}%)"
    # A count cell that is text is "-" (nothing to count) or a suppressed count ("<5").
    return Bar(label, value, text, hidden=isinstance(cell, str) and cell.startswith("<"))


def figure_svg(figure: Figure) -> str:
    """The figure as SVG text, identical for identical figures."""
    buffer = io.StringIO()
    with matplotlib.rc_context(_SVG_SETTINGS):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def figure_png(figure: Figure, *, dpi: int = 110) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    with matplotlib.rc_context(_SVG_SETTINGS):
        figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


def _finish(figure: Figure, key: str, title: str) -> Chart:
    FigureCanvasAgg(figure)
    return Chart(key, title, figure_svg(figure), figure_png(figure))


def bar_chart(key: str, title: str, bars: Sequence[Bar], *, xlabel: str = "People") -> Chart:
    """A horizontal bar chart, bars top to bottom in the order given. A chart of more than MAX_BARS bars leaves
    out the zeros (62 districts where a handful have people), then keeps the MAX_BARS largest, and says so in
    its title."""
    bars = list(bars)
    if len(bars) > MAX_BARS:
        counted = [b for b in bars if b.value or b.hidden]  # a suppressed count is more than 0, though drawn at 0
        if len(counted) > MAX_BARS:
            # The largest first, then the suppressed counts; ties in table order.
            kept = set(sorted(range(len(counted)), key=lambda i: (-counted[i].value, not counted[i].hidden))[:MAX_BARS])
            counted = [b for i, b in enumerate(counted) if i in kept]
            title += f" (the {MAX_BARS} largest)"
        else:
            title += " (codes of 0 people not shown)"
        bars = counted
    height = 0.9 + 0.28 * max(len(bars), 1)
    with matplotlib.rc_context(_SVG_SETTINGS):
        figure = Figure(figsize=(7.0, height), layout="constrained")
        axes = figure.add_subplot()
        positions = list(range(len(bars)))
        values = [b.value for b in bars]
        axes.barh(positions, values, color=AVF_RED, height=0.7)
        axes.set_yticks(positions, [b.label for b in bars], fontsize=8)
        axes.invert_yaxis()
        top = max(values, default=0) or 1
        axes.set_xlim(0, top * 1.3)
        for position, bar in zip(positions, bars):
            axes.text(bar.value + top * 0.01, position, bar.text, va="center", fontsize=7)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel(xlabel, fontsize=8)
        axes.tick_params(axis="x", labelsize=7)
        # The title sits on the axes (x ticks are below): placed here, matplotlib need not measure the axes'
        # ticks again on every draw to find that out.
        axes.set_title(title, fontsize=10, loc="left", y=1.0)
        for side in ("top", "right"):
            axes.spines[side].set_visible(False)
        if not bars:
            axes.text(0.5, 0.5, "no data", transform=axes.transAxes, ha="center", va="center")
        return _finish(figure, key, title)


def grouped_bar_chart(key: str, title: str, groups: Sequence[str], series: Sequence[tuple[str, Sequence[Bar]]],
                      *, ylabel: str = "") -> Chart:
    """Vertical bars: for each group (an episode) one bar per series (messages, people, ...), with a legend."""
    with matplotlib.rc_context(_SVG_SETTINGS):
        figure = Figure(figsize=(7.0, 3.4), layout="constrained")
        axes = figure.add_subplot()
        width = 0.8 / max(len(series), 1)
        top = max((b.value for _, bars in series for b in bars), default=0) or 1
        for s, (name, bars) in enumerate(series):
            xs = [g + (s - (len(series) - 1) / 2) * width for g in range(len(groups))]
            axes.bar(xs, [b.value for b in bars], width=width * 0.95, label=name,
                     color=_SERIES_COLOURS[s % len(_SERIES_COLOURS)])
            for x, bar in zip(xs, bars):
                axes.text(x, bar.value + top * 0.01, bar.text, ha="center", va="bottom", fontsize=6)
        axes.set_xticks(range(len(groups)), list(groups), fontsize=8)
        axes.set_ylim(0, top * 1.15)
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        # Counts print in full (never "1e6" above the axis), so the title placed on the axes never meets one.
        axes.ticklabel_format(axis="y", style="plain", useOffset=False)
        axes.set_ylabel(ylabel, fontsize=8)
        axes.tick_params(axis="y", labelsize=7)
        axes.set_title(title, fontsize=10, loc="left", y=1.0)
        axes.legend(fontsize=7, frameon=False, ncols=min(len(series), 4), loc="upper center",
                    bbox_to_anchor=(0.5, -0.1))
        for side in ("top", "right"):
            axes.spines[side].set_visible(False)
        return _finish(figure, key, title)
