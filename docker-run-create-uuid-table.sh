#!/usr/bin/env bash
# Stage 1 in the project's Docker image.
# Usage: docker-run-create-uuid-table.sh [--import-json FILE | --export-json FILE] [--verbose] <data-root>
set -euo pipefail
PROJECT_ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd -P)"
source "$PROJECT_ROOT/run_scripts/lib/runtime.sh"
source "$PROJECT_ROOT/run_scripts/lib/docker.sh"

import_file=""
export_file=""
args=()
while [ $# -gt 1 ]; do
    case "$1" in
        --import-json) import_file="$2"; shift 2 ;;
        --export-json) export_file="$2"; shift 2 ;;
        --verbose) args+=("$1"); shift ;;
        *) break ;;
    esac
done
if [ $# -ne 1 ]; then
    echo "usage: docker-run-create-uuid-table.sh [--import-json FILE | --export-json FILE] [--verbose] <data-root>" >&2
    exit 2
fi
docker_mount_data_root "$1"
if [ -n "$import_file" ]; then
    docker_input_file "$import_file" /run/io/phone_uuids.json
    args+=(--import-json "$DOCKER_PATH_INSIDE")
fi
if [ -n "$export_file" ]; then
    # The export is written atomically (a temporary file renamed over the target), which a single-file bind mount
    # does not allow: the target's folder is mounted instead.
    docker_mount_dir "$(dirname "$(absolute_path "$export_file")")" /run/io
    args+=(--export-json "$DOCKER_PATH_INSIDE/$(basename "$export_file")")
fi
docker_run_entry create_uuid_table.py "${args[@]}" "$DOCKER_DATA_ROOT"
