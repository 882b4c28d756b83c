#!/usr/bin/env python3
"""Stage 2: fetch raw data from Rapid Pro (run_scripts/2_fetch_raw_data.sh calls this).

The command lives in the package: redss_pipeline.commands.fetch_raw_data (installed as redss-fetch-raw-data).
"""

import sys

from redss_pipeline.commands.fetch_raw_data import entry_point

if __name__ == "__main__":
    sys.exit(entry_point())
