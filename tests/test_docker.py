"""The Docker path for real: the project's image built and the three stages run in containers by the project's own
scripts, against the bundled Rapid Pro-compatible server on 127.0.0.1, compared cell for cell with a native run.

Needs a Docker engine that answers (``docker info``); the tests are marked ``docker`` and skipped otherwise.
``run_scripts/test.sh`` runs them only when an engine answers; CI starts one first where the machine allows it.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from redss_pipeline.demo.rapid_pro_server import RapidProServer
from redss_pipeline.demo.synthetic_workspace import generate_workspace

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# The scripts' image, under a name of this checkout's own (PIPELINE_IMAGE), so that test runs of two checkouts on
# one engine never retag each other's image between a build and the check that the next build is cached.
IMAGE = f"redss-pipeline-test:{hashlib.sha256(str(PROJECT_ROOT).encode()).hexdigest()[:12]}"
TOKEN = "docker-test-token-5b8e1f0c7a2d49e6b3c1"


def _engine_answers() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(not _engine_answers(), reason="no Docker engine answers (docker info)"),
]


def _script(name: str, *args: str | Path, runtime: str, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    environment = {name: value for name, value in os.environ.items() if name != "RAPID_PRO_TOKEN"}
    environment.update(PIPELINE_RUNTIME=runtime, PIPELINE_IMAGE=IMAGE, **(env or {}))
    result = subprocess.run([str(PROJECT_ROOT / "run_scripts" / name), *map(str, args)], env=environment, cwd=cwd,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{name} ({runtime}) failed:\n{result.stdout}\n{result.stderr}"
    assert result.stdout.splitlines()[0].startswith(f"runtime: {runtime}")
    return result


def _build_line(stderr: str) -> str:
    (line,) = [line for line in stderr.splitlines() if line.startswith(f"image {IMAGE} ")]
    return line


class _ContainerWatcher:
    """Inspects every container of the image while it runs (the scripts remove containers when they end)."""

    def __init__(self) -> None:
        self.inspected: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> _ContainerWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.is_set():
            ids = subprocess.run(["docker", "ps", "--quiet", "--no-trunc", "--filter", f"ancestor={IMAGE}"],
                                 capture_output=True, text=True).stdout.split()
            for container in ids:
                if container not in self.inspected:
                    result = subprocess.run(["docker", "inspect", container], capture_output=True, text=True)
                    if result.returncode == 0:  # it may have ended between ps and inspect
                        self.inspected[container] = result.stdout
            time.sleep(0.05)


def _read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.reader(file))


def test_the_pipeline_in_docker_gives_the_native_outputs(tmp_path, capsys):
    report: list[str] = []
    docker_root, native_root = tmp_path / "docker root", tmp_path / "native root"
    workspace = generate_workspace(seed=2019, size=1500)
    with RapidProServer(workspace, token=TOKEN) as server, _ContainerWatcher() as watcher:
        started = time.monotonic()
        stage1 = _script("1_create_uuid_table.sh", docker_root, runtime="docker")
        report.append(f"first build: {_build_line(stage1.stderr)} (stage 1 with it: {time.monotonic() - started:.1f} s)")

        started = time.monotonic()
        stage2 = _script("2_fetch_raw_data.sh", "docker@example.org", tmp_path / "rapid-pro-root", server.url, "-",
                         docker_root, runtime="docker", env={"RAPID_PRO_TOKEN": TOKEN})
        report.append(f"stage 2 in docker: {time.monotonic() - started:.1f} s; {_build_line(stage2.stderr)}")
        assert "up to date" in _build_line(stage2.stderr)

        started = time.monotonic()
        stage3 = _script("3_generate_outputs.sh", "docker@example.org", docker_root, runtime="docker")
        # The data root is mounted at its own path, so the stage names the files as they are on this machine.
        assert f"Analysis report: {docker_root}/Outputs/Analysis/report.html" in stage3.stdout + stage3.stderr
        report.append(f"stage 3 in docker: {time.monotonic() - started:.1f} s; {_build_line(stage3.stderr)}")

        # The native run uses the same UUID table, so both give every contact the same uid.
        native_root.mkdir()
        shutil.copytree(docker_root / "UUIDs", native_root / "UUIDs")
        _script("2_fetch_raw_data.sh", "native@example.org", tmp_path / "rapid-pro-root", server.url, "-",
                native_root, runtime="native", env={"RAPID_PRO_TOKEN": TOKEN})
        _script("3_generate_outputs.sh", "native@example.org", native_root, runtime="native")

        # After a native run (which may leave src/*.egg-info, caches, ...) the image is still fully cached.
        image_before = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", IMAGE],
                                      capture_output=True, text=True, check=True).stdout
        export = _script("1_create_uuid_table.sh", "--export-json", tmp_path / "phone_uuids.json", docker_root,
                         runtime="docker")
        image_after = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", IMAGE],
                                     capture_output=True, text=True, check=True).stdout
        report.append(f"second build (after the native run): {_build_line(export.stderr)}")
        _script("1_create_uuid_table.sh", "--export-json", tmp_path / "native_phone_uuids.json", native_root,
                runtime="native")
        assert "up to date (every build step cached" in _build_line(export.stderr)
        assert image_after == image_before

    # The table exported in a container (written atomically into a mounted folder) is the native export.
    exported = json.loads((tmp_path / "phone_uuids.json").read_text(encoding="utf-8"))
    assert exported and exported == json.loads((tmp_path / "native_phone_uuids.json").read_text(encoding="utf-8"))

    # Outputs: every CSV the stages wrote, cell for cell.
    docker_csvs = sorted(p.relative_to(docker_root) for p in (docker_root / "Outputs").rglob("*.csv"))
    native_csvs = sorted(p.relative_to(native_root) for p in (native_root / "Outputs").rglob("*.csv"))
    assert docker_csvs == native_csvs
    assert {"csap_mes.csv", "csap_ind.csv", "csap_prod.csv"} <= {p.name for p in docker_csvs}
    cells = 0
    for relative in docker_csvs:
        in_docker, native = _read_csv(docker_root / relative), _read_csv(native_root / relative)
        assert in_docker == native, relative
        cells += sum(len(row) for row in in_docker)
    rows = {p.name: len(_read_csv(docker_root / p)) - 1 for p in docker_csvs if p.name.startswith("csap_")}
    report.append(f"comparison: {len(docker_csvs)} CSV files, {cells:,} cells identical in docker and native "
                  f"({', '.join(f'{name} {count:,} rows' for name, count in sorted(rows.items()))})")
    # The Coda files: same messages, ids and texts.
    for coda in sorted((docker_root / "Outputs" / "Coda Files").glob("*.json")):
        def messages(path: Path) -> list[tuple[str, str]]:
            return [(m["MessageID"], m["Text"]) for m in json.loads(path.read_text(encoding="utf-8"))]
        assert messages(coda) == messages(native_root / "Outputs" / "Coda Files" / coda.name), coda.name

    # The data root written by the containers belongs to the calling user.
    paths = [docker_root, *docker_root.rglob("*")]
    foreign = [p for p in paths if (p.lstat().st_uid, p.lstat().st_gid) != (os.getuid(), os.getgid())]
    assert foreign == []
    report.append(f"ownership: all {len(paths)} paths of the docker data root belong to uid {os.getuid()}, "
                  f"gid {os.getgid()}")

    # No token in the containers' configuration or in the image's history.
    fetch_containers = [c for c in watcher.inspected.values() if "fetch_raw_data.py" in c]
    assert fetch_containers, "the stage 2 container was never seen running"
    for inspected in watcher.inspected.values():
        assert TOKEN not in inspected
        (config,) = json.loads(inspected)
        assert config["Config"]["User"] == f"{os.getuid()}:{os.getgid()}"
    history = subprocess.run(["docker", "history", "--no-trunc", IMAGE], capture_output=True, text=True, check=True)
    image = subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, text=True, check=True)
    assert TOKEN not in history.stdout + image.stdout
    report.append(f"secrets: token absent from docker inspect of {len(watcher.inspected)} running containers "
                  f"(stage 2 among them) and from docker history/inspect of the image")

    with capsys.disabled():
        print("\n" + "\n".join(f"  docker test: {line}" for line in report))
