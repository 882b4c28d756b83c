#!/usr/bin/env python3
"""Stage 1: create the phone number <-> UUID table of a data root (or import/export its 2019 JSON form).

Usage:
    create_uuid_table.py <data-root>                              create an empty table
    create_uuid_table.py --import-json <phone_uuids.json> <data-root>
                                                                  create the table from a 2019 JSON table
    create_uuid_table.py --export-json <phone_uuids.json> <data-root>
                                                                  write an existing table in the 2019 form
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from redss_pipeline.core.cli import ArgumentParser, run_main
from redss_pipeline.core.lock import data_root_lock
from redss_pipeline.deidentify.uuid_table import create_uuid_table, open_uuid_table


def main(argv: Sequence[str]) -> int:
    parser = ArgumentParser(
        prog="1_create_uuid_table.sh",
        description="Create the phone number <-> UUID table <data-root>/UUIDs/phone_uuids.sqlite. "
        "Refuses when a table (or a 2019 phone_uuids.json) already exists.",
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--import-json", metavar="FILE", help="create the table from a 2019 phone_uuids.json, keeping every id")
    action.add_argument("--export-json", metavar="FILE", help="write the existing table to FILE in the 2019 JSON form")
    parser.add_argument("data_root", metavar="<data-root>")
    args = parser.parse_args(argv)
    with data_root_lock(args.data_root, stage="stage 1 (create the UUID table)", create_root=not args.export_json):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    if args.export_json:
        with open_uuid_table(args.data_root) as table:
            table.export_json(args.export_json)
            print(f"exported {len(table)} ids to {args.export_json}")
        return 0

    path = create_uuid_table(args.data_root)
    if args.import_json:
        with open_uuid_table(args.data_root) as table:
            added = table.import_json(args.import_json)
        print(f"created {path} with {added} ids imported from {args.import_json}")
    else:
        print(f"created an empty phone number <-> UUID table at {path}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
