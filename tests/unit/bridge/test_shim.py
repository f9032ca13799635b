"""The one module that reaches into s3cmd: its start-up check and log cleaning."""

from __future__ import annotations

import logging

import pytest
from S3 import S3 as s3_module

from tsd_s3cmd.bridge import plans, script, shim, transfers
from tsd_s3cmd.errors import ConfigError

from ..jwts import make_jwt

# Every test here runs s3cmd's code and covers what differs between its releases.
pytestmark = [pytest.mark.s3cmd, pytest.mark.versions]


def test_the_installed_s3cmd_fits_the_hooks() -> None:
    s3cmd = script.load(None)
    assert s3cmd.problem is None
    shim.check_compatible(s3cmd, parallel=True)


def test_a_get_triplet_that_no_longer_signs_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3_module.S3Request, "get_triplet", lambda self: ("GET", "/", {}))
    with pytest.raises(ConfigError, match="get_triplet no longer signs"):
        shim.check_compatible()


def test_a_request_that_bypasses_get_triplet_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def unsigned_listing(self, conn):  # type: ignore[no-untyped-def]
        conn.request("GET", "/")  # would go out without TSD's headers
        return conn.getresponse()

    monkeypatch.setattr(s3_module.S3, "unsigned_listing", unsigned_listing, raising=False)
    with pytest.raises(ConfigError, match=r"S3\.unsigned_listing sends requests without"):
        shim.check_compatible()


def test_an_s3cmd_that_formats_its_answers_otherwise_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(s3_module, "pprint", object())
    with pytest.raises(ConfigError, match="no longer formats its answers with pprint"):
        shim.check_compatible()


def test_answers_are_formatted_for_the_debug_log_only_when_it_is_on() -> None:
    class Answer:
        formatted = 0

        def __repr__(self) -> str:
            Answer.formatted += 1
            return "<answer>"

    stand_in = shim._DebugOnlyPprint()
    root = logging.getLogger()
    level = root.level
    try:
        root.setLevel(logging.WARNING)
        assert stand_in.pformat(Answer()) == "" and Answer.formatted == 0
        root.setLevel(logging.DEBUG)
        assert stand_in.pformat({"data": Answer()}) == "{'data': <answer>}"
        assert Answer.formatted == 1
    finally:
        root.setLevel(level)
    assert stand_in.pprint is __import__("pprint").pprint  # the rest is the real module


def test_listed_dates_are_read_to_the_second_s3cmd_reads() -> None:
    from S3 import BaseUtils

    general = []
    read = shim._s3_date_reader(lambda date: general.append(date) or BaseUtils.dateS3toUnix(date))
    s3_form = ["2026-12-06T21:07:59.999Z", "1999-12-31T23:59:59.000Z", "2024-02-29T00:00:00Z",
               "2026-01-01T00:00:00.5Z", "1970-01-01T00:00:00.000Z"]  # fmt: skip
    for date in s3_form:
        assert read(date) == BaseUtils.dateS3toUnix(date), date
    assert general == []
    others = ["2026-12-06T21:07:59.123+02:00", "2026-12-06 21:07:59",
              "Sun, 06 Dec 2026 21:07:59 GMT"]  # fmt: skip
    for date in others:
        assert read(date) == BaseUtils.dateS3toUnix(date), date
    assert general == others  # read by s3cmd's own
    with pytest.raises(ValueError):  # a date that is none fails as s3cmd's does
        read("2026-13-06T21:07:59.000Z")
    with pytest.raises(ValueError):
        BaseUtils.dateS3toUnix("2026-13-06T21:07:59.000Z")


def test_an_s3cmd_that_reads_listed_dates_otherwise_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from S3 import FileLists

    monkeypatch.setattr(FileLists, "dateS3toUnix", lambda date: 0)
    with pytest.raises(ConfigError, match="no longer reads a listed date"):
        shim.check_compatible()


def test_log_records_lose_tokens_and_the_half_resume_advice() -> None:
    token = make_jwt({"name": "s3import", "exp": 1})
    record = logging.LogRecord(
        "S3", logging.ERROR, __file__, 1,
        "\nUpload of 'f' part 3 failed. Use\n  tsd-s3cmd abortmp s3://b/f ID\nto abort the "
        "upload, or\n  tsd-s3cmd --upload-id ID put ...\nto continue the upload.\n"
        "headers: {'token': '%s'}", (token,), None,
    )  # fmt: skip
    assert shim._Redact().filter(record)
    message = record.getMessage()
    assert token not in message and "redacted" in message
    assert message.startswith("Upload of 'f' part 3 failed.")
    assert "put ..." not in message


def test_the_access_key_in_an_authorization_header_is_redacted() -> None:
    header = "'Authorization': 'AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE42/20261128/us-east-1/s3"
    record = logging.LogRecord("S3", logging.DEBUG, __file__, 1, "headers: %s", (header,), None)
    assert shim._Redact().filter(record)
    assert "AKIAEXAMPLE42" not in record.getMessage()
    assert "Credential=<access key>/20261128/us-east-1/s3" in record.getMessage()


def test_vocabulary_is_the_installed_s3cmds_and_leaves_the_process_as_it_was() -> None:
    import sys

    before = sys.argv, sys.stdout, sys.stderr
    commands, options = shim.vocabulary()
    assert (sys.argv, sys.stdout, sys.stderr) == before
    assert {"mb", "put", "get", "sync", "signurl"} <= set(commands)
    assert ("--config", True) in options and ("-c", True) in options
    assert ("--recursive", False) in options and ("--multipart-chunk-size-mb", True) in options


def test_a_multipart_loop_that_no_longer_calls_upload_part_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from S3 import MultiPart

    def upload_all_parts(self, extra_label=""):  # type: ignore[no-untyped-def]
        return self.send_everything_at_once()  # a new way that the workers would not cover

    monkeypatch.setattr(MultiPart.MultiPartUpload, "upload_all_parts", upload_all_parts)
    with pytest.raises(ConfigError, match=r"upload_all_parts no longer (reads|sends)"):
        shim.check_compatible(parallel=True)


def test_an_upload_initiated_before_its_part_size_is_set_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from S3 import MultiPart

    def __init__(self, s3, src, dst_uri, headers_baseline=None, src_size=None):  # type: ignore[no-untyped-def]
        self.upload_id = self.initiate_multipart_upload()
        self.chunk_size = s3.config.multipart_chunk_size_mb  # too late to be fitted

    monkeypatch.setattr(MultiPart.MultiPartUpload, "__init__", __init__)
    with pytest.raises(ConfigError, match="no longer sets chunk_size before it initiates"):
        shim.check_compatible()


def test_md5s_taken_another_way_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from S3 import FileDict

    def get_md5(self, relative_file):  # type: ignore[no-untyped-def]
        return self.other_reader(relative_file)

    monkeypatch.setattr(FileDict.FileDict, "get_md5", get_md5)
    with pytest.raises(ConfigError, match="get_md5 no longer reads files with hash_file_md5"):
        shim.check_compatible()


def test_an_upload_part_with_other_parameters_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from S3 import MultiPart

    def upload_part(self, seq, offset, size, labels):  # type: ignore[no-untyped-def]
        return None

    monkeypatch.setattr(MultiPart.MultiPartUpload, "upload_part", upload_part)
    with pytest.raises(ConfigError, match="upload_part no longer takes chunk_size, remote_status"):
        shim.check_compatible(parallel=True)


def test_a_download_that_no_longer_uses_recv_file_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def object_get(self, uri, stream, dest_name, start_position=0, extra_label=""):  # type: ignore[no-untyped-def]
        return self.fetch_somehow(uri, stream)

    monkeypatch.setattr(s3_module.S3, "object_get", object_get)
    with pytest.raises(ConfigError, match="object_get no longer downloads with recv_file"):
        shim.check_compatible(parallel=True)


def test_a_missing_connection_pool_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(s3_module, "ConnMan")
    with pytest.raises(ConfigError, match=r"S3\.S3 has no ConnMan"):
        shim.check_compatible(parallel=True)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"etag": '"abc"'}, "abc"),
        ({"etag": '"abc-3"'}, None),  # a multipart ETag is no MD5
        ({"etag": '"abc-3"', "x-amz-meta-s3cmd-attrs": "md5:def/mode:33188"}, "def"),
        (
            {"etag": '"abc"', "x-amz-meta-s3cmd-attrs": "md5:def",
             "x-amz-meta-s3tools-gpgenc": "gpg"},
            "abc",
        ),
        ({"etag": '"abc"', "x-amz-server-side-encryption": "aws:kms"}, None),
    ],
)
def test_a_download_is_checked_against_what_s3cmd_checks(
    headers: dict[str, str], expected: str | None
) -> None:
    assert transfers.expected_md5(headers) == expected


def test_a_request_that_takes_a_connection_outside_the_send_methods_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fetch_fast(self, uri):  # type: ignore[no-untyped-def]
        conn = s3_module.ConnMan.get("host")  # would be outside the request budget
        return self.create_request("OBJECT_GET", uri=uri).get_triplet(), conn

    monkeypatch.setattr(s3_module.S3, "fetch_fast", fetch_fast, raising=False)
    with pytest.raises(ConfigError, match=r"S3\.fetch_fast takes a connection outside"):
        shim.check_compatible(parallel=True)


def test_every_transfer_loop_of_s3cmd_is_found_and_only_those() -> None:
    s3cmd = script.load(None)
    assert s3cmd.problem is None
    assert plans.incompatibility(s3cmd.code) is None


def test_an_s3cmd_whose_transfer_loops_moved_is_refused_when_files_move_at_once() -> None:
    source = script.script_path().read_bytes()
    # A put that moves its files in a helper instead of its own loop.
    changed = source.replace(b"= s3.object_put(full_name,", b"= _put_one(full_name,")
    code, problem, command_problem = script._compile(changed, "s3cmd")
    assert problem is not None and "cmd_object_put" in problem and command_problem is None
    s3cmd = script.Script(script.script_path(), code, problem)
    with pytest.raises(ConfigError, match="transfer loops have changed"):
        shim.check_compatible(s3cmd, parallel=True)
    shim.check_compatible(s3cmd, parallel=False)  # one at a time needs no loop of ours


def test_an_s3cmd_that_no_longer_waits_through_fail_wait_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(s3_module.S3, "_fail_wait")
    with pytest.raises(ConfigError, match=r"_fail_wait is missing"):
        shim.check_compatible(parallel=True)


def test_a_send_method_that_retries_another_way_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def recv_file(self, request, stream, labels, start_position=0, retries=3):  # type: ignore[no-untyped-def]
        return {}  # no getresponse, no _fail_wait: a slow-down would go unseen

    monkeypatch.setattr(s3_module.S3, "recv_file", recv_file)
    with pytest.raises(ConfigError, match=r"S3\.recv_file no longer retries"):
        shim.check_compatible(parallel=True)
