"""The postback token's rotation (docs/deploying.md) on the local stack under a stream of postbacks:
moto's Secrets Manager holds the token, `python -m local run` serves the real ingest over HTTP, a provider
thread posts without pause, and the test walks the four steps. No postback is refused while both tokens are
accepted, the old token is refused only once it has been dropped, and every accepted postback is archived.

The stack runs with the same rules and shorter timings (through the environment): a mismatch reads the
secret again after RECHECK_S instead of 10 s, and a copy expires after MAX_AGE_S instead of five minutes; the
waits between the steps shrink with them.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import boto3
import pytest

from local.runtime import patched_environ
from local.stack import aws_environment
from tests.e2e.conftest import start_local_stack

pytestmark = pytest.mark.e2e

RECHECK_S = 0.5
MAX_AGE_S = 3.0
STREAM_INTERVAL_S = 0.02


def post(url: str, body: bytes) -> int:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=15)
    try:
        connection.request("POST", parts.path, body=body, headers={"Content-Type": "text/xml; charset=utf-8"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def postback(label: str) -> bytes:
    tracking_id = f"ROT-{label}-{uuid.uuid4().hex}"
    return (
        f"<POSTBACK><ORIGIN>SMS_MT</ORIGIN><CODE>N201</CODE><STATUS>Message Sent</STATUS>"
        f"<TO>13125550188</TO><TRACKINGID>{tracking_id}</TRACKINGID>"
        f"<TIMESTAMP>2026-11-25T09:14:03-05:00</TIMESTAMP></POSTBACK>"
    ).encode()


@dataclass
class Sent:
    phase: str
    token: str  # "old" or "new"
    body: bytes
    status: int


@dataclass
class Provider:
    """Posts one postback after another to the URL it was last given, as the provider does; a postback
    that is not answered 200 is retried (the provider's retries), and every answer is recorded."""

    url: str
    token: str = "old"
    phase: str = "before"
    sent: list[Sent] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def give_url(self, url: str, token: str) -> None:
        with self._lock:
            self.url, self.token = url, token

    def run(self) -> None:
        while not self._stop.is_set():
            body = postback("stream")
            for _attempt in range(6):
                with self._lock:
                    url, token, phase = self.url, self.token, self.phase
                status = post(url, body)
                self.sent.append(Sent(phase, token, body, status))
                if status == 200:
                    break
                time.sleep(0.2)
            time.sleep(STREAM_INTERVAL_S)

    def stop(self) -> None:
        self._stop.set()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    env = {"POSTBACK_TOKEN_RECHECK_S": str(RECHECK_S), "POSTBACK_TOKEN_MAX_AGE_S": str(MAX_AGE_S)}
    started = start_local_stack(tmp_path_factory.mktemp("rotation"), env=env)
    yield started
    started["stack"].stop()


def test_a_rotation_refuses_no_postback_and_loses_none(stack):
    endpoints = stack["endpoints"]
    with patched_environ(aws_environment(endpoints["aws_endpoint_url"], endpoints["region"])):
        secretsmanager = boto3.client("secretsmanager")
        s3 = boto3.client("s3")
    secret = endpoints["postback_token_secret"]
    base = endpoints["api_url"] + "/postback/"
    old = json.loads(secretsmanager.get_secret_value(SecretId=secret)["SecretString"])["current"]
    assert endpoints["postback_url"] == base + old
    new = secretsmanager.get_random_password(PasswordLength=48, ExcludePunctuation=True)["RandomPassword"]
    probes: list[Sent] = []

    def probe(phase: str, token: str) -> None:
        """A postback outside the stream, with one token: a retry the provider sends to an older URL."""
        body = postback(f"probe-{token}")
        probes.append(Sent(phase, token, body, post(base + (old if token == "old" else new), body)))

    provider = Provider(endpoints["postback_url"])
    thread = threading.Thread(target=provider.run, name="provider")
    thread.start()
    try:
        time.sleep(1.0)  # the stream with the old token, every container's copy holding {"current": old}

        # 1. The new token, with the old one as the previous.
        provider.phase = "overlap"
        secretsmanager.put_secret_value(
            SecretId=secret, SecretString=json.dumps({"current": new, "previous": old})
        )
        for _ in range(5):
            probe("overlap", "old")
        time.sleep(2 * RECHECK_S)  # the guide: a minute (10 s would do); here twice the recheck interval
        # 2. The provider's postback URL changed to the new token.
        provider.give_url(base + new, "new")
        # 3. The provider's retry window: postbacks from before the change still come with the old token.
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            probe("overlap", "old")
            probe("overlap", "new")
            time.sleep(0.05)

        # 4. The previous token dropped; after the maximum age every container refuses it.
        provider.phase = "dropping"
        secretsmanager.put_secret_value(SecretId=secret, SecretString=json.dumps({"current": new}))
        time.sleep(MAX_AGE_S + 0.5)
        provider.phase = "after"
        for _ in range(5):
            probe("after", "old")
            probe("after", "new")
        time.sleep(0.5)
    finally:
        provider.stop()
        thread.join(timeout=30)

    stream = provider.sent
    summary = Counter((s.phase, s.token, s.status) for s in stream + probes)
    # The stream never met a refusal: every postback answered 200 on its first attempt, with whichever
    # token the provider held, through every step.
    assert [s for s in stream if s.status != 200] == [], summary
    assert {s.token for s in stream if s.phase == "before"} == {"old"}
    assert {s.token for s in stream if s.phase in ("dropping", "after")} == {"new"}
    assert {s.token for s in stream if s.phase == "overlap"} == {"old", "new"}
    assert sum(1 for s in stream if s.phase == "after") >= 5, summary
    # Both tokens accepted while both are in the secret, the old one too, until it is dropped.
    overlap = [p for p in probes if p.phase == "overlap"]
    assert {p.token for p in overlap} == {"old", "new"}
    assert [p for p in overlap if p.status != 200] == [], summary
    # Dropped: the old token refused everywhere, the new one accepted.
    after = [p for p in probes if p.phase == "after"]
    assert {(p.token, p.status) for p in after} == {("old", 403), ("new", 200)}, summary

    # None lost: every accepted postback is in the archive, byte for byte; nothing refused is.
    bucket = endpoints["buckets"]["ArchiveBucket"]

    def archived(body: bytes) -> bytes | None:
        key = f"raw/{hashlib.sha256(body).hexdigest()}.xml"
        try:
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None

    for sent in stream + probes:
        assert archived(sent.body) == (sent.body if sent.status == 200 else None), sent

    log = stack["stack"].log()
    assert "postback token secret unusable" not in log
    assert new not in log  # the new token was never printed (the banner showed the old one)
