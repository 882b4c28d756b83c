"""Stage 2: fetch the configured flows from Rapid Pro, incrementally, and rebuild the raw files.

One call of :func:`run_fetch` (spec rapid-pro.md sections 2 and 3, README decisions 1-5):

1. opens the phone number <-> UUID table (stage 1 must have run) and the fetch store;
2. reads the workspace's flows once and finds each configured flow by exact name (an unknown name lists the
   workspace's flows; a name two flows share is an error);
3. reads the contacts changed since the last fetch, once for all flows, and the contacts deleted since then:
   each contact's first URN goes through the UUID table and only the uid is stored (de-identification at the
   edge); deleted contacts become tombstones;
4. reads the run archives listing and downloads only archives not yet ingested for the configured flows;
5. reads each flow's runs changed since its cursor (``after`` is inclusive, so the boundary run comes again
   and merges with itself);
6. rebuilds every raw file ``Raw Data/<flow>.json`` from the store, exactly as a full fetch would; a file
   whose inputs did not change since it was written (and that was not touched since) is left as it is.

Crash safety: every page is committed to the store in one transaction as it arrives, together with the link
to the next page; a cursor moves only after all pages of its flow (or of the contacts) are stored; raw files
are rebuilt from the store on every run and written atomically. Kill the process at any moment and run it
again: it continues from the last stored page (or the saved cursors), and merging by run identity means no
run is lost or duplicated. A run modified while a read is interrupted moves ahead of the saved position; its
new ``modified_on`` is later than the cursor the read ends with, so the next fetch picks it up.

A fetch with nothing new costs at most: one flows request, one contacts request, one deleted-contacts
request, one archives listing and one runs request per flow.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import requests
from tqdm import tqdm

from redss_pipeline.core.config import FlowConfig, PipelineConfig
from redss_pipeline.core.data_root import DataRoot
from redss_pipeline.core.errors import FetchError, UuidTableError
from redss_pipeline.fetch.fetch_store import (
    CONTACTS_CURSOR,
    DELETED_CONTACTS_CURSOR,
    FetchStore,
    MergeCounts,
    RawFileState,
    ResumePoint,
    StoredContact,
    runs_cursor,
)
from redss_pipeline.fetch.rapid_pro import DEFAULT_TIMEOUT, RapidProClient, RetryPolicy
from redss_pipeline.fetch.raw_records import ContactRef, build_raw_records, modified_key, parse_time
from redss_pipeline.core.run_context import RunContext
from redss_pipeline.core.traced_data_json import write_traced_data_file
from redss_pipeline.deidentify.phone_redaction import PhoneRedactor
from redss_pipeline.deidentify.uuid_table import UuidTable, open_uuid_table, urn_key

__all__ = [
    "FlowSummary",
    "ContactSummary",
    "FetchSummary",
    "PageHook",
    "find_flows",
    "run_fetch",
]

logger = logging.getLogger(__name__)

#: Called after each page is committed to the store, with what was read (``"runs of flow X"``) and the page
#: number: tests use it to interrupt a fetch at a chosen moment.
PageHook = Callable[[str, int], None]


@dataclass
class FlowSummary:
    """What the fetch did for one flow: runs new and updated in the store, runs stored in all, records
    written to the raw file, and runs left out of it (unknown, URN-less or deleted contacts)."""

    name: str
    mode: str
    new: int = 0
    updated: int = 0
    stored: int = 0
    records: int = 0
    skipped_unknown: int = 0
    skipped_no_urn: int = 0
    skipped_deleted: int = 0


@dataclass
class ContactSummary:
    """Contacts read, added, changed and deleted by this fetch, and what the store holds afterwards."""

    new: int = 0
    updated: int = 0
    deleted: int = 0
    stored: int = 0
    without_urn: int = 0


@dataclass
class FetchSummary:
    """The outcome of :func:`run_fetch`, printed as a table by the entry point."""

    flows: list[FlowSummary] = field(default_factory=list)
    contacts: ContactSummary = field(default_factory=ContactSummary)
    skipped_contacts_unknown: int = 0
    skipped_contacts_no_urn: int = 0
    archives_downloaded: int = 0
    phone_numbers_redacted: int = 0
    requests: int = 0
    seconds: float = 0.0

    def table(self) -> str:
        """The final summary: one row per flow, then contacts, archives, requests and time."""
        header = ("flow", "mode", "new", "updated", "stored", "records", "skipped")
        rows = [header] + [
            (
                f.name, f.mode, str(f.new), str(f.updated), str(f.stored), str(f.records),
                str(f.skipped_unknown + f.skipped_no_urn + f.skipped_deleted),
            )
            for f in self.flows
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines = [
            "  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
            for row in rows
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        c = self.contacts
        lines += [
            "",
            f"contacts: {c.stored} stored ({c.new} new, {c.updated} updated, {c.deleted} deleted in this fetch)",
            f"skipped contacts: {self.skipped_contacts_no_urn} without a URN, "
            f"{self.skipped_contacts_unknown} not (yet) known",
            f"archives downloaded: {self.archives_downloaded}",
            f"phone numbers typed into answers, redacted: {self.phone_numbers_redacted}",
            f"requests: {self.requests}",
            f"time: {self.seconds:.1f} s",
        ]
        return "\n".join(lines)


def find_flows(workspace_flows: Sequence[dict[str, Any]], wanted: Iterable[FlowConfig]) -> dict[str, dict[str, Any]]:
    """Configured flow name -> the workspace's flow object, by exact name (2019 rule).

    No flow of that name: an error listing the workspace's flow names. Several: "Non-unique flow name".
    """
    by_name: dict[str, list[dict[str, Any]]] = {}
    for flow in workspace_flows:
        by_name.setdefault(flow.get("name"), []).append(flow)
    found: dict[str, dict[str, Any]] = {}
    for flow_config in wanted:
        matches = by_name.get(flow_config.name, [])
        if not matches:
            names = ", ".join(sorted(str(n) for n in by_name)) or "(none)"
            raise FetchError(
                f"no flow named {flow_config.name!r} in the Rapid Pro workspace; its flows are: {names}",
                field="rapid_pro.flows",
            )
        if len(matches) > 1:
            raise FetchError(
                f"Non-unique flow name {flow_config.name!r}: {len(matches)} flows of the workspace have it",
                field="rapid_pro.flows",
            )
        found[flow_config.name] = matches[0]
    return found


def run_fetch(
    *,
    config: PipelineConfig,
    data_root: str | Path,
    server: str,
    token: str,
    run: RunContext,
    full: bool = False,
    progress: bool = True,
    session: requests.Session | None = None,
    retry: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] = time.sleep,
    timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
    on_page: PageHook | None = None,
) -> FetchSummary:
    """Fetches the configured flows into ``<data-root>/Raw Data`` (see the module docstring).

    ``full`` ignores the saved cursors and the archives already read (everything is asked for again and
    merged). ``progress`` shows a bar per flow on stderr. ``session``, ``retry``, ``sleep`` and ``timeout``
    tune the HTTP side (tests pass a no-op ``sleep``); ``on_page`` is called after each stored page.
    """
    started = time.monotonic()
    root = DataRoot(data_root)
    summary = FetchSummary(flows=[FlowSummary(f.name, f.mode) for f in config.flows])
    hook = on_page or (lambda what, page: None)
    redactor = PhoneRedactor(config.phone_redaction)
    with open_uuid_table(root.root) as table, FetchStore.open(root.fetch_store) as store, RapidProClient(
        server, token, session=session, retry=retry, sleep=sleep, timeout=timeout
    ) as client:
        try:
            workspace_flows = client.all_results("flows", what="flows")
            try:
                flows = find_flows(workspace_flows, config.flows)
            except FetchError as error:
                raise error.with_context(path=config.path) from None  # the configured name is what to fix
            _fetch_contacts(client, store, table, config, full=full, summary=summary.contacts, hook=hook)
            flow_summaries = {f.name: f for f in summary.flows}
            summary.archives_downloaded = _fetch_archives(
                client, store, flows, full=full, summaries=flow_summaries, hook=hook, redactor=redactor
            )
            for flow_config in config.flows:
                _fetch_runs(
                    client, store, flows[flow_config.name], full=full, progress=progress,
                    summary=flow_summaries[flow_config.name], hook=hook, redactor=redactor,
                )
        finally:
            summary.requests = client.requests_made
        _rebuild_raw_files(store, flows, config, root, run, summary, redactor)
    summary.phone_numbers_redacted = redactor.count
    summary.seconds = time.monotonic() - started
    return summary


# -- contacts ---------------------------------------------------------------------------------------------------


def _fetch_contacts(
    client: RapidProClient,
    store: FetchStore,
    table: UuidTable,
    config: PipelineConfig,
    *,
    full: bool,
    summary: ContactSummary,
    hook: PageHook,
) -> None:
    tests = config.test_contact_uuids

    def store_contacts(page: list[dict[str, Any]], deleted: bool) -> list[str]:
        contacts = [c for c in page if c.get("uuid")]
        # Only the uid of the first URN goes further: the URNs of this page are never stored.
        uids = {} if deleted else _uids_of_first_urns(table, contacts)
        stored = [
            StoredContact(
                contact_uuid=c["uuid"],
                uid=None if deleted else uids.get(c["uuid"]),
                test=c["uuid"] in tests,
                modified_on=modified_key(c, what="contact"),
                deleted=deleted,
            )
            for c in contacts
        ]
        counts = store.merge_contacts(stored)
        if deleted:
            summary.deleted += counts.new + counts.updated
        else:
            summary.new += counts.new
            summary.updated += counts.updated
        return [c.modified_on for c in stored]

    _read_pages(
        client, store, CONTACTS_CURSOR, "contacts", what="contacts", full=full, hook=hook,
        store_page=lambda page: store_contacts(page, False),
    )
    # Until the first deletion is seen, later deletions are stamped after every contact read above: start
    # there rather than asking for every deleted contact again next time.
    _read_pages(
        client, store, DELETED_CONTACTS_CURSOR, "contacts", what="deleted contacts", full=full, hook=hook,
        store_page=lambda page: store_contacts(page, True), filters={"deleted": True},
        floor=store.cursor(CONTACTS_CURSOR),
    )
    store.mark_test_contacts(tests)
    counts = store.contact_counts()
    summary.stored = counts["active"]
    summary.without_urn = counts["no_urn"]


def _uids_of_first_urns(table: UuidTable, contacts: list[dict[str, Any]]) -> dict[str, str]:
    """Contact uuid -> uid of its first URN, for one page, in one batch of the UUID table.

    A contact without URNs, or whose first URN cannot identify anyone (``tel:`` without digits), gets none.
    """
    first_urns: dict[str, str] = {}
    unusable = 0
    for contact in contacts:
        urns = contact.get("urns") or []
        if not urns:
            continue
        try:
            urn_key(urns[0])
        except UuidTableError:
            unusable += 1
            continue
        first_urns[contact["uuid"]] = urns[0]
    if unusable:
        logger.warning("%d contact(s) have a first URN that identifies no one; they count as without URN", unusable)
    ids = table.uuids_for_urns(first_urns.values())
    return {contact_uuid: ids[urn] for contact_uuid, urn in first_urns.items()}


# -- archives ---------------------------------------------------------------------------------------------------


def _fetch_archives(
    client: RapidProClient,
    store: FetchStore,
    flows: dict[str, dict[str, Any]],
    *,
    full: bool,
    summaries: dict[str, FlowSummary],
    hook: PageHook,
    redactor: PhoneRedactor,
) -> int:
    """Reads run archives not yet ingested for every configured flow; returns how many were downloaded."""
    name_by_uuid = {flow["uuid"]: name for name, flow in flows.items()}
    ingested = set() if full else store.ingested_archives()
    downloaded = 0
    for archive in client.all_results("archives", what="archive listing", type="run"):
        if (archive.get("type") or archive.get("archive_type")) != "run" or not archive.get("download_url"):
            continue
        identity = archive.get("hash") or f"{archive.get('period')}:{archive.get('start_date')}"
        missing = {u for u in name_by_uuid if (identity, u) not in ingested}
        if not missing:
            continue
        if archive.get("record_count") == 0:
            store.record_archive(identity, missing)
            continue
        what = f"run archive {archive.get('period', '')} {archive.get('start_date', '')}".strip()
        runs = client.archive_lines(
            archive["download_url"],
            what=what,
            keep=lambda run: (run.get("flow") or {}).get("uuid") in missing,
            expected=archive.get("record_count"),
        )
        downloaded += 1
        with store.transaction():
            for flow_uuid in missing:
                counts = store.merge_runs((r for r in runs if r["flow"]["uuid"] == flow_uuid), redactor=redactor)
                _count(summaries[name_by_uuid[flow_uuid]], counts)
            store.record_archive(identity, missing)
        hook(what, 1)
    return downloaded


# -- runs -------------------------------------------------------------------------------------------------------


def _fetch_runs(
    client: RapidProClient,
    store: FetchStore,
    flow: dict[str, Any],
    *,
    full: bool,
    progress: bool,
    summary: FlowSummary,
    hook: PageHook,
    redactor: PhoneRedactor,
) -> None:
    flow_uuid = flow["uuid"]
    cursor_name = runs_cursor(flow_uuid)
    expected = None
    if (full or store.cursor(cursor_name) is None) and isinstance(flow.get("runs"), dict):
        expected = sum(v for v in flow["runs"].values() if isinstance(v, int)) or None

    with tqdm(
        total=expected, desc=summary.name, unit=" runs", file=sys.stderr, disable=not progress, leave=True
    ) as bar:

        def store_runs(page: list[dict[str, Any]]) -> list[str]:
            runs = [r for r in page if (r.get("flow") or {}).get("uuid") == flow_uuid]
            _count(summary, store.merge_runs(runs, redactor=redactor))
            bar.update(len(page))
            return [modified_key(r, what="run") for r in runs]

        _read_pages(
            client, store, cursor_name, "runs", what=f"runs of flow {summary.name}", full=full, hook=hook,
            store_page=store_runs, filters={"flow": flow_uuid},
        )


def _read_pages(
    client: RapidProClient,
    store: FetchStore,
    cursor_name: str,
    endpoint: str,
    *,
    what: str,
    full: bool,
    hook: PageHook,
    store_page: Callable[[list[dict[str, Any]]], list[str]],
    filters: dict[str, Any] | None = None,
    floor: str | None = None,
) -> None:
    """Reads every page changed since a cursor into the store, each page in one transaction with the
    position reached, and moves the cursor only when the last page is stored.

    ``store_page`` stores one page's results and returns their ``modified_on`` (``time_key`` form). An
    interrupted read resumes from the saved ``next`` link (unless ``full``). ``floor`` is the cursor to save
    when nothing at all has been seen yet.
    """
    cursor = None if full else store.cursor(cursor_name)
    resume = None if full else store.resume_point(cursor_name)
    if resume is not None and not resume.next_url.startswith(client.root_url + "/"):
        resume = None  # saved against another server address: start this read again
    greatest = _latest(cursor, resume.modified_on if resume else None)
    pages = client.pages(
        endpoint,
        what=what,
        resume_url=resume.next_url if resume else None,
        resume_page=resume.page if resume else 0,
        after=_after(cursor),
        **(filters or {}),
    )
    for page in pages:
        with store.transaction():
            greatest = _latest(greatest, *store_page(page.results))
            if page.next_url:
                store.set_resume_point(cursor_name, ResumePoint(page.next_url, page.number, greatest))
        hook(what, page.number)
    # Only now, with every page stored, may the next fetch start from here.
    with store.transaction():
        store.set_cursor(cursor_name, _latest(greatest, floor))
        store.set_resume_point(cursor_name, None)


def _latest(*times: str | None) -> str | None:
    present = [t for t in times if t]
    return max(present) if present else None


def _count(summary: FlowSummary, counts: MergeCounts) -> None:
    summary.new += counts.new
    summary.updated += counts.updated


def _after(cursor: str | None) -> Any:
    return None if cursor is None else parse_time(cursor)


# -- raw files --------------------------------------------------------------------------------------------------


#: Bumped whenever the way raw files are built changes, so files written by an older build are rewritten.
#: 2: phone numbers typed into answers are redacted.
_RAW_FILE_LAYOUT = 2


def _rebuild_raw_files(
    store: FetchStore,
    flows: dict[str, dict[str, Any]],
    config: PipelineConfig,
    root: DataRoot,
    run: RunContext,
    summary: FetchSummary,
    redactor: PhoneRedactor,
) -> None:
    """Writes each raw file from the store, unless it exists unchanged and nothing it is built from changed
    (stored runs of its flow and the uids and deletions of their contacts, mode, test contacts)."""
    contacts: dict[str, ContactRef] | None = None
    unknown: set[str] = set()
    no_urn: set[str] = set()
    for flow_summary, flow_config in zip(summary.flows, config.flows):
        flow_uuid = flows[flow_config.name]["uuid"]
        path = root.raw_file(flow_config.name)
        inputs = _fingerprint(
            _RAW_FILE_LAYOUT, flow_config.name, flow_config.mode, flow_uuid,
            store.version(runs_cursor(flow_uuid)),
            sorted(config.test_contact_uuids),
        )
        state = store.raw_file_state(flow_config.name)
        if state is None or state.inputs != inputs or not _unchanged(path, state):
            if contacts is None:
                contacts = store.contact_refs()
            build = build_raw_records(
                store.runs_of_flow(flow_uuid),
                contacts,
                flow=flow_config.name,
                mode=flow_config.mode,
                test_contact_uuids=config.test_contact_uuids,
                step=run.step(f"fetch/{flow_config.name}"),
                redactor=redactor,
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            write_traced_data_file(path, build.records)
            skipped = build.skipped
            outcome = {
                "records": len(build.records),
                "skipped_unknown": skipped.unknown,
                "skipped_no_urn": skipped.no_urn,
                "skipped_deleted": skipped.deleted,
                "unknown_contacts": sorted(skipped.unknown_contacts),
                "no_urn_contacts": sorted(skipped.no_urn_contacts),
            }
            written = path.stat()
            state = RawFileState(inputs, written.st_size, written.st_mtime_ns, outcome)
            store.set_raw_file_state(flow_config.name, state)
        outcome = state.outcome
        flow_summary.stored = store.run_count(flow_uuid)
        flow_summary.records = outcome["records"]
        flow_summary.skipped_unknown = outcome["skipped_unknown"]
        flow_summary.skipped_no_urn = outcome["skipped_no_urn"]
        flow_summary.skipped_deleted = outcome["skipped_deleted"]
        unknown.update(outcome["unknown_contacts"])
        no_urn.update(outcome["no_urn_contacts"])
        if flow_summary.skipped_unknown:
            logger.warning(
                "%s: %d run(s) of %d contact(s) not (yet) known to this fetch were left out; they stay in the "
                "store and are written once Rapid Pro returns their contact",
                flow_config.name, flow_summary.skipped_unknown, len(outcome["unknown_contacts"]),
            )
        if flow_summary.skipped_no_urn:
            logger.warning(
                "%s: %d run(s) of %d contact(s) without a URN were left out",
                flow_config.name, flow_summary.skipped_no_urn, len(outcome["no_urn_contacts"]),
            )
    summary.skipped_contacts_unknown = len(unknown)
    summary.skipped_contacts_no_urn = len(no_urn)


def _fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _unchanged(path: Path, state: RawFileState) -> bool:
    """The file is still the one written when ``state`` was recorded (not removed, edited or replaced)."""
    try:
        current = path.stat()
    except FileNotFoundError:
        return False
    return (current.st_size, current.st_mtime_ns) == (state.size, state.mtime_ns)
