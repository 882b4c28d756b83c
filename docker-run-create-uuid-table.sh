#!/usr/bin/env bash
# Stage 1 in the project's Docker image.
# Usage: docker-run-create-uuid-table.sh [--import-json FILE | --export-json FILE] [--verbose] <data-root>
set -euo pipefail
PROJECT_ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd -P)"
source "$PROJECT_ROOT/run_scripts/lib/runtime.sh"
source "$PROJECT_ROOT/run_scripts/lib/docker.sh"

usage="usage: ${PIPELINE_RUN_SCRIPT:-docker-run-create-uuid-table.sh} [--import-json FILE | --export-json FILE] [--verbose] <data-root>"
import_file=""
export_file=""
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --import-json|--export-json)
            [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }
            if [ "$1" = --import-json ]; then import_file="$2"; else export_file="$2"; fi
            shift 2 ;;
        --verbose) args+=("$1"); shift ;;
        -h|--help) docker_run_entry create_uuid_table.py --help ;;
        --) shift; break ;;
        -*) echo "$usage" >&2; exit 2 ;;
        *) break ;;
    esac
done
# Checked before anything is built or created: a wrong call leaves no data root behind.
if [ $# -ne 1 ] || { [ -n "$import_file" ] && [ -n "$export_file" ]; }; then
    echo "$usage" >&2
    exit 2
fi
docker_build_image
docker_mount_data_root "$1" --create
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
