"""Stage 3's long work shared among worker processes, the results handed back in task order.

Every span of respondents is processed on its own (see :mod:`~redss_pipeline.generate.runner`), so several
processes can work at once; what the run keeps of each span is then added in span order by the run's own
process, so the outputs are byte-identical whatever the number of workers. Other jobs run the same way, each
:func:`in_order` forking its own workers and stopping them when it ends: before the spans, the respondent index
reads its raw files a file per task
(:class:`~redss_pipeline.generate.respondents.RespondentIndex`); after them, the analysis reads its two CSVs a
file per task (:func:`~redss_pipeline.analysis.outputs_reader.read_outputs`) and draws its charts and maps a
drawing per task (:mod:`~redss_pipeline.analysis.stage`).

:func:`in_order` runs ``work(task)`` for every task, where ``work`` yields a task's results one part at a time
(a span gives one outcome per chunk of respondents), and yields every part in task order, a task's parts in the
order made. With one worker it runs the tasks in this process, one after the other. With more, it forks that
many worker processes: a forked worker starts with a copy of this process's memory (the respondent index, the
configuration, the coded files), so a task is a few numbers and only the parts travel back, pickled once each.
A task must stay that small (a larger one is refused, see ``_MAX_TASK_BYTES``): the run sends tasks and reads
parts in turn, so a task too big for the pipe, sent to a worker busy sending a part, would block both.
Each worker sets up its own ``work`` (an SQLite connection, for one, belongs to the process that opened it).

Memory stays bounded: a worker holds at most two tasks, no task is handed out more than ``8 x workers`` tasks
ahead of the one the run waits for, and a part is sent as soon as it is made, so a task of many parts (a heavy
sender's span) never waits whole in memory. The look-ahead is that long so that while one worker spends a while
on a task of many parts (on the 2019 shape at a million messages, one sender's ten chunks, about 20 s), the
others go on with the tasks after it rather than wait; their parts wait in this process until their turn (at
most ``8 x workers`` tasks' worth: about 10 MB per chunk of stage 3). A run of a few tasks may name the order in
which they are handed out (``hand_out``: the index hands out its raw files biggest first); those are all handed
out at once, and their parts still come in task order.

Each worker has a pipe of its own for tasks and one for results, and no other process holds their ends, so:

- a failure in a worker stops the run with that error, as if it had happened here (its traceback is kept as the
  cause, shown by ``--verbose``), raised in task order, so it is the error a run in one process meets;
- a worker that dies without a word (killed, out of memory), even half way through sending a part, is an error
  naming its exit status: its result pipe reads as closed;
- a worker whose run is gone (the run's process killed) reads its task pipe as closed and exits;
- an interrupt (Ctrl-C reaches every process of the group) ends the workers quietly.

A worker ends as multiprocessing ends a forked process, with ``os._exit``: the files and connections open in
the run when it was forked (the audit trail being written, with what its buffer holds; the scratch database)
are never used, flushed or closed by it.

Forking is what makes the workers cheap, so where it is not available (Windows) or not safe (macOS, where
forking a process that has used system frameworks may crash) the work runs in this process:
:func:`usable_workers` says how many workers a run will really have.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import pickle
import sys
import traceback
from collections import deque
from contextlib import AbstractContextManager
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Callable, Generator, Iterable, Iterator, NoReturn, Sequence, TypeVar

from redss_pipeline.core.errors import PipelineError

__all__ = ["default_workers", "usable_workers", "in_order", "ended_workers_cpu_seconds", "WorkerError",
           "WorkerTraceback"]

Task = TypeVar("Task")
Part = TypeVar("Part")

StartWork = Callable[[], AbstractContextManager[Callable[[Task], Iterable[Part]]]]
"""Sets up the work in the process that will do it: ``with start_work() as work: for part in work(task): ...``."""

_HOLDS = 2  # tasks a worker holds at once
# The largest task sent to a worker. A pipe holds 64 KiB (Linux): a larger task sent to a worker that is itself
# blocked sending a part to this process (which is not reading while it sends) would block both for ever.
_MAX_TASK_BYTES = 16 * 1024
_AHEAD = 8  # per worker: how many tasks are handed out ahead of the one the run waits for
_MAX_DEFAULT_WORKERS = 4

# What a worker sends back, each message pickled: (task number, kind, payload).
_PART, _DONE, _FAILED = "part", "done", "failed"
_SETUP = -1  # the task number of a failure to set up the work


class WorkerError(PipelineError):
    """A stage-3 worker process failed without reporting an error (it was killed, or ran out of memory)."""


class WorkerTraceback(Exception):
    """The traceback of an error raised in a worker process, kept as the cause of the error re-raised here."""


def default_workers() -> int:
    """How many workers stage 3 uses unless told: the processors this process may run on (and, in a container,
    its CPU quota allows), at most 4, and 1 where worker processes cannot be forked (see the module notes)."""
    if not _can_fork():
        return 1
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        available = os.cpu_count() or 1
    quota = _cpu_quota()
    if quota is not None:
        available = min(available, quota)
    return max(1, min(available, _MAX_DEFAULT_WORKERS))


def _cpu_quota() -> int | None:
    """The processors' worth of time a container may use (``docker run --cpus 1.5`` gives 2), from the cgroup
    (v2) quota; None where there is none."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        return None


def usable_workers(requested: int) -> int:
    """How many workers a run asked for ``requested`` has: that many, or 1 where workers cannot be forked."""
    return max(1, requested) if _can_fork() else 1


def ended_workers_cpu_seconds() -> float:
    """The CPU seconds (user and system) of every worker process of this process that has ended so far. The
    workers of an :func:`in_order` have ended once its iterator is exhausted or closed, so the difference of two
    readings around it is what its workers took (0 when it ran in this process)."""
    used = os.times()  # the children's times count only those that ended (and were waited for)
    return used.children_user + used.children_system


def _can_fork() -> bool:
    # Decided by platform, not by the default start method (which a library may set, and which is no longer
    # "fork" on Linux from Python 3.14, where forking stays available and safe).
    return sys.platform != "darwin" and "fork" in multiprocessing.get_all_start_methods()


def in_order(tasks: Iterable[Task], start_work: StartWork[Task, Part], *, workers: int,
             hand_out: Sequence[int] | None = None) -> Generator[Part, None, None]:
    """The parts of ``work(task)`` for every task, in task order; with ``workers > 1`` (and forking available)
    made by that many worker processes. Stop iterating early (or close the iterator) and the workers stop.

    ``hand_out`` (the task numbers 0 to n - 1 of a few tasks given as a sequence, in another order) is the
    order in which workers are given the tasks, e.g. the longest first so that the workers finish together;
    parts and failures still come in task order. Every task is then handed out as soon as a worker can hold it
    (the look-ahead does not apply), so the parts that come early wait here for their turn."""
    if usable_workers(workers) <= 1:
        with start_work() as work:
            for task in tasks:
                yield from work(task)
        return
    if hand_out is None:
        numbered: Iterator[tuple[int, Task]] = enumerate(tasks)
        window = _AHEAD * workers
    else:
        listed = list(tasks)
        if sorted(hand_out) != list(range(len(listed))):
            raise ValueError("hand_out must hold each task number once")
        numbered = ((number, listed[number]) for number in hand_out)
        window = len(listed)
    pool = _Pool(start_work, workers)
    try:
        yield from pool.run(numbered, window)
    finally:
        pool.stop()


class _Worker:
    """The run's side of one worker process: its pipes and the tasks it holds."""

    def __init__(self, context: Any, number: int):
        self.name = f"stage-3-worker-{number}"
        self.task_reader, self.task_writer = context.Pipe(duplex=False)
        self.result_reader, self.result_writer = context.Pipe(duplex=False)
        self.process: Any = None
        self.holding = 0  # tasks handed to it and not yet done

    def child_ends(self) -> tuple[Connection, Connection]:
        return self.task_reader, self.result_writer

    def run_ends(self) -> tuple[Connection, Connection]:
        return self.task_writer, self.result_reader


class _Pool:
    def __init__(self, start_work: StartWork[Any, Any], workers: int):
        context = multiprocessing.get_context("fork")
        self._workers = [_Worker(context, number) for number in range(1, workers + 1)]
        every_end = [end for worker in self._workers for end in (*worker.child_ends(), *worker.run_ends())]
        for worker in self._workers:
            # Forked, not spawned: start_work reaches the worker through the copied memory, never pickled. The
            # worker closes every pipe end but its own two, so a pipe reads as closed when its one writer is gone.
            others = [end for end in every_end if end not in worker.child_ends()]
            worker.process = context.Process(target=_serve, args=(start_work, *worker.child_ends(), others),
                                              name=worker.name, daemon=True)
            worker.process.start()
        for worker in self._workers:
            for end in worker.child_ends():
                end.close()
        self._by_reader: dict[Any, _Worker] = {worker.result_reader: worker for worker in self._workers}
        self._by_sentinel: dict[Any, _Worker] = {worker.process.sentinel: worker for worker in self._workers}

    def run(self, tasks: Iterator[tuple[int, Any]], window: int) -> Iterator[Any]:
        """The parts of the numbered ``tasks`` (each number once, from 0), by task number; at most ``window``
        tasks are handed out beyond the one awaited."""
        received: dict[int, deque[tuple[str, Any]]] = {}  # task number -> messages not yet handed on
        handed_out, awaited, exhausted = 0, 0, False
        while True:
            # Hand out tasks to workers holding fewer than _HOLDS, no further than the window allows.
            while not exhausted and handed_out < awaited + window:
                worker = min(self._workers, key=lambda w: w.holding)
                if worker.holding >= _HOLDS:
                    break
                numbered = next(tasks, None)
                if numbered is None:
                    exhausted = True
                    break
                task_bytes = pickle.dumps(numbered, protocol=pickle.HIGHEST_PROTOCOL)
                if len(task_bytes) > _MAX_TASK_BYTES:
                    # Sending it could block this process while the worker blocks sending a part: a hang.
                    raise ValueError(f"in_order tasks must be a few numbers: task {numbered[0]} takes "
                                     f"{len(task_bytes):,} bytes (at most {_MAX_TASK_BYTES:,})")
                try:
                    worker.task_writer.send_bytes(task_bytes)
                except OSError:  # its end of the pipe is closed: the worker is gone
                    self._raise_gone(worker)
                worker.holding += 1
                handed_out += 1
            if exhausted and awaited == handed_out:
                return
            messages = received.get(awaited)
            if not messages:
                self._receive(received)
                continue
            kind, payload = messages.popleft()
            if kind == _PART:
                yield payload
            elif kind == _DONE:
                del received[awaited]
                awaited += 1
            else:  # raised in task order, so the error is the one a run in one process meets
                error, text = payload
                raise error from WorkerTraceback(text)

    def _receive(self, received: dict[int, deque[tuple[str, Any]]]) -> None:
        """Waits for messages from the workers and files them by task number."""
        for ready in wait([*self._by_reader, *self._by_sentinel]):
            worker = self._by_reader.get(ready)
            if worker is None:  # a worker ended; what it sent before is still read from its pipe first
                worker = self._by_sentinel[ready]
                if worker.result_reader.poll():
                    continue
                raise self._died(worker)
            try:
                number, kind, payload = pickle.loads(worker.result_reader.recv_bytes())
            except (EOFError, OSError):  # its pipe closed, maybe half way through a message: the worker is gone
                raise self._died(worker) from None
            if number == _SETUP:
                error, text = payload
                raise error from WorkerTraceback(text)
            if kind != _PART:
                worker.holding -= 1
            received.setdefault(number, deque()).append((kind, payload))

    def _raise_gone(self, worker: _Worker) -> NoReturn:
        """Raises why ``worker`` is gone: the failure to set up its work that it sent before ending, if it sent
        one (the error a run in one process meets first), else that it died."""
        setup_failure = None
        try:
            while setup_failure is None and worker.result_reader.poll():
                number, _, payload = pickle.loads(worker.result_reader.recv_bytes())
                if number == _SETUP:
                    setup_failure = payload
        except (EOFError, OSError):  # its pipe closed half way through a message
            pass
        if setup_failure is None:
            raise self._died(worker) from None
        error, text = setup_failure
        raise error from WorkerTraceback(text)

    @staticmethod
    def _died(worker: _Worker) -> WorkerError:
        worker.process.join(timeout=5)
        return WorkerError(f"stage-3 worker process {worker.name} stopped unexpectedly (exit status "
                           f"{worker.process.exitcode}); was it killed, or out of memory?")

    def stop(self) -> None:
        """Tells the workers to stop, and stops those still busy (the run ended early: their parts are not
        wanted)."""
        for worker in self._workers:
            try:
                worker.task_writer.send(None)
            except OSError:  # it is gone already
                pass
            worker.task_writer.close()
            worker.result_reader.close()  # a worker still sending gets a broken pipe and ends
        for worker in self._workers:
            worker.process.join(timeout=5)
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join()


class _RunGone(Exception):
    """A worker's pipe to the run broke: the run ended (or was killed), so there is no one to report to."""


def _serve(start_work: StartWork[Any, Any], tasks: Connection, results: Connection, others: list[Connection]) -> None:
    """A worker's life: set up the work, then do tasks until told to stop (None) or the run is gone. A task that
    fails is reported and the worker goes on: the run raises the first failure in task order, which may come
    from another worker. Parts are pickled here, so one that cannot be pickled is reported like any failure."""
    for end in others:
        end.close()

    def send(number: int, kind: str, payload: Any) -> None:
        message = pickle.dumps((number, kind, payload), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            results.send_bytes(message)
        except OSError:
            raise _RunGone() from None

    def next_task() -> Any:
        try:
            return tasks.recv()
        except (OSError, EOFError):
            raise _RunGone() from None

    try:
        try:
            with start_work() as work:
                while (item := next_task()) is not None:
                    number, task = item
                    _do_task(work, number, task, send)
        except (_RunGone, KeyboardInterrupt):
            return  # the run is gone or interrupted: end quietly
        except Exception as error:  # noqa: BLE001 - setting up the work failed: the run raises it
            send(_SETUP, _FAILED, (_portable(error), traceback.format_exc()))
    except (_RunGone, KeyboardInterrupt):
        return


def _do_task(work: Callable[[Any], Iterable[Any]], number: int, task: Any,
             send: Callable[[int, str, Any], None]) -> None:
    """Makes a task's parts and sends each as it is made, then that the task is done, or its failure (a part
    that cannot be pickled included). Only a broken pipe to the run is raised (_RunGone)."""
    try:
        for part in work(task):
            send(number, _PART, part)
    except _RunGone:
        raise
    except Exception as error:  # noqa: BLE001 - every failure is reported to the run, which re-raises it
        send(number, _FAILED, (_portable(error), traceback.format_exc()))
    else:
        send(number, _DONE, None)


def _portable(error: BaseException) -> BaseException:
    """``error``, or where it cannot travel between processes (not picklable), a PipelineError saying it."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:  # noqa: BLE001 - any failure to pickle means the error cannot be sent as it is
        return PipelineError(f"{type(error).__name__}: {error}")
    return error
