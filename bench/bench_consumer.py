"""Consumer benchmark, each figure against a baseline measured in the same run on the same local moto.

- throughput: 1,000 postbacks (delivery reports N101 + N102 for 500 messages, shuffled) taken from the
  postback queue in batches of 10, processed by the real consumer handler, against a naive consumer that
  decodes and parses each record the same way and then does one unconditional put_item per record. On
  Lambda the event source mapping, not the function, receives and deletes the messages, so the batches
  are received first and the timing covers the function's work; the receive cost of moto's SQS (which
  copies every message it returns) is reported beside it.
- cold path: a fresh interpreter that imports the consumer handler and processes one 10-record batch,
  against a fresh interpreter that imports boto3, creates the client and writes the same items the
  handler writes for those 10 records (its plan, computed beforehand: one batch_write_item).

Targets: throughput >= 1.5 x the naive baseline; cold path <= 1.3 x the bare minimum.
Run: .venv/bin/python -m bench.bench_consumer [--messages N] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import re
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime

import boto3
from boto3.dynamodb.types import TypeSerializer

from bench.common import ROOT, cold_environment, fresh_interpreter, local_aws
from local import stack as local_stack
from mmsbridge.core import envelope
from mmsbridge.postbacks.planner import Received, plan_batch
from mmsbridge.postbacks.reader import parse_postback

SAMPLES = ROOT / "tests" / "fixtures" / "provider" / "postbacks"
serializer = TypeSerializer()
DEVNULL = open(os.devnull, "w")  # noqa: SIM115 - the handler's log lines, for the whole run


def postbacks(count: int) -> list[bytes]:
    sent, delivered = (SAMPLES / "mms_mt_n101.xml").read_bytes(), (SAMPLES / "mms_mt_n102.xml").read_bytes()
    bodies = []
    for _ in range(count // 2):
        tracking = f"<TRACKINGID>B-{uuid.uuid4()}</TRACKINGID>".encode()
        for template in (sent, delivered):
            bodies.append(re.sub(rb"<TRACKINGID>[^<]*</TRACKINGID>", tracking, template))
    random.Random(7).shuffle(bodies)
    return bodies


def envelope_of(body: bytes) -> str:
    sha = hashlib.sha256(body).hexdigest()
    return envelope.encode(
        key=f"raw/{sha}.xml",
        sha256=sha,
        body=body,
        received_at=datetime.now(UTC),
        source_ip="127.0.0.1",
        request_id="bench",
    )


def fill(sqs, queue_url: str, bodies: list[bytes]) -> None:
    for start in range(0, len(bodies), 10):
        entries = [
            {"Id": str(i), "MessageBody": envelope_of(b)} for i, b in enumerate(bodies[start : start + 10])
        ]
        assert not sqs.send_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed")


def receive_all(sqs, queue_url: str) -> tuple[list[list[dict]], float]:
    """The queue's messages as the event source mapping hands them over: batches of 10 SQS records."""
    batches, started = [], time.perf_counter()
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=600
        ).get("Messages", [])
        if not messages:
            return batches, time.perf_counter() - started
        batches.append(
            [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m.get("Attributes", {}),
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bench",
                    "awsRegion": "us-east-1",
                }
                for m in messages
            ]
        )


def process_all(batches: list[list[dict]], process) -> tuple[int, float]:
    done, started = 0, time.perf_counter()
    for records in batches:
        failed = process(records)
        done += sum(1 for r in records if r["messageId"] not in failed)
    return done, time.perf_counter() - started


def throughput(stack, moto, count: int) -> dict:
    with contextlib.redirect_stdout(DEVNULL):
        consumer = local_stack.load_functions(stack, moto.endpoint_url)["ConsumerFunction"]
    sqs, dynamodb = boto3.client("sqs"), boto3.client("dynamodb")
    table = stack.tables()["StateTable"].name
    queues = {}
    for name in ("handler", "naive"):
        queues[name] = sqs.create_queue(
            QueueName=f"bench-{name}-{uuid.uuid4().hex[:8]}", Attributes={"VisibilityTimeout": "60"}
        )["QueueUrl"]
        fill(sqs, queues[name], postbacks(count))

    def handler(records) -> set[str]:
        with contextlib.redirect_stdout(DEVNULL):
            response = consumer.invoke({"Records": records})
        return {f["itemIdentifier"] for f in response["batchItemFailures"]}

    def naive(records) -> set[str]:
        for r in records:
            queued = envelope.decode(r["body"])
            postback = parse_postback(queued.body)
            dynamodb.put_item(
                TableName=table,
                Item={
                    "pk": {"S": f"NAIVE#{postback.tracking_id}"},
                    "sk": {"S": postback.code},
                    "state": {"S": str(postback.state)},
                    "raw_key": {"S": queued.key},
                },
            )
        return set()

    handler_batches, receive_s = receive_all(sqs, queues["handler"])
    naive_batches, _ = receive_all(sqs, queues["naive"])
    handled, handler_s = process_all(handler_batches, handler)
    naive_done, naive_s = process_all(naive_batches, naive)
    assert handled == naive_done == count, (handled, naive_done)
    result = {
        "records": count,
        "handler_per_s": count / handler_s,
        "naive_per_s": count / naive_s,
        "sqs_receive_per_s": count / receive_s,
    }
    result["ratio"] = result["handler_per_s"] / result["naive_per_s"]
    return result


HANDLER_SCRIPT = """
import json, sys, uuid
sys.path[:0] = [{layer!r}, {function!r}]
import app
class Context:
    function_name = "consumer"; memory_limit_in_mb = 512; aws_request_id = str(uuid.uuid4())
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:consumer"
    def get_remaining_time_in_millis(self): return 30000
response = app.lambda_handler(json.loads(sys.stdin.read()), Context())
assert response == {{"batchItemFailures": []}}, response
"""

BASELINE_SCRIPT = """
import json, sys
import boto3
from boto3.dynamodb.types import TypeSerializer
dynamodb = boto3.client("dynamodb")
items = json.loads(sys.stdin.read())
dynamodb.batch_write_item(RequestItems={{{table!r}: [{{"PutRequest": {{"Item": item}}}} for item in items]}})
"""


def cold(stack, moto, runs: int) -> dict:
    function = stack.functions()["ConsumerFunction"]
    env = cold_environment(moto, stack, "ConsumerFunction")
    table = stack.tables()["StateTable"].name
    handler_code = HANDLER_SCRIPT.format(
        layer=str(ROOT / "layers" / "mmsbridge"), function=str(function.code_uri)
    )
    baseline_code = BASELINE_SCRIPT.format(table=table)

    def run(code: str, stdin: str) -> float:
        return fresh_interpreter(code, stdin.encode(), env)

    def batch() -> list[bytes]:
        return postbacks(10)

    def handler_run() -> float:
        records = [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "r",
                "body": envelope_of(b),
                "attributes": {},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:x",
                "awsRegion": "us-east-1",
            }
            for b in batch()
        ]
        return run(handler_code, json.dumps({"Records": records}))

    def baseline_run() -> float:
        now = datetime.now(UTC)
        received = [
            Received(str(i), parse_postback(b, received_at=now), "raw/k", "sha", now)
            for i, b in enumerate(batch())
        ]
        items = [
            {k: serializer.serialize(v) for k, v in item.items()}
            for item in plan_batch(received).puts.values()
        ]
        assert len(items) <= 25
        return run(baseline_code, json.dumps(items))

    handler_run(), baseline_run()
    handler, baseline = [], []
    for _ in range(runs):
        handler.append(handler_run())
        baseline.append(baseline_run())
    return {
        "handler_ms": statistics.median(handler) * 1000,
        "baseline_ms": statistics.median(baseline) * 1000,
        "ratio": statistics.median(handler) / statistics.median(baseline),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--cold-runs", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with local_aws() as (moto, stack):
        report = {
            "throughput": throughput(stack, moto, args.messages),
            "cold": cold(stack, moto, args.cold_runs),
        }
    if args.json:
        print(json.dumps(report))
        return 0
    t, c = report["throughput"], report["cold"]
    print(
        f"consumer throughput: {t['handler_per_s']:.0f} postbacks/s | naive put_item per record "
        f"{t['naive_per_s']:.0f}/s | ratio {t['ratio']:.2f} (target >= 1.5)"
        f" | (moto SQS receive alone: {t['sqs_receive_per_s']:.0f}/s)"
    )
    print(
        f"consumer cold path:  handler median {c['handler_ms']:.0f} ms | bare boto3 median "
        f"{c['baseline_ms']:.0f} ms | ratio {c['ratio']:.2f} (target <= 1.3)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
