#!/usr/bin/env bash
# Stage 2: fetch every run of the configured flows from Rapid Pro, de-identified, into <data-root>/Raw Data.
# Usage: 2_fetch_raw_data.sh [--full] [--no-archives] [--verbose] [--config FILE] <user> <rapid-pro-root> <rapid-pro-server> <rapid-pro-token> <data-root>
#   <rapid-pro-root>   accepted for compatibility with 2019 (the fetcher is now part of the project)
#   <rapid-pro-token>  the token, or @FILE to read it from FILE, or - to read RAPID_PRO_TOKEN
#                      (a token typed on a command line ends up in shell history and process lists)
set -euo pipefail
PROJECT_ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd -P)"
source "$PROJECT_ROOT/run_scripts/lib/runtime.sh"

usage="usage: 2_fetch_raw_data.sh [--full] [--no-archives] [--verbose] [--config FILE] <user> <rapid-pro-root> <rapid-pro-server> <rapid-pro-token> <data-root>"
options=()
help=""
while [ $# -gt 0 ]; do
    case "$1" in
        --full|--no-archives|--verbose) options+=("$1"); shift ;;
        --config)
            [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }
            options+=("$1" "$2"); shift 2 ;;
        -h|--help) help="$1"; shift ;;
        --) shift; break ;;
        *) break ;;
    esac
done
if [ $# -ne 5 ] && [ -z "$help" ]; then
    echo "$usage" >&2; exit 2
fi
runtime="$(pipeline_runtime)"
announce_runtime "$runtime"
export PIPELINE_RUN_SCRIPT="$(basename "$0")"  # the script the user ran, for the usage lines of the Docker side
if [ "$runtime" = docker ]; then
    if [ -n "$help" ]; then
        exec "$PROJECT_ROOT/docker-run-fetch.sh" --help
    fi
    user="$1"; server="$3"; token="$4"; data_root="$5"
    # The checks the fetch makes of its arguments where it sees them as the user gave them (the container sees the
    # token as a file and <rapid-pro-root> not at all): before <rapid-pro-root> is created, swapped arguments must
    # not make a folder named after the token. The messages name the argument, never its value.
    order="check the order of the arguments: <user> <rapid-pro-root> <rapid-pro-server> <rapid-pro-token> <data-root>"
    places=("<user>" "<rapid-pro-root>" "<rapid-pro-server>" "" "<data-root>")
    for i in 1 2 3 5; do
        value="${!i}"
        if [[ "$value" =~ ^[0-9A-Fa-f]{32,}$ || ( -n "$token" && "$value" == "$token" ) ]]; then
            echo "error: the ${places[i-1]} argument looks like the API token; $order" >&2
            exit 2
        fi
    done
    if [[ "$token" != @* && "$token" != - && -n "$token" && ( "$token" == */* || -e "$token" ) ]]; then
        echo "error: the <rapid-pro-token> argument looks like a server address or a path, not a token; $order" >&2
        exit 2
    fi
    # The argument says where the token is; a variable left in the environment for the other way is not used.
    case "$token" in
        @*) export RAPID_PRO_TOKEN_FILE="${token#@}"; unset RAPID_PRO_TOKEN ;;
        -|"") unset RAPID_PRO_TOKEN_FILE ;;
        *) export RAPID_PRO_TOKEN="$token"; unset RAPID_PRO_TOKEN_FILE ;;
    esac
    export PIPELINE_RAPID_PRO_ROOT="$2"  # created by docker-run-fetch.sh once it has checked the rest
    exec "$PROJECT_ROOT/docker-run-fetch.sh" "${options[@]}" "$user" "$server" "$data_root"
fi
if [ -n "$help" ]; then
    run_native fetch_raw_data.py --help
fi
# A token given on the command line reaches the fetch in the environment, as it reaches the container above, so the
# fetch's own command line (which every user of the machine can list) does not hold it. A path or an address in its
# place is passed on: the fetch refuses it by name.
if [ $# -eq 5 ] && [[ "$4" != @* && "$4" != - && -n "$4" && "$4" != */* && ! -e "$4" ]]; then
    export RAPID_PRO_TOKEN="$4"
    set -- "$1" "$2" "$3" - "$5"
fi
run_native fetch_raw_data.py "${options[@]}" "$@"
