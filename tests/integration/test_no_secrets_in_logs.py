"""No secret reaches a log line: the postback URL token (current, previous and a near miss) and the
provider's API key, run through the real ingest and sender handlers (wired from template.yaml, on moto and
the provider simulator) with every log switch an operator could turn on: POWERTOOLS_LOG_LEVEL=DEBUG,
POWERTOOLS_LOGGER_LOG_EVENT=true, and DEBUG for every library logger (botocore, urllib3, Powertools).
Every record is captured with all its fields, and so is everything written to stdout and stderr; the
secrets are looked for as they are and encoded (URL-encoded, base64 at every alignment, hex). Nor does any
handler log its event, whatever the switches: the ingest's holds the token, the consumer's and the
sender's hold numbers and message text."""

from __future__ import annotations

import ast
import base64
import hashlib
import json
import logging
import sys
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest

from local import aws_faults
from local import stack as local_stack
from local.runtime import patched_environ
from local.simulator import ProviderFault, ProviderSimulator
from local.sqs_mapping import lambda_record
from mmsbridge.aws.state_table import StateTable
from mmsbridge.core import envelope
from mmsbridge.sending.ledger_store import SendLedger

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
TOKEN = f"tok_{uuid.uuid4().hex}"
NEW_TOKEN = f"new_{uuid.uuid4().hex}"  # the token a rotation brings in
WRONG_TOKEN = f"tok_{uuid.uuid4().hex}"  # a near miss (an old token, a typo) is as secret as the token
TOKEN_SECRET_NAME = f"test/no-secrets-token-{uuid.uuid4().hex[:8]}"
API_KEY = f"KEY-{uuid.uuid4().hex}"
WRONG_KEY = f"OLD-{uuid.uuid4().hex}"
SECRET_NAME = f"test/no-secrets-{uuid.uuid4().hex[:8]}"
# The most an operator can turn on without changing code.
VERBOSE = {"POWERTOOLS_LOG_LEVEL": "DEBUG", "POWERTOOLS_LOGGER_LOG_EVENT": "true"}


def encoded_forms(secret: str) -> dict[str, str]:
    """The secret as a log line might carry it: raw, URL-encoded, hex, and base64 (standard and URL-safe)
    at each of the three alignments it can have inside a longer encoded text (the characters that depend
    on the secret's bytes alone)."""
    raw = secret.encode()
    forms = {
        "raw": secret,
        "url-encoded": urllib.parse.quote(secret, safe=""),
        "form-encoded": urllib.parse.quote_plus(secret),
        "hex": raw.hex(),
    }
    for offset in range(3):
        text = base64.b64encode(b"\0" * offset + raw).decode()
        core = text[(4 if offset else 0) : -4]
        forms[f"base64+{offset}"] = core
        forms[f"base64url+{offset}"] = core.replace("+", "-").replace("/", "_")
    return forms


def leaks(text: str, **secrets: str) -> list[str]:
    """Which secret, in which form, the text contains."""
    return [
        f"{name} ({form})" for name, s in secrets.items() for form, v in encoded_forms(s).items() if v in text
    ]


def test_encoded_forms_find_a_secret_however_it_is_embedded():
    secret = "tok_0123456789abcdef0123"
    for prefix in ("", "/", "/v", "/v1/postback/"):
        whole = f"{prefix}{secret}/tail".encode()
        assert leaks(base64.b64encode(whole).decode(), s=secret)
        assert leaks(base64.urlsafe_b64encode(whole).decode(), s=secret)
    assert leaks(json.dumps({"path": urllib.parse.quote(f"/postback/{secret}", safe="")}), s=secret)
    assert leaks(f"x{secret.encode().hex()}y", s=secret)
    assert not leaks("tok_0123456789abcdef012", s=secret)


class Capture(logging.Handler):
    """Every record that reaches the root logger, with all its attributes (extras, args, exceptions), and
    everything written to stdout and stderr (capfd)."""

    def __init__(self, capfd: pytest.CaptureFixture[str]) -> None:
        super().__init__(level=logging.DEBUG)
        self._capfd = capfd
        self._parts: list[str] = []
        self._paused = False

    def emit(self, record: logging.LogRecord) -> None:
        if self._paused:
            return
        fields = {k: v for k, v in record.__dict__.items() if k not in ("exc_info", "exc_text")}
        exception = logging.Formatter().formatException(record.exc_info) if record.exc_info else ""
        self._parts.append(f"{record.getMessage()} {json.dumps(fields, default=repr)} {exception}")

    def _take_output(self) -> None:
        out, err = self._capfd.readouterr()
        self._parts += [out, err]

    @contextmanager
    def paused(self) -> Iterator[None]:
        """The test's own calls (putting a secret in place, say) are not the functions' logs."""
        self._take_output()
        self._paused = True
        try:
            yield
        finally:
            self._capfd.readouterr()
            self._paused = False

    def text(self) -> str:
        self._take_output()
        return "\n".join(self._parts)


class CurrentStdout:
    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@pytest.fixture
def captured(capfd) -> Iterator[Capture]:
    """Everything logged or written while the test runs.

    DEBUG on the root and on every logger that set a level of its own, except the ones the functions
    themselves set on purpose (the sender keeps botocore's response bodies out: that is under test too).
    Powertools' loggers write to the stream they were created with (another test's, maybe closed); here they
    write to whatever sys.stdout is when they write (pytest replaces it between a test's setup and call).
    """
    capture = Capture(capfd)
    root = logging.getLogger()
    saved_levels = {"": root.level}
    root.setLevel(logging.DEBUG)
    root.addHandler(capture)
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if (
            isinstance(logger, logging.Logger)
            and logger.level > logging.DEBUG
            and name not in SET_BY_FUNCTIONS
        ):
            saved_levels[name] = logger.level
            logger.setLevel(logging.DEBUG)
    streams = []
    for name in ("ingest", "consumer", "stale", "sender"):
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, logging.StreamHandler):
                streams.append((handler, handler.stream))
                handler.stream = CurrentStdout()
    try:
        yield capture
    finally:
        for handler, stream in streams:
            handler.stream = stream
        root.removeHandler(capture)
        for name, level in saved_levels.items():
            logging.getLogger(name or None).setLevel(level)


# Loggers a function sets a level on at import, deliberately (left as the function set them).
SET_BY_FUNCTIONS = {"botocore.parsers"}


def test_the_sender_keeps_botocore_response_bodies_out_of_its_logs(sender):
    assert logging.getLogger("botocore.parsers").level == logging.INFO


# -------------------------------------------------------------------------------------------- ingest


@pytest.fixture(scope="module")
def token_secret(moto_server, aws_stack):
    """The postback token's secret, holding TOKEN to begin with."""
    with patched_environ(local_stack.aws_environment(moto_server.endpoint_url, aws_stack.region)):
        client = boto3.client("secretsmanager")
    client.create_secret(Name=TOKEN_SECRET_NAME, SecretString=json.dumps({"current": TOKEN}))
    return client


@pytest.fixture(scope="module")
def ingest(moto_server, aws_stack, token_secret):
    """The ingest reading the test's token secret, with verbose logs. It reads the secret on every request
    (maximum age 0) and again on every mismatch (recheck 0): each GetSecretValue answer passes botocore's
    DEBUG logging."""
    # As in a fresh container: whatever level botocore.parsers has, the ingest's import sets it.
    logging.getLogger("botocore.parsers").setLevel(logging.NOTSET)
    stack = local_stack.load_local_stack(moto_server.endpoint_url)
    assert stack.functions()["IngestFunction"].environment["POSTBACK_TOKEN_SECRET"] != TOKEN_SECRET_NAME
    return local_stack.function_for(
        stack,
        "IngestFunction",
        moto_server.endpoint_url,
        environment={
            **VERBOSE,
            "POSTBACK_TOKEN_SECRET": TOKEN_SECRET_NAME,
            "POSTBACK_TOKEN_MAX_AGE_S": "0",
            "POSTBACK_TOKEN_RECHECK_S": "0",
        },
        name_suffix="Verbose",
        max_containers=1,
    )


def test_the_ingest_keeps_botocore_response_bodies_out_of_its_logs(ingest):
    assert logging.getLogger("botocore.parsers").level == logging.INFO


def postback_event(
    token: str | None, *, body: bytes = b"<POSTBACK/>", ip: str = "127.0.0.1", raw_body: str | None = None
) -> dict:
    """An API Gateway REST proxy event as the stage delivers it, the token in each place it appears."""
    event = json.loads((EVENTS / "ingest" / "postback-admitted.json").read_text())
    resource, path = ("/postback/{token}", f"/postback/{token}") if token else ("/postback", "/postback")
    event.update(
        resource=resource,
        path=path,
        pathParameters={"token": token} if token else None,
        body=raw_body if raw_body is not None else base64.b64encode(body).decode(),
        isBase64Encoded=True,
    )
    event["requestContext"].update(path=f"/v1{path}", resourcePath=resource, requestId=str(uuid.uuid4()))
    event["requestContext"]["identity"]["sourceIp"] = ip
    return event


def test_postbacks_admitted_and_refused_never_log_the_token(ingest, token_secret, captured):
    postback = f"<POSTBACK><ORIGIN>SMS_MT</ORIGIN><TRACKINGID>{uuid.uuid4().hex}</TRACKINGID></POSTBACK>"
    answered = {
        "admitted": ingest.invoke(postback_event(TOKEN, body=postback.encode()))["statusCode"],
        "wrong token": ingest.invoke(postback_event(WRONG_TOKEN))["statusCode"],
        "no token": ingest.invoke(postback_event(None))["statusCode"],
        "token, stranger's address": ingest.invoke(postback_event(TOKEN, ip="127.0.0.2"))["statusCode"],
        "token, empty body": ingest.invoke(postback_event(TOKEN, body=b""))["statusCode"],
        "token, not base64": ingest.invoke(postback_event(TOKEN, raw_body="not base64!"))["statusCode"],
        "token, too large": ingest.invoke(postback_event(TOKEN, body=b"x" * (1024 * 1024 + 1)))["statusCode"],
    }
    with aws_faults.inject(ingest.module.INGEST.archive._s3, "PutObject", rate=1.0):
        answered["token, S3 down"] = ingest.invoke(postback_event(TOKEN, body=b"<POSTBACK>down</POSTBACK>"))[
            "statusCode"
        ]

    def put(document: str) -> None:
        with captured.paused():  # the test's own call, not the function's
            token_secret.put_secret_value(SecretId=TOKEN_SECRET_NAME, SecretString=document)

    # A rotation: both tokens accepted, then the old one dropped.
    put(json.dumps({"current": NEW_TOKEN, "previous": TOKEN}))
    answered["rotating, new token"] = ingest.invoke(
        postback_event(NEW_TOKEN, body=b"<POSTBACK>n</POSTBACK>")
    )["statusCode"]
    answered["rotating, old token"] = ingest.invoke(postback_event(TOKEN, body=b"<POSTBACK>o</POSTBACK>"))[
        "statusCode"
    ]
    put(json.dumps({"current": NEW_TOKEN}))
    answered["rotated, old token"] = ingest.invoke(postback_event(TOKEN))["statusCode"]
    # A malformed document holding the tokens: the copy held stays in use, and the error says why only.
    put(json.dumps({"current": NEW_TOKEN, "previous": TOKEN + "!"}))
    answered["unusable, new token"] = ingest.invoke(
        postback_event(NEW_TOKEN, body=b"<POSTBACK>u</POSTBACK>")
    )["statusCode"]
    put(json.dumps({"current": NEW_TOKEN}))
    assert answered == {
        "admitted": 200,
        "wrong token": 403,
        "no token": 403,
        "token, stranger's address": 403,
        "token, empty body": 400,
        "token, not base64": 400,
        "token, too large": 413,
        "token, S3 down": 503,
        "rotating, new token": 200,
        "rotating, old token": 200,
        "rotated, old token": 403,
        "unusable, new token": 200,
    }
    logged = captured.text()
    # The handler did log each outcome, at DEBUG, and botocore did too, the secret's reads included.
    for outcome in ('"postback accepted"', '"postback refused"', '"postback not stored"', "botocore"):
        assert outcome in logged
    assert '"postback token secret unusable"' in logged
    assert logged.count("OperationModel(name=GetSecretValue)") >= 10
    assert leaks(logged, token=TOKEN, new_token=NEW_TOKEN, wrong_token=WRONG_TOKEN) == []


# -------------------------------------------------------------------------------------------- sender


@pytest.fixture(scope="module")
def simulator():
    with ProviderSimulator(api_key=API_KEY) as sim:
        yield sim


@pytest.fixture(scope="module")
def secrets(moto_server, aws_stack):
    """The API key's secret, holding a wrong (old) key to begin with."""
    with patched_environ(local_stack.aws_environment(moto_server.endpoint_url, aws_stack.region)):
        client = boto3.client("secretsmanager")
    client.create_secret(Name=SECRET_NAME, SecretString=WRONG_KEY)
    return client


@pytest.fixture(scope="module")
def sender(moto_server, aws_stack, simulator, secrets):
    # As in a fresh container: whatever level botocore.parsers has, the sender's import sets it.
    logging.getLogger("botocore.parsers").setLevel(logging.NOTSET)
    environment = {
        "PROVIDER_API_URL": simulator.api_url,
        "PROVIDER_API_KEY_SECRET": SECRET_NAME,
        "THROUGHPUT_PER_SECOND": "1000",
        **VERBOSE,
    }
    return local_stack.function_for(
        aws_stack,
        "SenderFunction",
        moto_server.endpoint_url,
        environment=environment,
        name_suffix="Verbose",
        max_containers=1,
    )


@pytest.fixture(scope="module")
def sqs(aws_clients):
    return aws_clients["sqs"]


def send_event(sqs, aws_stack, request_id: str) -> dict:
    """One send request put on the send queue and received as Lambda would: the invocation's event. Records
    other invocations handed back (with a visibility timeout) are taken off the queue when they show up."""
    queue = aws_stack.queues()["SendQueue"]
    request = json.loads((EVENTS / "sender" / "sms.json").read_text())
    # A number of its own: no other test's opt-out applies to it.
    request.update(request_id=request_id, to=f"1774319{uuid.uuid4().int % 10_000:04d}")
    sqs.send_message(QueueUrl=queue.url, MessageBody=json.dumps(request))
    while True:
        for message in sqs.receive_message(
            QueueUrl=queue.url, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["All"]
        ).get("Messages", []):
            if json.loads(message["Body"])["request_id"] == request_id:
                return {"Records": [lambda_record(message, queue.arn, aws_stack.region)]}
            sqs.delete_message(QueueUrl=queue.url, ReceiptHandle=message["ReceiptHandle"])


def send(sender, sqs, aws_stack, request_id: str) -> None:
    """Invoke the sender on one request, then take the request off the session's send queue: one handed
    back (throttled, refused) would come back later into other tests' queues."""
    event = send_event(sqs, aws_stack, request_id)
    sender.invoke(event)
    (record,) = event["Records"]
    sqs.delete_message(QueueUrl=aws_stack.queues()["SendQueue"].url, ReceiptHandle=record["receiptHandle"])


def test_sends_accepted_and_failing_never_log_the_api_key(
    sender, simulator, secrets, sqs, aws_stack, captured
):
    ledger = SendLedger(StateTable(sender.module.SENDING.table.client, sender.module.SENDING.table.name))
    run = uuid.uuid4().hex[:8]

    # The secret holds an old key: the provider refuses the account (E104) and the sender forgets the key.
    send(sender, sqs, aws_stack, f"wrong-key-{run}")
    refused = simulator.stats()
    # The key is replaced: the next call reads it afresh and is accepted.
    with captured.paused():
        secrets.put_secret_value(SecretId=SECRET_NAME, SecretString=API_KEY)
    send(sender, sqs, aws_stack, f"accepted-{run}")
    # Then the provider's other answers, one request each: the key is sent with every call.
    faulted = {
        f"auth-error-{run}": ProviderFault("answer", code="E104", count=1),
        f"throttled-{run}": ProviderFault("answer", code="E113", count=1),
        f"permanent-error-{run}": ProviderFault("answer", code="E110", count=1),
        f"key-echoed-{run}": ProviderFault(
            "malformed",
            body=f"<RESPONSE><STATUS>Failure</STATUS><ERRORINFO>bad key {API_KEY}</ERRORINFO>",
            count=1,
        ),
        f"http-500-{run}": ProviderFault("http_error", status=500, count=1),
    }
    for request_id, fault in faulted.items():
        simulator.add_fault(fault)
        send(sender, sqs, aws_stack, request_id)
    logged = captured.text()

    request_ids = [f"wrong-key-{run}", f"accepted-{run}", *faulted]
    records = {request_id: ledger.get(request_id) for request_id in request_ids}
    assert "E104" in json.dumps(refused, default=str)  # the old key really was refused
    assert records[f"accepted-{run}"]["status"] == "ACCEPTED"
    assert simulator.stats()["faults"] == len(faulted)
    # The handler logged, and botocore at DEBUG, GetSecretValue included (twice: the key was read afresh).
    for expected in ('"send request"', '"batch stopped calling the provider"'):
        assert expected in logged
    assert '"message":{"Records"' not in logged  # the event, as Powertools logs it, never is
    assert logged.count("OperationModel(name=GetSecretValue)") >= 2
    assert leaks(logged, api_key=API_KEY, wrong_key=WRONG_KEY) == []
    # Nor in what the sender records, nor in the provider's view of the calls (its log redacts the key).
    assert leaks(json.dumps(records, default=str), api_key=API_KEY, wrong_key=WRONG_KEY) == []
    assert leaks(json.dumps(simulator.log(), default=str), api_key=API_KEY, wrong_key=WRONG_KEY) == []


# -------------------------------------------------------------------------------------------- events


def test_every_handler_refuses_to_log_its_event():
    """`log_event=False` on every handler's `inject_lambda_context`: POWERTOOLS_LOGGER_LOG_EVENT=true, an
    operator's switch, would otherwise log each event whole."""
    handlers = sorted((ROOT / "functions").glob("*/app.py"))
    refuses = {}
    for path in handlers:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "inject_lambda_context":
                log_event = {keyword.arg: keyword.value for keyword in node.keywords}.get("log_event")
                refuses[path.parent.name] = isinstance(log_event, ast.Constant) and log_event.value is False
    assert refuses == dict.fromkeys(("consumer", "ingest", "publisher", "sender", "stale"), True)


@pytest.fixture(scope="module")
def verbose_functions(moto_server, aws_stack):
    """The consumer and the stale check with every log switch on (the ingest and sender are above)."""
    return {
        logical_id: local_stack.function_for(
            aws_stack,
            logical_id,
            moto_server.endpoint_url,
            environment=VERBOSE,
            name_suffix="Verbose",
            max_containers=1,
        )
        for logical_id in ("ConsumerFunction", "StaleMessagesFunction")
    }


def marked_event(logical_id: str, marker: str) -> dict:
    """An event the function handles as usual, with `marker` where only a logged event would show it."""
    if logical_id == "StaleMessagesFunction":
        return {
            "source": "aws.events",
            "detail-type": "Scheduled Event",
            "resources": [f"arn:aws:events:us-east-1:123456789012:rule/{marker}"],
            "detail": {},
        }
    body = (
        "<POSTBACK><ORIGIN>SMS_MT</ORIGIN><CODE>N201</CODE><STATUS>Message Sent</STATUS>"
        f"<TRACKINGID>{uuid.uuid4().hex}</TRACKINGID></POSTBACK>"
    ).encode()
    sha256 = hashlib.sha256(body).hexdigest()
    message = envelope.encode(
        key=f"raw/{sha256}.xml",
        sha256=sha256,
        body=body,
        received_at=datetime.now(UTC),
        source_ip="127.0.0.1",
        request_id=str(uuid.uuid4()),
    )
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "rh",
                "body": message,
                "attributes": {},
                "messageAttributes": {"marker": {"stringValue": marker, "dataType": "String"}},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
            }
        ]
    }


@pytest.mark.parametrize("logical_id", ["ConsumerFunction", "StaleMessagesFunction"])
def test_the_consumer_and_the_stale_check_never_log_their_event(verbose_functions, captured, logical_id):
    marker = f"event-marker-{uuid.uuid4().hex}"
    verbose_functions[logical_id].invoke(marked_event(logical_id, marker))
    logged = captured.text()
    assert "botocore" in logged  # DEBUG reached the capture (each handler called AWS)
    assert leaks(logged, marker=marker) == []
