"""The sender's Lambda handler on a stack of its own, for tests that read what it did to SQS and DynamoDB.

A stack of its own (the template's resources under a name of their own, on the session's moto) keeps the
limiter's item (`PACE#provider`) and the send queue to one test module: a penalty or a far-off slot set here
cannot stall another module's sender, and no other sender hands messages back on these queues.

- `own_stack`: the template provisioned under a fresh stack name;
- `sender_function`: the real handler wired from template.yaml with parameter overrides (the simulator's URL,
  the throughput), reading the API key from the stack's own secret;
- `receive`: send request bodies put on the send queue and received until each has the receive count asked
  for (SQS counts every receive), as the records of one Lambda event;
- `VisibilitySpy`: every `ChangeMessageVisibility(Batch)` call a boto3 SQS client makes, as sent and as SQS
  answered, through botocore's event hooks on the real client;
- `Pinned`: a random source that always draws the same number, to pin the backoff's full jitter at either
  end of its range.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from local import stack as local_stack
from local.runtime import LocalFunction
from local.sqs_mapping import lambda_record
from local.template.specs import LocalStack
from mmsbridge.aws.state_table import from_dynamo, to_dynamo
from mmsbridge.sending.limiter import KEY as PACE_KEY

SENDER = "SenderFunction"


def own_stack(endpoint_url: str, label: str) -> LocalStack:
    stack = local_stack.load_local_stack(endpoint_url, stack_name=f"{label}-{uuid.uuid4().hex[:8]}")
    local_stack.provision(stack, endpoint_url)
    return stack


def api_key(stack: LocalStack, endpoint_url: str) -> str:
    """The API key in the stack's own secret (the sender reads it from there; the simulator is given it)."""
    name = local_stack.api_key_secret_name(stack)
    assert name, "the template names no API key secret for the sender"
    key = local_stack.read_secret(name, endpoint_url, stack.region)
    assert key, f"the secret {name} holds no API key"
    return key


def sender_function(
    stack: LocalStack,
    endpoint_url: str,
    *,
    api_url: str,
    suffix: str,
    overrides: dict[str, str] | None = None,
    max_containers: int | None = 1,
) -> tuple[LocalStack, LocalFunction]:
    """The stack as the template resolves it with these parameters, and its sender function (containers of
    its own, named by `suffix`; `max_containers` None: as many as the mapping's MaximumConcurrency)."""
    resolved = local_stack.load_local_stack(
        endpoint_url,
        overrides={"ProviderApiUrl": api_url, **(overrides or {})},
        stack_name=stack.stack_name,
    )
    function = local_stack.function_for(
        resolved, SENDER, endpoint_url, name_suffix=suffix, max_containers=max_containers
    )
    return resolved, function


def pace_item(dynamodb: Any, table: str) -> dict[str, Any] | None:
    item = dynamodb.get_item(TableName=table, Key=to_dynamo(PACE_KEY), ConsistentRead=True).get("Item")
    return from_dynamo(item) if item else None


def pace_tat(dynamodb: Any, table: str) -> float | None:
    """The limiter's TAT (epoch seconds): the earliest time the next call of any invocation may start."""
    item = pace_item(dynamodb, table)
    return int(item["tat"]) / 1_000_000 if item and "tat" in item else None


def clear_pace(dynamodb: Any, table: str) -> None:
    dynamodb.delete_item(TableName=table, Key=to_dynamo(PACE_KEY))


def drain(sqs: Any, url: str) -> int:
    """Delete every visible message; how many there were."""
    count = 0
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
        "Messages", []
    ):
        count += len(batch)
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )
    return count


def receive(sqs: Any, queue: Any, region: str, bodies: list[tuple[str, int]]) -> dict[str, Any]:
    """Put each body on the queue and receive it `count` times (made visible again in between), so that its
    last receive carries ApproximateReceiveCount = count; the last receives as one Lambda event. The queue
    must hold no other visible message (a message received earlier stays invisible for the queue's
    VisibilityTimeout, 190 s)."""
    records = []
    for body, count in bodies:
        message_id = sqs.send_message(QueueUrl=queue.url, MessageBody=body)["MessageId"]
        for receive_number in range(1, count + 1):
            (message,) = sqs.receive_message(
                QueueUrl=queue.url, MaxNumberOfMessages=1, WaitTimeSeconds=1, AttributeNames=["All"]
            )["Messages"]
            assert message["MessageId"] == message_id
            assert message["Attributes"]["ApproximateReceiveCount"] == str(receive_number)
            if receive_number < count:
                sqs.change_message_visibility(
                    QueueUrl=queue.url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
        records.append(lambda_record(message, queue.arn, region))
    return {"Records": records}


def delete_records(sqs: Any, queue_url: str, event: dict[str, Any]) -> None:
    """Delete the event's messages by their receipt handles (handed back or not: not to come back later)."""
    for record in event["Records"]:
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=record["receiptHandle"])


@dataclass
class VisibilitySpy:
    """Records the visibility timeouts a boto3 SQS client sets: each entry as sent (`ReceiptHandle`,
    `VisibilityTimeout`), and the entries SQS reported failed."""

    client: Any
    sent: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    calls: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _id: str = field(default_factory=lambda: f"visibility-spy-{uuid.uuid4().hex}", repr=False)

    _EVENTS = ("ChangeMessageVisibility", "ChangeMessageVisibilityBatch")

    def __enter__(self) -> VisibilitySpy:
        events = self.client.meta.events
        for operation in self._EVENTS:
            # One unique id per registration: botocore ignores a second handler under an id it already holds.
            events.register(
                f"before-parameter-build.sqs.{operation}",
                self._request,
                unique_id=f"{self._id}-{operation}-b",
            )
            events.register(
                f"after-call.sqs.{operation}", self._answer, unique_id=f"{self._id}-{operation}-a"
            )
        return self

    def __exit__(self, *exc: object) -> None:
        events = self.client.meta.events
        for operation in self._EVENTS:
            events.unregister(
                f"before-parameter-build.sqs.{operation}", unique_id=f"{self._id}-{operation}-b"
            )
            events.unregister(f"after-call.sqs.{operation}", unique_id=f"{self._id}-{operation}-a")

    def _request(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        entries = params["Entries"] if model.name.endswith("Batch") else [params]
        with self._lock:
            self.calls += 1
            self.sent += [
                {"ReceiptHandle": e["ReceiptHandle"], "VisibilityTimeout": e["VisibilityTimeout"]}
                for e in entries
            ]

    def _answer(self, http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
        with self._lock:
            if http_response.status_code >= 300:
                self.failed.append(parsed.get("Error", {}))
            self.failed += parsed.get("Failed", [])

    def timeouts(self) -> dict[str, int]:
        """Receipt handle -> the visibility timeout set for it (each set once)."""
        handles = [entry["ReceiptHandle"] for entry in self.sent]
        assert len(handles) == len(set(handles)), f"a message's visibility set twice: {self.sent}"
        return {entry["ReceiptHandle"]: entry["VisibilityTimeout"] for entry in self.sent}


class Pinned:
    """A random source whose every draw is `value` (0.0: the jitter's floor; 1.0: its ceiling)."""

    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value
