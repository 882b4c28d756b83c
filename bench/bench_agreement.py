#!/usr/bin/env python3
"""Benchmark of inter-coder agreement: 4 shows x 200 sampled messages, coded twice, bootstrap included.

Usage: bench/bench_agreement.py [--messages N] [--repeat R] [--seed S]

Two coders' Coda files are made for every show of the shipped configuration: each message gets one reason
(70 %), two (25 %) or three (5 %), or a control code (5 %); the second coder keeps each of the first coder's codes
with probability 0.8, else picks another; the binary shows get a yes/no/ambivalent code, and a few messages only
one coder coded. The timed call is the one stage 3
makes: ``icr_agreement`` over the four shows (code sets, per-code and overall measures, 1,000 bootstrap resamples
per scheme). Prints the fastest and the median of the repeats and the number of rows.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT / "src"))

from redss_pipeline.analysis.agreement import icr_agreement  # noqa: E402
from redss_pipeline.core.config import PipelineConfig, load_config  # noqa: E402
from redss_pipeline.export.coda import CodedMessages  # noqa: E402


def _label(scheme_id: str, code_id: str, minute: int) -> dict:
    return {"SchemeID": scheme_id, "CodeID": code_id, "DateTimeUTC": f"2019-02-01T09:{minute:02d}:00.000Z",
            "Checked": True, "Origin": {"OriginID": "bench@example.org", "Name": "Bench", "OriginType": "Manual"}}


def make_coders(config: PipelineConfig, messages: int, seed: int
                ) -> tuple[dict[str, list[str]], dict[str, CodedMessages], dict[str, CodedMessages]]:
    """Per show: the sampled message ids, and what two coders labelled them (mostly agreeing)."""
    rng = random.Random(seed)
    samples, first, second = {}, {}, {}
    for plan in config.rqa_plans:
        ids = [hashlib.sha256(f"{plan.name} message {i}".encode()).hexdigest() for i in range(messages)]
        normal = [code.code_id for code in plan.scheme.normal_codes]
        controls = [code.code_id for code in map(plan.scheme.control, ("NC", "WS")) if code is not None]
        binary_scheme = plan.binary.scheme if plan.binary else None
        binary = [code.code_id for code in binary_scheme.normal_codes] if binary_scheme else []
        files: tuple[list, list] = ([], [])
        for mid in ids:
            how_many = rng.choices((1, 2, 3), weights=(70, 25, 5))[0]
            codes = rng.sample(normal, how_many) if rng.random() > 0.05 else [rng.choice(controls)]
            other = [c if rng.random() < 0.8 else rng.choice(normal) for c in codes]
            for file, chosen in zip(files, (codes, other)):
                if rng.random() < 0.03:
                    file.append({"MessageID": mid, "Text": mid, "CreationDateTimeUTC": "2018-12-10T09:00:00+00:00",
                                 "Labels": []})
                    continue
                labels = [_label(plan.scheme.scheme_id + (f"-{i}" if i else ""), code, i)
                          for i, code in enumerate(dict.fromkeys(chosen))]
                if binary_scheme and binary:
                    labels.append(_label(binary_scheme.scheme_id, rng.choice(binary), 30))
                file.append({"MessageID": mid, "Text": mid, "CreationDateTimeUTC": "2018-12-10T09:00:00+00:00",
                             "Labels": labels[::-1]})
        samples[plan.coda_file] = ids
        first[plan.coda_file] = CodedMessages.from_json(files[0], path=f"Coded Coda Files/{plan.coda_file}")
        second[plan.coda_file] = CodedMessages.from_json(files[1], path=f"Coded Coda Files/ICR/{plan.coda_file}")
    return samples, first, second


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200, help="sampled messages per show (default 200)")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    config = load_config(PROJECT_ROOT / "pipeline_config.json")
    samples, first, second = make_coders(config, args.messages, args.seed)
    times, rows = [], []
    for _ in range(args.repeat):
        started = time.perf_counter()
        rows = icr_agreement(config, samples=samples, first_coder=first, second_coder=second)
        times.append(time.perf_counter() - started)
    print(f"agreement for {len(config.rqa_plans)} shows x {args.messages} messages, 1,000 bootstrap resamples per "
          f"scheme: fastest {min(times) * 1000:.0f} ms, median {statistics.median(times) * 1000:.0f} ms "
          f"({len(rows)} rows, {args.repeat} repeats)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
