"""StepTimes: what bench/bench_generate.py reports per step of stage 3 (time, and which steps hold the most)."""

import json
import subprocess
import sys

# Run in a fresh process: the peak memory is the process's high-water mark, which earlier tests may have raised.
# The test runner that starts it may itself have held far more than the child will (ru_maxrss would report that).
_STEPS = """
import json
from redss_pipeline.generate.runner import StepTimes
times = StepTimes()
with times.step("small"):
    sum(range(1000))
with times.step("big"):
    block = bytearray(256 * 2**20)  # 256 MiB, written so that it is resident
    block[::4096] = b"x" * len(range(0, len(block), 4096))
    del block
with times.step("small"):  # the memory of "big" is free again: no new peak
    sum(range(1000))
print(json.dumps([times.seconds, times.peak_rise_mib]))
"""


def test_the_step_that_allocates_is_the_one_that_raised_the_peak():
    parent_peak = bytearray(512 * 2**20)  # this process's peak now exceeds anything the child holds
    parent_peak[::4096] = b"x" * len(range(0, len(parent_peak), 4096))
    result = subprocess.run([sys.executable, "-c", _STEPS], capture_output=True, text=True, check=True)
    del parent_peak
    seconds, peak_rise = json.loads(result.stdout)
    assert list(seconds) == ["small", "big"]
    assert peak_rise["big"] >= 200  # less whatever the interpreter held at its peak before the step
    assert peak_rise["small"] < 16
