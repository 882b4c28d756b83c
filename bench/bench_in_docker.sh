#!/usr/bin/env bash
# Runs bench/bench_generate.py inside the project's Docker image: stage 3 measured with the image's own Python
# and locked dependencies, the runtime the numbered scripts use when a Docker engine answers.
#
# Usage: bench/bench_in_docker.sh [bench_generate.py arguments...]
#   e.g. bench/bench_in_docker.sh --workers 2 --root /data/bench-project-100000 /data/bench-2019-100000
#
# The interpreter matters: a Python built with profile-guided optimisation (the image's, and most distributions')
# runs stage 3 markedly faster than one built without it (pyenv's default build, for one). The checkout is
# mounted read-only; the folders named after --root and --keep are mounted at their own paths, read-write, since
# the benchmark writes their Outputs/ (--keep folders are created first).
set -euo pipefail
PROJECT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
source "$PROJECT_ROOT/run_scripts/lib/runtime.sh"
source "$PROJECT_ROOT/run_scripts/lib/docker.sh"

if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
    echo "error: no Docker engine answers; run bench/bench_generate.py natively instead" >&2
    exit 1
fi

arguments=()
folders=false  # whether the arguments being read are folders (after --root or --keep)
for argument in "$@"; do
    case "$argument" in
        --root|--keep) folders=true; [ "$argument" = --keep ] && keeping=true || keeping=false
                       arguments+=("$argument"); continue ;;
        --root=*|--keep=*) echo "error: give ${argument%%=*} and its folders as separate arguments" >&2; exit 2 ;;
        --*) folders=false; arguments+=("$argument"); continue ;;
    esac
    if [ "$folders" = true ]; then
        folder="$(absolute_path "$argument")"
        if [ "$keeping" = true ]; then
            mkdir -p "$folder"
        elif [ ! -d "$folder" ]; then
            echo "error: $argument: no such data root" >&2
            exit 2
        fi
        folder="$(cd "$folder" && pwd -P)"
        docker_bind "$folder" "$folder"
        arguments+=("$folder")
    else
        arguments+=("$argument")
    fi
done

docker_build_image
docker_bind "$PROJECT_ROOT" /project readonly
docker_mount_args
# The benchmark reads the sources from the mounted checkout (the image was just built from them) and keeps its
# generated data roots, unless --keep is given, in the container's /tmp. --network host as in run_scripts/lib/docker.sh:
# some engines have no bridge network.
docker run --rm --init \
    --user "$(id -u):$(id -g)" \
    --network host \
    --env HOME=/tmp \
    "${DOCKER_ARGS[@]}" \
    "$PIPELINE_IMAGE" \
    python /project/bench/bench_generate.py "${arguments[@]}"
