#!/usr/bin/env bash
# Stage 2 in the project's Docker image.
# Usage: docker-run-fetch.sh [--full] [--no-archives] <user> <rapid-pro-server> <data-root>
# The token comes from the file named by RAPID_PRO_TOKEN_FILE or from RAPID_PRO_TOKEN; either way it reaches the
# container as a read-only mounted file, never on a command line and never in the container's environment (which
# `docker inspect` shows to anyone who may use the engine). A token from RAPID_PRO_TOKEN is written for the run to
# a private temporary file (readable by the calling user only), removed when the run ends.
set -euo pipefail
PROJECT_ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd -P)"
source "$PROJECT_ROOT/run_scripts/lib/runtime.sh"
source "$PROJECT_ROOT/run_scripts/lib/docker.sh"

options=()
while [ $# -gt 0 ]; do
    case "$1" in
        --full|--no-archives|--verbose) options+=("$1"); shift ;;
        --) shift; break ;;
        -*) echo "docker-run-fetch.sh: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
if [ $# -ne 3 ]; then
    echo "usage: docker-run-fetch.sh [--full] [--no-archives] <user> <rapid-pro-server> <data-root>  (token in RAPID_PRO_TOKEN or RAPID_PRO_TOKEN_FILE)" >&2
    exit 2
fi
user="$1"; server="$2"; data_root="$3"
require_non_empty "<user>" "$user"

if [ -n "${RAPID_PRO_TOKEN_FILE:-}" ]; then
    token_file="$RAPID_PRO_TOKEN_FILE"
elif [ -n "${RAPID_PRO_TOKEN:-}" ]; then
    secrets_dir="$(umask 077 && mktemp -d)"
    trap 'rm -rf "$secrets_dir"' EXIT
    DOCKER_RUN_THEN_CLEAN_UP=1  # the container runs as a child of this shell, so the trap removes the secret
    token_file="$secrets_dir/rapid_pro_token"
    (umask 077 && printf '%s' "$RAPID_PRO_TOKEN" > "$token_file")
    unset RAPID_PRO_TOKEN
else
    echo "error: no Rapid Pro token: set RAPID_PRO_TOKEN or RAPID_PRO_TOKEN_FILE" >&2; exit 2
fi
docker_mount_file "$token_file" /run/secrets/rapid_pro_token ro
docker_mount_data_root "$data_root"
docker_run_entry fetch_raw_data.py "${options[@]}" "$user" /tmp/rapid-pro-root "$server" @/run/secrets/rapid_pro_token "$DOCKER_DATA_ROOT"
