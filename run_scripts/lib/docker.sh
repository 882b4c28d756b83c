# Shared by the docker-run-*.sh scripts: build the project's image once, run a stage in it.
# Sourced, not executed. Needs PROJECT_ROOT set by the caller.
#
# The data root, and any folder a stage writes a named file to, is mounted at its own path (never copied in or
# out), so the stage's messages and errors name the paths the user knows. Secrets reach the container through the
# environment (passed by name with `-e NAME`, so the value is not on any command line) or as read-only
# mounted files under /run/secrets. The container runs as the calling user so outputs stay theirs, and on the
# host network so a Rapid Pro server on 127.0.0.1 is reachable.

PIPELINE_IMAGE="${PIPELINE_IMAGE:-redss-pipeline}"
DOCKER_ARGS=()

docker_build_image() {
    # Builds (or finds up to date) the image and says which, with the time taken. --network host: engines
    # without a bridge network reach the package index only that way, and it changes nothing where they have one.
    local before after started
    before="$(docker image inspect --format '{{.Id}}' "$PIPELINE_IMAGE" 2>/dev/null || true)"
    started="$(date +%s.%N)"
    echo "building the image $PIPELINE_IMAGE (cached after the first build)..." >&2
    docker build --quiet --network host --tag "$PIPELINE_IMAGE" "$PROJECT_ROOT" >/dev/null || {
        echo "error: the image $PIPELINE_IMAGE could not be built (run: docker build --network host $PROJECT_ROOT)" >&2
        return 1
    }
    after="$(docker image inspect --format '{{.Id}}' "$PIPELINE_IMAGE")"
    if [ "$before" = "$after" ]; then
        echo "image $PIPELINE_IMAGE up to date (every build step cached; $(_seconds_since "$started") s)" >&2
    else
        echo "image $PIPELINE_IMAGE built in $(_seconds_since "$started") s" >&2
    fi
}

_seconds_since() {
    awk -v start="$1" -v now="$(date +%s.%N)" 'BEGIN { printf "%.1f", now - start }'
}

DOCKER_DATA_ROOT=""  # the data root's path inside the container, set by docker_mount_data_root

docker_mount_data_root() {
    # docker_mount_data_root <data-root>: mounts it and sets DOCKER_DATA_ROOT to the path the stage is given.
    local root
    root="$(absolute_path "$1")"
    mkdir -p "$root"
    root="$(cd "$root" && pwd -P)"
    DOCKER_DATA_ROOT="$(docker_path_inside "$root" /data)"
    DOCKER_ARGS+=(--volume "$root:$DOCKER_DATA_ROOT")
}

docker_path_inside() {
    # docker_path_inside <absolute host path> <fallback>: where to mount a host folder. Its own path, unless that
    # is a folder of the image itself (the project in /app, Python in /usr, HOME in /tmp, ...), which the mount
    # would hide: then the fallback, and the stage names that path instead.
    case "$1" in
        / | /app | /app/* | /bin | /bin/* | /boot | /boot/* | /dev | /dev/* | /etc | /etc/* | /lib | /lib/* | \
        /lib64 | /lib64/* | /proc | /proc/* | /root | /run | /run/* | /sbin | /sbin/* | /sys | /sys/* | /tmp | \
        /usr | /usr/* | /var | /var/lib | /var/lib/*) printf '%s\n' "$2" ;;
        *) printf '%s\n' "$1" ;;
    esac
}

docker_mount_file() {
    # docker_mount_file <host file> <container path> [ro|rw]: mounts a single file (read-only by default)
    DOCKER_ARGS+=(--volume "$(absolute_path "$1"):$2:${3:-ro}")
}

DOCKER_DIR_INSIDE=""  # the path inside the container of the folder docker_mount_dir mounted last

docker_mount_dir() {
    # docker_mount_dir <host dir> <fallback container path>: creates and mounts a folder the stage writes a named
    # file to, and sets DOCKER_DIR_INSIDE to its path inside the container (see docker_path_inside).
    local dir
    mkdir -p "$1"
    dir="$(cd "$1" && pwd -P)"
    DOCKER_DIR_INSIDE="$(docker_path_inside "$dir" "$2")"
    DOCKER_ARGS+=(--volume "$dir:$DOCKER_DIR_INSIDE")
}

docker_pass_env() {
    # docker_pass_env NAME...: passes variables by name only, so their values never appear in arguments.
    local name
    for name in "$@"; do DOCKER_ARGS+=(--env "$name"); done
}

docker_run_entry() {
    # docker_run_entry <entry point .py> [arguments...]
    local entry="$1"; shift
    docker_build_image
    docker run --rm --init \
        --user "$(id -u):$(id -g)" \
        --network host \
        --workdir /app \
        --env HOME=/tmp \
        "${DOCKER_ARGS[@]}" \
        "$PIPELINE_IMAGE" \
        python "/app/$entry" "$@"
}
