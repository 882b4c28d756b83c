"""What stage 3 reads but cannot use: warnings, so that nobody's work is ignored without a word.

Each warning is one line naming the file (relative to the data root; the configuration file by its name) and how
much is affected. None of these stops the run, since each has a meaning the pipeline applies consistently, but each
usually means that someone's work, a fetch or the configuration did not go where it was meant to:

| what                                                   | what the pipeline does with it                     |
| ------------------------------------------------------ | -------------------------------------------------- |
| a coded file that is not a configured dataset          | ignored (e.g. ``S01E01.json`` for ``s01e01.json``) |
| labels under a SchemeID no plan of the file reads      | ignored                                            |
| a message whose Text is not the text of its MessageID  | its codes follow the MessageID                     |
| a coded message that no exported message matches       | its codes go to no message                         |
| a show's raw file with no runs                         | the show has no messages                           |
| a survey's raw file with no runs                       | its questions are NA for everyone                  |
| a run that appears more than once in a show's raw file | each copy counts as a message                      |
| a plan's answer that no record of its raw file holds,  | a survey plan's answer is NA for everyone; a       |
| the file having records (a mistyped ``result_key``)    | show's runs are dropped as empty runs              |
| a kept message whose time falls in no configured week  | no week column counts it                           |
| (not one sent at the project end, where a week ends)   |                                                    |
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from datetime import timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from redss_pipeline.analysis.coding_progress import ProgressTally
from redss_pipeline.core.config import PipelineConfig, RqaPlan, SurveyPlan
from redss_pipeline.core.data_root import DataRoot
from redss_pipeline.core.errors import CodaFileError, RawDataError, json_type, listed_with_and
from redss_pipeline.core.labels import is_checked
from redss_pipeline.core.record_fields import record_time
from redss_pipeline.export.coda import CodedMessages, coded_texts, current_labels, read_messages_text
from redss_pipeline.fetch.rapid_pro_keys import raw_key

if TYPE_CHECKING:  # show_messages is imported by what this module imports (the analysis package)
    from redss_pipeline.generate.show_messages import WeeklessMessages

__all__ = ["coded_file_warnings", "refuse_renamed_coded_files", "raw_file_warnings", "unread_answer_warnings", "week_warnings", "ShowRunTally",
           "ShowRuns", "RawAnswers"]


def coded_file_warnings(config: PipelineConfig, root: DataRoot, coded: Mapping[str, CodedMessages],
                        redact: Callable[[str], str]) -> list[str]:
    """Warnings about ``Coded Coda Files/``: files no dataset reads (there and in ``ICR/``, whatever their name),
    unknown SchemeIDs, Texts not matching ids. ``redact`` is the phone-number redaction, applied to the texts
    the warnings show (a 2019 coded file may hold texts coded before their numbers were redacted)."""
    second_coders = [plan.coda_file for plan in config.rqa_plans]
    warnings = _misnamed_coded_folders(root, coded) + _unread_folders(root)
    warnings += [_unread_file(path, root, list(coded), "a configured dataset")
                 for path in _unread_files(root.coded_dir, list(coded))]
    warnings += [_unread_file(path, root, second_coders, "a show's second-coder file")
                 for path in _unread_files(root.icr_coded_dir, second_coders)]
    exact, prefixes = _readable_schemes(config)
    for name, messages in coded.items():
        shown = _shown(root.coded_dir / name, root)
        unknown: Counter[str] = Counter()
        for mid in messages.message_ids():
            for label in messages.own_labels(mid):
                scheme_id = label["SchemeID"]
                if scheme_id not in exact.get(name, ()) and not scheme_id.startswith(prefixes.get(name, ())):
                    unknown[scheme_id] += 1
        if unknown:
            # A scheme another coded file is read for says which download this file probably is.
            owners = {scheme_id: [other for other in coded if other != name and (
                scheme_id in exact.get(other, ()) or scheme_id.startswith(prefixes.get(other, ())))]
                for scheme_id in unknown}
            listed = ", ".join(f"{scheme_id} {count}" + (f" (a scheme of {' and '.join(owners[scheme_id])})"
                                                         if owners[scheme_id] else "")
                               for scheme_id, count in unknown.most_common())
            total = sum(unknown.values())
            guesses = {other for files in owners.values() for other in files}
            hint = (f"; is it the coded download of {guesses.pop()}, saved under another name?"
                    if len(guesses) == 1 and all(owners.values()) else "")
            warnings.append(f"{shown}: {total} label{_s(total)} under SchemeIDs no plan reads from this file "
                            f"{'were' if total != 1 else 'was'} ignored ({listed}){hint}")
        warnings += _redirects_not_made(config, name, messages, shown)
        if messages.mismatched_texts:
            count = len(messages.mismatched_texts)
            warnings.append(f"{shown}: {count} message{_s(count)} whose Text is not the text of their MessageID "
                            f"(first: {_message(root.coded_dir / name, messages.mismatched_texts[0], redact)}); "
                            "their codes go to the message "
                            "with that MessageID, or to none if the run has no such message")
    return warnings


class ShowRunTally:
    """The runs of one show's raw file, counted as its records stream past (the file is never held whole).

    It also reads each message's send time under its Rapid Pro key, so a time that is not one is reported with
    the file, the record's position and that key (later steps know the value only as ``sent_on``).
    """

    def __init__(self, plan_result_key: str, flow: str):
        self._key = raw_key(plan_result_key, "Run ID", flow)
        self._time_key = raw_key(plan_result_key, "Time", flow)
        self._path = f"Raw Data/{flow}.json"
        self.count = 0
        self._first: dict[Any, int] = {}  # run id -> the position it first appeared at
        self._repeated: set[Any] = set()

    def add(self, record: Mapping[str, Any]) -> None:
        if self._time_key in record:
            try:
                record_time(record, self._time_key)
            except RawDataError as error:
                raise RawDataError(error.message, path=self._path, record=self.count, field=self._time_key) from None
        run_id = record.get(self._key)
        if run_id is not None:
            if type(run_id) is not int and type(run_id) is not str:
                raise RawDataError(
                    f"expected the run's id (a whole number, or the run's uuid), found {json_type(run_id)}",
                    path=self._path, record=self.count, field=self._key)
            if run_id in self._first:
                self._repeated.add(run_id)
            else:
                self._first[run_id] = self.count
        self.count += 1

    def finished(self) -> "ShowRuns":
        """What the warnings need of the file once every record was added; the tally lets the run ids go."""
        runs = ShowRuns(self.count, tuple(sorted(self._repeated, key=self._first.__getitem__)))
        self._first, self._repeated = {}, set()
        return runs


@dataclass(frozen=True)
class ShowRuns:
    """A show's raw file as its warnings see it: how many runs it holds, and the run ids met more than once,
    in the order they first appeared."""

    count: int
    repeated: tuple[Any, ...]


def raw_file_warnings(config: PipelineConfig, root: DataRoot, show_runs: Sequence[ShowRuns]) -> list[str]:
    """Warnings about the shows' raw files (in show order): empty files and repeated runs."""
    warnings = []
    for plan, runs in zip(config.rqa_plans, show_runs):
        shown = _shown(root.raw_file(plan.flow), root)
        if not runs.count:
            warnings.append(f"{shown}: holds no runs (was the flow fetched?)")
            continue
        repeated = runs.repeated
        if repeated:
            verb = "appears" if len(repeated) == 1 else "appear"
            warnings.append(f"{shown}: {len(repeated)} run{_s(len(repeated))} {verb} more than once "
                            f"(first: run {repeated[0]}); each copy counts as a message")
    return warnings


@dataclass(frozen=True)
class RawAnswers:
    """A raw file's answers as its warnings see them: its flow, how many records it holds, and the Rapid Pro results
    whose answer some record holds, by their name in the answer's key (``Involved`` in ``Involved (Value) -
    csap_evaluation``: :func:`~redss_pipeline.fetch.rapid_pro_keys.raw_key` of the result key ``involved``)."""

    flow: str
    records: int
    names: frozenset[str]

    @classmethod
    def of(cls, records: int, keys: Iterable[str], flow: str) -> "RawAnswers":
        """The answers among ``keys``, every key some record of the flow's file holds."""
        suffix = _answer_suffix(flow)
        return cls(flow, records, frozenset(key.removesuffix(suffix) for key in keys if key.endswith(suffix)))


def _answer_suffix(flow: str) -> str:
    """What follows a result's name in the key of its answer: `` (Value) - <flow>``."""
    return raw_key("", "Value", flow)


def unread_answer_warnings(config: PipelineConfig, root: DataRoot, raw_answers: Sequence[RawAnswers]) -> list[str]:
    """Warnings about plans whose answer no record of their flow's raw file holds, the file having records: a
    mistyped ``result_key`` (``listend`` for ``listened``) leaves the question or show empty without an error. Each
    names the answers the file holds that no plan reads and, when one of them is close, the result key it was meant
    to be; without one, the question may simply not have been answered yet. An empty survey file is said to be
    empty (every answer it would give is NA); a show's has a warning of its own (:func:`raw_file_warnings`)."""
    plans: list[RqaPlan | SurveyPlan] = [*config.rqa_plans, *config.survey_plans]
    survey_flows = {plan.flow for plan in config.survey_plans} - {plan.flow for plan in config.rqa_plans}
    warnings = []
    seen: set[str] = set()
    for answers in raw_answers:
        if answers.flow in seen:
            continue
        seen.add(answers.flow)
        if not answers.records:
            if answers.flow in survey_flows:
                warnings.append(f"{_shown(root.raw_file(answers.flow), root)}: holds no runs, so its questions are NA "
                                "for everyone (was the flow fetched, or not sent yet?)")
            continue
        suffix = _answer_suffix(answers.flow)
        readers: dict[str, list[RqaPlan | SurveyPlan]] = {}  # the name a plan's answer has in the file -> plans
        for plan in plans:
            if plan.flow == answers.flow:
                readers.setdefault(raw_key(plan.result_key, "Value", plan.flow).removesuffix(suffix), []).append(plan)
        unread = sorted(answers.names - readers.keys())
        for name, reading in readers.items():
            if name in answers.names:
                continue
            if unread:
                held = f"the file holds answers under {_answers(unread)} that no plan reads"
            else:
                held = "every answer the file holds is read by another plan" if answers.names else "it holds no answer"
            close = difflib.get_close_matches(name, unread, n=1)  # never an answer another plan reads
            question = (f"is result_key mistyped (did you mean {_result_key(close[0])!r})?" if close
                        else "is result_key mistyped, or has nobody answered the question yet?")
            warnings.append(f"{_shown(root.raw_file(answers.flow), root)}: no record holds {name + ' (Value)'!r}, "
                            f"the answer that {_plans(reading)} (result_key {reading[0].result_key!r}); {held}: "
                            f"{question}")
    return warnings


def _answers(names: Sequence[str], shown: int = 3) -> str:
    """Answers as a warning lists them, by their keys without the flow: the first ``shown``, then how many more."""
    listed = [repr(f"{name} (Value)") for name in names[:shown]]
    return listed_with_and(listed + [f"{len(names) - shown} more"] if len(names) > shown else listed)


def _result_key(name: str) -> str:
    """The result key whose answers a raw file holds under ``name``: Rapid Pro's result keys are in lower case
    (``Rqa_S01E01`` is ``rqa_s01e01``), which ``str.title`` turns into the name again."""
    return name.lower() if name.lower().title() == name else name


def _plans(plans: Sequence[RqaPlan | SurveyPlan]) -> str:
    """``show 's01e01' reads``, ``survey plan 'age' reads``, ``survey plans 'district' and 'region' read``."""
    groups = [(kind, [repr(plan.name) for plan in plans if isinstance(plan, cls)])
              for kind, cls in (("show", RqaPlan), ("survey plan", SurveyPlan))]
    named = [f"{kind}{_s(len(names))} {listed_with_and(names)}" for kind, names in groups if names]
    return " and ".join(named) + (" reads" if len(plans) == 1 else " read")


def week_warnings(config: PipelineConfig, weekless: WeeklessMessages) -> list[str]:
    """A warning about the kept messages that fall in no configured week: no week column counts them, which the
    outputs do not show (a week forgotten when a show was added to the configuration). It names the configuration
    file by its name, and the earliest of those times, where the first gap in the weeks is, in the UTC offset the
    project window is written in (as the weeks usually are). A project window that reaches past the last week on
    purpose gives this warning on every run; the warning says so."""
    count, earliest = weekless.count, weekless.earliest
    if not count or earliest is None:
        return []
    shown = earliest.replace(tzinfo=timezone.utc).astimezone(config.project_start.tzinfo).isoformat()
    return [f"{config.path.name}: {count} message{_s(count)} fall{'s' if count == 1 else ''} in no week of 'weeks' "
            f"(earliest: {shown}), so no column of 'weeks' counts {'it' if count == 1 else 'them'}: is a week "
            "missing, or does the project window reach past the weeks on purpose?"]


_WHY_A_SHOW_MESSAGE_IS_GONE = ("dropped (a test run, outside the project window), set aside as noise, moved to another "
                               "show by a correction, or coded in another project?")
# A survey keeps each person's newest answer: an answer given again replaces the one coded, week after week.
_WHY_A_SURVEY_ANSWER_IS_GONE = ("answered again since (the newest answer is the one kept and exported), dropped (a test "
                                "run), or coded in another project?")


def unmatched_code_warnings(config: PipelineConfig, root: DataRoot, tallies: Mapping[str, ProgressTally],
                            redact: Callable[[str], str]) -> list[str]:
    """Warnings about coded messages that no exported message matched (``tallies`` by Coda file name, each
    having counted its dataset's exported messages): their codes go to no message of the run. Not reported: a
    show's coded message whose text another show exported and codes (what a correction moves is coded where it now
    is). The rule goes by text, as MessageIDs do, so a dropped message whose very text another show codes is not
    reported either; the runner does not hand back which messages its corrections moved."""
    show_files = {plan.coda_file for plan in config.rqa_plans}
    # Every show's coded messages that an exported message found (a show's own are matched in its tally already).
    coded_in_shows = frozenset().union(*(tally.matched for name, tally in tallies.items() if name in show_files))
    warnings = []
    for name, tally in tallies.items():
        unmatched = tally.unmatched(coded_in_shows if name in show_files else frozenset())
        if unmatched:
            count = len(unmatched)
            warnings.append(
                f"{_shown(root.coded_dir / name, root)}: {count} coded message{_s(count)} "
                f"match{'es' if count == 1 else ''} no message this run exported to Coda (first: "
                f"{_message(root.coded_dir / name, unmatched[0], redact)}), so {'their' if count != 1 else 'its'} "
                "codes are not used: " + (_WHY_A_SHOW_MESSAGE_IS_GONE if name in show_files else
                                          _WHY_A_SURVEY_ANSWER_IS_GONE))
    return warnings


# A warning shows at most this many characters of a message's text: enough to find it in Coda by its start.
_SHOWN_TEXT = 60


def _message(path: Path, mid: str, redact: Callable[[str], str]) -> str:
    """A coded message as a warning names it: the start of its text as coders see it in Coda, on one line, with
    phone numbers redacted, then its MessageID (by which the file can be searched)."""
    text = coded_texts(path, [mid]).get(mid)
    if text is None:
        return f"MessageID {mid!r}"
    line = redact(" ".join(text.split()))  # on one line first, so a number split across lines is found whole
    shown = line if len(line) <= _SHOWN_TEXT else line[:_SHOWN_TEXT - 1].rstrip() + "\u2026"
    return f"{shown!r}, MessageID {mid!r}"


def _redirects_not_made(config: PipelineConfig, name: str, messages: CodedMessages, shown: str) -> list[str]:
    """The WS redirect's show: messages a coder marked (checked) as another dataset's than the one the redirect
    moves messages to. Only that redirect exists (spec pipeline.md 7.3.2), so the marks move nothing (a time-window
    correction may still move such a message, as the golden data root's M34)."""
    redirect = config.ws_redirect
    if redirect is None or config.rqa_plan(redirect.show).coda_file != name:
        return []
    elsewhere: Counter[str] = Counter()
    for mid in messages.message_ids():
        for label in current_labels(messages, mid, redirect.scheme, multi_coded=False):
            code = redirect.scheme.code_by_id(label["CodeID"])
            if is_checked(label) and code.is_normal and code.code_id != redirect.code_id \
                    and code.string_value != redirect.show:
                elsewhere[code.string_value] += 1
    if not elsewhere:
        return []
    total = sum(elsewhere.values())
    listed = ", ".join(f"{value} {count}" for value, count in elsewhere.most_common())
    target = redirect.scheme.code_by_id(redirect.code_id).string_value
    return [f"{shown}: {total} message{_s(total)} marked as another dataset's in {redirect.scheme.name} ({listed}): "
            f"the marks move nothing, as the pipeline moves only messages marked {target} "
            "(operational_corrections.ws_redirect)"]


def _readable_schemes(config: PipelineConfig) -> tuple[dict[str, set[str]], dict[str, tuple[str, ...]]]:
    """Per coded file: the SchemeIDs read exactly, and the prefixes read (a multi-coded scheme and its
    ``-1``, ``-2`` duplicates, as the merge of coda.md 5.3 reads them)."""
    exact: dict[str, set[str]] = {}
    prefixes: dict[str, tuple[str, ...]] = {}
    for plan in config.rqa_plans:
        prefixes[plan.coda_file] = prefixes.get(plan.coda_file, ()) + (plan.scheme.scheme_id,)
        if plan.binary is not None:
            exact.setdefault(plan.coda_file, set()).add(plan.binary.scheme.scheme_id)
        if config.ws_redirect is not None and config.ws_redirect.show == plan.name:
            exact.setdefault(plan.coda_file, set()).add(config.ws_redirect.scheme.scheme_id)
    for survey in config.survey_plans:
        exact.setdefault(survey.coda_file, set()).add(survey.scheme.scheme_id)
    return exact, prefixes


# What file managers leave in folders: never a coder's file.
_SYSTEM_FILES = frozenset({"thumbs.db", "desktop.ini"})


def refuse_renamed_coded_files(root: DataRoot, coded_files: list[str], second_coder_files: list[str]) -> None:
    """Stops the run when a coded file the run reads (``coded_files`` in ``Coded Coda Files/``,
    ``second_coder_files`` in its ``ICR/``) is missing and a file of its folder has its name in another
    form (other letters, an added extension, a browser's ``" (1)"`` copy): almost certainly the coder's download
    saved under another name. Read as "nothing coded yet", that dataset's codes would leave every output (the CSVs,
    the report, Drive) with no more than a warning; the file beside an existing one is only warned about
    (:func:`coded_file_warnings`)."""
    for folder, names in ((root.coded_dir, coded_files), (root.icr_coded_dir, second_coder_files)):
        for path in _unread_files(folder, names):
            missing = [name for name in names if _misnamed(path.name, name) and not (folder / name).exists()]
            if missing:
                raise CodaFileError(
                    f"not a file name the run reads, and {missing[0]} is missing: if this is its coded download, "
                    f"rename it to {missing[0]}, otherwise move it out of the folder (read as not coded yet, "
                    f"{missing[0]}'s codes would be left out of every output); nothing was written",
                    path=_shown(path, root))


def _unread_files(folder: Path, names: list[str]) -> list[Path]:
    """The files of ``folder`` a person may have put there (not hidden or system files) that are none of the files
    ``names`` the run reads, by name. A file system that ignores letter case (macOS, Windows) reads GENDER.JSON as
    gender.json: such a file is read, not ignored."""
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir() if path.is_file() and not path.name.startswith(".")
                  and path.name.casefold() not in _SYSTEM_FILES and not _is_read(path, names))


def _is_read(path: Path, names: list[str]) -> bool:
    """Whether ``path`` is the file of one of ``names``: the name itself, or the same name in other letters on a file
    system that ignores letter case (the very same file)."""
    for name in names:
        if path.name == name:
            return True
        if path.name.casefold() == name.casefold():
            return _same_place(path, path.with_name(name))
    return False


def _same_place(path: Path, other: Path) -> bool:
    """Whether two paths name the same file or folder: the same path, or another spelling of it on a file system
    that ignores letter case. False when ``other`` does not exist (a file system that tells cases apart)."""
    try:
        return path == other or os.path.samefile(path, other)
    except OSError:
        return False


def _misnamed_coded_folders(root: DataRoot, coded: Mapping[str, CodedMessages]) -> list[str]:
    """No coded file is read, but a folder of the data root named nearly as ``Coded Coda Files`` (``Coded coda
    files``, ``Coded_Coda_Files``, a copy's ``Coded Coda Files 2``) holds JSON files: the coders' work is probably
    there, and without a word every message of the run would be NR."""
    if any(len(messages) for messages in coded.values()):
        return []
    wanted = _folder_key(root.coded_dir.name)
    warnings = []
    for folder in sorted(p for p in root.root.iterdir() if p.is_dir() and p != root.coded_dir):
        if difflib.SequenceMatcher(None, _folder_key(folder.name), wanted).ratio() < 0.8:
            continue
        files = sum(1 for p in folder.glob("*.json") if p.is_file())
        if files:
            warnings.append(f"{root.coded_dir.name}/: no coded message was read, but {folder.name}/ holds {files} "
                            f"JSON file{_s(files)}: if they are the coders' files, rename the folder to "
                            f"'{root.coded_dir.name}' (the name stage 3 reads) and run stage 3 again; until then "
                            "every message is NR")
    return warnings


def _unread_folders(root: DataRoot) -> list[str]:
    """Folders inside ``Coded Coda Files/`` (other than ``ICR/``) or inside its ``ICR/`` that hold JSON files: stage 3
    reads neither, so the coders' files saved there (a copy one folder too deep, ``Coded Coda Files/Coded Coda
    Files/``; a second coder's ``icr/``; files sorted by week) would leave every message of their datasets NR."""
    warnings = []
    for folder in (root.coded_dir, root.icr_coded_dir):
        if not folder.is_dir():
            continue
        for inner in sorted(p for p in folder.iterdir() if p.is_dir() and not _hidden(p.name)):
            if _same_place(inner, root.icr_coded_dir):
                continue
            files = sorted(p.relative_to(inner).as_posix() for p in inner.rglob("*.json")
                           if p.is_file() and not any(map(_hidden, p.relative_to(inner).parts)))
            if not files:
                continue
            meant = root.icr_coded_dir if inner.name.casefold() == root.icr_coded_dir.name.casefold() else folder
            named = ", ".join(files[:3]) + (", ..." if len(files) > 3 else "")
            warnings.append(f"{_shown(inner, root)}/: a folder stage 3 does not read holds {len(files)} JSON "
                            f"file{_s(len(files))} ({named}), which {'were' if len(files) != 1 else 'was'} ignored: "
                            f"coded files are read from {_shown(meant, root)}/ itself")
    return warnings


def _hidden(name: str) -> bool:
    """A name no person saved coded files under: hidden files and folders, and the ``__MACOSX`` folder of a zip
    made on a Mac (its ``._s01e01.json`` are the Mac's notes on the real files)."""
    return name.startswith(".") or name == "__MACOSX"


def _folder_key(name: str) -> str:
    return "".join(character for character in name.casefold() if character.isalnum())


def _unread_file(path: Path, root: DataRoot, names: list[str], readable: str) -> str:
    """A file of a coded folder that no dataset reads: what it holds, and the name it was perhaps meant to have
    (the same name in other letters, an extension added by an editor, a browser's " (1)" copy)."""
    try:
        data = json.loads(read_messages_text(path))
        what = f"its {len(data)} message{_s(len(data))}" if isinstance(data, list) else "its content"
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        what = "its content (not a readable messages file)"
    meant = [name for name in names if _misnamed(path.name, name)]
    hint = f" (did you mean {meant[0]}?)" if meant else ""
    verb = "were" if what.endswith("s") else "was"
    return f"{_shown(path, root)}: not {readable}{hint}; {what} {verb} ignored"


def _misnamed(found: str, name: str) -> bool:
    found, name = found.casefold(), name.casefold()
    stem, dot, extension = name.rpartition(".")
    return (found == name or found.startswith(name + ".")
            or re.fullmatch(rf"{re.escape(stem)} ?\(\d+\){re.escape(dot + extension)}", found) is not None)


def _shown(path: Path, root: DataRoot) -> str:
    return path.relative_to(root.root).as_posix()


def _s(count: int) -> str:
    return "" if count == 1 else "s"
