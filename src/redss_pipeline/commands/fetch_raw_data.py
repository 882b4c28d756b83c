"""Stage 2: fetch the configured Rapid Pro flows into ``<data-root>/Raw Data``, de-identified.

Usage (the 2019 command line; ``run_scripts/2_fetch_raw_data.sh`` passes its arguments through)::

    2_fetch_raw_data.sh [--full] [--no-archives] [--verbose] [--config FILE] <user> <rapid-pro-root>
                        <rapid-pro-server> <rapid-pro-token> <data-root>

Exit status: 0 when everything was fetched, 3 when the fetch is partial (a run archive could not be read: the
raw files hold everything else and the summary lists what is missing; run again to complete), 1 or 2 on
errors.

Everything happens in :func:`redss_pipeline.fetch.stage.run_fetch`; this module parses the command line, reads the
token and the configuration, reads the clock once, prints the workspace line first and the summary last.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

from redss_pipeline.core.cli import ArgumentParser, non_empty, run_main
from redss_pipeline.core.config import load_config
from redss_pipeline.core.disk_errors import describe_os_error
from redss_pipeline.core.errors import UsageError
from redss_pipeline.core.lock import data_root_lock
from redss_pipeline.core.run_context import RunContext
from redss_pipeline.fetch.rapid_pro import TOKEN_ENV, resolve_token
from redss_pipeline.fetch.stage import run_fetch

__all__ = ["RUN_SCRIPT", "build_parser", "check_arguments", "main", "entry_point", "console_script"]

RUN_SCRIPT = "2_fetch_raw_data.sh"


def build_parser(prog: str = RUN_SCRIPT) -> ArgumentParser:
    parser = ArgumentParser(
        prog=prog,
        description="Fetches every run of the configured flows from Rapid Pro (only what changed since the last "
        "fetch), replaces each contact's phone number by its id from the UUID table, and writes one raw file "
        "per flow to <data-root>/Raw Data.",
    )
    parser.add_argument("user", type=non_empty,
                        help="who runs the fetch (e.g. an e-mail address); recorded in the raw files")
    parser.add_argument(
        "rapid_pro_root",
        metavar="rapid-pro-root",
        help="accepted for compatibility with the 2019 command line and created if missing; not needed "
        "(the fetcher is part of this pipeline)",
    )
    parser.add_argument("server", metavar="rapid-pro-server", help="the Rapid Pro server, e.g. https://textit.in")
    parser.add_argument(
        "token",
        metavar="rapid-pro-token",
        help=f"the workspace API token; @FILE reads it from FILE; '-' or '' reads the {TOKEN_ENV} environment "
        "variable. It is never printed or logged",
    )
    parser.add_argument("data_root", metavar="data-root", type=non_empty,
                        help="the data root (stage 1 must have run on it)")
    parser.add_argument(
        "--full", action="store_true",
        help="rebuild the fetch store from the server: ask for every run, contact and archive again (rows the server "
        "no longer serves are dropped)",
    )
    parser.add_argument(
        "--no-archives", action="store_true",
        help="skip Rapid Pro's run archives knowingly (as 2019 did): runs past the workspace's retention are left out",
    )
    parser.add_argument("--config", metavar="FILE", help="the configuration file (default: pipeline_config.json)")
    parser.add_argument("--verbose", action="store_true", help="show retries, and tracebacks on errors")
    return parser


def main(args: Sequence[str], *, verbose: bool = False, prog: str = RUN_SCRIPT) -> int:
    options = build_parser(prog).parse_args(list(args))
    token = resolve_token(options.token, os.environ)
    check_arguments(options, token)
    config = load_config(options.config)
    _create_rapid_pro_root(Path(options.rapid_pro_root))
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr, format="%(levelname)s: %(message)s"
    )
    for noisy in ("urllib3", "temba_client"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    with data_root_lock(options.data_root, stage="stage 2 (fetch raw data)", user=options.user):
        summary = run_fetch(
            config=config,
            data_root=options.data_root,
            server=options.server,
            token=token,
            run=RunContext.now(options.user),
            full=options.full,
            no_archives=options.no_archives,
            announce=lambda line: print(line, flush=True),
            progress=_stderr_is_a_terminal(),
        )
    print(summary.table())
    if summary.partial:
        print(summary.partial_note(), file=sys.stderr)
    return summary.exit_status


def _stderr_is_a_terminal() -> bool:
    """Whether progress bars are drawn: they are redrawn in place, which suits a terminal; in a log (cron, a
    scheduler) they would be pages of carriage returns, and the summary table says the same per flow. Inside the
    project's Docker image the standard error is a pipe, and the run script says whether its own is a terminal."""
    return sys.stderr.isatty() or os.environ.get("PIPELINE_STDERR_IS_A_TERMINAL") == "1"


def _create_rapid_pro_root(folder: Path) -> None:
    """Creates ``<rapid-pro-root>`` as 2019's command line did (there it was a checkout of the fetch tools). The
    fetch does not use it, so a folder that cannot be made is one warning line, not a failed fetch."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        why = "a file has its name" if isinstance(error, FileExistsError) else describe_os_error(error)
        print(f"warning: {folder}: the <rapid-pro-root> folder cannot be created ({why}); the fetch does not need "
              "it, so it goes on", file=sys.stderr)


#: Rapid Pro API tokens are 40 hexadecimal characters; anything this long and hexadecimal is taken for one.
_TOKEN_LIKE = re.compile(r"[0-9a-fA-F]{32,}")
_ORDER = ("check the order of the arguments: <user> <rapid-pro-root> <rapid-pro-server> <rapid-pro-token> "
          "<data-root>")


def check_arguments(options: argparse.Namespace, token: str) -> None:
    """Refuses positional arguments that were swapped, before anything is created, sent or printed.

    A swap could otherwise create a folder named after the token, send the token to a server made of another
    argument, record it as the ``<user>``, or print it in an error about a missing data root. The messages
    name the argument, never its value (it may be the token).
    """
    for name, value in (("<user>", options.user), ("<rapid-pro-root>", options.rapid_pro_root),
                        ("<rapid-pro-server>", options.server), ("<data-root>", options.data_root)):
        if value.strip() == token or _TOKEN_LIKE.fullmatch(value.strip()):
            raise UsageError(f"the {name} argument looks like the API token; {_ORDER}")
    given = options.token
    if not given.startswith("@") and given not in ("", "-") and (
        "://" in given or "/" in given or Path(given).exists()
    ):
        raise UsageError(f"the <rapid-pro-token> argument looks like a server address or a path, not a token; {_ORDER}")
    if not _is_server_address(options.server):
        raise UsageError(f"the <rapid-pro-server> argument is not a server address such as https://textit.in; {_ORDER}")
    if not Path(options.data_root).is_dir():
        raise UsageError(
            f"the <data-root> argument is not an existing folder (stage 1 creates the data root); {_ORDER}"
        )


def _is_server_address(value: str) -> bool:
    """``http(s)://host[:port][/path]``, or a host name the client prefixes with ``https://`` (it has a dot,
    or is ``localhost``). An unclosed ``[`` of an IPv6 address, or a port that is not a number from 1 to 65535,
    is as malformed as a missing host (``urlsplit`` and ``port`` raise ValueError for them; port 0 is no port)."""
    try:
        url = urllib.parse.urlsplit(value if "://" in value else f"https://{value}")
        port = url.port
    except ValueError:
        return False
    if url.scheme not in ("http", "https") or not url.hostname or port == 0:
        return False
    return "." in url.hostname or ":" in url.hostname or url.hostname == "localhost"


def entry_point(argv: Sequence[str] | None = None, *, prog: str = RUN_SCRIPT) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in arguments
    return run_main(lambda args: main(args, verbose=verbose, prog=prog), arguments)


def console_script() -> int:
    """The installed package's ``redss-fetch-raw-data``."""
    return entry_point(prog="redss-fetch-raw-data")


if __name__ == "__main__":
    sys.exit(entry_point())
