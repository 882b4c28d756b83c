"""Drive upload with the real googleapiclient and google-auth against a local Drive-compatible server."""

from __future__ import annotations

import json
import logging

import pytest
from drive_server import TEST_ACCESS_TOKEN, TEST_CLIENT_EMAIL, DriveServer, StorageEmulator, make_service_account_key

from redss_pipeline.core.errors import DriveError
from redss_pipeline.export import drive
from redss_pipeline.export.drive import (
    DRIVE_SCOPE,
    RetryPolicy,
    build_drive_service,
    escape_query_value,
    upload_files,
    upload_to_drive,
)

OUTPUT_NAMES = ("csap_mes.csv", "csap_ind.csv", "csap_prod.csv")


@pytest.fixture(scope="module")
def base_key():
    # One RSA key per module keeps the tests fast; each server gets it with its own token_uri.
    return make_service_account_key("http://127.0.0.1:9/token", key_size=1024)


@pytest.fixture
def server():
    with DriveServer(page_size=2) as running:
        yield running


@pytest.fixture
def key(server, base_key):
    return dict(base_key, token_uri=server.token_uri)


@pytest.fixture
def service(server, key):
    return build_drive_service(key, root_url=server.url, timeout=0.5)


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def retry(sleeps):
    return RetryPolicy(sleep=sleeps.append, rand=lambda: 1.0)


@pytest.fixture
def outputs(tmp_path):
    """The three stage-3 CSVs, as (local path, Drive name) pairs."""
    files = []
    for name in OUTPUT_NAMES:
        path = tmp_path / name
        path.write_text(f"uid,{name}\nu1,first run\n", encoding="utf-8")
        files.append((path, name))
    return files


@pytest.fixture
def shared_drive_folder(server):
    """A Shared Drive 'CSAP' (the service account is a member) with a folder 'Outputs'."""
    drive_id = server.add_shared_drive("CSAP")
    return server.add_folder("Outputs", parent=drive_id)


def _upload(service, outputs, retry, drive_dir="CSAP/Outputs"):
    return upload_files(
        service=service,
        files=outputs,
        drive_dir=drive_dir,
        service_account_email=TEST_CLIENT_EMAIL,
        retry=retry,
    )


def test_first_upload_creates_three_files(server, service, outputs, retry, shared_drive_folder, capsys):
    """A first run creates the three CSVs in the folder and prints one 'created' line per file."""
    results = _upload(service, outputs, retry)
    assert [result.action for result in results] == ["created"] * 3
    assert sorted(item.name for item in server.children(shared_drive_folder)) == sorted(OUTPUT_NAMES)
    for path, name in outputs:
        assert server.child(shared_drive_folder, name).content == path.read_bytes()
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"Drive: created {result.drive_path} (file id {result.file_id})" for result in results]
    assert [result.drive_path for result in results] == [f"CSAP/Outputs/{name}" for name in OUTPUT_NAMES]


def test_second_run_updates_the_same_files(server, service, outputs, retry, shared_drive_folder):
    """A second run updates the same three files in place: same ids, new content, one more revision."""
    first = _upload(service, outputs, retry)
    for path, _ in outputs:
        path.write_text("uid,value\nu1,second run\n", encoding="utf-8")
    second = _upload(service, outputs, retry)
    assert [result.action for result in second] == ["updated"] * 3
    assert [result.file_id for result in second] == [result.file_id for result in first]
    assert len(server.children(shared_drive_folder)) == 3
    for result in second:
        item = server.files[result.file_id]
        assert item.content == b"uid,value\nu1,second run\n"
        assert len(item.revisions) == 2


def test_requests_carry_the_token_from_the_service_account_exchange(
    server, service, outputs, retry, shared_drive_folder
):
    """The key is exchanged for a token at its token_uri (Drive scope) and every Drive call carries it."""
    _upload(service, outputs, retry)
    assert len(server.token_claims) == 1
    assert server.token_claims[0]["iss"] == TEST_CLIENT_EMAIL
    assert server.token_claims[0]["scope"] == DRIVE_SCOPE
    drive_requests = [request for request in server.requests if request.operation != "token"]
    assert drive_requests
    assert {request.authorization for request in drive_requests} == {f"Bearer {TEST_ACCESS_TOKEN}"}


def test_folder_shared_with_the_service_account_is_found(server, service, outputs, retry):
    """The first folder may be a person's folder shared with the service account, the rest sub-folders."""
    top = server.add_folder("CSAP", shared_with_me=True)
    sub = server.add_folder("2019", parent=top)
    names = [server.add_file(name, b"old\n", parent=sub) for name in OUTPUT_NAMES]
    results = _upload(service, outputs, retry, drive_dir="CSAP/2019")
    assert [result.file_id for result in results] == names
    assert [result.action for result in results] == ["updated"] * 3


def test_folder_given_by_id_is_used_directly(server, service, outputs, retry, shared_drive_folder):
    """With a folder id no path is looked up: the files go straight into that folder."""
    server.add_folder("Outputs", parent=server.add_shared_drive("CSAP"))  # a look-alike path, ignored
    results = upload_files(
        service=service, files=outputs, drive_dir="CSAP/Outputs", folder_id=shared_drive_folder, retry=retry
    )
    assert {server.files[result.file_id].parents[0] for result in results} == {shared_drive_folder}
    assert "drives.list" not in server.operations()


def test_folder_that_matches_twice_is_an_error(server, service, outputs, retry):
    """Two shared folders with the first folder's name is an error naming the path, both ids and the e-mail."""
    first = server.add_folder("CSAP", shared_with_me=True)
    second = server.add_folder("CSAP", shared_with_me=True)
    with pytest.raises(DriveError) as error:
        _upload(service, outputs, retry)
    message = str(error.value)
    assert "2 Drive folders named 'CSAP'" in message
    assert "'CSAP/Outputs'" in message
    assert first in message and second in message
    assert TEST_CLIENT_EMAIL in message


def test_sub_folder_that_matches_twice_is_an_error(server, service, outputs, retry):
    """Two sub-folders of the same name make the path ambiguous: an error naming it and both ids."""
    drive_id = server.add_shared_drive("CSAP")
    ids = [server.add_folder("Outputs", parent=drive_id) for _ in range(2)]
    with pytest.raises(DriveError, match=r"2 Drive folders named 'Outputs' in 'CSAP'.*'CSAP/Outputs' is ambiguous"):
        _upload(service, outputs, retry)
    assert not any(item.name in OUTPUT_NAMES for item in server.files.values())
    assert all(server.children(folder_id) == [] for folder_id in ids)


def test_unshared_folder_says_what_to_share_with_whom(server, service, outputs, retry):
    """A first folder the service account cannot see is an error saying to share it with its e-mail."""
    with pytest.raises(DriveError, match=rf"'CSAP'.*not shared with {TEST_CLIENT_EMAIL}: share it with"):
        _upload(service, outputs, retry)


def test_missing_sub_folder_is_not_created(server, service, outputs, retry):
    """A missing sub-folder is an error; the pipeline never creates folders."""
    server.add_shared_drive("CSAP")
    folders_before = len(server.files)
    with pytest.raises(DriveError, match=r"Drive folder 'Outputs' not found in 'CSAP'.*never creates folders"):
        _upload(service, outputs, retry)
    assert len(server.files) == folders_before


def test_names_with_quotes_and_backslashes_are_escaped(server, service, tmp_path, retry):
    """Folder and file names containing ' and \\ are found, not broken or injected into the query."""
    drive_id = server.add_shared_drive("Kenya's \\ data")
    folder = server.add_folder("it's", parent=drive_id)
    local = tmp_path / "o'neil.csv"
    local.write_text("a\n", encoding="utf-8")
    server.add_file("o'neil.csv", b"old\n", parent=folder)
    results = _upload(service, [(local, "o'neil.csv")], retry, drive_dir="Kenya's \\ data/it's")
    assert results[0].action == "updated"
    assert server.child(folder, "o'neil.csv").content == b"a\n"
    assert escape_query_value("a'b\\c") == "a\\'b\\\\c"


def test_trashed_file_of_the_same_name_is_ignored(server, service, outputs, retry, shared_drive_folder):
    """A trashed file with the output's name is left alone and a visible one is created."""
    trashed = server.add_file("csap_mes.csv", b"trashed\n", parent=shared_drive_folder)
    server.trash(trashed)
    results = _upload(service, outputs[:1], retry)
    assert results[0].action == "created"
    assert results[0].file_id != trashed
    assert server.files[trashed].content == b"trashed\n"


def test_several_files_of_the_same_name_is_an_error(server, service, outputs, retry, shared_drive_folder):
    """Two files with the output's name is an error listing both ids; neither is changed."""
    ids = [server.add_file("csap_mes.csv", b"old\n", parent=shared_drive_folder) for _ in range(2)]
    with pytest.raises(DriveError, match=r"2 files named 'CSAP/Outputs/csap_mes\.csv'") as error:
        _upload(service, outputs[:1], retry)
    assert all(file_id in str(error.value) for file_id in ids)
    assert all(server.files[file_id].content == b"old\n" for file_id in ids)


def test_503_then_success(server, service, outputs, retry, sleeps, shared_drive_folder):
    """A 503 on an upload is retried after a backoff sleep, and the upload then succeeds once."""
    server.fail("files.create.upload", status=503)
    results = _upload(service, outputs[:1], retry)
    assert results[0].action == "created"
    assert len(server.children(shared_drive_folder)) == 1
    assert sleeps == [2.0]


@pytest.mark.parametrize(
    ("status", "reason"), [(429, "rateLimitExceeded"), (403, "rateLimitExceeded"), (403, "userRateLimitExceeded")]
)
def test_rate_limits_are_retried(server, service, outputs, retry, sleeps, shared_drive_folder, status, reason):
    """429 and rate-limit 403 answers are retried with backoff."""
    server.fail("files.list", status=status, reason=reason, times=2)
    results = _upload(service, outputs[:1], retry)
    assert results[0].action == "created"
    assert sleeps == [2.0, 4.0]


def test_backoff_is_exponential_bounded_and_jittered(server, service, outputs, shared_drive_folder):
    """Persistent 503s give up after max_attempts with a clear error; waits double up to the cap, times jitter."""
    sleeps = []
    retry = RetryPolicy(max_attempts=6, base_delay=1.0, max_delay=8.0, sleep=sleeps.append, rand=lambda: 0.5)
    server.fail("files.list", status=503, times=100)
    with pytest.raises(DriveError, match=r"failed after 6 attempts: HTTP 503 backendError: Service Unavailable"):
        _upload(service, outputs[:1], retry)
    assert sleeps == [1.0, 2.0, 4.0, 4.0, 4.0]


def test_create_that_times_out_does_not_duplicate(server, service, outputs, retry, shared_drive_folder):
    """A create applied on the server whose answer times out is found by a re-query, not created again."""
    server.fail("files.create.upload", hang=True, apply=True)
    results = _upload(service, outputs[:1], retry)
    matches = [item for item in server.children(shared_drive_folder) if item.name == "csap_mes.csv"]
    assert len(matches) == 1
    assert results[0].file_id == matches[0].id
    assert results[0].action == "created"
    assert matches[0].content == outputs[0][0].read_bytes()
    operations = server.operations()
    timed_out = operations.index("files.create.upload")
    # Its upload session asked again how much Drive holds: all of it, so the answer is the file it created.
    assert operations[timed_out + 1] == "files.create.upload"
    assert operations.count("files.create.start") == 1


def test_a_chunk_that_fails_is_sent_again_without_starting_the_file_over(
    server, service, tmp_path, retry, sleeps, shared_drive_folder, monkeypatch, capsys
):
    """A 1.25 MiB CSV goes up in five chunks of 256 KiB; a 503 on the second: the upload goes on in the same
    session from where Drive has it (google.md 5.7), and the file on Drive is the file, byte for byte."""
    monkeypatch.setattr(drive, "_UPLOAD_CHUNK_SIZE", 256 * 1024)  # the smallest chunk Drive accepts
    path = tmp_path / "csap_mes.csv"
    path.write_bytes(b"".join(b"u%07d,%s\n" % (n, b"x" * 60) for n in range(20_000))[:1_310_720])
    server.fail("files.create.upload", status=503, after=1)
    (result,) = _upload(service, [(path, "csap_mes.csv")], retry)
    assert server.files[result.file_id].content == path.read_bytes()
    operations = server.operations()
    assert operations.count("files.create.start") == 1  # one session, not a second upload from byte 0
    assert operations.count("files.create.upload") == 5 + 1 + 1  # the chunks, the failed one, the status asked
    assert sleeps == [2.0]
    assert ("Drive: creating CSAP/Outputs/csap_mes.csv: HTTP 503 backendError: Service Unavailable; resuming the "
            "upload where Drive has it") in capsys.readouterr().out


def test_an_upload_session_drive_forgot_is_started_again(
    server, service, tmp_path, retry, shared_drive_folder, monkeypatch
):
    """Drive answers a chunk with 404 (the session expired): the file is sent again in a new session, after
    looking whether the create took effect; not reported as a folder that is not shared."""
    monkeypatch.setattr(drive, "_UPLOAD_CHUNK_SIZE", 256 * 1024)
    path = tmp_path / "csap_mes.csv"
    path.write_bytes(b"u,text\n" + b"u1,x\n" * 200_000)
    server.fail("files.create.upload", status=404, reason="notFound", message="Upload session expired", after=1)
    (result,) = _upload(service, [(path, "csap_mes.csv")], retry)
    assert result.action == "created"
    assert [item.name for item in server.children(shared_drive_folder)] == ["csap_mes.csv"]
    assert server.files[result.file_id].content == path.read_bytes()
    operations = server.operations()
    assert operations.count("files.create.start") == 2
    expired = operations.index("files.create.upload") + 1
    assert operations[expired + 1] == "files.list"  # looked for the file before creating it again


def test_create_answered_with_500_after_it_was_applied_does_not_duplicate(
    server, service, outputs, retry, shared_drive_folder
):
    """A create applied on the server but answered 500 is found by the re-query before any retry."""
    server.fail("files.create.upload", status=500, apply=True)
    _upload(service, outputs, retry)
    assert sorted(item.name for item in server.children(shared_drive_folder)) == sorted(OUTPUT_NAMES)
    assert server.operations().count("files.create.start") == 3


def test_create_whose_connection_drops_does_not_duplicate(server, service, outputs, retry, shared_drive_folder):
    """A create applied on the server whose connection drops before the answer leaves exactly one file."""
    server.fail("files.create.upload", drop=True, apply=True, times=2)
    _upload(service, outputs[:1], retry)
    assert [item.name for item in server.children(shared_drive_folder)] == ["csap_mes.csv"]


def test_create_that_was_not_applied_is_retried(server, service, outputs, retry, shared_drive_folder):
    """A create that timed out before reaching Drive is re-queried, found missing, and created once."""
    server.fail("files.create.start", hang=True)
    results = _upload(service, outputs[:1], retry)
    assert results[0].action == "created"
    assert [item.name for item in server.children(shared_drive_folder)] == ["csap_mes.csv"]


def test_each_file_goes_up_as_its_own_type(server, service, tmp_path, retry, shared_drive_folder):
    """Drive shows and opens a file by its type: the tables as CSV, the analysis report as a web page."""
    report = tmp_path / "report.html"
    report.write_text("<!DOCTYPE html><title>report</title>", encoding="utf-8")
    table = tmp_path / "engagement_counts.csv"
    table.write_text("Dataset\ns01e01\n", encoding="utf-8")
    files = [(report, "csap_analysis_report.html"), (table, "csap_engagement_counts.csv")]
    _upload(service, files, retry)
    assert server.child(shared_drive_folder, "csap_analysis_report.html").mime_type == "text/html"
    assert server.child(shared_drive_folder, "csap_engagement_counts.csv").mime_type == "text/csv"
    # A report an earlier version uploaded as a CSV is given its type when it is updated.
    server.child(shared_drive_folder, "csap_analysis_report.html").mime_type = "text/csv"
    assert [result.action for result in _upload(service, files, retry)] == ["updated", "updated"]
    assert server.child(shared_drive_folder, "csap_analysis_report.html").mime_type == "text/html"


def test_a_daily_limit_is_not_reported_as_a_sharing_problem(server, service, outputs, retry, shared_drive_folder):
    """A used-up project quota is not mended by sharing the folder: the message says to wait or raise the quota."""
    server.fail("files.list", status=403, reason="dailyLimitExceeded", times=1)
    with pytest.raises(DriveError) as error:
        _upload(service, outputs[:1], retry)
    assert "dailyLimitExceeded" in str(error.value) and "run again later" in str(error.value)
    assert "share " not in str(error.value)


def test_a_drive_api_not_enabled_is_not_reported_as_a_sharing_problem(server, service, outputs, retry,
                                                                      shared_drive_folder):
    """403 accessNotConfigured: the project's Drive API is off; sharing the folder would not help."""
    server.fail("files.list", status=403, reason="accessNotConfigured",
                message="Google Drive API has not been used in project 123 before or it is disabled.")
    with pytest.raises(DriveError) as error:
        _upload(service, outputs[:1], retry)
    message = str(error.value)
    assert "the Drive API is not enabled in the Google Cloud project of" in message
    assert "enable it there (APIs & Services), then run again" in message
    assert "share" not in message


def test_service_account_quota_error_explains_the_remedy(server, service, outputs, retry):
    """Creating files in a person's My Drive folder fails with the quota 403, reported with the remedies."""
    server.add_folder("CSAP", shared_with_me=True)
    with pytest.raises(DriveError) as error:
        _upload(service, outputs, retry, drive_dir="CSAP")
    message = str(error.value)
    assert "creating CSAP/csap_mes.csv" in message
    assert "storageQuotaExceeded" in message
    assert "Shared Drive" in message
    assert "create the files once by hand" in message
    assert TEST_CLIENT_EMAIL in message


def test_two_files_of_one_name_stop_the_upload_before_anything_is_sent(
    server, service, outputs, retry, shared_drive_folder
):
    """The third output has two copies on Drive: found while every file is looked up, before the first is sent,
    so Drive does not end with this run's first CSVs beside the last run's third."""
    old = {name: server.add_file(name, b"last run\n", parent=shared_drive_folder) for name in OUTPUT_NAMES[:2]}
    for _ in range(2):
        server.add_file(OUTPUT_NAMES[2], b"last run\n", parent=shared_drive_folder)
    with pytest.raises(DriveError, match=r"2 files named 'CSAP/Outputs/csap_prod\.csv'"):
        _upload(service, outputs, retry)
    assert all(server.files[file_id].content == b"last run\n" for file_id in old.values())
    assert not [op for op in server.operations() if op.startswith(("files.update", "files.create"))]


def test_an_upload_that_stops_part_way_says_what_was_sent(server, service, outputs, retry):
    """In a person's My Drive folder holding the first two CSVs (made by hand), the third cannot be created
    (storageQuotaExceeded): the error says which files went up and which did not, and which need making by hand."""
    folder = server.add_folder("CSAP", shared_with_me=True)
    for name in OUTPUT_NAMES[:2]:
        server.add_file(name, b"last run\n", parent=folder)
    with pytest.raises(DriveError) as error:
        _upload(service, outputs, retry, drive_dir="CSAP")
    assert str(error.value).endswith(
        "(sent: csap_mes.csv, csap_ind.csv; not sent: csap_prod.csv; not on Drive before this upload: csap_prod.csv)")


def test_ctrl_c_part_way_says_what_was_sent(server, service, outputs, retry, shared_drive_folder):
    """Ctrl-C just after the first file went up: the interrupt says what Drive holds from this upload."""

    def interrupted_after_the_first(line: str) -> None:
        if line.startswith("Drive: created"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as interrupt:
        upload_files(service=service, files=outputs, drive_dir="CSAP/Outputs", retry=retry,
                     log=interrupted_after_the_first)
    assert interrupt.value.args == (
        "the Drive upload stopped: sent: csap_mes.csv; not sent: csap_ind.csv, csap_prod.csv; not on Drive before this "
        "upload: csap_ind.csv, csap_prod.csv",)


def test_a_token_refused_for_a_wrong_clock_says_googles_reason(server, service, outputs, retry, shared_drive_folder):
    """Google's words reach the user (a clock far off makes the key's token request invalid), not only a guess that
    the key was deleted; nothing is retried."""
    server.fail("token", status=400, reason="invalid_grant", message="Invalid JWT: Token must be a short-lived "
                "token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.")
    with pytest.raises(DriveError, match=r"Google refused the service-account key when asked for an access token "
                                         r"\(invalid_grant: Invalid JWT: Token must be a short-lived token .*\): is the "
                                         r"key of .* deleted or disabled, or this computer's clock wrong\?"):
        _upload(service, outputs[:1], retry)
    assert server.operations().count("token") == 1


def test_a_token_endpoint_failing_for_a_while_is_retried(server, service, outputs, retry, sleeps, shared_drive_folder):
    """503s from the token endpoint beyond google-auth's own retries are a passing failure: tried again later, not
    reported as a refused key."""
    server.fail("token", status=503, reason="backendError", message="Service Unavailable", times=4)
    (result,) = _upload(service, outputs[:1], retry)
    assert result.action == "created" and sleeps


def test_missing_local_file_fails_before_anything_is_sent(server, service, tmp_path, retry):
    """A missing local output is reported by path before any Drive request."""
    missing = tmp_path / "csap_mes.csv"
    with pytest.raises(DriveError, match=r"csap_mes\.csv: file to upload to Drive does not exist"):
        _upload(service, [(missing, "csap_mes.csv")], retry)
    assert server.requests == []


def test_upload_to_drive_reads_the_key_from_cloud_storage(
    server, key, outputs, retry, shared_drive_folder, monkeypatch
):
    """--drive-upload end to end: key from gs:// (emulator), token from the local endpoint, files created."""
    import redss_pipeline.export.drive as drive_module

    real_build = drive_module.build_drive_service
    monkeypatch.setattr(drive_module, "build_drive_service", lambda k: real_build(k, root_url=server.url, timeout=2))
    with StorageEmulator() as emulator:
        url = emulator.put("csap-drive-key.json", json.dumps(key).encode())
        results = upload_to_drive(
            credentials_url=url,
            drive_dir="CSAP/Outputs",
            files=outputs,
            storage_client_factory=emulator.client,
            retry=retry,
        )
    assert [result.action for result in results] == ["created"] * 3
    assert server.token_claims[0]["iss"] == TEST_CLIENT_EMAIL


def test_key_and_token_never_appear_in_output_or_logs(
    server, key, outputs, retry, shared_drive_folder, capsys, caplog, tmp_path, monkeypatch
):
    """Nothing of the key or the access token is printed or logged, even at DEBUG and after failures."""
    import redss_pipeline.export.drive as drive_module

    caplog.set_level(logging.DEBUG)
    real_build = drive_module.build_drive_service
    monkeypatch.setattr(drive_module, "build_drive_service", lambda k: real_build(k, root_url=server.url, timeout=0.5))
    key_file = tmp_path / "drive-key.json"
    key_file.write_text(json.dumps(key), encoding="utf-8")
    server.fail("files.create.upload", status=503)
    server.fail("files.create.upload", hang=True, apply=True)
    upload_to_drive(credentials_url=str(key_file), drive_dir="CSAP/Outputs", files=outputs, retry=retry)
    with pytest.raises(DriveError) as error:
        upload_to_drive(credentials_url=str(key_file), drive_dir="Nowhere", files=outputs, retry=retry)
    captured = capsys.readouterr()
    everything = captured.out + captured.err + caplog.text + str(error.value)
    assert "Drive: created CSAP/Outputs/csap_mes.csv" in captured.out
    for line in key["private_key"].splitlines()[1:-1]:
        assert line not in everything
    assert key["private_key_id"] not in everything
    assert TEST_ACCESS_TOKEN not in everything
