#!/usr/bin/env python3
"""Benchmark of stage 3 on synthetic data roots of 10,000, 100,000 and 1,000,000 messages, in three data shapes.

Usage: bench/bench_generate.py [--messages N [N ...]] [--shape project|coded|2019 ...] [--keep DIR] [--root DIR ...]
       [--workers N]        (default: all three sizes, all three shapes)

Shapes: ``project`` makes a data root from the bundled synthetic CSAP workspace (realistic answers, noise,
corrections, repeated surveys): a base workspace is generated once and its contacts are replicated under new
ids until the show flows hold about N runs, then the raw files are written in the 2019 layout and the UUID
table is filled, as stage 2 would; nothing is coded, so every show answer is NR. ``coded`` is that data root
after the coders' work, the shape a project's data takes for most of its life: a first stage-3 run (not measured)
exports the Coda files, the demo's simulated coder codes them into ``Coded Coda Files/`` (nine texts in ten
get a checked label; stage 3's manual-code merge gives it to every message of the text, so the analysis columns,
the audit trail and the report all work on coded data), and that run's outputs are removed, so the measured run
starts as on the other shapes. ``2019`` uses bench/make_2019_root.py, an independent generator closer to the 2019
files (demographic surveys for most people, py/state records, coded files). ``--root`` benchmarks
existing data roots instead (their Outputs/ are replaced).

Stage 3 runs in a fresh process (so the peak memory is its own), with its worker processes (``--workers``).
Reported per run: wall time, CPU time (user + system of stage 3 and its workers), peak memory (the largest
summed proportional set size of stage 3 and its workers, and the peak of stage 3's own process), messages,
traced_data.json bytes per message, the time of each step (summed over the workers, so with several workers
the steps add up to more than the wall time), and how much each step raised the peak memory of stage 3's own
process and its workers (the steps during which a process's peak grew, and by how much, summed over the
processes); the CPU of stage 3 without its last step, the analysis report, is shown apart. Data-root
preparation is not timed.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT / "src"))

from process_memory import TreeMemory  # noqa: E402 (bench/, beside this script)

from redss_pipeline.core.config import load_config  # noqa: E402
from redss_pipeline.core.data_root import DataRoot  # noqa: E402
from redss_pipeline.core.run_context import RunContext  # noqa: E402
from redss_pipeline.core.traced_data_json import write_traced_data_file  # noqa: E402
from redss_pipeline.deidentify.uuid_table import create_uuid_table, open_uuid_table  # noqa: E402
from redss_pipeline.demo.simulated_coder import simulate_coding  # noqa: E402
from redss_pipeline.demo.synthetic_workspace import generate_workspace  # noqa: E402
from redss_pipeline.fetch.raw_records import ContactRef, build_raw_records  # noqa: E402

BASE_SIZE = 20_000


def make_data_root(root: Path, messages: int, *, seed: int = 1) -> None:
    """Writes a stage-2-like data root with about ``messages`` show runs."""
    config = load_config()
    workspace = generate_workspace(seed=seed, size=BASE_SIZE)
    flows = {f["name"]: f for f in workspace.flows()}
    archived = workspace.archived_runs()
    runs_by_flow = {
        name: workspace.runs(flow=flow["uuid"]) + [r for r in archived if r["flow"]["uuid"] == flow["uuid"]]
        for name, flow in flows.items()
    }
    show_flows = [p.flow for p in config.rqa_plans]
    base_show_runs = sum(len(runs_by_flow[f]) for f in show_flows)
    copies = max(1, round(messages / base_show_runs))
    contacts = [c for c in workspace.contacts() if c.get("urns")]
    create_uuid_table(root)
    contact_refs: dict[str, ContactRef] = {}
    with open_uuid_table(root) as table:
        for k in range(copies):
            keys = [f"25261{k:03d}{i:05d}" for i in range(len(contacts))]
            ids = table.uuids_for_keys(keys)
            for contact, key in zip(contacts, keys):
                contact_refs[f"{k}:{contact['uuid']}"] = ContactRef(ids[key])
    step = RunContext.now("bench@example.org").step("fetch/bench")
    data_root = DataRoot(root)
    data_root.raw_data_dir.mkdir(parents=True, exist_ok=True)
    for flow in config.flows:
        runs = sorted(runs_by_flow[flow.name], key=lambda r: (r["modified_on"], r["id"]))
        replicated = []
        for k in range(copies):
            for run in runs:
                clone = copy.copy(run)
                clone["contact"] = {"uuid": f"{k}:{run['contact']['uuid']}"}
                clone["id"] = run["id"] + k * 10_000_000
                replicated.append(clone)
        built = build_raw_records(replicated, contact_refs, flow=flow.name, mode=flow.mode,
                                  test_contact_uuids=set(), step=step)
        write_traced_data_file(data_root.raw_file(flow.name), built.records)


def run_stage3(root: Path, workers: int | None) -> dict:
    """Runs stage 3 in a child process; returns its wall time, CPU time, peak memory and counts.

    CPU time counts the worker processes too (they are waited for, so they are in RUSAGE_CHILDREN). The peak
    memory is sampled from outside: the largest sum, over stage 3's process and its workers, of the
    proportional set size (Pss, /proc/<pid>/smaps_rollup), so pages a worker shares with the process that
    forked it count once. The stage's own process peak (VmHWM) is reported beside it."""
    code = (
        "import json, resource, sys, time\n"
        "from redss_pipeline.core.config import load_config\n"
        "from redss_pipeline.generate.stage import run_generate\n"
        "from redss_pipeline.generate.runner import peak_memory_mib\n"
        "from redss_pipeline.core.run_context import RunContext\n"
        "t = time.perf_counter()\n"
        "workers = int(sys.argv[2]) if sys.argv[2] else None\n"
        "s = run_generate(config=load_config(), data_root=sys.argv[1], run=RunContext.now('bench@example.org'), progress=sys.stderr, workers=workers)\n"
        "u, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(json.dumps({'seconds': time.perf_counter() - t, 'cpu': u.ru_utime + u.ru_stime + c.ru_utime + c.ru_stime,"
        " 'own_peak_mib': peak_memory_mib(),"
        " 'messages': s.counts['messages'], 'people': s.counts['people'], 'steps': s.step_seconds, 'step_cpu': s.step_cpu_seconds,"
        " 'step_peak_rise': s.step_peak_rise_mib}))\n"
    )
    stage = subprocess.Popen([sys.executable, "-c", code, str(root), str(workers or "")], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(PROJECT_ROOT / "src")))
    sampler = TreeMemory(stage.pid)
    sampler.start()
    stdout, stderr = stage.communicate()
    sampler.stop()
    if stage.returncode != 0:
        raise SystemExit(f"stage 3 failed:\n{stderr}")
    result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    result["peak_mib"] = max(sampler.peak_mib, result["own_peak_mib"])
    return result


def make_coded_root(root: Path, messages: int) -> None:
    """The project's data root once coded: stage 3 exports the Coda files, the demo's simulated coder codes them."""
    make_data_root(root, messages)
    run_stage3(root, workers=None)  # not measured; only its Coda exports are used
    simulate_coding(root, config=load_config())
    shutil.rmtree(DataRoot(root).outputs_dir)  # the coded files are outside it


def make_2019_root(root: Path, messages: int) -> None:
    """A data root of the independent 2019-shaped generator (bench/make_2019_root.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import make_2019_root

    make_2019_root.make_root(root, messages, seed=2019)


MAKERS = {"project": make_data_root, "coded": make_coded_root, "2019": make_2019_root}


def bench(root: Path, workers: int | None) -> dict:
    result = run_stage3(root, workers)
    result["trail_bytes"] = (root / "Outputs" / "traced_data.json").stat().st_size
    return result


def main() -> None:
    # No abbreviations: bench_in_docker.sh recognises --root and --keep by their full names to mount their folders.
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--messages", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--shape", choices=list(MAKERS), nargs="+", default=list(MAKERS))
    parser.add_argument("--keep", type=Path, help="keep the data roots under this folder")
    parser.add_argument("--root", type=Path, nargs="+", action="extend",
                        help="benchmark these existing data roots instead")
    parser.add_argument("--workers", type=int, help="stage 3's --workers (default: its own default)")
    args = parser.parse_args()
    rows = []
    if args.root:
        for root in args.root:
            rows.append((root.name, bench(root, args.workers)))
            _print_run(*rows[-1])
    else:
        for shape in args.shape:
            for n in args.messages:
                with tempfile.TemporaryDirectory() as tmp:
                    root = (args.keep / f"bench-{shape}-{n}") if args.keep else Path(tmp) / "root"
                    MAKERS[shape](root, n)
                    # The new root's files (1.7 GB at a million messages) are written out to disk now, not while
                    # stage 3 is measured (a run started right after making a million-message root once took 221 s,
                    # the same run a few minutes later 156 s).
                    os.sync()
                    rows.append((f"{shape} {n:,}", bench(root, args.workers)))
                    _print_run(*rows[-1])
    # The interpreter's build matters (see the README's Performance section): say which one was measured.
    print(f"\nstage 3 benchmark (this machine, Python {sys.version.split()[0]}, {platform.python_compiler()}, "
          f"built {platform.python_build()[1]})")
    print(f"{'data root':>22} {'messages':>10} {'wall s':>8} {'CPU s':>8} {'w/o analysis':>13} {'peak MiB':>9} "
          f"{'own MiB':>8} {'trail B/msg':>12}")
    for name, result in rows:
        m = result["messages"]
        core = result["cpu"] - result["step_cpu"].get("analysis", 0.0)
        print(f"{name:>22} {m:>10,} {result['seconds']:>8.1f} {result['cpu']:>8.1f} {core:>13.1f} {result['peak_mib']:>9.0f} "
              f"{result['own_peak_mib']:>8.0f} {result['trail_bytes'] / m:>12.0f}")


def _print_run(name: str, result: dict) -> None:
    m = result["messages"]
    print(f"{name}: {m:,} messages, {result['seconds']:.1f} s wall, {result['cpu']:.1f} s CPU, "
          f"{result['peak_mib']:.0f} MiB peak "
          f"(its own process {result['own_peak_mib']:.0f} MiB), {result['trail_bytes'] / m:.0f} B/message in traced_data.json", flush=True)
    print("  time per step (wall/CPU): " + ", ".join(f"{name} {s:.1f}/{result['step_cpu'][name]:.1f} s"
                                                   for name, s in result["steps"].items()), flush=True)
    rises = sorted(result["step_peak_rise"].items(), key=lambda item: -item[1])
    print("  steps that raised the peak memory: " + ", ".join(f"{name} +{mib:.0f} MiB" for name, mib in rises if mib >= 1),
          flush=True)
    analysis = result["step_cpu"].get("analysis", 0.0)
    print(f"  stage 3 without the analysis report: {result['cpu'] - analysis:.1f} s CPU "
          f"(the analysis: {analysis:.1f} s CPU)", flush=True)


if __name__ == "__main__":
    main()
