#!/usr/bin/env bash
# Stage 2 in the project's Docker image.
# Usage: docker-run-fetch.sh [--full] <user> <rapid-pro-server> <data-root>
# The token comes from RAPID_PRO_TOKEN (passed by name) or from the file named by RAPID_PRO_TOKEN_FILE
# (mounted read-only); it never appears on a command line.
set -euo pipefail
PROJECT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
source "$PROJECT_ROOT/run_scripts/lib/runtime.sh"
source "$PROJECT_ROOT/run_scripts/lib/docker.sh"

options=()
while [ $# -gt 0 ]; do
    case "$1" in
        --full|--verbose) options+=("$1"); shift ;;
        --) shift; break ;;
        -*) echo "docker-run-fetch.sh: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
if [ $# -ne 3 ]; then
    echo "usage: docker-run-fetch.sh [--full] <user> <rapid-pro-server> <data-root>  (token in RAPID_PRO_TOKEN or RAPID_PRO_TOKEN_FILE)" >&2
    exit 2
fi
user="$1"; server="$2"; data_root="$3"

if [ -n "${RAPID_PRO_TOKEN_FILE:-}" ]; then
    docker_mount_file "$RAPID_PRO_TOKEN_FILE" /run/secrets/rapid_pro_token ro
    token_arg="@/run/secrets/rapid_pro_token"
elif [ -n "${RAPID_PRO_TOKEN:-}" ]; then
    docker_pass_env RAPID_PRO_TOKEN
    token_arg="-"
else
    echo "error: no Rapid Pro token: set RAPID_PRO_TOKEN or RAPID_PRO_TOKEN_FILE" >&2; exit 2
fi
docker_mount_data_root "$data_root"
docker_run_entry fetch_raw_data.py "${options[@]}" "$user" /tmp/rapid-pro-root "$server" "$token_arg" /data
