"""Writing records as stage 3 writes its CSVs, for the tests of the CSV files and of the values behind them."""

from __future__ import annotations

import csv
import io

from redss_pipeline.export.analysis_files import RecordLines, analysis_columns, write_analysis_lines


def write_records(path, records, columns):
    """Each record rendered as a line by RecordLines without shows (every column read from its key, as the columns
    of csap_prod.csv are), then the lines written under the header (by write_analysis_lines, as the stage does)."""
    write_analysis_lines(path, map(RecordLines(columns, shows=()), records), columns)


def analysis_cells(config, record) -> dict[str, str]:
    """The cells of ``record``'s row in csap_mes.csv / csap_ind.csv, by column: rendered as the runner renders
    them (the matrix columns from the shows' codes) and read back with the csv module."""
    columns = analysis_columns(config)
    line = RecordLines(columns, shows=config.rqa_plans)(record)
    [row] = csv.reader(io.StringIO(line))
    return dict(zip(columns, row))
