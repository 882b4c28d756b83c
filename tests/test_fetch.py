"""Tests of stage 2 (fetch): the real client against the bundled Rapid Pro server and synthetic workspace."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from redss_pipeline.core.config import FlowConfig
from redss_pipeline.core.errors import FetchError, UsageError
from redss_pipeline.core.traced_data_json import read_traced_data_file
from redss_pipeline.deidentify.uuid_table import create_uuid_table, open_uuid_table
from redss_pipeline.demo.rapid_pro_server import RapidProServer
from redss_pipeline.demo.synthetic_workspace import generate_workspace
from redss_pipeline.fetch.fetch_store import FetchStore
from redss_pipeline.fetch.rapid_pro import RetryPolicy, resolve_token
from redss_pipeline.fetch.stage import find_flows, run_fetch

TOKEN = "test-token-5f0c2a9d"
FLOWS = (
    "csap_s01e01_activation", "csap_s01e02_activation", "csap_s01e03_activation", "csap_s01e04_activation",
    "csap_demog", "csap_evaluation",
)
FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05)


@pytest.fixture
def workspace():
    return generate_workspace(seed=7, size=400)


@pytest.fixture
def server(workspace):
    with RapidProServer(workspace, token=TOKEN, page_size=40) as running:
        yield running


def _data_root(path: Path) -> Path:
    create_uuid_table(path)
    return path


@pytest.fixture
def root(tmp_path):
    return _data_root(tmp_path / "data")


class _FreshConnections(requests.adapters.HTTPAdapter):
    """One connection per request. The test server writes headers and body in two sends; on a kept-alive
    connection that meets the client's delayed ACK and costs 40 ms a request, on a fresh one it does not."""

    def send(self, request, **kwargs):
        response = super().send(request, **kwargs)
        self.poolmanager.clear()  # the connection closes when released instead of going back to the pool
        return response


def _session() -> requests.Session:
    session = requests.Session()
    session.mount("http://", _FreshConnections())
    return session


def _fetch(config, root, server, run, **options):
    options.setdefault("retry", FAST_RETRY)
    options.setdefault("sleep", lambda seconds: None)
    options.setdefault("session", _session())
    return run_fetch(
        config=config, data_root=root, server=server.url, token=TOKEN, run=run, progress=False, **options
    )


def _raw_files(root: Path) -> dict[str, bytes]:
    return {flow: (root / "Raw Data" / f"{flow}.json").read_bytes() for flow in FLOWS}


def _reference_files(tmp_path, root, config, server, run) -> dict[str, bytes]:
    """What an uninterrupted full fetch writes for the same workspace and the same UUID table."""
    reference = tmp_path / "reference"
    shutil.copytree(root / "UUIDs", reference / "UUIDs")
    _fetch(config, reference, server, run)
    return _raw_files(reference)


def _uid(root: Path, urn: str) -> str:
    with open_uuid_table(root) as table:
        return table.uuids_for_urns([urn])[urn]


def _records(root: Path, flow: str):
    return read_traced_data_file(root / "Raw Data" / f"{flow}.json")


def _all_runs(workspace, flow: str) -> list[dict]:
    flow_uuid = workspace.flow(flow)["uuid"]
    archived = [r for r in workspace.archived_runs() if r["flow"]["uuid"] == flow_uuid]
    return workspace.runs(flow=flow) + archived


# -- a full fetch ------------------------------------------------------------------------------------------------


def test_full_fetch_writes_every_run_with_a_known_contact_oldest_first(workspace, server, root, config, run):
    """Mode all: one record per run (archived runs included), oldest-modified first, uid of the first URN."""
    summary = _fetch(config, root, server, run)
    contacts = {c["uuid"]: c for c in workspace.contacts()}
    flow = "csap_s01e02_activation"
    runs = sorted(
        (r for r in _all_runs(workspace, flow) if contacts[r["contact"]["uuid"]]["urns"]),
        key=lambda r: (r["modified_on"], r["id"]),
    )
    records = _records(root, flow)
    assert [r["Rqa_S01E02 (Run ID) - csap_s01e02_activation"] for r in records if r.get(
        "Rqa_S01E02 (Run ID) - csap_s01e02_activation") is not None] == [r["id"] for r in runs if r["values"]]
    assert len(records) == len(runs)
    assert [r["modified_on"][:19] for r in records] == [r["modified_on"][:19] for r in runs]
    first = runs[0]
    assert records[0]["avf_phone_id"] == _uid(root, contacts[first["contact"]["uuid"]]["urns"][0])
    assert summary.archives_downloaded >= 1
    assert next(s for s in summary.flows if s.name == flow).records == len(runs)


def test_the_text_key_holds_the_raw_input_the_client_no_longer_models(workspace, server, root, config, run):
    """temba_client 2.21 dropped Run.Value.input; the (Text) key still carries it from the raw JSON."""
    _fetch(config, root, server, run)
    flow = "csap_s01e01_activation"
    by_id = {r["id"]: r for r in _all_runs(workspace, flow)}
    records = [r for r in _records(root, flow) if "Rqa_S01E01 (Text) - csap_s01e01_activation" in r]
    assert records
    for record in records:
        value = by_id[record["Rqa_S01E01 (Run ID) - csap_s01e01_activation"]]["values"]["rqa_s01e01"]
        if "<phone number>" in record["Rqa_S01E01 (Text) - csap_s01e01_activation"]:
            continue  # a number typed into the answer, redacted (tests/test_typed_numbers_end_to_end.py)
        assert record["Rqa_S01E01 (Text) - csap_s01e01_activation"] == value["input"]
        assert record["Rqa_S01E01 (Value) - csap_s01e01_activation"] == value["value"]


def test_test_contacts_are_flagged_not_dropped(workspace, server, root, config, run):
    """Runs of the configured test contacts carry test_run: true; others have no test_run key."""
    tester = sorted(config.test_contact_uuids)[0]
    workspace.add_run(flow="csap_s01e03_activation", contact=tester, answers={"rqa_s01e03": "test message"})
    _fetch(config, root, server, run)
    test_uids = {_uid(root, workspace.contact(c)["urns"][0]) for c in config.test_contact_uuids}
    records = _records(root, "csap_s01e03_activation")
    assert [r.get("test_run") for r in records if r.get("Rqa_S01E03 (Text) - csap_s01e03_activation") ==
            "test message"] == [True]
    assert all(r.get("test_run") is True for r in records if r["avf_phone_id"] in test_uids)
    assert all(r.get("test_run") is None for r in records if r["avf_phone_id"] not in test_uids)


# -- incremental fetch -------------------------------------------------------------------------------------------


def test_second_fetch_asks_only_for_changes_and_matches_a_full_fetch(workspace, server, root, config, run, tmp_path):
    """Changed runs replace their older versions, new ones are added, and the files equal a full fetch's."""
    _fetch(config, root, server, run)
    demog = workspace.runs(flow="csap_demog")
    changed = [workspace.modify_run(r["id"], answers={"age": "labaatan"}) for r in demog[:3]]
    contact = workspace.add_contact(urns=["tel:+252610099001"])
    added = workspace.add_run(flow="csap_s01e04_activation", contact=contact["uuid"], answers={"rqa_s01e04": "nabad"})
    server.clear_requests()

    summary = _fetch(config, root, server, run)

    flows = {s.name: s for s in summary.flows}
    assert (flows["csap_demog"].new, flows["csap_demog"].updated) == (0, 3)
    assert (flows["csap_s01e04_activation"].new, flows["csap_s01e04_activation"].updated) == (1, 0)
    assert summary.contacts.new == 1
    runs_requests = [r for r in server.requests if r.path == "/api/v2/runs.json"]
    assert all("after" in r.query for r in runs_requests)
    assert not [r for r in server.requests if r.path.startswith("/archive-files/")]
    age_by_run = {r["Age (Run ID) - csap_demog"]: r["Age (Value) - csap_demog"]
                  for r in _records(root, "csap_demog") if "Age (Run ID) - csap_demog" in r}
    present = [r for r in changed if r["id"] in age_by_run]  # (runs of contacts without a URN are left out)
    assert present and all(age_by_run[r["id"]] == r["values"]["age"]["value"] for r in present)
    assert any(r.get("Rqa_S01E04 (Run ID) - csap_s01e04_activation") == added["id"]
               for r in _records(root, "csap_s01e04_activation"))
    with FetchStore.open(root / "Raw Data" / "rapid_pro_store.sqlite") as store:
        assert store.run_count() == sum(len(_all_runs(workspace, f)) for f in FLOWS)
    assert _raw_files(root) == _reference_files(tmp_path, root, config, server, run)


def test_a_fetch_with_nothing_new_costs_ten_requests(server, root, config, run):
    """Nothing new: one flows request, two contacts requests, one archives listing, one runs request per flow."""
    _fetch(config, root, server, run)
    server.clear_requests()
    summary = _fetch(config, root, server, run)
    paths = [r.path for r in server.requests]
    assert paths.count("/api/v2/flows.json") == 1
    assert paths.count("/api/v2/contacts.json") == 2
    assert paths.count("/api/v2/archives.json") == 1
    assert paths.count("/api/v2/runs.json") == len(FLOWS)
    assert len(paths) == summary.requests == 10
    assert all(s.new == 0 and s.updated == 0 for s in summary.flows)


def test_deleted_contacts_are_removed_and_their_runs_left_out(workspace, server, root, config, run):
    """A contact deleted in Rapid Pro disappears from the raw files on the next fetch."""
    _fetch(config, root, server, run)
    flow = "csap_s01e01_activation"
    victim = next(r["contact"]["uuid"] for r in workspace.runs(flow=flow)
                  if workspace.contact(r["contact"]["uuid"])["urns"][:1] and
                  r["contact"]["uuid"] not in config.test_contact_uuids)
    uid = _uid(root, workspace.contact(victim)["urns"][0])
    workspace.delete_contact(victim)
    summary = _fetch(config, root, server, run)
    assert summary.contacts.deleted == 1
    assert all(r["avf_phone_id"] != uid for f in FLOWS for r in _records(root, f))


def test_a_changed_first_urn_takes_effect_on_every_record(workspace, server, root, config, run):
    """When a contact's preferred URN changes, all its records get the new uid."""
    _fetch(config, root, server, run)
    flow = "csap_s01e01_activation"
    contact = next(r["contact"]["uuid"] for r in workspace.runs(flow=flow)
                   if workspace.contact(r["contact"]["uuid"])["urns"][:1])
    workspace.set_contact_urns(contact, ["tel:+252610099777"])
    _fetch(config, root, server, run)
    new_uid = _uid(root, "tel:+252610099777")
    run_ids = {r["id"] for r in workspace.runs(flow=flow) if r["contact"]["uuid"] == contact}
    records = [r for r in _records(root, flow) if r.get("Rqa_S01E01 (Run ID) - csap_s01e01_activation") in run_ids]
    assert records and all(r["avf_phone_id"] == new_uid for r in records)


def test_a_run_of_a_contact_not_yet_known_is_kept_and_written_once_the_contact_arrives(
    workspace, server, root, config, run
):
    """A run whose contact appeared after the contacts were read is skipped, stays stored, comes back later."""
    created = {}

    def add_late_contact(what, page):
        if what == "runs of flow csap_s01e01_activation" and not created:
            contact = workspace.add_contact(urns=["tel:+252610099555"])
            created["run"] = workspace.add_run(flow="csap_evaluation", contact=contact["uuid"],
                                               answers={"repeated": "haa"})

    summary = _fetch(config, root, server, run, on_page=add_late_contact)
    assert summary.skipped_contacts_unknown == 1
    assert next(s for s in summary.flows if s.name == "csap_evaluation").skipped_unknown == 1
    summary = _fetch(config, root, server, run)
    uid = _uid(root, "tel:+252610099555")
    assert summary.skipped_contacts_unknown == 0
    assert [r["Repeated (Run ID) - csap_evaluation"] for r in _records(root, "csap_evaluation")
            if r["avf_phone_id"] == uid] == [created["run"]["id"]]


def test_a_new_archive_is_downloaded_once_and_its_runs_are_not_duplicated(workspace, server, root, config, run):
    """Runs moved to an archive after a fetch stay in the raw files, once; the archive is read only once."""
    _fetch(config, root, server, run)
    before = _raw_files(root)
    day = workspace.runs()[0]["modified_on"][:10]
    workspace.archive_runs(period="daily", start_date=day)
    server.clear_requests()
    summary = _fetch(config, root, server, run)
    assert summary.archives_downloaded == 1
    assert _raw_files(root) == before
    server.clear_requests()
    assert _fetch(config, root, server, run).archives_downloaded == 0


def test_latest_only_keeps_a_key_answered_only_in_an_older_run(workspace, server, root, config, run):
    """A respondent's survey record has the newest answer per key, and keys only an older run answered."""
    contact = workspace.add_contact(urns=["tel:+252610099123"])
    workspace.add_run(flow="csap_demog", contact=contact["uuid"], answers={"gender": "lab", "age": "labaatan"})
    workspace.add_run(flow="csap_demog", contact=contact["uuid"], answers={"gender": "dumar"})
    _fetch(config, root, server, run)
    uid = _uid(root, "tel:+252610099123")
    (record,) = [r for r in _records(root, "csap_demog") if r["avf_phone_id"] == uid]
    assert record["Gender (Text) - csap_demog"] == "dumar"
    assert record["Age (Text) - csap_demog"] == "labaatan"
    assert [c.value for c in record.history("Gender (Text) - csap_demog")] == ["lab", "dumar"]


# -- crash safety and faults ---------------------------------------------------------------------------------------


def test_an_interrupted_fetch_reruns_to_the_same_files_without_loss_or_duplicates(
    workspace, server, root, config, run, tmp_path
):
    """Ctrl-C in the middle of a flow, then a rerun: same raw files as an uninterrupted fetch, no duplicates."""

    def interrupt(what, page):
        if what == "runs of flow csap_s01e03_activation" and page == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _fetch(config, root, server, run, on_page=interrupt)
    server.clear_requests()
    _fetch(config, root, server, run)
    flow_uuid = workspace.flow("csap_s01e03_activation")["uuid"]
    rerun = [r.query for r in server.requests if r.path == "/api/v2/runs.json" and r.query.get("flow") == flow_uuid]
    assert "cursor" in rerun[0]  # continued after the last stored page instead of starting again
    with FetchStore.open(root / "Raw Data" / "rapid_pro_store.sqlite") as store:
        assert store.run_count() == sum(len(_all_runs(workspace, f)) for f in FLOWS)
    assert _raw_files(root) == _reference_files(tmp_path, root, config, server, run)


def _oldest_run(workspace, flow: str) -> dict:
    return min(workspace.runs(flow=flow), key=lambda r: r["modified_on"])


def test_a_run_changed_while_its_flow_is_read_is_in_the_files_the_fetch_ends_with(
    workspace, server, root, config, run, tmp_path
):
    """Pages come newest first: the flow's oldest run, answered again once page 1 is stored, moves above the
    pages read, where this read never meets it. The fetch still ends with it, as a full fetch of the workspace
    as it is then has it (rapid-pro.md 3: an incremental fetch equals a full fetch)."""
    changed = []

    def answer_again(what, page):
        if what == "runs of flow csap_s01e04_activation" and not changed:
            changed.append(workspace.modify_run(_oldest_run(workspace, "csap_s01e04_activation")["id"],
                                                answers={"rqa_s01e04": "waan maqlay barnaamijka"}))

    _fetch(config, root, server, run, on_page=answer_again)
    assert changed
    texts = [r.get("Rqa_S01E04 (Value) - csap_s01e04_activation") for r in _records(root, "csap_s01e04_activation")]
    assert "waan maqlay barnaamijka" in texts
    assert _raw_files(root) == _reference_files(tmp_path, root, config, server, run)


def test_a_flow_that_keeps_changing_while_it_is_read_is_read_at_most_four_times(
    workspace, server, root, config, run, caplog
):
    """41 runs answered again whenever a pass has stored its first page (more than a page of 40): each catch-up
    pass asks only for what changed since the newest run the pass before saw, 2 pages; after three catch-up
    passes the fetch goes on, saying what is left for the next fetch."""
    flow = "csap_s01e02_activation"
    uuid = workspace.flow(flow)["uuid"]
    live = sorted(workspace.runs(flow=flow), key=lambda r: r["modified_on"])[:41]

    def answer_again(what, page):
        if what == f"runs of flow {flow}" and page == 1:
            for r in live:
                workspace.modify_run(r["id"], answers={"rqa_s01e02": f"jawaab {page}"})

    first_pass_pages = -(-len(workspace.runs(flow=flow) + [r for r in workspace.archived_runs()
                                                            if r["flow"]["uuid"] == uuid]) // 40)
    _fetch(config, root, server, run, on_page=answer_again)
    requests = [r for r in server.requests if r.path == "/api/v2/runs.json" and r.query.get("flow") == uuid]
    assert len(requests) == first_pass_pages + 3 * 2
    assert [r.query.get("after") for r in requests[first_pass_pages::2]] == sorted(
        {r.query["after"] for r in requests[first_pass_pages:]})  # each pass from where the one before ended
    assert [r.message for r in caplog.records if "kept changing" in r.message] == [
        f"runs of flow {flow} kept changing while they were read (4 passes): what changed during the last pass is "
        "read by the next fetch"]


def test_a_run_changed_between_an_interrupted_fetch_and_its_rerun_is_in_the_files(
    workspace, server, root, config, run, tmp_path
):
    """Ctrl-C at page 2 of a flow, a listener answers again on the flow's oldest run (on a page not read yet; it
    moves above those read), then the rerun resumes: it ends with the run's new version."""

    def interrupt(what, page):
        if what == "runs of flow csap_s01e03_activation" and page == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _fetch(config, root, server, run, on_page=interrupt)
    workspace.modify_run(_oldest_run(workspace, "csap_s01e03_activation")["id"],
                         answers={"rqa_s01e03": "nabad iyo horumar"})
    _fetch(config, root, server, run)
    texts = [r.get("Rqa_S01E03 (Value) - csap_s01e03_activation") for r in _records(root, "csap_s01e03_activation")]
    assert "nabad iyo horumar" in texts
    assert _raw_files(root) == _reference_files(tmp_path, root, config, server, run)


def test_retries_running_out_name_the_flow_and_page_and_a_rerun_resumes(
    workspace, server, root, config, run, tmp_path
):
    """A server failing for good: FetchError names flow and page; stored pages stay; a rerun completes."""
    flow_uuid = workspace.flow("csap_s01e02_activation")["uuid"]
    server.faults.inject(path="/api/v2/runs.json", query={"flow": flow_uuid}, status=503, times=100,
                         after_requests=1)
    with pytest.raises(FetchError, match=r"runs of flow csap_s01e02_activation, page 2: HTTP 503 .*"
                                         r"still failing after 4 attempts.*run the same command again"):
        _fetch(config, root, server, run)
    with FetchStore.open(root / "Raw Data" / "rapid_pro_store.sqlite") as store:
        assert store.run_count(flow_uuid) == 40  # the first page was kept
    server.faults.clear()
    _fetch(config, root, server, run)
    assert _raw_files(root) == _reference_files(tmp_path, root, config, server, run)


def test_429_waits_for_retry_after(server, root, config, run):
    """A 429 with Retry-After is retried after exactly that many seconds (plus a little jitter)."""
    server.faults.inject(path="/api/v2/flows.json", status=429, retry_after=7)
    sleeps = []
    _fetch(config, root, server, run, sleep=sleeps.append)
    assert len(sleeps) == 1 and 7.0 <= sleeps[0] < 7.2
    assert server.request_count("/api/v2/flows.json") == 2


def test_a_rate_limit_longer_than_the_fetch_waits_says_when_to_run_again(server, root, config, run):
    """Retry-After of two hours (more than RetryPolicy's hour): one error saying to run again after that."""
    server.faults.inject(path="/api/v2/contacts.json", status=429, retry_after=7200)
    with pytest.raises(FetchError, match=r"contacts, page 1: the server asks to wait 7200 s \(rate limit\), longer "
                                         r"than 3600 s; run the same command again after that \(what was fetched "
                                         r"before is kept\)$"):
        _fetch(config, root, server, run)


def test_429_without_retry_after_backs_off(server, root, config, run):
    """A 429 without Retry-After backs off like a server error instead of failing at once."""
    server.faults.inject(path="/api/v2/contacts.json", status=429, retry_after=None, times=2)
    sleeps = []
    _fetch(config, root, server, run, sleep=sleeps.append, retry=RetryPolicy(max_attempts=4, base_delay=2.0))
    assert len(sleeps) == 2
    assert 1.0 <= sleeps[0] < 2.0 and 2.0 <= sleeps[1] < 4.0


def test_server_errors_and_dropped_connections_are_retried(workspace, server, root, config, run, tmp_path):
    """502, 500 and a dropped connection mid-fetch are retried; the result equals an undisturbed fetch."""
    flow_uuid = workspace.flow("csap_demog")["uuid"]
    server.faults.inject(path="/api/v2/runs.json", query={"flow": flow_uuid}, status=502, after_requests=1)
    server.faults.inject(path="/api/v2/runs.json", status=500, after_requests=3)
    server.faults.inject(path="/api/v2/contacts.json", drop_connection=True, after_requests=1)
    sleeps = []
    _fetch(config, root, server, run, sleep=sleeps.append)
    assert len(sleeps) == 3
    assert not server.faults.pending
    assert _raw_files(root) == _reference_files(tmp_path, root, config, server, run)


def test_a_stalled_request_times_out_and_is_retried(server, root, config, run):
    """A request that gets no answer hits the timeout and is sent again."""
    server.faults.inject(path="/api/v2/flows.json", stall_seconds=1.0, status=500)
    sleeps = []
    summary = _fetch(config, root, server, run, sleep=sleeps.append, timeout=0.3)
    assert len(sleeps) == 1
    assert summary.flows[0].records > 0


# -- errors the user can fix -------------------------------------------------------------------------------------


def test_an_unknown_flow_fails_listing_the_workspace_flows(server, root, config, run):
    """A configured flow the workspace lacks: the error lists the workspace's flow names."""
    wrong = dataclasses.replace(config, flows=(FlowConfig("csap_s01e05_activation", "all"),))
    with pytest.raises(FetchError, match=r"no flow named 'csap_s01e05_activation'.*csap_demog, csap_evaluation"):
        _fetch(wrong, root, server, run)


def test_a_flow_name_two_flows_share_is_an_error():
    """Two workspace flows with the configured name: "Non-unique flow name"."""
    flows = [{"uuid": "a", "name": "csap_demog"}, {"uuid": "b", "name": "csap_demog"}]
    with pytest.raises(FetchError, match="Non-unique flow name 'csap_demog'"):
        find_flows(flows, [FlowConfig("csap_demog", "latest-only")])


def test_a_missing_uuid_table_stops_the_fetch_before_any_request(server, tmp_path, config, run):
    """Stage 1 must have run: the error says so, and Rapid Pro is not asked anything."""
    with pytest.raises(Exception, match="run run_scripts/1_create_uuid_table.sh"):
        _fetch(config, tmp_path / "empty", server, run)
    assert server.request_count() == 0


def _entry_point():
    path = Path(__file__).resolve().parents[1] / "fetch_raw_data.py"
    spec = importlib.util.spec_from_file_location("fetch_raw_data", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.entry_point


def test_a_wrong_token_gives_one_line_and_a_nonzero_exit_without_the_token(server, root, tmp_path, capsys):
    """403 from Rapid Pro: exit 1, one clear error line, the token printed nowhere."""
    status = _entry_point()(["u@example.org", str(tmp_path / "rp"), server.url, "wrong-token-98765", str(root)])
    captured = capsys.readouterr()
    assert status == 1
    assert captured.err.splitlines()[0].startswith("error: Rapid Pro refused the API token (HTTP 403")
    assert "wrong-token-98765" not in captured.err + captured.out
    assert (tmp_path / "rp").is_dir()


def test_the_entry_point_reads_the_token_from_a_file_and_prints_the_summary(server, root, tmp_path, capsys):
    """@FILE gives the token; a successful fetch prints the per-flow table and the request count."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    status = _entry_point()(["u@example.org", str(tmp_path / "rp"), server.url, f"@{token_file}", str(root)])
    captured = capsys.readouterr()
    assert status == 0
    assert "csap_demog" in captured.out and "requests: " in captured.out
    assert TOKEN not in captured.out + captured.err


@pytest.mark.parametrize("terminal", [False, True])
def test_progress_bars_are_drawn_on_a_terminal_only(server, root, tmp_path, capsys, monkeypatch, terminal):
    """Standard error captured (a log, a cron job's mail): no bar redrawn with carriage returns; with the run
    script saying its standard error is a terminal (the Docker image's is a pipe), one bar per flow."""
    monkeypatch.setenv("RAPID_PRO_TOKEN", TOKEN)
    if terminal:
        monkeypatch.setenv("PIPELINE_STDERR_IS_A_TERMINAL", "1")
    else:
        monkeypatch.delenv("PIPELINE_STDERR_IS_A_TERMINAL", raising=False)
    assert _entry_point()(["u@example.org", str(tmp_path / "rp"), server.url, "-", str(root)]) == 0
    err = capsys.readouterr().err
    assert ("\r" in err and all(f"{flow}:" in err for flow in FLOWS)) if terminal else ("\r" not in err)


def test_a_rapid_pro_root_that_cannot_be_made_is_a_warning_not_a_failed_fetch(server, root, tmp_path, capsys):
    """The <rapid-pro-root> argument is kept for 2019's command line only: a file in its place does not stop the
    fetch; one warning line says so."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    (tmp_path / "rp").write_text("a file")
    status = _entry_point()(["u@example.org", str(tmp_path / "rp"), server.url, f"@{token_file}", str(root)])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert captured.err.splitlines()[0] == (f"warning: {tmp_path / 'rp'}: the <rapid-pro-root> folder cannot be "
                                            "created (a file has its name); the fetch does not need it, so it goes on")
    assert (tmp_path / "rp").read_text() == "a file"


def test_the_token_argument_can_name_a_file_or_the_environment(tmp_path):
    """'-' and '' read RAPID_PRO_TOKEN, @FILE reads the file's first line; a missing token is a usage error."""
    (tmp_path / "t").write_text("from-file\nignored\n")
    assert resolve_token(f"@{tmp_path / 't'}", {}) == "from-file"
    assert resolve_token("-", {"RAPID_PRO_TOKEN": "from-env"}) == "from-env"
    assert resolve_token("", {"RAPID_PRO_TOKEN": "from-env"}) == "from-env"
    assert resolve_token("literal", {}) == "literal"
    with pytest.raises(UsageError, match="RAPID_PRO_TOKEN is not set"):
        resolve_token("-", {})


# -- de-identification ---------------------------------------------------------------------------------------------


def test_a_telegram_only_contact_is_keyed_by_the_whole_urn_and_a_later_tel_wins_over_a_first_telegram(
    workspace, server, root, config, run
):
    """Decision 13: first tel:, else first whatsapp:, else the first other URN kept whole (never its digits)."""
    only = workspace.add_contact(urns=["telegram:987654321"])
    both = workspace.add_contact(urns=["telegram:987654322", "tel:+252610099321"])
    workspace.add_run(flow="csap_s01e01_activation", contact=only["uuid"], answers={"rqa_s01e01": "waan maqlay"})
    workspace.add_run(flow="csap_s01e01_activation", contact=both["uuid"], answers={"rqa_s01e01": "waan arkay"})
    _fetch(config, root, server, run)
    uids = {r.get("Rqa_S01E01 (Text) - csap_s01e01_activation"): r["avf_phone_id"]
            for r in _records(root, "csap_s01e01_activation")}
    with open_uuid_table(root) as table:
        assert table.keys_for_uuids([uids["waan maqlay"]]) == {uids["waan maqlay"]: "telegram:987654321"}
        assert table.keys_for_uuids([uids["waan arkay"]]) == {uids["waan arkay"]: "252610099321"}


def test_the_redaction_count_is_of_the_runs_a_fetch_stores(workspace, server, root, config, run):
    """Two numbers typed into a new answer are counted once; a fetch that reads that run again unchanged (the
    overlap window re-reads the newest runs) counts nothing."""
    contact = workspace.add_contact(urns=["tel:+252610099002"])
    workspace.add_run(flow="csap_s01e04_activation", contact=contact["uuid"],
                      answers={"rqa_s01e04": "wac 0615 123 456 ama +252 61 7770012"})
    _fetch(config, root, server, run)
    server.clear_requests()
    again = _fetch(config, root, server, run)
    assert any("after" in r.query for r in server.requests if r.path == "/api/v2/runs.json")
    assert again.phone_numbers_redacted == 0
    texts = [r.get("Rqa_S01E04 (Value) - csap_s01e04_activation") for r in _records(root, "csap_s01e04_activation")]
    assert "wac <phone number> ama <phone number>" in texts
    workspace.modify_run(workspace.runs(flow="csap_s01e04_activation")[-1]["id"],
                         answers={"rqa_s01e04": "la soo xiriir 0617770013"})
    assert _fetch(config, root, server, run).phone_numbers_redacted == 2  # in the value and in the input


def test_no_phone_number_appears_in_any_file_outside_uuids(workspace, server, root, config, run, tmp_path):
    """Every file under the data root but UUIDs/ is free of the workspace's numbers, in any formatting."""
    _fetch(config, root, server, run)
    workspace.modify_run(workspace.runs(flow="csap_demog")[0]["id"], answers={"age": "soddon"})
    _fetch(config, root, server, run)
    patterns = []
    for number in workspace.phone_numbers():
        digits = re.sub(r"\D", "", number)
        last_nine = digits[-9:]
        patterns.append(re.escape(digits.encode()))
        patterns.append(rb"[ .()\-]?".join(re.escape(d.encode()) for d in last_nine))
    scanner = re.compile(b"|".join(patterns))
    scanned = 0
    for path in root.rglob("*"):
        if path.is_file() and "UUIDs" not in path.relative_to(root).parts:
            content = path.read_bytes()
            assert scanner.search(content) is None, f"a phone number leaked into {path.relative_to(root)}"
            scanned += 1
    assert scanned >= len(FLOWS) + 1
    # The scan itself works: the table does hold the numbers.
    assert scanner.search((root / "UUIDs" / "phone_uuids.sqlite").read_bytes()) is not None


def test_progress_bars_go_to_stderr(server, root, config, run, capsys):
    """With progress on, a bar per flow is drawn on stderr and nothing on stdout."""
    run_fetch(config=config, data_root=root, server=server.url, token=TOKEN, run=run, progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert all(flow in captured.err for flow in FLOWS)
    # Each bar ends at the flow's number of runs, however many passes read it (a catch-up pass reads the last
    # run again).
    for flow in FLOWS:
        last = [frame for frame in re.split(r"[\r\n]", captured.err) if frame.startswith(f"{flow}:")][-1]
        done, total = re.search(r"(\d+)/(\d+)", last).groups()
        assert done == total, last


def test_a_refetch_with_nothing_new_leaves_the_raw_files_untouched(workspace, server, root, config, run):
    """Unchanged inputs: the files are not rewritten; a removed file, or a new run, brings a rewrite."""
    _fetch(config, root, server, run)
    raw = root / "Raw Data"
    stamps = {f: (raw / f"{f}.json").stat().st_mtime_ns for f in FLOWS}
    (raw / "csap_demog.json").unlink()
    contact = workspace.add_contact(urns=["tel:+252610099444"])
    workspace.add_run(flow="csap_evaluation", contact=contact["uuid"], answers={"involved": "haa"})
    summary = _fetch(config, root, server, run)
    rewritten = {f for f in FLOWS if (raw / f"{f}.json").stat().st_mtime_ns != stamps.get(f)}
    assert rewritten == {"csap_demog", "csap_evaluation"}
    assert next(s for s in summary.flows if s.name == "csap_s01e01_activation").records > 0


def test_a_changed_test_contact_list_takes_effect_on_every_record(workspace, server, root, config, run):
    """Test contacts come from the configuration: removing one untags its records without any new data."""
    _fetch(config, root, server, run)
    (kept, dropped) = sorted(config.test_contact_uuids)
    fewer = dataclasses.replace(config, test_contact_uuids=frozenset({kept}))
    _fetch(fewer, root, server, run)
    dropped_uid = _uid(root, workspace.contact(dropped)["urns"][0])
    records = [r for f in FLOWS for r in _records(root, f) if r["avf_phone_id"] == dropped_uid]
    assert records and all("test_run" not in r for r in records)


def test_full_rebuilds_from_the_server_and_changes_nothing_when_nothing_changed(workspace, server, root, config, run):
    """--full asks for every run again (no after, archives again) into a new store: same files, same uids,
    nothing dropped, no duplicates, and no rebuild file left behind."""
    _fetch(config, root, server, run)
    before = _raw_files(root)
    with FetchStore.open(root / "Raw Data" / "rapid_pro_store.sqlite") as store:
        stored, uids = store.run_count(), store.contact_uids()
    server.clear_requests()
    summary = _fetch(config, root, server, run, full=True)
    for flow in FLOWS:  # every run asked for again (then, since that took several pages, what changed meanwhile)
        uuid = workspace.flow(flow)["uuid"]
        first = next(r for r in server.requests if r.path == "/api/v2/runs.json" and r.query.get("flow") == uuid)
        assert "after" not in first.query
    assert summary.archives_downloaded >= 1
    assert (summary.dropped_runs, summary.contacts.identity_changed) == (0, 0)
    assert _raw_files(root) == before
    with FetchStore.open(root / "Raw Data" / "rapid_pro_store.sqlite") as store:
        assert (store.run_count(), store.contact_uids()) == (stored, uids)
    assert sorted(p.name for p in (root / "Raw Data").iterdir() if "sqlite" in p.name) == ["rapid_pro_store.sqlite"]


def test_an_unreachable_server_fails_after_bounded_retries(root, config, run):
    """Nothing listening: a few retries, then one FetchError naming what was being read and the server, and
    saying to check the address (running the same command again would fail the same way)."""
    sleeps = []
    with pytest.raises(
        FetchError, match=r"flows, page 1: the connection to http://127\.0\.0\.1:9 failed .*after 4 attempts; the "
                          r"server never answered: check its address \(http://127\.0\.0\.1:9\) and the network \(what "
                          r"was fetched before is kept\)$"
    ):
        run_fetch(config=config, data_root=root, server="http://127.0.0.1:9", token=TOKEN, run=run,
                  progress=False, retry=FAST_RETRY, sleep=sleeps.append)
    assert len(sleeps) == 3 and sleeps == sorted(sleeps)


def test_a_plain_http_server_asked_for_tls_says_how_to_reach_it(server, root, config, run):
    """An address given without a scheme gets https://; a server speaking plain HTTP then answers the TLS
    handshake in plain text, which no retry changes: the error comes at once and says what to write instead."""
    secure = server.url.replace("http://", "https://")
    sleeps: list[float] = []
    with pytest.raises(FetchError, match=(
            rf"^the connection to {re.escape(secure)} failed \(SSLError: no secure connection could be made; if the "
            r"server speaks plain HTTP, give its address with http://\)$")):
        run_fetch(config=config, data_root=root, server=secure, token=TOKEN, run=run, progress=False,
                  retry=FAST_RETRY, sleep=sleeps.append)
    assert sleeps == []  # not retried


def test_a_fetch_killed_mid_flow_reruns_to_the_same_files(workspace, server, root, config, run, tmp_path):
    """SIGKILL while a page is on its way (the entry point as a real process), then a rerun: nothing lost."""
    flow_uuid = workspace.flow("csap_s01e04_activation")["uuid"]
    stall = server.faults.inject(path="/api/v2/runs.json", query={"flow": flow_uuid}, stall_seconds=30,
                                 status=500, after_requests=1)
    project = Path(__file__).resolve().parents[1]
    child = subprocess.Popen(
        [sys.executable, str(project / "fetch_raw_data.py"), "u@example.org", str(tmp_path / "rp"), server.url, "-",
         str(root)],
        env={**os.environ, "RAPID_PRO_TOKEN": TOKEN}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not stall.fired and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.05)
        assert stall.fired, "the fetch never reached the stalled page"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    with FetchStore.open(root / "Raw Data" / "rapid_pro_store.sqlite") as store:
        assert 0 < store.run_count(flow_uuid) < len(workspace.runs(flow="csap_s01e04_activation"))
    _fetch(config, root, server, run)
    with FetchStore.open(root / "Raw Data" / "rapid_pro_store.sqlite") as store:
        assert store.run_count() == sum(len(_all_runs(workspace, f)) for f in FLOWS)
    assert _raw_files(root) == _reference_files(tmp_path, root, config, server, run)


def _store_moved_away(root: Path) -> None:
    """As for a data root of the 2019 pipeline, or one whose store was moved away: raw files and table ids, and no
    record of their workspace."""
    for path in (root / "Raw Data").glob("rapid_pro_store.sqlite*"):
        path.unlink()


def test_the_first_fetch_keeps_the_raw_files_it_finds_and_warns_of_another_workspace(
        workspace, server, root, config, run, caplog):
    """Nothing records which workspace such raw files came from, and the first fetch writes every raw file from the
    server alone: before, another workspace's runs replaced them without a word (a 2019 root's 3,000 records became
    2,167 of a foreign workspace). Its raw files are kept aside, and a workspace none of whose contacts is in the
    table is named in a warning. The same workspace again gives no such warning."""
    _fetch(config, root, server, run)
    earlier = _raw_files(root)
    _store_moved_away(root)
    # An anonymous workspace: its contacts are keyed by their Rapid Pro uuids, which are none of the table's.
    with RapidProServer(generate_workspace(seed=11, size=60, anonymous="masked"), token=TOKEN, page_size=40) as other:
        _fetch(config, root, other, run)
    kept = root / "Raw Data" / "Earlier raw files"
    assert {flow: (kept / f"{flow}.json").read_bytes() for flow in FLOWS} == earlier
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(w.startswith("none of the ") and "was in this data root's phone number table" in w for w in warnings)
    assert any(f"the {len(FLOWS)} raw file(s) that were there" in w for w in warnings)

    caplog.clear()
    shutil.rmtree(kept)
    _store_moved_away(root)
    _fetch(config, root, server, run)  # the project's own workspace
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert not any(w.startswith("none of the ") for w in warnings)
    assert _raw_files(root) == earlier and len(list(kept.iterdir())) == len(FLOWS)
