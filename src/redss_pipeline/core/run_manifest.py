"""``Outputs/manifest.json``: which run produced the outputs, from what, with which code and configuration.

Written as the last step of the output-set switch (:mod:`redss_pipeline.core.output_set`), so it always
describes the files beside it. It holds:

- ``run``: the ``<user>`` and the run's clock (the time every label of the run carries);
- ``code``: the package version and a SHA-256 over the package's source files (any edit changes it);
- ``configuration``: the configuration file's name and SHA-256, and the SHA-256 of each code-scheme file;
- ``inputs``: each file stage 3 read (raw files, coded Coda files, the UUID table), its size and SHA-256;
- ``counts``: the counts the steps reported (messages kept, runs dropped, people, ...);
- ``outputs``: every output file, its size and SHA-256.

Paths are relative to the data root. No phone number or other personal data appears in it. To check a
file against it: ``sha256sum Outputs/csap_mes.csv`` and compare with its ``sha256``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping

import redss_pipeline
from redss_pipeline.core.config import PipelineConfig
from redss_pipeline.core.data_root import DataRoot
from redss_pipeline.core.run_context import RunContext
from redss_pipeline.deidentify.uuid_table import table_paths

__all__ = ["FORMAT", "RecordedRun", "file_sha256", "run_manifest", "stage3_inputs"]

FORMAT = "redss-pipeline-run-manifest/1"


def run_manifest(
    outputs: list[dict[str, Any]], *, config: PipelineConfig, data_root: DataRoot, run: RunContext,
    counts: Mapping[str, int],
) -> dict[str, Any]:
    """The manifest of a stage-3 run, given the entries of its outputs (path, bytes, sha256)."""
    return {
        "format": FORMAT,
        "run": {"user": run.user, "started": run.started_at.isoformat()},
        "code": _code_version(),
        "configuration": _configuration(config),
        "inputs": [_file_entry(path, data_root.root) for path in stage3_inputs(config, data_root)],
        "counts": dict(counts),
        "outputs": outputs,
    }


def stage3_inputs(config: PipelineConfig, data_root: DataRoot) -> list[Path]:
    """The files stage 3 reads from a data root, those that exist, in a fixed order."""
    paths = [data_root.raw_file(flow.name) for flow in config.flows]
    datasets: list[str] = []
    for coda_file in [plan.coda_file for plan in config.rqa_plans] + [plan.coda_file for plan in config.survey_plans]:
        if coda_file not in datasets:
            datasets.append(coda_file)
    paths += [data_root.coded_dir / name for name in datasets]
    paths += [data_root.icr_coded_dir / plan.coda_file for plan in config.rqa_plans]  # the second coder's
    sqlite_path, json_path = table_paths(data_root.root)
    paths.append(sqlite_path if sqlite_path.exists() else json_path)
    return [path for path in paths if path.is_file()]


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, as ``sha256sum`` prints it."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


@dataclass(frozen=True)
class RecordedRun:
    """What an ``Outputs/manifest.json`` says of the stage-3 run that wrote it: when the run started (None when the
    time has no UTC offset), and the SHA-256 of each output file by its path relative to ``data_root``."""

    data_root: Path
    started: datetime | None
    outputs: Mapping[str, str]

    @classmethod
    def read(cls, manifest: Path) -> "RecordedRun | None":
        """The run a manifest records; None when there is no readable manifest (outputs of the 2019 pipeline)."""
        try:
            content = json.loads(manifest.read_text(encoding="utf-8"))
            outputs = {entry["path"]: entry["sha256"] for entry in content["outputs"]}
            started = datetime.fromisoformat(content["run"]["started"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return cls(manifest.parent.parent, started if started.tzinfo is not None else None, outputs)

    def wrote_as_is(self, files: list[Path]) -> bool:
        """Whether each of ``files`` is listed with the SHA-256 it has now: False when one was written again, or
        copied in, since the run."""
        try:
            return all(self.outputs.get(path.relative_to(self.data_root).as_posix()) == file_sha256(path)
                       for path in files)
        except (OSError, ValueError):  # a file missing, or not of this data root
            return False


def _file_entry(path: Path, base: Path) -> dict[str, Any]:
    return {"path": path.relative_to(base).as_posix(), "bytes": path.stat().st_size, "sha256": file_sha256(path)}


def _code_version() -> dict[str, str]:
    try:
        version = importlib.metadata.version("redss-pipeline")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    package = Path(redss_pipeline.__file__).parent
    digest = hashlib.sha256()
    for source in sorted(package.rglob("*.py")):
        digest.update(source.relative_to(package).as_posix().encode("utf-8") + b"\0")
        digest.update(source.read_bytes() + b"\0")
    return {"package": "redss-pipeline", "version": version, "source_sha256": digest.hexdigest()}


def _configuration(config: PipelineConfig) -> dict[str, Any]:
    raw = json.loads(config.path.read_bytes())
    schemes_dir = config.path.parent / raw["code_schemes"]["directory"]
    return {
        "file": config.path.name,
        "sha256": file_sha256(config.path),
        "code_schemes": {
            name: file_sha256(schemes_dir / name) for name in sorted(set(raw["code_schemes"]["files"].values()))
        },
    }
