"""Automated analysis of the outputs: tables, charts, maps, the report, and coding quality (agreement, progress)."""
