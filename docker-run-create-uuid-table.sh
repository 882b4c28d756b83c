#!/usr/bin/env bash
# Stage 1 in the project's Docker image.
# Usage: docker-run-create-uuid-table.sh [--import-json FILE | --export-json FILE] <data-root>
set -euo pipefail
PROJECT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
source "$PROJECT_ROOT/run_scripts/lib/runtime.sh"
source "$PROJECT_ROOT/run_scripts/lib/docker.sh"

args=()
while [ $# -gt 1 ]; do
    case "$1" in
        --import-json)
            file="$(absolute_path "$2")"; inside="$(docker_path_inside "$file" /run/io/phone_uuids.json)"
            docker_mount_file "$file" "$inside" ro; args+=(--import-json "$inside"); shift 2 ;;
        # The export is written atomically (a temporary file renamed over the target), which a single-file bind
        # mount does not allow: the target's folder is mounted instead.
        --export-json)
            docker_mount_dir "$(dirname "$(absolute_path "$2")")" /run/io
            args+=(--export-json "$DOCKER_DIR_INSIDE/$(basename "$2")"); shift 2 ;;
        *) break ;;
    esac
done
if [ $# -ne 1 ]; then
    echo "usage: docker-run-create-uuid-table.sh [--import-json FILE | --export-json FILE] <data-root>" >&2; exit 2
fi
docker_mount_data_root "$1"
docker_run_entry create_uuid_table.py "${args[@]}" "$DOCKER_DATA_ROOT"
