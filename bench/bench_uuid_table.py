#!/usr/bin/env python3
"""Benchmark of the phone number <-> UUID table: batch look-ups of a million numbers.

Usage: bench/bench_uuid_table.py [--numbers N]

Measures, on a fresh table in a temporary folder:
  1. adding N new numbers in one batch (uuid4 per number, one transaction);
  2. looking the same N numbers up again in a freshly opened table (all known);
  3. the reverse look-up (uid -> number) of N uids, as stage 3 does for operators;
  4. exporting to and importing from the 2019 JSON form.
Prints wall time per phase and the peak resident memory of the process.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from redss_pipeline.deidentify.uuid_table import create_uuid_table, open_uuid_table


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numbers", type=int, default=1_000_000)
    n = parser.parse_args().numbers
    urns = [f"tel:+25261{i:07d}" for i in range(n)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        create_uuid_table(root)
        t = time.perf_counter()
        with open_uuid_table(root) as table:
            ids = table.uuids_for_urns(urns)
        rows.append(("add N new numbers (one batch)", time.perf_counter() - t))
        t = time.perf_counter()
        with open_uuid_table(root) as table:
            again = table.uuids_for_urns(urns)
        rows.append(("look up N known numbers (fresh open)", time.perf_counter() - t))
        assert again == ids
        t = time.perf_counter()
        with open_uuid_table(root) as table:
            keys = table.keys_for_uuids(ids.values())
        rows.append(("reverse look-up of N uids", time.perf_counter() - t))
        assert len(keys) == n
        t = time.perf_counter()
        with open_uuid_table(root) as table:
            table.export_json(root / "phone_uuids.json")
        rows.append(("export to the 2019 JSON form", time.perf_counter() - t))
        other = root / "other"
        other.mkdir()
        t = time.perf_counter()
        create_uuid_table(other)
        with open_uuid_table(other) as table:
            table.import_json(root / "phone_uuids.json")
        rows.append(("import from the 2019 JSON form", time.perf_counter() - t))
        size = (root / "UUIDs" / "phone_uuids.sqlite").stat().st_size
    print(f"UUID table benchmark, N = {n:,} numbers")
    for name, seconds in rows:
        print(f"  {name:<40} {seconds:8.2f} s   ({seconds / n * 1e6:6.2f} us per number)")
    print(f"  table size on disk: {size / 2**20:.1f} MiB; peak resident memory: {_peak_mib():.0f} MiB")


if __name__ == "__main__":
    main()
