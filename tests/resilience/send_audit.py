"""The send path under provider and AWS faults: the real sender handler behind the template's SQS mapping,
on moto, against a provider simulator on loopback; and the audit of what became of every send request.

The rig is the local stack's send half, wired from template.yaml and samconfig.toml [local] with parameter
overrides (ProviderApiUrl, SendThroughputPerSecond, SendDelivery, ...), so the handler reads the environment
the template gives it. Some settings are shortened so that a scenario takes seconds, not minutes: the
provider client's read timeout (3 s instead of 10: a busy machine's slowest genuine answer stays well inside
it), the sender's call budget with it, and the function's timeout (5 s instead of 30), which bounds an
attempt's lease (the deadline plus 5 s): a dead attempt is found by the next delivery within about 10 s. And
the limiter's tolerance for a slot used late goes from 5 ms (at high rates) to 250 ms, above the local
store's write latency: else, at a high rate, every slot is late by the time its write returns, and each call
reserves one four times over.

The audit reads each request's ledger, the outbound records, the send DLQ and the simulator's own log, and
accounts for every request: in a final ledger status, or dead-lettered with its reason, or lost. The
simulator's log is the ground truth for duplicated effects: each request's content carries its request_id,
so every provider call is attributed to the request it came from.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3

from local import stack as local_stack
from local.runtime import LocalFunction, patched_environ
from local.simulator import ProviderSimulator
from local.sqs_mapping import SqsEventSourceMapping, mappings_from_stack
from local.template.specs import LocalStack
from mmsbridge.aws import clients as aws
from mmsbridge.aws.state_table import StateTable, from_dynamo, to_dynamo
from mmsbridge.sending import limiter as pacing
from mmsbridge.sending import provider_http as provider_client
from mmsbridge.sending import sender as sender_module
from mmsbridge.sending.ledger import FINAL, LEDGER_SK, ledger_key
from mmsbridge.sending.provider_http import ProviderClient, ProviderReply
from tests.resilience.postback_audit import queue_depth
from tests.waiting import eventually

CLIENT_TIMEOUT_S = (1.0, 3.0)  # connect, read
CALL_BUDGET_S = CLIENT_TIMEOUT_S[1] + 0.5  # time kept free for a call before the deadline
FUNCTION_TIMEOUT_S = 5.0
LATE_SLOT_S = 0.25  # moto answers in tens of milliseconds on a busy laptop
TEMPLATE_ID = "48213"  # a template the simulated account has, READY
SENDER = "SenderFunction"

AfterCall = Callable[[bytes, ProviderReply], None]


# -------------------------------------------------------------------------------------------- requests


def send_requests(label: str, count: int, *, seed: int) -> list[dict[str, Any]]:
    """`count` valid send requests, a seeded mix of sendSMS, sendMMS and sendSavedMMS, each to its own number
    and with its request_id in its content (so the simulator's log names the request of every call)."""
    rng = random.Random(seed)  # a test mix, not security
    token = uuid.uuid4().hex[:8]  # ids unique in the session's shared table
    requests = []
    for number in range(count):
        request_id = f"{label}-{token}-{number:03d}"
        to = f"+1 646 555 {number % 10_000:04d}"
        kind = rng.choices(("sms", "mms", "saved"), weights=(5, 3, 2))[0]
        if kind == "sms":
            request = {"action": "sendSMS", "text": f"Northwind order update {request_id}"}
        elif kind == "mms":
            request = {
                "action": "sendMMS",
                "name": f"update-{number}",
                "subject": "Northwind",
                "slides": [
                    {"image_url": f"https://media.example.com/northwind/{number}.jpg", "text": request_id},
                    {"text": "Reply STOP to opt out."},
                ],
                "fallback_sms_text": f"Northwind {request_id}",
            }
        else:
            request = {
                "action": "sendSavedMMS",
                "mms_id": TEMPLATE_ID,
                "custom_text": {"1": f"Spring deals {request_id}"},
                "fallback_sms_text": f"Northwind deals {request_id}",
            }
        requests.append({"request_id": request_id, "to": to, "from": "47215", **request})
    return requests


_REQUEST_ID = re.compile(r"[a-z0-9]+-[0-9a-f]{8}-[0-9]{3}")


def request_id_in(xml: bytes | str | dict | None) -> str | None:
    """The request_id a provider call carries in its content (first match), if any."""
    text = xml.decode("utf-8", "replace") if isinstance(xml, bytes) else json.dumps(xml)
    match = _REQUEST_ID.search(text)
    return match.group(0) if match else None


# ------------------------------------------------------------------------------------------------- rig


def _aws(endpoint_url: str, region: str, service: str) -> Any:
    with patched_environ(local_stack.aws_environment(endpoint_url, region)):
        return boto3.session.Session().client(service)


def drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Every message on the queue, received and deleted (messages in flight elsewhere are not seen)."""
    messages = []
    while batch := sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=0,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    ).get("Messages", []):
        messages += batch
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )
    return messages


@dataclass
class Hooks:
    """Where a scenario reaches into the handler's containers."""

    # Runs in the handler right after each provider call returned, before the sender records the outcome:
    # a hook that raises there is a death after the provider was called.
    after_call: AfterCall | None = None
    # Applied to every DynamoDB client a container makes (and has made): AWS fault injection for a scenario.
    dynamodb: list[Callable[[Any], None]] = field(default_factory=list)
    dynamodb_clients: list[Any] = field(default_factory=list)


@dataclass
class SendRig:
    """One sender and its mapping for a module's scenarios; `scenario()` starts each afresh."""

    stack: LocalStack
    function: LocalFunction
    mapping: SqsEventSourceMapping
    simulator: ProviderSimulator
    sqs: Any
    table: StateTable
    hooks: Hooks
    mapping_at_start: dict[str, int] = field(default_factory=dict)

    @property
    def queue_url(self) -> str:
        return self.stack.queues()["SendQueue"].url

    @property
    def dlq_url(self) -> str:
        return self.stack.queues()["SendDLQ"].url

    def scenario(self, seed: int) -> SendRig:
        """A fresh start: the simulator's calls, counters and faults forgotten (its faults seeded with
        `seed`), no hooks, both queues empty."""
        self.simulator.reset()
        self.simulator.reseed_faults(seed)
        self.hooks.after_call = None
        self.hooks.dynamodb.clear()
        drain(self.sqs, self.queue_url)
        drain(self.sqs, self.dlq_url)
        self.mapping_at_start = self.mapping.stats.snapshot()
        return self

    def mapping_stats(self) -> dict[str, int]:
        """The mapping's counters since the scenario started: invocations, records handed back, ..."""
        now = self.mapping.stats.snapshot()
        return {name: value - self.mapping_at_start.get(name, 0) for name, value in now.items()}

    def on_dynamodb_clients(self, hook: Callable[[Any], None]) -> None:
        """`hook(client)` for every DynamoDB client of the handler's containers, now and as they are made."""
        self.hooks.dynamodb.append(hook)
        for client in list(self.hooks.dynamodb_clients):
            hook(client)

    def enqueue(self, requests: list[dict[str, Any]]) -> None:
        for start in range(0, len(requests), 10):
            chunk = requests[start : start + 10]
            entries = [{"Id": str(i), "MessageBody": json.dumps(body)} for i, body in enumerate(chunk)]
            answer = self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            assert not answer.get("Failed"), answer

    def settle(self, timeout: float) -> bool:
        """True once the send queue is empty (visible, in flight, delayed) and no poller holds a batch;
        False if that takes longer than `timeout`."""
        return bool(eventually(lambda: self.mapping.wait_idle(timeout=0), timeout=timeout, interval=0.2))


@contextlib.contextmanager
def send_rig(
    endpoint_url: str, provisioned: LocalStack, monkeypatch: Any, *, overrides: dict[str, str]
) -> Iterator[SendRig]:
    """The sender behind the send queue's mapping, with the template's parameters `overrides`, against a
    provider simulator holding the API key of the template's secret."""
    region = provisioned.region
    for name, value in local_stack.aws_environment(endpoint_url, region).items():
        monkeypatch.setenv(name, value)  # clients a handler creates lazily reach moto too
    secret = local_stack.api_key_secret_name(provisioned)
    assert secret, "the template names no API key secret for the sender"
    api_key = local_stack.read_secret(secret, endpoint_url, region)
    assert api_key, f"the secret {secret} holds no API key"
    hooks = Hooks()

    class RigClient(ProviderClient):
        def __init__(self, api_url: str, session: Any = None, *, timeout: tuple = CLIENT_TIMEOUT_S) -> None:
            super().__init__(api_url, session, timeout=timeout)

        def call(self, xml: bytes, *, api_key: str) -> ProviderReply:
            reply = super().call(xml, api_key=api_key)
            if hooks.after_call is not None:
                hooks.after_call(xml, reply)
            return reply

    real_client = aws.client

    def client(service: str, config: Any = aws.FAST, **options: Any) -> Any:
        made = real_client(service, config, **options)
        if service == "dynamodb":
            hooks.dynamodb_clients.append(made)
            for hook in list(hooks.dynamodb):
                hook(made)
        return made

    # Before the first container imports the handler: every container builds its clients through these.
    monkeypatch.setattr(provider_client, "ProviderClient", RigClient)
    monkeypatch.setattr(aws, "client", client)
    monkeypatch.setattr(sender_module, "_CALL_BUDGET_S", CALL_BUDGET_S)
    monkeypatch.setattr(pacing, "_LATE_FLOOR_S", LATE_SLOT_S)

    simulator = ProviderSimulator(api_key=api_key, templates=[TEMPLATE_ID]).start()
    mapping: SqsEventSourceMapping | None = None
    try:
        stack = local_stack.load_local_stack(
            endpoint_url,
            overrides={"ProviderApiUrl": simulator.api_url, **overrides},
            stack_name=provisioned.stack_name,
        )
        sqs = _aws(endpoint_url, region, "sqs")
        table = StateTable(_aws(endpoint_url, region, "dynamodb"), stack.tables()["StateTable"].name)
        function = local_stack.function_for(
            stack, SENDER, endpoint_url, name_suffix="Faults", timeout_s=FUNCTION_TIMEOUT_S
        )
        (mapping,) = (
            m
            for m in mappings_from_stack(
                stack, {SENDER: function}, sqs=lambda: _aws(endpoint_url, region, "sqs")
            )
            if m.name.startswith(f"{SENDER}.")
        )
        rig = SendRig(stack, function, mapping, simulator, sqs, table, hooks)
        rig.scenario(seed=0)  # what earlier tests left on the queues is not this module's
        mapping.start()
        yield rig
    finally:
        if mapping is not None:
            mapping.stop()
        simulator.stop()


# ----------------------------------------------------------------------------------------------- audit


@dataclass
class Audit:
    """What became of each request of a scenario."""

    request_ids: list[str]
    status: dict[str, str | None] = field(default_factory=dict)  # ledger status (None: no ledger)
    ledgers: dict[str, dict[str, Any]] = field(default_factory=dict)
    dead_lettered: dict[str, dict[str, str]] = field(default_factory=dict)  # request_id -> DLQ attributes
    calls: Counter[str] = field(default_factory=Counter)  # provider calls per request
    faulted: Counter[str] = field(default_factory=Counter)  # calls answered by a fault
    faults: dict[str, list[str]] = field(default_factory=dict)  # the faults that answered each request
    accepted: Counter[str] = field(default_factory=Counter)  # sends the provider accepted per request
    lost: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    provider: dict[str, Any] = field(default_factory=dict)  # the simulator's stats
    mapping: dict[str, int] = field(default_factory=dict)  # the SQS mapping's counters for the scenario
    send_queue_left: int = 0

    def count(self, status: str) -> int:
        return sum(1 for request_id in self.request_ids if self.status.get(request_id) == status)

    @property
    def duplicated(self) -> int:
        return int(self.provider.get("duplicates", 0)) + sum(n - 1 for n in self.accepted.values() if n > 1)

    def with_status(self, status: str) -> list[str]:
        return [request_id for request_id in self.request_ids if self.status.get(request_id) == status]

    def line(self) -> str:
        return (
            f"in={len(self.request_ids)} sent={self.count('ACCEPTED')} failed={self.count('FAILED')} "
            f"unknown={self.count('OUTCOME_UNKNOWN')} suppressed={self.count('SUPPRESSED')} "
            f"rejected={self.count('REJECTED')} dead-lettered={len(self.dead_lettered)} "
            f"lost={len(self.lost)} duplicated={self.duplicated} "
            f"| provider calls={self.provider.get('calls')} "
            f"accepted={self.provider.get('accepted_sends')} faults={self.provider.get('faults')} "
            f"e113={self.provider.get('e113')} | send queue left={self.send_queue_left} "
            f"| invocations={self.mapping.get('batches')} "
            f"function errors={self.mapping.get('function_errors')} "
            f"records handed back={self.mapping.get('failures_reported')}"
            + (f" | problems: {'; '.join(self.problems[:8])}" if self.problems else "")
        )

    __str__ = line


def _batch_get(table: StateTable, keys: list[dict[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for start in range(0, len(keys), 100):
        pending: dict[str, Any] = {
            table.name: {"Keys": [to_dynamo(k) for k in keys[start : start + 100]], "ConsistentRead": True}
        }
        while pending:
            answer = table.client.batch_get_item(RequestItems=pending)
            for raw in answer.get("Responses", {}).get(table.name, []):
                item = from_dynamo(raw)
                found[(item["pk"], item["sk"])] = item
            pending = answer.get("UnprocessedKeys") or {}
    return found


def audit(rig: SendRig, requests: list[dict[str, Any]]) -> Audit:
    """Account for every request; run it once the send queue has settled."""
    request_ids = [request["request_id"] for request in requests]
    ours = set(request_ids)
    result = Audit(request_ids)
    result.send_queue_left = queue_depth(rig.sqs, rig.queue_url)

    ledgers = _batch_get(rig.table, [ledger_key(request_id) for request_id in request_ids])
    for request_id in request_ids:
        key = ledger_key(request_id)
        ledger = ledgers.get((key["pk"], key["sk"]))
        result.status[request_id] = ledger.get("status") if ledger else None
        if ledger:
            result.ledgers[request_id] = ledger

    for message in drain(rig.sqs, rig.dlq_url):
        attributes = {
            k: v.get("StringValue", "") for k, v in (message.get("MessageAttributes") or {}).items()
        }
        try:
            request_id = json.loads(message["Body"]).get("request_id")
        except (ValueError, AttributeError):
            request_id = None
        if request_id not in ours:
            result.problems.append(f"a DLQ message of no request of this scenario: {message['Body'][:80]}")
            continue
        if request_id in result.dead_lettered:
            result.problems.append(f"{request_id} dead-lettered twice")
        if not attributes.get("mmsbridge-reason"):
            result.problems.append(f"{request_id} dead-lettered without a reason")
        result.dead_lettered[request_id] = attributes

    tracking_owner: dict[str, str] = {}
    for entry in rig.simulator.log():
        if entry["type"] != "api":
            continue
        request_id = request_id_in(entry.get("fields"))
        if request_id not in ours:
            result.problems.append(f"a provider call of no request of this scenario (seq {entry['seq']})")
            continue
        result.calls[request_id] += 1
        if entry.get("fault") is not None:
            result.faulted[request_id] += 1
            result.faults.setdefault(request_id, []).append(entry["fault"])
        if entry["accepted"]:
            result.accepted[request_id] += 1
            tracking_owner[entry["tracking_id"]] = request_id
    result.provider = rig.simulator.stats()
    result.mapping = rig.mapping_stats()

    outbound = _batch_get(rig.table, [{"pk": f"MSG#{tid}", "sk": "REQUEST"} for tid in tracking_owner])
    for tracking_id, request_id in tracking_owner.items():
        record = outbound.get((f"MSG#{tracking_id}", "REQUEST"))
        ledger = result.ledgers.get(request_id, {})
        if ledger.get("status") == "ACCEPTED":
            if ledger.get("tracking_id") != tracking_id:
                result.problems.append(
                    f"{request_id}: ACCEPTED as {ledger.get('tracking_id')}, sent as {tracking_id}"
                )
            if record is None:
                result.problems.append(f"{request_id}: SENT, but no outbound record MSG#{tracking_id}")
            elif record.get("request_id") != request_id:
                result.problems.append(
                    f"MSG#{tracking_id} names {record.get('request_id')}, sent for {request_id}"
                )
        elif record is not None:
            result.problems.append(
                f"{request_id}: outbound record MSG#{tracking_id}, but its ledger is {ledger.get('status')}"
            )

    for request_id in request_ids:
        status = result.status[request_id]
        final = status in FINAL
        if request_id in result.dead_lettered:
            if final:  # accounted for twice: a final request is done, never dead-lettered
                result.problems.append(f"{request_id}: dead-lettered, yet its ledger is {status}")
        elif not final:
            result.lost.append(request_id)
        if status == "ACCEPTED" and result.accepted[request_id] != 1:
            result.problems.append(
                f"{request_id}: SENT, accepted by the provider {result.accepted[request_id]} times"
            )
        elif status in ("FAILED", "REJECTED", "SUPPRESSED") and result.accepted[request_id]:
            result.problems.append(f"{request_id}: {status}, yet the provider accepted it")
    return result


# ------------------------------------------------------------------------------ writes that failed

INJECTED_MESSAGE = "injected fault"  # the message of every error local.aws_faults makes up
_WRITES = ("PutItem", "UpdateItem", "BatchWriteItem")


@dataclass
class FailedWrites:
    """The sender's state-table writes that failed for good in a scenario: the error reached the sender after
    botocore's retries (every attempt met an injected fault, or the call raised). Recorded on each DynamoDB
    client through botocore's event hooks, with the write's own parameters, so each failure says where it
    was: a ledger put that would have written SENDING is a claim; any other ledger put ends an attempt after
    its claim (the outcome after the provider call, a hand-back, the orphan's OUTCOME_UNKNOWN); the rest are
    the limiter, error counts and outbound records."""

    claims: Counter[str] = field(default_factory=Counter)  # request_id -> claims that failed
    # request_id -> (status not written, "injected" or "raised": a call that raised may have been applied)
    endings: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    other: Counter[str] = field(default_factory=Counter)  # "UpdateItem PACE", "BatchWriteItem MSG", ...
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    _CONTEXT_KEY = "mmsbridge_failed_writes_params"

    @contextlib.contextmanager
    def watching(self, client: Any) -> Iterator[None]:
        """Record `client`'s failed writes while active."""
        unique = f"failed-writes-{uuid.uuid4().hex}"
        events = client.meta.events
        hooks = []
        for operation in _WRITES:
            hooks += [
                (f"before-parameter-build.dynamodb.{operation}", self._remember),
                (f"after-call.dynamodb.{operation}", self._answered),
                (f"after-call-error.dynamodb.{operation}", self._raised),
            ]
        for number, (event, hook) in enumerate(hooks):
            events.register(event, hook, unique_id=f"{unique}-{number}")
        try:
            yield
        finally:
            for number, (event, _) in enumerate(hooks):
                events.unregister(event, unique_id=f"{unique}-{number}")

    def _remember(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        context[self._CONTEXT_KEY] = (model.name, params)

    def _answered(
        self, http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        if http_response.status_code >= 300 and parsed.get("Error", {}).get("Message") == INJECTED_MESSAGE:
            self._record(*context.get(self._CONTEXT_KEY, ("?", {})), how="injected")

    def _raised(self, context: dict[str, Any], **_: Any) -> None:
        """The call raised (a connection error, a timeout after botocore's retries): it failed too, though a
        write that timed out may have been applied."""
        self._record(*context.get(self._CONTEXT_KEY, ("?", {})), how="raised")

    def _record(self, operation: str, params: dict[str, Any], *, how: str) -> None:
        item = from_dynamo(params["Item"]) if operation == "PutItem" and "Item" in params else None
        with self._lock:
            if (
                item is not None
                and str(item.get("pk", "")).startswith("REQ#")
                and item.get("sk") == LEDGER_SK
            ):
                request_id = str(item["pk"]).removeprefix("REQ#")
                if item.get("status") == "SENDING":
                    self.claims[request_id] += 1
                else:
                    self.endings.setdefault(request_id, []).append((str(item.get("status")), how))
                return
            key = item or from_dynamo(params.get("Key") or {})
            prefix = str(key.get("pk", "")).split("#")[0] if key else ""
            self.other[f"{operation} {prefix}".strip()] += 1

    def after_claim(self, *, injected_only: bool = False) -> set[str]:
        """The requests whose ledger write after a successful claim failed: each may be left SENDING, to be
        found by a later delivery once its lease is over and, at most once, recorded OUTCOME_UNKNOWN.
        `injected_only`: those whose write certainly was not applied (an injected fault on every attempt)."""
        with self._lock:
            return {
                request_id
                for request_id, failures in self.endings.items()
                if not injected_only or any(how == "injected" for _, how in failures)
            }

    def line(self) -> str:
        with self._lock:
            return (
                f"failed writes: claims={sum(self.claims.values())} ({len(self.claims)} requests) "
                f"after the claim={sum(map(len, self.endings.values()))} ({len(self.endings)} requests) "
                f"other={dict(self.other)}"
            )

    __str__ = line
