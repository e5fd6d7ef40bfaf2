"""Requests per message: every AWS call the pipeline makes per postback (each ORIGIN/CODE kind), per send
request (each outcome) and per published event, counted on the local stack by a meter on botocore
(bench/aws_meter.py), not read from the code; with the DynamoDB capacity units they cost, the busiest shared
partition's units per message, log bytes, invocations and handler time.

The whole local stack runs in this process (moto, the provider simulator, the API, the event source
mappings and the five functions' real handlers). Each scenario posts or enqueues `--per-kind` distinct
messages of one kind, waits until every queue and the table's stream are idle, and divides what the meter
saw by the number of messages. Postbacks are posted one at a time to the API (the provider sends them one
at a time) while the consumer's mapping is paused; it then takes them in full batches (BatchSize 10), as it
does at a busy account's pace, where the cost per message matters.
A warm-up scenario runs first, so that cold starts (secret reads, client set-up) are not counted.

The floor each figure is held to (FLOOR) is the fewest requests that still keep every invariant; docs/cost.md
("The floor") says which requests and why.

Run: .venv/bin/python -m bench.bench_requests [--per-kind N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import boto3
import requests

from bench.aws_meter import AwsMeter, Tally, by_function
from bench.common import ROOT
from local import stack as local_stack
from local.simulator import ProviderFault

POSTBACKS = ROOT / "tests" / "fixtures" / "provider" / "postbacks"
VARIED_IDS = ("TRACKINGID", "TRANSACTIONID", "SERIALNUMBER", "CUSTOMPASSID", "MMSID", "CAMPAIGNID")
FLOOR = {"postback": 2.3, "send accepted": 4.3, "send refused before a call": 1.2, "event": 0.1}
BILLED_FREE = {"dynamodbstreams"}  # Lambda's reading of a table's stream is not billed per request


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---- postbacks ------------------------------------------------------------------------------------------


def kinds() -> list[tuple[str, bytes]]:
    """(label, body) of every postback fixture: one per ORIGIN/CODE and outcome variant."""
    found = []
    for path in sorted(POSTBACKS.glob("*.xml")):
        body = path.read_bytes()
        origin = _tag(body, "ORIGIN") or "GENERATE_PASS"
        code = _tag(body, "CODE") or _tag(body, "STATUSCODE")
        found.append((f"{origin} {code} ({path.stem})", body))
    return found


def _stem(label: str) -> str:
    """The fixture's name in a kind's label: `SMS_MT N201 (sms_mt_n201)` -> `sms_mt_n201`."""
    return label.rpartition("(")[2].rstrip(")")


def _tag(body: bytes, name: str) -> str | None:
    found = re.search(rb"<%s>([^<]*)</%s>" % (name.encode(), name.encode()), body)
    return found.group(1).decode() if found else None


def variant(body: bytes, number: int, run: str) -> bytes:
    """The postback as another message: its ids, its mobile and its sender's number made unique; the
    account's own number (TO of an inbound message, FROM of a delivery report) stays."""
    for name in VARIED_IDS:
        suffix = f"{number:04d}" if name in ("MMSID", "CAMPAIGNID") else f"{run}{number:04d}"
        body = re.sub(
            rb"(<%s>)([^<]*)(</%s>)" % (name.encode(), name.encode()),
            rb"\g<1>\g<2>%s\g<3>" % suffix.encode(),
            body,
        )
    phone = f"1312555{number % 10000:04d}".encode()
    body = re.sub(rb"<MOBILE>[^<]*</MOBILE>", rb"<MOBILE>" + phone + rb"</MOBILE>", body)
    body = re.sub(
        rb"<REFERENCEVALUE>[^<]*</REFERENCEVALUE>", rb"<REFERENCEVALUE>" + phone + rb"</REFERENCEVALUE>", body
    )
    body = re.sub(rb"<EMAIL>([^<]*)</EMAIL>", rb"<EMAIL>b%s%04d.\1</EMAIL>" % (run.encode(), number), body)
    if re.search(rb"<ORIGIN>\w+_MO</ORIGIN>", body):  # the sender of an inbound message
        body = re.sub(rb"<FROM>[^<]*</FROM>", rb"<FROM>" + phone + rb"</FROM>", body)
    elif re.search(rb"<ORIGIN>\w+_MT</ORIGIN>", body):  # the recipient of an outbound one
        body = re.sub(rb"<TO>[^<]*</TO>", rb"<TO>" + phone + rb"</TO>", body)
    return body


def post_all(running: local_stack.RunningStack, bodies: list[bytes]) -> None:
    """Post the bodies one after the other, the consumer paused: at a busy account's pace its batches are
    full (BatchSize), and these are too."""
    consumer = next(
        m
        for m in running.mappings
        if getattr(m, "queue_url", None) == running.endpoints()["queues"]["PostbackQueue"]
    )
    consumer.stop()
    try:
        _post(running, bodies)
    finally:
        consumer.start()


def _post(running: local_stack.RunningStack, bodies: list[bytes]) -> None:
    with requests.Session() as session:
        for body in bodies:
            answer = session.post(
                running.postback_url, data=body, headers={"Content-Type": "text/xml"}, timeout=10
            )
            if answer.status_code != 200:
                raise RuntimeError(f"the ingest answered {answer.status_code}: {answer.text[:200]}")


# ---- sends ------------------------------------------------------------------------------------------------


def send_request(label: str, number: int, run: str, to: str | None = None) -> dict[str, Any]:
    """A send request to a number of its own (many recipients, as a campaign has)."""
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
    return {
        "request_id": f"cost-{slug}-{run}-{number:04d}",
        "action": "sendSMS",
        "to": to or f"+1 (773) 555-{number % 10000:04d}",
        "from": "47215",
        "text": f"Lakeshore Coffee: your order {run}{number:04d} is ready",
    }


def enqueue(running: local_stack.RunningStack, bodies: list[str]) -> None:
    sqs = boto3.client("sqs")
    url = running.endpoints()["send_queue_url"]
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start : start + 10])]
        if sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed"):
            raise RuntimeError("the send queue refused a request")


# ---- measuring --------------------------------------------------------------------------------------------


def wait_idle(running: local_stack.RunningStack, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    for _ in range(2):  # a stream record may start a new batch after the queues drained
        if running.simulator:
            running.simulator.wait_for_postbacks(timeout_s=max(1.0, deadline - time.monotonic()))
        for mapping in running.mappings:
            if mapping.enabled and not mapping.wait_idle(timeout=max(1.0, deadline - time.monotonic())):
                raise RuntimeError(f"{mapping.name} did not drain within {timeout_s} s")


def partition_pattern(value: str) -> str:
    """A partition key with its variable parts named: `OPEN#3` -> `OPEN#<shard>`."""
    parts = value.split("#")
    named = [parts[0]]
    for part in parts[1:]:
        if re.fullmatch(r"[A-Z_]+|provider", part):
            named.append(part)
        elif re.fullmatch(r"\d{1,2}", part):
            named.append("<shard>")
        elif re.fullmatch(r"\d{4}-\d{2}-\d{2}", part):
            named.append("<date>")
        elif re.fullmatch(r"\d{5,15}", part):
            named.append("<number>")
        else:
            named.append("<id>")
    return "#".join(named)


def hot_partitions(tally: Tally, messages: int) -> list[dict[str, Any]]:
    """Per partition pattern: the distinct partitions written and the busiest one's units per message.
    DynamoDB takes at most 1,000 write units a second in one partition, so 1000 / units is the message
    rate at which that partition throttles (if its key does not vary with the traffic)."""
    patterns: dict[tuple[str, str], list[int]] = defaultdict(list)
    for (index, value), units in tally.partitions.items():
        patterns[(index, partition_pattern(value))].append(units)
    rows = [
        {
            "index": index,
            "partition": pattern,
            "distinct": len(units),
            "wcu_per_message": round(sum(units) / messages, 3),
            "busiest_wcu_per_message": round(max(units) / messages, 3),
        }
        for (index, pattern), units in patterns.items()
    ]
    return sorted(rows, key=lambda row: -row["busiest_wcu_per_message"])


def summarize(label: str, messages: int, tally: Tally) -> dict[str, Any]:
    calls = by_function(tally)

    def billed(publisher: bool) -> int:
        return sum(
            count
            for (function, name), count in tally.calls.items()
            if function != "client"
            and (function == "EventPublisherFunction") == publisher
            and name.split()[0] not in BILLED_FREE
            and not name.endswith("(empty)")
        )

    per = lambda value: round(value / messages, 3)  # noqa: E731
    return {
        "label": label,
        "messages": messages,
        "billed_requests": per(billed(publisher=False)),  # the pipeline's, without the events'
        "event_requests": per(billed(publisher=True)),
        "calls": {f: {n: per(c) for n, c in ops.items()} for f, ops in calls.items() if f != "client"},
        "errors": {f"{f} {n} {code}": per(c) for (f, n, code), c in tally.errors.items() if f != "client"},
        "wcu": {f: per(u) for f, u in tally.wcu.items() if f != "client"},
        "rcu": {f: per(u) for f, u in tally.rcu.items() if f != "client"},
        "log_bytes": {f: per(b) for f, b in tally.log_bytes.items()},
        "invocations": {f: per(n) for f, n in tally.invocations.items()},
        "handler_ms": {f: round(tally.busy_s[f] * 1000 / n, 2) for f, n in tally.invocations.items() if n},
        "payload_bytes": {n: per(b) for n, b in tally.payload_bytes.items() if b},
        "events": per(tally.events),
        "hot": hot_partitions(tally, messages)[:8],
    }


def measure(meter: AwsMeter, running: local_stack.RunningStack, label: str, messages: int, drive) -> dict:
    table = running.stack.tables()["StateTable"].name
    wait_idle(running)
    stored = meter.stored_bytes(table)
    meter.take()
    drive()
    wait_idle(running)
    result = summarize(label, messages, meter.take())
    result["stored_bytes"] = round((meter.stored_bytes(table) - stored) / messages, 1)
    log(f"   {label}: {result['billed_requests']} requests, {sum(result['wcu'].values()):.2f} WCU a message")
    return result


def run(per_kind: int, only: set[str] | None = None) -> dict[str, Any]:
    """Every scenario; with `only` (fixture names without .xml), just those postback kinds and no sends."""
    environment = dict(os.environ)
    meter = AwsMeter()
    started = time.monotonic()
    with meter.installed():
        running = local_stack.start(port=0, moto_port=0, simulator_port=0, endpoints_file=None)
        try:
            result = _scenarios(meter, running, per_kind, only)
            return result | {"seconds": round(time.monotonic() - started, 1)}
        finally:
            running.stop()
            os.environ.clear()
            os.environ.update(environment)


def _scenarios(
    meter: AwsMeter, running: local_stack.RunningStack, per_kind: int, only: set[str] | None
) -> dict[str, Any]:
    simulator = running.simulator
    assert simulator is not None
    simulator.configure_postbacks(
        first_delay_s=0.05, outcome_delay_s=0.1, retry_interval_s=1.0, timeout_s=5.0
    )
    run_id = uuid.uuid4().hex[:6]
    postback_kinds = [(label, body) for label, body in kinds() if not only or _stem(label) in only]

    log("   warm-up: one postback of each kind, one send")
    post_all(running, [variant(body, 9999, "w" + run_id) for _, body in postback_kinds])
    enqueue(running, [json.dumps(send_request("warm", 0, run_id))])
    wait_idle(running)
    simulator.postback_url = simulator.mo_postback_url = None  # from here on, only what each scenario posts

    postbacks = []
    for label, body in postback_kinds:
        bodies = [variant(body, n, run_id) for n in range(per_kind)]
        postbacks.append(measure(meter, running, label, per_kind, lambda b=bodies: post_all(running, b)))

    def sends(label: str, fault: ProviderFault | None = None, to: str | None = None, bodies=None):
        simulator.reset()
        if fault:
            simulator.add_fault(fault)
        requests_ = bodies or [json.dumps(send_request(label, n, run_id, to)) for n in range(per_kind)]
        result = measure(meter, running, label, len(requests_), lambda: enqueue(running, requests_))
        simulator.clear_faults()
        return result

    if only:
        return {"per_kind": per_kind, "floor": FLOOR, "postbacks": postbacks, "sends": []}
    accepted_bodies = [json.dumps(send_request("again", n, run_id)) for n in range(per_kind)]
    opted_out = "13125550177"
    post_all(
        running,
        [
            re.sub(
                rb"<MOBILE>[^<]*</MOBILE>",
                f"<MOBILE>{opted_out}</MOBILE>".encode(),
                (POSTBACKS / "sub_n302.xml").read_bytes(),
            )
        ],
    )
    outcomes = [
        sends("accepted", bodies=accepted_bodies),
        sends("E113 once, then accepted", ProviderFault("answer", code="E113", count=per_kind)),
        sends("E503 once, then accepted", ProviderFault("answer", code="E503", count=per_kind)),
        sends("refused by the provider (E110)", ProviderFault("answer", code="E110")),
        sends("answer lost (outcome unknown)", ProviderFault("drop", count=per_kind)),
        sends("to an opted-out number", to=opted_out),
        sends(
            "invalid request",
            bodies=[
                json.dumps({"request_id": f"bad-{run_id}-{n}", "action": "sendSMS"}) for n in range(per_kind)
            ],
        ),
        sends("delivered again after it was accepted", bodies=accepted_bodies),
    ]
    return {
        "per_kind": per_kind,
        "floor": FLOOR,
        "postbacks": postbacks,
        "sends": outcomes,
        "event": per_event([*postbacks, *outcomes]),
        "memory_mb": {name: f.memory_mb for name, f in running.functions.items()},
        "custom_metrics": sorted(meter.metrics),
    }


def per_event(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The event publisher's calls and units per published event, over every scenario."""
    events = sum(r["events"] * r["messages"] for r in results)
    calls: Counter = Counter()
    rcu = wcu = logs = invocations = busy = 0.0
    for r in results:
        m = r["messages"]
        for name, count in r["calls"].get("EventPublisherFunction", {}).items():
            calls[name] += count * m
        rcu += r["rcu"].get("EventPublisherFunction", 0) * m
        wcu += r["wcu"].get("EventPublisherFunction", 0) * m
        logs += r["log_bytes"].get("EventPublisherFunction", 0) * m
        n = r["invocations"].get("EventPublisherFunction", 0) * m
        invocations += n
        busy += r["handler_ms"].get("EventPublisherFunction", 0) * n
    per = lambda value: round(value / events, 3) if events else None  # noqa: E731
    return {
        "events": round(events),
        "billed_requests": per(sum(calls.values())),
        "calls": {name: per(count) for name, count in sorted(calls.items())},
        "rcu": per(rcu),
        "wcu": per(wcu),
        "log_bytes": per(logs),
        "invocations": per(invocations),
        "handler_ms": round(busy / invocations, 2) if invocations else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--per-kind", type=int, default=20, help="messages per postback kind and send outcome"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object (for bench/run.py)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--only", action="append", help="only this postback kind (fixture name), no sends")
    args = parser.parse_args(argv)
    if not 1 <= args.per_kind <= 100:
        parser.error("--per-kind must be 1-100 (the varied numbers keep four digits)")
    result = run(args.per_kind, set(args.only) if args.only else None)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result))
    else:
        for row in [*result["postbacks"], *result["sends"]]:
            print(f"{row['billed_requests']:6.2f}  {row['label']}")
        if "event" in result:
            print(f"{result['event']['billed_requests']:6.2f}  per published event")
    return 0


if __name__ == "__main__":
    sys.exit(main())
