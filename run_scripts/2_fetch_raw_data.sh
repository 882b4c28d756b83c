#!/usr/bin/env bash
# Stage 2: fetch every run of the configured flows from Rapid Pro, de-identified, into <data-root>/Raw Data.
# Usage: 2_fetch_raw_data.sh [--full] [--no-archives] <user> <rapid-pro-root> <rapid-pro-server> <rapid-pro-token> <data-root>
#   <rapid-pro-root>   accepted for compatibility with 2019 (the fetcher is now part of the project)
#   <rapid-pro-token>  the token, or @FILE to read it from FILE, or - to read RAPID_PRO_TOKEN
#                      (a token typed on a command line ends up in shell history and process lists)
set -euo pipefail
PROJECT_ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd -P)"
source "$PROJECT_ROOT/run_scripts/lib/runtime.sh"

usage="usage: 2_fetch_raw_data.sh [--full] [--no-archives] [--verbose] <user> <rapid-pro-root> <rapid-pro-server> <rapid-pro-token> <data-root>"
options=()
while [ $# -gt 0 ]; do
    case "$1" in
        --full|--no-archives|--verbose) options+=("$1"); shift ;;
        -h|--help) options+=("$1"); shift ;;
        --) shift; break ;;
        *) break ;;
    esac
done
if [ $# -ne 5 ] && [[ " ${options[*]-} " != *" --help "* && " ${options[*]-} " != *" -h "* ]]; then
    echo "$usage" >&2; exit 2
fi
runtime="$(pipeline_runtime)"
announce_runtime "$runtime"
if [ "$runtime" = docker ]; then
    user="$1"; server="$3"; token="$4"; data_root="$5"
    # Before <rapid-pro-root> is created: swapped arguments must not make a folder named after the token (the
    # Python side checks the rest; this names the argument, never its value).
    places=("<user>" "<rapid-pro-root>" "<rapid-pro-server>" "" "<data-root>")
    for i in 1 2 3 5; do
        value="${!i}"
        if [[ "$value" =~ ^[0-9A-Fa-f]{32,}$ || ( -n "$token" && "$value" == "$token" ) ]]; then
            echo "error: the ${places[i-1]} argument looks like the API token; check the order of the arguments:" \
                "<user> <rapid-pro-root> <rapid-pro-server> <rapid-pro-token> <data-root>" >&2
            exit 2
        fi
    done
    mkdir -p "$2"
    case "$token" in
        @*) export RAPID_PRO_TOKEN_FILE="${token#@}" ;;
        -|"") ;;
        *) export RAPID_PRO_TOKEN="$token" ;;
    esac
    exec "$PROJECT_ROOT/docker-run-fetch.sh" "${options[@]}" "$user" "$server" "$data_root"
fi
# A token given on the command line reaches the fetch in the environment, as it reaches the container above, so the
# fetch's own command line (which every user of the machine can list) does not hold it. A path or an address in its
# place is passed on: the fetch refuses it by name.
if [ $# -eq 5 ] && [[ "$4" != @* && "$4" != - && -n "$4" && "$4" != */* && ! -e "$4" ]]; then
    export RAPID_PRO_TOKEN="$4"
    set -- "$1" "$2" "$3" - "$5"
fi
run_native fetch_raw_data.py "${options[@]}" "$@"
