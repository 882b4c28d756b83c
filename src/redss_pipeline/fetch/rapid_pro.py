"""Reading Rapid Pro: the real client for URLs and headers, raw JSON pages, paging and retries.

The real client library is used for what it still does right (rapidpro-python 2.21, module ``temba_client``):
``TembaClient(server, token)`` normalises the server into the API root URL (``https://`` prepended when there is
no scheme), builds the request headers (``Authorization: Token ...``, ``User-Agent: rapidpro-python/...``) and
serialises query parameters (datetimes as ``%Y-%m-%dT%H:%M:%S.%fZ``, booleans as 1/0). Two things it cannot do
are done here (spec rapid-pro.md sections 1.6 and 1.8):

- its typed ``Run`` objects dropped the run value's ``input`` (the raw text a contact sent, the ``(Text)`` key),
  so pages are read as raw JSON: the first request goes to the client's endpoint URL with its parameters,
  then the absolute ``next`` link is followed verbatim until it is null or a page is empty;
- it sends every request with no timeout and retries only HTTP 429 with a ``Retry-After``. Here every request
  has a timeout, and 429 (honouring ``Retry-After``, backing off when it is missing), 5xx, timeouts and dropped
  connections are retried with bounded exponential backoff and jitter (:class:`RetryPolicy`). HTTP statuses are
  read as the client reads them (403: the token was refused, 404: no such endpoint, 400: a bad request).

When the retries run out, or the server refuses for good, a :class:`~redss_pipeline.core.errors.FetchError` says what
was being read (e.g. ``runs of flow csap_demog``) and which page. The token is sent only in the request header
and only to the configured server's origin (scheme, host and port): API requests never follow a redirect (a
redirect is an error naming the new location, rapid-pro.md section 3), and a ``next`` link or a saved resume
link on another origin, or on plain ``http`` when the server is ``https``, is refused rather than followed. The
token never appears in a message, a log line or a file. Archive files (pre-signed URLs to external storage, on
another host) are downloaded without the token; an archive that cannot be read after the retries, the last
ones with a fresh link from the listing, raises :class:`ArchiveUnreadable` so that the fetch can go on without
it.

Tests pass their own ``session`` (any ``requests.Session``) and ``sleep``, so retries take no time.
"""

from __future__ import annotations

import gzip
import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Iterator, Mapping, NamedTuple
from urllib.parse import urljoin, urlsplit

import requests
from temba_client.v2 import TembaClient

from redss_pipeline.core.errors import FetchError, UsageError

__all__ = [
    "RetryPolicy",
    "Page",
    "RapidProClient",
    "ArchiveUnreadable",
    "DEFAULT_TIMEOUT",
    "TOKEN_ENV",
    "resolve_token",
    "normalise_server",
    "origin",
]

logger = logging.getLogger(__name__)

#: (connect, read) timeout of every request, in seconds.
DEFAULT_TIMEOUT = (15.0, 120.0)
#: Environment variable holding the API token when the command line gives ``-`` or an empty token.
TOKEN_ENV = "RAPID_PRO_TOKEN"
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_TRANSIENT_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


def normalise_server(server: str) -> str:
    """The server argument as the client should get it: surrounding spaces and every trailing ``/`` removed
    (``textit.in/`` -> ``textit.in``, which the client turns into ``https://textit.in/api/v2``)."""
    return server.strip().rstrip("/")


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of a URL, lower-cased, the default port made explicit: who receives a request."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        port = {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


class ArchiveUnreadable(Exception):
    """An archive file could not be read after every retry; ``reason`` says why (never holds the link)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def resolve_token(value: str, environ: Mapping[str, str]) -> str:
    """The API token a ``<rapid-pro-token>`` argument stands for.

    ``@FILE``: the first line of that file (so the token stays out of the process list and shell history);
    ``-`` or an empty string: the ``RAPID_PRO_TOKEN`` environment variable; anything else: the token itself.
    Errors name where the token was looked for, never the token.
    """
    if value in ("", "-"):
        token = environ.get(TOKEN_ENV, "").strip()
        if not token:
            raise UsageError(f"no Rapid Pro token: the token argument is {value!r} and {TOKEN_ENV} is not set")
        return token
    if value.startswith("@"):
        path = value[1:]
        try:
            with open(path, encoding="utf-8") as handle:
                token = handle.readline().strip()
        except UnicodeDecodeError:
            raise UsageError("the Rapid Pro token file is not UTF-8 text", path=path) from None
        except OSError as error:
            raise UsageError(f"cannot read the Rapid Pro token file ({error.strerror})", path=path) from None
        if not token:
            raise UsageError("the Rapid Pro token file is empty", path=path)
        return token
    return value.strip()


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a request that failed for a reason that may pass.

    ============================  ======================================================================
    ``max_attempts``              requests in all for one page (the first one included)
    ``base_delay``, ``max_delay``  backoff before retry n (n = 1, 2, ...): ``min(max_delay, base_delay *
                                  2 ** (n - 1))``, multiplied by a random factor in [0.5, 1) (jitter)
    ``max_retry_after``           the longest ``Retry-After`` honoured; a longer one is an error
    ============================  ======================================================================

    A 429 with a ``Retry-After`` waits exactly that long (plus a little jitter so that parallel clients do
    not come back at the same instant); without one it backs off like a 5xx.
    """

    max_attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0
    max_retry_after: float = 3600.0

    def backoff(self, retry: int, rng: random.Random) -> float:
        """Seconds to wait before retry number ``retry`` (1-based) when the server gave no ``Retry-After``."""
        delay: float = min(self.max_delay, self.base_delay * 2 ** (retry - 1))
        return delay * (0.5 + rng.random() / 2)


class Page(NamedTuple):
    """One page of a list endpoint: its 1-based number, its results (raw JSON objects), the absolute URL
    of the next page (None on the last), which carries every filter and the server's cursor, and the server's
    clock when it answered (its ``Date`` header; None when absent)."""

    number: int
    results: list[dict[str, Any]]
    next_url: str | None
    server_time: datetime | None = None


class _Transient(Exception):
    """A failure worth retrying; ``wait`` is the server's Retry-After in seconds, when it gave one.
    ``link`` marks an archive link the storage refused (expired or revoked): only a fresh link can help."""

    def __init__(self, reason: str, wait: float | None = None, *, link: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.wait = wait
        self.link = link


class _Refused(Exception):
    """A failure that will not pass by retrying (a refused token, a missing endpoint, a bad request)."""

    def __init__(self, reason: str, *, alone: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.alone = alone  # the reason says it all (a refused token, a redirect): no "what, page" prefix


class RapidProClient:
    """A Rapid Pro workspace read through the API v2, page by page, with retries.

    ``requests_made`` counts every HTTP request sent (retries and archive downloads included).
    """

    def __init__(
        self,
        server: str,
        token: str,
        *,
        session: requests.Session | None = None,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ):
        if not token:
            raise FetchError("no Rapid Pro API token was given")
        self._temba = TembaClient(normalise_server(server), token)
        self.root_url: str = self._temba.root_url
        #: The server root the user gave, normalised (``https://textit.in``): what a store records.
        self.server_root: str = self.root_url[: -len("/api/v2")]
        self._origin = origin(self.root_url)
        self._headers = dict(self._temba.headers)
        self._session = session if session is not None else requests.Session()
        self._timeout = timeout
        self._retry = retry
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self.requests_made = 0
        self._api_answered = False  # whether the API server has answered any request (whatever the status)
        #: The server's clock (``Date`` header) at its last answer to an API request, when it sent one.
        self.last_server_time: datetime | None = None

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> "RapidProClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- list endpoints ----------------------------------------------------------------------------------

    def pages(
        self, endpoint: str, *, what: str, resume_url: str | None = None, resume_page: int = 0, **filters: Any
    ) -> Iterator[Page]:
        """Every page of ``<root>/<endpoint>.json`` with ``filters`` (None values left out), in server order.

        ``what`` names the data in error messages (``"runs of flow csap_demog"``). ``resume_url`` (a saved
        :attr:`Page.next_url`) continues an interrupted iteration after page ``resume_page``; ``filters`` are
        then ignored, as the URL carries them.
        """
        url: str | None = f"{self.root_url}/{endpoint}.json"
        params: dict[str, Any] | None = self._temba._build_params(**filters) or None
        number = 0
        if resume_url is not None:
            url, params, number = resume_url, None, resume_page
        # Every next link of one listing carries a new cursor; one already followed would read the same pages
        # again and again, without end (a server bug).
        followed: set[str] = set()
        while url:
            number += 1
            body = self._get_json(url, params, what=what, page=number)
            results = body.get("results") if isinstance(body, dict) else None
            if not isinstance(results, list):
                raise FetchError(
                    f"{what}, page {number}: the server's answer has no list of results; "
                    f"is {self.root_url} a Rapid Pro API?"
                )
            if not results:
                return
            url = body.get("next") or None
            if url is not None:
                self.check_origin(url, what=f"{what}, page {number}: the link to the next page")
                if url in followed:
                    raise FetchError(
                        f"{what}, page {number}: the link to the next page leads back to a page already read "
                        f"({_endpoint(url)}); the server repeats its pages, so the fetch stops instead of reading "
                        "them forever"
                    )
                followed.add(url)
            params = None  # the next link already carries every filter and the cursor
            yield Page(number, results, url, self.last_server_time)

    def all_results(self, endpoint: str, *, what: str, **filters: Any) -> list[dict[str, Any]]:
        """Every result of a (small) list endpoint, e.g. ``flows``."""
        return [item for page in self.pages(endpoint, what=what, **filters) for item in page.results]

    def org(self) -> dict[str, Any]:
        """The workspace (``org.json``): its uuid, name, ``anon`` flag, ..."""
        body = self._get_json(f"{self.root_url}/org.json", None, what="workspace (org.json)", page=1)
        if not isinstance(body, dict):
            raise FetchError(f"workspace (org.json): the server's answer is not an object; is {self.server_root} "
                             "a Rapid Pro server?")
        return body

    def check_origin(self, url: str, *, what: str) -> None:
        """Refuses a URL the token must not be sent to: another scheme, host or port than the server's."""
        if origin(url) != self._origin:
            raise FetchError(
                f"{what} points to {_endpoint(url)}, outside {self.server_root}; not following it (the API token "
                "is sent only to the configured server)"
            )

    # -- archives ----------------------------------------------------------------------------------------

    def archive_lines(
        self,
        download_url: str,
        *,
        what: str,
        keep: Callable[[dict[str, Any]], bool],
        expected: int | None = None,
        fresh_link: Callable[[], str | None] | None = None,
    ) -> list[dict[str, Any]]:
        """The objects of an archive file (gzipped JSON Lines) for which ``keep`` is true.

        The file is streamed (never written to disk) and fetched without the API token, as Rapid Pro's
        pre-signed URLs expect; a dropped or short download is retried as a whole. Pre-signed links expire:
        when the storage refuses the link, and in any case before the last two attempts, ``fresh_link`` is
        asked for a new one (the archive listing read again). Raises :class:`ArchiveUnreadable` when every
        attempt failed.
        """
        url = urljoin(self.root_url + "/", download_url)
        attempt = 0
        refreshed_at = 0
        while True:
            attempt += 1
            try:
                return self._read_archive(url, what=what, keep=keep, expected=expected)
            except _Transient as failure:
                if attempt >= self._retry.max_attempts:
                    raise ArchiveUnreadable(f"{failure.reason}, still failing after {attempt} attempts") from None
                last_retries = attempt >= self._retry.max_attempts - 2
                if fresh_link is not None and (failure.link or (last_retries and refreshed_at < attempt - 1)):
                    logger.info("%s: %s; asking the archive listing for a fresh link", what, failure.reason)
                    refreshed_at = attempt
                    link = fresh_link()
                    if not link:
                        raise ArchiveUnreadable(f"{failure.reason}, and the listing gives no fresh link") from None
                    url = urljoin(self.root_url + "/", link)
                    if failure.link:
                        continue  # a refused link needs no waiting, only the new one
                self._wait_or_give_up(failure, attempt, what=what, where="archive download")

    def _read_archive(
        self, url: str, *, what: str, keep: Callable[[dict[str, Any]], bool], expected: int | None
    ) -> list[dict[str, Any]]:
        self.requests_made += 1
        try:
            headers = _archive_headers(self._headers)
            with self._session.get(url, stream=True, timeout=self._timeout, headers=headers) as response:
                if response.status_code in _RETRY_STATUSES:
                    raise _Transient(f"HTTP {response.status_code} from the archive storage", _retry_after(response))
                if response.status_code != 200:
                    # Storage refuses an expired or revoked pre-signed link (S3 answers 403, others 400/404/410).
                    raise _Transient(f"the archive storage refused the link (HTTP {response.status_code})", link=True)
                response.raw.decode_content = True
                encoded = "gzip" in response.headers.get("Content-Encoding", "").lower()
                lines = response.raw if encoded else gzip.GzipFile(fileobj=response.raw)
                kept, count = [], 0
                for line in lines:
                    if not line.strip():
                        continue
                    count += 1
                    item = json.loads(line)
                    if keep(item):
                        kept.append(item)
        except (*_TRANSIENT_ERRORS, EOFError, gzip.BadGzipFile, json.JSONDecodeError) as error:
            raise _Transient(f"broken download ({type(error).__name__})") from None
        if expected is not None and count != expected:
            raise _Transient(f"the archive has {count} lines, the listing says {expected}")
        return kept

    # -- one request -------------------------------------------------------------------------------------

    def _get_json(self, url: str, params: dict[str, Any] | None, *, what: str, page: int) -> Any:
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._send(url, params)
            except _Transient as failure:
                self._wait_or_give_up(failure, attempt, what=what, where=f"page {page}")
            except _Refused as refusal:
                if refusal.alone:
                    raise FetchError(refusal.reason) from None
                raise FetchError(f"{what}, page {page}: {refusal.reason}") from None

    def _wait_or_give_up(self, failure: _Transient, attempt: int, *, what: str, where: str) -> None:
        if attempt >= self._retry.max_attempts:
            # A server that never answered this run is more likely a wrong address than a bad moment.
            advice = ("what was fetched before is kept, run the same command again to resume" if self._api_answered
                      else f"the server never answered: check its address ({self.server_root}) and the network "
                      "(what was fetched before is kept)")
            raise FetchError(
                f"{what}, {where}: {failure.reason}, still failing after {attempt} attempts; {advice}"
            ) from None
        if failure.wait:
            if failure.wait > self._retry.max_retry_after:
                raise FetchError(
                    f"{what}, {where}: the server asks to wait {failure.wait:.0f} s (rate limit), longer than "
                    f"{self._retry.max_retry_after:.0f} s; run the same command again after that (what was fetched "
                    "before is kept)"
                ) from None
            delay = failure.wait + self._rng.random() * 0.1
        else:
            delay = self._retry.backoff(attempt, self._rng)
        logger.info("%s, %s: %s; retrying in %.1f s (attempt %d of %d)", what, where, failure.reason, delay,
                    attempt + 1, self._retry.max_attempts)
        self._sleep(delay)

    def _send(self, url: str, params: dict[str, Any] | None) -> Any:
        self.check_origin(url, what="a request")  # never reached by a link from the server: see pages()
        self.requests_made += 1
        try:
            response = self._session.get(
                url, params=params, headers=self._headers, timeout=self._timeout, allow_redirects=False
            )
        except requests.Timeout:
            raise _Transient(f"the request to {self.server_root} timed out") from None
        except requests.exceptions.SSLError as error:
            # Retried like any failed connection (a poor line can break a handshake), but the usual cause is a server
            # that speaks plain HTTP given without http:// (https:// is then assumed). A plain-HTTP answer to the
            # handshake will not change: said at once, not after every retry. OpenSSL calls it "wrong version
            # number" up to 3.1 and "record layer failure" from 3.2.
            message = (f"the connection to {self.server_root} failed (SSLError: no secure connection could be made; "
                       "if the server speaks plain HTTP, give its address with http://)")
            reason = str(error).upper().replace(" ", "_")
            if "WRONG_VERSION_NUMBER" in reason or "RECORD_LAYER_FAILURE" in reason:
                raise _Refused(message, alone=True) from None
            raise _Transient(message) from None
        except _TRANSIENT_ERRORS as error:
            raise _Transient(f"the connection to {self.server_root} failed ({type(error).__name__})") from None
        except requests.RequestException as error:  # an unusable server address, say
            raise _Refused(f"cannot request {_endpoint(url)} ({type(error).__name__})") from None
        self._api_answered = True
        status = response.status_code
        if 300 <= status < 400:
            raise _Refused(_redirect_message(url, response), alone=True)
        if status in (401, 403):
            raise _Refused(
                f"Rapid Pro refused the API token (HTTP {status} from {_endpoint(url)}); "
                "check the <rapid-pro-token> argument",
                alone=True,
            )
        if status == 429:
            raise _Transient("rate limited (HTTP 429)", _retry_after(response))
        if status in _RETRY_STATUSES or 500 <= status < 600:
            raise _Transient(f"HTTP {status} from {_endpoint(url)}")
        if status == 404:
            raise _Refused(f"{_endpoint(url)} was not found (HTTP 404): is the server a Rapid Pro server?")
        if status == 400:
            raise _Refused(f"the server rejected the request to {_endpoint(url)} (HTTP 400): {_detail(response)}")
        if not 200 <= status < 300:
            raise _Refused(f"HTTP {status} from {_endpoint(url)}")
        self.last_server_time = _server_date(response)
        try:
            return response.json()
        except ValueError:
            # A body cut short by a dropped connection reads as broken JSON: worth another try.
            raise _Transient(f"the answer from {_endpoint(url)} is not complete JSON") from None


def _endpoint(url: str) -> str:
    """The URL without its query (cursors are long and say nothing to a user)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _redirect_message(url: str, response: requests.Response) -> str:
    """The one line for a redirect: the new location, and the server argument to use instead.

    Redirects are never followed: the client would drop the token on another host (so Rapid Pro would seem to
    refuse it), and the token must not travel to a host the user did not name.
    """
    location = response.headers.get("Location", "")
    if not location:
        return f"{_endpoint(url)} answered HTTP {response.status_code} without a new location"
    target = urljoin(url, location)
    parts = urlsplit(target)
    path = parts.path
    marker = path.find("/api/v2/")
    root = f"{parts.scheme}://{parts.netloc}{path[:marker] if marker >= 0 else ''}"
    return (
        f"the Rapid Pro server redirects {_endpoint(url)} to {_endpoint(target)} (HTTP {response.status_code}); "
        f"redirects are not followed, so that the API token goes only where you send it: if that is the right "
        f"server, give {root} as <rapid-pro-server>"
    )


def _archive_headers(api_headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in api_headers.items() if k.lower() not in ("authorization", "content-type")}


def _server_date(response: requests.Response) -> datetime | None:
    """The server's ``Date`` header as an aware UTC datetime; None when absent or unreadable."""
    value = response.headers.get("Date")
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _retry_after(response: requests.Response) -> float | None:
    """Seconds from a ``Retry-After`` header (a number or an HTTP date); None when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        seconds = (moment - datetime.now(timezone.utc)).total_seconds()
    return max(0.0, seconds)


def _detail(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        parts = []
        for _key, value in body.items():
            parts.extend(value if isinstance(value, list) else [value])
        return "; ".join(str(p) for p in parts)[:300]
    return str(body)[:300]
