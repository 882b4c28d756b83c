"""Coding quality in one place: what stage 3 hands over and gets back (spec coding-quality.md).

| function / method                | when                                 | does                                       |
| -------------------------------- | ------------------------------------ | ------------------------------------------ |
| :func:`prepare_icr_round_trip`   | stage 3, right after the ICR samples | the second coder's Coda files; reads and   |
|                                  |                                      | checks the second coder's coded files      |
| :func:`measure_coding_quality`   | stage 3, once the Coda files are     | agreement, with the progress rows counted  |
|                                  | staged                               | while they were written                    |
| :meth:`CodingQuality.write`      | stage 3, with the other outputs      | the ICR Coda files and the two CSVs        |
| :meth:`CodingQuality.summary`    | stage 3's step summary               | one line per show: alpha and its band      |
| :func:`measure_from_data_root`   | without running stage 3 again        | the same, from the files stage 3 wrote     |
| :func:`section_context`          | the analysis report                  | what the "coding quality" section shows    |

Everything that can fail on a user's file (a second-coder file that does not belong to the sample, an unknown
code) fails in :func:`prepare_icr_round_trip`, in :func:`measure_coding_quality`, or, for a coded file's labels
met while the progress is counted, in :class:`~redss_pipeline.analysis.coding_progress.ProgressTally` as stage 3
writes the Coda files: always before any output is moved into place.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redss_pipeline.analysis.agreement import (
    ALL_CODES,
    AgreementRow,
    agreement_cells,
    alpha_band,
    decimal_text,
    icr_agreement,
    write_agreement_csv,
)
from redss_pipeline.analysis.coding_progress import (
    TOTAL,
    ProgressRow,
    coding_progress,
    dataset_schemes,
    progress_cells,
    write_progress_csv,
)
from redss_pipeline.core.config import PipelineConfig
from redss_pipeline.core.data_root import DataRoot
from redss_pipeline.core.errors import CodaFileError
from redss_pipeline.core.output_set import OutputSet
from redss_pipeline.deidentify.phone_redaction import PhoneRedactor
from redss_pipeline.export.coda import CodedMessages, read_coded_file, write_coda_file
from redss_pipeline.generate.icr_round_trip import (
    first_coder_files,
    icr_coda_files,
    read_second_coder_files,
)
from redss_pipeline.generate.show_messages import IcrRow

__all__ = [
    "AGREEMENT_CSV",
    "PROGRESS_CSV",
    "CodingQuality",
    "IcrRoundTrip",
    "measure_coding_quality",
    "measure_for_report",
    "measure_from_data_root",
    "prepare_icr_round_trip",
    "section_context",
]

AGREEMENT_CSV = "icr_agreement.csv"
PROGRESS_CSV = "coding_progress.csv"


@dataclass(frozen=True)
class IcrRoundTrip:
    """The second coder's side of one run: the ICR Coda messages of every show (by Coda file name, plan order)
    and the second coder's coded files that exist."""

    icr_files: dict[str, list[dict[str, Any]]]
    second_coder: dict[str, CodedMessages]
    warnings: list[str] = field(default_factory=list)  # second coders' messages outside the samples, per file

    def describe(self) -> str:
        coded = ", ".join(name.removesuffix(".json") for name in self.second_coder) or "none yet"
        return f"{len(self.icr_files)} ICR Coda files; coded by a second coder: {coded}"


@dataclass(frozen=True)
class CodingQuality:
    """The measures of one run, ready to be written and summarised."""

    config: PipelineConfig = field(repr=False)
    round_trip: IcrRoundTrip
    agreement: list[AgreementRow]
    progress: list[ProgressRow]

    def write(self, staged: OutputSet, root: DataRoot) -> list[Path]:
        """Stages the ICR Coda files and the two CSVs with the run's other outputs; returns their paths."""
        written = []
        for name, messages in self.round_trip.icr_files.items():
            target = root.icr_coda_dir / name
            write_coda_file(staged.path_for(target), messages)
            written.append(target)
        return [*written, *self.write_tables(staged, root.analysis_dir)]

    def write_tables(self, staged: OutputSet, analysis_dir: Path) -> list[Path]:
        """Stages only the two CSVs (``icr_agreement.csv``, ``coding_progress.csv``) in ``analysis_dir``."""
        agreement, progress = analysis_dir / AGREEMENT_CSV, analysis_dir / PROGRESS_CSV
        write_agreement_csv(staged.path_for(agreement), self.agreement)
        write_progress_csv(staged.path_for(progress), self.progress)
        return [agreement, progress]

    def section_context(self) -> dict[str, Any]:
        """The report section's data (see :func:`section_context`) from this run's rows, as its CSVs show them."""
        return _context(
            [{c: _shown(v) for c, v in progress_cells(row).items()} for row in self.progress],
            [{c: _shown(v) for c, v in agreement_cells(row).items()} for row in self.agreement],
        )

    def summary(self) -> str:
        """The step summary: overall progress, then one line per show with its alpha, interval and band."""
        total = next(row for row in self.progress if row.dataset == TOTAL)
        lines = [f"{total.coded:,} of {total.messages:,} messages coded"]
        for plan in self.config.rqa_plans:
            rows = [row for row in self.agreement if row.show == plan.name and row.code == ALL_CODES]
            if not rows:
                missing = "second coder" if plan.coda_file not in self.round_trip.second_coder else "first coder"
                lines.append(f"{plan.name}: no agreement yet (no {missing} file)")
                continue
            lines.append(f"{plan.name}: " + "; ".join(_alpha_summary(row) for row in rows))
        return "\n    ".join(lines)


def _alpha_summary(row: AgreementRow) -> str:
    if row.krippendorff_alpha is None:
        reason = "no units coded by both" if row.units == 0 else "alpha undefined (one value only)"
        return f"{row.scheme} {reason}, {row.units} units"
    interval = ""
    if row.alpha_ci_low is not None and row.alpha_ci_high is not None:
        interval = f" [{decimal_text(row.alpha_ci_low, 3)}, {decimal_text(row.alpha_ci_high, 3)}]"
    alpha = decimal_text(row.krippendorff_alpha, 3)
    return f"{row.scheme} alpha {alpha}{interval} {alpha_band(row.krippendorff_alpha)}, {row.units} units"


def prepare_icr_round_trip(config: PipelineConfig, root: DataRoot, icr_rows: Mapping[str, Sequence[IcrRow]], *,
                           coded_files: Mapping[str, CodedMessages]) -> IcrRoundTrip:
    """The ICR Coda messages of every show and the second coder's checked coded files (``coded_files``: the main
    datasets' coded files as stage 3 read them, the first coder's)."""
    icr_files = icr_coda_files(config, icr_rows)
    return IcrRoundTrip(icr_files, *read_second_coder_files(config, root, icr_files, coded_files))


def measure_coding_quality(
    config: PipelineConfig,
    round_trip: IcrRoundTrip,
    *,
    coded_files: Mapping[str, CodedMessages],
    progress: list[ProgressRow],
) -> CodingQuality:
    """Agreement for every show coded twice, with the ``progress`` of every dataset (the rows of
    :func:`~redss_pipeline.analysis.coding_progress.progress_rows`; stage 3 counts them while it writes the Coda
    files).

    ``coded_files`` are the main datasets' coded files as stage 3 read them (a missing file reads as empty).
    """
    samples = {name: [m["MessageID"] for m in messages] for name, messages in round_trip.icr_files.items()}
    agreement = icr_agreement(config, samples=samples, first_coder=first_coder_files(coded_files, config),
                              second_coder=round_trip.second_coder)
    return CodingQuality(config, round_trip, agreement, progress)


def _read_messages(path: Path) -> list[dict[str, Any]]:
    """A messages file stage 3 wrote, read back (only the message ids are used)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CodaFileError("missing: run stage 3 (3_generate_outputs.sh) on this data root first", path=path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CodaFileError(f"cannot be read as a Coda messages file: {error}", path=path) from None
    if not isinstance(data, list) or not all(isinstance(m, dict) and isinstance(m.get("MessageID"), str)
                                             for m in data):
        raise CodaFileError("must be a JSON list of messages with a MessageID each", path=path)
    return data


def measure_for_report(config: PipelineConfig, data_root: str | Path | DataRoot) -> CodingQuality | None:
    """:func:`measure_from_data_root` for re-running the analysis alone; None for a data root whose last stage-3
    run wrote no ICR Coda files (made before the second coder's round trip existed): there is nothing to pair."""
    root = data_root if isinstance(data_root, DataRoot) else DataRoot(data_root)
    if not all((root.icr_coda_dir / plan.coda_file).is_file() for plan in config.rqa_plans):
        return None
    return measure_from_data_root(config, root)


def measure_from_data_root(config: PipelineConfig, data_root: str | Path | DataRoot) -> CodingQuality:
    """The measures from the files alone: the samples and exports stage 3 wrote under ``Outputs/``, and the coded
    files under ``Coded Coda Files/`` (for analysing without running stage 3 again)."""
    root = data_root if isinstance(data_root, DataRoot) else DataRoot(data_root)
    root.check_coded_dir()
    icr_files = {plan.coda_file: _read_messages(root.icr_coda_dir / plan.coda_file) for plan in config.rqa_plans}
    names = list(dataset_schemes(config))
    exported = {name: [m["MessageID"] for m in _read_messages(root.coda_dir / name)] for name in names}
    redact = PhoneRedactor(config.phone_redaction).redact  # as stage 3 reads them: 2019 coded unredacted texts
    coded_files = {name: read_coded_file(root.coded_dir / name, redact=redact) for name in names}
    round_trip = IcrRoundTrip(icr_files, *read_second_coder_files(config, root, icr_files, coded_files))
    progress = coding_progress(config, exported=exported, coded_files=coded_files)
    return measure_coding_quality(config, round_trip, coded_files=coded_files, progress=progress)


# -- the report's section (coding-quality.md section 6) --------------------------------------------------------------


def section_context(analysis_dir: str | Path) -> dict[str, Any] | None:
    """What the report's "coding quality" section shows, read from the two CSVs stage 3 wrote in
    ``Outputs/Analysis`` (so the report can be made from the files alone); None when neither exists.

    | key         | value                                                                                       |
    | ----------- | ------------------------------------------------------------------------------------------- |
    | ``progress``| one dict per dataset: ``dataset``, ``messages``, ``coded``, ``coded_percent`` (text, "" when |
    |             | undefined), ``wrong_scheme``, ``not_coded``, ``bar_percent`` (a number 0-100 for the bar)    |
    | ``total``   | the same for the ``Total`` row (or None)                                                    |
    | ``schemes`` | per show and scheme in file order: ``show``, ``scheme``, ``units``, ``not_coded_by_both``,   |
    |             | ``percent_agreement``, ``cohen_kappa``, ``alpha``, ``ci_low``, ``ci_high``, ``band``,        |
    |             | ``mean_code_alpha`` (texts as in the CSV) and ``codes``: the per-code rows sorted by alpha  |
    |             | ascending (undefined last), so the codes coders disagree on come first, with prevalence     |
    """
    folder = Path(analysis_dir)
    progress_rows = _read_csv(folder / PROGRESS_CSV)
    agreement_rows = _read_csv(folder / AGREEMENT_CSV)
    if progress_rows is None and agreement_rows is None:
        return None
    return _context(progress_rows, agreement_rows)


def _shown(value: Any) -> str:
    return "" if value is None else str(value)


def _context(progress_rows: list[dict[str, str]] | None, agreement_rows: list[dict[str, str]] | None
             ) -> dict[str, Any]:
    progress = [_progress_entry(row) for row in progress_rows or []]
    schemes: list[dict[str, Any]] = []
    for row in agreement_rows or []:
        entry = _agreement_entry(row)
        if row["code"] == ALL_CODES:
            schemes.append({**entry, "codes": []})
        elif schemes and (schemes[-1]["show"], schemes[-1]["scheme"]) == (row["show"], row["scheme"]):
            schemes[-1]["codes"].append(entry)
    for scheme in schemes:
        scheme["codes"].sort(key=lambda code: (code["alpha"] == "", float(code["alpha"] or 0)))
    return {
        "progress": [entry for entry in progress if entry["dataset"] != TOTAL],
        "total": next((entry for entry in progress if entry["dataset"] == TOTAL), None),
        "schemes": schemes,
        "files": [name for name, rows in ((PROGRESS_CSV, progress_rows), (AGREEMENT_CSV, agreement_rows))
                  if rows is not None],
        "rare_uses": RARE_USES,
        "wide_interval": WIDE_INTERVAL,
    }


def _read_csv(path: Path) -> list[dict[str, str]] | None:
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle))
    except FileNotFoundError:
        return None


def _progress_entry(row: Mapping[str, str]) -> dict[str, Any]:
    percent = row.get("coded_percent", "")
    return {**row, "bar_percent": min(100.0, max(0.0, float(percent))) if percent else 0.0}


# What the report adds to a band so that a reader does not take it for certain (the CSV keeps the figures only):
# a code the two coders gave fewer than RARE_USES times in all says little whatever its alpha, and an interval at
# least WIDE_INTERVAL wide means the sample cannot tell the bands apart.
RARE_USES = 5
WIDE_INTERVAL = 0.3


def _agreement_entry(row: Mapping[str, str]) -> dict[str, Any]:
    alpha = row.get("krippendorff_alpha", "")
    low, high = row["alpha_ci_low"], row["alpha_ci_high"]
    # Prevalence is the share of the 2 x units judgements that gave the code (coding-quality.md 3), written with
    # three decimals: exact while there are fewer than 1,000 judgements (an ICR sample of 200 messages has 400).
    uses = round(float(row["prevalence"]) * 2 * int(row["units"])) if row["prevalence"] else None
    caution = ""
    if alpha and row["code"] != ALL_CODES and uses is not None and uses < RARE_USES:
        caution = f"given {uses} time{'s' if uses != 1 else ''} in the messages both coded: too rare to judge"
    elif alpha and low and high and float(high) - float(low) >= WIDE_INTERVAL:
        caution = "wide interval: uncertain"
    return {
        "show": row["show"], "scheme": row["scheme"], "code": row["code"], "units": row["units"],
        "not_coded_by_both": row["not_coded_by_both"], "prevalence": row["prevalence"],
        "percent_agreement": row["percent_agreement"], "cohen_kappa": row["cohen_kappa"], "alpha": alpha,
        "ci_low": low, "ci_high": high,
        "band": alpha_band(float(alpha)) if alpha else "", "caution": caution,
        "mean_code_alpha": row["mean_code_alpha"],
    }
