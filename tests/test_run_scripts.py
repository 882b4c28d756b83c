"""The numbered run scripts and the docker-run scripts, as a user calls them.

What the scripts hand to Docker (mounts, arguments, the token on standard input) is checked here with a stand-in
``docker`` program put first on PATH: it records its arguments and what it reads on standard input (and answers
``docker info`` as an engine would) instead of running anything, so these checks need no engine and take
seconds. ``tests/test_docker.py`` runs the same scripts on a real engine.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import stat
import subprocess
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SECRET = "tok-3f1c9a7e5b2d4c6e8f0a1b2c3d4e5f60"

_STAND_IN = """#!/usr/bin/env python3
import json, os, sys
import stat
stdin = sys.stdin.read() if "--interactive" in sys.argv else None
stdin_is_a_pipe = stat.S_ISFIFO(os.fstat(0).st_mode)
with open(os.environ["DOCKER_CALLS"], "a") as log:
    log.write(json.dumps({"argv": sys.argv[1:], "token_env": os.environ.get("RAPID_PRO_TOKEN"), "stdin": stdin,
                          "stdin_is_a_pipe": stdin_is_a_pipe,
                          "token_file_env": os.environ.get("RAPID_PRO_TOKEN_FILE")}) + "\\n")
sys.exit(0)
"""


@pytest.fixture
def docker(tmp_path):
    """A stand-in docker on PATH; returns a function that reads the recorded calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program = bin_dir / "docker"
    program.write_text(_STAND_IN)
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    calls = tmp_path / "docker-calls.jsonl"
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", DOCKER_CALLS=str(calls))
    env.pop("PIPELINE_RUNTIME", None)
    env.pop("RAPID_PRO_TOKEN", None)

    def recorded() -> list[dict]:
        return [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []

    return env, recorded


def _run(args, env, cwd):
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def _docker_run(calls: list[dict]) -> list[str]:
    runs = [c["argv"] for c in calls if c["argv"][:1] == ["run"]]
    assert len(runs) == 1, calls
    return runs[0]


def _volumes(argv: list[str]) -> list[str]:
    """The bind mounts of a ``docker run``, each written ``source:target`` (``:ro`` when read-only)."""
    mounts = []
    for i, a in enumerate(argv):
        if a == "--mount":
            (fields,) = csv.reader([argv[i + 1]])
            spec = dict(field.partition("=")[::2] for field in fields)
            assert spec["type"] == "bind", spec
            mounts.append(f"{spec['source']}:{spec['target']}" + (":ro" if "readonly" in spec else ""))
        assert a != "--volume", argv  # a path with a colon would be split there
    return mounts


def test_auto_runtime_uses_docker_when_an_engine_answers(docker, tmp_path):
    """With an engine answering, stage 1 runs in the project image with the data root mounted at its own path,
    so what the stage prints names the folder the user knows."""
    env, recorded = docker
    data_root = tmp_path / "data root with spaces"
    result = _run([str(PROJECT_ROOT / "run_scripts/1_create_uuid_table.sh"), "data root with spaces"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "runtime: docker (image redss-pipeline)"
    calls = recorded()
    assert calls[0]["argv"] == ["info"]
    assert any(c["argv"][:1] == ["build"] and c["argv"][-1] == str(PROJECT_ROOT) for c in calls)
    argv = _docker_run(calls)
    assert f"{data_root}:{data_root}" in _volumes(argv)
    assert argv[argv.index("--workdir") + 1] == "/app"
    assert argv[-3:] == ["python", "/app/create_uuid_table.py", str(data_root)]


def test_fetch_in_docker_never_puts_the_token_on_a_command_line(docker, tmp_path):
    """A token given as an argument reaches the stage on its standard input: never in an argument, never in a
    file, and never in the container's environment, which ``docker inspect`` shows."""
    env, recorded = docker
    (tmp_path / "root").mkdir()
    result = _run(
        [str(PROJECT_ROOT / "run_scripts/2_fetch_raw_data.sh"), "me@example.org", str(tmp_path / "rp"),
         "http://127.0.0.1:8000", SECRET, str(tmp_path / "root")],
        dict(env, PIPELINE_RUNTIME="docker"), tmp_path,
    )
    assert result.returncode == 0, result.stderr
    calls = recorded()
    argv = _docker_run(calls)
    assert all(SECRET not in arg for c in calls for arg in c["argv"])
    assert "--env" not in argv or all(argv[i + 1] != "RAPID_PRO_TOKEN" for i, a in enumerate(argv) if a == "--env")
    (run,) = [c for c in calls if c["argv"][:1] == ["run"]]
    assert run["token_env"] is None and run["token_file_env"] is None
    assert run["stdin"].strip() == SECRET and run["stdin_is_a_pipe"]  # a pipe: no file holds it, even deleted
    assert _volumes(argv) == [f"{tmp_path}/root:{tmp_path}/root"]  # no secret mounted
    assert argv[-6:] == ["/app/fetch_raw_data.py", "me@example.org", "/tmp/rapid-pro-root", "http://127.0.0.1:8000",
                         "@/dev/stdin", str(tmp_path / "root")]
    assert "--network" in argv and argv[argv.index("--network") + 1] == "host"
    assert SECRET not in result.stdout + result.stderr
    assert (tmp_path / "rp").is_dir()  # <rapid-pro-root> is made, as in 2019


def test_fetch_in_docker_reads_the_token_file_the_argument_names(docker, tmp_path):
    """``@FILE`` is read by the script and handed on like a typed token; it wins over a RAPID_PRO_TOKEN_FILE or
    RAPID_PRO_TOKEN left in the environment, as it does natively."""
    env, recorded = docker
    (tmp_path / "root").mkdir()
    token_file = tmp_path / "token.txt"
    token_file.write_text(SECRET + "\n")
    (tmp_path / "old-token.txt").write_text("0" * 40)
    result = _run(
        [str(PROJECT_ROOT / "run_scripts/2_fetch_raw_data.sh"), "me", "rp", "textit.in", f"@{token_file}", "root"],
        dict(env, PIPELINE_RUNTIME="docker", RAPID_PRO_TOKEN_FILE=str(tmp_path / "old-token.txt"),
             RAPID_PRO_TOKEN="1" * 40), tmp_path,
    )
    assert result.returncode == 0, result.stderr
    (run,) = [c for c in recorded() if c["argv"][:1] == ["run"]]
    assert run["stdin"].strip() == SECRET
    assert "@/dev/stdin" in run["argv"]
    assert _volumes(run["argv"]) == [f"{tmp_path}/root:{tmp_path}/root"]


def test_fetch_in_docker_reads_a_token_from_a_pipe(docker, tmp_path):
    """``@<(pass show ...)`` keeps the token off the disk altogether: a pipe is read like a file, as natively."""
    env, recorded = docker
    (tmp_path / "root").mkdir()
    script = (f"{PROJECT_ROOT}/run_scripts/2_fetch_raw_data.sh me rp textit.in @<(printf '%s\\n' \"$T\") root")
    result = subprocess.run(["bash", "-c", script], env=dict(env, PIPELINE_RUNTIME="docker", T=SECRET), cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    (run,) = [c for c in recorded() if c["argv"][:1] == ["run"]]
    assert run["stdin"].strip() == SECRET


def test_fetch_in_docker_without_a_token_says_so_in_one_line(docker, tmp_path):
    """``-`` with RAPID_PRO_TOKEN unset (and no RAPID_PRO_TOKEN_FILE) is a usage error, and nothing is created: not
    even <rapid-pro-root>, which is made only once the arguments are right."""
    env, recorded = docker
    (tmp_path / "root").mkdir()
    result = _run([str(PROJECT_ROOT / "run_scripts/2_fetch_raw_data.sh"), "me", "rp", "textit.in", "-", "root"],
                  dict(env, PIPELINE_RUNTIME="docker"), tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: no Rapid Pro token: set RAPID_PRO_TOKEN or RAPID_PRO_TOKEN_FILE"]
    assert not (tmp_path / "rp").exists()
    assert recorded() == []


def test_fetch_in_docker_refuses_a_token_file_that_is_not_there_without_creating_it(docker, tmp_path):
    """A missing token file is one line naming it as the user gave it; nothing is created in its place (a bind
    mount of a missing file made a root-owned folder of that name) and nothing is run."""
    env, recorded = docker
    (tmp_path / "root").mkdir()
    result = _run(
        [str(PROJECT_ROOT / "run_scripts/2_fetch_raw_data.sh"), "me", "rp", "textit.in", "@no-such-token", "root"],
        dict(env, PIPELINE_RUNTIME="docker"), tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: no-such-token: Rapid Pro token file: not found"]
    assert not (tmp_path / "no-such-token").exists()
    assert not [c for c in recorded() if c["argv"][:1] == ["run"]]


@pytest.mark.parametrize("token, expected", [
    ("token.txt", "the <rapid-pro-token> argument looks like a server address or a path, not a token"),
    ("https://textit.in", "the <rapid-pro-token> argument looks like a server address or a path, not a token"),
])
def test_fetch_in_docker_refuses_a_path_where_the_token_goes(docker, tmp_path, token, expected):
    """A forgotten ``@`` would send the file's name to the server as the token: refused by name, as natively."""
    env, recorded = docker
    (tmp_path / "root").mkdir()
    (tmp_path / "token.txt").write_text(SECRET)
    result = _run([str(PROJECT_ROOT / "run_scripts/2_fetch_raw_data.sh"), "me", "rp", "textit.in", token, "root"],
                  dict(env, PIPELINE_RUNTIME="docker"), tmp_path)
    assert result.returncode == 2
    assert expected in result.stderr
    assert not [c for c in recorded() if c["argv"][:1] == ["run"]]


@pytest.mark.parametrize("script, args", [
    ("run_scripts/2_fetch_raw_data.sh", ["me", "rp", "textit.in", "-", "typo"]),
    ("run_scripts/3_generate_outputs.sh", ["me", "typo"]),
])
def test_stages_2_and_3_in_docker_refuse_a_data_root_that_does_not_exist(docker, tmp_path, script, args):
    """Only stage 1 makes a data root: a mistyped one is refused in one line, not created, as natively."""
    env, recorded = docker
    result = _run([str(PROJECT_ROOT / script), *args], dict(env, PIPELINE_RUNTIME="docker", RAPID_PRO_TOKEN=SECRET),
                  tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == "error: the data root typo does not exist (stage 1 creates it)"
    assert not (tmp_path / "typo").exists()
    (tmp_path / "typo").write_text("a file")
    result = _run([str(PROJECT_ROOT / script), *args], dict(env, PIPELINE_RUNTIME="docker", RAPID_PRO_TOKEN=SECRET),
                  tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == "error: the data root typo is not a folder"
    assert not [c for c in recorded() if c["argv"][:1] == ["run"]]


@pytest.mark.parametrize("args", [
    ["--import-json"],  # the file forgotten: once taken for a data root named --import-json
    ["--verbose"],
    ["--import-json", "a.json", "--export-json", "b.json", "root"],
    ["--no-such-option", "root"],
])
def test_a_wrong_stage_1_call_in_docker_prints_the_usage_and_creates_nothing(docker, tmp_path, args):
    env, recorded = docker
    result = _run([str(PROJECT_ROOT / "run_scripts/1_create_uuid_table.sh"), *args],
                  dict(env, PIPELINE_RUNTIME="docker"), tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].startswith("usage: 1_create_uuid_table.sh ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin"]  # no data root, no log of docker calls
    assert recorded() == []


def test_a_path_with_a_colon_is_mounted_whole(docker, tmp_path):
    """``--volume`` splits its value at colons; ``--mount`` takes the path as it is."""
    env, recorded = docker
    result = _run([str(PROJECT_ROOT / "run_scripts/1_create_uuid_table.sh"), "CSAP: season 1, 2019"],
                  dict(env, PIPELINE_RUNTIME="docker"), tmp_path)
    assert result.returncode == 0, result.stderr
    argv = _docker_run(recorded())
    assert _volumes(argv) == [f"{tmp_path}/CSAP: season 1, 2019:{tmp_path}/CSAP: season 1, 2019"]


def test_a_configuration_and_a_profile_in_one_folder_are_mounted_once(docker, tmp_path):
    """Docker refuses two mounts at one place: the folder is mounted once, writable for the profile."""
    env, recorded = docker
    (tmp_path / "root").mkdir()
    (tmp_path / "code_schemes").mkdir()
    (tmp_path / "config.json").write_text(json.dumps({"code_schemes": {"directory": "code_schemes"}}))
    result = _run([str(PROJECT_ROOT / "run_scripts/3_generate_outputs.sh"), "--config", "config.json",
                   "--profile-cpu", "prof.txt", "me", "root"], dict(env, PIPELINE_RUNTIME="docker"), tmp_path)
    assert result.returncode == 0, result.stderr
    argv = _docker_run(recorded())
    assert _volumes(argv) == [f"{tmp_path}/root:{tmp_path}/root", f"{tmp_path}:{tmp_path}"]
    assert argv[argv.index("--config") + 1] == f"{tmp_path}/config.json"
    assert argv[argv.index("--profile-cpu") + 1] == f"{tmp_path}/prof.txt"


@pytest.mark.parametrize("config_place", ["beside its schemes", "schemes elsewhere"])
@pytest.mark.parametrize("how", ["--config", "REDSS_PIPELINE_CONFIG"])
def test_a_configuration_of_ones_own_reaches_the_stage_in_docker(docker, tmp_path, config_place, how):
    """Another configuration (``--config`` or ``REDSS_PIPELINE_CONFIG``) is used in Docker as natively: its folder,
    and its code schemes' folder when elsewhere, are mounted read-only and the stage is given the file."""
    env, recorded = docker
    (tmp_path / "root").mkdir()
    config_dir = tmp_path / "my config"
    schemes = config_dir / "code_schemes" if config_place == "beside its schemes" else tmp_path / "shared schemes"
    schemes.mkdir(parents=True)
    directory = "code_schemes" if config_place == "beside its schemes" else str(schemes)
    config_dir.mkdir(exist_ok=True)
    (config_dir / "config.json").write_text(json.dumps({"code_schemes": {"directory": directory}}))
    options = ["--config", "my config/config.json"] if how == "--config" else []
    extra = {} if how == "--config" else {"REDSS_PIPELINE_CONFIG": "my config/config.json"}
    for script, args in (("run_scripts/3_generate_outputs.sh", ["me", "root"]),
                         ("run_scripts/2_fetch_raw_data.sh", ["me", "rp", "textit.in", "-", "root"])):
        (tmp_path / "docker-calls.jsonl").unlink(missing_ok=True)
        result = _run([str(PROJECT_ROOT / script), *options, *args],
                      dict(env, PIPELINE_RUNTIME="docker", RAPID_PRO_TOKEN=SECRET, **extra), tmp_path)
        assert result.returncode == 0, result.stderr
        argv = _docker_run(recorded())
        expected = [f"{tmp_path}/root:{tmp_path}/root", f"{config_dir}:{config_dir}:ro"]
        if config_place == "schemes elsewhere":
            expected.append(f"{schemes}:{schemes}:ro")
        assert _volumes(argv) == expected
        assert argv[argv.index("--config") + 1] == f"{config_dir}/config.json"


def test_uuid_table_export_in_docker_mounts_the_target_folder(docker, tmp_path):
    """The export is written atomically (renamed into place), so the target's folder is mounted, not the file;
    at its own path, so the stage names the file the user asked for."""
    env, recorded = docker
    result = _run([str(PROJECT_ROOT / "run_scripts/1_create_uuid_table.sh"), "--export-json", "out/table.json", "root"],
                  dict(env, PIPELINE_RUNTIME="docker"), tmp_path)
    assert result.returncode == 0, result.stderr
    argv = _docker_run(recorded())
    assert f"{tmp_path}/out:{tmp_path}/out" in _volumes(argv)
    assert argv[-4:] == ["/app/create_uuid_table.py", "--export-json", f"{tmp_path}/out/table.json", f"{tmp_path}/root"]
    assert not (tmp_path / "out" / "table.json").exists()  # nothing left behind by the script itself


def test_a_folder_inside_the_data_root_is_reached_through_its_mount(docker, tmp_path):
    """An export into the data root's UUIDs/ and a profile under its Outputs/ get no mount of their own: Docker
    refuses a second mount of one folder, and a mount inside the data root would split it in two (a file could not
    be renamed from the one to the other). ``--verbose`` reaches the stage."""
    env, recorded = docker
    result = _run([str(PROJECT_ROOT / "run_scripts/1_create_uuid_table.sh"), "--export-json", "root/UUIDs/ids.json",
                   "--verbose", "root"], dict(env, PIPELINE_RUNTIME="docker"), tmp_path)
    assert result.returncode == 0, result.stderr
    argv = _docker_run(recorded())
    assert _volumes(argv) == [f"{tmp_path}/root:{tmp_path}/root"]
    assert argv[-5:] == ["/app/create_uuid_table.py", "--verbose", "--export-json", f"{tmp_path}/root/UUIDs/ids.json",
                         f"{tmp_path}/root"]

    (tmp_path / "docker-calls.jsonl").unlink()
    result = _run([str(PROJECT_ROOT / "run_scripts/3_generate_outputs.sh"), "--profile-cpu", "root/Outputs/p.txt",
                   "me", "root"], dict(env, PIPELINE_RUNTIME="docker"), tmp_path)
    assert result.returncode == 0, result.stderr
    argv = _docker_run(recorded())
    assert _volumes(argv) == [f"{tmp_path}/root:{tmp_path}/root"]
    assert argv[-5:] == ["/app/generate_outputs.py", "--profile-cpu", f"{tmp_path}/root/Outputs/p.txt", "me",
                         f"{tmp_path}/root"]


def test_uuid_table_import_in_docker_mounts_the_file_read_only_at_its_own_path(docker, tmp_path):
    """The 2019 table is mounted read-only where it is (a path with ``..`` resolved), so an error names it; a file
    that is not there is passed on unmounted, for the stage to say so by the path the user gave."""
    env, recorded = docker
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "phone_uuids.json").write_text("{}")
    (tmp_path / "work").mkdir()
    result = _run([str(PROJECT_ROOT / "run_scripts/1_create_uuid_table.sh"), "--import-json",
                   "../in/phone_uuids.json", "root"], dict(env, PIPELINE_RUNTIME="docker"), tmp_path / "work")
    assert result.returncode == 0, result.stderr
    argv = _docker_run(recorded())
    table = f"{tmp_path}/in/phone_uuids.json"
    assert f"{table}:{table}:ro" in _volumes(argv)
    assert argv[-4:] == ["/app/create_uuid_table.py", "--import-json", table, f"{tmp_path}/work/root"]

    (tmp_path / "docker-calls.jsonl").unlink()
    result = _run([str(PROJECT_ROOT / "run_scripts/1_create_uuid_table.sh"), "--import-json", "missing.json", "root"],
                  dict(env, PIPELINE_RUNTIME="docker"), tmp_path)
    assert result.returncode == 0, result.stderr
    argv = _docker_run(recorded())
    assert _volumes(argv) == [f"{tmp_path}/root:{tmp_path}/root"]
    assert argv[-4:] == ["/app/create_uuid_table.py", "--import-json", f"{tmp_path}/missing.json", f"{tmp_path}/root"]


def test_generate_in_docker_passes_options_and_ptrace_for_profiling(docker, tmp_path):
    """Stage 3 options reach the container; profiling adds SYS_PTRACE and a writable folder for the profile."""
    env, recorded = docker
    key = tmp_path / "key.json"
    key.write_text("{}")
    (tmp_path / "root").mkdir()
    result = _run(
        [str(PROJECT_ROOT / "run_scripts/3_generate_outputs.sh"), "--profile-cpu", "prof/out.txt",
         "--drive-upload", str(key), "CSAP/Outputs", "me", "root"],
        dict(env, PIPELINE_RUNTIME="docker"), tmp_path,
    )
    assert result.returncode == 0, result.stderr
    argv = _docker_run(recorded())
    assert argv[argv.index("--cap-add") + 1] == "SYS_PTRACE"
    assert f"{tmp_path}/prof:{tmp_path}/prof" in _volumes(argv)
    assert f"{key}:/run/secrets/drive-service-account.json:ro" in _volumes(argv)
    assert argv[-8:] == [
        "/app/generate_outputs.py", "--drive-upload", "/run/secrets/drive-service-account.json", "CSAP/Outputs",
        "--profile-cpu", f"{tmp_path}/prof/out.txt", "me", f"{tmp_path}/root",
    ]


@pytest.mark.parametrize("host_path, inside", [
    ("/home/team/csap data", "/home/team/csap data"),
    ("/srv/csap", "/srv/csap"),
    ("/tmp/csap", "/tmp/csap"),
    ("/tmpdata", "/tmpdata"),
    ("/var/data/csap", "/var/data/csap"),
    ("/run/media/amina/USB/csap", "/run/media/amina/USB/csap"),  # a desktop's removable drive
    ("/run/secrets/x", "/data"),  # where the scripts mount secrets
    ("/app", "/data"),  # the image's own folders would be hidden by the mount
    ("/app/data root", "/data"),
    ("/usr/local/csap", "/data"),
    ("/tmp", "/data"),
    ("/", "/data"),
])
def test_a_folder_is_mounted_at_its_own_path_unless_the_image_needs_that_path(host_path, inside):
    script = (f"source {PROJECT_ROOT}/run_scripts/lib/runtime.sh && source {PROJECT_ROOT}/run_scripts/lib/docker.sh"
              ' && docker_path_inside "$1" /data')
    result = subprocess.run(["bash", "-c", script, "-", host_path], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{inside}\n"


@pytest.mark.parametrize("data_root, data_root_inside, path, expected", [
    ("/srv/csap", "/srv/csap", "/srv/csap/UUIDs", "through /srv/csap/UUIDs"),
    ("/srv/csap", "/srv/csap", "/srv/csap", "through /srv/csap"),
    ("/srv/csap", "/srv/csap", "/srv/csap-exports", "mount /srv/csap-exports"),  # a sibling, not inside
    ("/usr/local/csap", "/data", "/usr/local/csap/UUIDs", "through /data/UUIDs"),
    ("/usr/local/csap", "/data", "/data", "mount /run/io"),  # its own path is where the data root went
])
def test_a_path_inside_the_data_root_gets_no_mount_of_its_own(data_root, data_root_inside, path, expected):
    script = (f"source {PROJECT_ROOT}/run_scripts/lib/runtime.sh && source {PROJECT_ROOT}/run_scripts/lib/docker.sh"
              ' && _DOCKER_DATA_ROOT_HOST="$1" && DOCKER_DATA_ROOT="$2"'
              ' && if _docker_place "$3" /run/io; then echo "mount $DOCKER_PATH_INSIDE";'
              ' else echo "through $DOCKER_PATH_INSIDE"; fi')
    result = subprocess.run(["bash", "-c", script, "-", data_root, data_root_inside, path], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{expected}\n"


def test_native_runtime_is_announced_and_works_from_any_directory(tmp_path):
    """PIPELINE_RUNTIME=native runs in .venv; relative data roots are taken from the caller's directory."""
    env = dict(os.environ, PIPELINE_RUNTIME="native")
    result = _run([str(PROJECT_ROOT / "run_scripts/1_create_uuid_table.sh"), "my root"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"runtime: native ({PROJECT_ROOT}/.venv)"
    assert (tmp_path / "my root/UUIDs/phone_uuids.sqlite").is_file()
    again = _run([str(PROJECT_ROOT / "run_scripts/1_create_uuid_table.sh"), "my root"], env, tmp_path)
    assert again.returncode == 1
    assert "refusing to overwrite it" in again.stderr


def test_a_token_argument_is_not_on_the_native_fetchs_command_line_and_a_signal_to_the_script_stops_it(tmp_path):
    """Every user of the machine can list command lines (ps): natively, as in Docker, a token given as an argument
    reaches the fetch in its environment. The fetch takes the script's place, so stopping the script (kill, timeout)
    stops the fetch: it went on alone, holding the data root's lock. The server accepts the connection and never
    answers, so the fetch waits while its command line is read."""
    env = dict(os.environ, PIPELINE_RUNTIME="native")
    assert _run([str(PROJECT_ROOT / "run_scripts/1_create_uuid_table.sh"), "root"], env, tmp_path).returncode == 0
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        fetch = subprocess.Popen(
            [str(PROJECT_ROOT / "run_scripts/2_fetch_raw_data.sh"), "me@example.org", "rp",
             f"http://127.0.0.1:{server.getsockname()[1]}", SECRET, "root"],
            env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            connection, _ = server.accept()  # the fetch has read its arguments and is asking for the workspace
            with connection:
                command_line = Path(f"/proc/{fetch.pid}/cmdline").read_bytes()
                fetch.terminate()  # SIGTERM to the script's process, as kill or timeout send it
                connection.settimeout(30)
                while connection.recv(4096):  # the request, then the end of the connection once the fetch is gone
                    pass
            assert fetch.wait(timeout=30) == -signal.SIGTERM
        finally:
            try:  # whatever is left of the session, the script's children among it
                os.killpg(fetch.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            fetch.wait()
    assert b"fetch_raw_data.py" in command_line
    assert SECRET.encode() not in command_line


@pytest.mark.parametrize(
    "script, args",
    [
        ("run_scripts/1_create_uuid_table.sh", []),
        ("run_scripts/2_fetch_raw_data.sh", ["user", "root"]),
        ("run_scripts/3_generate_outputs.sh", ["only-one"]),
        ("docker-run-fetch.sh", ["user"]),
        ("docker-run-generate.sh", ["--drive-upload", "x"]),
    ],
)
def test_wrong_calls_print_usage_and_exit_2(script, args, tmp_path):
    """A wrong argument count prints the usage text and exits with status 2 (2019 exited 0)."""
    result = _run([str(PROJECT_ROOT / script), *args], dict(os.environ, PIPELINE_RUNTIME="native"), tmp_path)
    assert result.returncode == 2
    assert "usage:" in result.stderr


@pytest.mark.parametrize("script, args, runtime", [
    ("run_scripts/1_create_uuid_table.sh", [""], "native"),
    ("run_scripts/1_create_uuid_table.sh", [""], "docker"),
    ("run_scripts/2_fetch_raw_data.sh", ["me@example.org", "rp", "https://textit.in", "-", " "], "native"),
    ("run_scripts/2_fetch_raw_data.sh", ["me@example.org", "rp", "https://textit.in", "-", " "], "docker"),
    ("run_scripts/3_generate_outputs.sh", ["me@example.org", ""], "native"),
    ("run_scripts/3_generate_outputs.sh", ["me@example.org", ""], "docker"),
    ("run_scripts/3_generate_outputs.sh", ["", "root"], "native"),
    ("run_scripts/3_generate_outputs.sh", ["", "root"], "docker"),
    ("run_scripts/2_fetch_raw_data.sh", [" ", "rp", "https://textit.in", "-", "root"], "docker"),
])
def test_an_empty_argument_is_refused_before_anything_is_created(docker, tmp_path, script, args, runtime):
    """An unset shell variable passes "": as a data root it meant the current folder (stage 1 made a UUID table
    there), as a user no one. Refused as a usage error; nothing is written in the current folder, nothing run."""
    env, recorded = docker
    env = dict(env, RAPID_PRO_TOKEN=SECRET) if runtime == "docker" else dict(env, PIPELINE_RUNTIME="native")
    work = tmp_path / "work"
    work.mkdir()
    (work / "root").mkdir()
    result = subprocess.run([str(PROJECT_ROOT / script), *args], env=env, cwd=work, capture_output=True, text=True,
                            timeout=120, input=f"{SECRET}\n")
    assert result.returncode == 2, result.stderr
    assert "must not be empty (an unset shell variable?)" in result.stderr
    assert sorted(p.name for p in work.iterdir()) == ["root"] and not any((work / "root").iterdir())
    assert not [c for c in recorded() if c["argv"][:1] == ["run"]]


def test_unknown_runtime_is_refused(tmp_path):
    """PIPELINE_RUNTIME accepts only docker or native."""
    result = _run(
        [str(PROJECT_ROOT / "run_scripts/1_create_uuid_table.sh"), "root"],
        dict(os.environ, PIPELINE_RUNTIME="podman"), tmp_path,
    )
    assert result.returncode != 0
    assert "PIPELINE_RUNTIME must be docker or native" in result.stderr


def test_tests_run_the_numbered_scripts_natively_even_when_an_engine_answers(docker, tmp_path):
    """The suite's autouse fixture forces PIPELINE_RUNTIME=native for tests not marked docker, so a Docker engine
    that starts answering on the machine does not switch other tests to containers."""
    env, recorded = docker
    env["PIPELINE_RUNTIME"] = os.environ["PIPELINE_RUNTIME"]
    result = _run([str(PROJECT_ROOT / "run_scripts/1_create_uuid_table.sh"), "root"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("runtime: native")
    assert recorded() == []


def test_a_script_called_through_a_link_finds_the_project(tmp_path):
    """A link to a numbered script (e.g. in ~/bin) runs it from the project it links to."""
    link = tmp_path / "links" / "create-uuid-table"
    link.parent.mkdir()
    link.symlink_to(PROJECT_ROOT / "run_scripts" / "1_create_uuid_table.sh")
    env = dict(os.environ, PIPELINE_RUNTIME="native")
    result = _run([str(link), "root"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "root" / "UUIDs" / "phone_uuids.sqlite").is_file()
