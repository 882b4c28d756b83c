"""Service-account keys from Cloud Storage (a local emulator) and from local files."""

from __future__ import annotations

import json
import logging

import pytest
from drive_server import StorageEmulator, make_service_account_key

from redss_pipeline.core.errors import DriveError
from redss_pipeline.export.credentials import load_service_account_key, parse_gs_url

TOKEN_URI = "http://127.0.0.1:9/token"


@pytest.fixture(scope="module")
def emulator():
    with StorageEmulator() as running:
        yield running


@pytest.fixture(scope="module")
def key():
    return make_service_account_key(TOKEN_URI, key_size=1024)


def test_parse_gs_url_splits_bucket_and_object():
    """A gs:// URL gives the bucket and the object path without its leading slash."""
    location = parse_gs_url("gs://avf-credentials/csap-text-it-token.txt")
    assert (location.bucket, location.object_name) == ("avf-credentials", "csap-text-it-token.txt")
    assert parse_gs_url("gs://b/dir/key.json").object_name == "dir/key.json"


@pytest.mark.parametrize("url", ["https://example.org/key.json", "gs://only-bucket", "gs:///object"])
def test_parse_gs_url_rejects_other_urls(url):
    """Anything but gs://<bucket>/<object> is a clear error naming the URL."""
    with pytest.raises(DriveError, match="gs://<bucket>/<object>") as error:
        parse_gs_url(url)
    assert url in str(error.value)


def test_key_is_downloaded_from_cloud_storage(emulator, key):
    """A gs:// URL is downloaded with the real storage client and parsed into the key."""
    url = emulator.put("drive/csap-drive-key.json", json.dumps(key).encode())
    loaded = load_service_account_key(url, storage_client_factory=emulator.client)
    assert loaded == key


def test_key_download_honours_storage_emulator_host(emulator, key, monkeypatch):
    """Without an injected client, STORAGE_EMULATOR_HOST makes the default client read the emulator."""
    url = emulator.put("env/key.json", json.dumps(key).encode())
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.url)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    assert load_service_account_key(url)["client_email"] == key["client_email"]


def test_a_google_application_credentials_naming_a_missing_file_says_so(monkeypatch):
    """The variable is set, to a file that is not there: the error names the variable and the file, rather than
    telling the user to set it."""
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/adc.json")
    with pytest.raises(DriveError, match=r"^GOOGLE_APPLICATION_CREDENTIALS names a file that cannot be used to read "
                                         r"Cloud Storage \(.*/nonexistent/adc\.json.*\): point it at a service-account "
                                         r"key file, or unset it"):
        load_service_account_key("gs://avf-credentials/drive/key.json")


class _StorageThatNeverAnswers:
    """Stands in for the Cloud Storage client when its own retries have run out: they last two minutes, too long
    for a test, so only their outcome (the client's RetryError) is staged here."""

    def bucket(self, name):
        return self

    def blob(self, name):
        return self

    def download_as_bytes(self):
        from google.api_core.exceptions import RetryError

        raise RetryError("Timeout of 120.0s exceeded", cause=ConnectionError("connection refused"))


def test_cloud_storage_that_never_answers_is_one_line_naming_the_url():
    with pytest.raises(DriveError, match=r"^could not download gs://avf-credentials/drive/key\.json: Cloud Storage did "
                                         r"not answer \(Timeout of 120\.0s exceeded, last: ConnectionError\); check the "
                                         r"network and try again later$"):
        load_service_account_key("gs://avf-credentials/drive/key.json",
                                 storage_client_factory=_StorageThatNeverAnswers)


def test_missing_object_names_the_url(emulator):
    """A missing object is reported as 'credentials file not found at gs://...'."""
    url = f"gs://{emulator.bucket}/no/such/key.json"
    with pytest.raises(DriveError, match=r"credentials file not found at gs://avf-credentials/no/such/key\.json"):
        load_service_account_key(url, storage_client_factory=emulator.client)


def test_missing_bucket_names_the_url(emulator):
    """A bucket that does not exist is reported with the URL and the bucket name."""
    with pytest.raises(DriveError, match=r"not found at gs://no-such-bucket/key\.json.*'no-such-bucket'"):
        load_service_account_key("gs://no-such-bucket/key.json", storage_client_factory=emulator.client)


def test_local_key_file_is_read_when_there_is_no_scheme(tmp_path, key):
    """A value without a scheme is a local key file."""
    path = tmp_path / "drive-key.json"
    path.write_text(json.dumps(key))
    assert load_service_account_key(str(path)) == key


def test_a_key_file_saved_with_a_byte_order_mark_is_read(tmp_path, key):
    """Some Windows editors start a UTF-8 file with a byte-order mark, which the JSON module refuses."""
    path = tmp_path / "drive-key.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(key).encode("utf-8"))
    assert load_service_account_key(str(path)) == key


def test_missing_local_file_names_the_path(tmp_path):
    """A local key file that does not exist is a clear error naming the path."""
    path = tmp_path / "absent.json"
    with pytest.raises(DriveError, match=r"absent\.json: credentials file not found"):
        load_service_account_key(str(path))


def test_unsupported_scheme_is_refused():
    """Only gs:// URLs and local paths are accepted."""
    with pytest.raises(DriveError, match="unsupported credentials location 'https://example.org/k.json'"):
        load_service_account_key("https://example.org/k.json")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"csap-text-it-token-0123456789", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (json.dumps({"type": "authorized_user", "client_id": "x"}).encode(), "'type' is not 'service_account'"),
        (json.dumps({"type": "service_account", "client_email": "a@b"}).encode(), "missing field"),
    ],
)
def test_content_that_is_not_a_key_is_refused(emulator, content, problem):
    """A file that is not a service-account key is refused, naming the URL and the problem."""
    url = emulator.put("wrong/thing.json", content)
    with pytest.raises(DriveError, match="is not a Google service-account key") as error:
        load_service_account_key(url, storage_client_factory=emulator.client)
    assert str(error.value).startswith(url + ": ")
    assert problem in str(error.value)


@pytest.mark.parametrize(("field", "value", "problem"), [
    ("token_uri", "ftp://127.0.0.1/token", "field 'token_uri' is not an https:// address"),
    ("token_uri", "http://oauth2.example.org/token", "field 'token_uri' is not an https:// address"),
    ("universe_domain", "example.org", "field 'universe_domain' is not 'googleapis.com'"),
])
def test_a_key_google_would_refuse_only_at_the_upload_is_refused_when_read(tmp_path, key, field, value, problem):
    """Google's client fails on these only when it uploads, after the whole stage, with a traceback; they are
    refused when the key is read, which stage 3 does before it starts."""
    path = tmp_path / "drive-key.json"
    path.write_text(json.dumps(dict(key, **{field: value})))
    with pytest.raises(DriveError) as error:
        load_service_account_key(str(path))
    assert str(error.value) == f"{path}: is not a Google service-account key (expected the JSON key file " \
                               f"downloaded from the Cloud console): {problem}" + (
                                   " (the key is for another cloud than Google Drive's)" if field == "universe_domain"
                                   else "")


def test_a_key_nested_too_deeply_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "drive-key.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(DriveError, match=r"drive-key\.json: is not a Google service-account key .*nested too deeply"):
        load_service_account_key(str(path))


def test_unloadable_private_key_is_refused_without_quoting_it(emulator, key):
    """A key whose private_key is damaged is refused; the message never quotes the key material."""
    damaged = dict(key, private_key="-----BEGIN PRIVATE KEY-----\nAAAAsecretmaterial\n-----END PRIVATE KEY-----\n")
    url = emulator.put("wrong/damaged.json", json.dumps(damaged).encode())
    with pytest.raises(DriveError, match="private_key cannot be loaded") as error:
        load_service_account_key(url, storage_client_factory=emulator.client)
    assert "secretmaterial" not in str(error.value)


def test_key_never_appears_in_output_or_logs(emulator, key, capsys, caplog):
    """Loading a key prints and logs nothing of it, even at DEBUG level."""
    caplog.set_level(logging.DEBUG)
    url = emulator.put("quiet/key.json", json.dumps(key).encode())
    load_service_account_key(url, storage_client_factory=emulator.client)
    captured = capsys.readouterr()
    everything = captured.out + captured.err + caplog.text
    key_body = key["private_key"].splitlines()[1]
    assert key_body not in everything
    assert key["private_key_id"] not in everything
