"""Load: N postbacks from C concurrent clients against the local stack's postback URL, then an audit.

The stack runs as `make run` runs it (`python -m local run`, its own process). Every postback is a distinct
delivery report (an N101 and an N102 per TRACKINGID, shuffled, so a message's reports race each other).
Each client keeps one HTTP/1.1 connection and, as the provider does, posts a refused or failed postback
again (up to 5 times). Reported: ack latency p50/p99 (each HTTP exchange), acknowledged postbacks per second,
and the time until the last one is applied in DynamoDB. The audit counts 0 lost (every acknowledged body in
S3 under its key and applied, its message DELIVERED) and 0 duplicated (exactly two history events each).

Baseline, same run: the same clients posting the same bodies to a null endpoint on loopback (a server in
its own process that reads each body and answers 200, storing nothing): the floor of HTTP on this machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import requests

from bench.common import ROOT, percentile
from local.process import StackProcess
from local.runtime import patched_environ
from local.stack import aws_environment
from mmsbridge.aws.state_table import StateTable

SAMPLES = ROOT / "tests" / "fixtures" / "provider" / "postbacks"
TRACKING = re.compile(rb"<TRACKINGID>[^<]*</TRACKINGID>")
ATTEMPTS = 5
REQUEST_TIMEOUT_S = 10.0  # what the provider waits for an answer (docs/provider-protocol.md)


def postbacks(count: int, seed: int = 11) -> tuple[list[bytes], list[str]]:
    """`count` distinct delivery reports (two per message, shuffled) and their TRACKINGIDs."""
    sent, delivered = (SAMPLES / "mms_mt_n101.xml").read_bytes(), (SAMPLES / "mms_mt_n102.xml").read_bytes()
    tracking_ids = [f"LOAD-{uuid.uuid4()}" for _ in range(count // 2)]
    bodies = [
        TRACKING.sub(f"<TRACKINGID>{tid}</TRACKINGID>".encode(), template)
        for tid in tracking_ids
        for template in (sent, delivered)
    ]
    random.Random(seed).shuffle(bodies)
    return bodies, tracking_ids


@dataclass
class LoadResult:
    latencies_s: list[float] = field(default_factory=list)
    acknowledged: list[bytes] = field(default_factory=list)
    unacknowledged: list[bytes] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    started: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, latency_s: float, status: str) -> None:
        with self._lock:
            self.latencies_s.append(latency_s)
            self.statuses[status] = self.statuses.get(status, 0) + 1

    def summary(self) -> dict:
        return {
            "posted": len(self.acknowledged) + len(self.unacknowledged),
            "acknowledged": len(self.acknowledged),
            "unacknowledged": len(self.unacknowledged),
            "exchanges": len(self.latencies_s),
            "statuses": dict(sorted(self.statuses.items())),
            "ack_p50_ms": percentile(self.latencies_s, 50) * 1000,
            "ack_p99_ms": percentile(self.latencies_s, 99) * 1000,
            "ack_max_ms": max(self.latencies_s) * 1000,
            "elapsed_s": self.elapsed_s,
            "per_second": len(self.acknowledged) / self.elapsed_s,
        }


def post_all(url: str, bodies: list[bytes], clients: int) -> LoadResult:
    """Post every body from `clients` threads, each over its own keep-alive connection, retrying failures."""
    result = LoadResult()
    queue = list(reversed(bodies))
    queue_lock = threading.Lock()

    def client() -> None:
        with requests.Session() as session:
            while True:
                with queue_lock:
                    if not queue:
                        return
                    body = queue.pop()
                for attempt in range(ATTEMPTS):
                    started = time.perf_counter()
                    try:
                        answer = session.post(
                            url, data=body, headers={"Content-Type": "text/xml"}, timeout=REQUEST_TIMEOUT_S
                        )
                        status = str(answer.status_code)
                    except requests.RequestException as error:
                        status = type(error).__name__
                    result.add(time.perf_counter() - started, status)
                    if status == "200":
                        with result._lock:
                            result.acknowledged.append(body)
                        break
                    time.sleep(0.05 * 2**attempt)
                else:
                    with result._lock:
                        result.unacknowledged.append(body)

    result.started = time.perf_counter()
    threads = [threading.Thread(target=client, name=f"client-{n}") for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.elapsed_s = time.perf_counter() - result.started
    return result


class _NullHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        payload = b'{"status":"accepted"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_: object) -> None:
        pass


def serve_null(port_file: str) -> None:
    """The baseline's endpoint: answers every POST with 200 and stores nothing (run in its own process)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NullHandler)
    server.daemon_threads = True
    Path(port_file).write_text(str(server.server_address[1]))
    server.serve_forever()


def baseline(bodies: list[bytes], clients: int, workdir: Path) -> LoadResult:
    import subprocess

    port_file = workdir / "null.port"
    process = subprocess.Popen(
        [sys.executable, "-c", f"from bench.bench_load import serve_null; serve_null({str(port_file)!r})"],
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 20
        while not (port_file.exists() and port_file.read_text()):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the null endpoint did not start")
            time.sleep(0.05)
        return post_all(f"http://127.0.0.1:{port_file.read_text()}/postback", bodies, clients)
    finally:
        process.terminate()
        process.wait(timeout=10)


@dataclass
class Audit:
    stored: int
    applied: int
    lost: list[str]
    duplicated: list[str]
    wrong_state: list[str]
    applied_after_s: float

    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.wrong_state)

    def summary(self) -> dict:
        return {
            "stored": self.stored,
            "applied": self.applied,
            "lost": len(self.lost),
            "duplicated": len(self.duplicated),
            "wrong_state": len(self.wrong_state),
            "applied_after_s": self.applied_after_s,
        }


def audit(endpoints: dict, load: LoadResult, tracking_ids: list[str], timeout_s: float) -> Audit:
    """Wait (bounded) until every message is applied, then count what went in against what came out."""
    with patched_environ(aws_environment(endpoints["aws_endpoint_url"], endpoints["region"])):
        s3, sqs, dynamodb = boto3.client("s3"), boto3.client("sqs"), boto3.client("dynamodb")
    table = StateTable(dynamodb, endpoints["tables"]["StateTable"])
    acknowledged_ids = {
        m.group(1).decode() for body in load.acknowledged if (m := re.search(rb"<TRACKINGID>([^<]*)<", body))
    }
    deadline = time.monotonic() + timeout_s
    # Applied when the postback queue is empty: the consumer deletes a message only once it is written.
    # (Polling the table instead would load the local AWS the consumer is using.)
    while queue_depth(sqs, endpoints["queues"]["PostbackQueue"]) and time.monotonic() < deadline:
        time.sleep(0.5)
    applied_after_s = time.perf_counter() - load.started
    pending = set(tracking_ids)
    messages: dict[str, dict] = {}
    with ThreadPoolExecutor(max_workers=8) as pool:
        while pending:
            found = dict(zip(pending, pool.map(table.message, pending), strict=True))
            for tid, message in found.items():
                if message and message.get("state") == "DELIVERED" and len(message["history"]) >= 2:
                    messages[tid] = message
                    pending.discard(tid)
            if not pending or time.monotonic() > deadline:
                messages.update((tid, m) for tid, m in found.items() if m and tid in pending)
                break
            time.sleep(1.0)

    keys: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=endpoints["buckets"]["ArchiveBucket"], Prefix="raw/"
    ):
        keys.update(item["Key"] for item in page.get("Contents", []))
    missing_raw = [
        body for body in load.acknowledged if f"raw/{hashlib.sha256(body).hexdigest()}.xml" not in keys
    ]
    lost = [tid for tid in acknowledged_ids if tid not in messages] + [b.decode()[:60] for b in missing_raw]
    duplicated = [tid for tid, m in messages.items() if len(m["history"]) > 2]
    wrong = [tid for tid, m in messages.items() if m.get("state") != "DELIVERED"]
    return Audit(
        stored=len(load.acknowledged) - len(missing_raw),
        applied=sum(len(m["history"]) for m in messages.values()),
        lost=lost,
        duplicated=duplicated,
        wrong_state=wrong,
        applied_after_s=applied_after_s,
    )


def queue_depth(sqs, url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes.get(name, "0")) for name in names)


def run(count: int, clients: int, timeout_s: float | None = None) -> dict:
    bodies, tracking_ids = postbacks(count)
    with tempfile.TemporaryDirectory(prefix="mmsbridge-load-") as tmp:
        workdir = Path(tmp)
        floor = baseline(bodies, clients, workdir)
        with StackProcess(workdir / "stack") as stack:
            load = post_all(stack.endpoints["postback_url"], bodies, clients)
            checked = audit(stack.endpoints, load, tracking_ids, timeout_s or 60 + count / 10)
    real, base = load.summary(), floor.summary()
    return {
        "postbacks": count,
        "clients": clients,
        "stack": real,
        "baseline": base,
        "audit": checked.summary(),
        "ok": checked.ok() and not load.unacknowledged,
        "ratio_p50": real["ack_p50_ms"] / base["ack_p50_ms"],
        "ratio_p99": real["ack_p99_ms"] / base["ack_p99_ms"],
        "ratio_throughput": real["per_second"] / base["per_second"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("count", nargs="?", type=int, default=2000, help="postbacks (default 2000)")
    parser.add_argument("clients", nargs="?", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    (ROOT / ".local").mkdir(exist_ok=True)
    report = run(args.count, args.clients)
    if args.json:
        print(json.dumps(report))
        return 0 if report["ok"] else 1
    s, b, a = report["stack"], report["baseline"], report["audit"]
    print(f"load: {args.count} postbacks from {args.clients} clients on loopback")
    print(
        f"  local stack:   ack p50 {s['ack_p50_ms']:.1f} ms  p99 {s['ack_p99_ms']:.1f} ms"
        f"  max {s['ack_max_ms']:.1f} ms  {s['per_second']:.0f} postbacks/s acknowledged"
        f"  answers {s['statuses']}"
    )
    print(
        f"  null endpoint: ack p50 {b['ack_p50_ms']:.1f} ms  p99 {b['ack_p99_ms']:.1f} ms"
        f"  {b['per_second']:.0f} postbacks/s (baseline: HTTP on loopback, nothing stored)"
    )
    print(
        f"  ratios:        p50 {report['ratio_p50']:.1f}x  p99 {report['ratio_p99']:.1f}x"
        f"  throughput {report['ratio_throughput']:.2f}x of the null endpoint"
    )
    print(
        f"  audit:         {a['stored']} in S3, {a['applied']} applied, all applied after"
        f" {a['applied_after_s']:.1f} s; lost {a['lost']}, duplicated {a['duplicated']},"
        f" wrong state {a['wrong_state']}, unacknowledged {s['unacknowledged']}"
    )
    print(f"target: 0 lost, ack p99 reported: {'met' if report['ok'] else 'NOT MET'}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
