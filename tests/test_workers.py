"""Worker processes for stage 3 (core/workers.py): parts come back in task order whatever order the
workers finish in, a failure is the error of the first failing task, as in one process, a worker that dies (even
half way through sending) is an error naming its exit status, and workers whose run is killed end."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from redss_pipeline.core.errors import RawDataError
from redss_pipeline.core.workers import WorkerError, WorkerTraceback, in_order


@contextmanager
def _work(function):
    yield function


def _slow_first(task: int):
    # Task t has t % 4 parts; some tasks finish long after the ones handed out after them.
    for part in range(task % 4):
        time.sleep(0.3 if task % 3 == 0 else 0.0)
        yield task, part, os.getpid()


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_parts_come_in_task_order(workers):
    results = list(in_order(range(10), lambda: _work(_slow_first), workers=workers))
    assert [(task, part) for task, part, _ in results] == [(t, p) for t in range(10) for p in range(t % 4)]
    processes = {pid for _, _, pid in results}
    assert (processes == {os.getpid()}) if workers == 1 else (os.getpid() not in processes and len(processes) > 1)


def _fails_on_4_and_7(task: int) -> int:
    if task == 7:
        raise RawDataError("the later failure", record=task)
    if task == 4:
        time.sleep(0.5)  # task 7 fails first in time
        raise RawDataError("the earlier failure", path="Raw Data/x.json", record=task, field="sent_on")
    yield task


@pytest.mark.parametrize("workers", [1, 2])
def test_the_first_failing_task_in_order_raises_its_own_error(workers):
    seen = []
    with pytest.raises(RawDataError) as raised:
        for result in in_order(range(10), lambda: _work(_fails_on_4_and_7), workers=workers):
            seen.append(result)
    assert seen == [0, 1, 2, 3]
    assert str(raised.value) == "Raw Data/x.json: record 4: field 'sent_on': the earlier failure"
    if workers > 1:  # the worker's traceback is kept for --verbose
        assert isinstance(raised.value.__cause__, WorkerTraceback)
        assert "_fails_on_4_and_7" in str(raised.value.__cause__)


def _started_in_order(started):
    """Work that notes each task as it starts (the process running it, the task), then gives the task's number;
    task 3 fails, later than task 5."""
    def work(task: int):
        started.put((os.getpid(), task))
        if task == 5:
            raise RawDataError("the failure of a task handed out earlier", record=task)
        if task == 3:
            time.sleep(0.3)
            raise RawDataError("the failure of the first failing task", record=task)
        yield task
    return work


@pytest.mark.parametrize("workers", [1, 2])
def test_tasks_handed_out_in_another_order_still_come_and_fail_in_task_order(workers):
    """The index hands out its biggest files first: each worker starts its tasks in that order, yet the parts
    come in task order, and the failure raised is the first failing task's, as in one process."""
    started = multiprocessing.get_context("fork").SimpleQueue()
    hand_out = [5, 4, 0, 1, 2, 3]
    seen = []
    with pytest.raises(RawDataError, match="record 3: the failure of the first failing task"):
        for part in in_order(range(6), lambda: _work(_started_in_order(started)), workers=workers,
                             hand_out=hand_out):
            seen.append(part)
    assert seen == [0, 1, 2]
    by_process: dict[int, list[int]] = {}
    while not started.empty():
        pid, task = started.get()
        by_process.setdefault(pid, []).append(task)
    if workers == 1:  # in one process the order of the work changes nothing: task order
        assert by_process == {os.getpid(): [0, 1, 2, 3]}
    else:  # each worker took its tasks in the hand-out order, 5 and 4 before the rest
        assert len(by_process) == 2 and os.getpid() not in by_process
        for tasks in by_process.values():
            assert tasks == sorted(tasks, key=hand_out.index)
        assert sorted(tasks[0] for tasks in by_process.values()) == [4, 5]


def test_a_hand_out_order_must_name_every_task_once():
    with pytest.raises(ValueError, match="each task number once"):
        list(in_order(range(3), lambda: _work(lambda task: [task]), workers=2, hand_out=[0, 2, 2]))


def test_a_task_too_big_for_the_pipe_is_refused_not_a_hang():
    """Tasks travel through a pipe that holds 64 KiB; a task that could fill it while its worker sends a part
    (each blocked on the other) is refused at once with an error saying what a task should be."""
    tasks = [b"x" * 100_000 for _ in range(3)]
    with pytest.raises(ValueError, match=r"in_order tasks must be a few numbers: task 0 takes 100,\d{3} bytes"):
        list(in_order(tasks, lambda: _work(lambda task: [len(task)]), workers=2))
    assert list(in_order(tasks, lambda: _work(lambda task: [len(task)]), workers=1)) == [100_000] * 3


def _killed_on_2(task: int) -> int:
    if task == 2:
        os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's out-of-memory killer would
    yield task


def test_a_worker_that_dies_is_an_error_naming_its_exit_status():
    with pytest.raises(WorkerError, match=r"stage-3 worker process stage-3-worker-\d stopped unexpectedly "
                                          r"\(exit status -9\)"):
        list(in_order(range(5), lambda: _work(_killed_on_2), workers=2))


@contextmanager
def _cannot_start():
    raise RawDataError("cannot open the table", path="UUIDs/phone_uuid_table.sqlite")
    yield  # pragma: no cover


def test_a_worker_that_cannot_set_up_its_work_stops_the_run_with_that_error():
    with pytest.raises(RawDataError, match="UUIDs/phone_uuid_table.sqlite: cannot open the table"):
        list(in_order(range(5), _cannot_start, workers=2))


def test_a_worker_gone_after_failing_to_set_up_still_gives_that_error():
    """A worker that failed to set up may have ended before the run sends it a task: the run then reads the
    failure it sent rather than reporting a worker that stopped unexpectedly (a race, so tried many times)."""
    for _ in range(40):
        with pytest.raises(RawDataError, match="cannot open the table"):
            list(in_order(range(50), _cannot_start, workers=3))


def _killed_while_sending(task: int):
    if task == 1:
        # Killed half a second into sending 8 MB, while the run is busy with task 0's part and reads nothing.
        threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGKILL)).start()
        yield b"x" * 8_000_000
    else:
        yield task


def test_a_worker_killed_half_way_through_sending_is_an_error_not_a_hang():
    def give_up(*_):
        raise AssertionError("the run hung on the dead worker's half-sent part")

    previous = signal.signal(signal.SIGALRM, give_up)
    signal.alarm(30)
    try:
        with pytest.raises(WorkerError, match=r"stage-3 worker process stage-3-worker-\d stopped unexpectedly "
                                              r"\(exit status -9\)"):
            for _ in in_order(range(4), lambda: _work(_killed_while_sending), workers=2):
                time.sleep(1.0)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in state  # ended, waiting to be reaped by whoever adopted it


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process states from /proc")
def test_workers_end_when_the_run_is_killed(tmp_path):
    # The run (a process of its own here) prints its workers' process ids, then is killed as by `kill -9`:
    # nothing tells the workers, which must notice and end, so they do not hold the data root's lock forever.
    script = textwrap.dedent("""
        import os, signal, sys, time
        from contextlib import contextmanager
        from redss_pipeline.core.workers import in_order

        def slow(task):
            time.sleep(0.2)
            yield os.getpid()

        @contextmanager
        def start():
            yield slow

        seen = set()
        for pid in in_order(range(1000), start, workers=2):
            seen.add(pid)
            if len(seen) == 2:
                print(*seen, flush=True)
                os.kill(os.getpid(), signal.SIGKILL)
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert run.returncode == -signal.SIGKILL
    workers = [int(pid) for pid in run.stdout.split()]
    assert len(workers) == 2
    deadline = time.monotonic() + 10
    while not all(_gone(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(_gone(pid) for pid in workers)
