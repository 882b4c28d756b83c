"""Worker processes for stage 3 (generate/workers.py): results come back in task order whatever order the
workers finish in, a failure is the error of the first failing task, as in one process, and a worker that dies
is an error naming its exit status."""

from __future__ import annotations

import os
import signal
import time
from contextlib import contextmanager

import pytest

from redss_pipeline.core.errors import RawDataError
from redss_pipeline.generate.workers import WorkerError, WorkerTraceback, in_order


@contextmanager
def _work(function):
    yield function


def _slow_first(task: int) -> tuple[int, int]:
    time.sleep(0.3 if task % 3 == 0 else 0.0)  # some tasks finish long after the ones handed out after them
    return task, os.getpid()


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_results_come_in_task_order(workers):
    results = list(in_order(range(10), lambda: _work(_slow_first), workers=workers))
    assert [task for task, _ in results] == list(range(10))
    processes = {pid for _, pid in results}
    assert (processes == {os.getpid()}) if workers == 1 else (os.getpid() not in processes and len(processes) > 1)


def _fails_on_4_and_7(task: int) -> int:
    if task == 7:
        raise RawDataError("the later failure", record=task)
    if task == 4:
        time.sleep(0.5)  # task 7 fails first in time
        raise RawDataError("the earlier failure", path="Raw Data/x.json", record=task, field="sent_on")
    return task


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


def _killed_on_2(task: int) -> int:
    if task == 2:
        os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's out-of-memory killer would
    return task


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
