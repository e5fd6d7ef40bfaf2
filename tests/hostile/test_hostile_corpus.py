"""The hostile-input corpus over the real path: HTTP to the local stack (its postback token), the ingest's
answer, the exact bytes in S3 under raw/<sha256>.xml, and the consumer's verdict in DynamoDB.

All cases are sent once, by a module fixture, and the consumer's verdicts awaited together; each case is then
checked by its own test. Bodies that would fetch something point at a loopback listener that counts
connections, or at a canary file whose contents and access time are watched: nothing may reach either.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socketserver
import threading
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from mmsbridge.postbacks.reader import REASONS
from tests.hostile.corpus import (
    CANARY,
    CASES,
    LISTENER,
    AppliedInbound,
    AppliedMessage,
    Case,
    Quarantined,
)
from tests.waiting import eventually

pytestmark = pytest.mark.e2e

SETTLE_TIMEOUT_S = 45
OLD_ATIME_NS = 1_000_000_000 * 10**9  # 2001: any read moves it (relatime updates an atime older than mtime)


class LoopbackListener(socketserver.ThreadingTCPServer):
    """An HTTP listener on 127.0.0.1 that counts every connection and what was asked for."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self.lock = threading.Lock()
        listener = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.settimeout(2)
                try:
                    first = self.request.recv(1024).split(b"\r\n", 1)[0]
                except OSError:
                    first = b"(nothing read)"
                with listener.lock:
                    listener.requests.append(first)
                self.request.sendall(b'HTTP/1.0 200 OK\r\n\r\n<!ENTITY payload "fetched">')

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@dataclass
class Canary:
    """A file a body names as an external entity: its unique contents must appear nowhere and (where the
    file system records access times) its access time must not move."""

    path: Path
    contents: str
    control: Path  # read by the test itself: shows whether reads move the access time here

    @classmethod
    def create(cls, directory: Path) -> Canary:
        contents = f"mmsbridge-canary-{uuid.uuid4().hex}"
        path, control = directory / "canary.txt", directory / "control.txt"
        for file in (path, control):
            file.write_text(contents)
            os.utime(file, ns=(OLD_ATIME_NS, time.time_ns()))
        return cls(path, contents, control)

    @property
    def url(self) -> str:
        return self.path.as_uri()

    def was_read(self) -> bool | None:
        """True/False when this file system shows reads in access times; None when it does not."""
        self.control.read_text()
        if os.stat(self.control).st_atime_ns == OLD_ATIME_NS:
            return None
        return os.stat(self.path).st_atime_ns != OLD_ATIME_NS


@dataclass
class Sent:
    case: Case
    body: bytes
    status: int
    answer: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()

    @property
    def key(self) -> str:
        return f"raw/{self.sha256}.xml"


def send(base_url: str, case: Case, body: bytes, token: str, wrong_token: str) -> tuple[int, bytes]:
    host, port = base_url.removeprefix("http://").split(":")
    fill = {"token": token, "wrong_token": wrong_token}
    connection = http.client.HTTPConnection(host, int(port), timeout=30, source_address=(case.source, 0))
    try:
        connection.request(
            case.method,
            case.path.format(**fill),
            body=body if body or case.method in ("POST", "PUT", "PATCH") else None,
            headers={name: value.format(**fill) for name, value in case.headers},
        )
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def quarantine_record(stack, sent: Sent) -> dict | None:
    return stack.table.get(f"QUARANTINE#{sent.sha256}", "Q")


def applied_item(stack, outcome: AppliedMessage | AppliedInbound) -> dict | None:
    if isinstance(outcome, AppliedMessage):
        return stack.table.message(outcome.tracking_id)
    return stack.table.get(f"IN#{outcome.origin}#{outcome.id}", "MSG")


def verdict(stack, sent: Sent) -> dict | None:
    """What the consumer made of an admitted body so far: its quarantine record or its applied item."""
    outcome = sent.case.outcome
    found = quarantine_record(stack, sent)
    if found is None and isinstance(outcome, AppliedMessage | AppliedInbound):
        found = applied_item(stack, outcome)
    return found


def scan_text(stack) -> str:
    """Every item of the state table, as one JSON text."""
    items, params = [], {"TableName": stack.endpoints["tables"]["StateTable"]}
    while True:
        page = stack.dynamodb.scan(**params)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            break
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return json.dumps(items, default=lambda value: str(value) if isinstance(value, Decimal) else repr(value))


@pytest.fixture(scope="module")
def run(tokened_stack, tmp_path_factory):
    listener = LoopbackListener()
    threading.Thread(target=listener.serve_forever, name="loopback-listener", daemon=True).start()
    canary = Canary.create(tmp_path_factory.mktemp("canary"))
    token = tokened_stack.token
    wrong_token = token[:-1] + ("A" if token[-1] != "A" else "B")
    sent: dict[str, Sent] = {}
    try:
        for case in CASES:
            body = case.body.replace(LISTENER, listener.url.encode()).replace(CANARY, canary.url.encode())
            status, answer = send(tokened_stack.base_url, case, body, token, wrong_token)
            sent[case.name] = Sent(case, body, status, answer)
        waiting = {name for name, s in sent.items() if s.case.outcome is not None and s.status == 200}

        def settled() -> bool:
            waiting.difference_update({name for name in waiting if verdict(tokened_stack, sent[name])})
            return not waiting

        eventually(settled, timeout=SETTLE_TIMEOUT_S, interval=0.3)
        yield sent, listener, canary
    finally:
        listener.shutdown()
        listener.server_close()


def test_the_corpus_covers_at_least_thirty_distinct_cases():
    names = [case.name for case in CASES]
    assert len(names) >= 30
    assert len(set(names)) == len(names)
    bodies = [case.body for case in CASES if case.body]
    assert len(set(bodies)) == len(bodies), "two cases share a body, so they would share an S3 key"
    for case in CASES:
        assert (case.outcome is None) != case.admitted, case.name
        if isinstance(case.outcome, Quarantined):
            assert case.outcome.reason in REASONS, case.name


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_each_case_gets_its_documented_answer_and_outcome(case, run, tokened_stack):
    sent = run[0][case.name]
    expected = case.answer
    assert sent.status == expected.status, sent.answer[:300]
    if expected.body is not None:
        answer = json.loads(sent.answer)
        if case.admitted:
            assert answer == {**expected.body, "sha256": sent.sha256}
        else:
            assert answer == expected.body

    bucket = tokened_stack.endpoints["buckets"]["ArchiveBucket"]
    try:
        stored = tokened_stack.s3.get_object(Bucket=bucket, Key=sent.key)
    except tokened_stack.s3.exceptions.NoSuchKey:
        stored = None
    if not case.admitted:
        assert stored is None, "a refused body was stored"
        return
    assert stored is not None, f"admitted but not archived under {sent.key}"
    assert stored["Body"].read() == sent.body, "the archived bytes differ from the bytes sent"
    assert stored["Metadata"]["sha256"] == sent.sha256

    outcome = case.outcome
    quarantined = quarantine_record(tokened_stack, sent)
    if isinstance(outcome, Quarantined):
        assert quarantined is not None, f"not quarantined within {SETTLE_TIMEOUT_S} s"
        assert (quarantined["reason"], quarantined["raw_key"]) == (outcome.reason, sent.key), quarantined
        return
    assert quarantined is None, f"quarantined instead of applied: {quarantined}"
    item = applied_item(tokened_stack, outcome)
    assert item is not None, f"not applied within {SETTLE_TIMEOUT_S} s"
    if isinstance(outcome, AppliedMessage):
        assert item["state"] == outcome.state
        (event,) = item["history"]
        assert event["raw_key"] == sent.key
        for name, value in outcome.fields.items():
            assert event["fields"].get(name, "absent") == value, name
    else:
        assert item["raw_key"] == sent.key
        for name, value in outcome.values.items():
            assert item.get(name) == value, name


def test_nothing_was_fetched_from_loopback(run):
    _, listener, _ = run
    assert listener.requests == []


@pytest.fixture(scope="module")
def stored_text(run, tokened_stack) -> str:
    """The whole state table once every case has settled."""
    return scan_text(tokened_stack)


def test_the_canary_file_was_never_read(run, tokened_stack, stored_text):
    _, _, canary = run
    assert canary.contents not in stored_text
    assert canary.contents not in tokened_stack.log()
    read = canary.was_read()
    if read is None:
        pytest.skip("this file system does not record reads in access times; contents checked only")
    assert read is False


def test_no_entity_was_expanded_and_no_file_contents_stored(tokened_stack, stored_text):
    assert "lollol" not in stored_text
    assert "a" * 1000 not in stored_text
    assert "fetched" not in stored_text
    passwd = Path("/etc/passwd").read_text().splitlines()[0]
    assert passwd not in stored_text
    assert passwd not in tokened_stack.log()


def test_every_admitted_body_was_acknowledged_and_none_dead_lettered(run, tokened_stack):
    queues = tokened_stack.endpoints["queues"]

    def depth(url: str) -> int:
        attributes = tokened_stack.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    assert eventually(lambda: depth(queues["PostbackQueue"]) == 0, timeout=10), "records left on the queue"
    assert depth(queues["PostbackDLQ"]) == 0


def test_the_token_is_never_logged(run, tokened_stack):
    # The start banner prints the URL, token included, for the person who started the stack; no other line
    # (the gateway's, the functions', moto's) holds it.
    lines = [line for line in tokened_stack.log().splitlines() if tokened_stack.token in line]
    assert lines == [tokened_stack.banner()]
