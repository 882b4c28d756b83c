"""Rows that arrive in any order and must come out in order: the rows of ``csap_mes.csv`` and ``csap_ind.csv``
(stage 3 finishes respondents one chunk at a time, but the files list messages, and people, in the 2019 order).

:class:`OrderedRows` takes ``(position, row)`` pairs and gives the rows back sorted by position. It holds at most
``limit`` rows in memory: beyond that, the rows held are sorted and written to a temporary file (a *run*), and
:meth:`OrderedRows.rows` merges the runs. A row is any picklable value (stage 3's: a rendered CSV line, or for
the messages the pair of their ``csap_mes.csv`` and ``csap_prod.csv`` lines).
"""

from __future__ import annotations

import heapq
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Iterator

__all__ = ["OrderedRows"]

_BATCH = 1000  # rows per pickled batch of a run


class OrderedRows:
    """A sorted spill of rows; use as a context manager so its temporary files are removed."""

    def __init__(self, *, limit: int = 20_000, directory: str | os.PathLike[str] | None = None):
        self._limit = limit
        self._directory = directory
        self._held: list[tuple[int, Any]] = []
        self._runs: list[Path] = []
        self._spill: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> "OrderedRows":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._spill is not None:
            self._spill.cleanup()
            self._spill = None
        self._runs.clear()
        self._held.clear()

    def add(self, position: int, row: Any) -> None:
        self._held.append((position, row))
        if len(self._held) >= self._limit:
            self._write_run()

    def rows(self) -> Iterator[Any]:
        """Every row added, by position (may be called more than once)."""
        self._held.sort(key=_position)
        sources: list[Iterator[tuple[int, Any]]] = [_read_run(path) for path in self._runs]
        sources.append(iter(self._held))
        for _, row in heapq.merge(*sources, key=_position):
            yield row

    def _write_run(self) -> None:
        if self._spill is None:
            self._spill = tempfile.TemporaryDirectory(prefix=".stage3-rows-", dir=self._directory)
        self._held.sort(key=_position)
        path = Path(self._spill.name) / f"run-{len(self._runs)}.pickle"
        with open(path, "wb") as handle:
            for start in range(0, len(self._held), _BATCH):
                pickle.dump(self._held[start:start + _BATCH], handle, protocol=pickle.HIGHEST_PROTOCOL)
        self._runs.append(path)
        self._held = []


def _position(entry: tuple[int, Any]) -> int:
    return entry[0]


def _read_run(path: Path) -> Iterator[tuple[int, Any]]:
    with open(path, "rb") as handle:
        yield from _batches(handle)


def _batches(handle: BinaryIO) -> Iterator[tuple[int, Any]]:
    while True:
        try:
            batch = pickle.load(handle)
        except EOFError:
            return
        yield from batch
