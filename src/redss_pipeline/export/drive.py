"""Uploading stage 3's CSVs to Google Drive, safely re-runnable.

Each file goes to ``<drive-upload-dir>/<name>``. The folder path is resolved one component at a time: the
first among folders shared with the service account (or a Shared Drive it belongs to), the rest as
sub-folders; folders are never created. A file that exists is updated in place, so its id, links and sharing
stay the same and Drive keeps the old content as a revision; a missing file is created. Compared with 2019
(AfricasVoices/PipelineInfrastructure ``drive_client_wrapper.py``) names are escaped in queries, trashed items
are ignored, Shared Drives work, transient failures are retried, and a create whose answer was lost is
checked for before it is tried again, so a retry never leaves two files of the same name.

Failures become ``DriveError`` messages that say what to share with which service-account e-mail. The key and
access tokens are never printed or logged; progress is one line per file.

Typical use (what ``upload_to_drive`` does)::

    key = load_service_account_key("gs://bucket/drive-key.json")
    service = build_drive_service(key)
    upload_files(service=service, files=[("Outputs/csap_mes.csv", "csap_mes.csv")],
                 drive_dir="CSAP/Outputs", service_account_email=key["client_email"])
"""

from __future__ import annotations

import copy
import http.client
import json
import os
import random
import re
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from redss_pipeline.core.errors import DriveError, UsageError

__all__ = [
    "DRIVE_SCOPE",
    "FOLDER_MIME_TYPE",
    "RetryPolicy",
    "UploadResult",
    "build_drive_service",
    "drive_folder",
    "escape_query_value",
    "upload_files",
    "upload_to_drive",
]

DRIVE_SCOPE = "https://www.googleapis.com/auth/drive"
"""Full Drive scope: ``drive.file`` would not see folders that people shared with the service account."""

FOLDER_MIME_TYPE = "application/vnd.google-apps.folder"

_RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
# Daily or project limits: retrying within the run cannot help.
_USAGE_LIMIT_REASONS = frozenset({"dailyLimitExceeded", "quotaExceeded", "dailyLimitExceededUnreg"})
_UPLOAD_CHUNK_SIZE = 16 * 1024 * 1024  # a multiple of 256 KiB, as resumable uploads require
_DRIVE_HOST = "drive.google.com"
# The path of a folder's address as a browser shows it: https://drive.google.com/drive/folders/<id>, also with
# /u/<n>/ (the signed-in account) before "folders" and a query such as ?usp=sharing after the id.
_FOLDER_ADDRESS = re.compile(r"^/drive/(?:u/\d+/)?folders/(?P<id>[A-Za-z0-9_-]+)/?$")


def drive_folder(target: str) -> tuple[str, str | None]:
    """``<drive-upload-dir>`` read: a folder path such as ``CSAP/Outputs`` (resolved on Drive component by
    component) or the folder's address copied from a browser (``https://drive.google.com/drive/folders/<id>``,
    also without ``https://``, or a sharing link ``.../open?id=<id>``), which names the folder by its id, as spec
    google.md 5.1 recommends: renames and look-alike names do not matter. Returns ``(path, None)`` or
    ``("", id)``; an address of another form is a usage error."""
    target = target.strip()  # an address pasted with a space around it
    if not target.strip("/"):
        raise UsageError("the Drive upload folder is empty: give a folder path such as CSAP/Outputs, or the "
                         "address a browser shows in the folder")
    if not target.lower().startswith(("https://", "http://", _DRIVE_HOST + "/")):
        return target, None
    try:
        address = urllib.parse.urlsplit(target if "://" in target else f"https://{target}")
    except ValueError:  # such as an unclosed "[" where a host should be
        address = urllib.parse.SplitResult("", "", "", "", "")
    match = _FOLDER_ADDRESS.match(address.path)
    if address.path == "/open":
        folder_id = urllib.parse.parse_qs(address.query).get("id", [""])[0]
    else:
        folder_id = match.group("id") if match is not None else ""
    if address.hostname != _DRIVE_HOST or not re.fullmatch(r"[A-Za-z0-9_-]+", folder_id):
        raise UsageError(f"{target!r} is not the address of a Drive folder: give a folder path such as "
                         "CSAP/Outputs, or the address a browser shows in the folder "
                         "(https://drive.google.com/drive/folders/<folder id>)")
    return "", folder_id


@dataclass(frozen=True)
class UploadResult:
    """One uploaded file: where it went, its Drive id and whether it was ``created`` or ``updated``."""

    local_path: str
    drive_path: str
    file_id: str
    action: str


@dataclass(frozen=True)
class RetryPolicy:
    """How transient Drive failures (5xx, 429, rate-limit 403, timeouts, dropped connections) are retried.

    | field | meaning |
    | --- | --- |
    | ``max_attempts`` | tries per request, the first included |
    | ``base_delay`` / ``max_delay`` | retry *n* waits ``rand() * min(max_delay, base_delay * 2**n)`` seconds |
    | ``sleep`` / ``rand`` | injectable so tests need not wait |
    """

    max_attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 32.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    rand: Callable[[], float] = field(default=random.random, repr=False)

    def wait(self, retry_number: int) -> None:
        """Sleeps before retry ``retry_number`` (1 for the first retry): exponential backoff, full jitter."""
        self.sleep(self.rand() * min(self.max_delay, self.base_delay * 2**retry_number))


def build_drive_service(
    key: dict[str, Any],
    *,
    root_url: str | None = None,
    discovery_doc: dict[str, Any] | str | None = None,
    timeout: float = 60.0,
) -> Any:
    """Builds a Drive v3 client authenticated as the service account in ``key``.

    The discovery document bundled with google-api-python-client is used, so building needs no network.
    ``root_url`` replaces the document's ``rootUrl`` (tests point it at a local server: unlike
    ``client_options``, this also moves media uploads). The token is fetched from the key's ``token_uri``.
    ``timeout`` bounds each HTTP request, in seconds.
    """
    import google_auth_httplib2
    from google.oauth2 import service_account
    from googleapiclient import discovery
    from googleapiclient.discovery_cache import get_static_doc
    from googleapiclient.http import build_http

    try:
        credentials = service_account.Credentials.from_service_account_info(key, scopes=[DRIVE_SCOPE])
    except (ValueError, KeyError, TypeError):
        raise DriveError("the Drive credentials are not a usable service-account key") from None
    if discovery_doc is None:
        discovery_doc = get_static_doc("drive", "v3")
        if discovery_doc is None:
            raise DriveError("google-api-python-client has no bundled Drive v3 discovery document; upgrade it")
    document = json.loads(discovery_doc) if isinstance(discovery_doc, (str, bytes)) else copy.deepcopy(discovery_doc)
    if root_url is not None:
        root = root_url if root_url.endswith("/") else root_url + "/"
        document["rootUrl"] = root
        document["mtlsRootUrl"] = root
    http = build_http()  # leaves 308 to the resumable-upload protocol instead of following it as a redirect
    http.timeout = timeout
    return discovery.build_from_document(document, http=google_auth_httplib2.AuthorizedHttp(credentials, http=http))


def escape_query_value(value: str) -> str:
    """Escapes a value for a single-quoted string in Drive's query language (``\\`` and ``'``)."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


def upload_files(
    *,
    service: Any,
    files: Sequence[tuple[str | os.PathLike[str], str]],
    drive_dir: str,
    folder_id: str | None = None,
    service_account_email: str | None = None,
    retry: RetryPolicy | None = None,
    log: Callable[[str], None] = print,
) -> list[UploadResult]:
    """Uploads each ``(local_path, drive_name)`` to ``drive_dir/drive_name``, creating or updating it.

    ``drive_dir`` is a folder path such as ``CSAP/Outputs``; its first folder must be shared with the service
    account (``service_account_email``, used in error messages) or be a Shared Drive it is a member of.
    With ``folder_id`` that folder is used directly (immune to renames and look-alike names) and
    ``drive_dir``, if not empty, names it in messages instead of its Drive name. Every local file is checked, and
    every folder and file looked up on Drive, before anything is sent; an upload that stops part way (an error, or
    Ctrl-C) says which files were sent and which not. Prints one line per file; returns what was done.
    """
    pending = []
    for local_path, drive_name in files:
        path = os.fspath(local_path)
        if not os.path.isfile(path):
            raise DriveError("file to upload to Drive does not exist", path=path)
        drive_path = "/".join(part for part in f"{drive_dir}/{drive_name}".split("/") if part)
        folder_path, _, name = drive_path.rpartition("/")
        pending.append((path, drive_path, folder_path, name))
    client = _DriveClient(service, retry or RetryPolicy(), service_account_email, log)
    # Every folder and file is looked up before anything is sent, so what can be refused (a missing folder, two
    # files of one name) is refused with Drive as it was.
    planned = []
    for path, drive_path, folder_path, name in pending:
        if folder_id is not None:
            folder = client.folder_by_id(folder_id, folder_path)
            drive_path = f"{folder.path}/{name}"
        else:
            folder = client.resolve_folder(folder_path)
        planned.append(_Planned(path, folder, name, drive_path, client.existing_file(folder, name, drive_path)))
    results: list[UploadResult] = []
    try:
        for plan in planned:
            result = client.upload(plan)
            results.append(result)
            log(f"Drive: {result.action} {result.drive_path} (file id {result.file_id})")
    except DriveError as error:
        raise error.with_hint(_what_was_sent(planned, results)) from None
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"the Drive upload stopped: {_what_was_sent(planned, results)}") from None
    return results


@dataclass(frozen=True)
class _Planned:
    """One file to upload, as looked up before anything is sent: its Drive file (None: to be created)."""

    local_path: str
    folder: _Folder
    name: str
    drive_path: str
    existing: str | None


def _what_was_sent(planned: Sequence[_Planned], results: Sequence[UploadResult]) -> str:
    """For an upload that stopped part way: which files Drive holds from this upload and which it does not (they are
    as the upload before left them, or were not on Drive at all)."""
    sent = {result.drive_path for result in results}
    done = [plan.name for plan in planned if plan.drive_path in sent]
    left = [plan for plan in planned if plan.drive_path not in sent]
    if not left:
        return "every file was sent" if len(planned) > 1 else "the file was sent"
    said = [f"sent: {', '.join(done) if done else 'none'}", f"not sent: {', '.join(plan.name for plan in left)}"]
    new = [plan.name for plan in left if plan.existing is None]
    if new:
        said.append(f"not on Drive before this upload: {', '.join(new)}")
    return "; ".join(said)


def upload_to_drive(
    *,
    credentials_url: str,
    drive_dir: str,
    files: Sequence[tuple[str | os.PathLike[str], str]],
    folder_id: str | None = None,
    storage_client_factory: Callable[[], Any] | None = None,
    retry: RetryPolicy | None = None,
    log: Callable[[str], None] = print,
) -> list[UploadResult]:
    """Stage 3's ``--drive-upload URL DIR``: fetches the key named by ``credentials_url`` and uploads ``files``.

    ``credentials_url`` is ``gs://bucket/object`` or a local key file (see ``redss_pipeline.export.credentials``);
    ``drive_dir`` is a folder path or a folder's address (:func:`drive_folder`); ``folder_id`` and ``files`` are
    as for ``upload_files``.
    """
    from redss_pipeline.export.credentials import load_service_account_key, service_account_email

    if folder_id is None:
        drive_dir, folder_id = drive_folder(drive_dir)
    key = load_service_account_key(credentials_url, storage_client_factory=storage_client_factory)
    service = build_drive_service(key)
    return upload_files(
        service=service,
        files=files,
        drive_dir=drive_dir,
        folder_id=folder_id,
        service_account_email=service_account_email(key),
        retry=retry,
        log=log,
    )


# --------------------------------------------------------------------------------------------- internals
@dataclass(frozen=True)
class _Folder:
    id: str
    path: str
    drive_id: str | None


class _Transient(Exception):
    """A failure worth retrying; ``description`` is safe to show."""

    def __init__(self, description: str):
        super().__init__(description)
        self.description = description


class _SessionExpired(_Transient):
    """A resumable upload's session Drive no longer knows: the file is sent again in a new one."""


class _DriveClient:
    """The upload algorithm over one Drive service; holds the retry policy and the folder cache."""

    def __init__(self, service: Any, retry: RetryPolicy, account: str | None, log: Callable[[str], None]):
        self.service = service
        self.retry = retry
        self.account = account or "the service account"
        self.log = log
        self._folders: dict[str, _Folder] = {}

    # ------------------------------------------------------------------------------------------ requests
    def call(self, make_request: Callable[[], Any], what: str, *, folder: str | None = None) -> Any:
        """Executes a fresh request from ``make_request``, retrying transient failures with backoff."""
        last = ""
        for attempt in range(1, self.retry.max_attempts + 1):
            if attempt > 1:
                self.retry.wait(attempt - 1)
            try:
                return self._execute(make_request(), what, folder)
            except _Transient as error:
                last = error.description
        raise DriveError(f"{what} failed after {self.retry.max_attempts} attempts: {last}")

    def _execute(self, request: Any, what: str, folder: str | None) -> Any:
        """Runs one request and classifies its failure. A resumable upload goes chunk by chunk; once its session
        is open, a chunk that fails for a passing reason is sent again within the same session (the client asks
        Drive how much it holds), so a large file does not start over from its first byte."""
        if getattr(request, "resumable", None) is None:
            return self._classified(request.execute, what, folder)
        from googleapiclient.errors import HttpError

        def next_chunk() -> Any:
            try:
                return request.next_chunk()
            except HttpError as error:
                status = int(getattr(error.resp, "status", 0) or 0)
                if request.resumable_uri is not None and status in (404, 410):  # Drive forgot the session
                    raise _SessionExpired(f"the upload session expired (HTTP {status})") from None
                raise

        response = None
        failures = 0
        while response is None:
            try:
                status, response = self._classified(next_chunk, what, folder)
            except _SessionExpired:
                raise  # the caller starts the file again (a create looks for it first)
            except _Transient as error:
                if request.resumable_uri is None:
                    raise  # no session yet: nothing was sent, the caller may start again
                failures += 1
                if failures >= self.retry.max_attempts:
                    raise DriveError(f"{what} failed after {failures} attempts: {error.description}") from None
                self.log(f"Drive: {what}: {error.description}; resuming the upload where Drive has it")
                self.retry.wait(failures)
                continue
            failures = 0
            if status is not None and response is None:
                self.log(f"Drive: {what}: {int(status.progress() * 100)}%")
        return response

    def _classified(self, send: Callable[[], Any], what: str, folder: str | None) -> Any:
        """``send()``, its failures sorted: worth another try (:class:`_Transient`) or a one-line error."""
        from google.auth import exceptions as auth_exceptions
        from googleapiclient.errors import HttpError
        from httplib2 import HttpLib2Error

        try:
            return send()
        except HttpError as error:
            status, reason, message = _http_error_parts(error)
            description = f"HTTP {status} {reason}: {message}".strip()
            if status >= 500 or status in (408, 429) or (status == 403 and reason in _RATE_LIMIT_REASONS):
                raise _Transient(description) from None
            raise self._refusal(what, status, reason, message, folder) from None
        except auth_exceptions.RefreshError as error:
            # Google's own words (``invalid_grant: Invalid JWT Signature.``) name the cause: never the key itself.
            said = str(error.args[0])[:300] if error.args else ""
            if error.retryable:  # the token endpoint failing (5xx), after google-auth's own retries
                raise _Transient(f"the token endpoint failed: {said}") from None
            raise DriveError(
                f"{what}: Google refused the service-account key when asked for an access token ({said}): is the "
                f"key of {self.account} deleted or disabled, or this computer's clock wrong?"
            ) from None
        except (auth_exceptions.TransportError, OSError, http.client.HTTPException, HttpLib2Error) as error:
            # Timeouts, dropped connections, DNS and TLS failures: the request may or may not have arrived.
            raise _Transient(f"{type(error).__name__}: {error}".rstrip(": ")) from None

    def _refusal(self, what: str, status: int, reason: str, message: str, folder: str | None) -> DriveError:
        if status == 403 and reason in _USAGE_LIMIT_REASONS:  # not about sharing: the project's quota of requests
            return DriveError(
                f"{what}: Drive refused (HTTP 403 {reason}: {message}): the Google Cloud project of {self.account} "
                "has used up its Drive requests for now; run again later, or raise the quota in the Cloud console"
            )
        if status == 403 and reason == "accessNotConfigured":  # not about sharing either: the API is switched off
            return DriveError(
                f"{what}: Drive refused (HTTP 403 accessNotConfigured: {message}): the Drive API is not enabled in "
                f"the Google Cloud project of {self.account}; enable it there (APIs & Services), then run again"
            )
        if status == 403 and reason == "storageQuotaExceeded":
            where = f"folder {folder!r}" if folder else "that folder"
            return DriveError(
                f"{what}: Drive refused (storageQuotaExceeded): service accounts have no Drive storage of their "
                f"own, so {self.account} cannot create new files in a person's My Drive. Either move {where} "
                f"to a Shared Drive where {self.account} is a Content manager, or create the files once by hand "
                f"in {where} (shared with {self.account} as an editor) so the pipeline only updates them"
            )
        if status == 401:
            return DriveError(f"{what}: Drive rejected the credentials of {self.account} (HTTP 401: {message})")
        if status in (403, 404):
            share = f"share {folder!r} with {self.account} as an editor" if folder else "check the sharing"
            return DriveError(f"{what}: Drive refused (HTTP {status} {reason}: {message}); {share}")
        return DriveError(f"{what}: Drive answered HTTP {status} {reason}: {message}")

    def list_all(self, what: str, *, folder: str | None = None, **params: Any) -> list[dict[str, Any]]:
        """All results of a ``files.list`` query, following ``nextPageToken``."""
        items: list[dict[str, Any]] = []
        token = None
        while True:
            # call() runs the lambda before this iteration ends, so it always sees this iteration's token.
            page = self.call(
                lambda: self.service.files().list(pageToken=token, pageSize=100, spaces="drive", **params),  # noqa: B023
                what,
                folder=folder,
            )
            items.extend(page.get("files", []))
            token = page.get("nextPageToken")
            if not token:
                return items

    def _shared_drives_named(self, name: str, what: str) -> list[dict[str, Any]]:
        drives: list[dict[str, Any]] = []
        token = None
        while True:
            page = self.call(  # the lambda runs within this iteration (see list_all)
                lambda: self.service.drives().list(
                    q=f"name = '{escape_query_value(name)}'",
                    pageToken=token,  # noqa: B023
                    pageSize=100,
                    fields="nextPageToken, drives(id, name)",
                ),
                what,
            )
            drives.extend(page.get("drives", []))
            token = page.get("nextPageToken")
            if not token:
                return drives

    # ------------------------------------------------------------------------------------------- folders
    def folder_by_id(self, folder_id: str, path: str) -> _Folder:
        """The folder with id ``folder_id``, checked to be a folder that is not in the trash."""
        cached = self._folders.get(f"id:{folder_id}")
        if cached is not None:
            return cached
        item = self.call(
            lambda: self.service.files().get(
                fileId=folder_id, fields="id, name, mimeType, driveId, trashed", supportsAllDrives=True
            ),
            f"looking up Drive folder id {folder_id}",
            folder=path or folder_id,
        )
        if item.get("mimeType") != FOLDER_MIME_TYPE or item.get("trashed"):
            raise DriveError(f"Drive item {folder_id} ({item.get('name')!r}) is not a folder, or is in the trash")
        folder = _Folder(id=folder_id, path=path or str(item.get("name", folder_id)), drive_id=item.get("driveId"))
        self._folders[f"id:{folder_id}"] = folder
        return folder

    def resolve_folder(self, path: str) -> _Folder:
        """The folder at ``path``: exactly one match per component, or a ``DriveError`` saying what to fix."""
        parts = [part for part in path.split("/") if part]
        if not parts:
            raise DriveError(
                f"the Drive upload folder is empty: give the path of a folder shared with {self.account}"
            )
        cached = self._folders.get("/".join(parts))
        if cached is not None:
            return cached
        first = parts[0]
        what = f"looking up Drive folder {first!r}"
        shared = self.list_all(
            what,
            q=(
                f"name = '{escape_query_value(first)}' and mimeType = '{FOLDER_MIME_TYPE}' "
                "and sharedWithMe = true and trashed = false"
            ),
            fields="nextPageToken, files(id, name, driveId)",
            corpora="allDrives",
            includeItemsFromAllDrives=True,
            supportsAllDrives=True,
        )
        candidates = [(item["id"], item.get("driveId")) for item in shared]
        candidates += [(drive["id"], drive["id"]) for drive in self._shared_drives_named(first, what)]
        if not candidates:
            raise DriveError(
                f"Drive folder {first!r} (first folder of {path!r}) is not shared with {self.account}: share it "
                f"with {self.account} as an editor, or add {self.account} as a Content manager of a Shared "
                f"Drive named {first!r}"
            )
        if len(candidates) > 1:
            ids = ", ".join(candidate_id for candidate_id, _ in candidates)
            raise DriveError(
                f"{len(candidates)} Drive folders named {first!r} are shared with {self.account} (ids {ids}), "
                f"so the path {path!r} is ambiguous: rename the other folders or stop sharing them with "
                f"{self.account}"
            )
        folder = _Folder(id=candidates[0][0], path=first, drive_id=candidates[0][1])
        for part in parts[1:]:
            matches = self.list_all(
                f"looking up Drive folder {part!r} in {folder.path!r}",
                q=(
                    f"name = '{escape_query_value(part)}' and '{escape_query_value(folder.id)}' in parents "
                    f"and mimeType = '{FOLDER_MIME_TYPE}' and trashed = false"
                ),
                fields="nextPageToken, files(id, name, driveId)",
                **_corpus(folder),
            )
            if not matches:
                raise DriveError(
                    f"Drive folder {part!r} not found in {folder.path!r} (upload path {path!r}): create it there "
                    f"(the pipeline never creates folders) and make sure {self.account} can edit it"
                )
            if len(matches) > 1:
                ids = ", ".join(item["id"] for item in matches)
                raise DriveError(
                    f"{len(matches)} Drive folders named {part!r} in {folder.path!r} (ids {ids}), so the path "
                    f"{path!r} is ambiguous: rename or remove the duplicates"
                )
            folder = _Folder(id=matches[0]["id"], path=f"{folder.path}/{part}", drive_id=folder.drive_id)
        self._folders[folder.path] = folder
        return folder

    # --------------------------------------------------------------------------------------------- files
    def find_files(self, folder: _Folder, name: str) -> list[dict[str, Any]]:
        """The non-trashed, non-folder items called ``name`` directly in ``folder``."""
        return self.list_all(
            f"looking for {folder.path}/{name} on Drive",
            folder=folder.path,
            q=(
                f"name = '{escape_query_value(name)}' and '{escape_query_value(folder.id)}' in parents "
                f"and trashed = false and mimeType != '{FOLDER_MIME_TYPE}'"
            ),
            fields="nextPageToken, files(id, name, modifiedTime)",
            **_corpus(folder),
        )

    def existing_file(self, folder: _Folder, name: str, drive_path: str) -> str | None:
        """The id of the one file ``name`` in ``folder``, None when there is none; several are an error."""
        return self._single(self.find_files(folder, name), drive_path)

    def upload(self, plan: _Planned) -> UploadResult:
        if plan.existing is not None:
            file_id = self._update(plan.existing, plan.local_path, plan.drive_path, plan.folder)
            return UploadResult(plan.local_path, plan.drive_path, file_id, "updated")
        file_id = self._create(plan.local_path, plan.folder, plan.name, plan.drive_path)
        return UploadResult(plan.local_path, plan.drive_path, file_id, "created")

    def _single(self, matches: list[dict[str, Any]], drive_path: str) -> str | None:
        if len(matches) > 1:
            listed = ", ".join(f"{item['id']} (modified {item.get('modifiedTime', '?')})" for item in matches)
            raise DriveError(
                f"{len(matches)} files named {drive_path!r} on Drive ({listed}): remove or rename the "
                "duplicates so that exactly one is left to update"
            )
        return matches[0]["id"] if matches else None

    def _update(self, file_id: str, local_path: str, drive_path: str, folder: _Folder) -> str:
        """Stores the local file as a new revision of ``file_id`` (id, links and sharing unchanged)."""
        response = self.call(
            lambda: self.service.files().update(
                fileId=file_id,
                body={"mimeType": _content_type(local_path)},  # also mends a file an older version typed wrongly
                media_body=_media(local_path),
                fields="id, name, modifiedTime",
                supportsAllDrives=True,
            ),
            f"updating {drive_path}",
            folder=folder.path,
        )
        return str(response.get("id", file_id))

    def _create(self, local_path: str, folder: _Folder, name: str, drive_path: str) -> str:
        """Creates the file; after a failure that may have created it anyway, looks again before retrying."""
        what = f"creating {drive_path}"
        last = ""
        for attempt in range(1, self.retry.max_attempts + 1):
            if attempt > 1:
                self.retry.wait(attempt - 1)
                # The failed create may have been applied with only its answer lost: never create blindly.
                existing = self._single(self.find_files(folder, name), drive_path)
                if existing is not None:
                    return self._update(existing, local_path, drive_path, folder)
            request = self.service.files().create(
                body={"name": name, "parents": [folder.id]},
                media_body=_media(local_path),
                fields="id",
                supportsAllDrives=True,
            )
            try:
                return str(self._execute(request, what, folder.path)["id"])
            except _Transient as error:
                last = error.description
        raise DriveError(f"{what} failed after {self.retry.max_attempts} attempts: {last}")


def _corpus(folder: _Folder) -> dict[str, Any]:
    """List parameters that make queries see items in Shared Drives as well as in My Drive."""
    if folder.drive_id:
        return {
            "corpora": "drive",
            "driveId": folder.drive_id,
            "includeItemsFromAllDrives": True,
            "supportsAllDrives": True,
        }
    return {"corpora": "allDrives", "includeItemsFromAllDrives": True, "supportsAllDrives": True}


# The type Drive shows and opens a file as, by its suffix. A table of its own rather than the mimetypes module,
# which reads the host's settings (some map .csv to a spreadsheet program's type).
_CONTENT_TYPES = {".csv": "text/csv", ".html": "text/html"}


def _content_type(local_path: str) -> str:
    return _CONTENT_TYPES.get(os.path.splitext(local_path)[1].lower(), "application/octet-stream")


def _media(local_path: str) -> Any:
    from googleapiclient.http import MediaFileUpload

    try:
        return MediaFileUpload(local_path, mimetype=_content_type(local_path), chunksize=_UPLOAD_CHUNK_SIZE,
                               resumable=True)
    except OSError as error:
        raise DriveError(f"cannot read the file to upload: {error.strerror}", path=local_path) from None


def _http_error_parts(error: Any) -> tuple[int, str, str]:
    """Status, reason and message of a googleapiclient ``HttpError`` (Drive's JSON error body)."""
    status = int(getattr(error.resp, "status", 0) or 0)
    reason, message = "", ""
    try:
        body = json.loads(error.content.decode("utf-8"))["error"]
        message = str(body.get("message", ""))
        details = body.get("errors") or []
        if details:
            reason = str(details[0].get("reason", ""))
    except (ValueError, KeyError, TypeError, AttributeError):
        message = str(getattr(error, "reason", "") or "")
    return status, reason, message
