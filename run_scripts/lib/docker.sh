# Shared by the docker-run-*.sh scripts: build the project's image once, run a stage in it.
# Sourced, not executed. Needs PROJECT_ROOT set by the caller.
#
# The data root, and any folder a stage writes a named file to, is mounted at its own path (never copied in or
# out), so the stage's messages and errors name the paths the user knows. Mounts are given as `--mount` (a path
# with a colon is one path there, where `--volume` would split it), and only of what exists: a missing source is
# refused here, by the name the user gave (Docker would name its absolute path, or, with `--volume`, create a
# root-owned folder in its place). Secrets
# never appear on a command line or in the container's environment: the Rapid Pro token reaches the stage on its
# standard input, a key file as a read-only mount under /run/secrets. The container runs as the calling user so
# outputs stay theirs, and on the host network so a Rapid Pro server on 127.0.0.1 is reachable.

PIPELINE_IMAGE="${PIPELINE_IMAGE:-redss-pipeline}"
DOCKER_ARGS=()
DOCKER_STDIN_TEXT=""  # a secret for the stage's standard input (docker_run_entry); never taken from the environment
_DOCKER_MOUNT_TARGETS=()  # where docker_bind mounts, in order; the source and whether writable, by target:
declare -gA _DOCKER_MOUNT_SOURCE=() _DOCKER_MOUNT_WRITABLE=()
_DOCKER_IMAGE_BUILT=""  # set once docker_build_image has built the image (or found it up to date)

docker_build_image() {
    # Builds (or finds up to date) the image and says which, with the time taken. --network host: engines
    # without a bridge network reach the package index only that way, and it changes nothing where they have one.
    local before after started
    before="$(docker image inspect --format '{{.Id}}' "$PIPELINE_IMAGE" 2>/dev/null || true)"
    started="$(date +%s.%N)"
    echo "building the image $PIPELINE_IMAGE (cached after the first build)..." >&2
    # What the build prints is shown only when it fails (an engine's notices, such as the legacy builder's
    # deprecation, would otherwise precede every run).
    local output
    if ! output="$(docker build --quiet --network host --tag "$PIPELINE_IMAGE" "$PROJECT_ROOT" 2>&1 >/dev/null)"; then
        [ -z "$output" ] || printf '%s\n' "$output" >&2
        echo "error: the image $PIPELINE_IMAGE could not be built (run: docker build --network host $PROJECT_ROOT)" >&2
        return 1
    fi
    after="$(docker image inspect --format '{{.Id}}' "$PIPELINE_IMAGE")"
    if [ "$before" = "$after" ]; then
        echo "image $PIPELINE_IMAGE up to date (every build step cached; $(_seconds_since "$started") s)" >&2
    else
        echo "image $PIPELINE_IMAGE built in $(_seconds_since "$started") s" >&2
    fi
    _DOCKER_IMAGE_BUILT=1
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
    # docker_mount_data_root <data-root> [--create]: mounts it and sets DOCKER_DATA_ROOT to the path the stage is
    # given. Only stage 1 creates a data root (--create, once its script has built the image, so that a failed
    # build leaves nothing behind); stages 2 and 3 refuse one that is not an existing folder, as natively. Call it
    # before docker_mount_dir and docker_input_file, which reach a folder or file inside it through its mount.
    local root
    require_non_empty "<data-root>" "$1"  # "" would mount the current folder as the data root
    root="$(absolute_path "$1")"
    if [ "${2:-}" = --create ]; then
        if [ -e "$root" ] && [ ! -d "$root" ]; then
            echo "error: the data root $1 is not a folder" >&2; exit 2
        fi
        mkdir -p "$root"
    elif [ ! -d "$root" ]; then
        if [ -e "$root" ]; then
            echo "error: the data root $1 is not a folder" >&2
        else
            echo "error: the data root $1 does not exist (stage 1 creates it)" >&2
        fi
        exit 2
    fi
    root="$(cd "$root" && pwd -P)"
    _DOCKER_DATA_ROOT_HOST="$root"
    DOCKER_DATA_ROOT="$(docker_path_inside "$root" /data)"
    docker_bind "$root" "$DOCKER_DATA_ROOT"
}

docker_bind() {
    # docker_bind <host path> <container path> [readonly]: a bind mount of something that exists, given to `docker
    # run` by docker_mount_args. A target asked for twice (a configuration and a profile in one folder) is mounted
    # once, writable if either asks to write; Docker refuses two mounts at one place.
    local writable=1
    if [ "${3:-}" = readonly ]; then writable=0; fi
    if [ -n "${_DOCKER_MOUNT_SOURCE[$2]+set}" ]; then
        if [ "${_DOCKER_MOUNT_SOURCE[$2]}" != "$1" ]; then
            echo "error: $1 and ${_DOCKER_MOUNT_SOURCE[$2]} would both be mounted at $2 in the container" >&2
            exit 2
        fi
        if [ "$writable" = 1 ]; then _DOCKER_MOUNT_WRITABLE[$2]=1; fi
        return 0
    fi
    _DOCKER_MOUNT_TARGETS+=("$2")
    _DOCKER_MOUNT_SOURCE[$2]="$1"
    _DOCKER_MOUNT_WRITABLE[$2]="$writable"
}

docker_mount_args() {
    # Adds the --mount arguments of every docker_bind to DOCKER_ARGS, in the order first asked for. The fields are
    # quoted as the --mount syntax (comma-separated values) allows, so commas, colons and quotes in a path are
    # taken as they are.
    local target source spec
    for target in "${_DOCKER_MOUNT_TARGETS[@]}"; do
        source="${_DOCKER_MOUNT_SOURCE[$target]}"
        spec="type=bind,\"source=${source//\"/\"\"}\",\"target=${target//\"/\"\"}\""
        if [ "${_DOCKER_MOUNT_WRITABLE[$target]}" = 0 ]; then spec+=",readonly"; fi
        DOCKER_ARGS+=(--mount "$spec")
    done
    _DOCKER_MOUNT_TARGETS=()
}

docker_readable_file() {
    # docker_readable_file <path as given> <what it is> [--or-pipe]: exits 2 with one line naming the file unless it
    # is a file this user may read, or with --or-pipe anything readable but a folder (a file the script reads
    # itself, such as @<(...)); checked before anything is mounted or run, so the error names it as the user knows it.
    local why=""
    if [ ! -e "$1" ]; then why="not found"
    elif [ -d "$1" ]; then why="a folder, not a file"
    elif [ ! -f "$1" ] && [ "${3:-}" != --or-pipe ]; then why="not a file"
    elif [ ! -r "$1" ]; then why="cannot be read (permission denied)"
    fi
    if [ -n "$why" ]; then
        echo "error: $1: $2: $why" >&2
        exit 2
    fi
}

docker_path_inside() {
    # docker_path_inside <absolute host path> <fallback>: where to mount a host folder. Its own path, unless that
    # is a folder of the image itself (the project in /app, Python in /usr, HOME in /tmp, ...) or one of the
    # places these scripts mount other things (/run/secrets, ...), which the mount would hide: then the fallback,
    # and the stage names that path instead.
    case "$1" in
        / | /app | /app/* | /bin | /bin/* | /boot | /boot/* | /dev | /dev/* | /etc | /etc/* | /lib | /lib/* | \
        /lib64 | /lib64/* | /proc | /proc/* | /root | /run | /run/secrets | /run/secrets/* | /run/io | /run/io/* | \
        /run/profile | /run/profile/* | /run/config | /run/config/* | /run/code_schemes | /run/code_schemes/* | \
        /sbin | /sbin/* | /sys | /sys/* | /tmp | /usr | /usr/* | /var | /var/lib | \
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
    # docker_mount_file <host file> <container path> <what it is>: mounts a file the stage reads (a key), read-only,
    # after docker_readable_file has checked it.
    docker_readable_file "$1" "$3"
    docker_bind "$(absolute_path "$1")" "$2" readonly
}

docker_mount_dir() {
    # docker_mount_dir <host dir> <fallback container path>: creates a folder the stage writes a named file to,
    # mounts it (see _docker_place) and sets DOCKER_PATH_INSIDE to its path inside the container.
    local dir
    mkdir -p "$1"
    dir="$(cd "$1" && pwd -P)"
    if _docker_place "$dir" "$2"; then
        docker_bind "$dir" "$DOCKER_PATH_INSIDE"
    fi
}

docker_config_dirs() {
    # docker_config_dirs <configuration file>: mounts the folder of a configuration given with --config or
    # REDSS_PIPELINE_CONFIG, read-only, and the folder of its code schemes when that lies outside it, each at its own
    # path (see _docker_place), and sets DOCKER_PATH_INSIDE to the file's path inside the container.
    local file dir inside schemes
    docker_readable_file "$1" "configuration file"
    file="$(absolute_path "$1")"
    dir="$(cd "$(dirname "$file")" && pwd -P)"
    if _docker_place "$dir" /run/config; then docker_bind "$dir" "$DOCKER_PATH_INSIDE" readonly; fi
    inside="$DOCKER_PATH_INSIDE/$(basename "$file")"
    if ! command -v python3 >/dev/null 2>&1; then
        echo "warning: no python3 on this machine to read $1: only its folder is mounted, so its code schemes must" \
            "be in that folder" >&2
    else
        schemes="$(config_schemes_dir "$dir/$(basename "$file")")"
        if [ -n "$schemes" ] && [ -d "$schemes" ]; then
            schemes="$(cd "$schemes" && pwd -P)"
            if [ "$schemes" != "$dir" ] && [[ "$schemes" != "$dir"/* ]] && _docker_place "$schemes" /run/code_schemes; then
                if [ "$DOCKER_PATH_INSIDE" != "$schemes" ]; then
                    # The stage finds the schemes by the configuration's own path, so they must keep theirs.
                    echo "error: $1: its code schemes ($schemes) are in a folder the image itself uses; copy" \
                        "them elsewhere, or beside the configuration" >&2
                    exit 2
                fi
                docker_bind "$schemes" "$schemes" readonly
            fi
        fi
    fi
    DOCKER_PATH_INSIDE="$inside"
}

config_schemes_dir() {
    # config_schemes_dir <configuration file>: the folder its code_schemes.directory names (relative to the file's
    # folder), for docker_config_dirs to mount; nothing for a file the stage refuses anyway, with its own one-line
    # error.
    python3 - "$1" 2>/dev/null <<'PYTHON' || true
import json, os, sys
with open(sys.argv[1], encoding="utf-8") as handle:
    directory = json.load(handle)["code_schemes"]["directory"]
print(os.path.join(os.path.dirname(sys.argv[1]), directory))
PYTHON
}

docker_input_file() {
    # docker_input_file <host file> <fallback container path>: mounts a file the stage reads, read-only (see
    # _docker_place), and sets DOCKER_PATH_INSIDE to its path inside the container. A file that is not there is
    # passed on by its own path, unmounted, so the stage's one-line error names it as the user gave it (a folder
    # in its place is mounted, for the stage to say what it is).
    local file
    file="$(absolute_path "$1")"
    if [ ! -e "$file" ]; then
        DOCKER_PATH_INSIDE="$file"
        return 0
    fi
    file="$(cd "$(dirname "$file")" && pwd -P)/$(basename "$file")"
    if _docker_place "$file" "$2"; then
        docker_bind "$file" "$DOCKER_PATH_INSIDE" readonly
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
    # in the container. With DOCKER_STDIN_TEXT set (a secret), the stage reads that text on its standard input
    # (--interactive, through a pipe): it is in no file, no argument and not in the container's environment.
    local entry="$1"; shift
    [ -n "$_DOCKER_IMAGE_BUILT" ] || docker_build_image
    # The container's standard error is a pipe even when this script's is a terminal: say which, so the stage
    # draws its progress bars on a terminal only (in a log they are pages of carriage returns).
    if [ -t 2 ]; then DOCKER_ARGS+=(--env PIPELINE_STDERR_IS_A_TERMINAL=1); fi
    docker_mount_args
    local command=(docker run --rm --init
        --user "$(id -u):$(id -g)"
        --network host
        --workdir /app
        --env HOME=/tmp
        --env PIPELINE_IN_CONTAINER=1
        "${DOCKER_ARGS[@]}")
    if [ -n "$DOCKER_STDIN_TEXT" ]; then
        # A pipe from printf (a builtin: no process list shows the text), not a here-string, which some versions
        # of bash (before 5.1) write to a temporary file.
        exec "${command[@]}" --interactive "$PIPELINE_IMAGE" python "/app/$entry" "$@" \
            < <(printf '%s\n' "$DOCKER_STDIN_TEXT")
    fi
    exec "${command[@]}" "$PIPELINE_IMAGE" python "/app/$entry" "$@"
}
