#!/usr/bin/env bash
# Stage 2 in the project's Docker image.
# Usage: docker-run-fetch.sh [--full] [--no-archives] [--verbose] [--config FILE] <user> <rapid-pro-server> <data-root>
# The token comes from the file named by RAPID_PRO_TOKEN_FILE or from RAPID_PRO_TOKEN (2_fetch_raw_data.sh sets
# the one its <rapid-pro-token> argument names and clears the other). Either way this script reads it and hands
# it to the stage on its standard input: never on a command line, never in a file of its own, and never in the
# container's environment (which `docker inspect` shows to anyone who may use the engine).
set -euo pipefail
PROJECT_ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd -P)"
source "$PROJECT_ROOT/run_scripts/lib/runtime.sh"
source "$PROJECT_ROOT/run_scripts/lib/docker.sh"

script="${PIPELINE_RUN_SCRIPT:-docker-run-fetch.sh}"
usage="usage: $script [--full] [--no-archives] [--verbose] [--config FILE] <user> <rapid-pro-server> <data-root>  (token in RAPID_PRO_TOKEN or RAPID_PRO_TOKEN_FILE)"
[ "$script" = docker-run-fetch.sh ] || usage="usage: $script [--full] [--no-archives] [--verbose] [--config FILE] <user> <rapid-pro-root> <rapid-pro-server> <rapid-pro-token> <data-root>"
options=()
config="${REDSS_PIPELINE_CONFIG:-}"
while [ $# -gt 0 ]; do
    case "$1" in
        --full|--no-archives|--verbose) options+=("$1"); shift ;;
        --config)
            [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }
            config="$2"; shift 2 ;;
        -h|--help) docker_run_entry fetch_raw_data.py --help ;;
        --) shift; break ;;
        -*) echo "$usage" >&2; exit 2 ;;
        *) break ;;
    esac
done
if [ $# -ne 3 ]; then
    echo "$usage" >&2
    exit 2
fi
user="$1"; server="$2"; data_root="$3"
require_non_empty "<user>" "$user"

token_file="${RAPID_PRO_TOKEN_FILE:-}"
token="${RAPID_PRO_TOKEN:-}"
unset RAPID_PRO_TOKEN RAPID_PRO_TOKEN_FILE
if [ -n "$token_file" ]; then
    # Read here, so anything this user may read will do: a file, or a pipe such as @<(pass show rapid-pro).
    docker_readable_file "$token_file" "Rapid Pro token file" --or-pipe
    IFS= read -r DOCKER_STDIN_TEXT < "$token_file" || true  # the first line, as the stage reads a file
    if [ -z "${DOCKER_STDIN_TEXT//[[:space:]]/}" ]; then
        echo "error: $token_file: the Rapid Pro token file is empty" >&2; exit 2
    fi
elif [ -n "${token//[[:space:]]/}" ]; then
    DOCKER_STDIN_TEXT="$token"
else
    echo "error: no Rapid Pro token: set RAPID_PRO_TOKEN or RAPID_PRO_TOKEN_FILE" >&2; exit 2
fi
docker_mount_data_root "$data_root"
if [ -n "$config" ]; then
    docker_config_dirs "$config"
    options+=(--config "$DOCKER_PATH_INSIDE")
fi
# 2_fetch_raw_data.sh's <rapid-pro-root>, created as natively once the arguments are known to be right; the stage
# in the container does not need it.
rapid_pro_root="${PIPELINE_RAPID_PRO_ROOT:-}"
unset PIPELINE_RAPID_PRO_ROOT
if [ -n "$rapid_pro_root" ] && ! mkdir -p "$rapid_pro_root" 2>/dev/null; then
    echo "warning: $rapid_pro_root: the <rapid-pro-root> folder cannot be created; the fetch does not need it, so it" \
        "goes on" >&2
fi
docker_run_entry fetch_raw_data.py "${options[@]}" "$user" /tmp/rapid-pro-root "$server" @/dev/stdin "$DOCKER_DATA_ROOT"
