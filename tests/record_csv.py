"""Writing records as stage 3 writes its CSVs, for the tests of the CSV files."""

from __future__ import annotations

from redss_pipeline.export.analysis_files import RecordLines, write_analysis_lines


def write_records(path, records, columns):
    """Each record rendered as a line (by the RecordLines the runner uses), then the lines written under the
    header (by write_analysis_lines, as the stage does)."""
    write_analysis_lines(path, map(RecordLines(columns), records), columns)
