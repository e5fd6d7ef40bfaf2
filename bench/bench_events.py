"""Event publisher throughput against PutEvents alone, on the same local moto, in the same run.

The template's state table (with its stream) and event bus, provisioned on moto; a rule on the bus sends
every mmsbridge event to a queue, as a subscriber's would, so both variants pay the same delivery. The
consumer's planner writes the items of `messages` delivery-report pairs (N101 then N102 per message) and the
table's stream records are read as the event source mapping reads them (GetShardIterator, GetRecords), in
batches of the template's default BatchSize (100).

- publisher: the real handler (EventPublisherFunction, wired from template.yaml) on every batch: decide each
  record (with its consistent read of the message's markers), PutEvents in calls of ten, the checkpoint.
- PutEvents alone: the very entries the publisher put (read back from the subscriber's queue), put again
  with bare boto3 in calls of ten: what publishing costs with no decision and no read at all.

The subscriber's queue is drained between batches, outside the timed calls, for both variants (moto's SQS
slows as a queue deepens). Figure: events per second; ratio publisher / PutEvents alone (reported).
Run: .venv/bin/python -m bench.bench_events [--messages N] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import boto3
from boto3.dynamodb.types import TypeSerializer

from bench.common import ROOT, local_aws
from local import stack as local_stack
from mmsbridge.events.changes import SOURCE
from mmsbridge.postbacks.planner import Received, plan_batch
from mmsbridge.postbacks.reader import parse_postback

SAMPLES = ROOT / "tests" / "fixtures" / "provider" / "postbacks"
BATCH_SIZE = 100  # the template's EventPublisherBatchSize default
serializer = TypeSerializer()
DEVNULL = open(os.devnull, "w")  # noqa: SIM115 - the handler's log lines, for the whole run


def write_reports(dynamodb: Any, table: str, messages: int) -> None:
    """Each message's SENT (N101) then DELIVERED (N102) report, written as the consumer writes them."""
    sent, delivered = (SAMPLES / "mms_mt_n101.xml").read_bytes(), (SAMPLES / "mms_mt_n102.xml").read_bytes()
    received = []
    for number in range(messages):
        tracking = f"<TRACKINGID>E-{uuid.uuid4()}</TRACKINGID>".encode()
        for template in (sent, delivered):
            body = re.sub(rb"<TRACKINGID>[^<]*</TRACKINGID>", tracking, template)
            sha = hashlib.sha256(body).hexdigest()
            moment = datetime.now(UTC)
            received.append(
                Received(f"r{number}-{len(received)}", parse_postback(body), f"raw/{sha}.xml", sha, moment)
            )
    for start in range(0, len(received), 10):  # ten postbacks: one consumer batch
        items = list(plan_batch(received[start : start + 10]).puts.values())
        for chunk in range(0, len(items), 25):
            requests = [
                {"PutRequest": {"Item": {k: serializer.serialize(v) for k, v in item.items()}}}
                for item in items[chunk : chunk + 25]
            ]
            dynamodb.batch_write_item(RequestItems={table: requests})


def stream_batches(dynamodb: Any, streams: Any, table: str, iterators: list[str]) -> list[list[dict]]:
    """Every record written since `iterators` were taken, as Lambda's DynamoDB stream event carries them."""
    arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    records = []
    for iterator in iterators:
        while iterator:
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            records.extend(page["Records"])
            iterator = page.get("NextShardIterator") if page["Records"] else None
    for record in records:
        created = record["dynamodb"].get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            record["dynamodb"]["ApproximateCreationDateTime"] = created.timestamp()
        record["eventSourceARN"] = arn
    return [records[i : i + BATCH_SIZE] for i in range(0, len(records), BATCH_SIZE)]


def latest_iterators(dynamodb: Any, streams: Any, table: str) -> list[str]:
    arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shards = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    return [
        streams.get_shard_iterator(StreamArn=arn, ShardId=s["ShardId"], ShardIteratorType="LATEST")[
            "ShardIterator"
        ]
        for s in shards
    ]


def drain(sqs: Any, queue_url: str) -> list[dict]:
    events = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        events.extend(json.loads(m["Body"]) for m in messages)
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )
    return events


def subscriber(events: Any, sqs: Any, bus: str) -> str:
    queue_url = sqs.create_queue(QueueName=f"bench-events-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = f"bench-events-{uuid.uuid4().hex[:8]}"
    events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps({"source": [SOURCE]}))
    events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])
    return queue_url


def measure(stack: local_stack.LocalStack, moto: Any, messages: int) -> dict[str, Any]:
    with contextlib.redirect_stdout(DEVNULL):
        publisher = local_stack.load_functions(stack, moto.endpoint_url)["EventPublisherFunction"]
    dynamodb, streams = boto3.client("dynamodb"), boto3.client("dynamodbstreams")
    events, sqs = boto3.client("events"), boto3.client("sqs")
    table = stack.tables()["StateTable"].name
    bus = publisher.environment["EVENT_BUS_NAME"]
    if bus not in {b["Name"] for b in events.list_event_buses()["EventBuses"]}:
        events.create_event_bus(Name=bus)
    queue_url = subscriber(events, sqs, bus)

    iterators = latest_iterators(dynamodb, streams, table)
    write_reports(dynamodb, table, messages)
    batches = stream_batches(dynamodb, streams, table, iterators)
    records = sum(len(b) for b in batches)

    published: list[dict] = []
    publisher_s = 0.0
    for batch in batches:
        started = time.perf_counter()
        with contextlib.redirect_stdout(DEVNULL):
            response = publisher.invoke({"Records": batch})
        publisher_s += time.perf_counter() - started
        assert response == {"batchItemFailures": []}, response
        published.extend(drain(sqs, queue_url))

    entries = [
        {
            "Source": e["source"],
            "DetailType": e["detail-type"],
            "Detail": json.dumps(e["detail"]),
            "EventBusName": bus,
        }
        for e in published
    ]
    alone_s = 0.0
    for start in range(0, len(entries), BATCH_SIZE):  # the same calls, the same drains between them
        started = time.perf_counter()
        for call in range(start, min(start + BATCH_SIZE, len(entries)), 10):
            answer = events.put_events(Entries=entries[call : call + 10])
            assert answer["FailedEntryCount"] == 0, answer
        alone_s += time.perf_counter() - started
        drain(sqs, queue_url)

    result = {
        "messages": messages,
        "stream_records": records,
        "events": len(published),
        "publisher_per_s": len(published) / publisher_s,
        "put_events_per_s": len(entries) / alone_s,
    }
    result["ratio"] = result["publisher_per_s"] / result["put_events_per_s"]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500, help="delivery-report pairs written")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    with local_aws() as (moto, stack):
        result = measure(stack, moto, args.messages)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['stream_records']} stream records -> {result['events']} events | "
            f"publisher {result['publisher_per_s']:.0f}/s, "
            f"PutEvents alone {result['put_events_per_s']:.0f}/s, "
            f"ratio {result['ratio']:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
