#!/usr/bin/env python3
"""Benchmark of the automated analysis on synthetic stage-3 outputs of 100,000 and 1,000,000 messages.

Usage: bench/bench_analysis.py [--messages N [N ...]] [--keep DIR]

Stage 3 at a million messages takes minutes, so the outputs are synthesised directly in stage 3's layout
(``csap_mes.csv`` with one row per message, ``csap_ind.csv`` with one row per person, a person sending three
messages on average): every column of the configuration, codes drawn from the code schemes (several reasons,
NR, NC, WS, control codes, 1 % withdrawn), demographics drawn per person, so that individuals' profiles are
nearly all distinct (the worst case for the analysis, which works once per distinct profile), and a distinct
text per message (every sample key is computed). Writing the CSVs is not timed.

The analysis then runs in a fresh process (``generate_outputs.py analyse``); the script reports the wall time of
reading and tables, of charts, maps and report, the total, and the peak resident memory.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT / "src"))

from process_memory import TreeMemory  # noqa: E402 (bench/, beside this script)

from redss_pipeline.core.config import RqaPlan, load_config  # noqa: E402
from redss_pipeline.export.analysis_files import analysis_columns  # noqa: E402


def _pick(rng: random.Random, codes: list[str]) -> str:
    return codes[int(rng.random() * len(codes))]


def write_outputs(outputs: Path, messages: int, *, seed: int = 1) -> None:
    """Writes csap_mes.csv and csap_ind.csv with ``messages`` rows and about a third as many people."""
    config = load_config()
    columns = analysis_columns(config)
    at = {c: i for i, c in enumerate(columns)}
    rng = random.Random(seed)
    people = max(1, messages // 3)
    flags = [*config.channels, *config.weeks]

    def blank() -> list[str]:
        row = ["NA"] * len(columns)
        for key in ("consent_withdrawn", "non_logical_time", *flags):
            row[at[key]] = "false"
        for plan in config.rqa_plans:
            for code in plan.scheme.codes:
                row[at[plan.analysis_prefix + code.string_value]] = "1" if code.string_value == "NA" else "0"
            row[at[plan.raw_field]] = ""
        for survey in config.survey_plans:
            row[at[survey.raw_field]] = ""
        return row

    surveys = {plan.analysis_key: [c.string_value for c in plan.scheme.codes if c.string_value != "STOP"]
               for plan in config.survey_plans}
    operators = [c.string_value for c in config.operator.scheme.codes]
    person_rows = []
    for p in range(people):
        row = blank()
        row[at["uid"]] = f"avf-phone-uuid-bench-{p:08d}"
        row[at[config.operator.analysis_key]] = _pick(rng, operators)
        for key, codes in surveys.items():
            if key == "age":
                row[at[key]] = str(10 + int(rng.random() * 90)) if rng.random() < 0.8 else "NA"
            else:
                row[at[key]] = _pick(rng, codes) if rng.random() < 0.7 else "NA"
        person_rows.append(row)
    withdrawn = set(rng.sample(range(people), people // 100))

    def show_codes(plan: RqaPlan) -> list[str]:
        roll = rng.random()
        normal = [c.string_value for c in plan.scheme.normal_codes]
        if roll < 0.25:
            return ["NR"]
        if roll < 0.30:
            return [_pick(rng, ["NC", "WS", "NIC"])]
        if roll < 0.45:
            return rng.sample(normal, 2)
        if roll < 0.50:
            return [_pick(rng, normal), "NR"]
        return [_pick(rng, normal)]

    with open(outputs / config.outputs.messages_csv, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for m in range(messages):
            p = int(rng.random() * people)
            if p in withdrawn:
                row = ["STOP"] * len(columns)
                row[at["consent_withdrawn"]] = "true"
                writer.writerow(row)
                continue
            row = list(person_rows[p])
            week = int(rng.random() * len(config.rqa_plans))
            plan = config.rqa_plans[week]
            row[at[plan.analysis_prefix + "NA"]] = "0"
            codes = show_codes(plan)
            for code in codes:
                row[at[plan.analysis_prefix + code]] = "1"
            person = person_rows[p]
            for code in codes:  # the person's row holds every code of their messages
                person[at[plan.analysis_prefix + code]] = "1"
            person[at[plan.analysis_prefix + "NA"]] = "0" if any(
                person[at[plan.analysis_prefix + c.string_value]] == "1" for c in plan.scheme.codes
                if c.string_value != "NA") else "1"
            if plan.binary is not None:
                binary = [c.string_value for c in plan.binary.scheme.codes if c.string_value != "STOP"]
                row[at[plan.binary.analysis_key]] = person[at[plan.binary.analysis_key]] = _pick(rng, binary)
            row[at[plan.raw_field]] = f"answer {m} to {plan.name}"
            row[at[list(config.weeks)[week]]] = "true"
            row[at[_pick(rng, list(config.channels))]] = "true"
            writer.writerow(row)
    with open(outputs / config.outputs.individuals_csv, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for p, row in enumerate(person_rows):
            if p in withdrawn:
                row = ["STOP"] * len(columns)
                row[at["consent_withdrawn"]] = "true"
            writer.writerow(row)


def run_analysis_process(root: Path) -> dict:
    """Runs ``generate_outputs.py analyse`` on the data root; its wall time, step times and peak memory (the
    largest summed Pss of the command and the workers drawing its charts and maps)."""
    started = time.perf_counter()
    command = subprocess.Popen([sys.executable, str(PROJECT_ROOT / "generate_outputs.py"), "analyse", str(root)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = TreeMemory(command.pid)
    sampler.start()
    _, stderr = command.communicate()
    sampler.stop()
    wall = time.perf_counter() - started
    if command.returncode != 0:
        raise SystemExit(stderr)
    steps = dict(re.findall(r"analysis: (\w[\w ]*?)(?::.*?)? \((\d+\.\d) s\)", stderr))
    return {"wall": wall, "steps": {k: float(v) for k, v in steps.items()}, "peak_mib": sampler.peak_mib}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--keep", type=Path, help="keep the data roots under this folder")
    args = parser.parse_args()
    with contextlib.ExitStack() as cleanup:
        # Without --keep the data roots (about 530 MB at a million messages) are removed when the benchmark ends.
        base = args.keep or Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="bench-analysis-")))
        _benchmark(base, args.messages)
    return 0


def _benchmark(base: Path, sizes: list[int]) -> None:
    for n in sizes:
        root = base / f"analysis-{n}"
        (root / "Outputs").mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        write_outputs(root / "Outputs", n)
        print(f"{n:,} messages: outputs written in {time.perf_counter() - t:.0f} s (not timed)", flush=True)
        result = run_analysis_process(root)
        steps = result["steps"]
        read_and_tables = steps.get("read outputs", 0) + steps.get("tables", 0)
        print(f"  read + tables {read_and_tables:.1f} s (read {steps.get('read outputs', 0):.1f} s); charts and maps "
              f"{steps.get('charts and maps', 0):.1f} s, report "
              f"{steps.get('report', 0):.1f} s, write {steps.get('write', 0):.1f} s; whole command "
              f"{result['wall']:.1f} s; peak {result['peak_mib']:.0f} MiB", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
