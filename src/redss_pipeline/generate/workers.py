"""Stage 3's spans of respondents shared among worker processes, their outcomes handed back in span order.

Every span of respondents is processed on its own (see :mod:`~redss_pipeline.generate.runner`), so several
processes can work at once; what the run keeps of each span is then added in span order by the run's own
process, so the outputs are byte-identical whatever the number of workers.

:func:`in_order` runs ``work(task)`` for every task and yields the results in task order. With one worker it
runs them in this process, one after the other. With more, it forks that many worker processes: a forked worker
starts with a copy of this process's memory (the respondent index, the configuration, the coded files), so a
task is a few numbers and only the results travel back, pickled. Each worker sets up its own ``work`` (an
SQLite connection, for one, belongs to the process that opened it). At most two tasks per worker are handed
out ahead of the result the run waits for, so memory stays bounded however unevenly the tasks take time.

A failure in a worker stops the run with that error, as if it had happened here (its traceback is kept as the
cause, shown by ``--verbose``); a worker that dies without a word (killed, out of memory) is an error naming
its exit status. Forking is what makes the workers cheap, so where it is not available (Windows) or not the
default (macOS, where forking a process that has used system frameworks is unsafe) the work runs in this
process.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import traceback
from contextlib import AbstractContextManager
from itertools import islice
from typing import Any, Callable, Iterable, Iterator, TypeVar

from redss_pipeline.core.errors import PipelineError

__all__ = ["default_workers", "in_order", "WorkerError"]

Task = TypeVar("Task")
Result = TypeVar("Result")

StartWork = Callable[[], AbstractContextManager[Callable[[Task], Result]]]
"""Sets up the work in the process that will do it: ``with start_work() as work: work(task)``."""

_AHEAD = 2  # tasks handed out per worker beyond the result awaited
_POLL_SECONDS = 1.0  # how often a wait for a result checks that the workers are alive
_MAX_DEFAULT_WORKERS = 4


class WorkerError(PipelineError):
    """A stage-3 worker process failed without reporting an error (it was killed, or ran out of memory)."""


class WorkerTraceback(Exception):
    """The traceback of an error raised in a worker process, kept as the cause of the error re-raised here."""


def default_workers() -> int:
    """How many workers stage 3 uses unless told: the processors this process may run on, at most 4, and 1
    where worker processes cannot be forked (see the module notes)."""
    if not _can_fork():
        return 1
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        available = os.cpu_count() or 1
    return max(1, min(available, _MAX_DEFAULT_WORKERS))


def _can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods() and multiprocessing.get_start_method() == "fork"


def in_order(tasks: Iterable[Task], start_work: StartWork[Task, Result], *, workers: int) -> Iterator[Result]:
    """``work(task)`` for every task, in task order; with ``workers > 1`` (and forking available) done by that
    many worker processes. Stop iterating early and the workers are stopped."""
    if workers <= 1 or not _can_fork():
        with start_work() as work:
            for task in tasks:
                yield work(task)
        return
    yield from _Pool(start_work, workers).run(iter(tasks))


class _Pool:
    def __init__(self, start_work: StartWork[Any, Any], workers: int):
        context = multiprocessing.get_context("fork")
        self._tasks: Any = context.Queue()
        self._results: Any = context.Queue()
        # Forked, not spawned: start_work reaches the workers through the copied memory, never pickled.
        self._workers = [context.Process(target=_serve, args=(start_work, self._tasks, self._results),
                                         name=f"stage-3-worker-{number}", daemon=True)
                         for number in range(1, workers + 1)]

    def run(self, tasks: Iterator[Any]) -> Iterator[Any]:
        for worker in self._workers:
            worker.start()
        try:
            handed_out = 0
            for task in islice(tasks, _AHEAD * len(self._workers)):
                self._tasks.put((handed_out, task))
                handed_out += 1
            waiting: dict[int, tuple[bool, Any]] = {}  # outcomes that came before the one awaited
            awaited = 0
            while awaited < handed_out:
                while awaited not in waiting:
                    number, succeeded, payload = self._next_result()
                    waiting[number] = (succeeded, payload)
                succeeded, payload = waiting.pop(awaited)
                if not succeeded:  # raised in task order, so the error is the one a run in one process meets
                    error, text = payload
                    raise error from WorkerTraceback(text)
                yield pickle.loads(payload)
                awaited += 1
                for task in islice(tasks, 1):
                    self._tasks.put((handed_out, task))
                    handed_out += 1
        finally:
            self._stop()

    def _next_result(self) -> tuple[int, bool, Any]:
        while True:
            try:
                number, succeeded, payload = self._results.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                for worker in self._workers:
                    if worker.exitcode is not None:
                        raise WorkerError(f"stage-3 worker process {worker.name} stopped unexpectedly (exit status "
                                          f"{worker.exitcode}); was it killed, or out of memory?") from None
                continue
            if number < 0:  # the worker could not set up its work
                error, text = payload
                raise error from WorkerTraceback(text)
            return number, succeeded, payload

    def _stop(self) -> None:
        for _ in self._workers:
            self._tasks.put(None)
        for worker in self._workers:
            worker.join(timeout=_POLL_SECONDS)
        for worker in self._workers:
            if worker.is_alive():  # stopped early (an error, an interrupt): its results are not wanted
                worker.terminate()
                worker.join()
        for channel in (self._tasks, self._results):
            channel.close()
            channel.cancel_join_thread()


def _serve(start_work: StartWork[Any, Any], tasks: Any, results: Any) -> None:
    """A worker's life: set up the work, then do tasks until told to stop (None). A task that fails is reported
    and the worker goes on: the run raises the first failure in task order, which may come from another worker.
    Results are pickled here, so one that cannot be pickled is reported like any other failure."""
    try:
        with start_work() as work:
            while (item := tasks.get()) is not None:
                number, task = item
                outcome: tuple[int, bool, Any]
                try:
                    outcome = (number, True, pickle.dumps(work(task), protocol=pickle.HIGHEST_PROTOCOL))
                except Exception as error:  # noqa: BLE001 - every failure is reported to the run, which re-raises it
                    outcome = (number, False, (_portable(error), traceback.format_exc()))
                results.put(outcome)
    except BaseException as error:  # noqa: BLE001 - setting up failed, or the worker was interrupted
        results.put((-1, False, (_portable(error), traceback.format_exc())))


def _portable(error: BaseException) -> BaseException:
    """``error``, or where it cannot travel between processes (not picklable), a PipelineError saying it."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:  # noqa: BLE001 - any failure to pickle means the error cannot be sent as it is
        return PipelineError(f"{type(error).__name__}: {error}")
    return error
