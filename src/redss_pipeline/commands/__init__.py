"""The three stages' command lines.

Each module is one stage's command: it parses the arguments, reads the configuration and the clock, calls the
stage, and prints the summary. They are reached three ways, all with the same behaviour:

- the numbered run scripts (``run_scripts/1_create_uuid_table.sh`` ...) through the thin files at the project
  root (``create_uuid_table.py``, ``fetch_raw_data.py``, ``generate_outputs.py``), natively or in Docker;
- the console scripts of an installed package (``redss-create-uuid-table``, ``redss-fetch-raw-data``,
  ``redss-generate-outputs``);
- ``python -m redss_pipeline.commands.<stage>``.
"""
