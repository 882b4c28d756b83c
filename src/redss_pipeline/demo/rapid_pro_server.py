"""A local HTTP server that speaks enough of Rapid Pro's API v2 for the real ``temba_client`` to read a
synthetic workspace: the offline demo's Rapid Pro, and the fixture of the fetch-stage tests and benchmarks.

What it implements (rapid-pro.md sections 1, 6.4 and 7): ``GET /api/v2/{flows,runs,contacts,archives,fields}.json``
with the filters the pipeline uses, ``/api/v2/org.json``, and the gzipped JSON Lines archive files behind each
archive's ``download_url`` (served without a token, like pre-signed storage URLs). With a workspace of the
``real`` shapes, objects are rendered as real servers send them (``demo.api_shapes``), the archive listing
honours only ``archive_type`` and pages by ``limit``/``offset``, and archive files live on a second local host
(127.0.0.2, or another port) that answers 400 to a request carrying an ``Authorization`` header and 403 to an
expired link (``archive_link_seconds``). Runs a workspace holds back (late commits) become visible right after
the server has served a page of their flow's runs. ``RedirectingFront`` is a front that redirects every request
to another host. Lists are newest
``modified_on`` first (ties: larger id first), oldest first with ``reverse``; ``after`` and ``before`` are
inclusive. Pages are cut by an opaque keyset cursor, so a page costs two bisects whatever the workspace size,
and ``next`` is an absolute URL repeating every original filter. A wrong or missing ``Authorization: Token``
header gets 403, an unknown route 404.

Tests steer it through two attributes: ``faults`` injects throttling (429 with or without ``Retry-After``),
server errors, dropped connections and stalls, optionally only after N matching requests so that a fetch
breaks half way; ``requests`` is the log of every request (method, host, path, query, status, and whether it
carried an ``Authorization`` header). ``next_link_root`` makes ``next`` links point to another origin.

In-process::

    with RapidProServer(generate_workspace(seed=1, size=2000), token="secret", page_size=50) as server:
        runs = TembaClient(server.url, "secret").get_runs(flow=flow_uuid).all()

From the command line (the token from ``--token-file`` or ``RAPID_PRO_TOKEN``, never printed)::

    python -m redss_pipeline.demo.rapid_pro_server --seed 1 --size 2000 [--port N] [--page-size N]
        [--shapes real|superset] [--anonymous masked|empty] [--late-commits N] [--redirect-front]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import json
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from redss_pipeline.core.errors import UsageError
from redss_pipeline.demo.api_shapes import real_archive, real_contact, real_run, urns_as_served
from redss_pipeline.demo.synthetic_workspace import (
    ANONYMOUS_MODES,
    SHAPES,
    SHAPES_REAL,
    Workspace,
    format_timestamp,
    generate_workspace,
    parse_timestamp,
)

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "TOKEN_ENVIRONMENT_VARIABLE",
    "LoggedRequest",
    "Fault",
    "FaultPlan",
    "RapidProServer",
    "RedirectingFront",
    "main",
]

DEFAULT_PAGE_SIZE = 250
"""The page size of the 2019-2020 Rapid Pro server."""
TOKEN_ENVIRONMENT_VARIABLE = "RAPID_PRO_TOKEN"
"""Where the command line looks for the API token when ``--token-file`` is not given."""

_API_PREFIX = "/api/v2/"
_ARCHIVE_PREFIX = "/archive-files/"
_STORAGE_HOST = "127.0.0.2"
_TRUE = ("1", "true", "yes", "y", "on")


@dataclass(frozen=True)
class LoggedRequest:
    """One request the server received. ``query`` holds the last value of each parameter; ``status`` is
    None when an injected fault dropped the connection. ``host`` is the ``host:port`` that received it (the
    API, or the archive storage); ``authorization`` says whether it carried an ``Authorization`` header."""

    method: str
    path: str
    query: Mapping[str, str]
    status: int | None
    host: str = ""
    authorization: bool = False


@dataclass
class Fault:
    """One injected fault (see ``FaultPlan.inject``); ``fired`` counts the requests it has broken."""

    path: str | None
    status: int | None
    retry_after: int | None
    drop_connection: bool
    stall_seconds: float
    times: int
    after_requests: int
    query: Mapping[str, str] | None
    seen: int = 0
    fired: int = 0

    @property
    def exhausted(self) -> bool:
        return self.fired >= self.times

    def _matches(self, path: str, query: Mapping[str, str]) -> bool:
        if self.path is not None and path != self.path and not (self.path.endswith("/") and path.startswith(self.path)):
            return False
        return all(query.get(k) == v for k, v in (self.query or {}).items())


class FaultPlan:
    """The faults a server will inject, in the order they were added. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def inject(
        self,
        *,
        path: str | None = None,
        status: int | None = None,
        retry_after: int | None = None,
        drop_connection: bool = False,
        stall_seconds: float = 0.0,
        times: int = 1,
        after_requests: int = 0,
        query: Mapping[str, str] | None = None,
    ) -> Fault:
        """Breaks the next ``times`` requests to ``path`` (any path when None; a path ending in ``/`` matches
        every path under it) whose query contains every item of ``query``, after letting ``after_requests``
        such requests through untouched.

        A broken request first waits ``stall_seconds``; then its connection is closed without an answer
        (``drop_connection``), or it is answered with ``status`` (with a ``Retry-After: retry_after`` header
        unless that is None), or, with neither, it is answered normally (a slow response).
        """
        if status is None and not drop_connection and stall_seconds <= 0:
            raise ValueError("a fault needs a status, drop_connection or stall_seconds")
        if status is not None and not 400 <= status <= 599:
            raise ValueError(f"a fault status must be an HTTP error status, got {status}")
        fault = Fault(path, status, retry_after, drop_connection, float(stall_seconds), times, after_requests,
                      dict(query) if query else None)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        """Forgets every fault, fired or not."""
        with self._lock:
            self._faults.clear()

    @property
    def pending(self) -> list[Fault]:
        """The faults that have not fired as often as they were told to."""
        with self._lock:
            return [f for f in self._faults if not f.exhausted]

    def _take(self, path: str, query: Mapping[str, str]) -> Fault | None:
        """The fault to apply to this request, if any, counting the request against every waiting fault."""
        chosen = None
        with self._lock:
            for fault in self._faults:
                if fault.exhausted or not fault._matches(path, query):
                    continue
                if fault.seen < fault.after_requests:
                    fault.seen += 1
                elif chosen is None:
                    fault.fired += 1
                    chosen = fault
        return chosen


class _ApiError(Exception):
    """An answer other than 200, with a DRF-style JSON body."""

    def __init__(self, status: int, body: Any):
        super().__init__(status)
        self.status = status
        self.body = body


def _bool(params: Mapping[str, str], name: str) -> bool | None:
    value = params.get(name)
    return None if value is None else value.strip().lower() in _TRUE


def _int(params: Mapping[str, str], name: str, default: int) -> int:
    value = params.get(name)
    if value is None or value == "":
        return default
    if not value.isdigit():
        raise _ApiError(400, {name: [f"A valid integer is required, not {value!r}."]})
    return int(value)


def _timestamp(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        return format_timestamp(parse_timestamp(value))
    except ValueError:
        raise _ApiError(400, {name: [f"Enter a valid datetime, not {value!r}."]}) from None


def _encode_cursor(position: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_cursor(params: Mapping[str, str], *, keyset: bool = True) -> Any:
    """The position a cursor encodes: a ``[sort value, number]`` key, or an offset when not ``keyset``.
    Django REST framework answers an unreadable cursor with 404 "Invalid cursor"; so does this server."""
    cursor = params.get("cursor")
    if not cursor:
        return None
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:
        position = None
    if keyset:
        valid = (isinstance(position, list) and len(position) == 2 and isinstance(position[0], str)
                 and isinstance(position[1], int))
    else:
        valid = isinstance(position, int) and position >= 0
    if not valid:
        raise _ApiError(404, {"detail": "Invalid cursor"})
    return position


class RapidProServer:
    """A Rapid Pro API v2-compatible server for ``workspace`` on 127.0.0.1 (``port`` 0 picks a free port).

    Use it as a context manager, or call ``start()`` and ``close()``. ``url`` is the root to give the
    client (``http://127.0.0.1:PORT``). ``workspace`` may be mutated while the server runs.
    """

    def __init__(
        self,
        workspace: Workspace,
        *,
        token: str,
        port: int = 0,
        page_size: int = DEFAULT_PAGE_SIZE,
        host: str = "127.0.0.1",
        archive_storage: bool | None = None,
        archive_link_seconds: float | None = None,
        clock: Callable[[], float] | None = None,
    ):
        """``archive_storage`` serves archive files from a second host (default: with the real shapes);
        ``archive_link_seconds`` makes archive links expire that long after the listing gave them; ``clock``
        (epoch seconds) is the server's time in its ``Date`` headers: the wall clock by default, or e.g.
        ``workspace.now`` for a workspace that is "on air" (its clock is its latest event)."""
        if not token:
            raise ValueError("the server needs a non-empty API token")
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {page_size}")
        self.workspace = workspace
        self.page_size = page_size
        self.faults = FaultPlan()
        #: When set (``http://127.0.0.2:PORT``), ``next`` links point there instead of to this server.
        self.next_link_root: str | None = None
        self.archive_link_seconds = archive_link_seconds
        self.clock = clock or time.time
        self._token_header = f"Token {token}"
        self._log: list[LoggedRequest] = []
        self._log_lock = threading.Lock()
        self._stopping = threading.Event()
        self._signing_key = os.urandom(16)
        self._httpd = _HttpServer((host, port), _Handler, self)
        self._storage: _HttpServer | None = None
        if workspace.shapes == SHAPES_REAL if archive_storage is None else archive_storage:
            self._storage = _storage_listener(self)
        self._threads: list[threading.Thread] = []

    # -- lifecycle -------------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{_address(self._httpd)}"

    @property
    def storage_url(self) -> str:
        """Where archive files are served: the second host, or this server."""
        if self._storage is None:
            return self.url
        return f"http://{_address(self._storage)}"

    def start(self) -> "RapidProServer":
        if not self._threads:
            for httpd in (self._httpd, self._storage):
                if httpd is None:
                    continue
                thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                          name=f"rapid-pro-server-{httpd.server_address[1]}", daemon=True)
                thread.start()
                self._threads.append(thread)
        return self

    def close(self) -> None:
        """Stops serving (waking any stalled request) and releases the ports."""
        self._stopping.set()
        for httpd in (self._httpd, self._storage):
            if httpd is not None and self._threads:
                httpd.shutdown()
        for thread in self._threads:
            thread.join()
        self._threads = []
        for httpd in (self._httpd, self._storage):
            if httpd is not None:
                httpd.server_close()

    def __enter__(self) -> "RapidProServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- request log -------------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[LoggedRequest]:
        """Every request received so far, oldest first."""
        with self._log_lock:
            return list(self._log)

    def request_count(self, path: str | None = None) -> int:
        """How many requests were made to ``path`` (e.g. ``/api/v2/runs.json``), or in all."""
        with self._log_lock:
            return sum(1 for r in self._log if path is None or r.path == path)

    def clear_requests(self) -> None:
        with self._log_lock:
            self._log.clear()

    # -- handling ----------------------------------------------------------------------------------------------

    def _handle(self, handler: "_Handler", method: str) -> None:
        parts = urlsplit(handler.path)
        path = parts.path
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        params = dict(pairs)
        host = _address(handler.server)
        authorization = handler.headers.get("Authorization") is not None
        fault = self.faults._take(path, params)
        if fault is not None and fault.stall_seconds > 0:
            self._stopping.wait(fault.stall_seconds)
        if fault is not None and fault.drop_connection:
            self._record(method, path, params, None, host, authorization)
            handler.drop()
            return
        headers: dict[str, str] = {}
        content_type = "application/json"
        if fault is not None and fault.status is not None:
            if fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
            status, content = fault.status, _json_bytes({"detail": f"Injected fault: HTTP {fault.status}"})
        else:
            try:
                if method != "GET":
                    handler.close_connection = True  # its body was not read, so the connection cannot be reused
                    raise _ApiError(405, {"detail": f'Method "{method}" not allowed.'})
                content, content_type, extra = self._route(handler, path, pairs, params)
                headers.update(extra)
                status = 200
            except _ApiError as error:
                status, content = error.status, _json_bytes(error.body)
            except Exception as error:  # a server bug: answer 500 so that the test sees it
                status, content = 500, _json_bytes({"detail": f"Server error: {type(error).__name__}: {error}"})
        flow = params.get("flow")
        if status == 200 and path == f"{_API_PREFIX}runs.json" and flow in self.workspace.pending_flows():
            # Runs stamped earlier but committed only now, after this page was made (a late commit). Committed
            # before the page is sent, so a client's next request, which may be handled in another thread as soon
            # as it has this answer, always sees them.
            self.workspace.commit_late_runs(flow)
        # Logged before answering, so a client that has its answer always finds its request in the log.
        self._record(method, path, params, status, host, authorization)
        handler.reply(status, content, content_type=content_type, headers=headers)

    def _record(self, method: str, path: str, params: Mapping[str, str], status: int | None, host: str = "",
                authorization: bool = False) -> None:
        with self._log_lock:
            self._log.append(LoggedRequest(method, path, params, status, host, authorization))

    def _route(self, handler: "_Handler", path: str, pairs: Sequence[tuple[str, str]],
               params: Mapping[str, str]) -> tuple[bytes, str, dict[str, str]]:
        on_storage = self._storage is not None and handler.server is self._storage
        if path.startswith(_ARCHIVE_PREFIX) and (on_storage or self._storage is None):
            return self._archive_download(handler, path[len(_ARCHIVE_PREFIX):], params)
        if on_storage or not path.startswith(_API_PREFIX) or not path.endswith(".json"):
            raise _ApiError(404, {"detail": "Not found."})
        endpoint = path[len(_API_PREFIX):-len(".json")]
        if endpoint not in _ENDPOINTS:
            raise _ApiError(404, {"detail": "Not found."})
        if handler.headers.get("Authorization") != self._token_header:
            raise _ApiError(403, {"detail": "Invalid token."})
        root = self.next_link_root or f"http://{handler.headers.get('Host') or self.url[len('http://'):]}"
        base = f"{root}{path}"
        with self.workspace.lock:
            body = _ENDPOINTS[endpoint](self, params)
            if isinstance(body, tuple):
                results, position = body
                next_url = None
                if position is not None:
                    if isinstance(position, dict):  # limit/offset paging (the archives listing)
                        kept = [(k, v) for k, v in pairs if k not in position]
                        next_url = base + "?" + urlencode(kept + sorted(position.items()), quote_via=quote)
                    else:
                        kept = [(k, v) for k, v in pairs if k != "cursor"]
                        next_url = base + "?" + urlencode(kept + [("cursor", _encode_cursor(position))],
                                                          quote_via=quote)
                body = {"next": next_url, "previous": None, "results": results}
            return _json_bytes(body), "application/json", {}

    def _archive_download(self, handler: "_Handler", name: str,
                          params: Mapping[str, str]) -> tuple[bytes, str, dict[str, str]]:
        """An archive file, as pre-signed storage serves it: no token wanted, links that expire."""
        if self._storage is not None:
            if handler.headers.get("Authorization") is not None:
                # What S3 answers when a pre-signed request also carries an Authorization header.
                raise _ApiError(400, {"detail": "Only one auth mechanism allowed"})
            expires = params.get("Expires", "")
            if not hmac.compare_digest(params.get("Signature", ""), self._signature(name, expires)):
                raise _ApiError(403, {"detail": "SignatureDoesNotMatch"})
            if expires and time.time() > float(expires):
                raise _ApiError(403, {"detail": "Request has expired"})
        content = self.workspace.archive_file(name)
        if content is None:
            raise _ApiError(404, {"detail": "Not found."})
        if self.workspace.shapes == SHAPES_REAL:
            return content, "application/octet", {"Content-Encoding": "none"}
        return content, "application/gzip", {}

    def _signature(self, name: str, expires: str) -> str:
        return hmac.new(self._signing_key, f"{name}|{expires}".encode(), hashlib.sha256).hexdigest()

    def _download_url(self, name: str | None) -> str:
        if not name:
            return ""
        if self._storage is None:
            return f"{self.url}{_ARCHIVE_PREFIX}{name}"
        expires = "" if self.archive_link_seconds is None else f"{time.time() + self.archive_link_seconds:.3f}"
        query = urlencode({"Expires": expires, "Signature": self._signature(name, expires)})
        return f"{self.storage_url}{_ARCHIVE_PREFIX}{name}?{query}"

    # -- endpoints (called with the workspace lock held) --------------------------------------------------------

    def _runs(self, params: Mapping[str, str]) -> tuple[list[dict], Any]:
        run_id = params.get("id")
        if run_id is not None and not run_id.isdigit():
            raise _ApiError(400, {"id": [f"A valid integer is required, not {run_id!r}."]})
        page, position = self.workspace.select_runs(
            flow=params.get("flow") or None,
            uuid=params.get("uuid") or None,
            run_id=int(run_id) if run_id else None,
            contact=params.get("contact") or None,
            responded=_bool(params, "responded"),
            after=_timestamp(params, "after"),
            before=_timestamp(params, "before"),
            reverse=bool(_bool(params, "reverse")),
            start_after=_decode_cursor(params),
            limit=self.page_size,
        )
        workspace = self.workspace
        if workspace.shapes == SHAPES_REAL:
            page = [real_run(run, workspace.contact_or_none(run["contact"]["uuid"]), workspace.anonymous)
                    for run in page]
        return page, position

    def _contacts(self, params: Mapping[str, str]) -> tuple[list[dict], Any]:
        page, position = self.workspace.select_contacts(
            deleted=bool(_bool(params, "deleted")),
            uuid=params.get("uuid") or None,
            urn=params.get("urn") or None,
            group=params.get("group") or None,
            after=_timestamp(params, "after"),
            before=_timestamp(params, "before"),
            reverse=bool(_bool(params, "reverse")),
            start_after=_decode_cursor(params),
            limit=self.page_size,
        )
        workspace = self.workspace
        if workspace.shapes == SHAPES_REAL:
            page = [real_contact(contact, workspace.anonymous) for contact in page]
        elif workspace.anonymous:
            page = [dict(contact, urns=urns_as_served(contact["urns"], workspace.anonymous)) for contact in page]
        return page, position

    def _archives(self, params: Mapping[str, str]) -> tuple[list[dict], Any]:
        real = self.workspace.shapes == SHAPES_REAL
        # Real servers honour only archive_type (type= is ignored, so message archives are listed too).
        archive_type = params.get("archive_type") or (None if real else params.get("type")) or None
        if archive_type not in (None, "run", "message"):
            raise _ApiError(400, {"archive_type": [f"Must be run or message, not {archive_type!r}."]})
        if real:
            period = params.get("period")
            archives = [a for a in self.workspace.archives()
                        if archive_type in (None, a["archive_type"]) and period in (None, "", a["period"])]
            offset, limit = _int(params, "offset", 0), _int(params, "limit", self.page_size)
            page = archives[offset:offset + limit]
            more = offset + limit < len(archives)
            position: Any = {"limit": str(limit), "offset": str(offset + limit)} if more else None
        else:
            page, position = self.workspace.select_archives(
                archive_type=archive_type,
                period=params.get("period") or None,
                after=_timestamp(params, "after"),
                before=_timestamp(params, "before"),
                reverse=bool(_bool(params, "reverse")),
                start_after=_decode_cursor(params),
                limit=self.page_size,
            )
        results = []
        for archive in page:
            listed = {k: v for k, v in archive.items() if k != "file"}
            listed["download_url"] = self._download_url(archive.get("file"))
            results.append(real_archive(listed) if real else listed)
        return results, position

    def _flows(self, params: Mapping[str, str]) -> tuple[list[dict], Any]:
        flows = self.workspace.flows()
        if params.get("uuid"):
            flows = [f for f in flows if f["uuid"] == params["uuid"]]
        if params.get("type"):
            flows = [f for f in flows if f["type"] == params["type"]]
        archived = _bool(params, "archived")
        if archived is not None:
            flows = [f for f in flows if f["archived"] == archived]
        return self._slice(sorted(flows, key=lambda f: f["created_on"], reverse=True), params)

    def _fields(self, params: Mapping[str, str]) -> tuple[list[dict], Any]:
        fields = [f for f in self.workspace.fields if params.get("key") in (None, "", f["key"])]
        return self._slice(fields, params)

    def _org(self, params: Mapping[str, str]) -> dict:
        return self.workspace.org

    def _slice(self, items: list[dict], params: Mapping[str, str]) -> tuple[list[dict], Any]:
        """Pages a short list by offset (flows and fields: a handful of objects)."""
        start = _decode_cursor(params, keyset=False) or 0
        end = start + self.page_size
        return items[start:end], (end if end < len(items) else None)


_ENDPOINTS: dict[str, Callable[[RapidProServer, Mapping[str, str]], Any]] = {
    "runs": RapidProServer._runs,
    "contacts": RapidProServer._contacts,
    "archives": RapidProServer._archives,
    "flows": RapidProServer._flows,
    "fields": RapidProServer._fields,
    "org": RapidProServer._org,
}


def _json_bytes(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _address(httpd: Any) -> str:
    """``host:port`` a listener is bound to."""
    host, port = httpd.server_address[:2]
    return f"{host.decode() if isinstance(host, bytes) else host}:{port}"


def _storage_listener(app: RapidProServer) -> "_HttpServer":
    """The archive storage's listener: another local host (127.0.0.2), or another port where that address
    cannot be bound."""
    try:
        return _HttpServer((_STORAGE_HOST, 0), _Handler, app)
    except OSError:
        return _HttpServer(("127.0.0.1", 0), _Handler, app)


class RedirectingFront:
    """A front on 127.0.0.1 that answers every request with a redirect (301 by default) to the same path and
    query under ``target`` (another host), as a server that moved does. ``requests`` logs what it received."""

    def __init__(self, target: str, *, status: int = 301, port: int = 0):
        self.target = target.rstrip("/")
        self.status = status
        self._log: list[LoggedRequest] = []
        self._lock = threading.Lock()
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                with front._lock:
                    front._log.append(LoggedRequest(
                        "GET", parts.path, dict(parse_qsl(parts.query)), front.status,
                        _address(self.server), self.headers.get("Authorization") is not None,
                    ))
                self.send_response(front.status)
                self.send_header("Location", front.target + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Silent."""

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{_address(self._httpd)}"

    @property
    def requests(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._log)

    def __enter__(self) -> "RedirectingFront":
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._httpd.shutdown()
        if self._thread is not None:
            self._thread.join()
        self._httpd.server_close()


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, app: RapidProServer):
        self.app = app
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Dropped and reset connections are what the fault injection is for; nothing worth a traceback.
        if not isinstance(sys.exc_info()[1], (ConnectionError, OSError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY each kept-alive reply waits ~40 ms
    # for the client's delayed ACK (Nagle's algorithm).
    disable_nagle_algorithm = True
    server: _HttpServer
    server_version = "RapidProTestServer/1"

    def do_GET(self) -> None:
        self.server.app._handle(self, "GET")

    def do_POST(self) -> None:
        self.server.app._handle(self, "POST")

    def do_DELETE(self) -> None:
        self.server.app._handle(self, "DELETE")

    def reply(self, status: int, content: bytes, *, content_type: str = "application/json",
              headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(content)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(content)

    def drop(self) -> None:
        """Closes the connection without answering, as a crashed proxy or a network cut would."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: request lines go to ``RapidProServer.requests``, not to stderr."""

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header: the server's clock (see ``RapidProServer``)."""
        return super().date_time_string(self.server.app.clock() if timestamp is None else timestamp)


# ---------------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------------


def _read_token(token_file: str | None) -> str:
    if token_file is not None:
        try:
            with open(token_file, encoding="utf-8") as f:
                token = f.read().strip()
        except OSError as error:
            raise UsageError(f"cannot read the token file: {error.strerror}", path=token_file) from None
        if not token:
            raise UsageError("the token file is empty", path=token_file)
        return token
    token = os.environ.get(TOKEN_ENVIRONMENT_VARIABLE, "").strip()
    if not token:
        raise UsageError(f"no API token: pass --token-file FILE or set {TOKEN_ENVIRONMENT_VARIABLE}")
    return token


def main(argv: Sequence[str] | None = None) -> int:
    """Serves a generated workspace until SIGTERM or SIGINT; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m redss_pipeline.demo.rapid_pro_server",
        description="Serve a synthetic CSAP workspace over a Rapid Pro API v2-compatible HTTP server on "
        f"127.0.0.1. The API token comes from --token-file or the {TOKEN_ENVIRONMENT_VARIABLE} environment "
        "variable and is never printed.",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the synthetic workspace (default 1)")
    parser.add_argument("--size", type=int, default=2000, help="approximate number of runs (default 2000)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    parser.add_argument("--page-size", type=int, default=DEFAULT_PAGE_SIZE,
                        help=f"results per page (default {DEFAULT_PAGE_SIZE})")
    parser.add_argument("--token-file", help="file holding the API token the server accepts")
    parser.add_argument("--shapes", choices=SHAPES, default=SHAPES_REAL,
                        help="payload shapes: real (what real servers send, archives on a second host; default) or "
                        "superset (every field of every client version)")
    parser.add_argument("--anonymous", choices=ANONYMOUS_MODES,
                        help="an anonymous workspace: URNs masked (tel:********) or absent (2019-era servers)")
    parser.add_argument("--late-commits", type=int, default=0, metavar="N",
                        help="hold back N runs stamped before the newest of their flow, committed only after a page "
                        "of that flow was served")
    parser.add_argument("--clock", choices=("wall", "workspace"),
                        help="the server's time in Date headers: the wall clock, or the workspace's latest event "
                        "(\"on air\"; the default with --late-commits)")
    parser.add_argument("--redirect-front", action="store_true",
                        help="also start a front on another port that redirects every request to the server "
                        "(its address is printed on a second line)")
    args = parser.parse_args(argv)
    try:
        if args.size < 0 or args.page_size < 1 or not 0 <= args.port <= 65535 or args.late_commits < 0:
            raise UsageError("--size must be >= 0, --page-size >= 1, --late-commits >= 0 and --port within 0..65535")
        token = _read_token(args.token_file)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_status
    workspace = generate_workspace(seed=args.seed, size=args.size, shapes=args.shapes, anonymous=args.anonymous,
                                   late_commits=args.late_commits)
    try:
        on_air = args.clock == "workspace" or (args.clock is None and args.late_commits > 0)
        server = RapidProServer(workspace, token=token, port=args.port, page_size=args.page_size,
                                clock=workspace.now if on_air else None)
    except OSError as error:
        print(f"error: cannot listen on 127.0.0.1:{args.port}: {error.strerror}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signal_number, lambda *_: stop.set())
    with contextlib.ExitStack() as running:
        running.enter_context(server)
        print(f"Rapid Pro test server listening on {server.url}", flush=True)
        if args.redirect_front:
            front = running.enter_context(RedirectingFront(server.url))
            print(f"Redirecting front listening on {front.url} (redirects to {server.url})", flush=True)
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
