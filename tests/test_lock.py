"""One stage at a time per data root: every stage refuses, with one line naming the holder, while another process
holds the data root's lock, and a killed holder releases it (issue 12 item 6)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from redss_pipeline.core.lock import LockError, data_root_lock

PROJECT_ROOT = Path(__file__).resolve().parents[1]

_HOLDER = """
import sys, time
from redss_pipeline.core.lock import data_root_lock
with data_root_lock(sys.argv[1], stage="stage 2 (fetch raw data)", user="fetcher@example.org"):
    print("held", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def holder(tmp_path):
    """Another process holding the lock of ``tmp_path / 'root'`` as stage 2 would."""
    root = tmp_path / "root"
    root.mkdir()
    process = subprocess.Popen([sys.executable, "-c", _HOLDER, str(root)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    yield root, process
    if process.poll() is None:
        process.kill()
    process.wait()
    process.stdout.close()


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(PROJECT_ROOT / script), *args], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, PIPELINE_RUNTIME="native"))


def _error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error: ")]


def test_a_second_holder_is_told_who_holds_the_lock(holder):
    root, process = holder
    with pytest.raises(LockError) as caught:
        with data_root_lock(root, stage="stage 3 (generate outputs)"):
            pytest.fail("the lock was granted twice")
    message = str(caught.value)
    assert "in use by stage 2 (fetch raw data)" in message
    assert f"pid {process.pid}" in message
    assert "user fetcher@example.org" in message
    assert "started 20" in message


def test_a_holder_in_a_container_is_said_to_be_there(tmp_path):
    """A stage in the project's Docker image has the container's own pid, which the machine's process list does
    not show: the line says where to look."""
    root = tmp_path / "root"
    root.mkdir()
    process = subprocess.Popen([sys.executable, "-c", _HOLDER, str(root)], stdout=subprocess.PIPE, text=True,
                               env=dict(os.environ, PIPELINE_IN_CONTAINER="1"))
    try:
        assert process.stdout.readline().strip() == "held"
        with pytest.raises(LockError, match=rf"\(pid {process.pid} in a Docker container \(docker ps lists it\) on "):
            with data_root_lock(root, stage="stage 3 (generate outputs)"):
                pytest.fail("the lock was granted twice")
    finally:
        process.kill()
        process.wait()
        process.stdout.close()


def test_a_killed_holder_releases_the_lock(holder):
    root, process = holder
    process.send_signal(signal.SIGKILL)
    process.wait()
    with data_root_lock(root, stage="stage 3 (generate outputs)") as lock_file:
        assert "stage 3 (generate outputs)" in lock_file.read_text()
    assert lock_file.read_text() == ""  # released: nothing stale left to read


def test_the_lock_is_released_after_the_block(tmp_path):
    with data_root_lock(tmp_path, stage="stage 1"):
        pass
    with data_root_lock(tmp_path, stage="stage 1"):
        pass


def test_stage_3_refuses_while_another_stage_holds_the_data_root(holder):
    root, process = holder
    result = _run("generate_outputs.py", "someone@example.org", str(root))
    assert result.returncode == 1, result.stderr
    (line,) = _error_lines(result)
    assert f"in use by stage 2 (fetch raw data) (pid {process.pid}" in line
    assert "--verbose" not in result.stderr  # the line says all there is: no traceback would help
    assert not (root / "Outputs").exists() and not (root / "Coded Coda Files").exists()


def test_stage_2_refuses_while_another_stage_holds_the_data_root(holder, tmp_path):
    root, process = holder
    (tmp_path / "token").write_text("t0k")
    # The server address is never contacted: the lock is taken first.
    result = _run("fetch_raw_data.py", "someone@example.org", str(tmp_path / "rp-root"), "http://127.0.0.1:9",
                  f"@{tmp_path / 'token'}", str(root))
    assert result.returncode == 1, result.stderr
    (line,) = _error_lines(result)
    assert f"in use by stage 2 (fetch raw data) (pid {process.pid}" in line
    assert sorted(p.name for p in root.iterdir()) == [".pipeline.lock"]


def test_stage_1_refuses_while_another_stage_holds_the_data_root(holder):
    root, process = holder
    result = _run("create_uuid_table.py", str(root))
    assert result.returncode == 1, result.stderr
    (line,) = _error_lines(result)
    assert f"pid {process.pid}" in line
    assert not (root / "UUIDs").exists()


def test_stage_1_creates_a_missing_data_root_and_locks_it(tmp_path):
    result = _run("create_uuid_table.py", str(tmp_path / "new root"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "new root" / "UUIDs" / "phone_uuids.sqlite").is_file()


def test_a_lock_file_that_cannot_be_opened_is_named_for_what_it_is(tmp_path):
    """The data root is writable but its lock file cannot be opened (here a folder took its name): the message
    says so instead of asking for a writable data root."""
    (tmp_path / ".pipeline.lock").mkdir()
    with pytest.raises(LockError) as raised:
        with data_root_lock(tmp_path, stage="stage 3 (generate outputs)"):
            pass
    assert str(raised.value) == (f"{tmp_path / '.pipeline.lock'}: cannot open the lock file: Is a directory (a folder "
                                 "has its name; move or rename the folder)")
