#!/usr/bin/env python3
"""Stage 1: create the phone number <-> UUID table of a data root (run_scripts/1_create_uuid_table.sh calls this).

The command lives in the package: redss_pipeline.commands.create_uuid_table (installed as redss-create-uuid-table).
"""

import sys

from redss_pipeline.commands.create_uuid_table import entry_point

if __name__ == "__main__":
    sys.exit(entry_point())
