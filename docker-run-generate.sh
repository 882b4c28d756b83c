#!/usr/bin/env bash
# Stage 3 in the project's Docker image.
# Usage: docker-run-generate.sh [--drive-upload <credentials-url> <drive-upload-dir>] [--profile-cpu <file>] [--workers N] [--config FILE] [--verbose] <user> <data-root>
# A local service-account key file is mounted read-only; a gs:// URL is downloaded inside the container with
# the Google credentials named by GOOGLE_APPLICATION_CREDENTIALS (mounted read-only) when set. A configuration
# given with --config or REDSS_PIPELINE_CONFIG is mounted read-only with its code schemes.
set -euo pipefail
PROJECT_ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd -P)"
source "$PROJECT_ROOT/run_scripts/lib/runtime.sh"
source "$PROJECT_ROOT/run_scripts/lib/docker.sh"

usage="usage: ${PIPELINE_RUN_SCRIPT:-docker-run-generate.sh} [--drive-upload <drive-service-account-credentials-url> <drive-upload-dir>] [--profile-cpu <profile-output-file>] [--workers N] [--config FILE] [--verbose] <user> <data-root>"
options=()
credentials=""
profile_file=""
config="${REDSS_PIPELINE_CONFIG:-}"
while [ $# -gt 0 ]; do
    case "$1" in
        --drive-upload)
            [ $# -ge 3 ] || { echo "$usage" >&2; exit 2; }
            case "$2" in
                gs://*) credentials="$2" ;;
                *) docker_mount_file "$2" /run/secrets/drive-service-account.json "credentials file"
                   credentials=/run/secrets/drive-service-account.json ;;
            esac
            options+=(--drive-upload "$credentials" "$3"); shift 3 ;;
        --profile-cpu)
            [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }
            profile_file="$2"; shift 2 ;;
        --workers)
            [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }
            options+=(--workers "$2"); shift 2 ;;
        --config)
            [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }
            config="$2"; shift 2 ;;
        --verbose) options+=("$1"); shift ;;
        -h|--help) docker_run_entry generate_outputs.py --help ;;
        --) shift; break ;;
        -*) echo "$usage" >&2; exit 2 ;;
        *) break ;;
    esac
done
[ $# -eq 2 ] || { echo "$usage" >&2; exit 2; }
require_non_empty "<user>" "$1"
if [ -n "${GOOGLE_APPLICATION_CREDENTIALS:-}" ] && [[ "$credentials" == gs://* ]]; then
    docker_mount_file "$GOOGLE_APPLICATION_CREDENTIALS" /run/secrets/google-application-credentials.json \
        "Google credentials file (GOOGLE_APPLICATION_CREDENTIALS)"
    DOCKER_ARGS+=(--env GOOGLE_APPLICATION_CREDENTIALS=/run/secrets/google-application-credentials.json)
fi
docker_pass_env STORAGE_EMULATOR_HOST
docker_mount_data_root "$2"
if [ -n "$config" ]; then
    docker_config_dirs "$config"
    options+=(--config "$DOCKER_PATH_INSIDE")
fi
if [ -n "$profile_file" ]; then
    docker_mount_dir "$(dirname "$(absolute_path "$profile_file")")" /run/profile
    DOCKER_ARGS+=(--cap-add SYS_PTRACE)
    options+=(--profile-cpu "$DOCKER_PATH_INSIDE/$(basename "$profile_file")")
fi
docker_run_entry generate_outputs.py "${options[@]}" "$1" "$DOCKER_DATA_ROOT"
