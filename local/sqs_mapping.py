"""Lambda's SQS event source mapping, emulated for the local stack.

A :class:`SqsEventSourceMapping` polls one queue (on moto) and calls one function's ``invoke`` with
the event Lambda would send, then deletes what Lambda would delete, following
https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html and ``services-sqs-errorhandling``:

- long-polls ReceiveMessage (at most 10 messages a call, 1 s waits so that ``stop()`` is prompt) and
  gathers up to ``BatchSize`` records, or as many as arrive within ``MaximumBatchingWindowInSeconds``
  of the batch's first record (window 0: what one receive returned);
- builds Lambda's SQS event (``{"Records": [...]}``, the shape of
  ``sam local generate-event sqs receive-message``);
- a function error deletes nothing: the messages come back after the queue's visibility timeout,
  and SQS (moto does this too) moves a message to the dead-letter queue on the receive after
  ``maxReceiveCount``;
- with ``ReportBatchItemFailures`` a return deletes every record except those named in
  ``batchItemFailures``; an invalid response fails the whole batch; without it, any return deletes
  the whole batch;
- ``FilterCriteria``: records that match no filter are deleted without invoking the function, as
  Lambda does (rules: equals, null, empty, ``prefix``, ``suffix``, ``equals-ignore-case``,
  ``anything-but``, ``numeric``, ``exists``; others raise NotImplementedError at construction);
- ``ScalingConfig.MaximumConcurrency`` = N: N pollers, each with at most one batch in flight, and the
  local stack gives the function N containers, so N invocations run at once. Without it, one poller:
  Lambda would start five and scale out, but the local function then has one container, so more
  pollers would only hold more messages invisible while they wait for it;
- ``Enabled: false``: the mapping never polls.

What this does not emulate:

- scaling: Lambda's five initial pollers, +300 concurrent batches a minute up to 1,000, and backing
  off concurrency after function errors or throttles; here a fixed number of pollers, and a failed
  batch is simply retried when SQS makes it visible again;
- Lambda's own receive pattern (its pollers' request sizes and waits) and its 6 MB invocation payload
  limit (batches here are bounded by count and window only);
- function timeouts, throttling and reserved concurrency: ``invoke`` runs as long as it runs. An
  invocation longer than the queue's VisibilityTimeout makes its messages visible again while it
  runs; SQS then delivers them a second time (here as in Lambda, so it is logged, not prevented);
- FIFO specifics beyond what SQS itself does: moto keeps a message group blocked while a batch of it
  is in flight, but there is no per-group concurrency scaling, and a partial failure does not hold
  back the rest of the group's batch (the function must report the unprocessed records, as in AWS);
- the event source mapping API itself (states, UUIDs, ``LastProcessingResult``, metrics); for SQS
  the failure path is the queue's own redrive policy, which SQS (moto) applies;
- the 5-filter limit and filters on record metadata (Lambda documents filtering on ``body`` only;
  here a pattern may also name other record keys).
"""

from __future__ import annotations

import base64
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import boto3

from local.template.specs import SqsEvent

if TYPE_CHECKING:
    from local.runtime import LocalFunction
    from local.template.specs import LocalStack

__all__ = [
    "REPORT_BATCH_ITEM_FAILURES",
    "BatchOutcome",
    "FilterCriteria",
    "MappingStats",
    "SqsEventSourceMapping",
    "batch_outcome",
    "lambda_record",
    "mappings_from_stack",
]

log = logging.getLogger(__name__)

REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"
RECEIVE_WAIT_S = 1  # long-poll wait: short, so that stop() is prompt
MAX_MESSAGES_PER_RECEIVE = 10  # the SQS limit
BACKOFF_S = 1.0  # after an unexpected error in a poller
DEFAULT_POLLER_LIMIT = 16  # locally, MaximumConcurrency beyond this only holds messages invisible

# Lambda's record puts these first (sam local generate-event sqs receive-message); others follow.
_ATTRIBUTE_ORDER = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
)


# --------------------------------------------------------------------------------------------------
# The event
# --------------------------------------------------------------------------------------------------


def _b64(value: bytes | str) -> str:
    raw = value.encode() if isinstance(value, str) else value
    return base64.b64encode(raw).decode()


def _message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        out["binaryValue"] = _b64(value["BinaryValue"])
    out["stringListValues"] = list(value.get("StringListValues") or [])
    out["binaryListValues"] = [_b64(v) for v in value.get("BinaryListValues") or []]
    out["dataType"] = value.get("DataType", "String")
    return out


def lambda_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One ReceiveMessage message (boto3's shape) as a record of Lambda's SQS event."""
    received = dict(message.get("Attributes") or {})
    attributes = {key: received.pop(key) for key in _ATTRIBUTE_ORDER if key in received}
    attributes.update(received)
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": attributes,
        "messageAttributes": {
            name: _message_attribute(value)
            for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    record.update({"eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": region})
    return record


# --------------------------------------------------------------------------------------------------
# The function's answer
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchOutcome:
    """What to keep on the queue after an invocation that returned."""

    failed: frozenset[str]  # message ids that stay on the queue
    malformed: str | None = None  # why the response failed the whole batch, if it did


def batch_outcome(
    response: Any, message_ids: Sequence[str], *, report_batch_item_failures: bool
) -> BatchOutcome:
    """Lambda's reading of a function's return value for an SQS batch.

    Without ReportBatchItemFailures any return is a success. With it: ``None``, ``{}``, a null or empty
    ``batchItemFailures`` are a complete success; a response that is not an object, a
    ``batchItemFailures`` that is not a list, or an entry without a non-empty ``itemIdentifier`` naming
    a record of the batch fail the whole batch.
    """
    ids = list(message_ids)
    if not report_batch_item_failures or response is None:
        return BatchOutcome(frozenset())
    if not isinstance(response, Mapping):
        return BatchOutcome(frozenset(ids), f"the response is a {type(response).__name__}, not an object")
    failures = response.get("batchItemFailures")
    if failures is None:
        return BatchOutcome(frozenset())
    if not isinstance(failures, list):
        return BatchOutcome(frozenset(ids), "batchItemFailures is not a list")
    failed: set[str] = set()
    for entry in failures:
        identifier = entry.get("itemIdentifier") if isinstance(entry, Mapping) else None
        if not isinstance(identifier, str) or not identifier:
            return BatchOutcome(frozenset(ids), f"invalid batchItemFailures entry {entry!r}")
        if identifier not in ids:
            return BatchOutcome(frozenset(ids), f"itemIdentifier {identifier!r} is not in the batch")
        failed.add(identifier)
    return BatchOutcome(frozenset(failed))


# --------------------------------------------------------------------------------------------------
# Filter criteria (Lambda's subset of EventBridge patterns)
# --------------------------------------------------------------------------------------------------

_NUMERIC_OPS: dict[str, Callable[[float, float], bool]] = {
    "=": lambda a, b: a == b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _equal(rule: Any, value: Any) -> bool:
    if _is_number(rule) and _is_number(value):
        return rule == value
    return type(rule) is type(value) and rule == value


class FilterCriteria:
    """``{"Filters": [{"Pattern": "<json>"}, ...]}``, compiled; a record passes if any pattern matches.

    As in Lambda, a pattern whose ``body`` is an object matches only records whose body is a JSON
    object or array (parsed before matching), and a pattern whose ``body`` is a list of rules matches
    only bodies that are not JSON objects or arrays (compared as strings).
    """

    def __init__(self, criteria: Mapping[str, Any] | None) -> None:
        filters = (criteria or {}).get("Filters") or []
        if not isinstance(filters, list):
            raise ValueError("FilterCriteria.Filters must be a list")
        self.patterns: list[dict[str, Any]] = []
        for i, item in enumerate(filters):
            where = f"FilterCriteria.Filters[{i}].Pattern"
            raw = item.get("Pattern") if isinstance(item, Mapping) else None
            try:
                pattern = json.loads(raw) if isinstance(raw, str) else raw
            except ValueError as exc:
                raise ValueError(f"{where} is not valid JSON: {exc}") from exc
            if not isinstance(pattern, dict) or not pattern:
                raise ValueError(f"{where} must be a non-empty JSON object")
            _check_pattern(pattern, where)
            self.patterns.append(pattern)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def matches(self, record: Mapping[str, Any]) -> bool:
        if not self.patterns:
            return True
        body = record.get("body")
        try:
            parsed = json.loads(body) if isinstance(body, str) else None
        except ValueError:
            parsed = None
        json_body = parsed if isinstance(parsed, (dict, list)) else None
        for pattern in self.patterns:
            data = dict(record)
            if "body" in pattern:
                if isinstance(pattern["body"], dict):
                    if json_body is None:
                        continue
                    data["body"] = json_body
                elif json_body is not None:
                    continue
            if _match_object(pattern, data):
                return True
        return False


def _check_pattern(pattern: Mapping[str, Any], where: str) -> None:
    for key, value in pattern.items():
        here = f"{where}.{key}"
        if key.startswith("$"):
            raise NotImplementedError(f"{here}: {key} is not supported by Lambda event filtering")
        if isinstance(value, dict):
            _check_pattern(value, here)
        elif isinstance(value, list) and value:
            for rule in value:
                _check_rule(rule, here)
        else:
            raise ValueError(f"{here}: a pattern value must be an object or a non-empty list of rules")


def _check_rule(rule: Any, where: str) -> None:
    if rule is None or isinstance(rule, (str, int, float, bool)):
        return
    if not isinstance(rule, dict) or len(rule) != 1:
        raise ValueError(f"{where}: a rule must be a value or an object with one operator, got {rule!r}")
    ((op, arg),) = rule.items()
    if op in ("prefix", "suffix", "equals-ignore-case"):
        if not isinstance(arg, str):
            raise ValueError(f"{where}: {op} takes a string")
    elif op == "exists":
        if not isinstance(arg, bool):
            raise ValueError(f"{where}: exists takes true or false")
    elif op == "anything-but":
        values = arg if isinstance(arg, list) else [arg]
        for value in values:
            if isinstance(value, dict):
                if list(value) != ["prefix"] or not isinstance(value["prefix"], str):
                    raise NotImplementedError(f"{where}: anything-but supports values and prefix only")
            elif not (value is None or isinstance(value, (str, int, float, bool))):
                raise ValueError(f"{where}: anything-but takes values")
    elif op == "numeric":
        if not isinstance(arg, list) or not arg or len(arg) % 2 or len(arg) > 4:
            raise ValueError(f"{where}: numeric takes [op, n] or [op, n, op, n]")
        for sign, bound in zip(arg[::2], arg[1::2], strict=True):
            if sign not in _NUMERIC_OPS or not _is_number(bound):
                raise ValueError(f"{where}: numeric takes operators {list(_NUMERIC_OPS)} and numbers")
    else:
        raise NotImplementedError(f"{where}: the {op!r} rule is not supported here (nor by Lambda filtering)")


def _match_object(pattern: Mapping[str, Any], data: Any) -> bool:
    if not isinstance(data, dict):
        return False
    for key, sub in pattern.items():
        present = key in data
        if isinstance(sub, dict):
            if not present or not _match_object(sub, data[key]):
                return False
        elif not _match_rules(sub, present, data.get(key)):
            return False
    return True


def _match_rules(rules: list[Any], present: bool, value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    for rule in rules:
        if isinstance(rule, dict) and "exists" in rule:
            if rule["exists"] == (present and not isinstance(value, dict)):
                return True
        elif present and any(_match_rule(rule, v) for v in values):
            return True
    return False


def _match_rule(rule: Any, value: Any) -> bool:
    if not isinstance(rule, dict):
        return _equal(rule, value)
    ((op, arg),) = rule.items()
    if op == "prefix":
        return isinstance(value, str) and value.startswith(arg)
    if op == "suffix":
        return isinstance(value, str) and value.endswith(arg)
    if op == "equals-ignore-case":
        return isinstance(value, str) and value.casefold() == arg.casefold()
    if op == "anything-but":
        excluded = arg if isinstance(arg, list) else [arg]
        for item in excluded:
            if isinstance(item, dict):
                if isinstance(value, str) and value.startswith(item["prefix"]):
                    return False
            elif _equal(item, value):
                return False
        return True
    if op == "numeric":
        return _is_number(value) and all(
            _NUMERIC_OPS[sign](value, bound) for sign, bound in zip(arg[::2], arg[1::2], strict=True)
        )
    return False


# --------------------------------------------------------------------------------------------------
# Stats
# --------------------------------------------------------------------------------------------------


@dataclass
class MappingStats:
    """Counters of one mapping, safe to update from its pollers and to read from anywhere."""

    batches: int = 0  # invocations
    records: int = 0  # records passed to the function
    function_errors: int = 0  # invocations that raised: nothing deleted
    malformed_responses: int = 0  # invalid partial batch responses: nothing deleted
    failures_reported: int = 0  # records named in valid batchItemFailures: kept on the queue
    deleted: int = 0  # messages deleted after a successful invocation
    filtered_out: int = 0  # messages deleted because no filter matched
    delete_errors: int = 0  # DeleteMessageBatch entries (or calls) that failed
    poll_errors: int = 0  # unexpected errors in a poller (it backed off and went on)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, count in counts.items():
                setattr(self, name, getattr(self, name) + count)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}


# --------------------------------------------------------------------------------------------------
# The mapping
# --------------------------------------------------------------------------------------------------


class SqsEventSourceMapping:
    """Pollers that feed one queue's messages to one function, as Lambda's SQS trigger does.

    ``sqs`` is a boto3 SQS client (shared by the pollers; boto3 clients are thread-safe) or a
    zero-argument factory of clients (called once per poller, on the thread calling ``start()``);
    by default ``boto3.session.Session().client("sqs", region_name=region)``, which reaches moto
    through ``AWS_ENDPOINT_URL``. ``invoke`` is called with the event and its return value is read
    as Lambda reads it (e.g. ``LocalFunction.invoke``); concurrent pollers call it concurrently.
    """

    def __init__(
        self,
        event: SqsEvent,
        *,
        queue_url: str,
        queue_arn: str,
        invoke: Callable[[dict[str, Any]], Any],
        region: str,
        sqs: Any = None,
        name: str | None = None,
        poller_limit: int = DEFAULT_POLLER_LIMIT,
    ) -> None:
        if event.batch_size < 1:
            raise ValueError(f"{event.name}: BatchSize must be at least 1, got {event.batch_size}")
        if event.maximum_batching_window_s < 0:
            raise ValueError(f"{event.name}: MaximumBatchingWindowInSeconds must not be negative")
        if event.maximum_concurrency is not None and event.maximum_concurrency < 1:
            raise ValueError(f"{event.name}: MaximumConcurrency must be at least 1")
        self.event = event
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.region = region
        self.name = name or f"{event.name}:{event.queue_name}"
        self.filters = FilterCriteria(event.filter_criteria)
        self.report_batch_item_failures = REPORT_BATCH_ITEM_FAILURES in event.function_response_types
        wanted = event.maximum_concurrency or 1
        self.pollers = min(wanted, poller_limit)
        if wanted > self.pollers:
            log.warning("%s: MaximumConcurrency %d runs as %d local pollers", self.name, wanted, self.pollers)
        self.stats = MappingStats()
        self._invoke = invoke
        self._sqs = sqs
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._busy = 0  # pollers holding received messages (gathering, invoking or deleting)
        self._busy_lock = threading.Lock()
        self._control: Any = None
        self._visibility_timeout: float | None = None

    # ---- lifecycle --------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        return self.event.enabled

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def start(self) -> SqsEventSourceMapping:
        """Start the pollers (none for a disabled mapping); returns self."""
        if self.running:
            raise RuntimeError(f"{self.name}: already running")
        self._stopping.clear()
        self._threads = []
        self._control = self._client()
        if not self.enabled:
            log.info("%s: disabled (Enabled: false), not polling", self.name)
            return self
        try:
            attributes = self._control.get_queue_attributes(
                QueueUrl=self.queue_url, AttributeNames=["VisibilityTimeout"]
            )["Attributes"]
            self._visibility_timeout = float(attributes["VisibilityTimeout"])
        except Exception as exc:  # the queue may appear later; the pollers retry
            log.warning("%s: cannot read the queue's VisibilityTimeout: %s", self.name, exc)
        for index in range(self.pollers):
            client = self._client()
            thread = threading.Thread(
                target=self._run, args=(client,), name=f"sqs-mapping-{self.name}-{index}", daemon=True
            )
            self._threads.append(thread)
        for thread in self._threads:
            thread.start()
        return self

    def signal_stop(self) -> None:
        """Ask the pollers to stop, without waiting (to stop several mappings at once, then ``stop()``)."""
        self._stopping.set()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop polling and wait for the pollers (at most one long poll, 1 s, plus a batch in flight):
        a batch being invoked finishes (and is deleted as usual), a batch still being gathered goes
        back to the queue at once. True if every poller ended within ``timeout``."""
        self._stopping.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in self._threads if t.is_alive()]
        if stuck:
            log.warning("%s: pollers still busy after %.1f s: %s", self.name, timeout, ", ".join(stuck))
        return not stuck

    def __enter__(self) -> SqsEventSourceMapping:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_idle(self, timeout: float = 10.0, poll_s: float = 0.1) -> bool:
        """True once the queue holds no message (visible, in flight or delayed) and no poller holds a
        batch; False after ``timeout``. Messages kept after a failure count as not idle."""
        client = self._control or self._client()
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        deadline = time.monotonic() + timeout
        while True:
            attributes = client.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=names)
            queued = sum(int(attributes["Attributes"].get(n, "0")) for n in names)
            with self._busy_lock:
                busy = self._busy
            if queued == 0 and busy == 0:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll_s)

    def status(self) -> dict[str, Any]:
        """A JSON-able description for the local stack's status/endpoints."""
        return {
            "name": self.name,
            "queue_url": self.queue_url,
            "enabled": self.enabled,
            "running": self.running,
            "batch_size": self.event.batch_size,
            "maximum_batching_window_s": self.event.maximum_batching_window_s,
            "report_batch_item_failures": self.report_batch_item_failures,
            "pollers": self.pollers if self.enabled else 0,
            "filters": len(self.filters.patterns),
            **self.stats.snapshot(),
        }

    # ---- polling ----------------------------------------------------------------------------

    def _client(self) -> Any:
        if self._sqs is None:
            return boto3.session.Session().client("sqs", region_name=self.region)
        if hasattr(self._sqs, "receive_message"):
            return self._sqs
        return self._sqs()

    def _run(self, sqs: Any) -> None:
        while not self._stopping.is_set():
            try:
                self._poll_once(sqs)
            except Exception:
                self.stats.add(poll_errors=1)
                log.exception("%s: poller error; retrying in %.0f s", self.name, BACKOFF_S)
                self._stopping.wait(BACKOFF_S)

    def _hold(self, delta: int) -> None:
        with self._busy_lock:
            self._busy += delta

    def _poll_once(self, sqs: Any) -> None:
        batch: list[dict[str, Any]] = []  # filled by _gather, which marks the poller busy on its first record
        try:
            self._gather(sqs, batch)
            if batch and self._stopping.is_set():
                self._release(sqs, batch)
            elif batch:
                self._process(sqs, batch)
        finally:
            if batch:
                self._hold(-1)

    def _receive(self, sqs: Any, count: int, wait_s: int) -> list[dict[str, Any]]:
        response = sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=wait_s,
            AttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        records = [lambda_record(m, self.queue_arn, self.region) for m in response.get("Messages", [])]
        if not self.filters:
            return records
        kept: list[dict[str, Any]] = []
        dropped: list[dict[str, Any]] = []
        for record in records:
            (kept if self.filters.matches(record) else dropped).append(record)
        if dropped:  # Lambda deletes the messages that match no filter
            self.stats.add(filtered_out=self._delete(sqs, dropped))
        return kept

    def _gather(self, sqs: Any, batch: list[dict[str, Any]]) -> None:
        """Records for one invocation: up to BatchSize, within the window from the first record."""
        size = self.event.batch_size
        window = self.event.maximum_batching_window_s
        first_at = 0.0
        position: dict[str, int] = {}
        while len(batch) < size and not self._stopping.is_set():
            wait_s = RECEIVE_WAIT_S
            if batch:
                left = first_at + window - time.monotonic()
                if window <= 0 or left <= 0:
                    break
                wait_s = min(RECEIVE_WAIT_S, math.floor(left))
            records = self._receive(sqs, min(MAX_MESSAGES_PER_RECEIVE, size - len(batch)), wait_s)
            if records and not batch:
                first_at = time.monotonic()
                self._hold(+1)
            for record in records:
                index = position.get(record["messageId"])
                if index is None:
                    position[record["messageId"]] = len(batch)
                    batch.append(record)
                else:  # back within the window (VisibilityTimeout < window): once, newest receipt
                    batch[index] = record
                    log.warning(
                        "%s: message %s became visible again while the batch was gathered "
                        "(the queue's VisibilityTimeout is shorter than the batching window)",
                        self.name,
                        record["messageId"],
                    )
            if not batch:
                return
            if not records and wait_s == 0:
                self._stopping.wait(min(0.1, max(0.0, first_at + window - time.monotonic())))

    def _process(self, sqs: Any, batch: list[dict[str, Any]]) -> None:
        ids = [r["messageId"] for r in batch]
        self.stats.add(batches=1, records=len(batch))
        started = time.monotonic()
        try:
            response = self._invoke({"Records": batch})
        except BaseException as exc:  # a handler's SystemExit must not end the poller either
            self.stats.add(function_errors=1)
            log.warning(
                "%s: the function failed (%s: %s); %d message(s) return after the visibility timeout",
                self.name,
                type(exc).__name__,
                exc,
                len(batch),
                exc_info=True,
            )
            return
        finally:
            self._check_duration(time.monotonic() - started, len(batch))
        outcome = batch_outcome(response, ids, report_batch_item_failures=self.report_batch_item_failures)
        if outcome.malformed:
            self.stats.add(malformed_responses=1)
            log.warning(
                "%s: invalid partial batch response (%s); the whole batch of %d is retried",
                self.name,
                outcome.malformed,
                len(batch),
            )
            return
        if outcome.failed:
            self.stats.add(failures_reported=len(outcome.failed))
        done = [r for r in batch if r["messageId"] not in outcome.failed]
        self.stats.add(deleted=self._delete(sqs, done))

    def _check_duration(self, seconds: float, count: int) -> None:
        timeout = self._visibility_timeout
        if timeout is not None and seconds > timeout:
            log.warning(
                "%s: the invocation took %.1f s, more than the queue's VisibilityTimeout of %.0f s: its %d "
                "message(s) became visible again meanwhile and may be delivered twice",
                self.name,
                seconds,
                timeout,
                count,
            )

    def _delete(self, sqs: Any, records: Iterable[Mapping[str, Any]]) -> int:
        """DeleteMessageBatch in chunks of 10; errors are logged and counted, never raised."""
        pending = list(records)
        deleted = 0
        for start in range(0, len(pending), MAX_MESSAGES_PER_RECEIVE):
            chunk = pending[start : start + MAX_MESSAGES_PER_RECEIVE]
            entries = [{"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(chunk)]
            try:
                response = sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except Exception:
                self.stats.add(delete_errors=len(chunk))
                log.exception("%s: DeleteMessageBatch failed for %d message(s)", self.name, len(chunk))
                continue
            deleted += len(response.get("Successful", []))
            for failure in response.get("Failed", []):
                self.stats.add(delete_errors=1)
                record = chunk[int(failure["Id"])]
                log.warning(
                    "%s: could not delete message %s: %s %s",
                    self.name,
                    record["messageId"],
                    failure.get("Code"),
                    failure.get("Message"),
                )
        return deleted

    def _release(self, sqs: Any, records: list[dict[str, Any]]) -> None:
        """Make gathered but uninvoked messages visible again (stopping)."""
        for start in range(0, len(records), MAX_MESSAGES_PER_RECEIVE):
            chunk = records[start : start + MAX_MESSAGES_PER_RECEIVE]
            entries = [
                {"Id": str(i), "ReceiptHandle": r["receiptHandle"], "VisibilityTimeout": 0}
                for i, r in enumerate(chunk)
            ]
            try:
                sqs.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=entries)
            except Exception as exc:
                log.warning("%s: could not release %d message(s): %s", self.name, len(chunk), exc)


# --------------------------------------------------------------------------------------------------
# Wiring from the template
# --------------------------------------------------------------------------------------------------


def mappings_from_stack(
    stack: LocalStack,
    functions: Mapping[str, LocalFunction],
    *,
    sqs: Any = None,
    poller_limit: int = DEFAULT_POLLER_LIMIT,
) -> list[SqsEventSourceMapping]:
    """One (unstarted) mapping per SQS event of the template's functions, on the template's queues.

    An event whose queue is not a resource of the template is skipped with a warning: locally there
    is nothing to poll.
    """
    queues = stack.queues()
    mappings = []
    for spec in stack.functions().values():
        function = functions.get(spec.logical_id)
        for event in spec.events:
            if not isinstance(event, SqsEvent):
                continue
            queue = queues.get(event.queue_logical_id or "")
            if queue is None or function is None:
                reason = (
                    f"queue {event.queue_name} is not in the template" if queue is None else "no function"
                )
                log.warning("%s.%s: %s; not polled", spec.logical_id, event.name, reason)
                continue
            mappings.append(
                SqsEventSourceMapping(
                    event,
                    queue_url=queue.url,
                    queue_arn=queue.arn,
                    invoke=function.invoke,
                    region=stack.region,
                    sqs=sqs,
                    name=f"{spec.logical_id}.{event.name}",
                    poller_limit=poller_limit,
                )
            )
    return mappings
