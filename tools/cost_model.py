"""docs/cost.md from measured figures: what a million postbacks and a million sends cost on AWS; and
docs/scale.md's table of hot partitions.

Inputs, all in the repository:
- bench/results/results.json, entry "requests": what `make bench` measured (bench/bench_requests.py): AWS
  requests, DynamoDB units, log bytes, invocations, handler time and stored bytes per message;
- bench/results/requests-before.json: the same benchmark before the cuts this document shows;
- template.yaml: the functions' memory, the stage's access-log format, retention and lifecycle settings,
  the alarms and secrets (the fixed monthly part);
- PRICES below: the public us-east-1 prices, with the date they were read.

Run: .venv/bin/python tools/cost_model.py            (writes docs/cost.md)
     .venv/bin/python tools/cost_model.py --check    (fails if docs/cost.md is not what the inputs give)
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_requests import FLOOR  # noqa: E402
from local.template.load import load_template  # noqa: E402 - after the path is set
from mmsbridge.core.table_model import INBOUND_SHARDS, OPEN_SHARDS  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "results.json"
BEFORE = ROOT / "bench" / "results" / "requests-before.json"
DOC = ROOT / "docs" / "cost.md"
SCALE = ROOT / "docs" / "scale.md"  # its hot-partition table
GB = 1024**3
MILLION = 1_000_000

PRICES_READ = "2026-12-04"
# us-east-1, on demand, without free tiers (USD). Each from the service's public pricing page.
PRICES = {
    "apigw_rest_per_million": 3.50,  # REST API requests, first 333 million a month
    "apigw_http_per_million": 1.00,  # HTTP API requests (for comparison only)
    "lambda_request_per_million": 0.20,
    "lambda_gb_second_arm64": 0.0000133334,
    "sqs_request_per_million": 0.40,  # standard queue; each 64 KB of a payload is one request
    "s3_put_per_thousand": 0.005,  # S3 Standard PUT, COPY, POST, LIST
    "s3_standard_gb_month": 0.023,
    "s3_glacier_ir_gb_month": 0.004,  # billed at least 128 KB an object, and at least 90 days
    "s3_glacier_ir_transition_per_thousand": 0.02,  # lifecycle transition requests into Glacier IR
    "dynamodb_wru_per_million": 0.625,  # on-demand write request units (standard table class)
    "dynamodb_rru_per_million": 0.125,  # on-demand read request units
    "dynamodb_gb_month": 0.25,
    "dynamodb_pitr_gb_month": 0.20,  # continuous backups (the template turns PITR on)
    "dynamodb_streams_lambda": 0.0,  # GetRecords by a Lambda event source mapping is not charged
    "eventbridge_event_per_million": 1.00,  # custom events, each 64 KB a event
    "logs_ingest_gb": 0.50,
    "logs_storage_gb_month": 0.03,
    "metric_month": 0.30,  # custom metric (each name and dimension set), first 10,000
    "alarm_month": 0.10,  # standard-resolution alarm
    "dashboard_month": 3.00,  # beyond the account's first three
    "secret_month": 0.40,  # nosec B105 - a price, not a secret
    "secret_calls_per_10k": 0.05,  # nosec B105 - a price, not a secret
}
# A Lambda invocation's own log lines (START, END and REPORT), which its log group ingests: about this many
# bytes (request id, version, durations, memory).
PLATFORM_LOG_BYTES = 260
FUNCTIONS = ("IngestFunction", "ConsumerFunction", "SenderFunction", "EventPublisherFunction")


def template_facts() -> dict[str, Any]:
    template = load_template(ROOT / "template.yaml")
    resources = template["Resources"]
    api = next(r for r in resources.values() if r["Type"] == "AWS::Serverless::Api")
    access_format = api["Properties"]["AccessLogSetting"]["Format"]
    sample = {  # one postback's access-log line, with typical values
        "$context.requestId": str(uuid.UUID(int=0)),
        "$context.identity.sourceIp": "34.198.230.58",
        "$context.httpMethod": "POST",
        "$context.resourcePath": "/postback/{token}",
        "$context.status": "200",
        "$context.responseLength": "0",
        "$context.responseLatency": "45",
        "$context.integrationStatus": "200",
        "$context.error.responseType": "-",
        "$context.requestTime": "04/Dec/2026:17:04:06 +0000",
    }
    line = access_format
    for name in sorted(sample, key=len, reverse=True):
        line = line.replace(name, sample[name])
    parameters = template["Parameters"]
    return {
        "access_log_bytes": len(line.encode()) + 1,
        "memory_mb": {
            name: resources[name]["Properties"].get(
                "MemorySize", template["Globals"]["Function"]["MemorySize"]
            )
            for name in FUNCTIONS
        },
        "log_retention_days": int(parameters["LogRetentionDays"]["Default"]),
        "cold_days": int(parameters["ArchiveColdStorageDays"]["Default"]),
        "history_days": int(parameters["HistoryRetentionDays"]["Default"]),
        "alarms": sum(1 for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"),
        "secrets": sum(1 for r in resources.values() if r["Type"] == "AWS::SecretsManager::Secret"),
        "dashboards": sum(1 for r in resources.values() if r["Type"] == "AWS::CloudWatch::Dashboard"),
        "min_transition_size": next(
            (
                r["Properties"]["LifecycleConfiguration"].get("TransitionDefaultMinimumObjectSize")
                for r in resources.values()
                if r["Type"] == "AWS::S3::Bucket" and "LifecycleConfiguration" in r["Properties"]
            ),
            None,
        ),
    }


# ---- one message's cost, by service ----------------------------------------------------------------------


def _calls(row: dict[str, Any], service: str, functions: tuple[str, ...] | None = None) -> float:
    return sum(
        count
        for function, operations in row["calls"].items()
        if functions is None or function in functions
        for name, count in operations.items()
        if name.split()[0] == service and not name.endswith("(empty)")
    )


def cost_per_million(row: dict[str, Any], facts: dict[str, Any], *, api_requests: float) -> dict[str, float]:
    """USD per million messages like `row`, by service (the month's storage of one month's messages apart)."""
    p = PRICES
    functions = [f for f in row["invocations"] if f in FUNCTIONS]
    invocations = sum(row["invocations"][f] for f in functions)
    gb_seconds = sum(
        row["invocations"][f] * math.ceil(row["handler_ms"].get(f, 0)) / 1000 * facts["memory_mb"][f] / 1024
        for f in functions
    )
    log_bytes = (
        sum(row["log_bytes"].get(f, 0) for f in functions)
        + invocations * PLATFORM_LOG_BYTES
        + api_requests * facts["access_log_bytes"]
    )
    s3_bytes = row["payload_bytes"].get("s3 PutObject", 0)
    return {
        "API Gateway (REST)": api_requests * p["apigw_rest_per_million"],
        "Lambda requests": invocations * p["lambda_request_per_million"],
        "Lambda duration": gb_seconds * p["lambda_gb_second_arm64"] * MILLION,
        "SQS": _calls(row, "sqs") * p["sqs_request_per_million"],
        "S3 requests": _calls(row, "s3") * p["s3_put_per_thousand"] * 1000,
        "DynamoDB writes": sum(row["wcu"].values()) * p["dynamodb_wru_per_million"],
        "DynamoDB reads": sum(row["rcu"].values()) * p["dynamodb_rru_per_million"],
        "DynamoDB Streams": 0.0,
        "EventBridge": row["events"] * p["eventbridge_event_per_million"],
        "CloudWatch Logs": log_bytes * MILLION / GB * p["logs_ingest_gb"],
        "storage, a month (S3, DynamoDB + PITR, logs)": (
            s3_bytes * MILLION / GB * p["s3_standard_gb_month"]
            + row.get("stored_bytes", 0)
            * MILLION
            / GB
            * (p["dynamodb_gb_month"] + p["dynamodb_pitr_gb_month"])
            + log_bytes * MILLION / GB * p["logs_storage_gb_month"]
        ),
    }


def plain_alternative(delivered: dict[str, Any], facts: dict[str, Any]) -> dict[str, float]:
    """API Gateway -> one Lambda that parses and writes one item straight to DynamoDB: one invocation as
    long as the ingest's and a tenth of the consumer's batch (its parse and write of one postback), one
    unconditional put of one item, no index, no archive, no queue, no events."""
    ms = delivered["handler_ms"]["IngestFunction"] + delivered["handler_ms"]["ConsumerFunction"] / 10
    row = {
        "invocations": {"IngestFunction": 1.0},
        "handler_ms": {"IngestFunction": ms},
        "log_bytes": {"IngestFunction": 0.0},
        "calls": {"IngestFunction": {"dynamodb PutItem": 1.0}},
        "wcu": {"IngestFunction": 1.0},
        "rcu": {},
        "events": 0.0,
        "payload_bytes": {},
        "stored_bytes": 400.0,  # one ~300-byte item and DynamoDB's 100 bytes of overhead
    }
    return cost_per_million(row, facts, api_requests=1.0)


# ---- the document ----------------------------------------------------------------------------------------


def _usd(value: float) -> str:
    return f"${value:,.2f}" if value >= 0.01 or value == 0 else f"${value:,.4f}"


def _breakdown(columns: dict[str, dict[str, float]]) -> list[str]:
    names = list(next(iter(columns.values())))
    lines = ["| service | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(_usd(costs[name]) for costs in columns.values()) + " |")
    lines.append(
        "| **total** | " + " | ".join(f"**{_usd(sum(c.values()))}**" for c in columns.values()) + " |"
    )
    return lines


def _by_stem(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["label"].rpartition("(")[2].rstrip(")"): row for row in data["postbacks"]}


def _sends(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["label"]: row for row in data["sends"]}


def _add(*rows: dict[str, float]) -> dict[str, float]:
    return {name: sum(row[name] for row in rows) for name in rows[0]}


def render(after: dict[str, Any], before: dict[str, Any], facts: dict[str, Any]) -> str:
    postbacks, sends = _by_stem(after), _sends(after)
    costs = {
        "delivery report (SMS_MT N202)": cost_per_million(postbacks["sms_mt_n202"], facts, api_requests=1),
        "inbound SMS (SMS_MO N211)": cost_per_million(postbacks["sms_mo_n211"], facts, api_requests=1),
        "opt-out (SUB N302)": cost_per_million(postbacks["sub_n302"], facts, api_requests=1),
    }
    plain = plain_alternative(postbacks["sms_mt_n202"], facts)
    accepted = cost_per_million(sends["accepted"], facts, api_requests=0)
    reports = _add(
        cost_per_million(postbacks["sms_mt_n201"], facts, api_requests=1),
        cost_per_million(postbacks["sms_mt_n202"], facts, api_requests=1),
    )
    send_costs = {
        "the send (accepted)": accepted,
        "its two delivery reports": reports,
        "the send and its reports": _add(accepted, reports),
    }
    outcome_rows = []
    for label, row in sends.items():
        outcome_rows.append(
            f"| {label} | {row['billed_requests']:.1f} | {sum(row['wcu'].values()):.1f} |"
            f" {_usd(sum(cost_per_million(row, facts, api_requests=0).values()))} |"
        )
    kind_rows = []
    for row in after["postbacks"]:
        total = sum(cost_per_million(row, facts, api_requests=1).values())
        kind_rows.append(
            f"| {row['label']} | {row['billed_requests']:.1f} | {sum(row['wcu'].values()):.1f} |"
            f" {sum(row['rcu'].values()):.1f} | {row['events']:.1f} | {sum(row['log_bytes'].values()):,.0f} |"
            f" {row.get('stored_bytes', 0):,.0f} | {_usd(total)} |"
        )
    cuts = _cuts(after, before, facts)
    fixed = _fixed(after, facts)
    delivered_total = sum(costs["delivery report (SMS_MT N202)"].values())
    plain_total = sum(plain.values())
    p = PRICES
    lines = [
        "# What it costs",
        "",
        "<!-- Generated by tools/cost_model.py from bench/results/results.json (make bench),",
        "     bench/results/requests-before.json and template.yaml. Do not edit: run the tool. -->",
        "",
        "Cost per million messages on AWS in us-east-1, from what the pipeline was **measured** doing on the",
        "local stack (`make bench`, [bench/bench_requests.py](../bench/bench_requests.py): every AWS call",
        "counted at botocore, DynamoDB units from the items' sizes), the functions' memory in"
        " `template.yaml`",
        "and the public prices below. Reproduce: `make bench` (or `.venv/bin/python bench/run.py --only",
        "requests`), then `.venv/bin/python tools/cost_model.py`.",
        "",
        f"Prices read {PRICES_READ}, us-east-1, on demand, no free tier: API Gateway REST"
        f" ${p['apigw_rest_per_million']:.2f} a million requests; Lambda (arm64)"
        f" ${p['lambda_request_per_million']:.2f} a million requests and"
        f" ${p['lambda_gb_second_arm64']:.10f} a"
        f" GB-second; SQS ${p['sqs_request_per_million']:.2f} a million requests; S3 Standard"
        f" ${p['s3_put_per_thousand']} a thousand PUTs and ${p['s3_standard_gb_month']} a GB-month, Glacier"
        f" Instant Retrieval ${p['s3_glacier_ir_gb_month']} a GB-month (at least 128 KB an object) and"
        f" ${p['s3_glacier_ir_transition_per_thousand']} a thousand transitions; DynamoDB on demand"
        f" ${p['dynamodb_wru_per_million']} a million write and ${p['dynamodb_rru_per_million']} a million"
        f" read request units, ${p['dynamodb_gb_month']} a GB-month and ${p['dynamodb_pitr_gb_month']} for"
        f" point-in-time recovery; Streams read by Lambda: free; EventBridge"
        f" ${p['eventbridge_event_per_million']:.2f} a million events; CloudWatch Logs"
        f" ${p['logs_ingest_gb']} a GB ingested and ${p['logs_storage_gb_month']} a GB-month; custom metrics"
        f" ${p['metric_month']}, alarms ${p['alarm_month']}, a dashboard ${p['dashboard_month']:.2f} and a"
        f" secret ${p['secret_month']} a month. Check the pricing pages before relying on a figure.",
        "",
        "How each line is computed: requests and units per message as measured; Lambda duration ="
        " invocations",
        "x handler time measured locally (moto, not DynamoDB: a deployed function's time differs) x the",
        f"template's memory; logs = the functions' measured bytes + {PLATFORM_LOG_BYTES} bytes of"
        " Lambda's own",
        f"lines an invocation + the stage's access-log line ({facts['access_log_bytes']} bytes, the",
        "template's format filled in) a postback. Storage is one month of the messages' bytes (S3 Standard:",
        f"a postback's raw body; DynamoDB: items and index entries, +100 bytes each, kept"
        f" {facts['history_days']} days by default; logs kept {facts['log_retention_days']} days).",
        "",
        "## A million postbacks",
        "",
        *_breakdown({**costs, "plain alternative (one Lambda, one put)": plain}),
        "",
        f"A delivery report costs {_usd(delivered_total)} a million; the plain alternative a team would"
        " write",
        f"first (API Gateway REST -> one Lambda that parses and puts one item) {_usd(plain_total)}:"
        f" mmsbridge is {delivered_total / plain_total:.1f}x.",
        "The difference buys the invariants ([architecture](architecture.md)): the raw body in S3 and on a",
        "queue before the 200 (durable before ack, replay), a consumer that can fail without losing anything",
        "(the queue and its DLQ), order-independent state and indexes by number and by open message (the",
        "write units), and an event for every change. The S3 PUT is the largest single line: it is the price",
        "of keeping every raw postback, and the one line the plain alternative saves most on.",
        "",
        "Every kind, per postback (requests: billed AWS requests without the event publisher's; WCU/RCU:",
        "DynamoDB units; events put on the bus; log bytes of the functions; DynamoDB bytes stored):",
        "",
        "| kind | requests | WCU | RCU | events | log bytes | stored bytes | a million |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *kind_rows,
        "",
        "## A million sends",
        "",
        *_breakdown(send_costs),
        "",
        "A send request by its outcome (the sender's side only, without delivery reports):",
        "",
        "| outcome | requests | WCU | a million |",
        "|---|---:|---:|---:|",
        *outcome_rows,
        "",
        *_storage(postbacks["sms_mt_n202"], facts),
        "",
        "## Events",
        "",
        f"A published event costs {after['event']['billed_requests']:.2f} requests"
        f" ({', '.join(f'{n} {c}' for n, c in after['event']['calls'].items())}),"
        f" {after['event']['rcu']:.2f} read units and {after['event']['log_bytes']:.0f} log bytes"
        f" (over {after['event']['events']} events of every scenario): about"
        f" {_usd(p['eventbridge_event_per_million'] + after['event']['rcu'] * p['dynamodb_rru_per_million'])}"
        " a million, nearly all of it EventBridge's own price. The read is the publisher's consistent"
        " Query for",
        "a message's state before the change; at $0.125 a million read units it is cheap, though it is most",
        "of the publisher's time ([benchmarks](benchmarks.md)).",
        "",
        "## Fixed, a month",
        "",
        *fixed,
        "",
        "## The floor",
        "",
        "`make bench` holds the requests per message to the fewest that keep every invariant",
        "([architecture](architecture.md)): billed AWS requests, the API Gateway request and the Lambda",
        "invocations apart.",
        "",
        f"- **A postback: {FLOOR['postback']}.** Two in the ingest, S3 PutObject and SQS SendMessage:",
        "  durable before ack needs both before the 200. One ReceiveMessage and one DeleteMessageBatch",
        "  by Lambda's poller a batch of ten: 0.2. One BatchWriteItem a batch in the consumer: 0.1 (the",
        "  keys are deterministic, so writing the same item again is already exactly-once). Kinds above",
        "  it make a conditional write (an undated postback's first sighting, a quarantine record) or read",
        "  first.",
        f"- **An accepted send: {FLOOR['send accepted']}.** 0.2 by the poller; one read of the number's",
        "  opt-out state (never send to an opted-out number); three writes: the claim before the call",
        "  (without it a crash could send twice), the outcome after it, and the outbound record under the",
        "  tracking id that the delivery reports join; 0.1 on the limiter (one write reserves a batch's",
        f"  slots). A request refused before any call: {FLOOR['send refused before a call']} (the poller's",
        "  share and its record).",
        f"- **A published event: {FLOOR['event']}** (PutEvents takes ten entries). The publisher also reads",
        "  a message's state before the change for most events (see Events above).",
        "",
        "## What was cut",
        "",
        *cuts,
        "",
        "## Levers not pulled",
        "",
        f"- **An HTTP API** (${p['apigw_http_per_million']:.2f} a million instead of"
        f" ${p['apigw_rest_per_million']:.2f}) would be the largest saving left, but HTTP APIs have no",
        "  resource policy: the provider's source addresses could no longer be enforced at the edge",
        "  ([security](security.md)).",
        "- **Less memory.** Every function has"
        f" {sorted(set(facts['memory_mb'].values()))[0]} MB; Lambda's CPU grows with memory, so a smaller",
        "  size lengthens the cold start the provider's 10 s answer window must absorb, and its saving is",
        "  the Lambda duration line above at most. Not measurable without AWS; left as it is.",
        "- **Lambda's own log lines.** JSON log format with `SystemLogLevel: WARN` would drop"
        " START/END/REPORT",
        f"  ({PLATFORM_LOG_BYTES} bytes an invocation) but also each invocation's REPORT duration and"
        " memory;",
        "  left on.",
        "- **Batch sizes.** The consumer's 10 a batch already makes the queue's receive and delete and the",
        "  Lambda request a tenth of a cent a thousand postbacks; larger batches would save less than a cent",
        "  a million and widen what one failure retries.",
    ]
    return "\n".join(lines) + "\n"


def _storage(row: dict[str, Any], facts: dict[str, Any]) -> list[str]:
    """A million delivery reports kept over time: the raw archive through its lifecycle, the table's items
    until their TTL."""
    p = PRICES
    body = row["payload_bytes"].get("s3 PutObject", 0)
    stored = row.get("stored_bytes", 0)
    archive_gb = body * MILLION / GB
    standard_month = archive_gb * p["s3_standard_gb_month"]
    glacier_month = 128 * 1024 * MILLION / GB * p["s3_glacier_ir_gb_month"]
    transitions = MILLION / 1000 * p["s3_glacier_ir_transition_per_thousand"]
    table_gb = stored * MILLION / GB
    months = facts["history_days"] / 30.4
    return [
        "## Keeping them",
        "",
        f"A million delivery reports leave {archive_gb:.2f} GB of raw bodies in the archive ({body:,.0f}"
        " bytes"
        f" each) and {table_gb:.2f} GB in the state table ({stored:,.0f} bytes each, items and index"
        " entries).",
        "",
        "| store | a month | over its retention |",
        "|---|---:|---:|",
        "| archive, S3 Standard (kept for good by default; `ArchiveExpirationDays`) |"
        f" {_usd(standard_month)} |"
        f" {_usd(standard_month * 12)} a year |",
        f"| the same moved to Glacier IR after {facts['cold_days']} days, were they allowed to move |"
        f" {_usd(glacier_month)} | {_usd(transitions)} once, then {_usd(glacier_month * 12)} a year |",
        f"| state table, with point-in-time recovery (TTL after {facts['history_days']} days) |"
        f" {_usd(table_gb * (p['dynamodb_gb_month'] + p['dynamodb_pitr_gb_month']))} |"
        f" {_usd(table_gb * (p['dynamodb_gb_month'] + p['dynamodb_pitr_gb_month']) * months)} |",
        "",
        "Glacier IR bills an object as at least 128 KB and charges each transition, so small postbacks stay",
        "in Standard (the archive's lifecycle moves only objects of 128 KB or more: [What was"
        " cut](#what-was-cut)).",
    ]


def _fixed(after: dict[str, Any], facts: dict[str, Any]) -> list[str]:
    p = PRICES
    metrics = len(after.get("custom_metrics", []))
    rows = [
        ("alarms", facts["alarms"], p["alarm_month"]),
        ("custom metrics the functions emitted in the benchmark", metrics, p["metric_month"]),
        ("secrets (postback token, API key)", facts["secrets"], p["secret_month"]),
        ("dashboard (free if the account has fewer than three)", facts["dashboards"], p["dashboard_month"]),
    ]
    lines = ["| item | count | a month |", "|---|---:|---:|"]
    lines += [f"| {name} | {count} | {_usd(count * price)} |" for name, count, price in rows]
    lines.append(f"| **total** | | **{_usd(sum(c * price for _, c, price in rows))}** |")
    lines.append("")
    lines.append(
        "Idle, the stack costs this and nothing per message: Lambda's pollers' long polls on the two queues"
        " (about 3 requests a minute each, under $0.10 a month) aside."
    )
    return lines


def _cuts(after: dict[str, Any], before: dict[str, Any], facts: dict[str, Any]) -> list[str]:
    """Before and after for every figure the cuts changed."""
    p = PRICES
    b_post, a_post = _by_stem(before), _by_stem(after)
    b_send, a_send = _sends(before)["accepted"], _sends(after)["accepted"]
    lines = [
        f"Before: the same benchmark at commit {before.get('commit', '?')}"
        " (bench/results/requests-before.json);",
        "after: this document's figures. The two runs were measured side by side on one two-core machine;",
        "the all-services rows include Lambda duration measured on moto, which moves between runs by more",
        "than the cuts save: the rows above them are the ones the cuts change.",
        "",
        "| figure | before | after | a million, before | a million, after |",
        "|---|---:|---:|---:|---:|",
    ]
    b_log = b_post["sms_mt_n202"]["log_bytes"].get("IngestFunction", 0)
    a_log = a_post["sms_mt_n202"]["log_bytes"].get("IngestFunction", 0)
    lines.append(
        f"| ingest log bytes a postback | {b_log:,.0f} | {a_log:,.0f} |"
        f" {_usd(b_log * MILLION / GB * p['logs_ingest_gb'])} |"
        f" {_usd(a_log * MILLION / GB * p['logs_ingest_gb'])} |"
    )
    lines.append(
        f"| accepted send: requests | {b_send['billed_requests']:.1f} | {a_send['billed_requests']:.1f} | | |"
    )
    b_wcu, a_wcu = sum(b_send["wcu"].values()), sum(a_send["wcu"].values())
    lines.append(
        f"| accepted send: write units | {b_wcu:.1f} | {a_wcu:.1f} |"
        f" {_usd(b_wcu * p['dynamodb_wru_per_million'])} | {_usd(a_wcu * p['dynamodb_wru_per_million'])} |"
    )
    for name, b_row, a_row, api in (
        ("a delivery report (SMS_MT N202), all services", b_post["sms_mt_n202"], a_post["sms_mt_n202"], 1),
        ("an accepted send, all services", b_send, a_send, 0),
    ):
        b_total = sum(cost_per_million(b_row, facts, api_requests=api).values())
        a_total = sum(cost_per_million(a_row, facts, api_requests=api).values())
        lines.append(f"| {name} | | | {_usd(b_total)} | {_usd(a_total)} |")
    b_refused, a_refused = _refused(b_send), _refused(a_send)
    lines.append(f"| accepted send: conditional writes refused | {b_refused:.2f} | {a_refused:.2f} | | |")
    b_pace = _pace(b_send)
    a_pace = _pace(a_send)
    lines.append(
        f"| accepted send: write units on the limiter's item `PACE#provider` | {b_pace:.2f} |"
        f" {a_pace:.2f} | | |"
    )
    lines += [
        "",
        "- **The ingest's log line.** Each accepted postback wrote an INFO line of ~600 bytes (Lambda"
        " context,",
        "  key, size, source) beside its metric, and the stage's access log already holds a line per request",
        "  (request id, source address, status, latency). The line is now DEBUG",
        "  (`tests/integration/test_ingest_log_volume.py`).",
        "- **The limiter's lost races.** Each sender container reserved its call slots with a",
        "  compare-and-set on one item, and any other container's reservation made it fail: the refused",
        "  write cost a write unit all the same, and was made again. While the limiter is busy a",
        "  reservation is now an atomic add that no other write can refuse, and a container decides its",
        "  next write from what a refusal told it (docs/send-requests.md): the refused writes and the",
        "  limiter item's units per accepted send above. At saturation (`.venv/bin/python -m",
        "  bench.bench_limits`, 8 threads taking ten slots a write) 1.0-1.6 attempts a slot at commit",
        "  a78b205, about 0.11 now. What remains on the item is mostly moto's: a reservation that comes",
        "  back more than 25 ms after its slot gives it up and reserves again, and moto's writes take",
        "  20-40 ms. That item is the sender's hottest key ([scale](scale.md)).",
        "- **Cold storage for small objects.** A lifecycle transition into Glacier Instant Retrieval costs"
        f" ${p['s3_glacier_ir_transition_per_thousand']} a thousand objects",
        f"  (${p['s3_glacier_ir_transition_per_thousand'] * 1000:.0f} a million postbacks, four times"
        " their PUT)"
        " and bills each object as 128 KB, about 200 times a",
        "  delivery report's size: moving a million small postbacks would cost more than keeping them in",
        "  Standard for years. The archive bucket's lifecycle now says so itself"
        f" (`TransitionDefaultMinimumObjectSize: {facts['min_transition_size']}`): only bodies of",
        "  128 KB or more move to cold storage, whatever the account's default.",
    ]
    return lines


def _refused(row: dict[str, Any]) -> float:
    refused = "ConditionalCheckFailedException"
    return sum(count for name, count in row["errors"].items() if name.endswith(refused))


def _pace(row: dict[str, Any]) -> float:
    return next((h["wcu_per_message"] for h in row["hot"] if h["partition"] == "PACE#provider"), 0.0)


HOT_SCENARIOS = {  # scenario -> its name in docs/scale.md
    "sms_mt_n201": "SMS sent report (SMS_MT N201)",
    "sms_mt_n202": "SMS delivered report (SMS_MT N202)",
    "sms_mo_n211": "inbound SMS (SMS_MO N211)",
    "sub_n302": "opt-out (SUB N302)",
    "accepted": "send request, accepted",
    "refused by the provider (E110)": "send request, refused by the provider (E110)",
}


def fixed_partitions(pattern: str) -> int | None:
    """How many partitions a pattern has whatever the traffic (None: one per message, recipient or sender)."""
    if "<shard>" in pattern:
        return OPEN_SHARDS if pattern.startswith("OPEN#") else INBOUND_SHARDS
    if "<id>" in pattern or pattern.startswith(("OUT#", "FROM#", "SUB#", "SUPPRESS#", "MSG#", "REQ#", "IN#")):
        return None
    return 1


def hot_table(after: dict[str, Any]) -> list[str]:
    rows = {**_by_stem(after), **_sends(after)}
    lines = [
        "| message | index | partition key | write units a message | partitions | ceiling, messages/s |",
        "|---|---|---|---:|---:|---:|",
    ]
    for key, name in HOT_SCENARIOS.items():
        for hot in rows[key]["hot"]:
            partitions = fixed_partitions(hot["partition"])
            units = hot.get("wcu_per_message", hot["busiest_wcu_per_message"])
            ceiling = "grows with the traffic" if partitions is None else f"{1000 * partitions / units:,.0f}"
            lines.append(
                f"| {name} | {hot['index']} | `{hot['partition']}` | {units:.2f} |"
                f" {partitions or hot['distinct']} | {ceiling} |"
            )
    return lines


def render_scale(text: str, after: dict[str, Any]) -> str:
    begin, end = "<!-- hot-partitions:begin -->", "<!-- hot-partitions:end -->"
    head, _, rest = text.partition(begin)
    _, _, tail = rest.partition(end)
    return head + begin + "\n" + "\n".join(hot_table(after)) + "\n" + end + tail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="fail if docs/cost.md differs from the inputs'")
    args = parser.parse_args(argv)
    after = json.loads(RESULTS.read_text())["requests"]
    before = json.loads(BEFORE.read_text())
    documents = {
        DOC: render(after, before, template_facts()),
        SCALE: render_scale(SCALE.read_text(), after),
    }
    stale = [path for path, text in documents.items() if path.read_text() != text] if DOC.exists() else [DOC]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is not what tools/cost_model.py makes: run it", file=sys.stderr)
        return 1 if stale else 0
    for path, text in documents.items():
        path.write_text(text)
        print(f"written: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
