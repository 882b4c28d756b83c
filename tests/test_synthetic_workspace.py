"""Tests of the synthetic CSAP workspace: shapes, scenario coverage, determinism, scale and mutations."""

from __future__ import annotations

import gzip
import json
import re
from datetime import datetime, timedelta, timezone

import pytest

from redss_pipeline.demo.synthetic_workspace import (
    CSAP_FLOWS,
    CSAP_TEST_CONTACT_UUIDS,
    Workspace,
    WorkspaceError,
    format_timestamp,
    generate_workspace,
    parse_timestamp,
)

EAT = timezone(timedelta(hours=3))
SOMALI_NUMBER = re.compile(r"^\+252(61|62|63|64|65|66|67|68|69|90|91)00\d{5}$")
# Fictitious numbers for the mutation tests, built at run time so that no number stands in a source file.
HORMUD_NUMBER = "+25261" + "5551234"
GOLIS_NUMBER = "+25290" + "5551234"


def _utc(text: str) -> str:
    """An EAT (or any offset) timestamp in the API's UTC form."""
    return format_timestamp(parse_timestamp(text))


@pytest.fixture(scope="module")
def workspace() -> Workspace:
    return generate_workspace(seed=7, size=3000)


def _every_run(workspace: Workspace) -> list[dict]:
    return workspace.runs() + workspace.archived_runs()


def _value_times(workspace: Workspace, flow: str, key: str) -> set[str]:
    return {r["values"][key]["time"] for r in _every_run(workspace) if r["flow"]["name"] == flow and key in r["values"]}


def test_generation_is_deterministic_for_a_seed():
    """The same seed and size give identical runs, contacts and archive files; another seed differs."""
    first, second = generate_workspace(seed=3, size=800), generate_workspace(seed=3, size=800)
    assert first.runs() == second.runs()
    assert first.contacts() == second.contacts()
    assert [a["hash"] for a in first.archives()] == [a["hash"] for a in second.archives()]
    assert generate_workspace(seed=4, size=800).runs() != first.runs()


def test_generates_100000_runs_at_scale():
    """A size of 100,000 gives 100,000 runs (live plus archived) with unique ids and uuids."""
    big = generate_workspace(seed=1, size=100_000)
    runs = _every_run(big)
    assert len(runs) == 100_000
    assert len({r["id"] for r in runs}) == 100_000
    assert len({r["uuid"] for r in runs}) == 100_000


def test_flows_are_the_six_csap_flows_with_their_result_keys(workspace):
    """flows() lists the six CSAP flows, each with the result keys the pipeline reads."""
    keys = {f["name"]: [r["key"] for r in f["results"]] for f in workspace.flows()}
    assert keys == {
        "csap_s01e01_activation": ["rqa_s01e01"],
        "csap_s01e02_activation": ["rqa_s01e02"],
        "csap_s01e03_activation": ["rqa_s01e03"],
        "csap_s01e04_activation": ["rqa_s01e04"],
        "csap_demog": ["gender", "mog_sub_district", "age", "idp_camp", "recently_displaced", "hh_language"],
        "csap_evaluation": ["repeated", "involved"],
    }
    assert [spec.name for spec in CSAP_FLOWS] == list(keys)


def test_runs_and_contacts_have_the_superset_shape(workspace):
    """Runs carry id and uuid and values with input and name; contacts carry blocked, stopped and status."""
    run = next(r for r in workspace.runs() if r["values"])
    assert isinstance(run["id"], int) and re.fullmatch(r"[0-9a-f-]{36}", run["uuid"])
    assert set(run) >= {"flow", "contact", "start", "responded", "path", "values", "created_on", "modified_on",
                        "exited_on", "exit_type"}
    value = next(iter(run["values"].values()))
    assert set(value) == {"value", "category", "node", "time", "input", "name"}
    contact = workspace.contacts()[0]
    assert set(contact) >= {"uuid", "name", "language", "urns", "groups", "fields", "blocked", "stopped", "status",
                            "created_on", "modified_on", "last_seen_on"}
    assert set(contact["fields"]) == {f["key"] for f in workspace.fields}
    assert all(r["modified_on"].endswith("Z") and len(r["modified_on"]) == 27 for r in workspace.runs())


def test_runs_sit_on_both_ends_of_every_correction_window(workspace):
    """Week-3 replies at and around 12-23 00:00 EAT, week-4 replies at and around both January bursts."""
    week3 = _value_times(workspace, "csap_s01e03_activation", "rqa_s01e03")
    changeover = parse_timestamp("2018-12-23T00:00:00+03:00")
    assert {format_timestamp(changeover + d) for d in (-1, 0, 1)} <= week3
    week4 = _value_times(workspace, "csap_s01e04_activation", "rqa_s01e04")
    for start, end in (("2019-01-17T12:03:11+03:00", "2019-01-17T12:24:42+03:00"),
                       ("2019-01-12T09:45:12+03:00", "2019-01-12T09:51:57+03:00")):
        s, e = parse_timestamp(start), parse_timestamp(end)
        assert {format_timestamp(t) for t in (s - 1, s, e - 1, e)} <= week4
        inside = [t for t in week4 if s <= parse_timestamp(t) < e]
        assert len(inside) >= 10


def test_runs_sit_on_the_project_and_channel_window_boundaries(workspace):
    """Show replies exist exactly at, and a microsecond before, the project start/end and channel edges."""
    times = set().union(*(_value_times(workspace, f"csap_s01e0{n}_activation", f"rqa_s01e0{n}") for n in (1, 2, 3, 4)))
    for edge in ("2018-12-02T00:00:00+03:00", "2018-12-31T00:00:00+03:00", "2018-12-02T19:25:19+03:00",
                 "2018-12-23T19:00:45+03:00", "2018-12-27T00:00:00+03:00"):
        t = parse_timestamp(edge)
        assert {format_timestamp(t - 1), format_timestamp(t)} <= times, edge
    assert format_timestamp(parse_timestamp("2018-12-31T00:00:00+03:00") + 1) in times
    outside = [t for t in times if not "2018-12-01T21:00" <= t <= "2018-12-30T21:00:00.000000Z"]
    assert len(outside) >= 5


def test_test_contacts_answer_every_flow(workspace):
    """Both configured test contacts exist and have runs in all six flows."""
    for contact_uuid in CSAP_TEST_CONTACT_UUIDS:
        assert workspace.contact(contact_uuid)["urns"]
        flows = {r["flow"]["name"] for r in _every_run(workspace) if r["contact"]["uuid"] == contact_uuid}
        assert flows == {spec.name for spec in CSAP_FLOWS}


def test_answers_include_noise_stop_somali_words_and_empty_runs(workspace):
    """The answer mix has acknowledgements, STOP, Somali age words, misspelt places and runs without values."""
    inputs = {v["input"] for r in _every_run(workspace) for v in r["values"].values()}
    assert {"ok", "kalkaal", "Mahad sanid"} & inputs
    assert any(r["values"] and next(iter(r["values"].values()))["category"] == "Stop" for r in _every_run(workspace))
    assert {"labaatan", "afartan", "sodon iyo shan", "toban iyo sideed"} & inputs
    assert {"Hodon", "dayniile", "Huriwa", "Xamar Weyne"} & inputs
    empty = [r for r in workspace.runs() if not r["values"]]
    assert empty and all(not r["responded"] for r in empty)
    assert any(r["exit_type"] is None and r["exited_on"] is None for r in workspace.runs())
    stopped = [c for c in workspace.contacts() if c["stopped"]]
    assert stopped and all(c["status"] == "stopped" for c in stopped)


def test_some_survey_respondents_answer_twice_with_keys_only_in_the_older_run(workspace):
    """A respondent's newer demographics run can omit keys that only their older run answered."""
    by_contact: dict[str, list[dict]] = {}
    for run in _every_run(workspace):
        if run["flow"]["name"] == "csap_demog" and run["values"]:
            by_contact.setdefault(run["contact"]["uuid"], []).append(run)
    repeated = [sorted(runs, key=lambda r: r["modified_on"]) for runs in by_contact.values() if len(runs) > 1]
    assert len(repeated) >= 5
    assert any(set(older["values"]) - set(newer["values"]) for older, newer, *_ in repeated)


def test_contacts_cover_every_urn_variant(workspace):
    """Contacts with tel first, non-tel first, several URNs, no URN and non-Somali numbers all exist."""
    urn_lists = [c["urns"] for c in workspace.contacts()]
    assert any(len(u) > 1 and u[0].startswith("tel:") for u in urn_lists)
    assert any(u and u[0].startswith(("telegram:", "twitter:")) for u in urn_lists)
    assert any(u == [] for u in urn_lists)
    assert any(u and u[0].startswith("tel:") and not u[0].startswith("tel:+252") for u in urn_lists)
    # One number on WhatsApp and SMS (the channel used last first), and WhatsApp only.
    assert any(len(u) == 2 and u[0].startswith("whatsapp:") and u[1] == "tel:+" + u[0][9:] for u in urn_lists)
    assert any(len(u) == 1 and u[0].startswith("whatsapp:") for u in urn_lists)


def test_phone_numbers_lists_every_number_and_they_look_somali(workspace):
    """phone_numbers() covers every tel and whatsapp URN; Somali ones are under operator prefixes with a
    fictitious 00."""
    numbers = set(workspace.phone_numbers())
    tels = {u[4:] for c in workspace.contacts() for u in c["urns"] if u.startswith("tel:")}
    tels |= {"+" + u[9:] for c in workspace.contacts() for u in c["urns"] if u.startswith("whatsapp:")}
    assert tels == numbers
    somali = [n for n in numbers if n.startswith("+252")]
    assert len(somali) > 0.9 * len(numbers)
    assert all(SOMALI_NUMBER.match(n) for n in somali)
    assert {n[4:6] for n in somali} >= {"61", "62", "63", "90"}


def test_oldest_runs_are_archived_daily_and_monthly(workspace):
    """Runs before 2018-12-03 UTC are in archives only; each file holds record_count JSON lines."""
    live_ids = {r["id"] for r in workspace.runs()}
    archived = workspace.archived_runs()
    assert archived and not live_ids & {r["id"] for r in archived}
    assert all(r["modified_on"] < "2018-12-03" for r in archived)
    assert all(r["modified_on"] >= "2018-12-03" for r in workspace.runs())
    periods = {(a["type"], a["period"]) for a in workspace.archives()}
    assert {("run", "daily"), ("run", "monthly"), ("message", "monthly")} <= periods
    for archive in workspace.archives():
        lines = gzip.decompress(workspace.archive_file(archive["file"])).decode().splitlines()
        assert len(lines) == archive["record_count"]
        assert archive["type"] == archive["archive_type"]
        if archive["period"] == "monthly" and lines:
            assert "start" not in json.loads(lines[0])


def test_add_and_modify_run_give_later_modified_on_and_merge_values():
    """A new run gets the next id; modifying it keeps the id, adds values and moves modified_on forward."""
    ws = generate_workspace(seed=2, size=300)
    contact = ws.contacts()[-1]["uuid"]
    clock = ws.clock
    run = ws.add_run(flow="csap_demog", contact=contact, answers={"gender": "naag"})
    assert run["id"] == max(r["id"] for r in _every_run(ws)) and run["modified_on"] > clock
    changed = ws.modify_run(run["uuid"], answers={"age": "labaatan", "gender": "gabar"})
    assert changed["id"] == run["id"] and changed["modified_on"] > run["modified_on"]
    assert {k: v["input"] for k, v in changed["values"].items()} == {"gender": "gabar", "age": "labaatan"}
    assert ws.run(run["id"]) is changed and ws.runs()[-1] is changed


def test_mutations_of_unknown_or_archived_objects_are_refused():
    """Changing an archived run, or adding a run for an unknown flow or contact, raises WorkspaceError."""
    ws = generate_workspace(seed=2, size=300)
    with pytest.raises(WorkspaceError, match="archived"):
        ws.modify_run(ws.archived_runs()[0]["id"], answers={})
    with pytest.raises(WorkspaceError, match="no flow named 'csap_nothing'"):
        ws.add_run(flow="csap_nothing", contact=ws.contacts()[0]["uuid"])
    with pytest.raises(WorkspaceError, match="no live contact"):
        ws.add_run(flow="csap_demog", contact="00000000-0000-4000-8000-000000000000")


def test_contact_mutations_change_urns_and_delete():
    """Changing URNs keeps the old number in phone_numbers(); deleting empties the contact's fields."""
    ws = generate_workspace(seed=2, size=300)
    added = ws.add_contact(urns=["telegram:4242", f"tel:{HORMUD_NUMBER}"])
    assert added in ws.contacts() and HORMUD_NUMBER in ws.phone_numbers()
    ws.set_contact_urns(added["uuid"], [f"tel:{GOLIS_NUMBER}"])
    assert ws.contact(added["uuid"])["urns"] == [f"tel:{GOLIS_NUMBER}"]
    assert {HORMUD_NUMBER, GOLIS_NUMBER} <= set(ws.phone_numbers())
    deleted = ws.delete_contact(added["uuid"])
    assert deleted["urns"] == [] and deleted["name"] is None and deleted["fields"] == {} and deleted["groups"] == []
    assert added["uuid"] not in {c["uuid"] for c in ws.contacts()}
    assert ws.deleted_contacts() == [deleted]


def test_archive_runs_moves_a_day_of_runs_out_of_the_live_set():
    """archive_runs moves exactly the runs modified that day into a new archive with a matching count."""
    ws = generate_workspace(seed=2, size=600)
    day = [r for r in ws.runs() if r["modified_on"].startswith("2018-12-03")]
    archive = ws.archive_runs(period="daily", start_date="2018-12-03")
    assert archive["record_count"] == len(day) > 0
    assert not any(r["modified_on"].startswith("2018-12-03") for r in ws.runs())
    lines = gzip.decompress(ws.archive_file(archive["file"])).splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == sorted(r["id"] for r in day)
    with pytest.raises(WorkspaceError, match="exists already"):
        ws.archive_runs(period="daily", start_date="2018-12-03")


def test_parse_timestamp_reads_offsets_and_the_client_format():
    """Timestamps with Z, offsets and the client's microsecond format all map to the same instant."""
    instant = parse_timestamp("2018-12-02T00:00:00+03:00")
    assert parse_timestamp("2018-12-01T21:00:00.000000Z") == instant
    assert parse_timestamp(datetime(2018, 12, 2, tzinfo=EAT)) == instant
    assert format_timestamp(instant) == "2018-12-01T21:00:00.000000Z"
    assert _utc("2018-12-01") == "2018-12-01T00:00:00.000000Z"


def test_a_late_delivery_added_with_an_old_time_is_modified_after_the_clock():
    """A run whose answer time lies in the past (a delayed delivery) still gets a modified_on after the clock."""
    ws = generate_workspace(seed=2, size=300)
    clock = ws.clock
    run = ws.add_run(flow="csap_s01e04_activation", contact=ws.contacts()[0]["uuid"],
                     answers={"rqa_s01e04": "nabad iyo ammaan"}, time="2019-01-17T12:03:11+03:00")
    assert run["values"]["rqa_s01e04"]["time"] == "2019-01-17T09:03:11.000000Z"
    assert run["modified_on"] > clock and ws.clock == run["modified_on"]


def test_listeners_type_their_numbers_into_answers_and_one_sends_a_formula(workspace):
    """Issue 12: the workspace has show answers holding a listener's own number, written as people write it
    (national with spaces, +252 with spaces, bare 252..., national without spaces), and a formula."""
    inputs = [v["input"] for r in _every_run(workspace) for v in r["values"].values() if v["input"]]
    own = {re.sub(r"\D", "", n)[-9:] for n in workspace.phone_numbers()}
    typed = [text for text in inputs if any(tail in re.sub(r"\D", "", text) for tail in own)]
    assert any(re.search(r"\b0\d{3} \d{3} \d{3}\b", t) for t in typed)
    assert any(re.search(r"\+252 \d{2} \d{7}\b", t) for t in typed)
    assert any(re.search(r"(?<![\d+])252\d{9}\b", t) for t in typed)
    assert any(re.search(r"(?<!\d)0\d{9}\b", t) for t in typed)
    assert '=HYPERLINK("http://x","y")' in inputs
