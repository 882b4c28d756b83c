"""Which of a data root's files go to Google Drive, under which names: the three CSVs of the last stage-3 run, then
the shareable report and tables of the last analysis, as the manifests of the runs that wrote them list them.

Stage 3's ``--drive-upload``, the analysis command's and the ``upload`` command (which sends a data root's outputs
again, after a failed upload, without running the stage) all send this list:

- the list comes from the manifests, not from the folders, so a file an older run left behind (the table of a
  dataset since removed from the configuration) is never sent. The analysis files are those of
  ``Outputs/Analysis/manifest.json`` when the analysis command analysed the CSVs of the last stage-3 run (its
  manifest gives the SHA-256 of that run's ``Outputs/manifest.json``; stage 3 itself removes it, and one written
  by a version of the pipeline that did not record the SHA-256 is read only if it is newer than
  ``Outputs/manifest.json``), else those of ``Outputs/manifest.json``;
- each file is checked against the SHA-256 its manifest gives before anything is sent, so what goes up is what
  the pipeline wrote: a CSV opened and saved again in a spreadsheet (which rewrites dates and long numbers) is
  refused, not shared.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from redss_pipeline.analysis.stage import REPORT_FILE, SHAREABLE_DIR
from redss_pipeline.core.config import PipelineConfig
from redss_pipeline.core.data_root import DataRoot
from redss_pipeline.core.disk_errors import describe_os_error
from redss_pipeline.core.errors import DriveError
from redss_pipeline.core.output_set import MANIFEST_NAME
from redss_pipeline.core.run_manifest import file_sha256

__all__ = ["drive_uploads"]


def drive_uploads(config: PipelineConfig, root: DataRoot, *, csvs: bool = True) -> list[tuple[Path, str]]:
    """The files to upload with their Drive names (``drive`` and ``analysis.drive`` in the configuration): the
    three CSVs (unless ``csvs`` is false), the shareable report and the shareable tables, each checked against its
    manifest. Call holding the data-root lock, after any interrupted switch was completed."""
    outputs, analysis = root.outputs_dir, root.analysis_dir
    analysis_manifest = _manifest(analysis) if (analysis / MANIFEST_NAME).exists() else None
    if analysis_manifest is not None and not _analyses_these_outputs(analysis_manifest, root):
        analysis_manifest = None  # an analysis of other outputs: the stage-3 manifest lists the analysis files
    stage3 = _files(_manifest(outputs), outputs, "outputs") if csvs or analysis_manifest is None else {}
    written = stage3 if analysis_manifest is None else _files(analysis_manifest, analysis, "files")
    uploads: list[tuple[Path, str]] = []
    if csvs:
        for name, drive_name in ((config.outputs.messages_csv, config.drive.messages_csv),
                                 (config.outputs.individuals_csv, config.drive.individuals_csv),
                                 (config.outputs.production_csv, config.drive.production_csv)):
            if outputs / name not in stage3:
                raise DriveError(f"does not list {name}: nothing was uploaded; run stage 3 again",
                                 path=outputs / MANIFEST_NAME)
            uploads.append((outputs / name, drive_name))
    if analysis / REPORT_FILE in written:
        uploads.append((analysis / REPORT_FILE, config.analysis.drive_report))
    uploads += [(path, config.analysis.drive_tables_prefix + path.name) for path in written
                if path.parent == analysis / SHAREABLE_DIR and path.suffix == ".csv"]
    for path, _ in uploads:
        _check_unchanged(path, written.get(path) or stage3[path])
    return uploads


def _analyses_these_outputs(analysis_manifest: dict[str, Any], root: DataRoot) -> bool:
    """Whether the analysis command's manifest is that of an analysis of the outputs of the last stage-3 run."""
    outputs_manifest = root.outputs_dir / MANIFEST_NAME
    if "outputs_manifest_sha256" not in analysis_manifest:  # written before the manifest recorded it
        return _newer(root.analysis_dir / MANIFEST_NAME, than=outputs_manifest)
    try:
        current = file_sha256(outputs_manifest)
    except FileNotFoundError:
        current = None  # outputs of the 2019 pipeline, analysed as they are
    except OSError as error:
        raise DriveError(f"cannot be read ({describe_os_error(error)}): nothing was uploaded",
                         path=outputs_manifest) from None
    return bool(analysis_manifest["outputs_manifest_sha256"] == current)


def _newer(manifest: Path, *, than: Path) -> bool:
    """Whether ``manifest`` exists and was written after ``than`` (or ``than`` does not exist)."""
    try:
        written = manifest.stat().st_mtime_ns
    except FileNotFoundError:
        return False
    try:
        return written > than.stat().st_mtime_ns
    except FileNotFoundError:
        return True


def _manifest(folder: Path) -> dict[str, Any]:
    """The content of a folder's manifest."""
    manifest = folder / MANIFEST_NAME
    try:
        content: Any = json.loads(manifest.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DriveError("no manifest, so no outputs of a finished run to upload: run stage 3 first",
                         path=manifest) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        cause = describe_os_error(error) if isinstance(error, OSError) else "not valid JSON"
        raise DriveError(f"cannot be read ({cause}): nothing was uploaded; run stage 3 again to write it anew",
                         path=manifest) from None
    if not isinstance(content, dict):
        raise DriveError("is not a manifest of the pipeline: nothing was uploaded", path=manifest)
    return content


def _files(content: dict[str, Any], folder: Path, key: str) -> dict[Path, str]:
    """The files a manifest lists (a path relative to the folder's parent, as the output sets write them), with
    their SHA-256."""
    entries = content.get(key)
    if not isinstance(entries, list) or not all(
            isinstance(entry, dict) and isinstance(entry.get("path"), str) and isinstance(entry.get("sha256"), str)
            for entry in entries):
        raise DriveError(f"is not a manifest of the pipeline (no list of files under {key!r}): nothing was uploaded",
                         path=folder / MANIFEST_NAME)
    return {folder.parent / entry["path"]: entry["sha256"] for entry in entries}


def _check_unchanged(path: Path, sha256: str) -> None:
    try:
        digest = file_sha256(path)
    except FileNotFoundError:
        raise DriveError("is listed in the manifest of the run that wrote it but is missing: nothing was uploaded; "
                         "run stage 3 again", path=path) from None
    except OSError as error:
        raise DriveError(f"cannot be read ({describe_os_error(error)}): nothing was uploaded", path=path) from None
    if digest != sha256:
        raise DriveError("has changed since the pipeline wrote it (its SHA-256 is not the one its manifest gives; "
                         "was it opened and saved in another program?): nothing was uploaded; run stage 3 again (for a file "
                         "of Outputs/Analysis, the analysis command is enough) to write it anew", path=path)
