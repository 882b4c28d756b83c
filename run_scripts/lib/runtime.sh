# Shared by the numbered run scripts: choose Docker or the native environment, and run a stage in it.
# Sourced, not executed. Needs PROJECT_ROOT set by the caller.
#
# PIPELINE_RUNTIME=docker|native forces a runtime; otherwise Docker is used when a Docker engine answers
# (`docker info`), else the native environment in $PROJECT_ROOT/.venv, which is set up on first use.

pipeline_runtime() {
    case "${PIPELINE_RUNTIME:-auto}" in
        docker|native) echo "$PIPELINE_RUNTIME" ;;
        auto)
            if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
                echo docker
            else
                echo native
            fi ;;
        *) echo "error: PIPELINE_RUNTIME must be docker or native, not '$PIPELINE_RUNTIME'" >&2; return 2 ;;
    esac
}

announce_runtime() {
    # The first line every run script prints.
    if [ "$1" = docker ]; then
        echo "runtime: docker (image ${PIPELINE_IMAGE:-redss-pipeline})"
    else
        echo "runtime: native (${PROJECT_ROOT}/.venv)"
    fi
}

lock_fingerprint() {
    # The hash pipenv records in Pipfile.lock for the Pipfile it was locked from; it changes with every lock.
    sed -n 's/.*"sha256": "\([0-9a-f]*\)".*/\1/p' "$PROJECT_ROOT/Pipfile.lock" | head -n 1
}

ensure_native_env() {
    # Set up on first use, and again whenever Pipfile.lock changed since .venv was last synced with it.
    local stamp="$PROJECT_ROOT/.venv/.synced-lock"
    if [ ! -x "$PROJECT_ROOT/.venv/bin/python" ] || ! "$PROJECT_ROOT/.venv/bin/python" -c \
            "import sys, redss_pipeline; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)" >/dev/null 2>&1 \
            || [ "$(cat "$stamp" 2>/dev/null)" != "$(lock_fingerprint)" ]; then
        echo "setting up the native environment (first use or new Pipfile.lock; takes a few minutes)..." >&2
        "$PROJECT_ROOT/run_scripts/setup.sh" >&2 || { echo "error: the native environment could not be set up" >&2; return 1; }
    fi
}

run_native() {
    # run_native <entry point .py> [arguments...]: the stage takes this shell's place (exec), so a signal sent to
    # the script (kill, timeout, a scheduler stopping it) reaches the stage, instead of leaving it running alone.
    ensure_native_env || return 1
    local entry="$1"; shift
    exec "$PROJECT_ROOT/.venv/bin/python" "$PROJECT_ROOT/$entry" "$@"
}

absolute_path() {
    # Prints the absolute form of a path that may not exist yet (relative to the current directory).
    case "$1" in
        /*) printf '%s\n' "$1" ;;
        *) printf '%s/%s\n' "$(pwd -P)" "$1" ;;
    esac
}
