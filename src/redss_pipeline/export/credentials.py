"""Service-account keys named by a ``gs://`` URL or a local path, read into memory only.

Stage 3's ``--drive-upload <drive-service-account-credentials-url> <drive-upload-dir>`` names the key the
pipeline uses for Google Drive. In 2019 the key lived in Google Cloud Storage and was copied to disk with
``gsutil cp``; here a ``gs://bucket/object`` URL is downloaded with google-cloud-storage, and a value without a
scheme is read as a local key file. Either way the key stays in this process's memory: it is never written to
a file, printed or logged, and every error names the URL, never the key's contents.

Which account reads the bucket: Google Application Default Credentials (``GOOGLE_APPLICATION_CREDENTIALS`` or
``gcloud auth application-default login``), or an explicit key file (``storage_key_file``). When the
``STORAGE_EMULATOR_HOST`` environment variable is set (a local emulator, e.g. in tests) the client reads
anonymously. Tests may also pass their own ``storage_client_factory``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit

from redss_pipeline.core.errors import DriveError

__all__ = [
    "GsUrl",
    "parse_gs_url",
    "default_storage_client",
    "download_gs_object",
    "load_service_account_key",
    "check_credentials_location",
    "service_account_email",
]

# Fields google-auth needs to sign the JWT it exchanges for an access token.
_REQUIRED_KEY_FIELDS = ("client_email", "private_key", "token_uri")


@dataclass(frozen=True)
class GsUrl:
    """A parsed ``gs://bucket/object`` URL."""

    bucket: str
    object_name: str

    def __str__(self) -> str:
        return f"gs://{self.bucket}/{self.object_name}"


def parse_gs_url(url: str) -> GsUrl:
    """Splits ``gs://bucket/path/to/object`` into bucket and object name.

    The object name is the path without its leading ``/`` (``gs://avf-credentials/csap-token.txt`` ->
    bucket ``avf-credentials``, object ``csap-token.txt``).
    """
    parts = urlsplit(url)
    if parts.scheme != "gs":
        raise DriveError(f"not a Cloud Storage URL (expected gs://<bucket>/<object>): {url!r}")
    bucket = parts.netloc
    object_name = parts.path.lstrip("/")
    if not bucket or not object_name:
        raise DriveError(f"Cloud Storage URL must name a bucket and an object (gs://<bucket>/<object>): {url!r}")
    if parts.query or parts.fragment:
        raise DriveError(f"Cloud Storage URL must not have a query or fragment: {url!r}")
    return GsUrl(bucket=bucket, object_name=object_name)


def default_storage_client(*, storage_key_file: str | os.PathLike[str] | None = None) -> Any:
    """Builds the Cloud Storage client that reads credential files.

    With ``storage_key_file`` the client authenticates as that service account. Otherwise it uses Application
    Default Credentials, or reads anonymously when ``STORAGE_EMULATOR_HOST`` points at an emulator. No project
    is needed to download an object, so none is looked up.
    """
    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud import storage

    try:
        if storage_key_file is not None:
            return storage.Client.from_service_account_json(os.fspath(storage_key_file), project=None)
        return storage.Client(project=None)
    except DefaultCredentialsError as error:
        named = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        if named:  # set, but to a file that is missing or no key: Google's text names only that file
            raise DriveError(
                f"GOOGLE_APPLICATION_CREDENTIALS names a file that cannot be used to read Cloud Storage ({error}): "
                "point it at a service-account key file, or unset it to use 'gcloud auth application-default login'"
            ) from None
        raise DriveError(
            "no Google credentials to read Cloud Storage with: run 'gcloud auth application-default login' "
            "or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file"
        ) from None
    except (OSError, ValueError) as error:
        raise DriveError(
            f"cannot use the Cloud Storage key file: {type(error).__name__}", path=storage_key_file
        ) from None


def download_gs_object(url: str, *, storage_client_factory: Callable[[], Any] | None = None) -> bytes:
    """Downloads one Cloud Storage object into memory.

    The client library already retries 429, 5xx and connection errors; what still fails becomes a
    ``DriveError`` naming the URL.
    """
    from google.api_core import exceptions as api_exceptions
    from google.auth import exceptions as auth_exceptions

    location = parse_gs_url(url)
    factory = storage_client_factory if storage_client_factory is not None else default_storage_client
    client = factory()
    try:
        data: bytes = client.bucket(location.bucket).blob(location.object_name).download_as_bytes()
        return data
    except api_exceptions.NotFound:
        raise DriveError(
            f"credentials file not found at {location}: no such object, or no bucket {location.bucket!r}"
        ) from None
    except api_exceptions.Forbidden:
        raise DriveError(
            f"access denied reading {location}: the account reading Cloud Storage needs permission to read "
            f"objects in bucket {location.bucket!r} (role Storage Object Viewer)"
        ) from None
    except api_exceptions.GoogleAPICallError as error:
        raise DriveError(f"could not download {location}: HTTP {error.code} {error.message}") from None
    except api_exceptions.RetryError as error:
        # The client's own retries ran out (Cloud Storage unreachable, or failing, for two minutes).
        raise DriveError(f"could not download {location}: Cloud Storage did not answer ({error.message}, last: "
                         f"{type(error.cause).__name__}); check the network and try again later") from None
    except (auth_exceptions.GoogleAuthError, OSError) as error:
        # requests' connection errors are OSErrors too; their text names only hosts and URLs.
        raise DriveError(f"could not download {location}: {type(error).__name__}: {error}") from None


def load_service_account_key(
    url: str, *, storage_client_factory: Callable[[], Any] | None = None
) -> dict[str, Any]:
    """Returns the service-account key named by ``url`` as a dict, kept in memory only.

    ``gs://bucket/object`` is downloaded from Cloud Storage; a value without a scheme is a local file path.
    The content must be a Google service-account key (JSON with ``"type": "service_account"``,
    ``client_email``, ``private_key`` and ``token_uri``) whose private key can be loaded.
    """
    scheme = urlsplit(url).scheme
    # A Windows drive letter ("C:\\keys\\drive.json") parses as a one-letter scheme: it is a path.
    if scheme == "gs":
        raw = download_gs_object(url, storage_client_factory=storage_client_factory)
    elif scheme == "" or len(scheme) == 1:
        raw = _read_local_key(url)
    else:
        raise DriveError(
            f"unsupported credentials location {url!r}: use gs://<bucket>/<object> or a local file path"
        )
    return _parse_key(raw, url)


def check_credentials_location(url: str) -> None:
    """What can be checked of ``url`` before a long run, without the network: a local key file is read and checked
    (:func:`load_service_account_key`, in memory only, then let go), a ``gs://`` URL only for its form. So a key
    file that is missing or is not a key stops the run at once, not after it."""
    if urlsplit(url).scheme == "gs":
        parse_gs_url(url)
    else:
        load_service_account_key(url)


def service_account_email(key: dict[str, Any]) -> str:
    """The e-mail address Drive folders must be shared with (the key's ``client_email``)."""
    return str(key["client_email"])


def _read_local_key(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise DriveError("credentials file not found", path=path) from None
    except IsADirectoryError:
        raise DriveError("credentials path is a directory, not a key file", path=path) from None
    except OSError as error:
        raise DriveError(f"cannot read credentials file: {error.strerror}", path=path) from None


_GOOGLE_UNIVERSE = "googleapis.com"  # the domain of Google's own APIs, where Drive is
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _parse_key(raw: bytes, url: str) -> dict[str, Any]:
    """Parses and checks the key; messages describe the problem without quoting any of the content."""
    not_a_key = "is not a Google service-account key (expected the JSON key file downloaded from the Cloud console)"
    try:
        info = json.loads(raw.decode("utf-8-sig"))  # read past a byte-order mark (a key saved by a Windows editor)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise DriveError(f"{not_a_key}: not JSON", path=url) from None
    except RecursionError:
        raise DriveError(f"{not_a_key}: JSON nested too deeply to be read", path=url) from None
    if not isinstance(info, dict):
        raise DriveError(f"{not_a_key}: not a JSON object", path=url)
    if info.get("type") != "service_account":
        raise DriveError(f"{not_a_key}: field 'type' is not 'service_account'", path=url)
    missing = [name for name in _REQUIRED_KEY_FIELDS if not isinstance(info.get(name), str) or not info[name]]
    if missing:
        raise DriveError(f"{not_a_key}: missing field(s) {', '.join(missing)}", path=url)
    # Checked here, before stage 3 runs: Google's client fails on them only at the upload, with a traceback.
    token_uri = urlsplit(info["token_uri"])
    # The key signs what goes to this address: plain http only to this machine (a local emulator).
    if not (token_uri.scheme == "https" or (token_uri.scheme == "http" and token_uri.hostname in _LOOPBACK)):
        raise DriveError(f"{not_a_key}: field 'token_uri' is not an https:// address", path=url)
    if (info.get("universe_domain") or _GOOGLE_UNIVERSE) != _GOOGLE_UNIVERSE:
        raise DriveError(f"{not_a_key}: field 'universe_domain' is not {_GOOGLE_UNIVERSE!r} (the key is for another "
                         "cloud than Google Drive's)", path=url)
    try:
        from google.oauth2 import service_account

        service_account.Credentials.from_service_account_info(info)
    except (ValueError, TypeError):
        # The underlying message may describe the key material; say only which field is unusable.
        raise DriveError(f"{not_a_key}: its private_key cannot be loaded", path=url) from None
    return info
