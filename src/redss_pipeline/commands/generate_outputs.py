"""Stage 3: generate the analysis outputs of a data root, and explain where an output value came from.

Usage:
    3_generate_outputs.sh [--drive-upload <drive-service-account-credentials-url> <drive-upload-dir>]
                          [--profile-cpu <profile-output-file>] [--workers N] [--config FILE] [--verbose]
                          <user> <data-root>
    generate_outputs.py explain [--config FILE] <data-root> <uid> <column>
    generate_outputs.py analyse [--drive-upload <drive-service-account-credentials-url> <drive-upload-dir>]
                                [--workers N] [--config FILE] <data-root>
    generate_outputs.py upload [--config FILE] <drive-service-account-credentials-url> <drive-upload-dir>
                               <data-root>
"""

from __future__ import annotations

import csv
import difflib
import sys
import time
from argparse import ArgumentTypeError
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from redss_pipeline.core.cli import ArgumentParser, non_empty, read_by_a_reader_that_may_stop, run_main
from redss_pipeline.core.config import load_config
from redss_pipeline.core.errors import DriveError, UsageError
from redss_pipeline.core.lock import data_root_lock

if TYPE_CHECKING:
    from redss_pipeline.core.audit_trail import AuditTrail
    from redss_pipeline.core.config import PipelineConfig

__all__ = ["RUN_SCRIPT", "main", "entry_point", "console_script"]

RUN_SCRIPT = "3_generate_outputs.sh"
EXPLAIN = "generate_outputs.py explain"
ANALYSE = "generate_outputs.py analyse"
UPLOAD = "generate_outputs.py upload"
_MODULE = "redss_pipeline.commands.generate_outputs"
CONFIG_HELP = "the configuration file (default: the project's pipeline_config.json, or $REDSS_PIPELINE_CONFIG)"


def _generate_parser(prog: str) -> ArgumentParser:
    explain = EXPLAIN if prog == RUN_SCRIPT else f"{prog} explain"
    parser = ArgumentParser(
        prog=prog,
        usage=f"{prog} [--drive-upload <drive-service-account-credentials-url> <drive-upload-dir>] "
        "[--profile-cpu <profile-output-file>] [--workers N] [--config FILE] <user> <data-root>",
        description="Clean, auto-code and merge the coded Coda files of a data root, and write the analysis "
        "files, the Coda and ICR files and the audit trail into <data-root>/Outputs.",
        epilog=f"Explain a value: {explain} <data-root> <uid> <column>. Re-run only the analysis and report: "
        f"{explain.removesuffix('explain')}analyse <data-root>. Upload the outputs again without running the "
        f"stage: {explain.removesuffix('explain')}upload <drive-service-account-credentials-url> <drive-upload-dir> "
        "<data-root>.",
    )
    parser.add_argument(
        "--drive-upload", nargs=2, metavar=("<drive-service-account-credentials-url>", "<drive-upload-dir>"),
        help="after writing the outputs, upload the three CSVs, the shareable analysis report and the shareable "
        "analysis tables to this Drive folder (a path such as CSAP/Outputs, or the folder's address in a browser) "
        "with the service-account key at the URL (gs://bucket/object, or a local file)",
    )
    parser.add_argument("--profile-cpu", metavar="<profile-output-file>",
                        help="write a CPU profile (collapsed stacks) to the file, and a flame graph beside it (.svg)")
    parser.add_argument("--workers", metavar="N", type=_worker_count,
                        help="processes sharing the work: reading the raw files, the respondents, the analysis' "
                        "charts and maps (default: the processors available, at most 4); the outputs are the same "
                        "whatever the number")
    parser.add_argument("--config", metavar="FILE", help=CONFIG_HELP)
    parser.add_argument("user", metavar="<user>", type=non_empty,
                        help="who runs the stage (recorded in the audit trail)")
    parser.add_argument("data_root", metavar="<data-root>", type=non_empty)
    return parser


def _check_before_running(data_root: Path, drive_upload: Sequence[str] | None) -> None:
    """What can be refused before a stage starts: a data root that is no folder, and a Drive key or folder address
    that cannot serve (checked now rather than after the whole run)."""
    if not data_root.is_dir():
        raise UsageError(f"the data root {data_root} {'is not a folder' if data_root.exists() else 'does not exist'}")
    if drive_upload:
        from redss_pipeline.export.credentials import check_credentials_location
        from redss_pipeline.export.drive import drive_folder

        check_credentials_location(drive_upload[0])
        drive_folder(drive_upload[1])


def _upload(config: PipelineConfig, data_root: Path, drive_upload: Sequence[str], *, csvs: bool = True,
            after_stage_3: bool = False) -> None:
    """Uploads the data root's outputs as their manifests list them (see
    :mod:`~redss_pipeline.export.drive_uploads`); the caller holds the data-root lock. ``after_stage_3``: an error
    of Drive itself (not a file refused before anything is sent) or Ctrl-C says that the outputs are written and
    how to send them without running the stage again."""
    from redss_pipeline.core.data_root import DataRoot
    from redss_pipeline.export.drive import upload_to_drive
    from redss_pipeline.export.drive_uploads import drive_uploads

    credentials_url, drive_dir = drive_upload
    files = drive_uploads(config, DataRoot(data_root), csvs=csvs)
    send_again = (f"{UPLOAD} <drive-service-account-credentials-url> <drive-upload-dir> <data-root> sends them "
                  "without running stage 3")
    try:
        upload_to_drive(credentials_url=credentials_url, drive_dir=drive_dir, files=files)
    except DriveError as error:
        if not after_stage_3:
            raise
        raise error.with_hint(f"the outputs are written; once this is mended, {send_again}") from None
    except KeyboardInterrupt as interrupt:
        if not after_stage_3:
            raise
        stopped = interrupt.args[0] if interrupt.args else "the Drive upload stopped"
        raise KeyboardInterrupt(f"{stopped}; the outputs are written: {send_again}") from None


def _worker_count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise ArgumentTypeError(f"expected a whole number of at least 1, not {text!r}")
    return int(text)


def generate(argv: Sequence[str], *, prog: str = RUN_SCRIPT) -> int:
    args = _generate_parser(prog).parse_args(list(argv))
    if args.profile_cpu:
        from redss_pipeline.core.profiling import rerun_profiled

        # sys.argv, not argv: run_main has taken --verbose out of argv, and the profiled run must keep it.
        status = rerun_profiled(argv=sys.argv[1:], output_file=args.profile_cpu, module=_MODULE)
        if status == 0:
            print(f"CPU profile: {args.profile_cpu} (flame graph: {args.profile_cpu}.svg)")
        return status

    from redss_pipeline.core.data_root import DataRoot
    from redss_pipeline.core.run_context import RunContext
    from redss_pipeline.generate.stage import run_generate

    config = load_config(args.config)
    data_root = Path(args.data_root)
    _check_before_running(data_root, args.drive_upload)
    with data_root_lock(data_root, stage="stage 3 (generate outputs)", user=args.user):
        started = time.perf_counter()
        print(f"stage 3: generating outputs for {data_root}", file=sys.stderr)
        summary = run_generate(config=config, data_root=data_root, run=RunContext.now(args.user), workers=args.workers)
        if summary.analysis is not None and summary.analysis.report is not None:
            print(f"Analysis report: {summary.analysis.report}")
        print(f"stage 3 finished in {time.perf_counter() - started:.1f} s: {summary.counts.get('messages', 0):,} messages, "
              f"{summary.counts.get('people', 0):,} people, "
              f"{summary.counts.get('phone numbers redacted', 0):,} typed phone numbers redacted. "
              f"Outputs in {DataRoot(data_root).outputs_dir}. "
              f"{len(summary.warnings)} warning{'' if len(summary.warnings) == 1 else 's'}")

        if args.drive_upload:
            # The outputs are in place: only the upload needs doing again, not the run.
            _upload(config, data_root, args.drive_upload, after_stage_3=True)
    return 0


def analyse(argv: Sequence[str], *, prog: str = RUN_SCRIPT) -> int:
    parser = ArgumentParser(
        prog=ANALYSE if prog == RUN_SCRIPT else f"{prog} analyse",
        description="Re-run only the automated analysis: read <data-root>/Outputs/csap_mes.csv and csap_ind.csv "
        "(also as written by the 2019 pipeline) and write the tables, charts, maps and report.html into "
        "<data-root>/Outputs/Analysis.",
    )
    parser.add_argument(
        "--drive-upload", nargs=2, metavar=("<drive-service-account-credentials-url>", "<drive-upload-dir>"),
        help="upload the shareable report and tables to this Drive folder",
    )
    parser.add_argument("--workers", metavar="N", type=_worker_count,
                        help="processes reading the two CSVs and drawing the charts and maps (default: the "
                        "processors available, at most 4); "
                        "the files are the same whatever the number")
    parser.add_argument("--config", metavar="FILE", help=CONFIG_HELP)
    parser.add_argument("data_root", metavar="<data-root>", type=non_empty)
    args = parser.parse_args(list(argv))

    from redss_pipeline.analysis.stage import run_analysis

    config = load_config(args.config)
    data_root = Path(args.data_root)
    _check_before_running(data_root, args.drive_upload)
    with data_root_lock(data_root, stage="analysis (generate_outputs.py analyse)"):
        started = time.perf_counter()
        summary = run_analysis(config=config, data_root=data_root, workers=args.workers)
        print(f"analysis finished in {time.perf_counter() - started:.1f} s: {summary.messages:,} messages, "
              f"{summary.people:,} people. Report: {summary.report}")
        if args.drive_upload:
            _upload(config, data_root, args.drive_upload, csvs=False)
    return 0


def upload(argv: Sequence[str], *, prog: str = RUN_SCRIPT) -> int:
    parser = ArgumentParser(
        prog=UPLOAD if prog == RUN_SCRIPT else f"{prog} upload",
        description="Upload a data root's outputs to Google Drive again without running stage 3 (after an upload "
        "that failed, or to a second folder): the three CSVs, the shareable report and the shareable tables, as "
        "the last runs wrote them. A file changed since then is refused.",
    )
    parser.add_argument("credentials_url", metavar="<drive-service-account-credentials-url>",
                        help="the service-account key: gs://bucket/object, or a local file")
    parser.add_argument("drive_dir", metavar="<drive-upload-dir>",
                        help="a Drive folder path such as CSAP/Outputs, or the folder's address in a browser")
    parser.add_argument("data_root", metavar="<data-root>", type=non_empty)
    parser.add_argument("--config", metavar="FILE", help=CONFIG_HELP)
    args = parser.parse_args(list(argv))

    from redss_pipeline.core.data_root import DataRoot
    from redss_pipeline.core.output_set import finish_interrupted_switches

    config = load_config(args.config)
    data_root = Path(args.data_root)
    drive_upload = (args.credentials_url, args.drive_dir)
    _check_before_running(data_root, drive_upload)
    with data_root_lock(data_root, stage="Drive upload (generate_outputs.py upload)"):
        root = DataRoot(data_root)
        # A run killed while switching its outputs in left files of two runs: the switch is completed first, as the
        # next run would, so that one run's files go up.
        for note in finish_interrupted_switches(root.outputs_dir, root.analysis_dir):
            print(note, file=sys.stderr)
        _upload(config, data_root, drive_upload)
    return 0


def explain(argv: Sequence[str], *, prog: str = RUN_SCRIPT) -> int:
    parser = ArgumentParser(
        prog=EXPLAIN if prog == RUN_SCRIPT else f"{prog} explain",
        description="Print the history of one person's value: every value it took, from the raw Rapid Pro "
        "answer through every step that changed it (who, which step, when), read from the audit trail.",
    )
    parser.add_argument("data_root", metavar="<data-root>", type=non_empty)
    parser.add_argument("uid", metavar="<uid>", help="an avf-phone-uuid-... id (withdrawn participants too)")
    parser.add_argument("column", metavar="<column>", help="an output column or any record key, e.g. gender")
    parser.add_argument("--config", metavar="FILE", help=CONFIG_HELP)
    args = parser.parse_args(list(argv))

    from redss_pipeline.core.audit_trail import AuditTrail, AuditTrailError
    from redss_pipeline.core.data_root import DataRoot
    from redss_pipeline.core.output_set import MANIFEST_NAME, refuse_an_unfinished_switch
    from redss_pipeline.core.run_manifest import RecordedRun
    from redss_pipeline.generate.stage import output_paths

    config = load_config(args.config)
    root = DataRoot(args.data_root)
    refuse_an_unfinished_switch(root.outputs_dir)
    paths = output_paths(config, root)
    recorded = RecordedRun.read(root.outputs_dir / MANIFEST_NAME)
    if recorded is not None and paths["audit_trail"].exists() and not recorded.wrote_as_is([paths["audit_trail"]]):
        raise AuditTrailError("is not the audit trail of the outputs beside it (its SHA-256 is not the one "
                              f"Outputs/{MANIFEST_NAME} lists: copied in from another run?), so it would explain "
                              "other values than theirs; run stage 3 again to write both", path=paths["audit_trail"])
    trail = AuditTrail.load(paths["audit_trail"])
    with read_by_a_reader_that_may_stop():  # explain's output is long: read through less or head
        _explain(config, trail, args.uid, args.column, individuals_csv=paths["individuals"])
    return 0


def _explain(config: PipelineConfig, trail: "AuditTrail", uid: str, column: str, *, individuals_csv: Path) -> None:
    """Prints how ``column`` of the person ``uid`` came to be: the keys it is derived from, how their CSV row folds
    their messages, and each key's history from the audit trail."""
    from redss_pipeline.core.code_scheme import STOP
    from redss_pipeline.deidentify.uuid_table import shown_in_message
    from redss_pipeline.export.analysis_files import analysis_columns, production_columns
    from redss_pipeline.generate.individuals import fold_in_words
    from redss_pipeline.generate.lineage import matrix_column, set_from_any, source_keys, withdrawals

    records = trail.records_for(uid)
    if not records:
        hint = (": a withdrawn participant's uid reads STOP in the outputs; give the id they had (the UUID table "
                "maps it from their phone number)") if uid == STOP else ""
        raise UsageError(f"{trail.path}: no record whose {trail.id_key} was {shown_in_message(uid)}{hint}")
    held = set().union(*(record.keys() for record in records))
    matrix = matrix_column(config, column)
    in_analysis_files = analysis_columns(config)
    # The columns of every output file: the analysis files, the producers' file, the ICR samples (a run id a
    # message of another show's flow never had is a fair question).
    outputs = {*in_analysis_files, *production_columns(config), *(plan.run_id_field for plan in config.rqa_plans)}
    if matrix is None and column not in held and column not in outputs:
        known = sorted(held | outputs)
        # The column in other letters (GENDER, rqa_s01e01_na) first: the matcher compares letters as they are.
        close = [name for name in known if name.casefold() == column.casefold()] or difflib.get_close_matches(
            column, known, n=3)
        raise UsageError(f"{shown_in_message(column)} is neither an output column nor a key of this person's records"
                         + (f"; did you mean {', '.join(map(repr, close))}?" if close else ""))
    keys = source_keys(config, column)
    # A matrix column is no record key: its history is that of the show's codes. A trail written before the codes
    # were lists holds the column as a key of its own, and its history is shown as it was.
    if matrix is not None and column in held:
        keys = [column, *keys[2:]]
    if len(keys) > 1:
        print(f"{column} is derived from: {' <- '.join(keys[1:])}\n")
    if matrix is not None and column not in held:
        codes, string_value = matrix
        print(f"{column} is rendered from {codes}: 1 when that list holds {string_value!r}, 0 when it does "
              "not, and any other value as it is (STOP for a withdrawn participant)\n")
        keys = keys[1:]
    if column in in_analysis_files:
        # csap_ind.csv holds one row per person, folded from the message records explained below.
        if len(records) > 1:
            folded = column if matrix is None or column in held else matrix[0]
            print(f"csap_ind.csv: this person's {len(records)} message records are folded into one row, where "
                  f"{folded} is {fold_in_words(config, folded)}; then come the fix-up of pipeline.md 7.7.7 and, "
                  "after a withdrawal, STOP")
        print(f"{individuals_csv.name}: {_individual_cell(individuals_csv, uid, column)}\n")
    # Each key's "same value earlier" hint looks among the keys it is derived from, or everywhere for a key the
    # lineage knows nothing more of (sent_on, noise, a survey's time).
    hints: list[Sequence[str] | None] = [keys[number + 1:] or None for number in range(len(keys))]
    alternatives = set_from_any(config, column)
    if alternatives:
        print(f"{column} is set by any one of: {', '.join(alternatives)}\n")
        # Of these, the keys that set it for this person; only their histories follow, the others hold no STOP.
        setting, lines = withdrawals(config, records)
        print("\n".join(lines) + "\n")
        # The column is set from these (its hint looks among them only); each of them has a history of its own.
        keys, hints = [*keys, *setting], [alternatives, *hints[1:], *([None] * len(setting))]
    never = [key for key in keys if key not in held]
    for key, derived_from in zip(keys, hints):
        if key in held:
            print(trail.explain(uid, key, derived_from=derived_from))
    if never:
        print(f"never written in any of this person's {len(records)} record(s): {', '.join(map(repr, never))}")


def _individual_cell(individuals_csv: Path, uid: str, column: str) -> str:
    """What this person's row of csap_ind.csv holds in ``column``, as a sentence (the file is read as it is, so the
    value shown is the one an analyst sees)."""
    from redss_pipeline.analysis.outputs_reader import LONGEST_CELL
    from redss_pipeline.core.record_fields import UID_KEY

    # A person's joined answers can be longer than the csv module's default cell limit (see outputs_reader).
    csv.field_size_limit(max(csv.field_size_limit(), LONGEST_CELL))
    try:
        with open(individuals_csv, encoding="utf-8", newline="") as handle:
            rows = csv.reader(handle)
            header = next(rows, [])
            if UID_KEY not in header or column not in header:
                return f"has no column {column!r} (written with another configuration?)"
            at, wanted = header.index(UID_KEY), header.index(column)
            for row in rows:
                if len(row) > max(at, wanted) and row[at] == uid:
                    return f"{column} = {row[wanted]!r} in this person's row"
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        return f"cannot be read ({type(error).__name__}), so the row's value is not shown"
    return "no row has this uid (a withdrawn participant's row reads STOP in its uid)"


def main(argv: Sequence[str], *, prog: str = RUN_SCRIPT) -> int:
    if argv and argv[0] == "explain":
        return explain(argv[1:], prog=prog)
    if argv and argv[0] == "analyse":
        return analyse(argv[1:], prog=prog)
    if argv and argv[0] == "upload":
        return upload(argv[1:], prog=prog)
    return generate(argv, prog=prog)


def entry_point(argv: Sequence[str] | None = None, *, prog: str = RUN_SCRIPT) -> int:
    return run_main(lambda args: main(args, prog=prog), argv)


def console_script() -> int:
    """The installed package's ``redss-generate-outputs``."""
    return entry_point(prog="redss-generate-outputs")


if __name__ == "__main__":
    sys.exit(entry_point())
