"""Atomic file writes: a crash or an error never leaves a half-written output.

Every output is written to a temporary file in the destination folder and renamed over the target only when
complete (``os.replace`` is atomic on POSIX within one file system). Stage 3 goes one step further and switches
all of its outputs as one set (:mod:`redss_pipeline.core.output_set`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

__all__ = ["atomic_write_text", "atomic_open", "remove_interrupted_writes"]


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike,
    mode: str = "w",
    *,
    encoding: str | None = "utf-8",
    newline: str | None = None,
    owner_only: bool = False,
) -> Iterator[IO]:
    """Opens a temporary file beside ``path``; on a clean exit it replaces ``path``, on an error it vanishes.

    ``owner_only`` keeps the file readable by its owner only (0600, whatever the umask), for files that hold
    phone numbers; otherwise it gets the usual permissions."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        handle: IO[Any] = (
            os.fdopen(fd, mode) if "b" in mode else os.fdopen(fd, mode, encoding=encoding, newline=newline)
        )
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if not owner_only:
            _give_default_permissions(tmp_name)
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def _give_default_permissions(path: str | os.PathLike) -> None:
    """mkstemp creates files readable by their owner only; an output should get the usual permissions
    (0666 less the umask), like a file opened with open()."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def atomic_write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8", owner_only: bool = False) -> None:
    """Writes ``text`` to ``path`` atomically (newlines written as given); ``owner_only`` as in :func:`atomic_open`."""
    with atomic_open(path, "w", encoding=encoding, newline="", owner_only=owner_only) as handle:
        handle.write(text)


def remove_interrupted_writes(folder: Path, *, shown_from: Path) -> list[str]:
    """Removes the temporary files of writes a killed process left in ``folder`` (``.<name>.<...>.tmp``, as every
    atomic write of the pipeline names them); returns a note for each, naming it relative to ``shown_from``. Call
    holding the data-root lock, so that no write is under way."""
    if not folder.is_dir():
        return []
    notes = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") and entry.name.endswith(".tmp") and entry.is_file():
            entry.unlink()
            notes.append(f"removed {entry.relative_to(shown_from).as_posix()}, left by an interrupted write")
    return notes
