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

DOCKER_DATA_ROOT=""        # the data root's path inside the container, set by docker_mount_data_root
_DOCKER_DATA_ROOT_HOST=""  # and on this machine, symbolic links resolved

require_non_empty() {
    # require_non_empty <argument> <value>: an empty value (an unset shell variable) is a usage error, as the stages
    # themselves say; checked here, before anything is built, created or mounted.
    if [ -z "${2//[[:space:]]/}" ]; then
        echo "error: argument $1: must not be empty (an unset shell variable?)" >&2
        exit 2
    fi
}

docker_mount_data_root() {
    # docker_mount_data_root <data-root>: mounts it and sets DOCKER_DATA_ROOT to the path the stage is given. Call
    # it before docker_mount_dir and docker_input_file, which reach a folder or file inside it through its mount.
    local root
    require_non_empty "<data-root>" "$1"  # "" would mount the current folder as the data root
    root="$(absolute_path "$1")"
    mkdir -p "$root"
    root="$(cd "$root" && pwd -P)"
    _DOCKER_DATA_ROOT_HOST="$root"
    DOCKER_DATA_ROOT="$(docker_path_inside "$root" /data)"
    DOCKER_ARGS+=(--volume "$root:$DOCKER_DATA_ROOT")
}

docker_path_inside() {
    # docker_path_inside <absolute host path> <fallback>: where to mount a host folder. Its own path, unless that
    # is a folder of the image itself (the project in /app, Python in /usr, HOME in /tmp, ...) or one of the
    # places these scripts mount other things (/run/secrets, ...), which the mount would hide: then the fallback,
    # and the stage names that path instead.
    case "$1" in
        / | /app | /app/* | /bin | /bin/* | /boot | /boot/* | /dev | /dev/* | /etc | /etc/* | /lib | /lib/* | \
        /lib64 | /lib64/* | /proc | /proc/* | /root | /run | /run/secrets | /run/secrets/* | /run/io | /run/io/* | \
        /run/profile | /run/profile/* | /sbin | /sbin/* | /sys | /sys/* | /tmp | /usr | /usr/* | /var | /var/lib | \
        /var/lib/*) printf '%s\n' "$2" ;;
        *) printf '%s\n' "$1" ;;
    esac
}

DOCKER_PATH_INSIDE=""  # what docker_mount_dir or docker_input_file found: the path inside the container

_docker_place() {
    # _docker_place <resolved host path> <fallback>: sets DOCKER_PATH_INSIDE, and returns 0 when the path needs a
    # mount of its own. The data root or a path inside it is reached through the data root's mount: a second mount
    # of the same folder is refused by Docker, and one inside it would split the data root in two (a file could
    # not be renamed from the one to the other, as the output set does).
    local root="$_DOCKER_DATA_ROOT_HOST"
    if [ -n "$root" ] && { [ "$1" = "$root" ] || [[ "$1" == "$root"/* ]]; }; then
        DOCKER_PATH_INSIDE="$DOCKER_DATA_ROOT${1#"$root"}"
        return 1
    fi
    DOCKER_PATH_INSIDE="$(docker_path_inside "$1" "$2")"
    if [ -n "$root" ] && { [ "$DOCKER_PATH_INSIDE" = "$DOCKER_DATA_ROOT" ] ||
            [[ "$DOCKER_PATH_INSIDE" == "$DOCKER_DATA_ROOT"/* ]]; }; then
        DOCKER_PATH_INSIDE="$2"  # its own path is where the data root went (the data root fell back to /data)
    fi
}

docker_mount_file() {
    # docker_mount_file <host file> <container path> [ro|rw]: mounts a single file (read-only by default)
    DOCKER_ARGS+=(--volume "$(absolute_path "$1"):$2:${3:-ro}")
}

docker_mount_dir() {
    # docker_mount_dir <host dir> <fallback container path>: creates a folder the stage writes a named file to,
    # mounts it (see _docker_place) and sets DOCKER_PATH_INSIDE to its path inside the container.
    local dir
    mkdir -p "$1"
    dir="$(cd "$1" && pwd -P)"
    if _docker_place "$dir" "$2"; then
        DOCKER_ARGS+=(--volume "$dir:$DOCKER_PATH_INSIDE")
    fi
}

docker_input_file() {
    # docker_input_file <host file> <fallback container path>: mounts a file the stage reads, read-only (see
    # _docker_place), and sets DOCKER_PATH_INSIDE to its path inside the container. A file that is not there is
    # passed on by its own path, unmounted, so the stage's one-line error names it as the user gave it.
    local file
    file="$(absolute_path "$1")"
    if [ ! -f "$file" ]; then
        DOCKER_PATH_INSIDE="$file"
        return 0
    fi
    file="$(cd "$(dirname "$file")" && pwd -P)/$(basename "$file")"
    if _docker_place "$file" "$2"; then
        docker_mount_file "$file" "$DOCKER_PATH_INSIDE" ro
    fi
}

docker_pass_env() {
    # docker_pass_env NAME...: passes variables by name only, so their values never appear in arguments.
    local name
    for name in "$@"; do DOCKER_ARGS+=(--env "$name"); done
}

docker_run_entry() {
    # docker_run_entry <entry point .py> [arguments...]: `docker run` takes this shell's place (exec), so a signal
    # sent to the script (kill, timeout, a scheduler) reaches the docker client, which passes it on to the stage
    # in the container. A script with an EXIT trap to run afterwards (a temporary secret to remove) sets
    # DOCKER_RUN_THEN_CLEAN_UP=1 and keeps its shell: a signal to that script does not reach the stage.
    local entry="$1"; shift
    docker_build_image
    # The container's standard error is a pipe even when this script's is a terminal: say which, so the stage
    # draws its progress bars on a terminal only (in a log they are pages of carriage returns).
    if [ -t 2 ]; then DOCKER_ARGS+=(--env PIPELINE_STDERR_IS_A_TERMINAL=1); fi
    local command=(docker run --rm --init
        --user "$(id -u):$(id -g)"
        --network host
        --workdir /app
        --env HOME=/tmp
        "${DOCKER_ARGS[@]}"
        "$PIPELINE_IMAGE"
        python "/app/$entry" "$@")
    if [ "${DOCKER_RUN_THEN_CLEAN_UP:-}" = 1 ]; then
        "${command[@]}"
    else
        exec "${command[@]}"
    fi
}
