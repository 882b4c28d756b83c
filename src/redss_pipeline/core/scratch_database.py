"""A run's scratch database: run-wide state that grows with the data, kept on disk instead of in memory.

Stage 3 holds one chunk of respondents at a time, but a few things span the whole run and grow with it: the
Coda exports (one entry per distinct text) and the ICR candidates (one per answer). Held in Python objects they
would make the peak memory grow with the data root, so they live in one SQLite database per run instead, whose
page cache (:data:`CACHE_MIB`) is all the memory it takes.

The database is a temporary file of the system's temporary folder (``TMPDIR``). Nothing in it needs to survive
the run, so it has no journal and is never synced, and the file is unlinked as soon as SQLite has opened it: its
one private connection never needs the name again, and the operating system frees the space when the
connection closes, however the run ends (success, error, Ctrl-C, or a killed process).

A full disk, a read-only temporary folder or any other SQLite failure is a :class:`ScratchDatabaseError`: one
line naming the folder and saying what to do.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from redss_pipeline.core.disk_errors import describe_os_error, describe_sqlite_error
from redss_pipeline.core.errors import PipelineError

__all__ = ["CACHE_MIB", "ScratchDatabase", "ScratchDatabaseError"]

CACHE_MIB = 16
"""The most memory (MiB) SQLite's page cache of the scratch database takes; the rest of it stays on disk."""


class ScratchDatabaseError(PipelineError):
    """The scratch database could not be created or written (a full disk, a read-only temporary folder)."""


class ScratchDatabase:
    """One run's scratch SQLite database; use as a context manager so it is closed (and its space freed).

    Each accumulator makes its own tables (:meth:`new_table`) and writes a chunk's rows in one transaction
    (:meth:`transaction`, :meth:`insert`). Reads stream (:meth:`query`), so a million rows are never held at once.
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None):
        self._folder = Path(tempfile.gettempdir() if directory is None else directory)
        self._tables = 0
        try:
            handle, name = tempfile.mkstemp(prefix="stage3-scratch-", suffix=".sqlite", dir=self._folder)
        except OSError as error:
            raise self._error(describe_os_error(error)) from error
        os.close(handle)
        try:
            with self._sqlite_errors():
                self._db = sqlite3.connect(name, isolation_level=None)  # transactions are explicit
                try:
                    self._db.execute("PRAGMA journal_mode = OFF")
                    self._db.execute("PRAGMA synchronous = OFF")
                    self._db.execute(f"PRAGMA cache_size = {-CACHE_MIB * 1024}")
                except BaseException:
                    self._db.close()
                    raise
        finally:
            os.unlink(name)  # the open connection keeps the file; nothing is left behind when it closes

    def __enter__(self) -> "ScratchDatabase":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def new_name(self, name: str) -> str:
        """A table name not used before in this database: ``name`` (a plain word) and a number."""
        self._tables += 1
        return f"{name}_{self._tables}"

    def new_table(self, name: str, columns: str) -> str:
        """Creates a table named by :meth:`new_name` with ``columns`` (SQL column definitions); returns its name."""
        table = self.new_name(name)
        self.execute(f"CREATE TABLE {table} ({columns})")
        return table

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """A block whose writes are one transaction (nested blocks join the outer one).

        An error inside the block ends the run's use of the database: with no journal, SQLite cannot roll a
        transaction back, so callers let the error stop the stage rather than carry on writing."""
        if self._db.in_transaction:
            yield
            return
        self.execute("BEGIN")
        yield
        self.execute("COMMIT")

    def execute(self, sql: str, parameters: Iterable[Any] = ()) -> None:
        with self._sqlite_errors():
            self._db.execute(sql, tuple(parameters))

    def insert(self, table: str, rows: Iterable[tuple[Any, ...]], width: int) -> None:
        """Adds ``rows`` (tuples of ``width`` values, in the table's column order) to ``table``."""
        marks = ", ".join("?" * width)
        with self._sqlite_errors(), self.transaction():
            self._db.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)

    def query(self, sql: str, parameters: Iterable[Any] = ()) -> Iterator[tuple[Any, ...]]:
        """The rows of a SELECT, fetched as they are read."""
        with self._sqlite_errors():
            cursor = self._db.execute(sql, tuple(parameters))
            while rows := cursor.fetchmany(1000):
                yield from rows

    def value(self, sql: str, parameters: Iterable[Any] = ()) -> Any:
        """The first column of the first row of a SELECT (None when it has no row)."""
        with self._sqlite_errors():
            row = self._db.execute(sql, tuple(parameters)).fetchone()
        return None if row is None else row[0]

    @contextlib.contextmanager
    def _sqlite_errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as error:
            reason = describe_sqlite_error(error, self._folder / "scratch")
            if reason == str(error):  # not a problem of the disk or the folder (a bug): shown as it is
                raise
            raise self._error(reason) from error

    def _error(self, reason: str) -> ScratchDatabaseError:
        return ScratchDatabaseError(
            f"cannot use stage 3's scratch database (a temporary file in this folder): {reason}; free some space "
            f"there or set TMPDIR to another folder",
            path=self._folder,
        )
