"""Stage 3's outputs switch as one set: readers never see files of two runs, whenever the run is stopped.

The outputs keep their paths (``Outputs/csap_mes.csv``, ``Outputs/ICR/s01e01.csv``, ...), so the switch cannot be
one rename of a folder. It is a small write-ahead journal instead:

1. every output is written into a staging folder ``Outputs/.output-set-<random>/`` that mirrors ``Outputs/``;
   a failure or a kill here leaves the previous outputs as they were;
2. each staged file is hashed and the run manifest (:mod:`redss_pipeline.core.run_manifest`) is staged too;
3. the journal ``Outputs/.output-set.switch`` (the staging folder and the list of files) is written atomically:
   from this moment the new set *is* the outputs;
4. the staged files are moved into place, ``manifest.json`` last, with Ctrl-C and termination signals held
   back until the last one (so an interrupt cannot stop the switch half-way); the journal and the staging folder
   are then removed. Each file the set replaces is first moved aside into the staging folder, so a move that
   fails (a file or folder made read-only) is undone: the files already moved are put back, the journal is
   dropped, and the error says that the previous outputs were kept.

A file the set does not write but that must not outlive it (``retire``: the analysis command's
``Analysis/manifest.json`` when stage 3 writes the analysis) is moved aside with the files the set replaces.

A process killed between 3 and 4 (``kill -9``, a power cut) leaves the journal: the next run of stage 3 or of the
analysis command, under the data-root lock and before it reads or writes any output, finishes the moves
(:func:`finish_interrupted_switches`, the analysis folder's own set first), so the outputs
are again one run's set and ``manifest.json`` describes exactly those files. Staging folders without a journal
and temporary files of interrupted writes are removed at the same time. ``manifest.json`` written last is what
readers can trust: its hashes say which run produced each file.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any, Callable, Iterator, Sequence

from redss_pipeline.core.atomic_files import atomic_write_text, remove_interrupted_writes
from redss_pipeline.core.data_root import refuse_what_is_in_the_way
from redss_pipeline.core.disk_errors import describe_os_error
from redss_pipeline.core.errors import PipelineError

__all__ = [
    "MANIFEST_NAME", "OutputError", "OutputSet", "finish_interrupted_switch", "finish_interrupted_switches",
    "refuse_an_unfinished_switch",
]

MANIFEST_NAME = "manifest.json"
_STAGING_PREFIX = ".output-set-"
_JOURNAL_NAME = ".output-set.switch"
_PREVIOUS = ".previous"  # inside the staging folder: the outputs a switch replaces, until it is done
_TEMP_FOLDERS = (".", "ICR", "Coda Files")  # where interrupted single-file writes leave ".<name>.*.tmp"
_HELD_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP})


class OutputError(PipelineError):
    """The outputs cannot be written (a full disk, a read-only folder); the previous outputs are kept."""


def _output_error(outputs: Path, error: OSError) -> OutputError:
    return OutputError(f"cannot write the outputs: {describe_os_error(error)}; nothing was replaced", path=outputs)


class OutputSet:
    """Collects a run's outputs in a staging folder and switches them into ``Outputs/`` together.

    ``with OutputSet(outputs_dir, manifest=describe) as staged: write(staged.path_for(target))`` — when the block
    ends without an error the set switches (see the module text) and ``manifest.json`` is written from
    ``describe(outputs)``, where ``outputs`` lists each output's path (relative to the data root), size and
    SHA-256; on an error the staging folder is deleted and ``Outputs/`` is not touched.
    """

    def __init__(self, outputs_dir: str | os.PathLike, *, manifest: Callable[[list[dict[str, Any]]], dict],
                 retire: Sequence[str] = ()):
        # ``retire``: paths inside ``Outputs/`` that the set does not write but that must not outlive the switch
        # (another command's file describing outputs this set replaces); removed with the switch, kept if it fails.
        self._outputs = Path(outputs_dir)
        self._retire = list(retire)
        if MANIFEST_NAME in self._retire:
            raise ValueError(f"{MANIFEST_NAME} is the set's own manifest; it cannot be retired")
        try:
            self._outputs.mkdir(parents=True, exist_ok=True)
            self._staging = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=self._outputs))
        except OSError as error:
            raise _output_error(self._outputs, error) from error
        self._files: list[str] = []
        self._manifest = manifest

    def path_for(self, target: str | os.PathLike) -> Path:
        """Where to write the output that will end up at ``target`` (a path inside ``Outputs/``)."""
        relative = Path(os.path.relpath(Path(target), self._outputs))
        if relative.is_absolute() or relative.parts[:1] == ("..",) or relative.as_posix() == MANIFEST_NAME:
            raise ValueError(f"{target} is not an output path inside {self._outputs}")
        if relative.as_posix() in self._files:
            raise ValueError(f"{target} is staged twice")
        if relative.as_posix() in self._retire:
            # A completed switch repeated after a kill would move the new file aside again, and lose it.
            raise ValueError(f"{target} is retired by the set; it cannot be staged too")
        # The switch moves what is at an output's path aside and removes it with the staging folder: a person's
        # folder there would be deleted.
        refuse_what_is_in_the_way(self._outputs / relative, OutputError)
        self._files.append(relative.as_posix())
        staged = self._staging / relative
        staged.parent.mkdir(parents=True, exist_ok=True)
        return staged

    def __enter__(self) -> "OutputSet":
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            if isinstance(exc, OSError) and self._is_output(exc.filename):
                # A full disk or a read-only folder while writing a file whose writer did not name it. An error of
                # another file (an input) goes on as it is, naming that file.
                raise _output_error(self._outputs, exc) from exc
            return
        try:
            self._stage_manifest()
        except BaseException as error:
            shutil.rmtree(self._staging, ignore_errors=True)
            if isinstance(error, OSError):
                raise _output_error(self._outputs, error) from error
            raise
        plan = {"staging": self._staging.name, "files": self._files, "retire": self._retire}
        with _signals_held(done=f"the new outputs were all in place before the interrupt took effect ({MANIFEST_NAME} "
                                "describes them); nothing after them was done"):
            try:
                atomic_write_text(self._outputs / _JOURNAL_NAME, json.dumps(plan))
                _fsync_folder(self._outputs)
                _switch(self._outputs, plan)
            except OSError as error:
                name = error.filename if isinstance(error, _NotReplaced) else None
                cause = f"cannot replace {name}" if name else "cannot write the outputs"
                try:
                    _undo_switch(self._outputs, plan)
                except OSError:  # the outputs could not be put back: the next run completes the switch
                    raise OutputError(
                        f"{cause}: {describe_os_error(error)}; the switch stopped half-way and the next run of "
                        "stage 3 completes it", path=self._outputs) from error
                raise OutputError(f"{cause}: {describe_os_error(error)}; the previous outputs were kept",
                                  path=self._outputs) from error

    def _is_output(self, filename: Any) -> bool:
        """Whether an error's file is one of the outputs or staged files (or unnamed, as a failed write is, or named
        by a file descriptor)."""
        if not isinstance(filename, (str, bytes, os.PathLike)):
            return True
        return Path(os.path.abspath(os.fsdecode(filename))).is_relative_to(os.path.abspath(self._outputs))

    def _stage_manifest(self) -> None:
        outputs_name = self._outputs.name
        entries = []
        for relative in self._files:
            staged = self._staging / relative
            if not staged.is_file():
                raise FileNotFoundError(f"the output {relative} was staged but never written")
            digest, size = _sha256_and_fsync(staged)
            entries.append({"path": f"{outputs_name}/{relative}", "bytes": size, "sha256": digest})
        manifest = self._manifest(entries)
        atomic_write_text(self._staging / MANIFEST_NAME, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")


def finish_interrupted_switches(outputs_dir: str | os.PathLike, nested_dir: str | os.PathLike) -> list[str]:
    """:func:`finish_interrupted_switch` for ``Outputs/`` and for a set switched inside it on its own (the analysis
    command's ``Outputs/Analysis/``), the nested set first. Call before reading or writing any output, holding the
    data-root lock.

    Both commands complete both sets before they write, so at most one of them is pending. A nested journal older
    than ``Outputs/manifest.json`` is the exception: an earlier version of the pipeline did not look inside, so an
    analysis killed in its switch could be followed by a whole stage-3 run, whose newer files the journal would
    then move aside. Such a journal is dropped (its staging folder is removed with the other leftovers)."""
    outputs, nested = Path(outputs_dir), Path(nested_dir)
    notes: list[str] = []
    journal, manifest = nested / _JOURNAL_NAME, outputs / MANIFEST_NAME
    if journal.exists() and manifest.exists() and manifest.stat().st_mtime_ns > journal.stat().st_mtime_ns:
        journal.unlink()
        notes.append(f"dropped the unfinished switch of {nested.name}/, older than the outputs that replaced it")
    return notes + finish_interrupted_switch(nested) + finish_interrupted_switch(outputs)


def refuse_an_unfinished_switch(outputs_dir: str | os.PathLike) -> None:
    """For a reader that changes nothing (``explain``): outputs a killed run left half switched are of two runs (the
    audit trail of one, the CSVs of the other), so they are refused until a command that writes completes them."""
    if (Path(outputs_dir) / _JOURNAL_NAME).exists():
        raise OutputError("a run was stopped while it moved its outputs into place, so they may be of two runs: run "
                          "stage 3 or the analysis command, which completes the move first", path=outputs_dir)


def finish_interrupted_switch(outputs_dir: str | os.PathLike) -> list[str]:
    """Completes a switch a killed run left half-done and removes what interrupted runs left behind.

    Call at the start of stage 3 or of the analysis command, holding the data-root lock. Returns one note per
    thing done (empty when the folder was clean), for the progress output.
    """
    outputs = Path(outputs_dir)
    notes: list[str] = []
    if not outputs.is_dir():
        return notes
    journal = outputs / _JOURNAL_NAME
    if journal.exists():
        plan = _read_journal(journal)
        with _signals_held(done="the switch an interrupted run left unfinished was completed before the interrupt "
                                "took effect; nothing after it was done"):
            moved = _switch(outputs, plan)
        notes.append(f"completed the switch of an interrupted run ({moved} files moved into place)")
    for entry in outputs.iterdir():
        if entry.name.startswith(_STAGING_PREFIX) and entry.is_dir():
            shutil.rmtree(entry)
            notes.append(f"removed {entry.name}/, left by an interrupted run")
    for folder in _TEMP_FOLDERS:
        notes += remove_interrupted_writes(outputs / folder, shown_from=outputs)
    return notes


def _read_journal(journal: Path) -> dict:
    """The plan of a switch a killed run left unfinished. The journal is written whole and synced, so only damage
    from outside (a disk error, an edit) makes it unreadable; then which files are of which run cannot be told."""
    try:
        plan: dict = json.loads(journal.read_text(encoding="utf-8"))
        staging, files, retire = plan["staging"], plan["files"], plan.get("retire", [])  # no retire: older versions
    except (ValueError, TypeError, KeyError, AttributeError) as error:  # not JSON, not UTF-8, not the plan's shape
        problem = "it is not JSON" if isinstance(error, ValueError) else "it is not a switch plan"
    else:
        relative = [*files, *retire] if isinstance(files, list) and isinstance(retire, list) else None
        if not isinstance(staging, str) or relative is None or not all(isinstance(p, str) for p in relative):
            problem = "it is not a switch plan"
        elif not staging.startswith(_STAGING_PREFIX) or "/" in staging or not all(map(_inside, relative)):
            problem = "it names files outside the outputs"
        else:
            return plan
    raise OutputError(f"the plan of a switch an interrupted run left unfinished is damaged ({problem}), so the "
                      f"folder may hold files of two runs: delete this file and run stage 3 again, which writes "
                      f"every output anew", path=journal)


def _inside(relative: str) -> bool:
    """Whether a path of a switch plan names a file inside the outputs folder."""
    parts = PurePosixPath(relative).parts
    return bool(parts) and not PurePosixPath(relative).is_absolute() and ".." not in parts and relative != "."


def _switch(outputs: Path, plan: dict) -> int:
    """Moves every staged file still in the staging folder into place, the manifest last, each previous file
    first moved aside (see :func:`_undo_switch`); then forgets the journal and the staging folder. Safe to repeat
    after a kill at any point."""
    staging = outputs / plan["staging"]
    moved = 0
    folders = {outputs}
    for relative in plan.get("retire", []):  # journals of earlier versions have none
        target = outputs / relative
        if target.exists():
            aside = staging / _PREVIOUS / relative
            aside.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(target, aside)
            except OSError as error:
                raise _NotReplaced(error.errno, error.strerror, relative) from error
            folders.add(target.parent)
    for relative in [*plan["files"], MANIFEST_NAME]:
        source = staging / relative
        if source.exists():
            target = outputs / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                if target.is_dir() and not target.is_symlink():  # appeared since the run checked: never removed
                    raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(target))
                if target.exists():
                    aside = staging / _PREVIOUS / relative
                    aside.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(target, aside)
                os.replace(source, target)
            except OSError as error:
                raise _NotReplaced(error.errno, error.strerror, relative) from error
            folders.add(target.parent)
            moved += 1
    for folder in folders:
        _fsync_folder(folder)
    (outputs / _JOURNAL_NAME).unlink(missing_ok=True)
    _fsync_folder(outputs)
    shutil.rmtree(staging, ignore_errors=True)
    return moved


class _NotReplaced(OSError):
    """A switch could not move one output into place; ``filename`` is its path inside ``Outputs/``."""


def _undo_switch(outputs: Path, plan: dict) -> None:
    """Puts the previous outputs back after a failed :func:`_switch` (newest move first), then drops the journal
    and the staging folder: ``Outputs/`` is as it was before the switch.

    Each new file moved into place goes back to the staging folder before its previous version returns, so until
    the journal is dropped every new file is in place or staged: should the undo fail or be killed, the journal
    still describes the whole new set, and the next run completes the switch."""
    staging = outputs / plan["staging"]
    for relative in reversed([*plan["files"], MANIFEST_NAME]):
        target, staged, aside = outputs / relative, staging / relative, staging / _PREVIOUS / relative
        if not staged.exists() and target.exists():  # moved into place: back to the staging folder
            os.replace(target, staged)
        if aside.exists():
            os.replace(aside, target)
    for relative in plan.get("retire", []):
        aside = staging / _PREVIOUS / relative
        if aside.exists():
            os.replace(aside, outputs / relative)
    (outputs / _JOURNAL_NAME).unlink(missing_ok=True)
    _fsync_folder(outputs)
    shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def _signals_held(*, done: str) -> Iterator[None]:
    """Holds back Ctrl-C and termination signals for the block: they are noted, and delivered again when it ends.
    A Ctrl-C held through a block that completed is raised as a KeyboardInterrupt saying ``done`` (what the block
    finished), which the command line prints instead of "nothing was written"; a signal held through a block that
    failed gives way to the block's error.

    Python handlers rather than a signal mask: a process-directed signal goes to any thread that does not block
    it, and the libraries stage 3 uses may have started threads of their own.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {number: signal.signal(number, lambda signum, _frame: received.append(signum))
                for number in _HELD_SIGNALS}
    completed = False
    try:
        yield
        completed = True
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)
        # A signal held through a block that failed is not delivered: the block's error goes on, saying what failed,
        # and stops the run.
        if received and completed:
            if received[0] == signal.SIGINT and previous[signal.SIGINT] is signal.default_int_handler:
                raise KeyboardInterrupt(done)
            signal.raise_signal(received[0])


def _sha256_and_fsync(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
        os.fsync(handle.fileno())
    return digest.hexdigest(), size


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
