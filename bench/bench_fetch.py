#!/usr/bin/env python3
"""Benchmark of stage 2: a full fetch of a large synthetic workspace from the local server, then a refetch
with nothing new (which re-reads the configured overlap window, rapid_pro.overlap_minutes: it must stay at
ten requests or fewer).

Usage: bench/bench_fetch.py [--size 100000] [--page-size 250] [--seed 1]

The bundled Rapid Pro server runs in a process of its own (so its workspace neither shares the fetch's GIL
nor counts in its memory). Each fetch runs the real entry point, ``fetch_raw_data.py``, as a child process;
for each the script prints wall time, HTTP requests (from the fetch summary) and the child's peak resident
memory, then the sizes of the fetch store and the raw files. CPU heavy: run it alone.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-token"


def _start_server(size: int, seed: int, page_size: int) -> tuple[subprocess.Popen, str, float]:
    started = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "redss_pipeline.demo.rapid_pro_server", "--seed", str(seed), "--size", str(size),
         "--page-size", str(page_size)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "RAPID_PRO_TOKEN": TOKEN},
    )
    assert server.stdout is not None  # stdout=PIPE
    line = server.stdout.readline()
    match = re.search(r"(http://\S+)", line)
    if not match:
        server.terminate()
        raise SystemExit(f"the server did not start: {line!r}")
    return server, match.group(1), time.perf_counter() - started


def _fetch(url: str, data_root: Path, work: Path, *extra: str) -> tuple[float, int, float, str]:
    """(wall seconds, requests, peak RSS MiB, summary text) of one run of the stage-2 entry point."""
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "fetch_raw_data.py"), *extra, "bench@example.org",
         str(work / "rapid-pro-root"), url, "-", str(data_root)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "RAPID_PRO_TOKEN": TOKEN},
    )
    assert child.stdout is not None  # stdout=PIPE
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"the fetch failed with status {child.returncode}")
    counted = re.search(r"requests: (\d+)", output)
    if counted is None:
        raise SystemExit(f"the fetch did not report its requests: {output[-200:]!r}")
    requests = int(counted.group(1))
    return wall, requests, usage.ru_maxrss / 1024, output


def _overlap_minutes() -> int:
    config = json.loads((PROJECT_ROOT / "pipeline_config.json").read_text(encoding="utf-8"))
    return int(config["rapid_pro"].get("overlap_minutes", 60))


def _size_mib(paths: list[Path]) -> float:
    return sum(p.stat().st_size for p in paths) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000, help="approximate number of runs")
    parser.add_argument("--page-size", type=int, default=250)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    server, url, server_seconds = _start_server(args.size, args.seed, args.page_size)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            data_root = work / "data"
            subprocess.run([sys.executable, str(PROJECT_ROOT / "create_uuid_table.py"), str(data_root)],
                           check=True, stdout=subprocess.DEVNULL)
            rows = [("full fetch", *_fetch(url, data_root, work))]
            rows.append(("refetch, nothing new", *_fetch(url, data_root, work)))
            raw = data_root / "Raw Data"
            store_files = sorted(raw.glob("rapid_pro_store.sqlite*"))
            raw_files = sorted(raw.glob("*.json"))
            print(f"workspace: about {args.size} runs in the real payload shapes, page size {args.page_size}; "
                  f"server ready in {server_seconds:.1f} s; overlap window {_overlap_minutes()} min")
            print(f"{'phase':<22} {'wall s':>8} {'requests':>9} {'peak MiB':>9}")
            for name, wall, requests, peak, _ in rows:
                print(f"{name:<22} {wall:>8.1f} {requests:>9} {peak:>9.0f}")
            print(f"fetch store: {_size_mib(store_files):.1f} MiB; raw files: {_size_mib(raw_files):.1f} MiB "
                  f"in {len(raw_files)} files")
            print()
            print(rows[0][4].rstrip())
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
