"""The peak memory of a process and the worker processes it starts, sampled from outside (Linux /proc).

A forked worker shares most of its pages with the process that forked it, so adding up each process's resident
set size would count those pages several times. The proportional set size (Pss, ``/proc/<pid>/smaps_rollup``)
splits a shared page among the processes sharing it, so the sum over a process tree is the memory the tree
takes.
"""

from __future__ import annotations

import threading
from pathlib import Path

__all__ = ["TreeMemory"]


class TreeMemory(threading.Thread):
    """Samples, a few times a second, the summed Pss of a process and all its descendants; keeps the largest
    (``peak_mib``). ``start()`` it after starting the process, ``stop()`` it once the process ended."""

    def __init__(self, pid: int, interval: float = 0.1):
        super().__init__(daemon=True)
        self._pid, self._interval = pid, interval
        self._stopped = threading.Event()
        self.peak_mib = 0.0

    def run(self) -> None:
        while not self._stopped.wait(self._interval):
            self.peak_mib = max(self.peak_mib, sum(_pss_kib(pid) for pid in _tree(self._pid)) / 1024)

    def stop(self) -> None:
        self._stopped.set()
        self.join()


def _tree(pid: int) -> list[int]:
    pids, pending = [], [pid]
    while pending:
        current = pending.pop()
        pids.append(current)
        try:
            pending += [int(child) for child in Path(f"/proc/{current}/task/{current}/children").read_text().split()]
        except OSError:  # the process ended meanwhile
            pass
    return pids


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:  # ended meanwhile
        pass
    return 0
