#!/usr/bin/env python3
"""Benchmark of the audited records and their two file forms.

Usage: bench/bench_records.py [--records N] [--raw-records N] [--trail-records N]

Three parts, each in a fresh process so its peak resident memory is its own:

- ``records``: N records (default 1,000,000) made with ``Record.create`` and changed by five writes each
  (shared steps, as stage 3 makes them); all N are kept in memory (stage 3 holds one chunk of them at a time),
  so the peak shows what a record costs.
- ``raw``: N one-run raw records (default 100,000) written and read back in the 2019 TracedData layout
  (``traced_data_json``), with every ``_sha`` computed on write and checked on read.
- ``trail``: N realistic message records (default 100,000: about 20 layers and 120 keys each, the shows'
  codes as four lists in one layer, a survey record shared by each respondent's three messages; the same
  records the audit-trail size test uses) written as stage 3 writes them (``encode_segment`` per chunk of
  5,000, ``AuditTrailWriter`` appending the segments), then the file loaded and every record rebuilt. Making
  the records is timed apart and not counted as writing.

Prints one table: seconds, microseconds per record, peak resident memory, and file bytes per record.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT / "src"))
sys.path.insert(0, str(PROJECT_ROOT / "tests"))  # the realistic record of test_audit_trail

from redss_pipeline.core.audit_trail import AuditTrail, AuditTrailWriter, encode_segment  # noqa: E402
from redss_pipeline.core.records import Record, Step  # noqa: E402
from redss_pipeline.core.traced_data_json import read_traced_data_file, write_traced_data_file  # noqa: E402

RUN = 1550000000.0
FLOW = " - csap_s01e01_activation"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports kilobytes


def _raw(i: int) -> dict[str, Any]:
    time_text = f"2018-12-{2 + i % 27:02d}T{i % 24:02d}:{i % 60:02d}:{(i * 7) % 60:02d}.{i % 999999:06d}Z"
    return {"avf_phone_id": f"avf-phone-uuid-{i:032x}", "Rqa_S01E01 (Category)" + FLOW: "All Responses",
            "Rqa_S01E01 (Value)" + FLOW: f"waxaan rabaa nabad {i}",
            "Rqa_S01E01 (Text)" + FLOW: f"waxaan rabaa nabad {i}",
            "Rqa_S01E01 (Name)" + FLOW: "Rqa_S01E01", "Rqa_S01E01 (Time)" + FLOW: time_text,
            "Rqa_S01E01 (Run ID)" + FLOW: 10_000_000 + i, "created_on": time_text, "modified_on": time_text,
            "exited_on": time_text, "exit_type": "completed"}


def part_records(count: int) -> list[dict[str, Any]]:
    names = ["fetch", "translate/rename", "translate/raw_keys", "autocode/noise", "analysis/default_consent",
             "analysis/survey_columns"]
    steps = [Step("analyst@example.org", name, RUN + i) for i, name in enumerate(names)]
    baseline = _peak_mb()
    started = time.perf_counter()
    records = []
    for i in range(count):
        record = Record.create(steps[0], _raw(i))
        record = record.updated(steps[1], {"uid": record["avf_phone_id"], "sent_on": record["created_on"]})
        record = record.updated(steps[2], {"rqa_s01e01_raw": record["Rqa_S01E01 (Value)" + FLOW]})
        record = record.updated(steps[3], {"noise": False})
        record = record.updated(steps[4], {"consent_withdrawn": "false"})
        record = record.updated(steps[5], {"gender": "female", "age": "25"})
        records.append(record)
    seconds = time.perf_counter() - started
    assert records[-1]["uid"] == records[-1]["avf_phone_id"] and len(records[-1].layers) == 6
    peak = _peak_mb()
    return [{"part": "Record: create + 5 writes, all kept", "records": count, "seconds": seconds, "peak_mb": peak,
             "memory_per_record": (peak - baseline) * 2**20 / count}]


def part_raw(count: int) -> list[dict[str, Any]]:
    step = Step("fetcher@example.org", "fetch/csap_s01e01_activation", RUN)
    records = [Record.create(step, _raw(i)) for i in range(count)]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "csap_s01e01_activation.json"
        started = time.perf_counter()
        write_traced_data_file(path, records)
        rows.append({"part": "raw file (2019 layout): write", "records": count,
                     "seconds": time.perf_counter() - started, "bytes": path.stat().st_size})
        started = time.perf_counter()
        back = read_traced_data_file(path)
        rows.append({"part": "raw file (2019 layout): read, _sha checked", "records": count,
                     "seconds": time.perf_counter() - started})
        assert back == records
    for row in rows:
        row["peak_mb"] = _peak_mb()
    return rows


def part_trail(count: int) -> list[dict[str, Any]]:
    from test_audit_trail import respondent  # type: ignore[import-not-found]  # tests/, put on sys.path above

    making = 0.0

    def messages() -> Iterator[Record]:
        nonlocal making
        rng = random.Random(11)
        for person in range((count + 2) // 3):
            started = time.perf_counter()
            batch = respondent(rng, withdrawn=person % 50 == 7)
            making += time.perf_counter() - started
            yield from batch

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "traced_data.json"
        started = time.perf_counter()
        with open(path, "wb") as handle, AuditTrailWriter(handle) as writer:
            stream = messages()
            while chunk := list(itertools.islice(stream, 5_000)):
                writer.write(encode_segment(chunk))
        written = (count + 2) // 3 * 3
        rows.append({"part": "audit trail: write (records streamed)", "records": written,
                     "seconds": time.perf_counter() - started - making, "bytes": path.stat().st_size,
                     "peak_mb": _peak_mb()})
        started = time.perf_counter()
        trail = AuditTrail.load(path)
        rows.append({"part": "audit trail: load (tables + uid index)", "records": len(trail),
                     "seconds": time.perf_counter() - started, "peak_mb": _peak_mb()})
        started = time.perf_counter()
        rebuilt = sum(1 for _ in trail.records())
        rows.append({"part": "audit trail: rebuild every Record", "records": rebuilt,
                     "seconds": time.perf_counter() - started, "peak_mb": _peak_mb()})
        ids = trail.ids()
        uids = random.Random(3).sample(ids, min(300, len(ids)))
        started = time.perf_counter()
        for uid in uids:
            trail.explain(uid, "gender_raw")
        rows.append({"part": "audit trail: explain (per person, 3 records)", "records": len(uids),
                     "seconds": time.perf_counter() - started, "peak_mb": _peak_mb()})
    rows.append({"part": "(making the realistic records, not counted)", "records": written, "seconds": making})
    return rows


PARTS = {"records": part_records, "raw": part_raw, "trail": part_trail}


def _table(rows: list[dict[str, Any]]) -> str:
    header = f"{'part':<46} {'records':>10} {'seconds':>8} {'us/record':>10} {'peak RSS MB':>12} {'bytes/record':>13}"
    lines = [header, "-" * len(header)]
    for row in rows:
        per_record = 1e6 * row["seconds"] / row["records"] if row["records"] else 0
        size = row.get("bytes")
        memory = row.get("memory_per_record")
        extra = f"{size / row['records']:>13,.0f}" if size else (f"{memory:>10,.0f} RAM" if memory else "")
        peak = f"{row['peak_mb']:>12,.0f}" if "peak_mb" in row else f"{'':>12}"
        lines.append(
            f"{row['part']:<46} {row['records']:>10,} {row['seconds']:>8.2f} {per_record:>10,.1f} {peak} {extra}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="records for the create + 5 writes part")
    parser.add_argument("--raw-records", type=int, default=100_000, help="records for the 2019-layout file part")
    parser.add_argument("--trail-records", type=int, default=100_000, help="message records for the audit trail")
    parser.add_argument("--part", choices=sorted(PARTS), help=argparse.SUPPRESS)  # one part, in a child process
    args = parser.parse_args()
    if args.part:
        count = {"records": args.records, "raw": args.raw_records, "trail": args.trail_records}[args.part]
        print(json.dumps(PARTS[args.part](count)))
        return 0
    rows = []
    for part in ("records", "raw", "trail"):
        child = subprocess.run(
            [sys.executable, __file__, "--part", part, "--records", str(args.records),
             "--raw-records", str(args.raw_records), "--trail-records", str(args.trail_records)],
            capture_output=True, text=True, check=False,
        )
        if child.returncode != 0:
            print(child.stderr, file=sys.stderr)
            return 1
        rows.extend(json.loads(child.stdout.strip().splitlines()[-1]))
    print(_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
