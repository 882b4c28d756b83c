"""Stage 2: fetch the configured flows from Rapid Pro, incrementally, and rebuild the raw files.

One call of :func:`run_fetch` (spec rapid-pro.md sections 2, 3 and 6.3, README decisions 1-5 and 13):

1. opens the phone number <-> UUID table (stage 1 must have run) and the fetch store;
2. checks that the server and workspace are the ones the store belongs to (server root, and the workspace's
   identity from ``org.json``, read on the first fetch into a data root): another one is refused with one line
   naming both, before anything is written;
3. reads the workspace's flows once and finds each configured flow by exact name (an unknown name lists the
   workspace's flows; a name two flows share is an error);
4. reads the contacts changed since the last fetch, once for all flows, and the contacts deleted since then:
   each contact's identity URN (first ``tel:``, else first ``whatsapp:``, else first other URN; the contact
   UUID in anonymous workspaces) goes through the UUID table and only the uid is stored (de-identification at
   the edge); deleted contacts become tombstones;
5. reads the run archives listing and downloads only archives not yet ingested for the configured flows
   (unless ``no_archives``); an archive that cannot be read is named and left for the next fetch, and the
   fetch is partial (exit status 3) instead of failing;
6. reads each flow's runs changed since its cursor minus the overlap window (``after`` is inclusive, and
   ``modified_on`` is stamped before a run is committed, so runs of the last hour are read again and merge
   with themselves: an incremental fetch equals a full one even after a late commit);
7. rebuilds every raw file ``Raw Data/<flow>.json`` from the store, exactly as a full fetch would; a file
   whose inputs did not change since it was written (and that was not touched since) is left as it is.

Crash safety: every page is committed to the store in one transaction as it arrives, together with the link
to the next page; a cursor moves only after all pages of its flow (or of the contacts) are stored; raw files
are rebuilt from the store on every run and written atomically. Kill the process at any moment and run it
again: it continues from the last stored page (or the saved cursors), and merging by run identity means no
run is lost or duplicated. ``full`` rebuilds the store from the server into a new file that replaces the old
one only when complete, so no row the server no longer serves (nor a foreign one) survives it.

A fetch with nothing new costs at most: one flows request, one contacts request, one deleted-contacts
request, one archives listing and one runs request per flow (``org.json`` is read only on the first fetch
into a data root, or when a configured flow's uuid changed).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence
from urllib.parse import urlsplit

import requests
from tqdm import tqdm

from redss_pipeline.core.atomic_files import atomic_write_text, remove_interrupted_writes
from redss_pipeline.core.config import FlowConfig, PipelineConfig
from redss_pipeline.core.data_root import DataRoot
from redss_pipeline.core.disk_errors import describe_os_error
from redss_pipeline.core.errors import FetchError, StateError
from redss_pipeline.core.run_context import RunContext
from redss_pipeline.core.traced_data_json import write_traced_data_file
from redss_pipeline.deidentify.phone_redaction import PhoneRedactor
from redss_pipeline.deidentify.uuid_table import UuidTable, open_uuid_table
from redss_pipeline.fetch.contact_identity import identity_urn
from redss_pipeline.fetch.fetch_store import (
    CONTACTS_CURSOR,
    DELETED_CONTACTS_CURSOR,
    IDENTITY_RULE,
    FetchStore,
    MergeCounts,
    RawFileState,
    ResumePoint,
    StoredContact,
    Workspace,
    runs_cursor,
    store_error,
)
from redss_pipeline.fetch.rapid_pro import DEFAULT_TIMEOUT, ArchiveUnreadable, RapidProClient, RetryPolicy
from redss_pipeline.fetch.raw_records import (
    RUN_ID_EITHER,
    RUN_ID_INTEGER,
    RUN_ID_UUID,
    ContactRef,
    build_raw_records,
    modified_key,
    parse_time,
    time_key,
)

__all__ = [
    "FlowSummary",
    "ContactSummary",
    "MissingArchive",
    "FetchSummary",
    "PageHook",
    "PARTIAL_EXIT_STATUS",
    "find_flows",
    "run_fetch",
]

logger = logging.getLogger(__name__)

#: Exit status of a fetch that wrote the raw files but could not read everything (an unreadable archive).
PARTIAL_EXIT_STATUS = 3

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
    # Typed into the answers of the runs this fetch stored (new or changed) or into records it wrote afresh from
    # runs stored by an older build: a run read again unchanged (the overlap window) is not counted again.
    phone_numbers_redacted: int = 0


@dataclass
class ContactSummary:
    """Contacts read, added, changed and deleted by this fetch, and what the store holds afterwards.

    ``identity_changed`` is set when this fetch identified every stored contact again (the first fetch after
    the identity rule of rapid-pro.md 6.3 replaced "the first URN", or a ``--full`` rebuild): how many
    contacts got another uid than before; None otherwise.
    """

    new: int = 0
    updated: int = 0
    deleted: int = 0
    stored: int = 0
    without_urn: int = 0
    identity_changed: int | None = None


@dataclass(frozen=True)
class MissingArchive:
    """A run archive that this fetch could not read: it stays un-ingested and the next fetch tries again."""

    period: str
    start_date: str
    reason: str

    def describe(self) -> str:
        return f"{self.period} run archive of {self.start_date}: {self.reason}"


@dataclass
class FetchSummary:
    """The outcome of :func:`run_fetch`, printed as a table by the entry point."""

    flows: list[FlowSummary] = field(default_factory=list)
    contacts: ContactSummary = field(default_factory=ContactSummary)
    workspace: Workspace | None = None
    skipped_contacts_unknown: int = 0
    skipped_contacts_no_urn: int = 0
    archives_downloaded: int = 0
    archives_skipped: bool = False
    missing_archives: list[MissingArchive] = field(default_factory=list)
    dropped_runs: int | None = None
    phone_numbers_redacted: int = 0
    requests: int = 0
    seconds: float = 0.0

    @property
    def partial(self) -> bool:
        """True when something could not be read (the raw files hold everything else)."""
        return bool(self.missing_archives)

    @property
    def exit_status(self) -> int:
        return PARTIAL_EXIT_STATUS if self.partial else 0

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
        ]
        if c.identity_changed is not None:
            lines.append(
                f"contacts identified again (first tel:, else whatsapp:, else other URN; contact UUID when "
                f"anonymous): {c.identity_changed} got another uid"
            )
        if self.dropped_runs is not None:
            lines.append(f"full rebuild: {self.dropped_runs} stored run(s) the server no longer serves were dropped")
        if self.archives_skipped:
            lines.append("archives: skipped (--no-archives)")
        else:
            lines.append(f"archives downloaded: {self.archives_downloaded}")
        for missing in self.missing_archives:
            lines.append(f"MISSING: {missing.describe()}")
        lines += [
            f"phone numbers typed into answers, redacted in the runs stored: {self.phone_numbers_redacted}",
            f"requests: {self.requests}",
            f"time: {self.seconds:.1f} s",
        ]
        return "\n".join(lines)

    def partial_note(self) -> str:
        """The closing line of a partial fetch."""
        count = len(self.missing_archives)
        return (
            f"partial fetch: {count} run archive(s) could not be read (listed above as MISSING); the raw files "
            "hold everything else. Run the same command again to complete the fetch"
        )


def find_flows(workspace_flows: Sequence[dict[str, Any]], wanted: Iterable[FlowConfig]) -> dict[str, dict[str, Any]]:
    """Configured flow name -> the workspace's flow object, by exact name (2019 rule).

    No flow of that name: an error listing the workspace's flow names. Several: "Non-unique flow name".
    """
    by_name: dict[str | None, list[dict[str, Any]]] = {}
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


@dataclass(frozen=True)
class _Options:
    full: bool
    no_archives: bool
    overlap: timedelta
    progress: bool
    hook: PageHook
    redactor: PhoneRedactor
    # The store recorded no workspace when the fetch began: the raw files and table ids already in the data root
    # (a 2019 data root, or a store moved away) are of a workspace nothing records.
    first_fetch: bool = False


def run_fetch(
    *,
    config: PipelineConfig,
    data_root: str | Path,
    server: str,
    token: str,
    run: RunContext,
    full: bool = False,
    no_archives: bool = False,
    progress: bool = True,
    session: requests.Session | None = None,
    retry: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] = time.sleep,
    timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
    on_page: PageHook | None = None,
    announce: Callable[[str], None] | None = None,
) -> FetchSummary:
    """Fetches the configured flows into ``<data-root>/Raw Data`` (see the module docstring).

    ``full`` rebuilds the store from the server (every run, contact and archive read again into a new store
    that replaces the old one when complete). ``no_archives`` skips Rapid Pro's run archives knowingly.
    ``progress`` shows a bar per flow on stderr. ``announce`` receives the stage's first lines (the temporary
    files of a killed fetch it removed; which workspace is fetched, and whether it is anonymous). ``session``,
    ``retry``, ``sleep`` and ``timeout`` tune the HTTP side (tests pass a no-op ``sleep``); ``on_page`` is called after each stored page.
    """
    started = time.monotonic()
    root = DataRoot(data_root)
    for note in remove_interrupted_writes(root.raw_data_dir, shown_from=root.raw_data_dir):  # of a killed fetch
        (announce or (lambda line: None))(note)
    _refuse_an_emptied_store(root)
    summary = FetchSummary(flows=[FlowSummary(f.name, f.mode) for f in config.flows])
    options = _Options(
        full=full, no_archives=no_archives, overlap=config.fetch_overlap, progress=progress,
        hook=on_page or (lambda what, page: None), redactor=PhoneRedactor(config.phone_redaction),
    )
    with open_uuid_table(root.root) as table, RapidProClient(
        server, token, session=session, retry=retry, sleep=sleep, timeout=timeout
    ) as client:
        try:
            with FetchStore.open(root.fetch_store) as store:
                options = dataclasses.replace(options, first_fetch=store.workspace() is None)
                workspace, flows = _identify(client, store, config)
                summary.workspace = workspace
                (announce or (lambda line: None))(_announcement(workspace))
                if not full:
                    _note_interrupted_rebuild(root.fetch_store)
                    _fetch_into(store, client, table, config, root, run, workspace, flows, options, summary)
            if full:
                _rebuild_store(client, table, config, root, run, workspace, flows, options, summary)
        except sqlite3.Error as error:  # a full disk, a read-only folder, a damaged page: one line
            raise store_error(root.fetch_store, error) from error
        finally:
            summary.requests = client.requests_made
    summary.phone_numbers_redacted = sum(flow.phone_numbers_redacted for flow in summary.flows)
    summary.seconds = time.monotonic() - started
    return summary


def _refuse_an_emptied_store(root: DataRoot) -> None:
    """An empty store file (0 bytes) beside raw files of an earlier fetch was emptied from outside (a copy that
    failed, a disk error): opened, it would read as a first fetch, and the check that keeps the data root to its
    workspace would have nothing to compare with. Refused as a damaged store is. (A first fetch killed before the
    store held anything leaves an empty store and no raw file: it is simply continued.)"""
    store = root.fetch_store
    if store.is_file() and store.stat().st_size == 0 and root.holds_raw_files():
        raise StateError("not a readable fetch store (it is empty, though raw files of an earlier fetch are beside "
                         "it); move it away to fetch everything again", path=store)


def _announcement(workspace: Workspace) -> str:
    line = f"Fetching {workspace.describe()}"
    if workspace.anonymous:
        line += (
            ": an anonymous workspace (Rapid Pro hides its URNs), so each contact is identified by its Rapid Pro "
            "contact UUID"
        )
    return line


# -- which server and workspace ---------------------------------------------------------------------------------


def _server_key(server: str) -> tuple[str, int | None, str]:
    """Host, explicit non-default port and path of a server root: ``http://`` and ``https://`` of one host
    are one server."""
    parts = urlsplit(server)
    try:
        port = parts.port
    except ValueError:
        port = None
    if port == {"http": 80, "https": 443}.get(parts.scheme.lower()):
        port = None
    return (parts.hostname or "").lower(), port, parts.path.rstrip("/")


def _read_workspace(client: RapidProClient) -> Workspace:
    org = client.org()
    name = org.get("name")
    uuid = org.get("uuid")
    return Workspace(
        server=client.server_root,
        uuid=uuid if isinstance(uuid, str) and uuid else None,
        name=name if isinstance(name, str) and name else None,
        anonymous=org.get("anon") is True,
    )


def _same_workspace(recorded: Workspace, seen: Workspace) -> bool:
    """The workspace a store belongs to: by uuid when both sides know it, whatever the address (one server has
    several spellings: ``localhost`` and ``127.0.0.1``, a host name and its IP); without a uuid, only the same
    address and name, since a copy elsewhere (a staging server) may have the same name."""
    if recorded.uuid and seen.uuid:
        return recorded.uuid == seen.uuid
    return _server_key(recorded.server) == _server_key(seen.server) and recorded.same_workspace(seen)


def _refusal(recorded: Workspace, other: Workspace) -> FetchError:
    return FetchError(
        f"this data root holds {recorded.describe()}, but {other.server} serves {other.describe().rsplit(' on ', 1)[0]}"
        ": refusing to fetch another workspace into it (nothing was changed); give the server and token of the "
        "recorded workspace, or use another data root"
    )


def _identify(
    client: RapidProClient, store: FetchStore, config: PipelineConfig
) -> tuple[Workspace, dict[str, dict[str, Any]]]:
    """The workspace being fetched and its configured flows; refuses another server or workspace than the one
    the store belongs to, before anything is written.

    The store's server root is compared first (no request). ``org.json`` is read on the first fetch into a data
    root (its answer is kept), when the server address differs from the recorded one (the same workspace by
    uuid is fetched from the new address, which the store then records), and when a configured flow's uuid
    differs from the recorded one: flow uuids are unique on a server, so a known flow under its recorded uuid
    means the same workspace.
    """
    recorded = store.workspace()
    seen = None
    if recorded is not None and _server_key(recorded.server) != _server_key(client.server_root):
        # A server that cannot be reached, or refuses the token, stops the fetch here with that error: it says
        # nothing about which workspace the address serves, and nothing has been written.
        seen = _read_workspace(client)
        if not _same_workspace(recorded, seen):
            raise _refusal(recorded, seen)
        logger.warning(
            "this data root's workspace (uuid %s) was fetched from %s until now; %s serves the same workspace, so "
            "the fetch goes on from %s", recorded.uuid, recorded.server, seen.server, seen.server,
        )
        recorded = dataclasses.replace(recorded, server=seen.server, name=seen.name, anonymous=seen.anonymous)
    flows = _find_configured_flows(client, config)
    if recorded is None:
        return _read_workspace(client), flows
    known = store.flow_uuids()
    changed = sorted(name for name, flow in flows.items() if known.get(name) not in (None, flow["uuid"]))
    if not changed:
        return recorded, flows
    seen = seen or _read_workspace(client)
    if not recorded.same_workspace(seen):
        raise _refusal(recorded, seen)
    logger.warning(
        "flow(s) %s have another uuid in the workspace than at the last fetch (deleted and created again?); "
        "their runs are read under the new uuid", ", ".join(changed),
    )
    return dataclasses.replace(recorded, name=seen.name, anonymous=seen.anonymous), flows


def _find_configured_flows(client: RapidProClient, config: PipelineConfig) -> dict[str, dict[str, Any]]:
    workspace_flows = client.all_results("flows", what="flows")
    try:
        return find_flows(workspace_flows, config.flows)
    except FetchError as error:
        raise error.with_context(path=config.path) from None  # the configured name is what to fix


# -- one fetch into a store ---------------------------------------------------------------------------------------


def _fetch_into(
    store: FetchStore,
    client: RapidProClient,
    table: UuidTable,
    config: PipelineConfig,
    root: DataRoot,
    run: RunContext,
    workspace: Workspace,
    flows: dict[str, dict[str, Any]],
    options: _Options,
    summary: FetchSummary,
) -> None:
    """Everything after the identity check: contacts, archives, runs, raw files."""
    store.set_workspace(workspace)
    store.set_flow_uuids({name: flow["uuid"] for name, flow in flows.items()})
    ids_before = len(table) if options.first_fetch else 0
    identified = _fetch_contacts(client, store, table, config, workspace, options, summary=summary.contacts)
    if ids_before and identified and len(table) - ids_before >= identified:
        # Nothing recorded which workspace the table's ids came from, and none of this one's contacts is among them.
        logger.warning(
            "none of the %d contacts of %s was in this data root's phone number table (%d ids before this fetch): "
            "is it the project's workspace? If not, do not go on with this data root (raw files that were in %s are "
            "kept in %s)", identified, workspace.describe(), ids_before, root.raw_data_dir, root.earlier_raw_files_dir,
        )
    flow_summaries = {f.name: f for f in summary.flows}
    if options.no_archives:
        summary.archives_skipped = True
    else:
        summary.archives_downloaded, summary.missing_archives = _fetch_archives(
            client, store, flows, summaries=flow_summaries, hook=options.hook, redactor=options.redactor
        )
    for flow_config in config.flows:
        _fetch_runs(
            client, store, flows[flow_config.name], options, summary=flow_summaries[flow_config.name]
        )
    _rebuild_raw_files(store, flows, config, root, run, summary, options.redactor, keep_earlier=options.first_fetch)


def _rebuild_store(
    client: RapidProClient,
    table: UuidTable,
    config: PipelineConfig,
    root: DataRoot,
    run: RunContext,
    workspace: Workspace,
    flows: dict[str, dict[str, Any]],
    options: _Options,
    summary: FetchSummary,
) -> None:
    """``--full``: reads everything into a new store next to the old one, writes the raw files from it, then
    puts it in the old one's place. Killed on the way, the old store is untouched and the next ``--full``
    continues the new one from where it stopped."""
    current = root.fetch_store
    rebuilding = _rebuilding(current)
    with FetchStore.open(rebuilding) as new:
        left = new.workspace()
        stale = left is not None and not _same_workspace(left, workspace)
    if stale:
        _remove_store(rebuilding)  # a rebuild of another workspace, left by a killed --full
    with FetchStore.open(rebuilding) as new:
        _fetch_into(new, client, table, config, root, run, workspace, flows, options, summary)
        with FetchStore.open(current) as old:
            before = old.contact_uids()
            after = new.contact_uids()
            summary.contacts.identity_changed = sum(
                1 for contact, uid in before.items() if contact in after and after[contact] != uid
            )
            ids, uuids = set(), set()
            for run_id, run_uuid in new.run_identities():
                ids.add(run_id)
                uuids.add(run_uuid)
            summary.dropped_runs = sum(
                1 for run_id, run_uuid in old.run_identities()
                if (run_id is None or run_id not in ids) and (run_uuid is None or run_uuid not in uuids)
            )
    _remove_store(current, keep_main=True)
    os.replace(rebuilding, current)


def _rebuilding(store: Path) -> Path:
    """Where ``--full`` builds the new store."""
    return store.with_name(store.name + ".rebuilding")


def _note_interrupted_rebuild(store: Path) -> None:
    """One line when a fetch without ``--full`` finds a rebuild left beside the store.

    The data-root lock keeps out every other writer while a stage runs, so such a file was left by a ``--full``
    that died (killed, or stopped by an error). It is kept, not removed: the next ``--full`` continues it from its
    last stored page instead of reading the whole workspace again, and this fetch neither reads nor changes it
    (the continued rebuild asks for everything changed since its own cursors). The line says where it is, as it
    may be large, and how to discard it.
    """
    rebuilding = _rebuilding(store)
    if rebuilding.exists():
        logger.warning(
            "%s is left by a --full that did not finish: it is kept, and the next --full continues it; delete it "
            "(with its -wal and -shm files) to discard it", rebuilding,
        )


def _remove_store(path: Path, *, keep_main: bool = False) -> None:
    """Removes a closed store's journal files (and the store itself unless ``keep_main``)."""
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    if not keep_main:
        path.unlink(missing_ok=True)


# -- contacts ---------------------------------------------------------------------------------------------------


def _fetch_contacts(
    client: RapidProClient,
    store: FetchStore,
    table: UuidTable,
    config: PipelineConfig,
    workspace: Workspace,
    options: _Options,
    *,
    summary: ContactSummary,
) -> int:
    """Reads the contacts changed since the last fetch (and the deleted ones) into the store, each identified by the
    uid of its identity URN (added to the table when new); returns how many contacts were given a uid."""
    tests = config.test_contact_uuids
    # A store whose uids follow an older identity rule reads every contact again, once, to identify it anew.
    reidentify = store.identity_rule() != IDENTITY_RULE
    uid_changes = 0
    identified = 0

    def store_contacts(page: list[dict[str, Any]], deleted: bool) -> list[str]:
        nonlocal uid_changes, identified
        contacts = [c for c in page if c.get("uuid")]
        # Only the uid of the identity URN goes further: the URNs of this page are never stored.
        uids = {} if deleted else _contact_uids(table, contacts, anonymous=workspace.anonymous)
        identified += len(uids)
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
            uid_changes += counts.uid_changed
        return [c.modified_on for c in stored]

    _read_pages(
        client, store, CONTACTS_CURSOR, "contacts", what="contacts", options=options,
        store_page=lambda page: store_contacts(page, False), from_start=reidentify,
    )
    if reidentify:
        store.set_identity_rule(IDENTITY_RULE)
        if store.run_count():  # a store of an older build: say how many contacts changed uid
            summary.identity_changed = uid_changes
    # Until the first deletion is seen, later deletions are stamped after every contact read above: start
    # there rather than asking for every deleted contact again next time.
    _read_pages(
        client, store, DELETED_CONTACTS_CURSOR, "contacts", what="deleted contacts", options=options,
        store_page=lambda page: store_contacts(page, True), filters={"deleted": True},
        floor=store.cursor(CONTACTS_CURSOR),
    )
    store.mark_test_contacts(tests)
    counts = store.contact_counts()
    summary.stored = counts["active"]
    summary.without_urn = counts["no_urn"]
    return identified


def _contact_uids(table: UuidTable, contacts: list[dict[str, Any]], *, anonymous: bool) -> dict[str, str]:
    """Contact uuid -> uid of its identity URN (rapid-pro.md 6.3), for one page, in one batch of the UUID
    table. A contact that cannot be identified (no usable URN, in a workspace that is not anonymous) gets none."""
    urns = {contact["uuid"]: identity_urn(contact, anonymous=anonymous) for contact in contacts}
    ids = table.uuids_for_urns(urn for urn in urns.values() if urn is not None)
    return {contact_uuid: ids[urn] for contact_uuid, urn in urns.items() if urn is not None}


# -- archives ---------------------------------------------------------------------------------------------------


def _archive_kind(archive: dict[str, Any]) -> Any:
    # Servers call it archive_type (older ones and today's) or type; the listing's type filter may be ignored.
    return archive.get("archive_type") or archive.get("type")


def _fetch_archives(
    client: RapidProClient,
    store: FetchStore,
    flows: dict[str, dict[str, Any]],
    *,
    summaries: dict[str, FlowSummary],
    hook: PageHook,
    redactor: PhoneRedactor,
) -> tuple[int, list[MissingArchive]]:
    """Reads run archives not yet ingested for every configured flow.

    Returns how many were downloaded and the archives that could not be read: those stay un-ingested (the next
    fetch tries them again) and make the fetch partial.
    """
    name_by_uuid = {flow["uuid"]: name for name, flow in flows.items()}
    ingested = store.ingested_archives()
    downloaded = 0
    missing: list[MissingArchive] = []
    # archive_type is the filter real servers honour (type= is ignored, so message archives are listed too).
    for archive in client.all_results("archives", what="archive listing", archive_type="run"):
        if _archive_kind(archive) != "run":
            continue
        identity = archive.get("hash") or f"{archive.get('period')}:{archive.get('start_date')}"
        wanted = {u for u in name_by_uuid if (identity, u) not in ingested}
        if not wanted:
            continue
        if archive.get("record_count") == 0:
            store.record_archive(identity, wanted)
            continue
        period, start_date = str(archive.get("period") or "?"), str(archive.get("start_date") or "?")
        if not archive.get("download_url"):
            missing.append(MissingArchive(
                period, start_date, f"the listing gives no download link for its {archive.get('record_count')} run(s)"
            ))
            continue
        what = f"{period} run archive of {start_date}"
        try:
            # archive_lines reads the whole archive before it returns: the lambdas never outlive this iteration.
            runs = client.archive_lines(
                archive["download_url"],
                what=what,
                keep=functools.partial(_of_flows, wanted),
                expected=archive.get("record_count"),
                fresh_link=functools.partial(_fresh_link, client, archive),
            )
        except ArchiveUnreadable as failure:
            logger.warning("%s could not be read: %s", what, failure.reason)
            missing.append(MissingArchive(period, start_date, failure.reason))
            continue
        downloaded += 1
        with store.transaction():
            for flow_uuid in wanted:
                counts = store.merge_runs((r for r in runs if r["flow"]["uuid"] == flow_uuid), redactor=redactor)
                _count(summaries[name_by_uuid[flow_uuid]], counts)
            store.record_archive(identity, wanted)
        hook(what, 1)
    return downloaded, missing


def _of_flows(flow_uuids: set[str], run: dict[str, Any]) -> bool:
    return (run.get("flow") or {}).get("uuid") in flow_uuids


def _fresh_link(client: RapidProClient, archive: dict[str, Any]) -> str | None:
    """The archive's download link from a new listing (pre-signed links expire): found by hash, or by period
    and start date when the hash changed."""
    listing = [
        a for a in client.all_results("archives", what="archive listing (fresh links)", archive_type="run")
        if _archive_kind(a) == "run"
    ]
    for same in (
        lambda a: archive.get("hash") and a.get("hash") == archive.get("hash"),
        lambda a: (a.get("period"), a.get("start_date")) == (archive.get("period"), archive.get("start_date")),
    ):
        for candidate in listing:
            if same(candidate) and candidate.get("download_url"):
                return str(candidate["download_url"])
    return None


# -- runs -------------------------------------------------------------------------------------------------------


def _fetch_runs(
    client: RapidProClient,
    store: FetchStore,
    flow: dict[str, Any],
    options: _Options,
    *,
    summary: FlowSummary,
) -> None:
    flow_uuid = flow["uuid"]
    cursor_name = runs_cursor(flow_uuid)
    expected = None
    if store.cursor(cursor_name) is None and isinstance(flow.get("runs"), dict):
        expected = sum(v for v in flow["runs"].values() if isinstance(v, int)) or None

    with tqdm(
        total=expected, desc=summary.name, unit=" runs", file=sys.stderr, disable=not options.progress, leave=True
    ) as bar:

        def store_runs(page: list[dict[str, Any]]) -> list[str]:
            runs = [r for r in page if (r.get("flow") or {}).get("uuid") == flow_uuid]
            counts = store.merge_runs(runs, redactor=options.redactor)
            _count(summary, counts)
            # Against the flow's number of runs, the runs added: a catch-up pass reads the last run again (its
            # ``after`` is inclusive), which would count one run more than the flow has. Without a total (a fetch
            # that goes on from its cursor), the runs read.
            bar.update(counts.new if expected is not None else len(page))
            return [modified_key(r, what="run") for r in runs]

        _read_pages(
            client, store, cursor_name, "runs", what=f"runs of flow {summary.name}", options=options,
            store_page=store_runs, filters={"flow": flow_uuid}, catch_up=True,
        )


def _read_pages(
    client: RapidProClient,
    store: FetchStore,
    cursor_name: str,
    endpoint: str,
    *,
    what: str,
    options: _Options,
    store_page: Callable[[list[dict[str, Any]]], list[str]],
    filters: dict[str, Any] | None = None,
    floor: str | None = None,
    from_start: bool = False,
    catch_up: bool = False,
) -> None:
    """Reads every page changed since a cursor (minus the overlap window, see :func:`_after`) into the store,
    each page in one transaction with the position reached, and moves the cursor only when the last page is
    stored.

    ``store_page`` stores one page's results and returns their ``modified_on`` (``time_key`` form). An
    interrupted read resumes from the saved ``next`` link (unless ``from_start``, which also ignores the
    cursor). ``floor`` is the cursor to save when nothing at all has been seen yet.

    ``catch_up`` (runs): pages come newest first, so a run changed while a read of several pages goes on, or
    between an interrupted read and its resumption, moves above the pages already read and the read never meets
    it. Another pass then asks for what changed since the newest ``modified_on`` the previous one saw (the new
    cursor; late commits, stamped before it, are the next fetch's overlap window's job), until a pass is answered
    by one request, at most :data:`_CATCH_UP_PASSES` more: a fetch ends with every run changed before its last
    pass began.
    """

    def read_pass(from_start: bool, since: datetime | None) -> tuple[bool, bool]:
        """One read (from ``since`` when given, else from the cursor less the overlap window): whether it took more
        than one request (a page linked to another), and whether it resumed an interrupted read."""
        cursor = None if from_start else store.cursor(cursor_name)
        resume = None if from_start else store.resume_point(cursor_name)
        if resume is not None and not resume.next_url.startswith(client.root_url + "/"):
            resume = None  # saved against another server address: start this read again
        greatest = _latest(cursor, resume.modified_on if resume else None)
        reading = f"{cursor_name}:reading"  # when the read in progress began (kept across an interruption)
        started = store.read_started(reading) if resume else None
        pages = client.pages(
            endpoint,
            what=what,
            resume_url=resume.next_url if resume else None,
            resume_page=resume.page if resume else 0,
            after=since if since is not None and resume is None else _after(
                cursor, options.overlap, None if from_start else store.read_started(cursor_name)),
            **(filters or {}),
        )
        several_requests = False
        for page in pages:
            several_requests = several_requests or page.next_url is not None
            with store.transaction():
                if started is None and page.server_time is not None:
                    started = time_key((page.server_time - _CLOCK_MARGIN).isoformat())
                    store.set_read_started(reading, started)
                greatest = _latest(greatest, *store_page(page.results))
                if page.next_url:
                    store.set_resume_point(cursor_name, ResumePoint(page.next_url, page.number, greatest))
            options.hook(what, page.number)
        if started is None and client.last_server_time is not None:  # nothing changed: the empty answer's clock
            started = time_key((client.last_server_time - _CLOCK_MARGIN).isoformat())
        # Only now, with every page stored, may the next fetch start from here.
        with store.transaction():
            store.set_cursor(cursor_name, _latest(greatest, floor))
            store.set_resume_point(cursor_name, None)
            store.set_read_started(cursor_name, started)
            store.set_read_started(reading, None)
        return several_requests, resume is not None

    since = None
    for passes in range(1 + (_CATCH_UP_PASSES if catch_up else 0)):
        several_requests, resumed = read_pass(from_start and passes == 0, since)
        if not several_requests and not resumed:
            return
        # Whatever changed during that pass was stamped at or after the newest time it saw (the new cursor), on
        # the server's own clock: no allowance for its Date header is needed.
        cursor = store.cursor(cursor_name)
        since = parse_time(cursor) if cursor else None
    if catch_up:
        logger.warning("%s kept changing while they were read (%d passes): what changed during the last pass is "
                       "read by the next fetch", what, 1 + _CATCH_UP_PASSES)


#: How many passes may follow a read of runs to catch what changed while it went on (see :func:`_read_pages`).
_CATCH_UP_PASSES = 3


def _latest(*times: str | None) -> str | None:
    present = [t for t in times if t]
    return max(present) if present else None


def _count(summary: FlowSummary, counts: MergeCounts) -> None:
    summary.new += counts.new
    summary.updated += counts.updated
    summary.phone_numbers_redacted += counts.phone_numbers


#: Allowance for the server's ``Date`` header (whole seconds, maybe set by a front server) against the clock
#: that stamps ``modified_on``.
_CLOCK_MARGIN = timedelta(minutes=5)


def _after(cursor: str | None, overlap: timedelta, read_started: str | None) -> Any:
    """The ``after`` of an incremental request (rapid-pro.md 3, decision 13).

    ``modified_on`` is stamped before a run is committed, so a run stamped up to ``overlap`` before the newest
    one seen may have been committed after the previous read: ask from the cursor minus the overlap. A run
    the previous read missed was committed after that read began (``read_started``, the server's clock less
    a margin), so it was stamped after ``read_started - overlap``: when the previous read began long after its
    newest run (nothing changed for a while), nothing before the cursor can be missing and the window shrinks
    to the cursor itself. Without the server's clock the full window is read.
    """
    if cursor is None:
        return None
    newest = parse_time(cursor)
    after = newest - overlap
    if read_started is not None:
        after = max(after, min(newest, parse_time(read_started) - overlap))
    return after


# -- raw files --------------------------------------------------------------------------------------------------


#: Bumped whenever the way raw files are built changes, so files written by an older build are rewritten.
#: 2: phone numbers typed into answers are redacted. 3: one (Run ID) rule per file, identity URN of decision 13.
#: 4: numbers whose digit groups are split across lines or glued to a word are redacted.
_RAW_FILE_LAYOUT = 4


def _rebuild_raw_files(
    store: FetchStore,
    flows: dict[str, dict[str, Any]],
    config: PipelineConfig,
    root: DataRoot,
    run: RunContext,
    summary: FetchSummary,
    redactor: PhoneRedactor,
    *,
    keep_earlier: bool = False,
) -> None:
    """Writes each raw file from the store, unless it exists unchanged and nothing it is built from changed
    (stored runs of its flow and the uids and deletions of their contacts, mode, test contacts).

    ``keep_earlier`` (the first fetch into a store): a raw file already there is of a workspace nothing records (the
    2019 pipeline's, or a store moved away), so it is moved to ``Raw Data/Earlier raw files/`` rather than
    replaced, and one line says so: the first fetch writes every raw file from the server alone.

    Each file is replaced whole, but not all at once: from the first replacement to the last,
    ``Raw Data/.raw-files-being-written`` marks the files as possibly of two fetches, and stage 3 refuses them
    until a stage 2 has written them all (:meth:`DataRoot.check_raw_files_whole`)."""
    marker = root.raw_files_being_written
    kept_count = 0
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
            redacted_before = redactor.count
            build = build_raw_records(
                store.runs_of_flow(flow_uuid),
                contacts,
                flow=flow_config.name,
                mode=flow_config.mode,
                test_contact_uuids=config.test_contact_uuids,
                step=run.step(f"fetch/{flow_config.name}"),
                run_id_rule=_run_id_rule(store, flow_uuid, flow_config.name),
                redactor=redactor,
            )
            flow_summary.phone_numbers_redacted += redactor.count - redacted_before
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                if not marker.exists():
                    atomic_write_text(marker, "Stage 2 is replacing the raw files of this folder, or stopped before it "
                                      "replaced them all: run stage 2 again before stage 3.\n")
                kept = root.earlier_raw_files_dir / path.name
                if keep_earlier and path.is_file() and not kept.exists():
                    kept.parent.mkdir(exist_ok=True)
                    os.replace(path, kept)
                    kept_count += 1
                write_traced_data_file(path, build.records)
            except OSError as error:
                raise FetchError(
                    f"cannot write the raw file: {describe_os_error(error)}. Every run fetched is kept in the fetch "
                    "store, so stage 2 run again once this is mended writes the raw files anew (until then they may "
                    "be of two fetches)", path=path) from error
            skipped = build.skipped
            outcome: dict[str, Any] = {
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
    marker.unlink(missing_ok=True)
    if kept_count:
        logger.warning(
            "the first fetch into this data root wrote its raw files from the server alone; the %d raw file(s) that "
            "were there (no fetch store recorded their workspace) are kept in %s: compare stage 3's outputs, then "
            "delete that folder", kept_count, root.earlier_raw_files_dir,
        )
    summary.skipped_contacts_unknown = len(unknown)
    summary.skipped_contacts_no_urn = len(no_urn)


def _run_id_rule(store: FetchStore, flow_uuid: str, flow: str) -> str:
    """Which identity a raw file's ``(Run ID)`` keys hold, one rule for the whole file: the integer ``id`` when
    every run of the flow has one (2019's key), else the ``uuid`` when every run has one (newer servers send
    runs without an id, while archive lines carry it)."""
    every_id, every_uuid = store.run_ids_known(flow_uuid)
    if every_id:
        return RUN_ID_INTEGER
    if every_uuid:
        return RUN_ID_UUID
    logger.warning(
        "%s: some runs have only an integer id and others only a uuid; each record's (Run ID) holds what its run "
        "has", flow,
    )
    return RUN_ID_EITHER


def _fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _unchanged(path: Path, state: RawFileState) -> bool:
    """The file is still the one written when ``state`` was recorded (not removed, edited or replaced)."""
    try:
        current = path.stat()
    except FileNotFoundError:
        return False
    return (current.st_size, current.st_mtime_ns) == (state.size, state.mtime_ns)
