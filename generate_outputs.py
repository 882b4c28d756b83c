#!/usr/bin/env python3
"""Stage 3: generate the outputs of a data root, or explain a value (run_scripts/3_generate_outputs.sh calls this).

The command lives in the package: redss_pipeline.commands.generate_outputs (installed as redss-generate-outputs).
"""

import sys

from redss_pipeline.commands.generate_outputs import entry_point

if __name__ == "__main__":
    sys.exit(entry_point())
