"""Data roots for tests: stages 1 and 2 run on a bundled synthetic workspace, with the real Rapid Pro client against
the bundled server, as a user's first two commands would."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from redss_pipeline.core.config import load_config
from redss_pipeline.core.run_context import RunContext
from redss_pipeline.deidentify.uuid_table import create_uuid_table
from redss_pipeline.demo.rapid_pro_server import RapidProServer
from redss_pipeline.demo.synthetic_workspace import generate_workspace
from redss_pipeline.fetch.stage import run_fetch

FETCHED_AT = datetime(2019, 1, 19, tzinfo=timezone.utc)


def fetched_data_root(root: Path, *, seed: int, size: int) -> Path:
    """``root`` after stages 1 and 2 on the synthetic workspace of ``size`` people made from ``seed``: ready for
    stage 3."""
    create_uuid_table(root)
    with RapidProServer(generate_workspace(seed=seed, size=size), token="t0k") as server:
        run_fetch(config=load_config(), data_root=root, server=server.url, token="t0k",
                  run=RunContext("fetch@example.org", FETCHED_AT), progress=False)
    return root
