"""Stage 1: create the phone number <-> UUID table of a data root (or import/export its 2019 JSON form).

Usage:
    1_create_uuid_table.sh <data-root>                            create an empty table
    1_create_uuid_table.sh --import-json <phone_uuids.json> <data-root>
                                                                  create the table from a 2019 JSON table
    1_create_uuid_table.sh --export-json <phone_uuids.json> <data-root>
                                                                  write an existing table in the 2019 form
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from redss_pipeline.core.cli import ArgumentParser, non_empty, run_main
from redss_pipeline.core.data_root import DataRoot
from redss_pipeline.core.lock import data_root_lock
from redss_pipeline.deidentify.uuid_table import create_uuid_table, open_uuid_table, remove_interrupted_builds

__all__ = ["RUN_SCRIPT", "main", "entry_point", "console_script"]

RUN_SCRIPT = "1_create_uuid_table.sh"


def build_parser(prog: str = RUN_SCRIPT) -> ArgumentParser:
    parser = ArgumentParser(
        prog=prog,
        description="Create the phone number <-> UUID table <data-root>/UUIDs/phone_uuids.sqlite. "
        "Refuses when a table (or a 2019 phone_uuids.json) already exists.",
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument(
        "--import-json", metavar="FILE", help="create the table from a 2019 phone_uuids.json, keeping every id"
    )
    action.add_argument(
        "--export-json", metavar="FILE", help="write the existing table to FILE in the 2019 JSON form"
    )
    parser.add_argument("data_root", metavar="<data-root>", type=non_empty)
    return parser


def main(argv: Sequence[str], *, prog: str = RUN_SCRIPT) -> int:
    args = build_parser(prog).parse_args(list(argv))
    with data_root_lock(args.data_root, stage="stage 1 (create the UUID table)", create_root=not args.export_json):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    interrupted = remove_interrupted_builds(args.data_root)  # under the data-root lock: no build of another run
    if interrupted:
        print(f"removed the unfinished table of {interrupted} interrupted import(s) from "
              f"{DataRoot(args.data_root).uuids_dir}", file=sys.stderr)
    if args.export_json:
        with open_uuid_table(args.data_root) as table:
            table.export_json(args.export_json)
            print(f"exported {len(table)} ids to {args.export_json}")
        return 0

    path = create_uuid_table(args.data_root, import_from=args.import_json)
    if args.import_json:
        with open_uuid_table(args.data_root) as table:
            added = len(table)
        print(f"created {path} with {added} ids imported from {args.import_json}")
    else:
        print(f"created an empty phone number <-> UUID table at {path}")
    return 0


def entry_point(argv: Sequence[str] | None = None, *, prog: str = RUN_SCRIPT) -> int:
    return run_main(lambda args: main(args, prog=prog), argv)


def console_script() -> int:
    """The installed package's ``redss-create-uuid-table``."""
    return entry_point(prog="redss-create-uuid-table")


if __name__ == "__main__":
    sys.exit(entry_point())
