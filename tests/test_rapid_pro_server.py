"""Tests of the local Rapid Pro server, read through the real client library (``temba_client``)."""

from __future__ import annotations

import gzip
import json
import math
import os
import re
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
import requests
from temba_client.exceptions import (
    TembaConnectionError,
    TembaHttpError,
    TembaNoSuchObjectError,
    TembaRateExceededError,
    TembaTokenError,
)
from temba_client.v2 import TembaClient

from redss_pipeline.demo.rapid_pro_server import RapidProServer, RedirectingFront
from redss_pipeline.demo.synthetic_workspace import generate_workspace, parse_timestamp

TOKEN = "test-token-0123456789abcdef"
RUNS = "/api/v2/runs.json"


@pytest.fixture(scope="module")
def workspace():
    """A read-only workspace shared by the tests that do not mutate it."""
    return generate_workspace(seed=11, size=1200)


@pytest.fixture()
def server(workspace):
    with RapidProServer(workspace, token=TOKEN, page_size=40) as running:
        yield running


@pytest.fixture()
def client(server):
    return TembaClient(server.url, TOKEN)


def _flow_uuid(workspace, name="csap_s01e02_activation") -> str:
    return workspace.flow(name)["uuid"]


def _aware(us: int) -> datetime:
    """An aware datetime from microseconds since the epoch (what the client sends as after/before)."""
    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=us)


def _raw_get(server, path, **params):
    return requests.get(server.url + path, params=params, headers={"Authorization": f"Token {TOKEN}"}, timeout=10)


def test_paging_over_several_pages_returns_every_run_of_a_flow_once(workspace, server, client):
    """With 40 runs a page, a flow's runs come back over several pages, each run exactly once."""
    flow = _flow_uuid(workspace)
    expected = {r["uuid"] for r in workspace.runs(flow=flow)}
    pages = list(client.get_runs(flow=flow).iterfetches())
    fetched = [run.uuid for page in pages for run in page]
    assert len(pages) == math.ceil(len(expected) / 40) >= 3
    assert len(fetched) == len(set(fetched)) and set(fetched) == expected
    assert server.request_count(RUNS) == len(pages)


def test_runs_are_newest_modified_first_and_oldest_first_with_reverse(workspace, client):
    """Default order is modified_on descending (ties: larger id first); reverse gives the opposite."""
    flow = _flow_uuid(workspace)
    newest_first = client.get_runs(flow=flow).all()
    order = [(run.modified_on, workspace.run(run.uuid)["id"]) for run in newest_first]
    assert order == sorted(order, reverse=True)
    oldest_first = client.get_runs(flow=flow, reverse=True).all()
    assert [r.uuid for r in oldest_first] == [r.uuid for r in reversed(newest_first)]


def test_ties_on_modified_on_are_broken_by_larger_id_first(workspace, client):
    """Two runs with the same modified_on come back larger id first."""
    runs = workspace.runs()
    tied = next((a, b) for a, b in zip(runs, runs[1:]) if a["modified_on"] == b["modified_on"])
    when = parse_timestamp(tied[0]["modified_on"])
    fetched = client.get_runs(after=_aware(when), before=_aware(when)).all()
    assert [r.uuid for r in fetched] == [tied[1]["uuid"], tied[0]["uuid"]]


def test_after_and_before_are_inclusive(workspace, client):
    """A run modified exactly at ``after`` (or ``before``) is returned."""
    runs = workspace.runs(flow=_flow_uuid(workspace))
    boundary = runs[len(runs) // 2]
    moment = _aware(parse_timestamp(boundary["modified_on"]))
    after = client.get_runs(flow=boundary["flow"]["uuid"], after=moment).all()
    assert boundary["uuid"] in {r.uuid for r in after}
    assert {r.uuid for r in after} == {r["uuid"] for r in runs if r["modified_on"] >= boundary["modified_on"]}
    before = client.get_runs(flow=boundary["flow"]["uuid"], before=moment).all()
    assert boundary["uuid"] in {r.uuid for r in before}
    assert len(after) + len(before) == len(runs) + 1


def test_next_url_is_absolute_and_repeats_every_filter(workspace, server):
    """``next`` is an absolute URL with the original filters plus a cursor; the last page has next null."""
    flow = _flow_uuid(workspace)
    page = _raw_get(server, RUNS, flow=flow, after="2018-12-01T00:00:00.000000Z").json()
    assert page["previous"] is None and len(page["results"]) == 40
    assert page["next"].startswith(server.url + RUNS + "?")
    assert f"flow={flow}" in page["next"] and "after=2018-12-01T00%3A00%3A00.000000Z" in page["next"]
    assert "cursor=" in page["next"]
    url = page["next"]
    while url:
        last = requests.get(url, headers={"Authorization": f"Token {TOKEN}"}, timeout=10).json()
        url = last["next"]
    assert last["next"] is None and last["results"]


def test_raw_run_pages_carry_value_input(workspace, client):
    """Raw JSON pages keep values[*].input, which the typed Run.Value of client 2.21 drops."""
    page = client._get_raw("runs", {"flow": _flow_uuid(workspace, "csap_demog")})
    values = [v for run in page["results"] for v in run["values"].values()]
    assert values and all("input" in v and "name" in v for v in values)
    assert isinstance(page["results"][0]["id"], int)
    typed = client.get_runs(flow=_flow_uuid(workspace, "csap_demog")).first()
    assert not hasattr(next(iter(typed.values.values())), "input")


def test_uuid_contact_and_responded_filters_select_runs(workspace, client):
    """runs.json filters by run uuid, integer id, contact and responded."""
    runs_of: dict[str, list[str]] = {}
    for r in workspace.runs():
        runs_of.setdefault(r["contact"]["uuid"], []).append(r["uuid"])
    contact = next(c for c, uuids in runs_of.items() if 2 <= len(uuids) <= 40)  # fits one page
    by_contact = client._get_raw("runs", {"contact": contact})["results"]
    assert {r["uuid"] for r in by_contact} == set(runs_of[contact])
    run = workspace.run(runs_of[contact][0])
    assert [r["uuid"] for r in client._get_raw("runs", {"uuid": run["uuid"]})["results"]] == [run["uuid"]]
    assert [r["uuid"] for r in client._get_raw("runs", {"id": run["id"]})["results"]] == [run["uuid"]]
    silent = client.get_runs(flow=_flow_uuid(workspace), responded=False).all()
    assert silent and all(not r.responded and r.values == {} for r in silent)


def test_wrong_or_missing_token_is_refused(server):
    """A wrong token raises TembaTokenError; a request without Authorization gets 403."""
    with pytest.raises(TembaTokenError):
        TembaClient(server.url, "not-the-token").get_flows().all()
    assert requests.get(server.url + "/api/v2/flows.json", timeout=10).status_code == 403
    assert server.requests[-1].status == 403


def test_unknown_routes_are_404(server, client):
    """Endpoints the server does not implement answer 404."""
    assert _raw_get(server, "/api/v2/messages.json").status_code == 404
    assert _raw_get(server, "/api/v1/runs.json").status_code == 404
    with pytest.raises(TembaNoSuchObjectError):
        client.get_broadcasts().all()


def test_invalid_cursor_is_404(server):
    """A cursor the server did not write is answered 404, as Django REST framework does."""
    assert _raw_get(server, RUNS, cursor="not-a-cursor").status_code == 404


def test_rate_limit_with_retry_after_is_retried_by_the_client(workspace, server, client):
    """A 429 with Retry-After: 1 is slept off and retried by all(retry_on_rate_exceed=True)."""
    flow = _flow_uuid(workspace)
    fault = server.faults.inject(path=RUNS, status=429, retry_after=1, times=1, after_requests=1)
    runs = client.get_runs(flow=flow).all(retry_on_rate_exceed=True)
    assert {r.uuid for r in runs} == {r["uuid"] for r in workspace.runs(flow=flow)}
    assert fault.fired == 1 and not server.faults.pending
    statuses = [r.status for r in server.requests if r.path == RUNS]
    assert statuses[:3] == [200, 429, 200]


def test_rate_limit_without_retry_after_is_not_retried(server, client):
    """A 429 without Retry-After raises TembaRateExceededError with retry_after 0 at once."""
    server.faults.inject(path=RUNS, status=429, retry_after=None)
    with pytest.raises(TembaRateExceededError) as raised:
        client.get_runs().all(retry_on_rate_exceed=True)
    assert raised.value.retry_after == 0
    assert server.request_count(RUNS) == 1


def test_server_error_mid_flow_and_resume_from_the_saved_cursor(workspace, server, client):
    """A 500 on the third page breaks the fetch; resuming from the saved cursor returns the rest exactly once."""
    flow = _flow_uuid(workspace)
    server.faults.inject(path=RUNS, status=500, after_requests=2)
    fetches = client.get_runs(flow=flow).iterfetches()
    fetched = [run.uuid for run in next(fetches)] + [run.uuid for run in next(fetches)]
    with pytest.raises(TembaHttpError):
        next(fetches)
    cursor = fetches.get_cursor()
    assert cursor
    for page in client.get_runs(flow=flow).iterfetches(resume_cursor=cursor):
        fetched += [run.uuid for run in page]
    assert len(fetched) == len(set(fetched))
    assert set(fetched) == {r["uuid"] for r in workspace.runs(flow=flow)}


def test_dropped_connection_raises_connection_error(server, client):
    """A dropped connection surfaces as TembaConnectionError and is logged without a status."""
    server.faults.inject(path="/api/v2/contacts.json", drop_connection=True)
    with pytest.raises(TembaConnectionError):
        client.get_contacts().all()
    assert server.requests[-1].path == "/api/v2/contacts.json" and server.requests[-1].status is None
    assert client.get_contacts().first() is not None


def test_stalled_request_times_out_a_client_with_a_timeout(server):
    """A stall longer than the client's timeout raises a read timeout; the next request is answered."""
    server.faults.inject(path="/api/v2/org.json", stall_seconds=1.0)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(server.url + "/api/v2/org.json", headers={"Authorization": f"Token {TOKEN}"}, timeout=0.2)
    assert _raw_get(server, "/api/v2/org.json").json()["timezone"] == "Africa/Mogadishu"


def test_faults_can_target_a_query(workspace, server, client):
    """A fault restricted to one flow leaves the other flows' requests alone."""
    demog = _flow_uuid(workspace, "csap_demog")
    server.faults.inject(path=RUNS, status=502, query={"flow": demog})
    assert client.get_runs(flow=_flow_uuid(workspace)).first() is not None
    with pytest.raises(TembaHttpError):
        client.get_runs(flow=demog).first()


def test_archives_listing_and_download(workspace, server, client):
    """Run archives are listed with download URLs whose gzipped JSON lines match record_count."""
    archives = client.get_archives(type="run").all()
    assert archives and {a.type for a in archives} == {"run"}
    assert {a.period for a in archives} == {"daily", "monthly"}
    legacy = _raw_get(server, "/api/v2/archives.json", archive_type="run").json()["results"]
    assert [a["start_date"] for a in legacy] == [a.start_date.date().isoformat() for a in archives]
    assert all(a["archive_type"] == a["type"] == "run" for a in legacy)
    live = {r["id"] for r in workspace.runs()}
    for archive in archives:
        download = requests.get(archive.download_url, timeout=10)  # no token: a pre-signed URL
        assert download.status_code == 200 and len(download.content) == archive.size
        lines = gzip.decompress(download.content).splitlines()
        assert len(lines) == archive.record_count
        assert not live & {json.loads(line)["id"] for line in lines}
    monthly = client.get_archives(type="run", period="monthly").all()
    assert {a.period for a in monthly} == {"monthly"}


def test_deleted_contacts_are_served_only_with_deleted_true():
    """A deleted contact leaves contacts.json and appears under deleted=true with emptied fields."""
    workspace = generate_workspace(seed=5, size=300)
    victim = workspace.contacts()[3]["uuid"]
    workspace.delete_contact(victim)
    with RapidProServer(workspace, token=TOKEN, page_size=25) as server:
        client = TembaClient(server.url, TOKEN)
        assert victim not in {c.uuid for c in client.get_contacts().all()}
        deleted = client.get_contacts(deleted=True).all()
        assert [c.uuid for c in deleted] == [victim]
        assert deleted[0].urns == [] and deleted[0].name is None and deleted[0].groups == []


def test_mutations_between_fetches_show_up_in_an_incremental_fetch():
    """After a fetch, a modified run and a new run are returned by after=<last modified_on>, with the
    boundary run again (inclusive); new and changed contacts likewise."""
    workspace = generate_workspace(seed=5, size=300)
    with RapidProServer(workspace, token=TOKEN, page_size=25) as server:
        client = TembaClient(server.url, TOKEN)
        demog = workspace.flow("csap_demog")["uuid"]
        first = client.get_runs(flow=demog).all()
        cursor = max(r.modified_on for r in first)
        older = workspace.runs(flow=demog)[0]
        changed = workspace.modify_run(older["id"], answers={"hh_language": "Af Soomaali"})
        added = workspace.add_run(flow="csap_demog", contact=workspace.contacts()[0]["uuid"],
                                  answers={"gender": "wiil"})
        again = client.get_runs(flow=demog, after=cursor).all()
        assert {r.uuid for r in again} == {first[0].uuid, changed["uuid"], added["uuid"]}
        raw = client._get_raw("runs", {"uuid": changed["uuid"]})["results"][0]
        assert raw["values"]["hh_language"]["input"] == "Af Soomaali" and raw["id"] == older["id"]
        contact_cursor = max(c.modified_on for c in client.get_contacts().all())
        moved = workspace.set_contact_urns(workspace.contacts()[5]["uuid"], ["telegram:777"])
        assert [c.uuid for c in client.get_contacts(after=contact_cursor).all()][0] == moved["uuid"]


def test_request_log_counts_requests_per_endpoint(workspace, server, client):
    """Every request is logged with method, path, query and status."""
    client.get_flows().all()
    client.get_runs(flow=_flow_uuid(workspace)).first()
    log = server.requests
    assert [(r.method, r.path, r.status) for r in log] == [("GET", "/api/v2/flows.json", 200), ("GET", RUNS, 200)]
    assert log[1].query == {"flow": _flow_uuid(workspace)}
    assert server.request_count("/api/v2/flows.json") == 1


def test_command_line_serves_until_sigterm(tmp_path):
    """The module prints one line with its URL (never the token), serves, and exits 0 on SIGTERM."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "redss_pipeline.demo.rapid_pro_server", "--seed", "1", "--size", "200",
         "--page-size", "10", "--token-file", str(token_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={k: v for k, v in os.environ.items() if k != "RAPID_PRO_TOKEN"},
    )
    try:
        line = process.stdout.readline().strip()
        assert line.startswith("Rapid Pro test server listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        flows = TembaClient(url, TOKEN).get_flows().all()
        assert len(flows) == 6
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0
    assert TOKEN not in line + out + err


def test_command_line_without_a_token_is_a_usage_error():
    """Without --token-file or RAPID_PRO_TOKEN the module exits 2 with a one-line message."""
    env = {k: v for k, v in os.environ.items() if k != "RAPID_PRO_TOKEN"}
    done = subprocess.run([sys.executable, "-m", "redss_pipeline.demo.rapid_pro_server", "--size", "10"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: no API token: pass --token-file FILE or set RAPID_PRO_TOKEN"


# -- the real payload shapes (rapid-pro.md 6.4) ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_workspace():
    return generate_workspace(seed=12, size=600, shapes="real")


@pytest.fixture()
def real_server(real_workspace):
    with RapidProServer(real_workspace, token=TOKEN, page_size=40) as running:
        yield running


def test_real_runs_have_no_id_and_carry_the_contact_urn_and_its_local_display(real_workspace, real_server):
    """Live runs: uuid only; contact with urn and urn_display (local format); values with null or missing
    fields; API datetimes with Z and no fraction when the microseconds are 0; read by the real client."""
    contact = next(c for c in real_workspace.contacts() if c["urns"] and c["urns"][0].startswith("tel:+252"))
    added = real_workspace.add_run(flow="csap_demog", contact=contact["uuid"], answers={"gender": "lab"},
                                   modified_on="2019-03-01T10:00:00Z")
    results = _raw_get(real_server, RUNS, flow=_flow_uuid(real_workspace, "csap_demog")).json()["results"]
    assert all("id" not in r and r["uuid"] for r in results)
    (served,) = [r for r in results if r["uuid"] == added["uuid"]]
    assert served["modified_on"] == "2019-03-01T10:00:00Z"
    number = contact["urns"][0][len("tel:+252"):]
    assert served["contact"]["urn"] == contact["urns"][0]
    assert served["contact"]["urn_display"] == f"0{number[:3]} {number[3:6]} {number[6:]}"
    values = [v for r in results for v in r["values"].values()]
    assert all(re.fullmatch(r".*\.\d{6}Z", v["time"]) for v in values)
    assert any("input" not in v for v in values)
    assert any(v.get("input", "x") is None or v["category"] is None or v["name"] is None for v in values)
    runs = TembaClient(real_server.url, TOKEN).get_runs(flow=_flow_uuid(real_workspace, "csap_demog")).all()
    assert len(runs) == len(results) or len(runs) > len(results)  # more pages than the first


def test_real_contacts_have_a_status_and_no_booleans(real_workspace, real_server):
    """Contacts: status in active/blocked/stopped/archived, no blocked/stopped keys."""
    contacts = _raw_get(real_server, "/api/v2/contacts.json").json()["results"]
    assert all("blocked" not in c and "stopped" not in c for c in contacts)
    assert {c["status"] for c in contacts} <= {"active", "blocked", "stopped", "archived"}
    flows = TembaClient(real_server.url, TOKEN).get_flows().all()
    assert all({"waiting", "failed"} <= set(vars(f.runs)) for f in flows)


@pytest.mark.parametrize("mode, expected", [("masked", "tel:********"), ("empty", None)])
def test_an_anonymous_workspace_masks_or_omits_urns_and_says_so(mode, expected):
    """org.json says anon; contacts' URNs are masked (today's servers) or absent (2019-era); runs carry
    anon_display and a null urn_display; no number is ever served."""
    workspace = generate_workspace(seed=13, size=200, shapes="real", anonymous=mode)
    with RapidProServer(workspace, token=TOKEN) as server:
        assert _raw_get(server, "/api/v2/org.json").json()["anon"] is True
        contacts = _raw_get(server, "/api/v2/contacts.json").json()["results"]
        runs = _raw_get(server, RUNS).json()["results"]
        served = json.dumps([contacts, [r["contact"] for r in runs]])  # (answers may hold typed numbers)
    tel = [c["urns"] for c in contacts if c["urns"]]
    assert (tel and all(u == expected for urns in tel for u in urns if u.startswith("tel:"))) if expected else not tel
    assert all(r["contact"]["urn_display"] is None and r["contact"]["anon_display"] for r in runs)
    assert not any(number[1:] in served for number in workspace.phone_numbers())


def test_the_real_archive_listing_ignores_type_pages_by_offset_and_has_empty_links_for_no_file(real_workspace):
    """archive_type only; type= ignored (message archives listed too), archive_type=run honoured; limit and
    offset paging; download_url "" when there is no file."""
    with RapidProServer(real_workspace, token=TOKEN, page_size=2) as server:
        first = _raw_get(server, "/api/v2/archives.json", type="run").json()
        assert all("type" not in a for a in first["results"])
        assert "limit=2" in first["next"] and "offset=2" in first["next"]
        listed = first["results"] + requests.get(first["next"], headers={"Authorization": f"Token {TOKEN}"},
                                                 timeout=10).json()["results"]
        everything = []
        url = f"{server.url}/api/v2/archives.json?type=run"
        while url:
            page = requests.get(url, headers={"Authorization": f"Token {TOKEN}"}, timeout=10).json()
            everything += page["results"]
            url = page["next"]
        runs_only = _raw_get(server, "/api/v2/archives.json", archive_type="run", limit=100).json()["results"]
    assert {a["archive_type"] for a in everything} == {"run", "message"}
    assert listed == everything[:len(listed)]
    assert {a["archive_type"] for a in runs_only} == {"run"}
    assert all(a["download_url"] == "" for a in everything if a["record_count"] == 0)


def test_real_archive_files_live_on_another_host_that_refuses_the_token(real_workspace):
    """The link points to 127.0.0.2 (pre-signed); with an Authorization header it answers 400, without one the
    gzipped JSON lines (Content-Encoding none, application/octet), runs without start, with id, +00:00 times."""
    with RapidProServer(real_workspace, token=TOKEN, archive_link_seconds=30) as server:
        (archive, *_) = [a for a in _raw_get(server, "/api/v2/archives.json", archive_type="run").json()["results"]
                         if a["record_count"]]
        assert archive["download_url"].startswith(server.storage_url) and server.storage_url != server.url
        refused = requests.get(archive["download_url"], headers={"Authorization": f"Token {TOKEN}"}, timeout=10)
        fetched = requests.get(archive["download_url"], timeout=10)
        forged = requests.get(archive["download_url"].replace("Signature=", "Signature=0"), timeout=10)
    assert refused.status_code == 400 and forged.status_code == 403
    assert fetched.headers["Content-Encoding"] == "none"
    assert fetched.headers["Content-Type"] == "application/octet"
    lines = [json.loads(line) for line in gzip.decompress(fetched.content).splitlines()]
    assert len(lines) == archive["record_count"]
    assert all("start" not in r and isinstance(r["id"], int) for r in lines)
    assert all(r["modified_on"].endswith("+00:00") and not re.search(r"\.\d*0\+00:00$", r["modified_on"])
               for r in lines)


def test_a_late_run_appears_only_after_a_page_of_its_flow_was_served():
    """Late-commit mode: the held-back run is stamped before the newest run of its flow and becomes visible
    right after the server answered a page of that flow's runs."""
    workspace = generate_workspace(seed=14, size=300, shapes="real", late_commits=1)
    (flow,) = workspace.pending_flows()
    (late,) = workspace._pending_runs[flow]
    with RapidProServer(workspace, token=TOKEN) as server:
        before = [r["uuid"] for r in _raw_get(server, RUNS, flow=flow).json()["results"]]
        after = [r["uuid"] for r in _raw_get(server, RUNS, flow=flow).json()["results"]]
    assert late["uuid"] not in before and late["uuid"] in after
    assert after.index(late["uuid"]) == 1  # just behind the newest run, which the first page already held


def test_the_redirecting_front_sends_every_request_elsewhere(real_workspace):
    """A moved server: 301 to the same path and query on the other host."""
    with RapidProServer(real_workspace, token=TOKEN, host="127.0.0.2") as target, RedirectingFront(target.url) as front:
        answer = requests.get(f"{front.url}/api/v2/flows.json?x=1", allow_redirects=False, timeout=10)
    assert answer.status_code == 301
    assert answer.headers["Location"] == f"{target.url}/api/v2/flows.json?x=1"
    assert [r.path for r in front.requests] == ["/api/v2/flows.json"]


def test_command_line_modes_print_their_addresses(tmp_path):
    """--anonymous, --late-commits and --redirect-front: the front's address is on the second line."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "redss_pipeline.demo.rapid_pro_server", "--size", "200", "--anonymous", "masked",
         "--late-commits", "2", "--redirect-front", "--token-file", str(token_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        server_line = process.stdout.readline().strip()
        front_line = process.stdout.readline().strip()
        url = server_line.rsplit(" ", 1)[1]
        assert front_line.startswith("Redirecting front listening on http://127.0.0.1:") and url in front_line
        org = requests.get(f"{url}/api/v2/org.json", headers={"Authorization": f"Token {TOKEN}"}, timeout=10).json()
        assert org["anon"] is True
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)
    assert process.returncode == 0
