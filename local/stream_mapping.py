"""Lambda's DynamoDB stream event source mapping, emulated for the local stack.

A :class:`StreamEventSourceMapping` reads one table's stream (on moto) and calls one function's ``invoke``
with the event Lambda would send, following https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html and
its "error handling" and "partial batch response" pages:

- reads every shard of the stream (DescribeStream, GetShardIterator at ``StartingPosition`` for the shards
  there at start, TRIM_HORIZON for shards that appear later, a child only once its parent is read to its
  end, GetRecords about four times a second), each shard's records in order, one batch in flight at a time;
- gathers up to ``BatchSize`` records, or as many as have arrived ``MaximumBatchingWindowInSeconds`` after
  the batch's first record (window 0: what has been read);
- builds Lambda's DynamoDB stream event (``{"Records": [...]}``: ``eventID``, ``eventName``,
  ``eventSource`` ``aws:dynamodb``, ``dynamodb`` with ``Keys``, ``NewImage``, ``OldImage``,
  ``SequenceNumber``, ``StreamViewType``, ``SizeBytes``, ``ApproximateCreationDateTime`` in epoch seconds,
  ``eventSourceARN``), binary attributes base64 as in Lambda's JSON;
- with ``ReportBatchItemFailures`` a return naming sequence numbers in ``batchItemFailures`` is a
  checkpoint: the records before the earliest one named are done and never sent again, the next batch
  starts at it. ``None``, ``{}`` or an empty list: the whole batch is done. A response that is not an
  object, a ``batchItemFailures`` that is not a list, or an entry not naming a record of the batch fails
  the whole batch, as a function error does;
- a function error retries the batch; with ``BisectBatchOnFunctionError`` a failed batch of more than one
  record is split, and its first half tried alone (a split is not a retry, as in Lambda);
- ``MaximumRetryAttempts`` (-1: until the records expire): the retries of a batch that starts at the same
  record; one more failure gives the batch up. ``MaximumRecordAgeInSeconds`` (-1: never): records older
  than that are given up without being sent. A batch given up is described to the ``OnFailure``
  destination (an SQS queue) as Lambda describes it (``requestContext``, ``responseContext``,
  ``DDBStreamBatchInfo`` with the shard id, the first and last sequence numbers, the stream ARN), and
  reading goes on after it; without a destination its records are discarded (logged);
- ``FilterCriteria``: records matching no pattern are skipped as Lambda skips them (the rules of
  :class:`local.sqs_mapping.FilterCriteria`, applied to the whole record);
- ``Enabled: false``: the mapping never reads.

What this does not emulate: ``ParallelizationFactor`` above 1 (one batch per shard at a time here, which
keeps each key's order as a factor of 1 does), tumbling windows, Lambda's own retry backoff (a fixed pause
here), the 6 MB payload limit, SNS destinations, shard splits on moto (moto keeps one shard), and the
event source mapping API (states, UUIDs, metrics).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3

from local.sqs_mapping import REPORT_BATCH_ITEM_FAILURES, FilterCriteria
from local.template.specs import DynamoDBEvent

if TYPE_CHECKING:
    from local.runtime import LocalFunction
    from local.template.specs import LocalStack

__all__ = [
    "RECORD_AGE_EXCEEDED",
    "RETRY_ATTEMPTS_EXHAUSTED",
    "StreamEventSourceMapping",
    "StreamStats",
    "checkpoint_of",
    "lambda_stream_record",
    "stream_mappings_from_stack",
]

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.25  # Lambda polls each shard about four times a second
RETRY_DELAY_S = 0.5  # between a failed invocation and its retry
DESCRIBE_EVERY_S = 10.0  # how often the shards are listed again
MAX_RECORDS_PER_READ = 1000  # GetRecords' limit
RETRY_ATTEMPTS_EXHAUSTED = "RetryAttemptsExhausted"
RECORD_AGE_EXCEEDED = "RecordAgeExceeded"


# --------------------------------------------------------------------------------------------------
# The event
# --------------------------------------------------------------------------------------------------


def _as_json_value(value: Any) -> Any:
    """An AttributeValue as Lambda's JSON carries it: binary as base64 text (boto3 reads it as bytes)."""
    if isinstance(value, Mapping):
        out = {}
        for key, inner in value.items():
            if key == "B" and isinstance(inner, (bytes, bytearray)):
                out[key] = base64.b64encode(inner).decode()
            elif key == "BS":
                out[key] = [
                    base64.b64encode(v).decode() if isinstance(v, (bytes, bytearray)) else v for v in inner
                ]
            elif key in ("M", "NewImage", "OldImage", "Keys") and isinstance(inner, Mapping):
                out[key] = {name: _as_json_value(v) for name, v in inner.items()}
            elif key == "L":
                out[key] = [_as_json_value(v) for v in inner]
            else:
                out[key] = _as_json_value(inner) if isinstance(inner, Mapping) else inner
        return out
    return value


def _epoch_seconds(value: Any) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, (int, float)):
        return float(value)
    return None


def lambda_stream_record(record: Mapping[str, Any], stream_arn: str) -> dict[str, Any]:
    """One GetRecords record (boto3's shape) as a record of Lambda's DynamoDB stream event."""
    body = dict(record.get("dynamodb") or {})
    created = _epoch_seconds(body.get("ApproximateCreationDateTime"))
    dynamodb: dict[str, Any] = {}
    if created is not None:
        dynamodb["ApproximateCreationDateTime"] = int(created)  # Lambda's event: whole epoch seconds
    for key in ("Keys", "NewImage", "OldImage"):
        if key in body:
            dynamodb[key] = {name: _as_json_value(v) for name, v in body[key].items()}
    for key in ("SequenceNumber", "SizeBytes", "StreamViewType"):
        if key in body:
            dynamodb[key] = body[key]
    out: dict[str, Any] = {
        "eventID": record.get("eventID", ""),
        "eventName": record.get("eventName", ""),
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.get("awsRegion", ""),
        "dynamodb": dynamodb,
    }
    if record.get("userIdentity"):
        out["userIdentity"] = dict(record["userIdentity"])
    out["eventSourceARN"] = stream_arn
    return out


# --------------------------------------------------------------------------------------------------
# The function's answer
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """An invocation's result: done up to ``checkpoint`` (an index into the batch; None: all of it), or
    failed as a whole (``error`` says why)."""

    checkpoint: int | None = None
    error: str | None = None


def checkpoint_of(
    response: Any, sequence_numbers: Sequence[str], *, report_batch_item_failures: bool
) -> Answer:
    """Lambda's reading of a function's return value for a stream batch (see the module docstring)."""
    if not report_batch_item_failures or response is None:
        return Answer()
    if not isinstance(response, Mapping):
        return Answer(error=f"the response is a {type(response).__name__}, not an object")
    failures = response.get("batchItemFailures")
    if failures is None:
        return Answer()
    if not isinstance(failures, list):
        return Answer(error="batchItemFailures is not a list")
    positions = {number: index for index, number in enumerate(sequence_numbers)}
    named: list[int] = []
    for entry in failures:
        identifier = entry.get("itemIdentifier") if isinstance(entry, Mapping) else None
        if not isinstance(identifier, str) or not identifier:
            return Answer(error=f"invalid batchItemFailures entry {entry!r}")
        if identifier not in positions:
            return Answer(error=f"itemIdentifier {identifier!r} is not a sequence number of the batch")
        named.append(positions[identifier])
    return Answer(checkpoint=min(named)) if named else Answer()


# --------------------------------------------------------------------------------------------------
# The mapping
# --------------------------------------------------------------------------------------------------


@dataclass
class StreamStats:
    batches: int = 0  # invocations
    records: int = 0  # records handed to the function (retries counted again)
    filtered_out: int = 0
    function_errors: int = 0
    malformed_responses: int = 0
    checkpoints: int = 0  # partial batch responses naming a record
    retries: int = 0
    bisections: int = 0
    given_up: int = 0  # records given up (retries exhausted or too old)
    described: int = 0  # batches described to the on-failure destination
    read_errors: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}


@dataclass
class _Shard:
    shard_id: str
    parent_id: str | None
    iterator: str | None = None
    closed: bool = False  # read to its end (NextShardIterator null)
    last_sequence_number: str | None = None  # the last record read (to renew an expired iterator)
    buffer: list[dict[str, Any]] = field(default_factory=list)  # read, not yet done
    first_read_at: float = 0.0  # monotonic time the buffer's first record was read
    head: str | None = None  # the sequence number the current attempts start at
    attempts: int = 0  # failed invocations starting at `head`
    cap: int = 0  # the batch size now (a bisection lowers it until a batch succeeds)
    retry_at: float = 0.0
    last_error: str | None = None  # "Unhandled" after a function error, None after a partial response

    @property
    def done(self) -> bool:
        return self.closed and not self.buffer


class StreamEventSourceMapping:
    """One ``Type: DynamoDB`` event of a function: reads the stream, invokes, checkpoints, gives up."""

    def __init__(
        self,
        event: DynamoDBEvent,
        *,
        invoke: Callable[[dict[str, Any]], Any],
        region: str,
        table_name: str | None = None,
        stream_arn: str | None = None,
        function_arn: str = "",
        on_failure_queue_url: str | None = None,
        name: str | None = None,
        client_factory: Callable[[str], Any] | None = None,
        poll_interval_s: float = POLL_INTERVAL_S,
        retry_delay_s: float = RETRY_DELAY_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if table_name is None and stream_arn is None:
            raise ValueError(f"{event.name}: a table name or a stream ARN is needed")
        if event.batch_size < 1:
            raise ValueError(f"{event.name}: BatchSize must be at least 1")
        self.event = event
        self.region = region
        self.table_name = table_name
        self.stream_arn = stream_arn
        self.function_arn = function_arn
        self.on_failure_queue_url = on_failure_queue_url
        self.name = name or f"{event.name}:{table_name or stream_arn}"
        self.filters = FilterCriteria(event.filter_criteria)
        self.report_batch_item_failures = REPORT_BATCH_ITEM_FAILURES in event.function_response_types
        if event.parallelization_factor > 1:
            log.warning(
                "%s: ParallelizationFactor %d runs as 1 locally", self.name, event.parallelization_factor
            )
        self.stats = StreamStats()
        self._invoke = invoke
        self._client_factory = client_factory or (
            lambda service: boto3.session.Session().client(service, region_name=region)
        )
        self._poll_interval_s = poll_interval_s
        self._retry_delay_s = retry_delay_s
        self._clock = clock
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._shards: dict[str, _Shard] = {}
        self._described_at = -DESCRIBE_EVERY_S
        self._idle = threading.Condition()
        self._passes = 0  # reading passes completed
        self._quiet_passes = 0  # passes in a row that read nothing and had nothing to do

    # ---- lifecycle --------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        return self.event.enabled

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> StreamEventSourceMapping:
        """Find the stream and place the iterators at ``StartingPosition`` now (so LATEST means "after
        start()"), then read in a thread. A disabled mapping does nothing. Returns self."""
        if self.running:
            raise RuntimeError(f"{self.name}: already running")
        if not self.enabled:
            log.info("%s: disabled (Enabled: false), not reading", self.name)
            return self
        self._stopping.clear()
        streams = self._client_factory("dynamodbstreams")
        if self.stream_arn is None:
            table = self._client_factory("dynamodb").describe_table(TableName=self.table_name)["Table"]
            if not table.get("LatestStreamArn"):
                raise RuntimeError(f"{self.name}: table {self.table_name} has no stream")
            self.stream_arn = table["LatestStreamArn"]
        self._describe(streams, self.event.starting_position)
        sqs = self._client_factory("sqs") if self.on_failure_queue_url else None
        self._thread = threading.Thread(
            target=self._run, args=(streams, sqs), name=f"stream-mapping-{self.name}", daemon=True
        )
        self._thread.start()
        return self

    def signal_stop(self) -> None:
        self._stopping.set()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop reading and wait for the thread (a batch being invoked finishes). True if it ended."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("%s: still busy after %.1f s", self.name, timeout)
                return False
        return True

    def __enter__(self) -> StreamEventSourceMapping:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """True once two reading passes that began after this call read nothing and left nothing to do
        (every record written before the call has been handled); False after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._idle:
            start = self._passes
            while not (self._passes >= start + 2 and self._quiet_passes >= 2):
                left = deadline - time.monotonic()
                if left <= 0 or not self.running:
                    return False
                self._idle.wait(min(left, 0.5))
        return True

    def status(self) -> dict[str, Any]:
        """A JSON-able description for the endpoints file."""
        return {
            "name": self.name,
            "stream_arn": self.stream_arn,
            "enabled": self.enabled,
            "running": self.running,
            "starting_position": self.event.starting_position,
            "batch_size": self.event.batch_size,
            "maximum_batching_window_s": self.event.maximum_batching_window_s,
            "report_batch_item_failures": self.report_batch_item_failures,
            "bisect_batch_on_function_error": self.event.bisect_batch_on_function_error,
            "maximum_retry_attempts": self.event.maximum_retry_attempts,
            "maximum_record_age_s": self.event.maximum_record_age_s,
            "on_failure_queue_url": self.on_failure_queue_url,
            **self.stats.snapshot(),
        }

    # ---- reading ----------------------------------------------------------------------------

    def _describe(self, streams: Any, position: str) -> None:
        """Add the shards not known yet: those there at start at ``position``, later ones at TRIM_HORIZON."""
        self._described_at = time.monotonic()
        shards: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"StreamArn": self.stream_arn}
        while True:
            description = streams.describe_stream(**kwargs)["StreamDescription"]
            shards.extend(description.get("Shards") or [])
            last = description.get("LastEvaluatedShardId")
            if not last:
                break
            kwargs["ExclusiveStartShardId"] = last
        for shard in shards:
            if shard["ShardId"] in self._shards:
                continue
            self._shards[shard["ShardId"]] = _Shard(
                shard["ShardId"], shard.get("ParentShardId"), cap=self.event.batch_size
            )
            self._shards[shard["ShardId"]].iterator = streams.get_shard_iterator(
                StreamArn=self.stream_arn, ShardId=shard["ShardId"], ShardIteratorType=position
            )["ShardIterator"]

    def _run(self, streams: Any, sqs: Any) -> None:
        while not self._stopping.is_set():
            busy = False
            try:
                if time.monotonic() - self._described_at >= DESCRIBE_EVERY_S:
                    self._describe(streams, "TRIM_HORIZON")
                for shard in list(self._shards.values()):
                    if self._stopping.is_set():
                        break
                    parent = self._shards.get(shard.parent_id or "")
                    if parent is not None and not parent.done:
                        continue  # a child waits for its parent's records, as in Lambda
                    busy |= self._read(streams, shard)
                    busy |= self._work(shard, sqs)
            except Exception:
                self.stats.add(read_errors=1)
                log.exception("%s: reading the stream failed; retrying", self.name)
                busy = False
            with self._idle:
                self._passes += 1
                pending = any(s.buffer for s in self._shards.values())
                self._quiet_passes = 0 if (busy or pending) else self._quiet_passes + 1
                self._idle.notify_all()
            if not busy:
                self._stopping.wait(self._poll_interval_s)

    def _read(self, streams: Any, shard: _Shard) -> bool:
        """GetRecords once for the shard (unless its buffer already holds a full batch); True if it read."""
        if shard.closed or shard.iterator is None or len(shard.buffer) >= self.event.batch_size:
            return False
        try:
            page = streams.get_records(ShardIterator=shard.iterator, Limit=MAX_RECORDS_PER_READ)
        except streams.exceptions.ExpiredIteratorException:
            shard.iterator = self._renewed_iterator(streams, shard)
            return False
        records = page.get("Records") or []
        shard.iterator = page.get("NextShardIterator")
        if shard.iterator is None:
            shard.closed = True
        if not records:
            return False
        shard.last_sequence_number = records[-1]["dynamodb"]["SequenceNumber"]
        kept = []
        for record in records:
            converted = lambda_stream_record(record, str(self.stream_arn))
            if self.filters and not self.filters.matches(converted):
                self.stats.add(filtered_out=1)
                continue
            kept.append(converted)
        if kept and not shard.buffer:
            shard.first_read_at = time.monotonic()
        shard.buffer.extend(kept)
        return True

    def _renewed_iterator(self, streams: Any, shard: _Shard) -> str:
        if shard.last_sequence_number is None:
            kwargs: dict[str, Any] = {"ShardIteratorType": "TRIM_HORIZON"}
        else:
            kwargs = {
                "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                "SequenceNumber": shard.last_sequence_number,
            }
        return streams.get_shard_iterator(StreamArn=self.stream_arn, ShardId=shard.shard_id, **kwargs)[
            "ShardIterator"
        ]

    # ---- invoking ---------------------------------------------------------------------------

    def _work(self, shard: _Shard, sqs: Any) -> bool:
        """Give up expired records, then invoke one batch if one is due; True if anything was done."""
        did = self._expire(shard, sqs)
        if not shard.buffer:
            return did
        now = time.monotonic()
        if now < shard.retry_at:
            return did
        full = len(shard.buffer) >= shard.cap
        window = self.event.maximum_batching_window_s
        retrying = shard.head == shard.buffer[0]["dynamodb"]["SequenceNumber"] and shard.attempts > 0
        if not (full or retrying or shard.cap < self.event.batch_size or now - shard.first_read_at >= window):
            return did
        self._invoke_batch(shard, sqs)
        return True

    def _expire(self, shard: _Shard, sqs: Any) -> bool:
        limit = self.event.maximum_record_age_s
        if limit < 0 or not shard.buffer:
            return False
        now = self._clock()
        expired = 0
        for record in shard.buffer:
            created = record["dynamodb"].get("ApproximateCreationDateTime")
            if created is None or now - float(created) <= limit:
                break
            expired += 1
        if not expired:
            return False
        self._give_up(shard, shard.buffer[:expired], RECORD_AGE_EXCEEDED, sqs, invoked=False)
        return True

    def _invoke_batch(self, shard: _Shard, sqs: Any) -> None:
        batch = shard.buffer[: shard.cap]
        numbers = [r["dynamodb"]["SequenceNumber"] for r in batch]
        if shard.head != numbers[0]:
            shard.head, shard.attempts = numbers[0], 0
        elif shard.attempts:
            self.stats.add(retries=1)
        self.stats.add(batches=1, records=len(batch))
        try:
            response = self._invoke({"Records": batch})
        except BaseException as exc:  # a handler's SystemExit must not end the reader either
            self.stats.add(function_errors=1)
            log.warning("%s: the function failed (%s: %s)", self.name, type(exc).__name__, exc)
            self._failed(shard, batch, sqs, "Unhandled")
            return
        answer = checkpoint_of(response, numbers, report_batch_item_failures=self.report_batch_item_failures)
        if answer.error:
            self.stats.add(malformed_responses=1)
            log.warning("%s: invalid partial batch response (%s); the batch failed", self.name, answer.error)
            self._failed(shard, batch, sqs, "Unhandled")
            return
        if answer.checkpoint is None:
            self._advance(shard, len(batch))
            return
        self.stats.add(checkpoints=1)
        if answer.checkpoint > 0:
            self._advance(shard, answer.checkpoint)  # the rest is retried from the checkpoint, a new head
            shard.retry_at = time.monotonic() + self._retry_delay_s
            return
        self._failed(shard, batch, sqs, None)

    def _advance(self, shard: _Shard, count: int) -> None:
        del shard.buffer[:count]
        shard.head, shard.attempts, shard.cap, shard.retry_at = None, 0, self.event.batch_size, 0.0
        if shard.buffer:
            shard.first_read_at = time.monotonic()

    def _failed(self, shard: _Shard, batch: list[dict[str, Any]], sqs: Any, error: str | None) -> None:
        """The batch at the shard's head failed: bisect it, retry it later, or give it up."""
        shard.last_error = error
        shard.retry_at = time.monotonic() + self._retry_delay_s
        if error and self.event.bisect_batch_on_function_error and len(batch) > 1:
            shard.cap = (len(batch) + 1) // 2
            self.stats.add(bisections=1)
            return
        shard.attempts += 1
        limit = self.event.maximum_retry_attempts
        if limit >= 0 and shard.attempts > limit:
            self._give_up(shard, batch, RETRY_ATTEMPTS_EXHAUSTED, sqs, invoked=True)

    def _give_up(
        self, shard: _Shard, batch: list[dict[str, Any]], condition: str, sqs: Any, *, invoked: bool
    ) -> None:
        attempts = shard.attempts if invoked else 0
        error = shard.last_error if invoked else None
        self.stats.add(given_up=len(batch))
        description = self.failure_description(shard.shard_id, batch, condition, attempts, error)
        first, last = batch[0]["dynamodb"]["SequenceNumber"], batch[-1]["dynamodb"]["SequenceNumber"]
        if sqs is None or not self.on_failure_queue_url:
            log.error(
                "%s: %s: %d record(s) %s..%s of %s discarded (no on-failure destination)",
                self.name, condition, len(batch), first, last, shard.shard_id,
            )  # fmt: skip
        else:
            try:
                sqs.send_message(QueueUrl=self.on_failure_queue_url, MessageBody=json.dumps(description))
                self.stats.add(described=1)
                log.warning(
                    "%s: %s: %d record(s) %s..%s of %s described to %s",
                    self.name, condition, len(batch), first, last, shard.shard_id, self.on_failure_queue_url,
                )  # fmt: skip
            except Exception:
                log.exception("%s: could not describe a given-up batch to its destination", self.name)
        self._advance(shard, len(batch))
        shard.last_error = None

    def failure_description(
        self,
        shard_id: str,
        batch: Sequence[Mapping[str, Any]],
        condition: str,
        attempts: int,
        error: str | None,
    ) -> dict[str, Any]:
        """What Lambda sends an on-failure destination for a stream batch it gave up."""

        def arrival(record: Mapping[str, Any]) -> str | None:
            created = record["dynamodb"].get("ApproximateCreationDateTime")
            if created is None:
                return None
            return datetime.fromtimestamp(float(created), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

        response: dict[str, Any] = {"statusCode": 200 if attempts else 0, "executedVersion": "$LATEST"}
        if error:
            response["functionError"] = error
        return {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self.function_arn,
                "condition": condition,
                "approximateInvokeCount": attempts,
            },
            "responseContext": response,
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": batch[0]["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": batch[-1]["dynamodb"]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": arrival(batch[0]),
                "approximateArrivalOfLastRecord": arrival(batch[-1]),
                "batchSize": len(batch),
                "streamArn": self.stream_arn,
            },
        }


# --------------------------------------------------------------------------------------------------
# Wiring from the template
# --------------------------------------------------------------------------------------------------


def stream_mappings_from_stack(
    stack: LocalStack,
    functions: Mapping[str, LocalFunction],
    *,
    client_factory: Callable[[str], Any] | None = None,
    retry_delay_s: float = RETRY_DELAY_S,
) -> list[StreamEventSourceMapping]:
    """One (unstarted) mapping per DynamoDB event of the template's functions, on the template's tables.

    An event whose table is not a resource of the template is skipped with a warning: locally there is
    nothing to read. Its on-failure destination is used when it is a queue of the template.
    """
    tables = stack.tables()
    queues = stack.queues()
    mappings = []
    for spec in stack.functions().values():
        function = functions.get(spec.logical_id)
        for event in spec.events:
            if not isinstance(event, DynamoDBEvent):
                continue
            table = tables.get(event.table_logical_id or "")
            if table is None or function is None or table.stream_view_type is None:
                reason = (
                    "no function" if function is None else f"stream {event.stream_arn} is not in the template"
                )
                log.warning("%s.%s: %s; not read", spec.logical_id, event.name, reason)
                continue
            destination = queues.get(event.on_failure_queue_logical_id or "")
            if event.on_failure_destination and destination is None:
                log.warning(
                    "%s.%s: on-failure destination %s is not a queue of the template; given-up batches are "
                    "only logged",
                    spec.logical_id,
                    event.name,
                    event.on_failure_destination,
                )
            mappings.append(
                StreamEventSourceMapping(
                    event,
                    invoke=function.invoke,
                    region=stack.region,
                    table_name=table.name,
                    function_arn=f"arn:{stack.partition}:lambda:{stack.region}:{stack.account_id}:function:{spec.name}",
                    on_failure_queue_url=destination.url if destination else None,
                    name=f"{spec.logical_id}.{event.name}",
                    client_factory=client_factory,
                    retry_delay_s=retry_delay_s,
                )
            )
    return mappings
