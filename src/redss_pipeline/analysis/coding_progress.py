"""How far coding has got: per Coda dataset, how many of the messages offered to coders they have coded
(spec coding-quality.md section 5).

| column          | meaning                                                                                       |
| --------------- | --------------------------------------------------------------------------------------------- |
| ``messages``    | messages in the dataset's exported Coda file (``Outputs/Coda Files/<dataset>.json``)          |
| ``coded``       | of those, messages whose coded file has a checked current label in one of the dataset's schemes |
| ``coded_percent``| ``coded / messages`` in percent, one decimal (empty without messages)                         |
| ``wrong_scheme``| coded messages with a checked WS                                                             |
| ``not_coded``   | coded messages with a checked NC                                                             |

A message's current labels are read as the imports read them (coda.md 5.2 and 5.3: the newest label of each
SchemeID, cleared codes left out); only checked ones count, so an auto-code suggestion nobody confirmed is not
progress. Rows come in configuration order (the shows' datasets, then the surveys'), then ``Total``.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redss_pipeline.analysis.agreement import CodedScheme, decimal_cell
from redss_pipeline.core.code_scheme import NC, WS
from redss_pipeline.core.config import PipelineConfig
from redss_pipeline.core.errors import CodaFileError
from redss_pipeline.core.labels import is_checked
from redss_pipeline.export.coda import CodedMessages, current_labels
from redss_pipeline.export.csv_cells import write_csv

__all__ = [
    "COLUMNS",
    "TOTAL",
    "ProgressRow",
    "ProgressTally",
    "coding_progress",
    "dataset_schemes",
    "progress_cells",
    "progress_rows",
    "progress_tallies",
    "write_progress_csv",
]

COLUMNS = ("dataset", "messages", "coded", "coded_percent", "wrong_scheme", "not_coded")
"""The header of ``Outputs/Analysis/coding_progress.csv``."""

TOTAL = "Total"


@dataclass(frozen=True)
class ProgressRow:
    """The coding progress of one dataset (named by its Coda file without ``.json``), or the total."""

    dataset: str
    messages: int
    coded: int
    wrong_scheme: int
    not_coded: int

    @property
    def coded_percent(self) -> float | None:
        return None if self.messages == 0 else 100 * self.coded / self.messages


def dataset_schemes(config: PipelineConfig) -> dict[str, list[CodedScheme]]:
    """Every Coda dataset's schemes, by file name in configuration order.

    A show's dataset holds its reasons (multi-coded), its binary question and, for the show the week-3 -> week-2
    correction reads, the WS - Correct Dataset scheme; ``location.json`` the five location levels; every other
    survey dataset its plan's scheme.
    """
    schemes: dict[str, list[CodedScheme]] = {}
    for plan in config.rqa_plans:
        found = schemes.setdefault(plan.coda_file, [])
        found.append(CodedScheme(plan.scheme, True))
        if plan.binary is not None:
            found.append(CodedScheme(plan.binary.scheme, False))
        if config.ws_redirect is not None and config.ws_redirect.show == plan.name:
            found.append(CodedScheme(config.ws_redirect.scheme, False))
    for survey in config.survey_plans:
        found = schemes.setdefault(survey.coda_file, [])
        if all(known.scheme.scheme_id != survey.scheme.scheme_id for known in found):
            found.append(CodedScheme(survey.scheme, False))
    return schemes


class ProgressTally:
    """One dataset's progress, counted message by message as its exported messages go by: stage 3 counts them
    while it writes the dataset's Coda file (:meth:`counted`), so the messages are made once, not once for the
    file and again for the count. ``coded`` is the dataset's coded file, ``schemes`` its schemes.

    Once every exported message is counted, :meth:`unmatched` gives the coded messages no exported message
    matched: coders' work that no message of the run receives. ``redirect`` is the WS redirect's scheme when the
    dataset is the show it moves messages from: a message whose current checked label there is the redirect's
    code (``redirect_code_id``) has left the dataset by design, so it is not counted as unmatched."""

    def __init__(self, name: str, coded: CodedMessages, schemes: Sequence[CodedScheme], *,
                 redirect: CodedScheme | None = None, redirect_code_id: str | None = None):
        self.name = name
        self._coded = coded
        self._flags = [(s, _control_id(s, WS), _control_id(s, NC)) for s in schemes]
        self._messages = self._coded_count = self._wrong_scheme = self._not_coded = 0
        self._redirect = None if redirect is None else (redirect, redirect_code_id)
        # The coded file's MessageIDs that an exported message was found under (as many as the file holds).
        self._matched: set[str] = set()

    def add(self, mid: str) -> None:
        """Counts the exported message ``mid``."""
        self._messages += 1
        if mid not in self._coded:
            return
        checked = self._checked(mid)
        if not checked:
            return
        # The exported id itself (it may be a message of the file too) and the file's message it found.
        self._matched.update((mid, self._coded.file_message_id(mid) or mid))
        self._coded_count += 1
        self._wrong_scheme += any(code_id == ws for code_id, ws, _ in checked)
        self._not_coded += any(code_id == nc for code_id, _, nc in checked)

    def _checked(self, mid: str) -> list[tuple[str, str | None, str | None]]:
        """The CodeIDs of the checked current labels of ``mid`` in the dataset's schemes, each with the WS and NC
        CodeIDs of its scheme."""
        return [(label["CodeID"], ws, nc) for s, ws, nc in self._flags
                for label in current_labels(self._coded, mid, s.scheme, multi_coded=s.multi_coded)
                if is_checked(label)]

    def unmatched(self, coded_elsewhere: Collection[str] = frozenset()) -> list[str]:
        """The MessageIDs of the coded file's coded messages (a checked current label in one of the dataset's
        schemes) that no message counted so far was found under, in file order. Not among them: messages the WS
        redirect moved out of the dataset, and those in ``coded_elsewhere`` (the message went to another dataset,
        whose coded file codes it)."""
        unmatched = []
        for mid in self._coded.message_ids():
            if mid in self._matched or mid in coded_elsewhere:
                continue
            try:
                if not self._checked(mid) or self._redirected(mid):
                    continue
            except CodaFileError:  # labels no import reads (another project's codes): unused all the same
                pass
            unmatched.append(mid)
        return unmatched

    @property
    def matched(self) -> frozenset[str]:
        """The ids of the exported messages that found a coded message of the file (and the MessageIDs found)."""
        return frozenset(self._matched)

    def _redirected(self, mid: str) -> bool:
        if self._redirect is None:
            return False
        scheme, code_id = self._redirect
        return any(is_checked(label) and label["CodeID"] == code_id
                   for label in current_labels(self._coded, mid, scheme.scheme, multi_coded=False))

    def counted(self, messages: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
        """``messages`` (Coda messages) as they come, each counted by its ``MessageID`` on the way."""
        for message in messages:
            self.add(message["MessageID"])
            yield message

    def row(self) -> ProgressRow:
        """The progress row of the messages counted so far."""
        return ProgressRow(self.name, self._messages, self._coded_count, self._wrong_scheme, self._not_coded)


def _control_id(coded_scheme: CodedScheme, control_code: str) -> str | None:
    code = coded_scheme.scheme.control(control_code)
    return None if code is None else code.code_id


def progress_tallies(config: PipelineConfig, coded_files: Mapping[str, CodedMessages]) -> dict[str, ProgressTally]:
    """A tally per dataset, by Coda file name in configuration order, nothing counted yet; a dataset without a
    coded file has coded nothing yet."""
    redirect = config.ws_redirect
    redirect_file = None if redirect is None else config.rqa_plan(redirect.show).coda_file
    return {name: ProgressTally(
                name.removesuffix(".json"), coded_files.get(name, CodedMessages()), schemes,
                redirect=CodedScheme(redirect.scheme, False) if redirect is not None and name == redirect_file else None,
                redirect_code_id=None if redirect is None else redirect.code_id)
            for name, schemes in dataset_schemes(config).items()}


def progress_rows(tallies: Iterable[ProgressTally]) -> list[ProgressRow]:
    """The rows of ``coding_progress.csv``: each tally's row in the order given, then the total."""
    rows = [tally.row() for tally in tallies]
    total = ProgressRow(TOTAL, sum(r.messages for r in rows), sum(r.coded for r in rows),
                        sum(r.wrong_scheme for r in rows), sum(r.not_coded for r in rows))
    return [*rows, total]


def coding_progress(config: PipelineConfig, *, exported: Mapping[str, Iterable[str]],
                    coded_files: Mapping[str, CodedMessages]) -> list[ProgressRow]:
    """The rows of ``coding_progress.csv``: one per dataset in configuration order, then the total.

    ``exported`` gives each dataset's exported message ids (each read once, so they may be a stream) and
    ``coded_files`` its coded messages, both keyed by the Coda file name.
    """
    tallies = progress_tallies(config, coded_files)
    for name, tally in tallies.items():
        for mid in exported.get(name, ()):
            tally.add(mid)
    return progress_rows(tallies.values())


def progress_cells(row: ProgressRow) -> dict[str, Any]:
    """The row's CSV cells; ``coded_percent`` to one decimal (halves away from zero), empty without messages."""
    return {
        "dataset": row.dataset,
        "messages": row.messages,
        "coded": row.coded,
        "coded_percent": decimal_cell(row.coded_percent, 1),
        "wrong_scheme": row.wrong_scheme,
        "not_coded": row.not_coded,
    }


def write_progress_csv(path: str | os.PathLike[str], rows: Iterable[ProgressRow]) -> None:
    """Writes ``coding_progress.csv`` atomically."""
    write_csv(path, COLUMNS, ([progress_cells(row)[column] for column in COLUMNS] for row in rows))
