"""Real HTTP against the running local stack: postbacks stored byte for byte, strangers refused, and so are
forged postbacks from an admitted address without the URL's token."""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import signal
import socket
import stat
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest

from local.runtime import patched_environ
from local.stack import aws_environment
from tests.conftest import SAMPLES
from tests.e2e.conftest import start_local_stack

pytestmark = pytest.mark.e2e


def post(
    url: str, body: bytes, *, source: str = "127.0.0.1", method: str = "POST", headers=None, chunked=False
):
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(
        parts.hostname, parts.port, timeout=15, source_address=(source, 0)
    )
    try:
        connection.request(
            method,
            parts.path,
            body=iter([body]) if chunked else body,
            headers=headers or {"Content-Type": "text/xml; charset=utf-8"},
            encode_chunked=chunked,
        )
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def stored(local_aws, endpoints, body: bytes) -> bytes | None:
    bucket = endpoints["buckets"]["ArchiveBucket"]
    key = f"raw/{hashlib.sha256(body).hexdigest()}.xml"
    try:
        return local_aws["s3"].get_object(Bucket=bucket, Key=key)["Body"].read()
    except local_aws["s3"].exceptions.NoSuchKey:
        return None


def token_of(endpoints) -> str:
    return endpoints["postback_url"].rsplit("/", 1)[1]


def test_endpoints_file_names_the_live_stack(endpoints):
    assert endpoints["postback_url"].startswith("http://127.0.0.1:")
    assert endpoints["aws_endpoint_url"].startswith("http://127.0.0.1:")
    assert set(endpoints["queues"]) >= {"PostbackQueue", "PostbackDLQ"}
    assert "ArchiveBucket" in endpoints["buckets"]
    assert endpoints["routes"] == ["POST /postback/{token}"]  # no route without the token


def test_the_postback_url_holds_the_secrets_generated_token(local_stack_process, endpoints):
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/postback/[A-Za-z0-9]{48}", endpoints["postback_url"])
    with patched_environ(aws_environment(endpoints["aws_endpoint_url"], endpoints["region"])):
        secretsmanager = boto3.client("secretsmanager")
    secret = secretsmanager.get_secret_value(SecretId=endpoints["postback_token_secret"])["SecretString"]
    assert json.loads(secret) == {"current": token_of(endpoints)}
    # The file holds the token: its owner alone may read it.
    mode = Path(local_stack_process["endpoints_file"]).stat().st_mode
    assert stat.S_IMODE(mode) == 0o600
    # The start banner prints the whole URL; no other line of the stack's output holds the token.
    log = (local_stack_process["workdir"] / "stack.log").read_text()
    assert f"postback URL:  {endpoints['postback_url']}" in log
    assert [line for line in log.splitlines() if token_of(endpoints) in line] == [
        f"postback URL:  {endpoints['postback_url']}"
    ]


def test_every_sample_postback_is_stored_byte_for_byte(endpoints, local_aws):
    samples = sorted((SAMPLES / "postbacks").rglob("*.xml"))
    assert len(samples) >= 30
    for path in samples:
        body = path.read_bytes()
        status, answer = post(endpoints["postback_url"], body)
        assert status == 200, (path.name, answer)
        assert json.loads(answer)["sha256"] == hashlib.sha256(body).hexdigest()
        assert stored(local_aws, endpoints, body) == body


def test_chunked_body_is_stored_whole(endpoints, local_aws):
    body = b"<POSTBACK><ORIGIN>SMS_MO</ORIGIN><CODE>N211</CODE><TEXT>chunked</TEXT></POSTBACK>"
    status, _ = post(endpoints["postback_url"], body, chunked=True)
    assert status == 200
    assert stored(local_aws, endpoints, body) == body


def test_a_second_loopback_address_is_refused_and_nothing_stored(endpoints, local_aws):
    body = b"<POSTBACK><ORIGIN>SMS_MO</ORIGIN><CODE>N211</CODE><TEXT>from a stranger</TEXT></POSTBACK>"
    status, answer = post(endpoints["postback_url"], body, source="127.0.0.2")
    assert (status, json.loads(answer)) == (403, {"message": "Forbidden"})
    assert stored(local_aws, endpoints, body) is None


@pytest.mark.parametrize(
    ("method", "body", "status"),
    [
        ("POST", b"", 400),
        ("POST", b"x" * (1024 * 1024 + 1), 413),
        ("GET", b"", 403),
        ("PUT", b"<x/>", 403),
        ("DELETE", b"", 403),
    ],
)
def test_refusals_over_http(endpoints, local_aws, method, body, status):
    got, _ = post(endpoints["postback_url"], body, method=method)
    assert got == status
    if body:
        assert stored(local_aws, endpoints, body) is None


def test_unknown_path_is_refused_like_api_gateway(endpoints):
    status, answer = post(endpoints["api_url"] + "/elsewhere", b"<x/>")
    assert (status, json.loads(answer)) == (403, {"message": "Missing Authentication Token"})


def test_refused_requests_are_logged_with_the_peer_address(local_stack_process, endpoints):
    post(endpoints["postback_url"], b"<x/>", source="127.0.0.2")
    log = (local_stack_process["workdir"] / "stack.log").read_text()
    assert 'gateway 127.0.0.2 "POST /postback/{token}" 403' in log


FORGED_STOP = (
    b"<POSTBACK><ORIGIN>SMS_MO</ORIGIN><CODE>N211</CODE><FROM>13125550177</FROM><TO>47215</TO>"
    b"<TEXT>STOP</TEXT></POSTBACK>"
)


@pytest.mark.parametrize(
    ("path", "answer"),
    [
        ("/postback/{wrong}", {"message": "Forbidden"}),
        ("/postback/{token}x", {"message": "Forbidden"}),
        ("/postback", {"message": "Missing Authentication Token"}),
        ("/postback/", {"message": "Missing Authentication Token"}),
        ("/postback?token={token}", {"message": "Missing Authentication Token"}),
    ],
)
def test_a_forged_postback_from_an_admitted_address_without_the_token_stores_nothing(
    endpoints, local_aws, path, answer
):
    # 127.0.0.1 is admitted locally, as the provider's three addresses are in AWS: every customer of the
    # provider posts from them, so only the token says the postback is this account's.
    token = token_of(endpoints)
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    body = FORGED_STOP.replace(b"STOP", f"STOP {path}".encode())
    url = endpoints["api_url"] + path.format(token=token, wrong=wrong)
    status, got = post(url, body)
    assert (status, json.loads(got)) == (403, answer)
    assert stored(local_aws, endpoints, body) is None
    assert post(endpoints["postback_url"], body)[0] == 200  # the same body with the token: stored
    assert stored(local_aws, endpoints, body) == body


def test_ctrl_c_stops_cleanly_and_removes_the_endpoints_file(tmp_path):
    started = start_local_stack(tmp_path)  # a stack of its own: the shared one serves other tests
    try:
        process = started["process"]
        process.send_signal(signal.SIGINT)
        # A bound on a hang, not a speed: a loaded machine can take seconds to join the pollers.
        assert process.wait(timeout=60) == 0
        assert not started["endpoints_file"].exists()
        for url in (started["endpoints"]["postback_url"], started["endpoints"]["aws_endpoint_url"]):
            parts = urlsplit(url)
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((parts.hostname, parts.port), timeout=2).close()
    finally:
        started["stack"].stop(timeout_s=0)
