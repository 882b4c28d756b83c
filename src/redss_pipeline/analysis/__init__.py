"""Automated analysis of the outputs: tables, charts, maps, the report (spec analysis.md), and coding quality
(agreement, progress; spec coding-quality.md).

Run the analysis with :func:`run_analysis`; stage 3 calls it at the end, ``generate_outputs.py analyse
<data-root>`` alone.
"""

from redss_pipeline.analysis.stage import run_analysis

__all__ = ["run_analysis"]
