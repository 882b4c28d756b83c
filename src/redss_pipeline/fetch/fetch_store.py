"""The local fetch store: every run and contact seen so far, de-identified, and the incremental cursors.

``<data-root>/Raw Data/rapid_pro_store.sqlite`` (spec README decision 1, rapid-pro.md section 3) lets a fetch
ask Rapid Pro only for what changed since the last one and lets a killed fetch resume:

- ``runs``: one row per run, merged by run identity (the integer ``id``, or the ``uuid``; a run matches a
  stored one when either agrees), the newer ``modified_on`` winning. The stored body is
  :func:`~redss_pipeline.fetch.raw_records.deidentified_run`: the contact appears as its Rapid Pro uuid only;
- ``contacts``: contact uuid -> uid (the UUID-table id of its identity URN, rapid-pro.md 6.3; NULL when it has
  none), test flag,
  ``modified_on`` and ``deleted``. No URN, name or phone number is ever stored; deleted contacts are kept as
  tombstones so that an older copy cannot bring them back;
- ``cursors``: the greatest ``modified_on`` stored per flow (``runs:<flow uuid>``) and for contacts, in the
  fixed-width UTC form of :func:`~redss_pipeline.fetch.raw_records.time_key`;
- ``resume``: while a cursor's pages are being read, the ``next`` link of the last stored page, its number
  and the greatest ``modified_on`` stored so far, so that an interrupted read continues where it stopped
  (the link holds the filters and the server's paging cursor, never the token);
- ``archives``: (archive hash, flow uuid) pairs already read from Rapid Pro run archives;
- ``workspace``: which server root and workspace (``org.json``'s uuid and name, read once) the store belongs
  to, whether the workspace is anonymous, the uuid of each configured flow, and the contact identity rule the
  stored uids follow. A fetch from another server or workspace is refused before anything is written;
- ``versions`` and ``raw_files``: a counter per flow bumped whenever stored data its raw file is built from
  changes (its runs, or a contact of one of its runs arriving, changing its uid or being deleted), and for
  each raw file the fingerprint of what it was built from, so a refetch with nothing new leaves unchanged
  files as they are instead of rebuilding them.

Every write is one SQLite transaction, so the store is always consistent: a page of runs is committed as it
arrives, a cursor is moved only after all pages of its flow are stored. ``PRAGMA user_version`` holds the schema
version; a version-1 store (before the workspace table) is upgraded in place on opening, and its contacts are
identified again by the current rule on the next fetch; an unknown version is refused with
:class:`~redss_pipeline.core.errors.StateError`.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from redss_pipeline.core.data_root import FILE_IN_THE_WAY
from redss_pipeline.core.disk_errors import describe_os_error, describe_sqlite_error, sqlite_file_is_damaged
from redss_pipeline.core.errors import StateError
from redss_pipeline.deidentify.phone_redaction import PhoneRedactor
from redss_pipeline.fetch.raw_records import ContactRef, deidentified_run, modified_key, run_identity

__all__ = [
    "SCHEMA_VERSION",
    "CONTACTS_CURSOR",
    "DELETED_CONTACTS_CURSOR",
    "runs_cursor",
    "StoredContact",
    "ResumePoint",
    "RawFileState",
    "MergeCounts",
    "Workspace",
    "IDENTITY_RULE",
    "FetchStore",
]

SCHEMA_VERSION = 2
#: The contact identity rule the stored uids follow (rapid-pro.md 6.3); stores of version 1 followed
#: "the first URN, whatever its scheme".
IDENTITY_RULE = "tel-whatsapp-other-uuid/1"
CONTACTS_CURSOR = "contacts"
DELETED_CONTACTS_CURSOR = "contacts:deleted"

_SCHEMA = """
CREATE TABLE runs (
    seq          INTEGER PRIMARY KEY,
    run_id       INTEGER UNIQUE,
    run_uuid     TEXT UNIQUE,
    flow_uuid    TEXT NOT NULL,
    contact_uuid TEXT,
    modified_on  TEXT NOT NULL,
    body         TEXT NOT NULL,
    CHECK (run_id IS NOT NULL OR run_uuid IS NOT NULL)
);
CREATE INDEX runs_by_flow ON runs (flow_uuid, modified_on, run_id, run_uuid);
CREATE INDEX runs_by_contact ON runs (contact_uuid, flow_uuid);
CREATE TABLE contacts (
    contact_uuid TEXT PRIMARY KEY,
    uid          TEXT,
    test         INTEGER NOT NULL,
    modified_on  TEXT NOT NULL,
    deleted      INTEGER NOT NULL
);
CREATE TABLE cursors (
    name        TEXT PRIMARY KEY,
    modified_on TEXT NOT NULL
);
CREATE TABLE resume (
    name        TEXT PRIMARY KEY,
    next_url    TEXT NOT NULL,
    page        INTEGER NOT NULL,
    modified_on TEXT
);
CREATE TABLE versions (
    name    TEXT PRIMARY KEY,
    version INTEGER NOT NULL
);
CREATE TABLE raw_files (
    flow     TEXT PRIMARY KEY,
    inputs   TEXT NOT NULL,
    size     INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    outcome  TEXT NOT NULL
);
CREATE TABLE archives (
    hash      TEXT NOT NULL,
    flow_uuid TEXT NOT NULL,
    PRIMARY KEY (hash, flow_uuid)
);
"""

#: Added in schema version 2 (a version-1 store gets it on opening).
_WORKSPACE_SCHEMA = """
CREATE TABLE workspace (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


def runs_cursor(flow_uuid: str) -> str:
    """The cursor name of a flow's runs."""
    return f"runs:{flow_uuid}"


@dataclass(frozen=True, slots=True)
class StoredContact:
    """A de-identified contact: Rapid Pro uuid, uid (None without URN), test flag, ``modified_on``, deleted."""

    contact_uuid: str
    uid: str | None
    test: bool
    modified_on: str
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """Where an interrupted read of a cursor's pages continues: the next page's URL, the number of the last
    stored page, and the greatest ``modified_on`` stored before the interruption."""

    next_url: str
    page: int
    modified_on: str | None


@dataclass(frozen=True)
class RawFileState:
    """A written raw file: the fingerprint of its inputs, its size and modification time right after writing
    (so an edited or replaced file is noticed), and what building it gave (records, skipped runs)."""

    inputs: str
    size: int
    mtime_ns: int
    outcome: dict[str, Any]


@dataclass(frozen=True)
class Workspace:
    """The server and workspace a store belongs to: the server root (``https://textit.in``), the workspace's
    uuid and name from ``org.json`` and whether it is anonymous."""

    server: str
    uuid: str | None
    name: str | None
    anonymous: bool

    def describe(self) -> str:
        """``workspace 'CSAP' (uuid ...) on https://textit.in``, for messages."""
        name = repr(self.name) if self.name else "(no name)"
        ident = f" (uuid {self.uuid})" if self.uuid else ""
        return f"workspace {name}{ident} on {self.server}"

    def same_workspace(self, other: "Workspace") -> bool:
        """The same workspace: by uuid when both have one (names can be edited), else by name."""
        if self.uuid and other.uuid:
            return self.uuid == other.uuid
        return self.name == other.name


@dataclass
class MergeCounts:
    """What a merge changed: rows added, rows replaced by a newer version, rows left as they were."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    uid_changed: int = 0  # contacts only: stored contacts whose uid changed
    phone_numbers: int = 0  # runs only: phone numbers redacted in the runs added or replaced

    def add(self, other: "MergeCounts") -> None:
        self.new += other.new
        self.updated += other.updated
        self.unchanged += other.unchanged


class FetchStore:
    """An open store. Use :meth:`open`; close it (or use it as a context manager) when done."""

    def __init__(self, connection: sqlite3.Connection, path: Path):
        self._db = connection
        self.path = path

    # -- opening -----------------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path) -> "FetchStore":
        """Opens the store at ``path``, creating it (and its folder) when missing."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise StateError(FILE_IN_THE_WAY, path=path.parent) from None
        except OSError as error:
            raise StateError(f"cannot create the folder of the fetch store: {describe_os_error(error)}",
                             path=path.parent) from error
        try:
            connection = sqlite3.connect(path, isolation_level=None)  # explicit transactions below
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a crash loses no committed page
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version == 0 and not _has_tables(connection):
                # One transaction, the version included: a store is either complete or absent.
                connection.executescript(
                    f"BEGIN;\n{_SCHEMA}\n{_WORKSPACE_SCHEMA}\n"
                    f"INSERT INTO workspace (name, value) VALUES ('identity_rule', '{IDENTITY_RULE}');\n"
                    f"PRAGMA user_version={SCHEMA_VERSION};\nCOMMIT;"
                )
                version = SCHEMA_VERSION
            elif version == 1:
                # A store of the previous version: same tables plus the workspace. Its contacts' uids follow
                # the old rule (no identity_rule row), so the next fetch identifies them again.
                connection.executescript(
                    f"BEGIN;\n{_WORKSPACE_SCHEMA}\nPRAGMA user_version={SCHEMA_VERSION};\nCOMMIT;"
                )
                version = SCHEMA_VERSION
        except sqlite3.Error as error:
            raise store_error(path, error) from error
        if version != SCHEMA_VERSION:
            connection.close()
            raise StateError(
                f"fetch store schema version {version} is not the supported version {SCHEMA_VERSION}; "
                "move the file away to fetch everything again",
                path=path,
            )
        return cls(connection, path)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "FetchStore":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic write: everything inside is committed together, or nothing on an error or interrupt."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            with contextlib.suppress(sqlite3.Error):  # SQLite may have rolled back already (a full disk)
                self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- cursors -----------------------------------------------------------------------------------------

    def cursor(self, name: str) -> str | None:
        """The saved cursor (``time_key`` form), or None before the first complete fetch."""
        row = self._db.execute("SELECT modified_on FROM cursors WHERE name = ?", (name,)).fetchone()
        return None if row is None else row[0]

    def set_cursor(self, name: str, modified_on: str | None) -> None:
        """Moves a cursor forward (never back: a cursor only grows). None leaves it as it is."""
        if modified_on is None:
            return
        with self._autocommit():
            self._db.execute(
                "INSERT INTO cursors (name, modified_on) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET modified_on = max(modified_on, excluded.modified_on)",
                (name, modified_on),
            )

    def resume_point(self, name: str) -> ResumePoint | None:
        """The saved position of an interrupted read of ``name``'s pages, if any."""
        row = self._db.execute("SELECT next_url, page, modified_on FROM resume WHERE name = ?", (name,)).fetchone()
        return None if row is None else ResumePoint(*row)

    def set_resume_point(self, name: str, point: ResumePoint | None) -> None:
        """Saves (or, with None, forgets) the position of a read in progress."""
        with self._autocommit():
            if point is None:
                self._db.execute("DELETE FROM resume WHERE name = ?", (name,))
            else:
                self._db.execute(
                    "INSERT OR REPLACE INTO resume (name, next_url, page, modified_on) VALUES (?, ?, ?, ?)",
                    (name, point.next_url, point.page, point.modified_on),
                )

    # -- runs --------------------------------------------------------------------------------------------

    def merge_runs(self, runs: Iterable[Mapping[str, Any]], *, redactor: PhoneRedactor | None = None) -> MergeCounts:
        """Stores runs (API JSON objects), de-identified; a stored run is replaced only by a newer version.

        ``redactor`` replaces phone numbers typed into answers (:func:`deidentified_run`).

        Runs as one batch, in one transaction unless called inside :meth:`transaction`.
        """
        counts = MergeCounts()
        batch: dict[tuple[int | None, str | None], tuple[str, Mapping[str, Any]]] = {}
        for run in runs:
            identity = run_identity(run)
            modified = modified_key(run, what="run")
            previous = batch.get(identity)
            if previous is None or previous[0] <= modified:
                batch[identity] = (modified, run)
        if not batch:
            return counts
        changed_flows: set[str] = set()
        with self._autocommit():
            existing = self._existing_runs(list(batch))
            for (run_id, run_uuid), (modified, run) in batch.items():
                found = existing.get(("id", run_id)) or existing.get(("uuid", run_uuid))
                redacted_before = redactor.count if redactor is not None else 0
                body = deidentified_run(run, redactor=redactor)
                redacted = redactor.count - redacted_before if redactor is not None else 0
                row = (
                    run_id,
                    run_uuid,
                    body["flow"]["uuid"],
                    body["contact"]["uuid"],
                    modified,
                    json.dumps(body, ensure_ascii=False, separators=(",", ":")),
                )
                if found is None:
                    self._db.execute(
                        "INSERT INTO runs (run_id, run_uuid, flow_uuid, contact_uuid, modified_on, body) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        row,
                    )
                    counts.new += 1
                    counts.phone_numbers += redacted
                    changed_flows.add(row[2])
                    continue
                seq, stored_id, stored_uuid, stored_flow, stored_modified, stored_body = found
                # Keep an identity the newer copy lacks (a server that stopped sending ids, say).
                row = (run_id if run_id is not None else stored_id, run_uuid or stored_uuid) + row[2:]
                if modified < stored_modified or (
                    modified == stored_modified and (row[0], row[1], row[5]) == (stored_id, stored_uuid, stored_body)
                ):
                    counts.unchanged += 1  # an older copy, or the boundary run of an inclusive ``after`` again
                    continue
                self._db.execute(
                    "UPDATE runs SET run_id = ?, run_uuid = ?, flow_uuid = ?, contact_uuid = ?, modified_on = ?, "
                    "body = ? WHERE seq = ?",
                    row + (seq,),
                )
                counts.phone_numbers += redacted
                changed_flows.update((row[2], stored_flow))
                if modified > stored_modified:
                    counts.updated += 1
                else:
                    counts.unchanged += 1
            self._bump([runs_cursor(flow_uuid) for flow_uuid in changed_flows])
        return counts

    def _existing_runs(self, identities: list[tuple[int | None, str | None]]) -> dict[tuple[str, Any], tuple]:
        found: dict[tuple[str, Any], tuple] = {}
        ids = [i for i, _ in identities if i is not None]
        uuids = [u for _, u in identities if u is not None]
        for column, values in (("run_id", ids), ("run_uuid", uuids)):
            kind = "id" if column == "run_id" else "uuid"
            for start in range(0, len(values), 500):
                chunk = values[start : start + 500]
                marks = ",".join("?" * len(chunk))
                columns = "seq, run_id, run_uuid, flow_uuid, modified_on, body"
                for row in self._db.execute(f"SELECT {columns} FROM runs WHERE {column} IN ({marks})", chunk):
                    found[(kind, row[1] if kind == "id" else row[2])] = row
        return found

    def run_count(self, flow_uuid: str | None = None) -> int:
        count: int
        if flow_uuid is None:
            count = self._db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        else:
            count = self._db.execute("SELECT COUNT(*) FROM runs WHERE flow_uuid = ?", (flow_uuid,)).fetchone()[0]
        return count

    def runs_of_flow(self, flow_uuid: str) -> Iterator[dict[str, Any]]:
        """The stored runs of a flow, oldest-modified first, then by id (the 2019 processing order).

        Each run carries every identity seen for it (an archived copy's ``id`` next to a live copy's
        ``uuid``), whichever copy its body came from.
        """
        query = (
            "SELECT run_id, run_uuid, body FROM runs WHERE flow_uuid = ? "
            "ORDER BY modified_on, run_id IS NULL, run_id, run_uuid"
        )
        for run_id, run_uuid, body in self._db.execute(query, (flow_uuid,)):
            run = json.loads(body)
            if run_id is not None:
                run["id"] = run_id
            if run_uuid is not None:
                run["uuid"] = run_uuid
            yield run

    def run_ids_known(self, flow_uuid: str) -> tuple[bool, bool]:
        """(every stored run of the flow has an integer id, every one has a uuid)."""
        without_id, without_uuid = self._db.execute(
            "SELECT COALESCE(SUM(run_id IS NULL), 0), COALESCE(SUM(run_uuid IS NULL), 0) FROM runs "
            "WHERE flow_uuid = ?",
            (flow_uuid,),
        ).fetchone()
        return without_id == 0, without_uuid == 0

    def run_identities(self) -> Iterator[tuple[int | None, str | None]]:
        """(id, uuid) of every stored run."""
        return iter(self._db.execute("SELECT run_id, run_uuid FROM runs").fetchall())

    # -- contacts ----------------------------------------------------------------------------------------

    def merge_contacts(self, contacts: Iterable[StoredContact]) -> MergeCounts:
        """Stores de-identified contacts by uuid; a stored contact is replaced only by a newer version.

        A deleted contact (tombstone) is stored the same way, so a deletion wins over any older copy.
        """
        counts = MergeCounts()
        affecting: list[str] = []  # contacts new, or with a changed uid or deletion: their runs' files change
        with self._autocommit():
            for contact in contacts:
                row = self._db.execute(
                    "SELECT modified_on, uid, test, deleted FROM contacts WHERE contact_uuid = ?",
                    (contact.contact_uuid,),
                ).fetchone()
                values = (contact.uid, int(contact.test), contact.modified_on, int(contact.deleted))
                if row is None:
                    self._db.execute(
                        "INSERT INTO contacts (contact_uuid, uid, test, modified_on, deleted) VALUES (?, ?, ?, ?, ?)",
                        (contact.contact_uuid,) + values,
                    )
                    counts.new += 1
                    affecting.append(contact.contact_uuid)
                elif contact.modified_on < row[0]:
                    counts.unchanged += 1  # an older copy never replaces a newer one (nor a deletion)
                elif (row[1], row[2], row[0], row[3]) == values:
                    counts.unchanged += 1
                else:
                    self._db.execute(
                        "UPDATE contacts SET uid = ?, test = ?, modified_on = ?, deleted = ? WHERE contact_uuid = ?",
                        values + (contact.contact_uuid,),
                    )
                    counts.updated += 1
                    if row[1] is not None and contact.uid is not None and row[1] != contact.uid:
                        counts.uid_changed += 1
                    if (row[1], row[3]) != (contact.uid, int(contact.deleted)):
                        affecting.append(contact.contact_uuid)
            self._bump([runs_cursor(flow_uuid) for flow_uuid in self._flows_of_contacts(affecting)])
        return counts

    def _flows_of_contacts(self, contact_uuids: list[str]) -> set[str]:
        flows: set[str] = set()
        for start in range(0, len(contact_uuids), 500):
            chunk = contact_uuids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            flows.update(
                flow for (flow,) in self._db.execute(
                    f"SELECT DISTINCT flow_uuid FROM runs WHERE contact_uuid IN ({marks})", chunk
                )
            )
        return flows

    def contact_uids(self) -> dict[str, str]:
        """Contact uuid -> uid of every stored contact that has one."""
        return dict(self._db.execute("SELECT contact_uuid, uid FROM contacts WHERE uid IS NOT NULL"))

    def contact_refs(self) -> dict[str, ContactRef]:
        """Every stored contact as the raw records need it: uuid -> (uid, deleted)."""
        return {
            contact_uuid: ContactRef(uid, bool(deleted))
            for contact_uuid, uid, deleted in self._db.execute("SELECT contact_uuid, uid, deleted FROM contacts")
        }

    def mark_test_contacts(self, test_contact_uuids: Iterable[str]) -> None:
        """Sets every contact's test flag from the configured list (the list may have changed)."""
        uuids = list(test_contact_uuids)
        with self._autocommit():
            self._db.execute("UPDATE contacts SET test = 0 WHERE test != 0")
            self._db.executemany("UPDATE contacts SET test = 1 WHERE contact_uuid = ?", [(u,) for u in uuids])

    def contact_counts(self) -> dict[str, int]:
        """Stored contacts: ``active``, ``deleted`` and ``no_urn`` (active, without a URN)."""
        active, deleted, no_urn = self._db.execute(
            "SELECT COALESCE(SUM(deleted = 0), 0), COALESCE(SUM(deleted != 0), 0), "
            "COALESCE(SUM(deleted = 0 AND uid IS NULL), 0) FROM contacts"
        ).fetchone()
        return {"active": active, "deleted": deleted, "no_urn": no_urn}

    # -- versions and raw files ---------------------------------------------------------------------------

    def version(self, name: str) -> int:
        """How often the data a flow's raw file is built from changed (``name`` = ``runs:<flow uuid>``): its
        stored runs, or the uid or deletion of a contact with runs in it; 0 before the first change."""
        row = self._db.execute("SELECT version FROM versions WHERE name = ?", (name,)).fetchone()
        return 0 if row is None else row[0]

    def _bump(self, names: Iterable[str]) -> None:
        self._db.executemany(
            "INSERT INTO versions (name, version) VALUES (?, 1) "
            "ON CONFLICT (name) DO UPDATE SET version = version + 1",
            [(name,) for name in names],
        )

    def raw_file_state(self, flow: str) -> RawFileState | None:
        """What was recorded when the raw file of ``flow`` (configured name) was last written."""
        row = self._db.execute(
            "SELECT inputs, size, mtime_ns, outcome FROM raw_files WHERE flow = ?", (flow,)
        ).fetchone()
        return None if row is None else RawFileState(row[0], row[1], row[2], json.loads(row[3]))

    def set_raw_file_state(self, flow: str, state: RawFileState) -> None:
        with self._autocommit():
            self._db.execute(
                "INSERT OR REPLACE INTO raw_files (flow, inputs, size, mtime_ns, outcome) VALUES (?, ?, ?, ?, ?)",
                (flow, state.inputs, state.size, state.mtime_ns, json.dumps(state.outcome, sort_keys=True)),
            )

    # -- archives ----------------------------------------------------------------------------------------

    def ingested_archives(self) -> set[tuple[str, str]]:
        """(hash, flow uuid) pairs whose runs are stored already."""
        return set(self._db.execute("SELECT hash, flow_uuid FROM archives"))

    def record_archive(self, archive_hash: str, flow_uuids: Iterable[str]) -> None:
        with self._autocommit():
            self._db.executemany(
                "INSERT OR IGNORE INTO archives (hash, flow_uuid) VALUES (?, ?)",
                [(archive_hash, flow_uuid) for flow_uuid in flow_uuids],
            )

    # -- workspace ---------------------------------------------------------------------------------------

    def _setting(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM workspace WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def _set(self, items: Mapping[str, str]) -> None:
        with self._autocommit():
            self._db.executemany(
                "INSERT OR REPLACE INTO workspace (name, value) VALUES (?, ?)", list(items.items())
            )

    def workspace(self) -> Workspace | None:
        """The server and workspace this store belongs to, or None before the first fetch (or in a store
        written before the store recorded it)."""
        server = self._setting("server")
        if server is None:
            return None
        return Workspace(
            server=server,
            uuid=self._setting("org_uuid") or None,
            name=self._setting("org_name") or None,
            anonymous=self._setting("anonymous") == "1",
        )

    def set_workspace(self, workspace: Workspace) -> None:
        self._set(
            {
                "server": workspace.server,
                "org_uuid": workspace.uuid or "",
                "org_name": workspace.name or "",
                "anonymous": "1" if workspace.anonymous else "0",
            }
        )

    def flow_uuids(self) -> dict[str, str]:
        """Configured flow name -> the uuid it had in the workspace when it was last fetched."""
        prefix = "flow:"
        return {
            name[len(prefix):]: value
            for name, value in self._db.execute("SELECT name, value FROM workspace WHERE name LIKE 'flow:%'")
        }

    def set_flow_uuids(self, flows: Mapping[str, str]) -> None:
        self._set({f"flow:{name}": flow_uuid for name, flow_uuid in flows.items()})

    def read_started(self, cursor_name: str) -> str | None:
        """When (server clock, ``time_key`` form) the last complete read of a cursor's pages began."""
        return self._setting(f"read_started:{cursor_name}")

    def set_read_started(self, cursor_name: str, moment: str | None) -> None:
        with self._autocommit():
            if moment is None:
                self._db.execute("DELETE FROM workspace WHERE name = ?", (f"read_started:{cursor_name}",))
            else:
                self._set({f"read_started:{cursor_name}": moment})

    def identity_rule(self) -> str | None:
        """The contact identity rule the stored uids follow (None: the first-URN rule of version-1 stores)."""
        return self._setting("identity_rule")

    def set_identity_rule(self, rule: str) -> None:
        self._set({"identity_rule": rule})

    # -- helpers -----------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _autocommit(self) -> Iterator[None]:
        """A transaction of its own, unless one is open already (then the caller commits)."""
        if self._db.in_transaction:
            yield
        else:
            with self.transaction():
                yield


def store_error(path: Path, error: sqlite3.Error) -> StateError:
    """A failure of the store's database as one line. Only a damaged file is worth moving away (the next fetch
    then asks the server for everything); a read-only folder or a full disk leave a healthy store, to keep."""
    if sqlite_file_is_damaged(error):
        return StateError(f"not a readable fetch store ({error}); move it away to fetch everything again", path=path)
    return StateError(
        f"cannot use the fetch store: {describe_sqlite_error(error, path)}; the store is kept as it is, fix that and "
        "run the same command again",
        path=path,
    )


def _has_tables(connection: sqlite3.Connection) -> bool:
    tables: int = connection.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
    return tables > 0
