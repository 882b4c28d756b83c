"""Stage 2 against real workspaces (rapid-pro.md sections 3, 6.3 and 6.4; README decision 13): late commits,
unreadable archives, redirects, anonymous and WhatsApp contacts, and the payload shapes real servers send.

Everything goes through the real client against the bundled server on 127.0.0.1 serving the ``real`` shapes
(archives on a second local host that refuses an ``Authorization`` header), unless a test says otherwise.
"""

from __future__ import annotations

import dataclasses
import http.server
import importlib.util
import json
import os
import re
import shutil
import sqlite3
import subprocess
import threading
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from redss_pipeline.core.errors import FetchError
from redss_pipeline.core.traced_data_json import read_traced_data_file
from redss_pipeline.deidentify.uuid_table import create_uuid_table, open_uuid_table
from redss_pipeline.demo.api_shapes import local_display
from redss_pipeline.demo.rapid_pro_server import RapidProServer, RedirectingFront
from redss_pipeline.demo.synthetic_workspace import generate_workspace
from redss_pipeline.fetch.fetch_store import FetchStore
from redss_pipeline.fetch.rapid_pro import RapidProClient, RetryPolicy
from redss_pipeline.fetch.raw_records import parse_time
from redss_pipeline.fetch.stage import run_fetch

TOKEN = "test-token-real-3e81c0"
FLOWS = (
    "csap_s01e01_activation", "csap_s01e02_activation", "csap_s01e03_activation", "csap_s01e04_activation",
    "csap_demog", "csap_evaluation",
)
FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05)
STORE = Path("Raw Data") / "rapid_pro_store.sqlite"
# Fictitious numbers built at run time, so that no number stands in a source file.
NUMBER = "+25261" + "0098765"


@pytest.fixture
def workspace():
    return generate_workspace(seed=21, size=400, shapes="real")


@pytest.fixture
def server(workspace):
    with RapidProServer(workspace, token=TOKEN, page_size=40) as running:
        yield running


@pytest.fixture
def root(tmp_path):
    path = tmp_path / "data"
    create_uuid_table(path)
    return path


def _fetch(config, root, server_url, run, **options):
    options.setdefault("retry", FAST_RETRY)
    options.setdefault("sleep", lambda seconds: None)
    return run_fetch(config=config, data_root=root, server=server_url, token=TOKEN, run=run, progress=False,
                     **options)


def _raw_files(root: Path) -> dict[str, bytes]:
    return {flow: (root / "Raw Data" / f"{flow}.json").read_bytes() for flow in FLOWS}


def _records(root: Path, flow: str):
    return read_traced_data_file(root / "Raw Data" / f"{flow}.json")


def _reference(tmp_path: Path, root: Path, config, server, run, name: str = "reference") -> dict[str, bytes]:
    """What a first (full) fetch of the workspace as it is now writes, with the same UUID table."""
    reference = tmp_path / name
    shutil.copytree(root / "UUIDs", reference / "UUIDs")
    _fetch(config, reference, server.url, run)
    return _raw_files(reference)


def _entry_point():
    path = Path(__file__).resolve().parents[1] / "fetch_raw_data.py"
    spec = importlib.util.spec_from_file_location("fetch_raw_data", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.entry_point


def _texts(root: Path, flow: str, key: str) -> list:
    return [r.get(key) for r in _records(root, flow)]


def _snapshot(root: Path) -> dict[str, bytes]:
    """Every file of the data root outside UUIDs/ (the lock file aside), byte for byte."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
        if p.is_file() and "UUIDs" not in p.relative_to(root).parts and not p.name.startswith(".")
    }


# -- item 1: late commits and the overlap window --------------------------------------------------------------------


def test_an_incremental_fetch_equals_a_full_fetch_after_a_late_commit(root, config, run, tmp_path):
    """A run stamped before the newest one seen but committed after that page was read is found by the next
    incremental fetch (it re-reads the overlap window), which then equals a full fetch."""
    workspace = generate_workspace(seed=21, size=400, shapes="real", late_commits=3)
    late = [r["uuid"] for flow in workspace.pending_flows() for r in workspace._pending_runs[flow]]
    # On air: the server's clock is the workspace's latest event, as when fetching during a show.
    with RapidProServer(workspace, token=TOKEN, page_size=40, clock=workspace.now) as server:
        _fetch(config, root, server.url, run)
        assert not workspace.pending_flows()  # committed while the first fetch was reading
        first = {r.get(f"Rqa_S01E0{n} (Run ID) - csap_s01e0{n}_activation") for n in (1, 2, 3)
                 for r in _records(root, f"csap_s01e0{n}_activation")}
        assert not first & set(late), "the scenario needs the first fetch to miss the late runs"
        server.clear_requests()
        _fetch(config, root, server.url, run)
        runs_requests = [r for r in server.requests if r.path == "/api/v2/runs.json"]
        assert all("after" in r.query for r in runs_requests)
        second = {r.get(f"Rqa_S01E0{n} (Run ID) - csap_s01e0{n}_activation") for n in (1, 2, 3)
                  for r in _records(root, f"csap_s01e0{n}_activation")}
        assert set(late) <= second
        assert _raw_files(root) == _reference(tmp_path, root, config, server, run)


def test_without_the_overlap_window_a_late_commit_is_missed(root, config, run):
    """The same scenario with the overlap set to 0: the late runs stay missing (what the window is for)."""
    workspace = generate_workspace(seed=21, size=400, shapes="real", late_commits=3)
    late = {r["uuid"] for flow in workspace.pending_flows() for r in workspace._pending_runs[flow]}
    no_overlap = dataclasses.replace(config, fetch_overlap=timedelta(0))
    with RapidProServer(workspace, token=TOKEN, page_size=40, clock=workspace.now) as server:
        _fetch(no_overlap, root, server.url, run)
        _fetch(no_overlap, root, server.url, run)
    with FetchStore.open(root / STORE) as store:
        stored = {u for _, u in store.run_identities()}
    assert not late & stored


def _contacts_after(server) -> str:
    (contacts,) = [r for r in server.requests if r.path == "/api/v2/contacts.json" and "deleted" not in r.query]
    return contacts.query["after"]


def test_the_overlap_comes_from_the_configuration_and_is_measured_from_the_previous_read(workspace, root, config,
                                                                                            run):
    """On air (the previous read began right after the newest change): incremental requests ask from the
    cursor minus rapid_pro.overlap_minutes (default 60). Long after the last change, nothing before the cursor
    can still be uncommitted, so they ask from the cursor. The server's Date header tells which."""
    assert config.fetch_overlap == timedelta(hours=1)
    with RapidProServer(workspace, token=TOKEN, page_size=40, clock=workspace.now) as on_air:
        _fetch(config, root, on_air.url, run)
        with FetchStore.open(root / STORE) as store:
            cursor = store.cursor("contacts")
        on_air.clear_requests()
        _fetch(config, root, on_air.url, run)
        assert _contacts_after(on_air) == (parse_time(cursor) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    later = root.parent / "later"
    create_uuid_table(later)
    with RapidProServer(workspace, token=TOKEN, page_size=40, port=on_air.port) as wall_clock:
        _fetch(config, later, wall_clock.url, run)
        wall_clock.clear_requests()
        _fetch(config, later, wall_clock.url, run)
        assert _contacts_after(wall_clock) == cursor


def test_a_refetch_with_nothing_new_makes_at_most_ten_requests_with_the_overlap(server, root, config, run):
    """The window re-reads the last hour, which with nothing new is one page per cursor: still 10 requests,
    and no raw file is rewritten."""
    _fetch(config, root, server.url, run)
    stamps = {f: (root / "Raw Data" / f"{f}.json").stat().st_mtime_ns for f in FLOWS}
    server.clear_requests()
    summary = _fetch(config, root, server.url, run)
    assert summary.requests == len(server.requests) <= 10
    assert all(s.new == 0 and s.updated == 0 for s in summary.flows)
    assert {f: (root / "Raw Data" / f"{f}.json").stat().st_mtime_ns for f in FLOWS} == stamps


# -- item 2: archives that cannot be read ----------------------------------------------------------------------------


def _non_empty_run_archives(workspace) -> list[dict]:
    return [a for a in workspace.archives() if a["archive_type"] == "run" and a["record_count"]]


def test_an_unreadable_archive_makes_a_partial_fetch_and_a_later_fetch_completes_it(
    workspace, server, root, config, run, tmp_path
):
    """Retries run out on one archive: the live fetch goes on, the raw files are written from everything
    else, the summary names the archive, exit status 3; the next fetch reads it and equals a full fetch."""
    broken = _non_empty_run_archives(workspace)[0]
    server.faults.inject(path=f"/archive-files/{broken['file']}", status=503, times=1000)
    summary = _fetch(config, root, server.url, run)
    assert summary.partial and summary.exit_status == 3
    assert [(m.period, m.start_date) for m in summary.missing_archives] == [(broken["period"], broken["start_date"])]
    assert "HTTP 503" in summary.missing_archives[0].reason
    assert f"MISSING: {broken['period']} run archive of {broken['start_date']}: HTTP 503" in summary.table()
    lost = {json.loads(line)["uuid"] for line in __import__("gzip").decompress(
        workspace.archive_file(broken["file"])).splitlines()}
    written = {r.get(k) for f in FLOWS for r in _records(root, f) for k in r if k.endswith("(Run ID) - " + f)}
    assert written and not lost & written
    assert all(len(_records(root, f)) > 0 for f in FLOWS)
    server.faults.clear()
    summary = _fetch(config, root, server.url, run)
    assert not summary.partial and summary.archives_downloaded == 1
    assert _raw_files(root) == _reference(tmp_path, root, config, server, run)


def test_the_entry_point_exits_3_and_names_an_archive_without_a_download_link(workspace, server, root, tmp_path,
                                                                              capsys):
    """A non-empty archive whose listing gives an empty download_url is reported, not skipped silently."""
    broken = _non_empty_run_archives(workspace)[0]
    workspace.remove_archive_file(period=broken["period"], start_date=broken["start_date"])
    (tmp_path / "token").write_text(TOKEN)
    status = _entry_point()(["u@example.org", str(tmp_path / "rp"), server.url, f"@{tmp_path / 'token'}", str(root)])
    captured = capsys.readouterr()
    assert status == 3
    assert (f"MISSING: {broken['period']} run archive of {broken['start_date']}: the listing gives no download link "
            f"for its {broken['record_count']} run(s)") in captured.out
    assert captured.err.strip().splitlines()[-1].startswith("partial fetch: 1 run archive(s) could not be read")
    assert all((root / "Raw Data" / f"{f}.json").is_file() for f in FLOWS)


def test_an_expired_archive_link_is_replaced_by_a_fresh_one_from_the_listing(root, config, run):
    """Pre-signed links expire: the storage's 403 makes the fetch ask the listing again, and the new link works."""
    workspace = generate_workspace(seed=21, size=400, shapes="real")
    with RapidProServer(workspace, token=TOKEN, page_size=40, archive_link_seconds=0.5) as server:
        first = _non_empty_run_archives(workspace)[0]
        server.faults.inject(path=f"/archive-files/{first['file']}", stall_seconds=0.8)  # the link expires meanwhile
        summary = _fetch(config, root, server.url, run)
        downloads = [r for r in server.requests if r.path == f"/archive-files/{first['file']}"]
        expired = [r for r in server.requests if r.path.startswith("/archive-files/") and r.status == 403]
        listings = [r for r in server.requests if r.path == "/api/v2/archives.json"]
    assert not summary.partial and summary.archives_downloaded == len(_non_empty_run_archives(workspace))
    assert [r.status for r in downloads] == [403, 200]
    assert downloads[0].query["Signature"] != downloads[1].query["Signature"]
    assert len(listings) == 1 + len(expired)  # one fresh listing per expired link (the later ones expired too)


def test_a_failing_download_gets_a_fresh_link_before_the_last_retries(server, workspace, root, config, run):
    """Two 503s in a row: before the last two attempts the listing is read again, and the third attempt works."""
    first = _non_empty_run_archives(workspace)[0]
    server.faults.inject(path=f"/archive-files/{first['file']}", status=503, times=2)
    summary = _fetch(config, root, server.url, run)
    assert not summary.partial
    assert server.request_count("/api/v2/archives.json") == 2
    assert [r.status for r in server.requests if r.path == f"/archive-files/{first['file']}"] == [503, 503, 200]


def test_archives_live_on_another_host_that_never_sees_the_token(server, workspace, root, config, run):
    """Downloads go to the storage host without an Authorization header (it would answer 400)."""
    _fetch(config, root, server.url, run)
    downloads = [r for r in server.requests if r.path.startswith("/archive-files/")]
    assert downloads and {r.host for r in downloads} == {server.storage_url[len("http://"):]}
    assert server.storage_url != server.url
    assert not any(r.authorization for r in downloads)
    refused = requests.get(downloads[0].path and server.storage_url + downloads[0].path,
                           params=dict(downloads[0].query), headers={"Authorization": f"Token {TOKEN}"}, timeout=10)
    assert refused.status_code == 400


def test_no_archives_skips_them_knowingly_and_a_later_fetch_reads_them(server, workspace, root, config, run, tmp_path):
    """--no-archives: no listing, no download, the summary says so, exit 0; runs only in archives are absent
    until a fetch without the option reads them."""
    summary = _fetch(config, root, server.url, run, no_archives=True)
    assert summary.exit_status == 0 and summary.archives_skipped
    assert "archives: skipped (--no-archives)" in summary.table()
    assert not [r for r in server.requests if "archive" in r.path]
    archived = {r["uuid"] for r in workspace.archived_runs()}
    with FetchStore.open(root / STORE) as store:
        assert not archived & {u for _, u in store.run_identities()}
    summary = _fetch(config, root, server.url, run)
    assert summary.archives_downloaded == len(_non_empty_run_archives(workspace))
    assert _raw_files(root) == _reference(tmp_path, root, config, server, run)


def test_the_archive_listing_asks_for_run_archives_and_ignores_the_message_archives_listed_anyway(
    server, workspace, root, config, run
):
    """archive_type=run is the filter real servers honour; they list message archives too, never downloaded."""
    assert any(a["archive_type"] == "message" and a["record_count"] for a in workspace.archives())
    _fetch(config, root, server.url, run)
    (listing,) = [r for r in server.requests if r.path == "/api/v2/archives.json"]
    assert listing.query.get("archive_type") == "run" and "type" not in listing.query
    message_files = {a["file"] for a in workspace.archives() if a["archive_type"] == "message"}
    assert not [r for r in server.requests if r.path.rsplit("/", 1)[-1] in message_files]


def test_dailies_rolled_into_a_monthly_archive_add_no_duplicate(server, workspace, root, config, run):
    """The archiver replaces dailies by a monthly (new hash, same runs): read once more, merged, same files."""
    _fetch(config, root, server.url, run)
    before = _raw_files(root)
    with FetchStore.open(root / STORE) as store:
        stored = store.run_count()
    month = next(a["start_date"][:7] for a in workspace.archives() if a["period"] == "daily" and a["record_count"])
    workspace.roll_up_month(month)
    summary = _fetch(config, root, server.url, run)
    assert summary.archives_downloaded == 1 and not summary.partial
    assert _raw_files(root) == before
    with FetchStore.open(root / STORE) as store:
        assert store.run_count() == stored


# -- item 3 and issue 12 item 7: redirects and links to other hosts -------------------------------------------------


def test_a_redirect_to_another_host_is_one_line_naming_it_and_the_token_never_goes_there(
    workspace, root, tmp_path, capsys
):
    """The server moved: exit 1, one error line naming the new location and the argument to use; the new
    host received nothing (asserted on its request log)."""
    (tmp_path / "token").write_text(TOKEN)
    with RapidProServer(workspace, token=TOKEN, host="127.0.0.2") as target, RedirectingFront(target.url) as front:
        status = _entry_point()(["u@example.org", str(tmp_path / "rp"), front.url, f"@{tmp_path / 'token'}",
                                 str(root)])
        received = target.requests
        asked = front.requests
    captured = capsys.readouterr()
    assert status == 1
    first = captured.err.splitlines()[0]
    assert first.startswith(f"error: the Rapid Pro server redirects {front.url}/api/v2/flows.json to "
                            f"{target.url}/api/v2/flows.json (HTTP 301)")
    assert f"give {target.url} as <rapid-pro-server>" in first
    assert TOKEN not in captured.out + captured.err
    assert received == [] and len(asked) == 1
    assert not any((root / "Raw Data" / f"{f}.json").exists() for f in FLOWS)


def test_a_next_link_to_another_host_is_not_followed(workspace, root, config, run):
    """A next link outside the configured origin is refused: the other host never gets a request (nor the token)."""
    with RapidProServer(workspace, token=TOKEN, host="127.0.0.2") as other, \
            RapidProServer(workspace, token=TOKEN, page_size=40) as server:
        server.next_link_root = other.url
        with pytest.raises(FetchError, match=rf"the link to the next page points to {re.escape(other.url)}/api/v2/"
                                             r".*outside .*not following it"):
            _fetch(config, root, server.url, run)
        assert other.requests == []


class _LoopingPages(http.server.BaseHTTPRequestHandler):
    """A server whose every page of flows links to the same next page (a cursor that never moves). The bundled
    server cannot be made to do it; after 50 requests it ends the listing, so a client without a guard fails
    later instead of reading forever."""

    served = 0

    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        type(self).served += 1
        root = f"http://{self.headers['Host']}/api/v2"
        body = {"next": f"{root}/flows.json?cursor=cD0yMDE5", "previous": None,
                "results": [{"uuid": "0c1f3b52-2b5e-4f0e-9d55-1d4c1a1e7d01", "name": "csap_demog"}]}
        if type(self).served > 50:
            body = {"next": None, "previous": None, "results": []}
        content = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, *args: object) -> None:
        pass


def test_a_next_link_back_to_a_page_already_read_is_one_line_not_an_endless_fetch(root, config, run):
    """A server whose next link leads back to a page of the same listing: the fetch stops at the repeat with one
    line naming the server's endpoint, instead of asking for the same pages forever."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _LoopingPages)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        with pytest.raises(FetchError) as raised:
            _fetch(config, root, url, run)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert str(raised.value) == (
        f"flows, page 2: the link to the next page leads back to a page already read ({url}/api/v2/flows.json); "
        "the server repeats its pages, so the fetch stops instead of reading them forever"
    )
    assert _LoopingPages.served == 2


def test_the_token_goes_only_to_the_configured_origin_never_to_plain_http():
    """An https server's link on plain http, another host or port is refused before any request."""
    client = RapidProClient("textit.in/", TOKEN)
    assert client.root_url == "https://textit.in/api/v2" and client.server_root == "https://textit.in"
    client.check_origin("https://textit.in/api/v2/runs.json?cursor=x", what="link")
    for elsewhere in ("http://textit.in/api/v2/runs.json", "https://textit.in:8443/api/v2/runs.json",
                      "https://evil.example/api/v2/runs.json"):
        with pytest.raises(FetchError, match="not following it"):
            client.check_origin(elsewhere, what="link")
    assert client.requests_made == 0


def test_a_server_given_with_a_trailing_slash_is_the_same_server(server, root, config, run):
    """``http://127.0.0.1:PORT/`` works and is recorded as the same server as without the slash."""
    _fetch(config, root, server.url + "/", run)
    server.clear_requests()
    _fetch(config, root, server.url, run)
    assert all("//api" not in r.path for r in server.requests)


# -- items 4 and 5: which URN identifies a contact ------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["masked", "empty"])
def test_two_anonymous_contacts_never_share_a_uid(mode, root, config, run, tmp_path, capsys):
    """Anonymous workspace: every contact is keyed by its Rapid Pro UUID; no two share a uid, no run is dropped
    for lack of a URN, and the first line of the output says the workspace is anonymous."""
    workspace = generate_workspace(seed=22, size=400, shapes="real", anonymous=mode)
    (tmp_path / "token").write_text(TOKEN)
    with RapidProServer(workspace, token=TOKEN, page_size=40) as server:
        status = _entry_point()(["u@example.org", str(tmp_path / "rp"), server.url, f"@{tmp_path / 'token'}",
                                 str(root)])
    out = capsys.readouterr().out
    assert status == 0
    assert out.splitlines()[0].startswith("Fetching workspace 'CSAP (synthetic workspace)'")
    assert "an anonymous workspace" in out.splitlines()[0]
    uid_of_contact: dict[str, str] = {}
    with FetchStore.open(root / STORE) as store:
        uid_of_contact = store.contact_uids()
    assert len(uid_of_contact) == len(workspace.contacts())  # URN-less contacts too: the UUID identifies them
    assert len(set(uid_of_contact.values())) == len(uid_of_contact)
    with open_uuid_table(root) as table:
        keys = table.keys_for_uuids(uid_of_contact.values())
    assert {keys[uid] for uid in uid_of_contact.values()} == {f"rapidpro-contact:{c}" for c in uid_of_contact}
    flow = "csap_s01e01_activation"
    live = [r for r in workspace.runs(flow=flow)] + [r for r in workspace.archived_runs() if r["flow"]["name"] == flow]
    assert len(_records(root, flow)) == len(live)


def test_a_masked_urn_is_never_a_key_even_in_a_workspace_that_is_not_anonymous(server, workspace, root, config, run):
    """tel:******** identifies no one: a contact with only masked URNs is keyed by its UUID, one with a usable
    URN beside it by that URN; two masked contacts stay apart."""
    masked_a = workspace.add_contact(urns=["tel:********"])
    masked_b = workspace.add_contact(urns=["whatsapp:********"])
    mixed = workspace.add_contact(urns=["tel:********", "telegram:4455667"])
    for contact, text in ((masked_a, "a"), (masked_b, "b"), (mixed, "c")):
        workspace.add_run(flow="csap_s01e02_activation", contact=contact["uuid"], answers={"rqa_s01e02": f"jawaab {text}"})
    _fetch(config, root, server.url, run)
    uids = {r["Rqa_S01E02 (Value) - csap_s01e02_activation"]: r["avf_phone_id"]
            for r in _records(root, "csap_s01e02_activation") if "Rqa_S01E02 (Value) - csap_s01e02_activation" in r}
    with open_uuid_table(root) as table:
        keys = table.keys_for_uuids([uids["jawaab a"], uids["jawaab b"], uids["jawaab c"]])
    assert keys[uids["jawaab a"]] == f"rapidpro-contact:{masked_a['uuid']}"
    assert keys[uids["jawaab b"]] == f"rapidpro-contact:{masked_b['uuid']}"
    assert keys[uids["jawaab c"]] == "telegram:4455667"
    with closing(sqlite3.connect(f"file:{root / 'UUIDs/phone_uuids.sqlite'}?mode=ro", uri=True)) as db:
        stored = [key for (key,) in db.execute("SELECT key FROM phone_uuids")]
    assert stored and not any(key.endswith("********") for key in stored)


def test_a_person_switching_between_tel_and_whatsapp_keeps_one_uid(server, workspace, root, config, run):
    """Rapid Pro moves the channel used last to the front; the identity (first tel:, else whatsapp:) does not
    move, and a WhatsApp-only contact with the same number is the same person."""
    digits = NUMBER[1:]
    person = workspace.add_contact(urns=[f"tel:{NUMBER}", f"whatsapp:{digits}"])
    workspace.add_run(flow="csap_s01e03_activation", contact=person["uuid"], answers={"rqa_s01e03": "sms kow"})
    _fetch(config, root, server.url, run)
    workspace.set_contact_urns(person["uuid"], [f"whatsapp:{digits}", f"tel:{NUMBER}"])
    workspace.add_run(flow="csap_s01e03_activation", contact=person["uuid"], answers={"rqa_s01e03": "whatsapp labo"})
    other_phone = workspace.add_contact(urns=[f"whatsapp:{digits}"])
    workspace.add_run(flow="csap_s01e03_activation", contact=other_phone["uuid"], answers={"rqa_s01e03": "saddex"})
    _fetch(config, root, server.url, run)
    uids = {r["Rqa_S01E03 (Value) - csap_s01e03_activation"]: r["avf_phone_id"]
            for r in _records(root, "csap_s01e03_activation") if "Rqa_S01E03 (Value) - csap_s01e03_activation" in r}
    assert uids["sms kow"] == uids["whatsapp labo"] == uids["saddex"]
    with open_uuid_table(root) as table:
        assert table.keys_for_uuids([uids["sms kow"]]) == {uids["sms kow"]: digits}


def _previous_key(urn: str) -> str:
    """The UUID-table key the previous build gave a contact: its first URN, digits for tel:, else whole."""
    scheme, _, path = urn.partition(":")
    return re.sub(r"\D", "", path).lstrip("0") if scheme == "tel" else f"{scheme}:{path}"


def _downgrade_to_a_store_of_the_previous_build(root: Path, workspace) -> int:
    """Turns the store into what the previous build left (schema 1, no workspace table, every contact's uid
    from its first URN whatever the scheme); returns how many contacts that gives another uid."""
    keys = {c["uuid"]: _previous_key(c["urns"][0]) for c in workspace.contacts() if c["urns"]}
    with open_uuid_table(root) as table:
        ids = table.uuids_for_keys(keys.values())
    old_uids = {contact: ids[key] for contact, key in keys.items()}
    db = sqlite3.connect(root / STORE)
    current = dict(db.execute("SELECT contact_uuid, uid FROM contacts"))
    changed = sum(1 for c, uid in old_uids.items() if current.get(c) not in (None, uid))
    with db:
        db.executemany("UPDATE contacts SET uid = ? WHERE contact_uuid = ?", [(u, c) for c, u in old_uids.items()])
        db.execute("DROP TABLE workspace")
    db.execute("PRAGMA user_version=1")
    db.close()
    return changed


def test_a_store_of_the_previous_build_keeps_its_uids_except_for_contacts_whose_identity_rule_changed(
    server, workspace, root, config, run, tmp_path
):
    """The first fetch after the upgrade identifies every contact again: uids stay, except those of contacts
    whose first URN was not their identity URN (counted in the summary); files equal a fresh fetch's."""
    _fetch(config, root, server.url, run)
    expected = _downgrade_to_a_store_of_the_previous_build(root, workspace)
    assert expected > 0  # whatsapp- and telegram-first contacts with a tel: URN
    with FetchStore.open(root / STORE) as store:
        before = store.contact_uids()
    summary = _fetch(config, root, server.url, run)
    assert summary.contacts.identity_changed == expected
    assert f"{expected} got another uid" in summary.table()
    with FetchStore.open(root / STORE) as store:
        after = store.contact_uids()
    assert sum(1 for c in before if after[c] != before[c]) == expected
    assert _raw_files(root) == _reference(tmp_path, root, config, server, run)
    assert _fetch(config, root, server.url, run).contacts.identity_changed is None  # once only


# -- item 6 and the shapes of rapid-pro.md 6.4 ------------------------------------------------------------------------


def test_one_run_id_rule_per_raw_file(server, workspace, root, config, run):
    """Live runs without an id next to archived runs with one: every (Run ID) of a file is the run uuid; with
    servers that send ids everywhere, every one is the integer id."""
    _fetch(config, root, server.url, run)
    for flow in FLOWS:
        ids = [v for r in _records(root, flow) for k, v in r.items() if k.endswith(f"(Run ID) - {flow}")]
        assert ids and all(isinstance(v, str) and len(v) == 36 for v in ids), flow
    superset = generate_workspace(seed=21, size=400)
    other_root = root.parent / "superset"
    create_uuid_table(other_root)
    with RapidProServer(superset, token=TOKEN, page_size=40) as plain:
        _fetch(config, other_root, plain.url, run)
    ids = [v for r in _records(other_root, "csap_s01e01_activation") for k, v in r.items() if "(Run ID)" in k]
    assert ids and all(isinstance(v, int) for v in ids)


def test_real_datetime_forms_become_the_2019_isoformat(server, workspace, root, config, run):
    """API datetimes without a fraction (``...:00Z``) and archive lines' ``+00:00`` with trimmed zeros are
    written as Python isoformat in UTC, like every other time."""
    contact = next(c for c in workspace.contacts() if c["urns"])
    added = workspace.add_run(flow="csap_s01e04_activation", contact=contact["uuid"], answers={"rqa_s01e04": "nabad"},
                              modified_on="2019-02-20T08:01:00Z")
    _fetch(config, root, server.url, run)
    (record,) = [r for r in _records(root, "csap_s01e04_activation")
                 if r.get("Rqa_S01E04 (Run ID) - csap_s01e04_activation") == added["uuid"]]
    assert record["modified_on"] == "2019-02-20T08:01:00+00:00"
    times = [r["modified_on"] for f in FLOWS[:4] for r in _records(root, f)]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00", t) for t in times)
    archived_times = {r["modified_on"] for r in workspace.archived_runs()}
    assert any(re.search(r"\.\d{1,5}\+00:00$", t) for t in archived_times)  # trimmed in the archive lines


def test_no_phone_number_nor_urn_display_text_anywhere_outside_uuids(server, workspace, root, config, run):
    """Runs carry contact urn and urn_display (a number in local format): none of it reaches a file."""
    _fetch(config, root, server.url, run)
    page = requests.get(f"{server.url}/api/v2/runs.json", headers={"Authorization": f"Token {TOKEN}"},
                        timeout=10).json()["results"]
    displays = {r["contact"]["urn_display"] for r in page if r["contact"].get("urn_display")}
    assert displays and all(re.fullmatch(r"0\d{3} \d{3} \d{3}", d) for d in displays
                            if d == local_display("tel:+" + re.sub(r"\D", "", "252" + d[1:])))
    patterns = []
    for number in workspace.phone_numbers():
        digits = re.sub(r"\D", "", number)
        patterns.append(re.escape(digits.encode()))
        patterns.append(rb"[ .()\-]?".join(re.escape(d.encode()) for d in digits[-9:]))
        patterns.append(re.escape(local_display("tel:" + number).encode()))
    scanner = re.compile(b"|".join(patterns))
    scanned = 0
    for path in root.rglob("*"):
        if path.is_file() and "UUIDs" not in path.relative_to(root).parts:
            content = path.read_bytes()
            assert scanner.search(content) is None, f"a number leaked into {path.relative_to(root)}"
            assert b"urn_display" not in content and b"anon_display" not in content
            scanned += 1
    assert scanned >= len(FLOWS) + 1


def test_real_contact_and_run_shapes_are_read(server, workspace, root, config, run):
    """Contacts with status only, deleted contacts with nulls, runs with null or missing input, failed exits:
    all read, and the (Text) key is None where input is null or missing."""
    victim = next(c["uuid"] for c in workspace.contacts() if c["urns"] and c["uuid"] not in config.test_contact_uuids)
    workspace.delete_contact(victim)
    summary = _fetch(config, root, server.url, run)
    assert summary.contacts.deleted == 1
    served = requests.get(f"{server.url}/api/v2/runs.json", params={"flow": workspace.flow("csap_demog")["uuid"]},
                          headers={"Authorization": f"Token {TOKEN}"}, timeout=10).json()["results"]
    values = [v for r in served for v in r["values"].values()]
    assert any("input" not in v for v in values) and any(v.get("input", "") is None for v in values)
    assert all("id" not in r for r in served)
    texts = [r.get("Gender (Text) - csap_demog") for r in _records(root, "csap_demog")]
    assert None in texts
    contact = next(c for c in workspace.contacts() if c["urns"])
    failed = workspace.add_run(flow="csap_s01e01_activation", contact=contact["uuid"], answers={}, exit_type="failed")
    _fetch(config, root, server.url, run)
    assert [r["exit_type"] for r in _records(root, "csap_s01e01_activation")
            if r["modified_on"] == failed["modified_on"].replace("Z", "+00:00")] == ["failed"]
    assert "failed" in next(f for f in requests.get(
        f"{server.url}/api/v2/flows.json", headers={"Authorization": f"Token {TOKEN}"}, timeout=10
    ).json()["results"] if f["name"] == "csap_s01e01_activation")["runs"]


# -- issue 12 item 2: the store belongs to one server and workspace ----------------------------------------------------


def test_a_fetch_from_a_second_workspace_is_refused_and_changes_nothing(server, root, config, run, tmp_path, capsys):
    """Fetch, then fetch the same data root against a second bundled workspace: one line naming both,
    non-zero exit, store and raw files byte-identical."""
    _fetch(config, root, server.url, run)
    before = _snapshot(root)
    (tmp_path / "token").write_text(TOKEN)
    other = generate_workspace(seed=99, size=200, shapes="real")
    other.org["name"] = "Staging copy"
    with RapidProServer(other, token=TOKEN) as second:
        status = _entry_point()(["u@example.org", str(tmp_path / "rp"), second.url, f"@{tmp_path / 'token'}",
                                 str(root)])
        asked = [r.path for r in second.requests]
    err = capsys.readouterr().err.splitlines()
    assert status == 1
    assert err[0].startswith("error: this data root holds workspace 'CSAP (synthetic workspace)' (uuid ")
    assert f"on {server.url}, but {second.url} serves workspace 'Staging copy' (uuid {other.org['uuid']})" in err[0]
    assert asked == ["/api/v2/org.json"]
    assert _snapshot(root) == before


def test_a_server_that_cannot_be_reached_is_said_so_not_taken_for_another_workspace(server, root, config, run):
    """Another address where nothing listens (a server stopped, a wrong port): the error says the server could
    not be reached and names it; it does not claim the address serves another workspace. Nothing is changed."""
    _fetch(config, root, server.url, run)
    before = _snapshot(root)
    with pytest.raises(FetchError) as raised:
        _fetch(config, root, "http://127.0.0.1:9", run)  # nothing listens on the discard port
    assert str(raised.value) == (
        "workspace (org.json), page 1: the connection to http://127.0.0.1:9 failed (ConnectionError), still "
        "failing after 4 attempts; the server never answered: check its address (http://127.0.0.1:9) and the "
        "network (what was fetched before is kept)"
    )
    assert _snapshot(root) == before


def test_another_spelling_of_the_server_address_serving_the_same_workspace_goes_on(
    server, workspace, root, config, run, caplog
):
    """``http://localhost:PORT`` after ``http://127.0.0.1:PORT``: org.json gives the uuid of the store's
    workspace, so the fetch goes on from the new address, says so in one line, and the raw files are the same."""
    _fetch(config, root, server.url, run)
    before = _raw_files(root)
    elsewhere = server.url.replace("127.0.0.1", "localhost")
    uuid = workspace.org["uuid"]
    first_lines: list[str] = []
    _fetch(config, root, elsewhere, run, announce=first_lines.append)
    assert first_lines == [f"Fetching workspace 'CSAP (synthetic workspace)' (uuid {uuid}) on {elsewhere}"]
    assert (f"this data root's workspace (uuid {uuid}) was fetched from {server.url} until now; {elsewhere} serves "
            f"the same workspace, so the fetch goes on from {elsewhere}") in caplog.messages
    assert _raw_files(root) == before


def test_a_copy_of_the_workspace_that_gives_no_uuid_on_another_address_is_refused(server, root, config, run):
    """Without a uuid from org.json, the same name on another address does not make the same workspace (a
    staging copy, say): refused, nothing changed."""
    _fetch(config, root, server.url, run)
    before = _snapshot(root)
    copy = generate_workspace(seed=21, size=400, shapes="real")
    del copy.org["uuid"]
    with RapidProServer(copy, token=TOKEN) as second:
        with pytest.raises(FetchError, match=rf"but {re.escape(second.url)} serves workspace 'CSAP \(synthetic "
                                             r"workspace\)': refusing to fetch another workspace"):
            _fetch(config, root, second.url, run)
    assert _snapshot(root) == before


def test_another_workspace_behind_the_same_server_address_is_refused(server, root, config, run):
    """Same address, another workspace (a wrong token, say): the flows' uuids differ, org.json tells, refused."""
    _fetch(config, root, server.url, run)
    before = _snapshot(root)
    server.workspace = generate_workspace(seed=98, size=200, shapes="real")
    with pytest.raises(FetchError, match=r"this data root holds workspace .* serves workspace .*refusing"):
        _fetch(config, root, server.url, run)
    assert _snapshot(root) == before


def test_full_rebuilds_from_the_server_and_keeps_no_foreign_rows(server, workspace, root, config, run, tmp_path):
    """A store damaged before it recorded its workspace (foreign runs merged in) is repaired by --full: only
    what the server serves is kept, and the files equal a fresh fetch's."""
    foreign = generate_workspace(seed=97, size=200, shapes="real")
    with RapidProServer(foreign, token=TOKEN, page_size=40) as elsewhere:
        _fetch(config, root, elsewhere.url, run)
    db = sqlite3.connect(root / STORE)
    with db:
        db.execute("DELETE FROM workspace")  # as a store of the previous build: no record of its workspace
    db.close()
    _fetch(config, root, server.url, run)  # adopts the store: the foreign runs stay (flows differ)
    with FetchStore.open(root / STORE) as store:
        polluted = store.run_count()
    summary = _fetch(config, root, server.url, run, full=True)
    with FetchStore.open(root / STORE) as store:
        kept = store.run_count()
        assert {u for _, u in store.run_identities()} == {
            r["uuid"] for r in workspace.runs() + workspace.archived_runs()}
    assert summary.dropped_runs == polluted - kept > 0
    assert _raw_files(root) == _reference(tmp_path, root, config, server, run)


def test_a_killed_full_rebuild_leaves_the_store_as_it_was_and_the_next_one_continues_it(
    server, workspace, root, config, run
):
    """--full interrupted half way: the old store and raw files are untouched; --full again continues the
    rebuild from its last stored page and puts it in place."""
    _fetch(config, root, server.url, run)
    before = _snapshot(root)
    flow_uuid = workspace.flow("csap_s01e03_activation")["uuid"]

    def interrupt(what, page):
        if what == "runs of flow csap_s01e03_activation" and page == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _fetch(config, root, server.url, run, full=True, on_page=interrupt)
    assert {k: v for k, v in _snapshot(root).items() if ".rebuilding" not in k} == before
    server.clear_requests()
    summary = _fetch(config, root, server.url, run, full=True)
    resumed = [r.query for r in server.requests if r.path == "/api/v2/runs.json" and r.query.get("flow") == flow_uuid]
    assert "cursor" in resumed[0]
    assert summary.dropped_runs == 0
    assert not list((root / "Raw Data").glob("*.rebuilding*"))
    assert _snapshot(root).keys() == before.keys()
    assert {k: v for k, v in _snapshot(root).items() if k.endswith(".json")} == {
        k: v for k, v in before.items() if k.endswith(".json")}


def test_an_ordinary_fetch_after_a_killed_full_rebuild_says_the_rebuild_is_kept_for_the_next_full(
    server, workspace, root, config, run, caplog
):
    """--full killed half way leaves its rebuild; a fetch without --full says so in one line and leaves it,
    and the next --full still continues it from its last stored page and puts it in place."""
    _fetch(config, root, server.url, run)

    def interrupt(what, page):
        if what == "runs of flow csap_s01e03_activation" and page == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _fetch(config, root, server.url, run, full=True, on_page=interrupt)
    rebuilding = root / "Raw Data" / "rapid_pro_store.sqlite.rebuilding"
    caplog.clear()
    _fetch(config, root, server.url, run)
    assert (f"{rebuilding} is left by a --full that did not finish: it is kept, and the next --full continues it; "
            "delete it (with its -wal and -shm files) to discard it") in caplog.messages
    assert rebuilding.exists()
    server.clear_requests()
    _fetch(config, root, server.url, run, full=True)
    flow_uuid = workspace.flow("csap_s01e03_activation")["uuid"]
    resumed = [r.query for r in server.requests if r.path == "/api/v2/runs.json" and r.query.get("flow") == flow_uuid]
    assert "cursor" in resumed[0]
    assert not list((root / "Raw Data").glob("*.rebuilding*"))


def test_the_run_script_passes_no_archives_through(server, workspace, root, tmp_path):
    """run_scripts/2_fetch_raw_data.sh --no-archives: exit 0, the summary says the archives were skipped,
    and the storage host received nothing."""
    (tmp_path / "token").write_text(TOKEN)
    script = Path(__file__).resolve().parents[1] / "run_scripts" / "2_fetch_raw_data.sh"
    done = subprocess.run(
        [str(script), "--no-archives", "u@example.org", str(tmp_path / "rp"), server.url, f"@{tmp_path / 'token'}",
         str(root)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PIPELINE_RUNTIME": "native"},
    )
    assert done.returncode == 0, done.stderr
    assert "archives: skipped (--no-archives)" in done.stdout
    assert not [r for r in server.requests if "archive" in r.path]
