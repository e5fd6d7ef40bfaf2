"""Ingest benchmark: warm latency and cold path, each as a ratio to a baseline measured in the same run
against the same local moto server.

- warm: the real handler (admit, archive and enqueue concurrently, log, metrics) against the bare
  minimum, the same two writes one after the other with bare boto3. Once as is, once with a fixed delay
  injected into every AWS call (a stand-in for the network round trip the writes pay on AWS: moto on
  loopback is CPU-bound, so overlap only shows where there is latency to overlap). The postback queue is
  drained between blocks of calls, untimed: moto's SendMessage slows with the queue's depth (about 2 ms
  per 100 messages waiting), which SQS does not, and it would otherwise grow by two messages per round.
- cold: a fresh interpreter that imports the handler module and handles one postback (reading the postback
  token's secret first, as every new container does), against a fresh interpreter that imports boto3,
  creates the two clients and does the two writes.

Targets: warm p50 <= 1.1 x baseline as is and <= 0.7 x with the delay; cold <= 1.3 x.
Run: .venv/bin/python bench/bench_ingest.py [--runs N] [--delay-ms D] [--json]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import statistics
import sys
import time
import uuid

import boto3

from bench.common import ROOT, cold_environment, fresh_interpreter, interleaved, local_aws, summary_ms
from local import aws_faults
from local import stack as local_stack

BODY = (ROOT / "tests" / "fixtures" / "provider" / "postbacks" / "mms_mt_n102.xml").read_bytes()


def proxy_event(body: bytes, token: str) -> dict:
    """The event API Gateway gives for a postback to /postback/<token> (the stack's current token)."""
    return {
        "resource": "/postback/{token}",
        "path": f"/postback/{token}",
        "httpMethod": "POST",
        "headers": {"Content-Type": "text/xml"},
        "pathParameters": {"token": token},
        "requestContext": {"requestId": str(uuid.uuid4()), "identity": {"sourceIp": "127.0.0.1"}},
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }


def unique_body() -> bytes:
    # A fresh body per call, so each write is a new object, as with real traffic.
    return BODY.replace(b"</POSTBACK>", f"<!-- {uuid.uuid4()} --></POSTBACK>".encode())


# The handler's log lines and EMF metrics go to stdout; its Logger binds the stream once per process.
DEVNULL = open(os.devnull, "w")  # noqa: SIM115 - open for the whole run


# Rounds between two drains of the postback queue: it holds at most 2 x BLOCK messages while timed.
BLOCK = 10


def drain(sqs, queue_url: str) -> None:
    """Delete every message waiting on the queue (PurgeQueue is allowed once a minute only)."""
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages"):
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)


def blocks(runs: int, sqs, queue_url: str, *measures) -> list[list[float]]:
    """`interleaved` in blocks of BLOCK rounds, with the queue drained before each block."""
    results: list[list[float]] = [[] for _ in measures]
    for start in range(0, runs, BLOCK):
        drain(sqs, queue_url)
        for samples, block in zip(results, interleaved(min(BLOCK, runs - start), *measures), strict=True):
            samples += block
    return results


def warm(stack, moto, runs: int, delay_s: float) -> dict:
    with contextlib.redirect_stdout(DEVNULL):
        return _warm(stack, moto, runs, delay_s)


def _warm(stack, moto, runs: int, delay_s: float) -> dict:
    ingest = local_stack.load_functions(stack, moto.endpoint_url)["IngestFunction"]
    token = local_stack.postback_token(stack, moto.endpoint_url)
    bucket = stack.buckets()["ArchiveBucket"].name
    queue_url = stack.queues()["PostbackQueue"].url
    s3, sqs = boto3.client("s3"), boto3.client("sqs")

    def handler_call() -> float:
        event = proxy_event(unique_body(), token)
        started = time.perf_counter()
        response = ingest.invoke(event)
        elapsed = time.perf_counter() - started
        assert response["statusCode"] == 200, response
        return elapsed

    def baseline_call() -> float:
        body = unique_body()
        started = time.perf_counter()
        s3.put_object(Bucket=bucket, Key=f"raw/{uuid.uuid4()}.xml", Body=body)
        sqs.send_message(QueueUrl=queue_url, MessageBody=body.decode())
        return time.perf_counter() - started

    clients = [ingest.module.INGEST.archive._s3, ingest.module.INGEST.queue._sqs, s3, sqs]
    with contextlib.ExitStack() as delays:
        if delay_s:
            for client in clients:
                delays.enter_context(aws_faults.inject(client, "*", delay_s=delay_s))
        blocks(BLOCK, sqs, queue_url, handler_call, baseline_call)  # warm-up, not counted
        handler, baseline = blocks(runs, sqs, queue_url, handler_call, baseline_call)
    result = {"handler": summary_ms(handler), "baseline": summary_ms(baseline)}
    result["ratio_p50"] = result["handler"]["p50_ms"] / result["baseline"]["p50_ms"]
    result["ratio_p95"] = result["handler"]["p95_ms"] / result["baseline"]["p95_ms"]
    return result


HANDLER_SCRIPT = """
import base64, json, sys, uuid
sys.path[:0] = [{layer!r}, {function!r}]
import app
class Context:
    function_name = "ingest"; memory_limit_in_mb = 512; aws_request_id = str(uuid.uuid4())
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ingest"
    def get_remaining_time_in_millis(self): return 8000
event = json.loads(sys.stdin.read())
response = app.lambda_handler(event, Context())
assert response["statusCode"] == 200, response
"""

BASELINE_SCRIPT = """
import sys, uuid
import boto3
s3 = boto3.client("s3")
sqs = boto3.client("sqs")
body = sys.stdin.buffer.read()
s3.put_object(Bucket={bucket!r}, Key=f"raw/{{uuid.uuid4()}}.xml", Body=body)
sqs.send_message(QueueUrl={queue!r}, MessageBody=body.decode())
"""


def cold(stack, moto, runs: int) -> dict:
    function = stack.functions()["IngestFunction"]
    env = cold_environment(moto, stack, "IngestFunction")
    token = local_stack.postback_token(stack, moto.endpoint_url)
    handler_code = HANDLER_SCRIPT.format(
        layer=str(ROOT / "layers" / "mmsbridge"), function=str(function.code_uri)
    )
    baseline_code = BASELINE_SCRIPT.format(
        bucket=stack.buckets()["ArchiveBucket"].name, queue=stack.queues()["PostbackQueue"].url
    )

    def run(code: str, stdin: bytes) -> float:
        return fresh_interpreter(code, stdin, env)

    def handler_run() -> float:
        return run(handler_code, json.dumps(proxy_event(unique_body(), token)).encode())

    def baseline_run() -> float:
        return run(baseline_code, unique_body())

    handler_run(), baseline_run()  # warm the file system cache for both
    handler, baseline = blocks(
        runs, boto3.client("sqs"), stack.queues()["PostbackQueue"].url, handler_run, baseline_run
    )
    result = {"handler": summary_ms(handler), "baseline": summary_ms(baseline)}
    result["ratio_median"] = statistics.median(handler) / statistics.median(baseline)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=200, help="warm calls per variant (default 200)")
    parser.add_argument("--cold-runs", type=int, default=9, help="fresh interpreters per variant (default 9)")
    parser.add_argument("--delay-ms", type=float, default=20.0, help="injected per-call latency (default 20)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    with local_aws() as (moto, stack):
        report = {
            "warm": warm(stack, moto, args.runs, 0.0),
            "warm_delayed": warm(stack, moto, max(20, args.runs // 4), args.delay_ms / 1000),
            "cold": cold(stack, moto, args.cold_runs),
            "delay_ms": args.delay_ms,
        }
    if args.json:
        print(json.dumps(report))
        return 0
    w, d, c = report["warm"], report["warm_delayed"], report["cold"]
    print(
        f"ingest warm, as is:        handler p50 {w['handler']['p50_ms']:.2f} ms"
        f" p95 {w['handler']['p95_ms']:.2f} ms"
        f" | sequential baseline p50 {w['baseline']['p50_ms']:.2f} ms p95 {w['baseline']['p95_ms']:.2f} ms"
        f" | ratio p50 {w['ratio_p50']:.2f} (target <= 1.1)"
    )
    print(
        f"ingest warm, +{args.delay_ms:.0f} ms/call: handler p50 {d['handler']['p50_ms']:.2f} ms"
        f" | sequential baseline p50 {d['baseline']['p50_ms']:.2f} ms | ratio p50 {d['ratio_p50']:.2f}"
        " (target <= 0.7)"
    )
    print(
        f"ingest cold path:          handler median {c['handler']['p50_ms']:.0f} ms"
        f" | bare boto3 median {c['baseline']['p50_ms']:.0f} ms"
        f" | ratio {c['ratio_median']:.2f} (target <= 1.3)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
