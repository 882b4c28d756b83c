#!/usr/bin/env bash
# Stage 3: clean, auto-code, merge Coda codes and write the analysis files of a data root.
# Usage: 3_generate_outputs.sh [--drive-upload <drive-service-account-credentials-url> <drive-upload-dir>]
#                              [--profile-cpu <profile-output-file>] [--workers N] [--config FILE] [--verbose]
#                              <user> <data-root>
set -euo pipefail
PROJECT_ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd -P)"
source "$PROJECT_ROOT/run_scripts/lib/runtime.sh"

if [ $# -lt 2 ] && [[ " $* " != *" --help "* && " $* " != *" -h "* ]]; then
    echo "usage: 3_generate_outputs.sh [--drive-upload <drive-service-account-credentials-url> <drive-upload-dir>] [--profile-cpu <profile-output-file>] [--workers N] [--config FILE] [--verbose] <user> <data-root>" >&2
    exit 2
fi
runtime="$(pipeline_runtime)"
announce_runtime "$runtime"
if [ "$runtime" = docker ]; then
    # The script the user ran, for the usage lines of the Docker side.
    PIPELINE_RUN_SCRIPT="$(basename "$0")" exec "$PROJECT_ROOT/docker-run-generate.sh" "$@"
fi
run_native generate_outputs.py "$@"
