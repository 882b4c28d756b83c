"""What a failure of the disk or of an SQLite file means to the person running a stage, in a few words.

A full disk, a read-only folder, a file of another user, a damaged database page or a file that is not UTF-8
are caused by the machine or by a person, not by the pipeline, so each must read as one line saying what to do
(issue: "every failure a user can cause is one line"). The modules that know which file they were writing turn
these into :class:`~redss_pipeline.core.errors.PipelineError` subclasses naming it; the command-line wrapper
uses the same words for anything that slipped through.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

from redss_pipeline.core.data_root import FOLDER_IN_THE_WAY

__all__ = ["describe_os_error", "describe_sqlite_error", "sqlite_file_is_damaged"]

_OS_MEANINGS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EFBIG: "the file would be larger than allowed",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied (the folder or file is read-only or belongs to another user)",
    errno.EPERM: "operation not permitted (the folder or file is read-only or belongs to another user)",
    errno.EIO: "the disk reported an input/output error",
    errno.EISDIR: FOLDER_IN_THE_WAY,
    errno.ENOTDIR: "a file is where one of its folders must be; move or rename that file",
}


def describe_os_error(error: OSError) -> str:
    """``[Errno 28] No space left on device`` -> ``the disk is full``; other errors keep their own text."""
    meaning = _OS_MEANINGS.get(error.errno) if error.errno is not None else None
    return meaning or error.strerror or str(error)


def sqlite_file_is_damaged(error: sqlite3.Error) -> bool:
    """True when SQLite says the file itself is damaged or is no database (not when it cannot write it)."""
    text = str(error).lower()
    return "malformed" in text or "not a database" in text or "corrupt" in text


def describe_sqlite_error(error: sqlite3.Error, path: str | os.PathLike[str] | None = None) -> str:
    """SQLite's message in the words of :func:`describe_os_error` where it means the same thing. With the
    database's ``path``, a folder that cannot be written is named as the cause (SQLite needs to write beside a
    database, for its journal, even to read it)."""
    text = str(error)
    lowered = text.lower()
    if path is not None and not sqlite_file_is_damaged(error):
        folder = Path(path).parent
        if folder.is_dir() and not os.access(folder, os.W_OK):
            return "its folder is read-only (or not writable by you)"
    if "disk is full" in lowered or "database or disk is full" in lowered:
        return "the disk is full"
    if "readonly" in lowered or "read-only" in lowered:
        return "the folder or file is read-only (or belongs to another user)"
    if "unable to open" in lowered:
        return "it cannot be opened (is its folder readable and writable?)"
    if "disk i/o error" in lowered:
        return "the disk reported an input/output error (is the folder writable, the disk full?)"
    if sqlite_file_is_damaged(error):
        return f"the file is damaged ({text})"
    if "locked" in lowered or "busy" in lowered:
        return f"another program is using it ({text})"
    return text
