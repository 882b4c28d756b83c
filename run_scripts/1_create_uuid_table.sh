#!/usr/bin/env bash
# Stage 1: create the phone number <-> UUID table of a data root.
# Usage: 1_create_uuid_table.sh <data-root>
set -euo pipefail
PROJECT_ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd -P)"
source "$PROJECT_ROOT/run_scripts/lib/runtime.sh"

if [ $# -lt 1 ]; then
    echo "usage: 1_create_uuid_table.sh [--import-json FILE | --export-json FILE] [--verbose] <data-root>" >&2; exit 2
fi
runtime="$(pipeline_runtime)"
announce_runtime "$runtime"
if [ "$runtime" = docker ]; then
    # The script the user ran, for the usage lines of the Docker side.
    PIPELINE_RUN_SCRIPT="$(basename "$0")" exec "$PROJECT_ROOT/docker-run-create-uuid-table.sh" "$@"
fi
run_native create_uuid_table.py "$@"
