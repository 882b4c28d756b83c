"""What every command-line entry point shares: argument parsing that exits 2, one-line errors, ``--verbose``.

An entry point is a function ``main(args) -> int`` wrapped by :func:`run_main`. A
:class:`~redss_pipeline.core.errors.PipelineError` is printed as one line on stderr (``error: <message>``) and the
process exits with the error's status (2 for usage and configuration errors, 1 otherwise); ``--verbose``
prints the traceback as well. Failures of the machine or of a file that slipped past the stage's own checks (a
full disk, a read-only folder, a damaged database, JSON nested too deeply, text that is not valid Unicode) are one
line too, exit status 1. Any other exception is a bug: it is reported with its traceback.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import traceback
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

from redss_pipeline.core.disk_errors import describe_os_error, describe_sqlite_error
from redss_pipeline.core.errors import PipelineError, UsageError

__all__ = ["ArgumentParser", "non_empty", "run_main", "describe_text_error", "read_by_a_reader_that_may_stop"]


class ArgumentParser(argparse.ArgumentParser):
    """An argparse parser whose errors are :class:`UsageError` (exit 2, usage printed) instead of SystemExit."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message}\n{self.format_usage().rstrip()}")


def non_empty(text: str) -> str:
    """An argument type refusing an empty (or blank) argument: a shell variable left unset passes "", which as a
    data root would mean the current folder, and as a user would be recorded as no one."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty (an unset shell variable?)")
    return text


@contextmanager
def read_by_a_reader_that_may_stop() -> Iterator[None]:
    """Around a command whose output is long and read through ``less`` or ``head``: when the reader stops reading
    (the pipe is closed), the command stops quietly, as Unix tools do, instead of reporting a broken pipe. Only the
    command's own output is written inside the block, so a broken pipe there is the reader's."""
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        # What is left in the buffer cannot be written either: point standard output at nothing so that the
        # interpreter's last flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def run_main(main: Callable[[Sequence[str]], int], argv: Sequence[str] | None = None) -> int:
    """Runs ``main`` and maps errors to exit statuses; returns the status for ``sys.exit``."""
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in args
    if verbose:
        args.remove("--verbose")
    try:
        return main(args)
    except PipelineError as error:
        if verbose:
            traceback.print_exc()
        lines = str(error).splitlines() or [type(error).__name__]
        print(f"error: {lines[0]}", file=sys.stderr)
        for line in lines[1:]:
            print(line, file=sys.stderr)
        if not verbose and error.exit_status != 2 and error.traceback_helps:
            print("(run again with --verbose for the traceback)", file=sys.stderr)
        return error.exit_status
    except (OSError, sqlite3.Error) as error:
        # A full disk, a read-only folder, a damaged database the stage did not name itself: still one line.
        if verbose:
            traceback.print_exc()
        if isinstance(error, OSError):
            where = f"{error.filename}: " if error.filename else ""
            print(f"error: {where}{describe_os_error(error)}", file=sys.stderr)
        else:
            print(f"error: a database of the data root: {describe_sqlite_error(error)}", file=sys.stderr)
        if not verbose:
            print("(run again with --verbose for the traceback)", file=sys.stderr)
        return 1
    except KeyboardInterrupt as interrupt:
        # A stage that finished its work as the interrupt came says so; otherwise nothing was written.
        happened = interrupt.args[0] if interrupt.args else \
            "nothing was half-written; run the same command again to resume"
        print(f"interrupted: {happened}", file=sys.stderr)
        return 130
    except (RecursionError, UnicodeError) as error:
        # An input the readers did not name (JSON nested too deeply, text that is not valid Unicode): one line.
        if verbose:
            traceback.print_exc()
        print(f"error: {describe_text_error(error)}", file=sys.stderr)
        if not verbose:
            print("(run again with --verbose for the traceback)", file=sys.stderr)
        return 1


def describe_text_error(error: RecursionError | UnicodeError) -> str:
    """One line for an input that is not text the pipeline can hold: JSON nested too deeply, or a string that is
    not valid Unicode (a lone surrogate, half of an emoji, cannot be written as UTF-8)."""
    if isinstance(error, RecursionError):
        return "an input file is nested too deeply to be read (JSON deeper than Python's reader allows)"
    if isinstance(error, UnicodeEncodeError):
        bad = error.object[error.start:error.end]
        return f"a text holds {bad!r}, which is not valid Unicode ({error.reason}); it cannot be written"
    return f"a file is not valid text: {error}"
