"""Stage 3: the steps of spec pipeline.md section 7, from raw records to message and individual records."""
