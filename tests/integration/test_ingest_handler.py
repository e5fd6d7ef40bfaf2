"""The real ingest handler against moto, wired from template.yaml: bytes really stored, faults answered,
forged postbacks (an admitted address, a wrong or no token) refused with nothing stored."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections import Counter
from pathlib import Path

import boto3
import pytest

from local import aws_faults
from local import stack as local_stack
from local.runtime import patched_environ
from mmsbridge.core import envelope

EVENTS = Path(__file__).resolve().parents[2] / "events" / "ingest"
EVENT_TOKEN = "REPLACE-WITH-THE-POSTBACK-TOKEN"
BODY = b"<POSTBACK><ORIGIN>SMS_MT</ORIGIN><CODE>N202</CODE><TRACKINGID>T1</TRACKINGID></POSTBACK>"
# What another customer of the provider could post from the provider's own addresses: an opt-out.
FORGED_STOP = (
    b"<POSTBACK><ORIGIN>SMS_MO</ORIGIN><CODE>N211</CODE><FROM>13125550188</FROM><TO>47215</TO>"
    b"<TEXT>STOP</TEXT></POSTBACK>"
)


@pytest.fixture(scope="module")
def ingest(moto_server, aws_stack):
    functions = local_stack.load_functions(aws_stack, moto_server.endpoint_url)
    return functions["IngestFunction"]


@pytest.fixture(scope="module")
def token(moto_server, aws_stack):
    """The current token of the stack's PostbackTokenSecret, as provisioning generated it."""
    value = local_stack.postback_token(aws_stack, moto_server.endpoint_url)
    assert value is not None
    assert len(value) == 48
    assert value.isalnum()
    return value


@pytest.fixture
def queue_url(aws_stack, aws_clients):
    url = next(q.url for q in aws_stack.queues().values() if q.logical_id == "PostbackQueue")
    drain(aws_clients["sqs"], url)
    return url


@pytest.fixture
def bucket(aws_stack):
    return next(b.name for b in aws_stack.buckets().values() if b.logical_id == "ArchiveBucket")


def proxy_event(body: bytes, token: str | None, ip: str = "127.0.0.1") -> dict:
    return {
        "resource": "/postback/{token}",
        "path": f"/postback/{token}",
        "httpMethod": "POST",
        "headers": {"Content-Type": "text/xml"},
        "pathParameters": {"token": token} if token is not None else None,
        "requestContext": {"requestId": "it-1", "identity": {"sourceIp": ip}},
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }


def emitted_metrics(output: str) -> Counter:
    """The metrics the handler printed (CloudWatch embedded metric format, one JSON object per line)."""
    counts: Counter = Counter()
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            document = json.loads(line)
            for directive in document["_aws"]["CloudWatchMetrics"]:
                for metric in directive["Metrics"]:
                    value = document[metric["Name"]]
                    counts[metric["Name"]] += sum(value) if isinstance(value, list) else value
    return counts


def drain(sqs, url: str) -> list[dict]:
    messages = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        if not batch:
            return messages
        messages.extend(batch)
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
        sqs.delete_message_batch(QueueUrl=url, Entries=entries)


def object_keys(s3, bucket: str) -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="raw/").get("Contents", [])}


def test_accepted_postback_is_in_s3_and_on_the_queue_byte_for_byte(
    ingest, token, aws_clients, queue_url, bucket
):
    body = BODY.replace(b"T1", b"T-accepted") + "\u00e9\u2713".encode()
    response = ingest.invoke(proxy_event(body, token))
    assert response["statusCode"] == 200
    sha = hashlib.sha256(body).hexdigest()
    assert json.loads(response["body"]) == {"status": "accepted", "sha256": sha}

    stored = aws_clients["s3"].get_object(Bucket=bucket, Key=f"raw/{sha}.xml")
    assert stored["Body"].read() == body
    assert stored["Metadata"]["source-ip"] == "127.0.0.1"
    assert stored["Metadata"]["request-id"] == "it-1"
    assert stored["Metadata"]["content-type"] == "text/xml"
    assert stored["Metadata"]["sha256"] == sha

    (message,) = drain(aws_clients["sqs"], queue_url)
    queued = envelope.decode(message["Body"])
    assert queued.body == body
    assert queued.key == f"raw/{sha}.xml"
    assert queued.sha256 == sha


def test_a_retry_lands_on_the_same_key(ingest, token, aws_clients, queue_url, bucket):
    body = BODY.replace(b"T1", b"T-retry")
    key = f"raw/{hashlib.sha256(body).hexdigest()}.xml"
    for _ in range(3):
        assert ingest.invoke(proxy_event(body, token))["statusCode"] == 200
    versions = aws_clients["s3"].list_object_versions(Bucket=bucket, Prefix=key)["Versions"]
    assert {v["Key"] for v in versions} == {key}
    assert len(versions) == 3  # versioned bucket: each retry a version of the one key
    # The queue carries each delivery; the consumer deduplicates on content.
    assert [envelope.decode(m["Body"]).key for m in drain(aws_clients["sqs"], queue_url)] == [key] * 3


def test_malformed_body_is_stored_not_judged(ingest, token, aws_clients, queue_url, bucket):
    body = b"\xff\xfe<!DOCTYPE boom [<!ENTITY a 'a'>]><POSTBACK>&a;"
    assert ingest.invoke(proxy_event(body, token))["statusCode"] == 200
    key = f"raw/{hashlib.sha256(body).hexdigest()}.xml"
    assert aws_clients["s3"].get_object(Bucket=bucket, Key=key)["Body"].read() == body
    assert envelope.decode(drain(aws_clients["sqs"], queue_url)[0]["Body"]).body == body


def test_body_too_large_to_travel_inline_goes_by_key(ingest, token, aws_clients, queue_url, bucket):
    body = b"<POSTBACK>" + b"x" * (envelope.INLINE_BODY_LIMIT + 10) + b"</POSTBACK>"
    assert ingest.invoke(proxy_event(body, token))["statusCode"] == 200
    (message,) = drain(aws_clients["sqs"], queue_url)
    queued = envelope.decode(message["Body"])
    assert queued.body is None
    assert aws_clients["s3"].get_object(Bucket=bucket, Key=queued.key)["Body"].read() == body


@pytest.mark.parametrize(
    ("event", "status"),
    [
        (lambda token: proxy_event(BODY, token, ip="127.0.0.2"), 403),
        (lambda token: proxy_event(BODY, token, ip="34.198.230.58"), 403),  # the provider's, not local
        (lambda token: proxy_event(b"", token), 400),
        (lambda token: proxy_event(b"x" * (1024 * 1024 + 1), token), 413),
    ],
)
def test_refusals_store_nothing(ingest, token, aws_clients, queue_url, bucket, event, status):
    before = object_keys(aws_clients["s3"], bucket)
    response = ingest.invoke(event(token))
    assert response["statusCode"] == status
    assert object_keys(aws_clients["s3"], bucket) == before
    assert drain(aws_clients["sqs"], queue_url) == []


def test_s3_failure_answers_503_and_says_what_remains(ingest, token, aws_clients, queue_url, bucket):
    body = BODY.replace(b"T1", b"T-s3-down")
    key = f"raw/{hashlib.sha256(body).hexdigest()}.xml"
    with aws_faults.inject(ingest.module.INGEST.archive._s3, "PutObject", rate=1.0) as injected:
        response = ingest.invoke(proxy_event(body, token))
    assert response["statusCode"] == 503
    assert injected.injected == 3  # the client's standard retries all failed
    assert key not in object_keys(aws_clients["s3"], bucket)
    # What remains: the queue message went out, with the bytes inline; the consumer can still use it,
    # and the provider's retry (the 503) writes the object under the same key.
    (message,) = drain(aws_clients["sqs"], queue_url)
    assert envelope.decode(message["Body"]).body == body
    assert ingest.invoke(proxy_event(body, token))["statusCode"] == 200
    assert key in object_keys(aws_clients["s3"], bucket)


def test_sqs_failure_answers_503_and_says_what_remains(ingest, token, aws_clients, queue_url, bucket):
    body = BODY.replace(b"T1", b"T-sqs-down")
    key = f"raw/{hashlib.sha256(body).hexdigest()}.xml"
    with aws_faults.inject(
        ingest.module.INGEST.queue._sqs, "SendMessage", rate=1.0, connection_error=True
    ) as injected:
        response = ingest.invoke(proxy_event(body, token))
    assert response["statusCode"] == 503
    assert injected.injected >= 1
    # What remains: the object, which the provider's retry overwrites with the same bytes; no message yet.
    assert aws_clients["s3"].get_object(Bucket=bucket, Key=key)["Body"].read() == body
    assert drain(aws_clients["sqs"], queue_url) == []
    assert ingest.invoke(proxy_event(body, token))["statusCode"] == 200
    assert len(drain(aws_clients["sqs"], queue_url)) == 1


def test_large_body_is_not_enqueued_when_its_object_failed(ingest, token, aws_clients, queue_url, bucket):
    body = b"<POSTBACK>" + b"y" * (envelope.INLINE_BODY_LIMIT + 10) + b"</POSTBACK>"
    with aws_faults.inject(ingest.module.INGEST.archive._s3, "PutObject", rate=1.0):
        assert ingest.invoke(proxy_event(body, token))["statusCode"] == 503
    assert drain(aws_clients["sqs"], queue_url) == []  # never a message pointing at a missing object


def test_transient_failure_absorbed_by_retries(ingest, token, aws_clients, queue_url, bucket):
    body = BODY.replace(b"T1", b"T-flaky")
    with aws_faults.inject(ingest.module.INGEST.archive._s3, "PutObject", rate=0.5, seed=3) as injected:
        response = ingest.invoke(proxy_event(body, token))
    assert injected.injected >= 1
    assert response["statusCode"] == 200
    assert len(drain(aws_clients["sqs"], queue_url)) == 1


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("postback-admitted.json", 200),
        ("postback-base64.json", 200),
        ("postback-refused-address.json", 403),
        ("postback-oversized.json", 413),
    ],
)
def test_sample_events(moto_server, aws_stack, aws_clients, queue_url, token, name, status):
    # The events carry the provider's addresses, so they run with the template's default CIDRs.
    stack = local_stack.load_local_stack(
        moto_server.endpoint_url,
        overrides={"AllowedSourceCidrs": "34.198.230.58/32,34.196.116.219/32,34.197.248.124/32"},
    )
    function = local_stack.load_functions(stack, moto_server.endpoint_url)["IngestFunction"]
    # The events hold a placeholder where the URL's token goes (a deployment's token is in its secret).
    text = (EVENTS / name).read_text()
    assert EVENT_TOKEN in text
    event = json.loads(text.replace(EVENT_TOKEN, token))
    assert function.invoke(event)["statusCode"] == status
    assert len(drain(aws_clients["sqs"], queue_url)) == (1 if status == 200 else 0)


# ------------------------------------------------------------------------------- the postback URL's token


@pytest.fixture(scope="module")
def secretsmanager(moto_server, aws_stack):
    with patched_environ(local_stack.aws_environment(moto_server.endpoint_url, aws_stack.region)):
        return boto3.client("secretsmanager")


def new_token() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex[:8]  # 40 characters of 0-9a-f


def document(current: str, previous: str | None = None) -> str:
    return json.dumps({"current": current, **({"previous": previous} if previous else {})})


def variant(aws_stack, moto_server, suffix: str, **environment: str):
    """The ingest with its own containers (a cold start of its own) and these environment variables."""
    return local_stack.function_for(
        aws_stack,
        "IngestFunction",
        moto_server.endpoint_url,
        environment=environment,
        name_suffix=suffix,
        max_containers=1,
    )


def test_forged_postbacks_from_an_admitted_address_change_nothing(
    ingest, token, aws_clients, queue_url, bucket, capfd
):
    forged = {
        "wrong token": token[:-1] + ("A" if token[-1] != "A" else "B"),
        "another account's token": new_token(),
        "token with a suffix": token + "x",
        "token's prefix": token[:16],
        "empty token": "",
        "no token": None,
        "token in another case": token.swapcase(),
    }
    capfd.readouterr()
    before = object_keys(aws_clients["s3"], bucket)
    answers = {name: ingest.invoke(proxy_event(FORGED_STOP, given)) for name, given in forged.items()}
    for name, answer in answers.items():
        assert (answer["statusCode"], json.loads(answer["body"])) == (403, {"message": "Forbidden"}), name
    assert object_keys(aws_clients["s3"], bucket) == before
    assert drain(aws_clients["sqs"], queue_url) == []
    metrics = emitted_metrics(capfd.readouterr().out)
    assert metrics["RefusedToken"] == len(forged)
    assert metrics["Accepted"] == 0


def test_the_right_token_is_accepted(ingest, token, aws_clients, queue_url, bucket, capfd):
    body = FORGED_STOP.replace(b"STOP", f"STOP {uuid.uuid4().hex}".encode())
    capfd.readouterr()
    assert ingest.invoke(proxy_event(body, token))["statusCode"] == 200
    assert f"raw/{hashlib.sha256(body).hexdigest()}.xml" in object_keys(aws_clients["s3"], bucket)
    assert len(drain(aws_clients["sqs"], queue_url)) == 1
    metrics = emitted_metrics(capfd.readouterr().out)
    assert (metrics["Accepted"], metrics["RefusedToken"]) == (1, 0)


def test_the_token_is_compared_in_constant_time(ingest, token, aws_clients, queue_url, bucket, monkeypatch):
    calls = []
    real = hmac.compare_digest

    def recording(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    assert ingest.invoke(proxy_event(BODY, token))["statusCode"] == 200
    assert (token.encode(), token.encode()) in calls
    wrong = new_token()
    assert ingest.invoke(proxy_event(BODY, wrong))["statusCode"] == 403
    assert (wrong.encode(), token.encode()) in calls
    drain(aws_clients["sqs"], queue_url)

    # The decision is compare_digest's: when it says no, the right token is refused and nothing stored.
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: False)
    body = BODY.replace(b"T1", b"T-compare-digest-says-no")
    assert ingest.invoke(proxy_event(body, token))["statusCode"] == 403
    assert f"raw/{hashlib.sha256(body).hexdigest()}.xml" not in object_keys(aws_clients["s3"], bucket)
    assert drain(aws_clients["sqs"], queue_url) == []


def test_a_flood_of_wrong_tokens_is_not_a_flood_of_secret_reads(
    aws_stack, moto_server, token, aws_clients, queue_url
):
    function = variant(aws_stack, moto_server, "Flood")
    reads = []
    function.module.INGEST.secrets.meta.events.register(
        "before-call.secrets-manager.GetSecretValue", lambda **_: reads.append(1)
    )
    assert function.invoke(proxy_event(BODY, token))["statusCode"] == 200
    assert len(reads) == 1
    for _ in range(300):
        assert function.invoke(proxy_event(FORGED_STOP, new_token()))["statusCode"] == 403
    # The recheck interval (10 s) bounds the reads, however many wrong tokens arrive: one read for the
    # first wrong token (the copy may predate a rotation), another only every 10 s after it.
    assert len(reads) <= 3
    assert function.module.INGEST.tokens.reads == len(reads)
    drain(aws_clients["sqs"], queue_url)


def test_a_rotation_seen_by_a_warm_container(
    aws_stack, moto_server, secretsmanager, aws_clients, queue_url, bucket
):
    """One container through the four steps (docs/deploying.md, The postback token), with short timings."""
    name = f"test/postback-token-{uuid.uuid4().hex[:8]}"
    old, new = new_token(), new_token()
    secretsmanager.create_secret(Name=name, SecretString=document(old))
    function = variant(
        aws_stack,
        moto_server,
        "Rotation",
        POSTBACK_TOKEN_SECRET=name,
        POSTBACK_TOKEN_RECHECK_S="0.3",
        POSTBACK_TOKEN_MAX_AGE_S="1",
    )

    def answer(given: str) -> int:
        body = BODY.replace(b"T1", f"T-rotation-{uuid.uuid4().hex}".encode())
        status = function.invoke(proxy_event(body, given))["statusCode"]
        assert (f"raw/{hashlib.sha256(body).hexdigest()}.xml" in object_keys(aws_clients["s3"], bucket)) is (
            status == 200
        )
        return status

    assert (answer(old), answer(new)) == (200, 403)
    secretsmanager.put_secret_value(SecretId=name, SecretString=document(new, previous=old))  # step 1
    assert answer(old) == 200
    function.module.INGEST.tokens._clock = lambda: 1e9  # its copy is now old: the first new token reads again
    assert (answer(new), answer(old)) == (200, 200)  # steps 2 and 3: both accepted
    secretsmanager.put_secret_value(SecretId=name, SecretString=document(new))  # step 4
    function.module.INGEST.tokens._clock = lambda: 1e9 + 1  # its copy has reached the maximum age
    assert (answer(old), answer(new)) == (403, 200)
    drain(aws_clients["sqs"], queue_url)


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        (None, "ResourceNotFoundException"),
        ("a-bare-token-not-the-document-0123456789", "the secret is not a JSON document"),
        ('{"current": "short"}', 'the secret\'s "current" is not 16-128 characters of A-Z a-z 0-9 _ -'),
        ('{"previous": "0123456789abcdef0123456789abcdef"}', 'the secret has no "current" token'),
    ],
)
def test_an_unusable_secret_answers_503_and_stores_nothing(
    aws_stack, moto_server, secretsmanager, aws_clients, queue_url, bucket, capfd, caplog, secret, reason
):
    name = f"test/unusable-{uuid.uuid4().hex[:8]}"
    if secret is not None:
        secretsmanager.create_secret(Name=name, SecretString=secret)
    function = variant(aws_stack, moto_server, f"Unusable{uuid.uuid4().hex[:6]}", POSTBACK_TOKEN_SECRET=name)
    before = object_keys(aws_clients["s3"], bucket)
    capfd.readouterr()
    response = function.invoke(
        proxy_event(BODY.replace(b"T1", b"T-unusable"), "0123456789abcdef0123456789abcdef")
    )
    assert response["statusCode"] == 503  # the provider retries; the operator fixes the secret
    assert object_keys(aws_clients["s3"], bucket) == before
    assert drain(aws_clients["sqs"], queue_url) == []
    output = capfd.readouterr().out
    assert emitted_metrics(output)["RefusedTokenUnavailable"] == 1
    (logged,) = [r for r in caplog.records if r.getMessage() == "postback token secret unusable"]
    assert logged.reason == reason
    if secret is not None:
        assert secret not in output
        assert secret not in caplog.text
