"""Stage 2's five positional arguments, swapped by mistake (issue 12 item 13): every swap that puts the token
where another argument belongs, or another argument where the token belongs, is refused before anything is
created or sent, with a usage error (exit 2) that never shows the token."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from redss_pipeline.commands.fetch_raw_data import entry_point
from redss_pipeline.deidentify.uuid_table import create_uuid_table

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# Rapid Pro API tokens are 40 hexadecimal characters.
TOKEN = "3f5c0e9b7a1d24c68e0f5b3a9d7c1e2f4a6b8c0d"
SERVER = "http://127.0.0.1:9"  # nothing listens there: a request would fail, but none may be made


def _stage_two(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "RAPID_PRO_TOKEN"}
    return subprocess.run([sys.executable, str(PROJECT_ROOT / "fetch_raw_data.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    create_uuid_table(tmp_path / "root")
    return tmp_path


def _entries(work: Path) -> set[str]:
    return {str(p.relative_to(work)) for p in work.rglob("*")}


@pytest.mark.parametrize(
    "swapped, arguments",
    [
        ("token and data root", ["me@example.org", "rp-root", SERVER, "root", TOKEN]),
        ("server and token", ["me@example.org", "rp-root", TOKEN, SERVER, "root"]),
        ("rapid-pro-root and token", ["me@example.org", TOKEN, SERVER, "rp-root", "root"]),
        ("user and token", [TOKEN, "rp-root", SERVER, "me@example.org", "root"]),
        ("user and data root", ["root", "rp-root", SERVER, TOKEN, "me@example.org"]),
    ],
)
def test_swapped_arguments_are_refused_before_anything_is_created_and_the_token_is_never_shown(
    work: Path, swapped: str, arguments: list[str]
) -> None:
    before = _entries(work)
    result = _stage_two(work, *arguments)
    assert result.returncode == 2, (swapped, result.stdout, result.stderr)
    output = result.stdout + result.stderr
    assert TOKEN not in output and TOKEN[:12] not in output
    assert "order" in result.stderr  # the message says to check the order of the arguments
    assert _entries(work) == before, f"{swapped}: something was created"


def test_a_token_given_where_the_server_belongs_is_never_sent_anywhere(work: Path) -> None:
    """A host name without a dot (a token, say) is not taken for a server: https://<token> is never asked."""
    result = _stage_two(work, "me@example.org", "rp-root", "abcdef", TOKEN, "root")
    assert result.returncode == 2
    assert "abcdef" not in result.stderr and TOKEN not in result.stderr
    assert not (work / "rp-root").exists()


def test_the_docker_path_refuses_a_token_in_another_place_before_creating_anything(work: Path) -> None:
    """With Docker, the run script itself creates <rapid-pro-root>: a token given there (or anywhere but its own
    place) is refused first, and no container is started. A stand-in docker records what would have run."""
    bin_dir = work / "bin"
    bin_dir.mkdir()
    calls = work / "calls.txt"
    (bin_dir / "docker").write_text(f'#!/bin/sh\necho "$@" >> "{calls}"\nexit 0\n')
    (bin_dir / "docker").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("PIPELINE_RUNTIME", "RAPID_PRO_TOKEN")}
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    before = _entries(work)
    result = subprocess.run(
        [str(PROJECT_ROOT / "run_scripts" / "2_fetch_raw_data.sh"), "me@example.org", TOKEN, SERVER, "rp-root",
         "root"], cwd=work, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert TOKEN not in result.stdout + result.stderr
    assert "order" in result.stderr
    assert _entries(work) - before <= {"calls.txt"}
    assert not calls.exists() or " run " not in f" {calls.read_text()} "


@pytest.mark.parametrize("server", ["http://[::1", "http://127.0.0.1:notaport", "http://127.0.0.1:70000",
                                    "http://127.0.0.1:0"])
def test_a_malformed_server_address_is_a_usage_error_of_one_line(
    work: Path, server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unclosed IPv6 bracket or a port that is not a port number is refused like any other malformed address:
    one error line, exit 2, no traceback, nothing created. (In this process, so that it is this checkout's code.)"""
    (work / "token").write_text(TOKEN)
    before = _entries(work)
    status = entry_point(["me@example.org", str(work / "rp-root"), server, f"@{work / 'token'}", str(work / "root")])
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.splitlines() == [
        "error: the <rapid-pro-server> argument is not a server address such as https://textit.in; check the order "
        "of the arguments: <user> <rapid-pro-root> <rapid-pro-server> <rapid-pro-token> <data-root>"
    ]
    assert _entries(work) == before
