"""Which of a data root's files go to Google Drive, under which names: the three CSVs of the last stage-3 run, then
the shareable report and tables of the last analysis, as the manifests of the runs that wrote them list them.

Stage 3's ``--drive-upload``, the analysis command's and the ``upload`` command (which sends a data root's outputs
again, after a failed upload, without running the stage) all send this list:

- the list comes from the manifests, not from the folders, so a file an older run left behind (the table of a
  dataset since removed from the configuration) is never sent. The analysis files are those of
  ``Outputs/Analysis/manifest.json`` when the analysis command ran after the last stage-3 run (stage 3 removes
  that manifest; one older than ``Outputs/manifest.json`` was left by a version of the pipeline that did not, and
  is not read), else those of ``Outputs/manifest.json``;
- each file is checked against the SHA-256 its manifest gives before anything is sent, so what goes up is what
  the pipeline wrote: a CSV opened and saved again in a spreadsheet (which rewrites dates and long numbers) is
  refused, not shared.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from redss_pipeline.analysis.stage import REPORT_FILE, SHAREABLE_DIR
from redss_pipeline.core.config import PipelineConfig
from redss_pipeline.core.data_root import DataRoot
from redss_pipeline.core.disk_errors import describe_os_error
from redss_pipeline.core.errors import DriveError
from redss_pipeline.core.output_set import MANIFEST_NAME

__all__ = ["drive_uploads"]


def drive_uploads(config: PipelineConfig, root: DataRoot, *, csvs: bool = True) -> list[tuple[Path, str]]:
    """The files to upload with their Drive names (``drive`` and ``analysis.drive`` in the configuration): the
    three CSVs (unless ``csvs`` is false), the shareable report and the shareable tables, each checked against its
    manifest. Call holding the data-root lock, after any interrupted switch was completed."""
    outputs, analysis = root.outputs_dir, root.analysis_dir
    analysed_on_its_own = _newer(analysis / MANIFEST_NAME, than=outputs / MANIFEST_NAME)
    stage3 = _manifest_files(outputs, "outputs") if csvs or not analysed_on_its_own else {}
    written = _manifest_files(analysis, "files") if analysed_on_its_own else stage3
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


def _manifest_files(folder: Path, key: str) -> dict[Path, str]:
    """The files a manifest lists (a path relative to the folder's parent, as the output sets write them), with
    their SHA-256."""
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
    entries = content.get(key) if isinstance(content, dict) else None
    if not isinstance(entries, list) or not all(
            isinstance(entry, dict) and isinstance(entry.get("path"), str) and isinstance(entry.get("sha256"), str)
            for entry in entries):
        raise DriveError(f"is not a manifest of the pipeline (no list of files under {key!r}): nothing was uploaded",
                         path=manifest)
    return {folder.parent / entry["path"]: entry["sha256"] for entry in entries}


def _check_unchanged(path: Path, sha256: str) -> None:
    try:
        with open(path, "rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
    except FileNotFoundError:
        raise DriveError("is listed in the manifest of the run that wrote it but is missing: nothing was uploaded; "
                         "run stage 3 again", path=path) from None
    except OSError as error:
        raise DriveError(f"cannot be read ({describe_os_error(error)}): nothing was uploaded", path=path) from None
    if digest != sha256:
        raise DriveError("has changed since the pipeline wrote it (its SHA-256 is not the one its manifest gives; "
                         "was it opened and saved in another program?): nothing was uploaded; run stage 3 again (for a file "
                         "of Outputs/Analysis, the analysis command is enough) to write it anew", path=path)
