"""The CSV outputs: the message and individual analysis files, the production file, the ICR files.

The columns are not a list typed into the code: they are derived from the configuration and the code schemes
exactly as the 2019 pipeline derived them (spec pipeline.md 9.1), so a series with other shows or questions
gets its columns without a code change, and the REDSS/CSAP configuration gives the 127 columns of 2019:

| group | columns                                                                                     |
| ----- | ------------------------------------------------------------------------------------------- |
| 1     | ``uid``, the operator's analysis key                                                        |
| 2     | ``consent_withdrawn``, the channel keys, ``non_logical_time``, the week keys                 |
| 3     | the matrix columns of every RQA plan (prefix + StringValue of every reasons code), code-point order |
| 4     | the binary analysis keys, in plan order                                                     |
| 5     | the RQA raw keys, in plan order                                                             |
| 6     | walking the survey plans: analysis key, then raw key, each only if not yet listed           |

Every CSV is written in the dialect of pipeline.md 9.5 (comma, minimal quoting, doubled quotes, ``\\n`` row
terminators, UTF-8 without BOM, header always written) by :mod:`redss_pipeline.export.csv_cells`, which also
neutralises cells a spreadsheet would read as formulas and always quotes CR and LF (deliberate differences). The writers
only write the path they are given, through :mod:`redss_pipeline.core.atomic_files`, so an error never leaves a
half-written file; the orchestrator decides where that path is.
"""

from __future__ import annotations

import os
from itertools import groupby
from typing import Any, Iterable, Mapping, Sequence

from redss_pipeline.core.atomic_files import atomic_open
from redss_pipeline.core.config import PipelineConfig, RqaPlan
from redss_pipeline.core.errors import RawDataError
from redss_pipeline.core.record_fields import (
    CONSENT_WITHDRAWN_KEY,
    NOISE_KEY,
    NON_LOGICAL_TIME_KEY,
    UID_KEY,
    RecordColumns,
)
from redss_pipeline.export.csv_cells import CsvLines, CsvWriter, write_csv
from redss_pipeline.generate.analysis_columns import ShowCodes, matrix_keys

__all__ = [
    "analysis_columns",
    "production_columns",
    "in_production_file",
    "icr_columns",
    "RecordLines",
    "write_analysis_lines",
    "write_message_lines",
    "write_icr_csv",
    "write_table_csv",
]


def analysis_columns(config: PipelineConfig) -> list[str]:
    """The header of ``csap_mes.csv`` and ``csap_ind.csv``, in order (127 columns for REDSS/CSAP)."""
    columns: list[str] = [UID_KEY, config.operator.analysis_key, CONSENT_WITHDRAWN_KEY]
    columns.extend(config.channels)
    columns.append(NON_LOGICAL_TIME_KEY)
    columns.extend(config.weeks)
    columns.extend(sorted(key for plan in config.rqa_plans for key in matrix_keys(plan)))
    columns.extend(plan.binary.analysis_key for plan in config.rqa_plans if plan.binary is not None)
    columns.extend(plan.raw_field for plan in config.rqa_plans)
    listed = set(columns)
    for plan in config.survey_plans:
        for key in (plan.analysis_key, plan.raw_field):
            if key not in listed:
                columns.append(key)
                listed.add(key)
    return columns


def production_columns(config: PipelineConfig) -> list[str]:
    """The header of ``csap_prod.csv``: ``uid``, the RQA raw keys, then the survey raw keys, each once."""
    columns = [UID_KEY]
    for key in [plan.raw_field for plan in config.rqa_plans] + [plan.raw_field for plan in config.survey_plans]:
        if key not in columns:
            columns.append(key)
    return columns


def in_production_file(message: Mapping[str, Any], position: int) -> bool:
    """Whether the radio team sees the message: its ``noise`` is false. ``position`` (its place in the message
    order) names it in an error when it has no uid.

    A withdrawn message has ``noise = "STOP"`` (pipeline.md 7.7.8), which is true, so it is left out, as in 2019.
    """
    if NOISE_KEY not in message:
        raise RawDataError(
            "message record has no noise flag; the production file needs one on every message",
            record=message.get(UID_KEY, f"#{position}"),
            field=NOISE_KEY,
        )
    return not message[NOISE_KEY]


def icr_columns(plan: RqaPlan) -> list[str]:
    """The header of a show's ICR file: its run id and its raw text (``rqa_s01e01_run_id,rqa_s01e01_raw``)."""
    return [plan.run_id_field, plan.raw_field]


class RecordLines:
    """Renders records as rows of ``columns``: ``lines(record)`` is the record's CSV line (a key the record lacks
    is an empty cell), every cell finalised by :class:`~redss_pipeline.export.csv_cells.CsvLines` (formula
    neutralisation, CR/LF quoting, no NUL). Stage 3 renders each row of ``csap_mes.csv``, ``csap_prod.csv`` and
    ``csap_ind.csv`` this way where it finishes it, and :func:`write_analysis_lines` writes the lines.

    The matrix columns of the ``shows`` among ``columns`` (the configuration's ``rqa_plans``, always passed: with
    none, a matrix column would be read as a record key, which no record has) are rendered from each show's codes
    (:mod:`redss_pipeline.generate.analysis_columns`): ``"1"`` when the record's list holds the column's code,
    ``"0"`` when it does not, any other value (STOP, or None for an absent key) as it is in every column of that
    show. The header is read as runs of columns, each of other columns or of matrix columns (one run for the
    analysis files: the matrix columns are listed together); the text of the matrix runs is worked out once per
    combination of the shows' codes and remembered (most records share a few), up to a limit, so a row renders
    only its other cells."""

    _MATRIX_MEMO_LIMIT = 100_000

    def __init__(self, columns: Sequence[str], cells: CsvLines | None = None, *, shows: Sequence[RqaPlan]):
        self._cells = CsvLines() if cells is None else cells
        # The shows with a column in the header, and each of their columns -> (show number, code's StringValue).
        header = set(columns)
        shown = [show for show in map(ShowCodes, shows) if not header.isdisjoint(show.columns)]
        matrix = {column: (number, string_value)
                  for number, show in enumerate(shown) for column, string_value in show.columns.items()}
        plain = [column for column in columns if column not in matrix]
        self._values = RecordColumns([*plain, *(show.key for show in shown)])
        self._plain_count = len(plain)
        self._has_matrix = bool(shown)
        # The runs, in header order: (start, end) of a run of other columns in the plain values, or the matrix
        # columns of a run, as (show number, StringValue) each.
        self._runs: list[tuple[int, int] | list[tuple[int, str]]] = []
        place = 0
        for is_matrix, run in groupby(columns, key=matrix.__contains__):
            names = list(run)
            if is_matrix:
                self._runs.append([matrix[column] for column in names])
            else:
                self._runs.append((place, place + len(names)))
                place += len(names)
        self._matrix_texts: dict[tuple[Any, ...], list[str]] = {}  # codes -> the text of each matrix run

    def __call__(self, record: Mapping[str, Any]) -> str:
        values = self._values(record)
        if not self._has_matrix:
            return self._cells(values)
        codes = values[self._plain_count:]
        key = _memo_key(codes)
        texts = None if key is None else self._matrix_texts.get(key)
        if texts is None:
            texts = self._render_matrix_runs(codes)
            if key is not None:
                if len(self._matrix_texts) >= self._MATRIX_MEMO_LIMIT:
                    self._matrix_texts.clear()
                self._matrix_texts[key] = texts
        cells = self._cells.cells(values[:self._plain_count])
        matrix_texts = iter(texts)
        return self._cells.line([",".join(cells[run[0]:run[1]]) if type(run) is tuple else next(matrix_texts)
                                 for run in self._runs])

    def _render_matrix_runs(self, codes: tuple[Any, ...]) -> list[str]:
        return [",".join(self._cells.cells([_matrix_cell(codes[show], string_value) for show, string_value in run]))
                for run in self._runs if type(run) is list]


def _matrix_cell(codes: Any, string_value: str) -> Any:
    if type(codes) is list:
        return "1" if string_value in codes else "0"
    return codes


def _memo_key(codes: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """What the matrix runs of ``codes`` are remembered by: each list of texts as a tuple, each text or None as it
    is; None (not remembered) for any other value, which a hashable key could confuse with another (1 and True,
    a tuple and a list)."""
    key: list[Any] = []
    for value in codes:
        if type(value) is list and all(type(item) is str for item in value):
            key.append(tuple(value))
        elif value is None or type(value) is str:
            key.append(value)
        else:
            return None
    return tuple(key)


def write_analysis_lines(path: str | os.PathLike, lines: Iterable[str], columns: Sequence[str]) -> None:
    """Writes the header ``columns``, then rows already rendered as CSV lines (by :class:`RecordLines`)."""
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        writer = CsvWriter(handle)
        writer.writerow(columns)
        writer.write_lines(lines)


def write_message_lines(messages_path: str | os.PathLike, production_path: str | os.PathLike,
                        lines: Iterable[tuple[str, str | None]], *, columns: Sequence[str],
                        production_columns: Sequence[str]) -> None:
    """Writes ``csap_mes.csv`` and ``csap_prod.csv`` in one pass over the messages' lines (rendered by
    :class:`RecordLines`, in message order): each message's analysis line to the first file, and its production
    line to the second, unless it is None (a message the radio team does not see). Each file has its header."""
    with atomic_open(messages_path, "w", encoding="utf-8", newline="") as messages, \
            atomic_open(production_path, "w", encoding="utf-8", newline="") as production:
        CsvWriter(messages).writerow(columns)
        CsvWriter(production).writerow(production_columns)
        write_message, write_production = messages.write, production.write
        for line, production_line in lines:
            write_message(line)
            if production_line is not None:
                write_production(production_line)


def write_icr_csv(path: str | os.PathLike, plan: RqaPlan, rows: Iterable[Mapping[str, Any]]) -> None:
    """Writes a show's ICR file: the sampled records in sample order, run id and raw text (pipeline.md 9.3)."""
    columns = icr_columns(plan)
    write_csv(path, columns, ([row.get(column) for column in columns] for row in rows))


def write_table_csv(path: str | os.PathLike, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """Writes an automated-analysis table (spec analysis.md section 3): UTF-8 without BOM, a header row, every
    field in double quotes (numbers and empty cells too), LF line ends; cells finalised by csv_cells."""
    write_csv(path, columns, rows, quote_all=True)
