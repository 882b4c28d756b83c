"""The data-root layout (spec pipeline.md section 2): one place that names every folder and file.

    <data-root>/
      UUIDs/phone_uuids.sqlite
      Raw Data/<flow>.json, Raw Data/rapid_pro_store.sqlite, Raw Data/Earlier raw files/<flow>.json
      Coded Coda Files/<dataset>.json
      Coded Coda Files/ICR/<show>.json (the second coder's ICR datasets)
      Outputs/<csv files>, Outputs/traced_data.json, Outputs/ICR/<show>.csv, Outputs/Coda Files/<dataset>.json
      Outputs/ICR/Coda Files/<show>.json, Outputs/Analysis/<tables>
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from redss_pipeline.core.errors import CodaFileError, PipelineError, RawDataError

__all__ = ["DataRoot", "FILE_IN_THE_WAY", "FOLDER_IN_THE_WAY", "refuse_what_is_in_the_way"]


@dataclass(frozen=True)
class DataRoot:
    """The folders of one data root. Build with ``DataRoot(path)``; nothing is created until asked."""

    root: Path

    def __init__(self, root: str | os.PathLike):
        object.__setattr__(self, "root", Path(root))

    @property
    def uuids_dir(self) -> Path:
        return self.root / "UUIDs"

    @property
    def raw_data_dir(self) -> Path:
        return self.root / "Raw Data"

    @property
    def fetch_store(self) -> Path:
        return self.raw_data_dir / "rapid_pro_store.sqlite"

    @property
    def earlier_raw_files_dir(self) -> Path:
        """Where the first fetch into a data root keeps the raw files it found (of a workspace nothing records)."""
        return self.raw_data_dir / "Earlier raw files"

    @property
    def raw_files_being_written(self) -> Path:
        """Present while stage 2 replaces raw files (and after a stage 2 that stopped before it replaced them all)."""
        return self.raw_data_dir / ".raw-files-being-written"

    @property
    def coded_dir(self) -> Path:
        return self.root / "Coded Coda Files"

    @property
    def outputs_dir(self) -> Path:
        return self.root / "Outputs"

    @property
    def coda_dir(self) -> Path:
        return self.outputs_dir / "Coda Files"

    @property
    def icr_dir(self) -> Path:
        return self.outputs_dir / "ICR"

    @property
    def icr_coda_dir(self) -> Path:
        """The ICR samples as Coda files for the second coder (coding-quality.md section 1)."""
        return self.icr_dir / "Coda Files"

    @property
    def icr_coded_dir(self) -> Path:
        """The second coder's coded ICR files, saved by people."""
        return self.coded_dir / "ICR"

    @property
    def analysis_dir(self) -> Path:
        return self.outputs_dir / "Analysis"

    def raw_file(self, flow: str) -> Path:
        """The raw file of a Rapid Pro flow."""
        return self.raw_data_dir / f"{flow}.json"

    def holds_raw_files(self) -> bool:
        """Whether ``Raw Data/`` holds a raw file (any ``*.json`` there: of this configuration's flows or not). Other
        files (a desktop's ``.DS_Store``, a template's ``.gitkeep``) are not fetched data."""
        return self.raw_data_dir.is_dir() and any(self.raw_data_dir.glob("*.json"))

    def check_raw_files_whole(self) -> None:
        """Refuses raw files that may be of two fetches: a stage 2 stopped (killed, disk full) after it replaced some
        raw files and before the rest. Stage 3 would otherwise read one flow's new runs with another's old ones."""
        if self.raw_files_being_written.exists():
            raise RawDataError("stage 2 stopped while it replaced the raw files, so they may be of two fetches: run "
                               "stage 2 again (it writes them anew from its fetch store) before stage 3",
                               path=self.raw_data_dir)

    def check_coded_dir(self) -> None:
        """Refuses a ``Coded Coda Files`` that is a link to a folder that does not exist (moved, or on a drive not
        mounted): read through it, every dataset would be "nothing coded yet", and the coders' work silently lost."""
        if self.coded_dir.is_symlink() and not self.coded_dir.exists():
            raise CodaFileError("a link to a folder that does not exist (moved, or on a drive not mounted?); restore "
                                "the folder or remove the link", path=self.coded_dir)

    def prepare_folders(self) -> None:
        """Before stage 3 writes anything: creates the folders people fill (``Coded Coda Files/`` and its ``ICR/``)
        and refuses anything but a folder where a folder of ``Outputs/`` must be (a file, a link to nothing). The
        output folders themselves are made when the outputs are switched into place, so a run that fails leaves
        at most an empty ``Outputs/``, not empty ``Coda Files/`` or ``ICR/`` folders that look like results."""
        for folder in (self.coded_dir, self.icr_coded_dir):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except FileExistsError:  # mkdir's own words: "File exists"
                raise _file_in_the_way(folder) from None
        for folder in (self.outputs_dir, self.coda_dir, self.icr_dir, self.icr_coda_dir, self.analysis_dir):
            if os.path.lexists(folder) and not folder.is_dir():
                raise _file_in_the_way(folder)


FILE_IN_THE_WAY = "a file is where this folder must be; move or rename the file"
"""What an error says when a folder the pipeline needs cannot be made because a file has its name."""
FOLDER_IN_THE_WAY = "a folder is where this file must be; move or rename the folder"
"""What an error says when a folder has the name of a file the pipeline reads or writes (replacing it would delete
the folder)."""


def refuse_what_is_in_the_way(file: Path, error: type[PipelineError] = PipelineError) -> None:
    """Raises ``error`` naming what stands where ``file`` (a file the pipeline reads or writes) must be: a file where
    its folder must be, or a folder where the file must be (replacing the file would delete the folder). A link is
    never in the way: replacing it replaces the link only."""
    if file.parent.exists() and not file.parent.is_dir():
        raise error(FILE_IN_THE_WAY, path=file.parent)
    if file.is_dir() and not file.is_symlink():
        raise error(FOLDER_IN_THE_WAY, path=file)


def _file_in_the_way(folder: Path) -> PipelineError:
    return PipelineError(FILE_IN_THE_WAY, path=folder)
