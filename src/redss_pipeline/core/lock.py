"""One stage at a time per data root: an exclusive lock every stage takes before it reads or writes anything.

Without it two stage-3 runs mixed their outputs (both exiting 0), a stage 3 during a stage-2 rebuild read raw
files from both fetches, and two fetches failed with a message that read like table corruption.

The lock is ``fcntl.flock`` on ``<data-root>/.pipeline.lock``. The kernel releases it when the process ends, however
it ends (a crash, ``kill -9``, a closed terminal), so there is never a stale lock to remove by hand. The holder
writes who it is into the file (stage, pid, host, login, the stage's ``<user>`` argument, start time); a second
process that finds the lock taken stops at once with one line saying who holds it, before touching anything.
The file itself stays in place: deleting it would let two processes each lock a different file.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import getpass
import json
import os
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from redss_pipeline.core.errors import PipelineError, UsageError

__all__ = ["LOCK_FILE_NAME", "LockError", "data_root_lock"]

#: Set to 1 by the run scripts in the containers they start (see run_scripts/lib/docker.sh).
CONTAINER_ENV = "PIPELINE_IN_CONTAINER"

LOCK_FILE_NAME = ".pipeline.lock"


class LockError(PipelineError):
    """Another pipeline process is working on the data root, or the lock file cannot be created."""

    traceback_helps = False  # the message names the holder, or the lock file and the system's reason


@contextlib.contextmanager
def data_root_lock(data_root: str | os.PathLike, *, stage: str, user: str | None = None,
                   create_root: bool = False) -> Iterator[Path]:
    """Holds the data root's lock for the ``with`` block; yields the lock file's path.

    ``stage`` names the holder for others (e.g. ``"stage 3 (generate outputs)"``), ``user`` is the stage's
    ``<user>`` argument when it has one. ``create_root`` creates a missing data root (stage 1 starts one);
    otherwise a missing data root is a usage error. Raises :class:`LockError` when another process holds it.
    """
    root = Path(data_root)
    if create_root:
        root.mkdir(parents=True, exist_ok=True)
    elif not root.is_dir():
        raise UsageError(f"the data root {root} does not exist")
    path = root / LOCK_FILE_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as error:
        # Name the cause: the file exists but may not be written (another user's, or made read-only), or the data
        # root does not let a file be created in it.
        if path.is_dir():
            cause = "a folder has its name; move or rename the folder"
        elif os.path.lexists(path):
            cause = "the file exists and cannot be opened for writing (another user's, or read-only?)"
        else:
            cause = "the data root must be writable"
        raise LockError(f"cannot open the lock file: {error.strerror} ({cause})", path=path) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise LockError(f"cannot lock the data root: {error.strerror}", path=path) from None
            raise LockError(_busy_message(root, _read_holder(fd)), path=None) from None
        _write_holder(fd, stage=stage, user=user)
        try:
            yield path
        finally:
            # Say nothing stale to the next reader; the lock itself goes with the descriptor.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
    finally:
        os.close(fd)


def _write_holder(fd: int, *, stage: str, user: str | None) -> None:
    holder = {
        "stage": stage,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "login": _login(),
        "user": user,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        # Inside the project's Docker image (the run scripts say so), the pid is the container's own, which no
        # process list of the machine shows.
        "container": os.environ.get(CONTAINER_ENV) == "1",
    }
    data = (json.dumps(holder) + "\n").encode("utf-8")
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


def _read_holder(fd: int) -> dict | None:
    try:
        data = os.pread(fd, 4096, 0)
        holder = json.loads(data.decode("utf-8"))
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _busy_message(root: Path, holder: dict | None) -> str:
    if holder is None:
        return (f"the data root {root} is in use by another pipeline process (it has not said which yet); "
                "wait for it to finish and run again")
    place = "in a Docker container (docker ps lists it) on" if holder.get("container") else "on"
    who = f"pid {holder.get('pid')} {place} {holder.get('host')}, login {holder.get('login')}"
    if holder.get("user"):
        who += f", user {holder['user']}"
    return (f"the data root {root} is in use by {holder.get('stage', 'another stage')} ({who}, started "
            f"{holder.get('started')}); wait for it to finish and run again")


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"
