"""The second coder's round trip: each show's ICR sample goes out as a blind Coda dataset and comes back coded
(spec coding-quality.md section 1).

    Outputs/ICR/<show>.csv                  the sample, as 2019 wrote it (pipeline.md 7.4.9)
    Outputs/ICR/Coda Files/<show>.json      the same sample as a Coda messages file, no labels  -> Coda, second coder
    Coded Coda Files/ICR/<show>.json        the second coder's download (Coda's get tool)       <- Coda
    Coded Coda Files/<show>.json            the first coder: the main dataset, coded as usual

The ICR messages carry the main dataset's message ids (SHA-256 of the text), so the two coders' labels of a
message can be paired; several sampled rows with one text are one message, created at the earliest sampled
time (the export rule of coda.md 4.3). No labels are written: the second coder must not see the first one's.

A missing second-coder file means the show has not been coded a second time yet. A file that is not the coded
download of a show's ICR dataset is refused before any output is written, with one error naming the file, the
message and the field: not what Coda's get tool writes (bad JSON, a message without an id, ...), a label under a
scheme that is not one of the show's, or a CodeID its scheme lacks. Messages that are not in this run's sample are a
warning, not an error: the sample is drawn again from every candidate on each run, so messages that arrive after the
second coder's download change it, and the second coder's work must not block the run. The agreement is measured on
the sample's messages only (coding-quality.md section 2), so those messages simply take no part. The ICR dataset may
therefore hold more messages than a sample (each run's ICR file added to the same Coda dataset); the main dataset's
download saved in its place is told by its labels: checked labels of the same coder (``Origin.OriginID``) in both
files are a warning. Labels that name no coder cannot tell it, and the agreement then compares a coder with
themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from redss_pipeline.core.code_scheme import CodeScheme
from redss_pipeline.core.config import PipelineConfig, RqaPlan
from redss_pipeline.core.data_root import DataRoot
from redss_pipeline.core.errors import CodaFileError
from redss_pipeline.core.labels import MANUALLY_UNCODED, is_checked
from redss_pipeline.export.coda import (
    CodedMessages,
    coda_messages,
    message_id,
    read_coded_file,
)
from redss_pipeline.generate.show_messages import IcrRow

__all__ = [
    "check_second_coder_file",
    "first_coder_files",
    "icr_coda_files",
    "icr_coda_messages",
    "read_second_coder_files",
]

_TEXT, _CREATED, _ID = "text", "created", "message_id"


def icr_coda_messages(rows: Sequence[IcrRow]) -> list[dict[str, Any]]:
    """A show's ICR rows as Coda messages for the second coder: one per distinct text, no labels.

    The export rules of the main datasets apply (coda.md section 4): the earliest sampled row of a text stands for
    it, messages come in creation-time order, times are written in UTC.
    """
    records = [{_TEXT: row.raw, _CREATED: row.sent_on, _ID: message_id(row.raw)} for row in rows]
    return coda_messages(records, raw_field=_TEXT, time_field=_CREATED, id_field=_ID, coded_fields=())


def icr_coda_files(config: PipelineConfig, icr_rows: Mapping[str, Sequence[IcrRow]]) -> dict[str, list[dict[str, Any]]]:
    """The second coder's Coda messages of every show, by the show's Coda file name (``s01e01.json``), in plan
    order; ``icr_rows`` is keyed by ICR file name (``s01e01.csv``) as stage 3's ICR step gives it."""
    return {plan.coda_file: icr_coda_messages(icr_rows.get(plan.icr_file, ())) for plan in config.rqa_plans}


def _show_schemes(plan: RqaPlan, config: PipelineConfig) -> tuple[list[CodeScheme], list[CodeScheme]]:
    """The schemes a show's coders may label: (multi-coded ones, matched with their duplicates ``-1``, ``-2`` ...;
    single-coded ones, matched exactly)."""
    single = [plan.binary.scheme] if plan.binary is not None else []
    if config.ws_redirect is not None and config.ws_redirect.show == plan.name:
        single.append(config.ws_redirect.scheme)
    return [plan.scheme], single


def check_second_coder_file(coded: CodedMessages, sample_ids: Sequence[str], plan: RqaPlan,
                            config: PipelineConfig) -> int:
    """Refuses a second-coder file that is not the coded download of the show's ICR dataset (see the module
    documentation); returns how many of its messages are not in the sample ``sample_ids``.

    Checks every label, not only the current ones: a file with a foreign code anywhere is the wrong file.
    """
    sample = set(sample_ids)
    outside = 0
    multi, single = _show_schemes(plan, config)
    exact = {scheme.scheme_id: scheme for scheme in single}
    expected = ", ".join([f"{s.scheme_id} ({s.name}, and its duplicates)" for s in multi]
                         + [f"{s.scheme_id} ({s.name})" for s in single])
    for mid in coded.message_ids():
        if mid not in sample:
            outside += 1
        labels = coded.all_labels(mid)
        for position_oldest_first, label in enumerate(labels):
            place = f"Labels[{len(labels) - 1 - position_oldest_first}]"
            scheme_id = label["SchemeID"]
            scheme = exact.get(scheme_id) or next((s for s in multi if scheme_id.startswith(s.scheme_id)), None)
            if scheme is None:
                raise CodaFileError(f"SchemeID {scheme_id!r} is not a scheme of {plan.name}; expected {expected}",
                                    path=coded.path, record=f"MessageID {mid!r}", field=f"{place}.SchemeID")
            code_id = label["CodeID"]
            if code_id != MANUALLY_UNCODED and not scheme.has_code_id(code_id):
                raise CodaFileError(
                    f"CodeID {code_id!r} is not a code of scheme {scheme.name!r} ({scheme.scheme_id})",
                    path=coded.path, record=f"MessageID {mid!r}", field=f"{place}.CodeID",
                )
    return outside


def read_second_coder_files(config: PipelineConfig, root: DataRoot,
                            icr_files: Mapping[str, Sequence[Mapping[str, Any]]],
                            first_coder: Mapping[str, CodedMessages],
                            ) -> tuple[dict[str, CodedMessages], list[str]]:
    """The second coder's coded files that exist, checked against the samples, by the show's Coda file name, and
    the warnings about them (one line each, naming the file): messages that are not in the show's sample, and
    messages whose labels come from the coder of the main dataset (``first_coder``, the main datasets' coded files
    by file name), which would measure a coder against themselves.

    ``icr_files`` holds each show's ICR Coda messages (:func:`icr_coda_files`). A show without a file is left
    out (not coded a second time yet).
    """
    found: dict[str, CodedMessages] = {}
    warnings = []
    for plan in config.rqa_plans:
        path = root.icr_coded_dir / plan.coda_file
        if not path.is_file():
            continue
        coded = read_coded_file(path)
        sample = [m["MessageID"] for m in icr_files.get(plan.coda_file, ())]
        outside = check_second_coder_file(coded, sample, plan, config)
        shown = path.relative_to(root.root).as_posix()
        if outside:
            warnings.append(
                f"{shown}: {outside:,} of its {len(coded):,} messages {'is' if outside == 1 else 'are'} not in "
                f"this run's ICR sample of {plan.name} (Outputs/ICR/Coda Files/{plan.coda_file}), which is drawn "
                f"again as messages arrive; {'it takes' if outside == 1 else 'they take'} no part in the agreement")
        if len(coded) and not any(is_checked(label) for mid in coded.message_ids() for label in coded.own_labels(mid)):
            warnings.append(
                f"{shown}: none of its {len(coded):,} messages has a checked label, so it adds nothing to the "
                "agreement: the second coder's labels count once checked (ticked) in Coda")
        both, same = _coded_by_the_same_coder(coded, first_coder.get(plan.coda_file), sample)
        if same:
            warnings.append(
                f"{shown}: {same:,} of the {both:,} sampled messages both coders checked a label of carry a checked "
                f"label by the same coder (Origin) in Coded Coda Files/{plan.coda_file}: the agreement compares "
                "that coder with themselves (was the main dataset's download saved here, or did its coder code the "
                "ICR dataset?)")
        found[plan.coda_file] = coded
    return found, warnings


def _coded_by_the_same_coder(second: CodedMessages, first: CodedMessages | None,
                             sample: Sequence[str]) -> tuple[int, int]:
    """Of the sampled messages that both files have a checked label of: how many, and how many of them a coder
    (a label's ``Origin.OriginID``) checked a label of in both files."""
    both = same = 0
    if first is None:
        return both, same
    for mid in dict.fromkeys(sample):
        second_coders = _checking_coders(second, mid)
        first_coders = _checking_coders(first, mid)
        if second_coders and first_coders:
            both += 1
            same += not second_coders.isdisjoint(first_coders)
    return both, same


def _checking_coders(coded: CodedMessages, mid: str) -> set[str]:
    """The OriginIDs of the checked labels of a message (any scheme, any time); a label that names no coder (no
    Origin, or no OriginID) says nothing about who checked it and is left out."""
    coders = set()
    for label in coded.all_labels(mid):
        origin = label.get("Origin")
        coder = origin.get("OriginID") if isinstance(origin, dict) else None
        if is_checked(label) and isinstance(coder, str) and coder:
            coders.add(coder)
    return coders


def first_coder_files(coded_files: Mapping[str, CodedMessages], config: PipelineConfig) -> dict[str, CodedMessages]:
    """Of the main datasets' coded files read by stage 3, the shows' files that exist (the first coder's)."""
    found = {}
    for plan in config.rqa_plans:
        coded = coded_files.get(plan.coda_file)
        if coded is not None and coded.path is not None and Path(coded.path).is_file():
            found[plan.coda_file] = coded
    return found
