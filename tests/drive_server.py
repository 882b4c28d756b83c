"""A local Google Drive v3-compatible HTTP server, a token endpoint, and fake service-account keys.

Tests run the real ``googleapiclient`` Drive client and the real ``google-auth`` service-account flow against
this server on 127.0.0.1, so no request leaves the machine. The server keeps folders, files and their
revisions in memory and implements the part of Drive v3 the pipeline uses:

| request | what it does |
| --- | --- |
| ``POST /token`` | answers a service-account JWT exchange with the access token ``test-token`` |
| ``GET /drive/v3/files?q=..`` | search (``name =``, ``mimeType =``/``!=``, ``'<id>' in parents``, ``trashed =``, |
| | ``sharedWithMe``, joined by ``and``); pages with ``nextPageToken`` |
| ``GET /drive/v3/files/<id>`` | file metadata (``root`` is the service account's own My Drive) |
| ``GET /drive/v3/drives?q=name = '..'`` | Shared Drives the service account is a member of |
| ``POST /drive/v3/files`` | metadata-only create (folders) |
| ``PATCH /drive/v3/files/<id>``, ``DELETE`` | metadata update (rename, trash), delete |
| ``POST /upload/drive/v3/files?uploadType=resumable|multipart`` | create with content |
| ``PATCH /upload/drive/v3/files/<id>?uploadType=resumable|multipart`` | new revision of a file |
| ``PUT <session URL>`` | resumable upload content (``Content-Range``; 308 for partial chunks) |

As in Drive, a service account has no storage of its own: creating a (non-folder) file outside a Shared
Drive fails with 403 ``storageQuotaExceeded`` unless ``enforce_service_account_quota=False``. A PUT to a
completed upload session answers with the finished file again, so a client resending its last chunk does not
create a second file.

``fail(operation, ...)`` injects faults into the next matching requests: an HTTP error (500, 503, 429,
403 ``rateLimitExceeded``, ...), a dropped connection, or a response that never comes (the client times out);
with ``apply=True`` the request takes effect first and only its response is lost; with ``after=n`` the first n
matching requests go through (the second chunk of an upload fails, say). Operation names:
``token``, ``files.list``, ``files.get``, ``drives.list``, ``files.create`` (metadata or multipart create),
``files.create.start`` / ``files.create.upload`` (resumable create: session start / content PUT),
``files.update``, ``files.update.start`` / ``files.update.upload``, ``files.delete``.
"""

from __future__ import annotations

import base64
import email.parser
import itertools
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "FOLDER_MIME_TYPE",
    "TEST_ACCESS_TOKEN",
    "TEST_CLIENT_EMAIL",
    "DriveServer",
    "FakeFile",
    "RecordedRequest",
    "StorageEmulator",
    "make_service_account_key",
]

FOLDER_MIME_TYPE = "application/vnd.google-apps.folder"
TEST_ACCESS_TOKEN = "test-token"
TEST_CLIENT_EMAIL = "pipeline-test@example-project.iam.gserviceaccount.com"

_QUOTA_MESSAGE = (
    "Service Accounts do not have storage quota. Leverage shared drives "
    "(https://developers.google.com/workspace/drive/api/guides/about-shareddrives), or use OAuth delegation "
    "(http://support.google.com/a/answer/7281227) instead."
)
_DEFAULT_REASONS = {
    400: ("badRequest", "Bad Request"),
    401: ("authError", "Invalid Credentials"),
    403: ("rateLimitExceeded", "Rate Limit Exceeded"),
    404: ("notFound", "File not found"),
    429: ("rateLimitExceeded", "Too Many Requests"),
    500: ("backendError", "Internal Error"),
    503: ("backendError", "Service Unavailable"),
}


def make_service_account_key(
    token_uri: str, *, client_email: str = TEST_CLIENT_EMAIL, key_size: int = 2048
) -> dict[str, str]:
    """A service-account key with a freshly generated RSA key, in the layout of a real Google key file.

    Nothing in it is real: the key is made for this test run and ``token_uri`` points at a local stub.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private_key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    pem = private_key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    ).decode("ascii")
    return {
        "type": "service_account",
        "project_id": "example-project",
        "private_key_id": "0123456789abcdef0123456789abcdef01234567",
        "private_key": pem,
        "client_email": client_email,
        "client_id": "100000000000000000001",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/pipeline-test",
    }


@dataclass
class FakeFile:
    """One Drive item: a folder or a file with its revisions (newest last)."""

    id: str
    name: str
    mime_type: str
    parents: list[str]
    drive_id: str | None = None
    shared_with_me: bool = False
    trashed: bool = False
    is_drive_root: bool = False
    revisions: list[bytes] = field(default_factory=list)
    created_time: str = ""
    modified_time: str = ""

    @property
    def content(self) -> bytes:
        return self.revisions[-1] if self.revisions else b""

    def resource(self) -> dict[str, Any]:
        resource: dict[str, Any] = {
            "kind": "drive#file",
            "id": self.id,
            "name": self.name,
            "mimeType": self.mime_type,
            "parents": list(self.parents),
            "trashed": self.trashed,
            "createdTime": self.created_time,
            "modifiedTime": self.modified_time,
        }
        if self.drive_id is not None:
            resource["driveId"] = self.drive_id
        if self.mime_type != FOLDER_MIME_TYPE:
            resource["size"] = str(len(self.content))
        return resource


@dataclass(frozen=True)
class RecordedRequest:
    """What the server saw of one request (for assertions)."""

    operation: str
    method: str
    path: str
    query: dict[str, list[str]]
    authorization: str | None
    body: bytes


@dataclass
class _Fault:
    operation: str
    remaining: int
    skip: int  # matching requests let through before the fault starts
    status: int | None
    reason: str | None
    message: str | None
    apply: bool
    drop: bool
    hang: bool


@dataclass
class _UploadSession:
    kind: str  # "create" or "update"
    metadata: dict[str, Any]
    file_id: str | None
    mime_type: str
    total: int | None = None
    received: bytearray = field(default_factory=bytearray)
    done: bool = False


class _HttpError(Exception):
    def __init__(self, status: int, reason: str | None = None, message: str | None = None):
        default_reason, default_message = _DEFAULT_REASONS.get(status, ("error", "Error"))
        self.status = status
        self.reason = reason or default_reason
        self.message = message or default_message
        super().__init__(f"{status} {self.reason}")


class DriveServer:
    """An in-memory Drive v3 on 127.0.0.1 (port chosen by the system). Use as a context manager."""

    def __init__(
        self,
        *,
        page_size: int = 100,
        enforce_service_account_quota: bool = True,
        hang_seconds: float = 5.0,
        require_token: bool = True,
    ):
        self.page_size = page_size
        self.enforce_service_account_quota = enforce_service_account_quota
        self.hang_seconds = hang_seconds
        self.require_token = require_token
        self.files: dict[str, FakeFile] = {}
        self.drives: dict[str, str] = {}  # Shared Drive id -> name
        self.requests: list[RecordedRequest] = []
        self.token_claims: list[dict[str, Any]] = []
        self._faults: list[_Fault] = []
        self._sessions: dict[str, _UploadSession] = {}
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._clock = itertools.count(1)
        self._release = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._add(FakeFile(id="root", name="My Drive", mime_type=FOLDER_MIME_TYPE, parents=[]))

    # ----------------------------------------------------------------------------------------- lifecycle
    def start(self) -> "DriveServer":
        server = self

        class Handler(_Handler):
            drive = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="drive-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "DriveServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Root URL to put in the discovery document (``rootUrl``), ending with ``/``."""
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/"

    @property
    def token_uri(self) -> str:
        return self.url + "token"

    # -------------------------------------------------------------------------------------- test set-up
    def add_shared_drive(self, name: str) -> str:
        """A Shared Drive the service account is a member of; returns its id (also its root folder's id)."""
        with self._lock:
            drive_id = self._new_id("drive")
            self.drives[drive_id] = name
            self._add(
                FakeFile(
                    id=drive_id,
                    name=name,
                    mime_type=FOLDER_MIME_TYPE,
                    parents=[],
                    drive_id=drive_id,
                    is_drive_root=True,
                )
            )
            return drive_id

    def add_folder(self, name: str, *, parent: str | None = None, shared_with_me: bool = False) -> str:
        """A folder; without ``parent`` it is a person's folder, usually ``shared_with_me`` the service account."""
        return self._add_item(name, FOLDER_MIME_TYPE, parent, shared_with_me, b"")

    def add_file(self, name: str, content: bytes, *, parent: str, mime_type: str = "text/csv") -> str:
        """A file made by a person (bypasses the service-account quota rule)."""
        return self._add_item(name, mime_type, parent, False, content)

    def trash(self, file_id: str) -> None:
        with self._lock:
            self.files[file_id].trashed = True

    def children(self, folder_id: str, *, include_trashed: bool = False) -> list[FakeFile]:
        with self._lock:
            return [
                item
                for item in self.files.values()
                if folder_id in item.parents and (include_trashed or not item.trashed)
            ]

    def child(self, folder_id: str, name: str) -> FakeFile:
        """The one visible item called ``name`` in the folder (asserts there is exactly one)."""
        matches = [item for item in self.children(folder_id) if item.name == name]
        assert len(matches) == 1, f"{len(matches)} items named {name!r} in {folder_id}"
        return matches[0]

    def fail(
        self,
        operation: str,
        *,
        status: int | None = None,
        reason: str | None = None,
        message: str | None = None,
        times: int = 1,
        apply: bool = False,
        drop: bool = False,
        hang: bool = False,
        after: int = 0,
    ) -> None:
        """Makes the next ``times`` requests of ``operation`` fail, once ``after`` of them have been let through
        (see the module docstring)."""
        if status is None and not drop and not hang:
            raise ValueError("give a status, drop=True or hang=True")
        with self._lock:
            self._faults.append(_Fault(operation, times, after, status, reason, message, apply, drop, hang))

    def operations(self) -> list[str]:
        """The operation name of every request received so far, in order."""
        with self._lock:
            return [request.operation for request in self.requests]

    # ----------------------------------------------------------------------------------------- internals
    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):04d}"

    def _now(self) -> str:
        moment = datetime(2024, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=next(self._clock))
        return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")

    def _add(self, item: FakeFile) -> FakeFile:
        stamp = self._now()
        item.created_time = item.created_time or stamp
        item.modified_time = item.modified_time or stamp
        self.files[item.id] = item
        return item

    def _add_item(
        self, name: str, mime_type: str, parent: str | None, shared_with_me: bool, content: bytes
    ) -> str:
        with self._lock:
            drive_id = self.files[parent].drive_id if parent is not None else None
            item = FakeFile(
                id=self._new_id("folder" if mime_type == FOLDER_MIME_TYPE else "file"),
                name=name,
                mime_type=mime_type,
                parents=[parent] if parent is not None else [],
                drive_id=drive_id,
                shared_with_me=shared_with_me,
                revisions=[] if mime_type == FOLDER_MIME_TYPE else [content],
            )
            return self._add(item).id

    def _take_fault(self, operation: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.operation == operation and fault.remaining > 0:
                    if fault.skip:
                        fault.skip -= 1
                        return None
                    fault.remaining -= 1
                    return fault
            return None

    def _get(self, file_id: str) -> FakeFile:
        item = self.files.get(file_id)
        if item is None:
            raise _HttpError(404, "notFound", f"File not found: {file_id}.")
        return item

    def _check_can_create(self, parents: list[str], mime_type: str) -> None:
        for parent in parents:
            self._get(parent)
        if not self.enforce_service_account_quota or mime_type == FOLDER_MIME_TYPE:
            return
        if not parents or any(self.files[parent].drive_id is None for parent in parents):
            raise _HttpError(403, "storageQuotaExceeded", _QUOTA_MESSAGE)

    def _create(self, metadata: dict[str, Any], content: bytes, mime_type: str | None) -> FakeFile:
        parents = list(metadata.get("parents") or ["root"])
        kind = metadata.get("mimeType") or mime_type or "application/octet-stream"
        self._check_can_create(parents, kind)
        item = FakeFile(
            id=self._new_id("folder" if kind == FOLDER_MIME_TYPE else "file"),
            name=str(metadata.get("name") or "Untitled"),
            mime_type=kind,
            parents=parents,
            drive_id=self.files[parents[0]].drive_id,
            revisions=[] if kind == FOLDER_MIME_TYPE else [content],
        )
        return self._add(item)

    def _update(self, file_id: str, metadata: dict[str, Any], content: bytes | None) -> FakeFile:
        item = self._get(file_id)
        if "name" in metadata:
            item.name = str(metadata["name"])
        if "trashed" in metadata:
            item.trashed = bool(metadata["trashed"])
        if "mimeType" in metadata:  # writable on update, as in Drive v3
            item.mime_type = str(metadata["mimeType"])
        if content is not None:
            item.revisions.append(content)
        item.modified_time = self._now()
        return item

    def _search(self, q: str | None) -> list[FakeFile]:
        predicates = _parse_query(q or "")
        return [
            item
            for item in self.files.values()
            if item.id != "root" and not item.is_drive_root and all(test(item) for test in predicates)
        ]

    def _page(self, items: list[Any], query: dict[str, list[str]], key: str) -> dict[str, Any]:
        size = min(int(_one(query, "pageSize") or self.page_size), self.page_size)
        start = int(_one(query, "pageToken") or 0)
        page: dict[str, Any] = {key: items[start : start + size]}
        if start + size < len(items):
            page["nextPageToken"] = str(start + size)
        return page


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


# ------------------------------------------------------------------------------------------ query parser
_TOKEN = re.compile(r"\s*(?:(?P<string>'(?:[^'\\]|\\.)*')|(?P<op>!=|=)|(?P<word>[A-Za-z_]+))")


def _unescape(literal: str) -> str:
    return re.sub(r"\\(.)", r"\1", literal[1:-1])


def _tokens(q: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(q):
        if q[position:].strip() == "":
            break
        match = _TOKEN.match(q, position)
        if match is None:
            raise _HttpError(400, "invalid", f"Invalid Value: cannot parse query at {q[position:]!r}")
        kind = match.lastgroup or ""
        text = match.group(kind)
        tokens.append((kind, _unescape(text) if kind == "string" else text))
        position = match.end()
    return tokens


def _parse_query(q: str) -> list[Callable[[FakeFile], bool]]:
    """Turns the supported subset of Drive's query language into predicates (all must hold)."""
    terms: list[list[tuple[str, str]]] = [[]]
    for token in _tokens(q):
        if token == ("word", "and"):
            terms.append([])
        else:
            terms[-1].append(token)
    predicates = []
    for term in terms:
        if not term and q.strip() == "":
            continue
        predicates.append(_predicate(term, q))
    return predicates


def _predicate(term: list[tuple[str, str]], q: str) -> Callable[[FakeFile], bool]:
    words = [value for _, value in term]
    kinds = [kind for kind, _ in term]
    if kinds == ["string", "word", "word"] and words[1:] == ["in", "parents"]:
        parent = words[0]
        return lambda item: parent in item.parents
    if kinds == ["word"] and words[0] == "sharedWithMe":
        return lambda item: item.shared_with_me
    if kinds == ["word", "op", "word"] and words[0] in ("trashed", "sharedWithMe") and words[2] in ("true", "false"):
        wanted = words[2] == "true"
        attribute = "trashed" if words[0] == "trashed" else "shared_with_me"
        if words[1] == "!=":
            return lambda item: getattr(item, attribute) != wanted
        return lambda item: getattr(item, attribute) == wanted
    if kinds == ["word", "op", "string"] and words[0] in ("name", "mimeType"):
        attribute = "name" if words[0] == "name" else "mime_type"
        value = words[2]
        if words[1] == "!=":
            return lambda item: getattr(item, attribute) != value
        return lambda item: getattr(item, attribute) == value
    raise _HttpError(400, "invalid", f"Invalid Value: unsupported query term {' '.join(words)!r} in {q!r}")


# ------------------------------------------------------------------------------------------------ handler
class _Handler(BaseHTTPRequestHandler):
    drive: DriveServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this, delayed ACKs add ~40 ms per request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test output
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # --------------------------------------------------------------------------------------- plumbing
    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        route, operation = self._route(method, parts.path, query)
        drive = self.drive
        with drive._lock:
            drive.requests.append(
                RecordedRequest(operation, method, parts.path, query, self.headers.get("Authorization"), body)
            )
        fault = drive._take_fault(operation)
        try:
            if operation != "token" and drive.require_token:
                if self.headers.get("Authorization") != f"Bearer {TEST_ACCESS_TOKEN}":
                    raise _HttpError(401, "authError", "Request had invalid authentication credentials.")
            if fault is not None and not fault.apply:
                self._fail(fault)
                return
            with drive._lock:
                status, payload, headers = route(parts.path, query, body)
            if fault is not None:
                self._fail(fault)
                return
            self._send(status, payload, headers)
        except _HttpError as error:
            self._send(error.status, _error_body(error), {})

    def _fail(self, fault: _Fault) -> None:
        if fault.hang:
            self.drive._release.wait(self.drive.hang_seconds)
        if fault.drop or fault.hang:
            self.close_connection = True
            return
        assert fault.status is not None
        error = _HttpError(fault.status, fault.reason, fault.message)
        if fault.operation == "token":  # OAuth 2.0's error body (RFC 6749 5.2), not Drive's
            self._send(fault.status, {"error": error.reason, "error_description": error.message}, {})
            return
        self._send(fault.status, _error_body(error), {})

    def _send(self, status: int, payload: Any, headers: dict[str, str]) -> None:
        data = b"" if payload is None else json.dumps(payload).encode("utf-8")
        try:
            self.send_response(status)
            if payload is not None:
                self.send_header("Content-Type", "application/json; charset=UTF-8")
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _route(
        self, method: str, path: str, query: dict[str, list[str]]
    ) -> tuple[Callable[..., tuple[int, Any, dict[str, str]]], str]:
        upload_type = _one(query, "uploadType")
        if method == "POST" and path == "/token":
            return self._token, "token"
        if path == "/drive/v3/drives" and method == "GET":
            return self._drives_list, "drives.list"
        if path == "/drive/v3/files":
            if method == "GET":
                return self._files_list, "files.list"
            if method == "POST":
                return self._files_create, "files.create"
        match = re.fullmatch(r"/drive/v3/files/([^/]+)", path)
        if match:
            if method == "GET":
                return self._files_get, "files.get"
            if method == "PATCH":
                return self._files_patch, "files.update"
            if method == "DELETE":
                return self._files_delete, "files.delete"
        upload = re.fullmatch(r"/upload/drive/v3/files(?:/([^/]+))?", path)
        if upload:
            is_update = upload.group(1) is not None
            if method == "PUT" and _one(query, "upload_id"):
                session = self.drive._sessions.get(_one(query, "upload_id") or "")
                kind = session.kind if session is not None else "create"
                return self._upload_put, f"files.{kind}.upload"
            if upload_type == "resumable" and method in ("POST", "PATCH"):
                return self._upload_start, "files.update.start" if is_update else "files.create.start"
            if upload_type in ("multipart", "media") and method in ("POST", "PATCH"):
                return self._upload_multipart, "files.update" if is_update else "files.create"
        return self._unknown, f"{method} {path}"

    # ------------------------------------------------------------------------------------------ routes
    def _unknown(self, path: str, query: dict[str, list[str]], body: bytes) -> tuple[int, Any, dict[str, str]]:
        raise _HttpError(404, "notFound", f"No such endpoint on the fake Drive server: {path}")

    def _token(self, path: str, query: dict[str, list[str]], body: bytes) -> tuple[int, Any, dict[str, str]]:
        form = parse_qs(body.decode("ascii"))
        assertion = (form.get("assertion") or [""])[0]
        segments = assertion.split(".")
        if _one(form, "grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" or len(segments) != 3:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT."}, {}
        padded = segments[1] + "=" * (-len(segments[1]) % 4)
        self.drive.token_claims.append(json.loads(base64.urlsafe_b64decode(padded)))
        return 200, {"access_token": TEST_ACCESS_TOKEN, "expires_in": 3600, "token_type": "Bearer"}, {}

    def _files_list(self, path: str, query: dict[str, list[str]], body: bytes) -> tuple[int, Any, dict[str, str]]:
        items = [item.resource() for item in self.drive._search(_one(query, "q"))]
        page = self.drive._page(items, query, "files")
        page["kind"] = "drive#fileList"
        return 200, page, {}

    def _drives_list(self, path: str, query: dict[str, list[str]], body: bytes) -> tuple[int, Any, dict[str, str]]:
        q = (_one(query, "q") or "").strip()
        wanted = None
        if q:
            match = re.fullmatch(r"name\s*=\s*('(?:[^'\\]|\\.)*')", q)
            if match is None:
                raise _HttpError(400, "invalid", f"Invalid Value: unsupported drives query {q!r}")
            wanted = _unescape(match.group(1))
        drives = [
            {"kind": "drive#drive", "id": drive_id, "name": name}
            for drive_id, name in self.drive.drives.items()
            if wanted is None or name == wanted
        ]
        page = self.drive._page(drives, query, "drives")
        page["kind"] = "drive#driveList"
        return 200, page, {}

    def _files_get(self, path: str, query: dict[str, list[str]], body: bytes) -> tuple[int, Any, dict[str, str]]:
        return 200, self.drive._get(path.rsplit("/", 1)[1]).resource(), {}

    def _files_create(self, path: str, query: dict[str, list[str]], body: bytes) -> tuple[int, Any, dict[str, str]]:
        metadata = json.loads(body or b"{}")
        return 200, self.drive._create(metadata, b"", None).resource(), {}

    def _files_patch(self, path: str, query: dict[str, list[str]], body: bytes) -> tuple[int, Any, dict[str, str]]:
        metadata = json.loads(body or b"{}")
        return 200, self.drive._update(path.rsplit("/", 1)[1], metadata, None).resource(), {}

    def _files_delete(self, path: str, query: dict[str, list[str]], body: bytes) -> tuple[int, Any, dict[str, str]]:
        file_id = path.rsplit("/", 1)[1]
        self.drive._get(file_id)
        del self.drive.files[file_id]
        return 204, None, {}

    def _upload_start(self, path: str, query: dict[str, list[str]], body: bytes) -> tuple[int, Any, dict[str, str]]:
        drive = self.drive
        metadata = json.loads(body) if body.strip() else {}
        mime_type = self.headers.get("X-Upload-Content-Type") or "application/octet-stream"
        file_id = path.rsplit("/", 1)[1] if path.count("/") == 5 else None
        if file_id is None:
            drive._check_can_create(list(metadata.get("parents") or ["root"]), metadata.get("mimeType") or mime_type)
            kind = "create"
        else:
            drive._get(file_id)
            kind = "update"
        session_id = drive._new_id("upload")
        total = self.headers.get("X-Upload-Content-Length")
        drive._sessions[session_id] = _UploadSession(
            kind, metadata, file_id, mime_type, int(total) if total is not None else None
        )
        location = f"{drive.url}upload/drive/v3/files{'/' + file_id if file_id else ''}"
        location += f"?uploadType=resumable&upload_id={session_id}"
        return 200, None, {"Location": location}

    def _upload_put(self, path: str, query: dict[str, list[str]], body: bytes) -> tuple[int, Any, dict[str, str]]:
        drive = self.drive
        session = drive._sessions.get(_one(query, "upload_id") or "")
        if session is None:
            raise _HttpError(404, "notFound", "Upload session not found.")
        if session.done:  # a resent last chunk: answer with the finished file again
            assert session.file_id is not None
            return 200, drive._get(session.file_id).resource(), {}
        content_range = self.headers.get("Content-Range")
        if content_range:
            match = re.fullmatch(r"bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)", content_range.strip())
            if match is None:
                raise _HttpError(400, "badRequest", f"Bad Content-Range {content_range!r}")
            first, last, total = match.groups()
            if total != "*":
                session.total = int(total)
            if first is not None:
                if int(first) != len(session.received):
                    raise _HttpError(400, "badRequest", "Chunk does not start where the upload stopped.")
                session.received.extend(body)
        else:
            session.received.extend(body)
            session.total = len(session.received)
        if session.total is None or len(session.received) < session.total:
            headers = {"Range": f"bytes=0-{len(session.received) - 1}"} if session.received else {}
            return 308, None, headers
        content = bytes(session.received)
        if session.kind == "create":
            item = drive._create(session.metadata, content, session.mime_type)
            session.file_id = item.id
        else:
            assert session.file_id is not None
            item = drive._update(session.file_id, session.metadata, content)
        session.done = True
        return 200, item.resource(), {}

    def _upload_multipart(
        self, path: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        file_id = path.rsplit("/", 1)[1] if path.count("/") == 5 else None
        content_type = self.headers.get("Content-Type") or ""
        metadata: dict[str, Any] = {}
        if content_type.startswith("multipart/"):
            message = email.parser.BytesParser().parsebytes(
                b"Content-Type: " + content_type.encode("ascii") + b"\r\n\r\n" + body
            )
            parts = message.get_payload()
            assert isinstance(parts, list) and len(parts) == 2, "expected metadata and media parts"
            metadata = json.loads(parts[0].get_payload(decode=True) or b"{}")
            content = parts[1].get_payload(decode=True) or b""
            mime_type = parts[1].get_content_type()
        else:
            content, mime_type = body, content_type
        if file_id is None:
            return 200, self.drive._create(metadata, content, mime_type).resource(), {}
        return 200, self.drive._update(file_id, metadata, content).resource(), {}


def _error_body(error: _HttpError) -> dict[str, Any]:
    domain = "usageLimits" if error.reason.endswith(("RateLimitExceeded", "rateLimitExceeded")) else "global"
    return {
        "error": {
            "code": error.status,
            "message": error.message,
            "errors": [{"domain": domain, "reason": error.reason, "message": error.message}],
        }
    }


class StorageEmulator:
    """gcp-storage-emulator in memory on 127.0.0.1 (port chosen by the system), with one bucket.

    ``client()`` is a real ``google.cloud.storage.Client`` pointed at it with anonymous credentials.
    """

    def __init__(self, bucket: str = "avf-credentials"):
        from gcp_storage_emulator.server import create_server

        self.bucket = bucket
        self._server = create_server("127.0.0.1", 0, in_memory=True, default_bucket=bucket)

    def __enter__(self) -> "StorageEmulator":
        self._server.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.stop()

    @property
    def url(self) -> str:
        # The emulator does not expose the port it bound; its HTTP server object does.
        return "http://127.0.0.1:%d" % self._server._api._httpd.server_address[1]

    def client(self) -> Any:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(
            project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": self.url}
        )

    def put(self, object_name: str, data: bytes) -> str:
        """Stores ``data`` and returns its ``gs://`` URL."""
        self.client().bucket(self.bucket).blob(object_name).upload_from_string(data)
        return f"gs://{self.bucket}/{object_name}"
