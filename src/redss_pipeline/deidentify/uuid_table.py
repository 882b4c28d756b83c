"""The phone number <-> UUID table: the only link between a person and their de-identified id.

Stage 1 creates it, stage 2 adds every contact's first URN to it, stage 3 reads it (only to derive the mobile
operator). It lives in ``<data-root>/UUIDs/phone_uuids.sqlite`` (SQLite, WAL journal, one transaction per
batch), is append-only (an id, once given, is kept forever: triggers refuse updates and deletes) and is the only
file that may contain phone numbers.

Keys (spec rapid-pro.md section 6):

- a ``tel:`` or ``whatsapp:`` URN (a WhatsApp id is the number's digits), or a bare number, is a phone
  number: every character that is not an ASCII digit is deleted and leading zeros are stripped
  (``tel:+252 61-000 0001`` -> ``252610000001``), as in 2019, so 2019 tables keep working and one number has
  one id whichever of the two channels it came on (rapid-pro.md 6.3);
- any other URN is kept whole as ``scheme:path`` (``telegram:123``), which can never equal a digits-only key,
  so it cannot collide with a phone number (2019 reduced it to its digits).

Ids are ``avf-phone-uuid-<uuid4>``. A 2019 ``phone_uuids.json`` (a JSON object number -> id in insertion
order) is imported once, keeping every id, and can be exported again (README decision 1).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import sqlite3
import tempfile
import uuid
from pathlib import Path
from typing import Iterable, Iterator

from redss_pipeline.core.atomic_files import atomic_write_text
from redss_pipeline.core.data_root import FILE_IN_THE_WAY, DataRoot, refuse_what_is_in_the_way
from redss_pipeline.core.disk_errors import describe_os_error, describe_sqlite_error, sqlite_file_is_damaged
from redss_pipeline.core.errors import UuidTableError

__all__ = [
    "UUID_PREFIX",
    "SQLITE_NAME",
    "JSON_NAME",
    "normalise_phone_number",
    "shown_in_message",
    "urn_key",
    "table_paths",
    "FOLDER_MODE",
    "FILE_MODE",
    "create_uuid_table",
    "remove_interrupted_builds",
    "open_uuid_table",
    "UuidTable",
]

UUID_PREFIX = "avf-phone-uuid-"
_CANONICAL_ID = re.compile(UUID_PREFIX + r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Five digits in a row, each maybe set apart from the next by one space, dot, dash, slash, bracket or plus, as a
# phone number is typed: at least as long as a number's shortest part.
_PHONE_LIKE = re.compile(r"\d(?:[\s().+/-]?\d){4}")
SQLITE_NAME = "phone_uuids.sqlite"
JSON_NAME = "phone_uuids.json"
_FORMAT_VERSION = 1
#: The table holds phone numbers: its folder and files are its owner's only, whatever the umask.
FOLDER_MODE = 0o700
FILE_MODE = 0o600

# Ids looked up per query: well within SQLite's limit on the variables of one statement (999 before 3.32).
_IDS_PER_QUERY = 500
_NON_DIGITS = re.compile(r"[^0-9]")
_PHONE_SCHEMES = ("tel", "whatsapp")
_SCHEMA = """
CREATE TABLE phone_uuids (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    key  TEXT NOT NULL UNIQUE,
    uuid TEXT NOT NULL UNIQUE
);
CREATE TRIGGER phone_uuids_append_only_update BEFORE UPDATE ON phone_uuids
BEGIN SELECT RAISE(ABORT, 'the UUID table is append-only'); END;
CREATE TRIGGER phone_uuids_append_only_delete BEFORE DELETE ON phone_uuids
BEGIN SELECT RAISE(ABORT, 'the UUID table is append-only'); END;
"""


def shown_in_message(value: str) -> str:
    """How a message names a value a user gave (a uid on a command line, a cell of a file): quoted, unless it may
    hold a phone number, which no message shows. A uid of the table's own form is always shown; any other text
    with five digits in a row (spaced or not, as numbers are typed) is withheld."""
    if _CANONICAL_ID.fullmatch(value) or not _PHONE_LIKE.search(value):
        return repr(value)
    return "a value not shown (it may hold a phone number)"


def normalise_phone_number(text: str) -> str:
    """Digits only, leading zeros stripped: the 2019 normalisation (``0-0 0123123`` -> ``123123``)."""
    return _NON_DIGITS.sub("", text).lstrip("0")


def urn_key(urn: str) -> str:
    """The table key of a Rapid Pro URN: a normalised number for ``tel:`` and ``whatsapp:`` (or no scheme),
    else the URN whole."""
    scheme, sep, path = urn.partition(":")
    if not sep or scheme.lower() in _PHONE_SCHEMES:
        key = normalise_phone_number(path if sep else urn)
        if not key:
            raise UuidTableError(f"the URN {_redacted(urn)} has no digits to identify a phone number")
        return key
    if not path:
        raise UuidTableError(f"the URN {scheme}: has an empty path")
    return f"{scheme.lower()}:{path}"


def _redacted(urn: str) -> str:
    # Never print a phone number: keep the scheme and the length only.
    scheme, sep, path = urn.partition(":")
    return f"{scheme}:<{len(path)} characters>" if sep else f"<{len(urn)} characters>"


def table_paths(data_root: str | Path) -> tuple[Path, Path]:
    """(SQLite table, 2019 JSON table) paths of a data root."""
    folder = DataRoot(data_root).uuids_dir
    return folder / SQLITE_NAME, folder / JSON_NAME


def create_uuid_table(data_root: str | Path, *, import_from: str | Path | None = None) -> Path:
    """Stage 1: creates the table, empty or holding every entry of a 2019 ``phone_uuids.json``
    (``import_from``); refuses (and touches nothing) when a table, new or 2019, exists.

    The table is built completely in a temporary file and only then moved into place, so a failed import, a
    crash or a second stage 1 running at the same moment never leaves an empty or half-made table behind.
    """
    sqlite_path, json_path = table_paths(data_root)
    for existing in (sqlite_path, json_path):
        if existing.exists():
            raise _exists_error(existing)
    if import_from is None and _holds_fetched_data(data_root):
        raise UuidTableError(
            "Raw Data/ holds fetched data, so this data root had a table: restore it from a backup (a JSON export "
            "with --import-json), or fetch into a new data root; a new empty table would give every contact a new id",
            path=sqlite_path)
    entries = [] if import_from is None else _read_json_table(Path(import_from))
    try:
        UuidTable._build(sqlite_path, entries)
    except FileExistsError:
        raise _exists_error(sqlite_path) from None
    return sqlite_path


def remove_interrupted_builds(data_root: str | Path) -> int:
    """Removes the temporary files of table builds that never finished (a stage killed while it imported a 2019
    table): they may hold phone numbers, and nothing else would ever remove them. Returns how many builds were
    removed. Only for a caller holding the data-root lock, which keeps every other stage, and so every other
    build, out of the data root."""
    folder = DataRoot(data_root).uuids_dir
    builds = sorted(folder.glob(f".{SQLITE_NAME}.*.building")) if folder.is_dir() else []
    for build in builds:
        for leftover in (build, build.with_name(build.name + "-wal"), build.with_name(build.name + "-shm")):
            try:
                leftover.unlink(missing_ok=True)
            except OSError as error:
                raise UuidTableError(f"cannot remove what an interrupted table build left: "
                                     f"{describe_os_error(error)}", path=leftover) from error
    return len(builds)


def _exists_error(path: Path) -> UuidTableError:
    if path.suffix == ".json":  # a 2019 data root: its table is imported by stages 2 and 3, nothing to create
        return UuidTableError(
            "a phone number <-> UUID table of the 2019 pipeline already exists here; refusing to make another "
            "(every uid of this project depends on it). A 2019 data root needs no stage 1: stages 2 and 3 import "
            "this table themselves.",
            path=path,
        )
    return UuidTableError(
        "a phone number <-> UUID table already exists here; refusing to overwrite it "
        "(every uid of this project depends on it). Remove it first only if you really mean to start "
        "a new table.",
        path=path,
    )


def open_uuid_table(data_root: str | Path, *, read_only: bool = False) -> "UuidTable":
    """Opens the table of a data root for stages 2 and 3.

    When only a 2019 ``phone_uuids.json`` exists, it is imported once into a new SQLite table (every id kept;
    the JSON file is left untouched). When neither exists, stage 1 has not run. ``read_only`` (stage 3, which
    only looks ids up) opens an existing table without writing anything, so ``UUIDs/`` may be read-only.
    """
    sqlite_path, json_path = table_paths(data_root)
    try:
        return _open_uuid_table(data_root, sqlite_path, json_path, read_only=read_only)
    except PermissionError as error:  # UUIDs/ of another user (stage 1 makes it owner-only)
        raise UuidTableError(f"cannot open the table: {describe_os_error(error)}", path=sqlite_path) from error


def _open_uuid_table(data_root: str | Path, sqlite_path: Path, json_path: Path, *, read_only: bool) -> "UuidTable":
    refuse_what_is_in_the_way(sqlite_path, UuidTableError)
    if read_only and sqlite_path.exists():
        return UuidTable._open_read_only(sqlite_path)
    if not sqlite_path.exists() and json_path.exists():
        if not read_only:
            # Stage 2, in the process holding the data-root lock. Not stage 3's readers: its worker processes may
            # each be importing the table at this moment (the first link wins, below).
            remove_interrupted_builds(data_root)
        try:
            UuidTable._build(sqlite_path, _read_json_table(json_path))
        except FileExistsError:
            pass  # imported by another process meanwhile: the same ids
    if sqlite_path.exists():
        return UuidTable._open(sqlite_path)
    if _holds_fetched_data(data_root):
        # The table was lost, not never made: a new one would give every contact a new uid, so that the raw
        # files' uids would be in no table and each person's later messages would not join their earlier ones.
        raise UuidTableError(
            "no phone number <-> UUID table, though Raw Data/ holds fetched data: restore the table from a backup "
            "(a JSON export with 1_create_uuid_table.sh --import-json), or fetch into a new data root; a new empty "
            "table would give every contact a new id, and stage 3 would find the fetched ids in no table",
            path=sqlite_path,
        )
    raise UuidTableError(
        "no phone number <-> UUID table: run run_scripts/1_create_uuid_table.sh on this data root first",
        path=sqlite_path,
    )


def _holds_fetched_data(data_root: str | Path) -> bool:
    """Whether stage 2 has written into the data root (its fetch store, or a raw file): then a missing table was
    lost, not never made."""
    root = DataRoot(data_root)
    return root.fetch_store.exists() or root.holds_raw_files()


def _owner_only(path: Path, mode: int) -> None:
    """Gives ``path`` exactly ``mode`` (whatever the umask); a file of another user is left as it is."""
    with contextlib.suppress(OSError):  # another user's file, a read-only file system: leave it as it is
        os.chmod(path, mode)


def _owner_only_folder(folder: Path) -> None:
    try:
        folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    except FileExistsError:  # not the table existing (which callers report so): a file named like the folder
        raise UuidTableError(FILE_IN_THE_WAY, path=folder) from None
    _owner_only(folder, FOLDER_MODE)


class UuidTable:
    """An open table. Stage 2's look-ups are batched: the whole table is read into memory once (a million rows
    take about a second), new keys are inserted in one transaction per batch. Stage 3 looks up only the ids of
    each chunk of respondents (:meth:`keys_for_uuids`), so it never holds the whole table."""

    def __init__(self, connection: sqlite3.Connection, path: Path):
        self._db = connection
        self.path = path
        self._by_key: dict[str, str] | None = None

    # -- opening -----------------------------------------------------------------------------------------

    @classmethod
    def _connect(cls, path: Path) -> sqlite3.Connection:
        connection = sqlite3.connect(path, isolation_level=None)  # explicit BEGIN/COMMIT below
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute("PRAGMA cache_size=-262144")  # up to 256 MiB of pages: large batches stay in memory
        return connection

    @classmethod
    def _build(cls, path: Path, entries: list[tuple[str, str]]) -> None:
        """Writes a complete table holding ``entries`` to a temporary file beside ``path`` (its own, owner-only)
        and links it into place only when complete. ``FileExistsError`` when ``path`` exists by then: a table
        is never replaced."""
        folder = path.parent
        tmp = None
        try:
            _owner_only_folder(folder)
            # mkstemp: a name no other process uses, created 0600 (SQLite gives its -wal and -shm files that mode).
            fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".building", dir=folder)
            os.close(fd)
            tmp = Path(tmp_name)
            with _sqlite_errors(path, "cannot write the UUID table"):
                connection = cls._connect(tmp)
                try:
                    connection.executescript(_SCHEMA)
                    connection.execute(f"PRAGMA user_version={_FORMAT_VERSION}")
                    if entries:
                        cls(connection, path)._insert(entries)
                    connection.execute("PRAGMA journal_mode=DELETE")  # fold the WAL in before the move
                finally:
                    connection.close()
            _link_into_place(tmp, path)
        except FileExistsError:
            raise
        except OSError as error:
            raise UuidTableError(f"cannot write the UUID table: {describe_os_error(error)}", path=path) from error
        finally:
            if tmp is not None:
                for leftover in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
                    with contextlib.suppress(OSError):
                        leftover.unlink(missing_ok=True)

    @classmethod
    def _open(cls, path: Path) -> "UuidTable":
        _owner_only(path.parent, FOLDER_MODE)
        for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            _owner_only(file, FILE_MODE)  # tables made before they were owner-only are closed too
        if path.stat().st_size == 0:  # SQLite would take it for a new database, and write to it
            raise _not_a_table(path)
        with _sqlite_errors(path, "cannot open the UUID table"):
            connection = cls._connect(path)
        _check_format(connection, path)
        return cls(connection, path)

    @classmethod
    def _open_read_only(cls, path: Path) -> "UuidTable":
        """A connection that never writes. When no write is pending in a WAL file (the table's writers end by
        folding it in), the table is read as an unchanging file: safe, because the data-root lock keeps every
        writer out while a stage runs, and SQLite then creates nothing beside it (opened merely read-only, a WAL
        table gets -wal and -shm files that the reader cannot remove again), so ``UUIDs/`` is left as it was,
        read-only or not. A pending write (a writer that was killed) is read through the WAL, which needs a
        folder SQLite may write its shared-memory file to."""
        wal = path.with_name(path.name + "-wal")
        pending = wal.exists() and wal.stat().st_size > 0
        uri = f"{path.resolve().as_uri()}?{'mode=ro' if pending else 'immutable=1'}"
        with _sqlite_errors(path, "cannot open the UUID table"):
            connection = sqlite3.connect(uri, uri=True, isolation_level=None)
        _check_format(connection, path)
        return cls(connection, path)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "UuidTable":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- reading and adding -----------------------------------------------------------------------------

    def _load(self) -> dict[str, str]:
        if self._by_key is None:
            with _sqlite_errors(self.path, "cannot read the UUID table"):
                self._by_key = dict(self._db.execute("SELECT key, uuid FROM phone_uuids ORDER BY seq"))
        return self._by_key

    def __len__(self) -> int:
        with _sqlite_errors(self.path, "cannot read the UUID table"):
            count: int = self._db.execute("SELECT COUNT(*) FROM phone_uuids").fetchone()[0]
            return count

    def uuids_for_keys(self, keys: Iterable[str]) -> dict[str, str]:
        """The id of every key, adding the keys not yet in the table (one transaction for the batch).

        Keys must already be normalised (:func:`urn_key`); the result maps each distinct key to its id.
        """
        by_key = self._load()
        result: dict[str, str] = {}
        new: list[tuple[str, str]] = []
        for key in keys:
            if key in result:
                continue
            existing = by_key.get(key)
            if existing is None:
                existing = UUID_PREFIX + str(uuid.uuid4())
                new.append((key, existing))
                by_key[key] = existing
            result[key] = existing
        if new:
            try:
                self._insert(new)
            except BaseException:
                self._by_key = None  # the in-memory copy may hold ids that were not stored
                raise
        return result

    def uuids_for_urns(self, urns: Iterable[str]) -> dict[str, str]:
        """The id of every URN (normalised with :func:`urn_key`), adding new ones."""
        urn_list = list(urns)
        keys = {urn: urn_key(urn) for urn in urn_list}
        ids = self.uuids_for_keys(keys.values())
        return {urn: ids[key] for urn, key in keys.items()}

    def keys_for_uuids(self, uuids: Iterable[str]) -> dict[str, str]:
        """The key (normalised number or whole URN) behind each id; an unknown id is an error. Only these ids
        are read from the table (by its index on the ids, a few hundred per query)."""
        wanted = list(dict.fromkeys(uuids))
        found: dict[str, str] = {}
        with _sqlite_errors(self.path, "cannot read the UUID table"):
            for start in range(0, len(wanted), _IDS_PER_QUERY):
                batch = wanted[start:start + _IDS_PER_QUERY]
                query = f"SELECT uuid, key FROM phone_uuids WHERE uuid IN ({', '.join('?' * len(batch))})"
                found.update(self._db.execute(query, batch))
        for uid in wanted:
            if uid not in found:
                raise UuidTableError(f"the uid {shown_in_message(uid)} is not in the table (were the raw files made "
                                     "with another UUID table?)", path=self.path)
        return {uid: found[uid] for uid in wanted}

    def _insert(self, entries: list[tuple[str, str]]) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("INSERT INTO phone_uuids (key, uuid) VALUES (?, ?)", entries)
            self._db.execute("COMMIT")
        except sqlite3.IntegrityError as error:
            self._db.execute("ROLLBACK")
            raise UuidTableError(f"duplicate key or id while adding to the table ({error})", path=self.path) from None
        except sqlite3.Error as error:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise _table_error(self.path, "cannot add to the UUID table", error) from error

    # -- 2019 JSON form ---------------------------------------------------------------------------------

    def import_json(self, json_path: str | Path) -> int:
        """Adds every entry of a 2019 ``phone_uuids.json`` keeping its id; returns how many were new.

        An entry whose key is present with another id, or whose id belongs to another key, is an error
        (nothing is imported then).
        """
        entries = _read_json_table(Path(json_path))
        by_key = self._load()
        known_ids = {u: k for k, u in by_key.items()}
        new = []
        for key, uid in entries:
            if key in by_key:
                if by_key[key] != uid:
                    raise UuidTableError(
                        "a number in the file already has another id in the table", path=json_path, record=uid
                    )
                continue
            if uid in known_ids:
                raise UuidTableError("this id already belongs to another number", path=json_path, record=uid)
            new.append((key, uid))
            known_ids[uid] = key
        self._insert(new)
        self._by_key = None
        return len(new)

    def export_json(self, json_path: str | Path) -> None:
        """Writes the table in the 2019 JSON form (insertion order, ``json.dumps`` defaults, no newline) to a new
        file: an existing file is refused (it may be the table itself, or another project's export)."""
        if os.path.lexists(json_path):
            raise UuidTableError("exists already; the export writes a new file only (choose another name, or move "
                                 "the file away first)", path=json_path)
        try:
            atomic_write_text(json_path, json.dumps(dict(self._load())), owner_only=True)
        except OSError as error:
            raise UuidTableError(f"cannot write the export: {describe_os_error(error)}", path=json_path) from error


def _check_format(connection: sqlite3.Connection, path: Path) -> None:
    """Closes ``connection`` and refuses the file unless it is a UUID table of the format this code reads."""
    try:
        with _sqlite_errors(path, "cannot open the UUID table"):
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if connection.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'phone_uuids'"
                                  ).fetchone() is None:
                raise _not_a_table(path)
            connection.execute("SELECT seq, key, uuid FROM phone_uuids LIMIT 1").fetchall()
        if version != _FORMAT_VERSION:
            raise UuidTableError(f"unknown UUID table format version {version}", path=path)
    except UuidTableError:
        connection.close()
        raise


def _not_a_table(path: Path) -> UuidTableError:
    return UuidTableError("not a UUID table (an empty file, or another database); restore the table from a backup: "
                          "it is the only link between people and their ids", path=path)


def _table_error(path: Path, doing: str, error: sqlite3.Error) -> UuidTableError:
    if sqlite_file_is_damaged(error):
        return UuidTableError(
            f"the UUID table is damaged ({error}); restore it from a backup: it is the only link between people "
            "and their ids",
            path=path,
        )
    return UuidTableError(f"{doing}: {describe_sqlite_error(error, path)}", path=path)


@contextlib.contextmanager
def _sqlite_errors(path: Path, doing: str) -> Iterator[None]:
    """SQLite failures (full disk, read-only folder, damaged page) as one-line UUID table errors naming it."""
    try:
        yield
    except sqlite3.Error as error:
        raise _table_error(path, doing, error) from error


def _link_into_place(tmp: Path, path: Path) -> None:
    """Gives the complete file ``tmp`` the name ``path`` unless ``path`` exists (``FileExistsError``): a hard
    link is atomic and never replaces; on a file system without hard links, a rename after a check."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        if path.exists():
            raise FileExistsError(errno.EEXIST, "exists", str(path)) from None
        os.rename(tmp, path)


class _JsonObject(list):
    """A JSON object read as its (key, value) pairs in file order, repeated keys included (``json.loads`` keeps
    the last value of a repeated key, which would drop an id without a word)."""


def _read_json_table(path: Path) -> list[tuple[str, str]]:
    """The (number, id) entries of a 2019 ``phone_uuids.json``, in file order. Every entry must be one stage 2
    can find again: a number in the table's own form (:func:`urn_key`: digits only without leading zeros, or a
    non-phone URN; or 2019's empty key), given once, with an id given once. Errors name the entry by its position,
    never its number."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_JsonObject)
    except UnicodeDecodeError as error:
        raise UuidTableError(f"not UTF-8 text ({error.reason} at byte {error.start})", path=path) from None
    except OSError as error:
        raise UuidTableError(f"cannot read the 2019 UUID table: {describe_os_error(error)}", path=path) from None
    except json.JSONDecodeError as error:
        raise UuidTableError(f"cannot read the 2019 UUID table ({error})", path=path) from None
    if not isinstance(data, _JsonObject):
        raise UuidTableError("expected a JSON object mapping phone numbers to ids", path=path)
    entries = []
    seen: set[str] = set()
    numbers: set[str] = set()
    for index, (key, uid) in enumerate(data):
        if not isinstance(uid, str) or not uid.startswith(UUID_PREFIX):
            raise UuidTableError(f"expected an id starting with {UUID_PREFIX!r}", path=path, record=f"#{index}")
        if uid in seen:
            raise UuidTableError("this id is given to an earlier number too", path=path, record=f"#{index}")
        if key in numbers:
            raise UuidTableError("this number is given an id earlier in the file too (each number has one id)",
                                 path=path, record=f"#{index}")
        try:
            in_table_form = urn_key(key) == key
        except UuidTableError:  # no digits, an empty URN
            # 2019 kept the digits of any URN, so a contact known by a URN without digits got the key "": kept as
            # it was (stage 2 never looks it up).
            in_table_form = key == ""
        if not in_table_form:
            raise UuidTableError(
                "the number is not in the table's form (digits only, without a leading + or 0, or a URN such as "
                "telegram:...), so stage 2 would never find it and would give its person a new id; write it in "
                "that form (it is not shown here)", path=path, record=f"#{index}")
        seen.add(uid)
        numbers.add(key)
        entries.append((key, uid))
    return entries
