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
        --import-json) docker_mount_file "$2" /run/io/phone_uuids.json ro; args+=(--import-json /run/io/phone_uuids.json); shift 2 ;;
        --export-json) touch "$2"; docker_mount_file "$2" /run/io/phone_uuids.json rw; args+=(--export-json /run/io/phone_uuids.json); shift 2 ;;
        *) break ;;
    esac
done
if [ $# -ne 1 ]; then
    echo "usage: docker-run-create-uuid-table.sh [--import-json FILE | --export-json FILE] <data-root>" >&2; exit 2
fi
docker_mount_data_root "$1"
docker_run_entry create_uuid_table.py "${args[@]}" /data
