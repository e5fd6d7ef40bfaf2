"""What `status` shows: the stack on one screen, from bounded reads.

- Each queue and DLQ: messages visible, in flight and delayed (GetQueueAttributes), and the age of the
  oldest message. SQS has no attribute for that age. On a deployed stack (--stack) it is CloudWatch's
  `ApproximateAgeOfOldestMessage` (AWS/SQS, the newest one-minute maximum of the last 15 minutes; none while
  the queue has been idle). On the local stack (an endpoints file: moto, which has no SQS metrics) it is
  read from a peek: one ReceiveMessage of one message with a visibility timeout of 0, so it stays visible
  and no poller waits for it; moto returns the oldest visible message first. A peek is a receive: it adds
  one to that message's receive count, which is why a deployed stack is never peeked.
- The send path over the last 24 hours, from the ledger: provider calls refused for the account
  (AUTH_CONFIG: attempt-log outcome `account`) and throttled calls (`throttled`), and requests waiting
  (RETRY) or in flight (SENDING, and those whose lease ran out). No index lists those (ledger_scan.py), so
  they come from one Scan with a filter, stopped after --scan-limit items.
- Worklist counts from their index partitions (COUNT queries, bounded): OUTCOME_UNKNOWN (all outstanding,
  and the last 24 hours), FAILED, REJECTED, SUPPRESSED and conflicting duplicates of the last 24 hours,
  quarantined postbacks (all, and the last 24 hours) and unrecognised events of the last 24 hours.
- Whether the consumer's own-number check is on: the stack's OwnNumbers parameter (an endpoints file's
  `parameters`). Empty, postbacks are applied whatever number they speak for, and this says so first.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from mmsbridge.aws.state_table import StateTable
from mmsbridge.core.table_model import UNRECOGNISED_PARTITION
from mmsbridge.core.times import iso
from mmsbridge.postbacks.own_numbers import parse_own_numbers
from mmsbridge.sending.conflicts import LISTING_PK as CONFLICTS_PK
from mmsbridge.sending.ledger import SendStatus
from ops import ledger_scan
from ops.resources import Resources

WINDOW = timedelta(hours=24)
QUEUES = (
    ("postback queue", "queue"),
    ("postback DLQ", "dlq"),
    ("send queue", "send_queue"),
    ("send DLQ", "send_dlq"),
)
DEPTHS = {
    "visible": "ApproximateNumberOfMessages",
    "in_flight": "ApproximateNumberOfMessagesNotVisible",
    "delayed": "ApproximateNumberOfMessagesDelayed",
}
AGE_METRIC_WINDOW = timedelta(minutes=15)
RECENT_SHOWN = 3  # latest account errors shown


# -- queues ------------------------------------------------------------------------------------------------
def queues(resources: Resources, now: datetime) -> list[dict[str, Any]]:
    local = "endpoint_url" in resources.client_options  # an endpoints file: the local stack on moto
    sqs = resources.client("sqs")
    found = []
    for label, resource in QUEUES:
        url = resources.names.get(resource)
        row: dict[str, Any] = {"queue": label, "url": url, **dict.fromkeys(DEPTHS), "oldest_age_s": None}
        row["age_source"] = "peek" if local else "cloudwatch"
        if url:
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(DEPTHS.values()))
            values = attributes.get("Attributes", {})
            row.update({name: int(values.get(attribute, 0)) for name, attribute in DEPTHS.items()})
            if local and row["visible"]:
                row["oldest_age_s"] = _peek_age(sqs, url, now)
        found.append(row)
    if not local:
        ages = _cloudwatch_ages(resources, [row["url"] for row in found if row["url"]], now)
        for row in found:
            row["oldest_age_s"] = ages.get(row["url"])
    return found


def _peek_age(sqs: Any, url: str, now: datetime) -> int | None:
    answer = sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=1,
        VisibilityTimeout=0,
        WaitTimeSeconds=0,
        AttributeNames=["SentTimestamp"],
    )
    sent = [int(m["Attributes"]["SentTimestamp"]) for m in answer.get("Messages", []) if m.get("Attributes")]
    return max(0, int(now.timestamp() - min(sent) / 1000)) if sent else None


def _cloudwatch_ages(resources: Resources, urls: list[str], now: datetime) -> dict[str, int | None]:
    if not urls:
        return {}
    queries = [
        {
            "Id": f"q{position}",
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/SQS",
                    "MetricName": "ApproximateAgeOfOldestMessage",
                    "Dimensions": [{"Name": "QueueName", "Value": url.rstrip("/").rsplit("/", 1)[-1]}],
                },
                "Period": 60,
                "Stat": "Maximum",
            },
        }
        for position, url in enumerate(urls)
    ]
    answer = resources.client("cloudwatch").get_metric_data(
        MetricDataQueries=queries,
        StartTime=now - AGE_METRIC_WINDOW,
        EndTime=now,
        ScanBy="TimestampDescending",
    )
    ages: dict[str, int | None] = dict.fromkeys(urls)
    for result in answer.get("MetricDataResults", []):
        values = result.get("Values") or []
        if values:
            ages[urls[int(result["Id"][1:])]] = int(values[0])
    return ages


# -- the send path -----------------------------------------------------------------------------------------
def send_path(table: StateTable, now: datetime, *, budget: int) -> dict[str, Any]:
    since = iso(now - WINDOW)
    scanned = ledger_scan.scan_ledgers(
        table,
        "#status IN (:sending, :retry) "
        "OR (updated_at >= :since AND (account_errors > :zero OR throttled > :zero))",
        {
            ":sending": SendStatus.SENDING.value,
            ":retry": SendStatus.RETRY.value,
            ":since": since,
            ":zero": 0,
        },
        names={"#status": "status"},
        budget=budget,
    )
    account: list[dict[str, Any]] = []
    throttled: list[dict[str, Any]] = []
    pending = {"retry": 0, "sending": 0, "lease_ran_out": 0, "oldest_at": None}
    for item in scanned.items:
        for entry in item.get("attempt_log") or []:
            if str(entry.get("at", "")) < since:
                continue
            sighting = {
                "at": entry.get("at"),
                "request_id": item.get("request_id"),
                "code": entry.get("code"),
                "detail": entry.get("detail"),
            }
            if entry.get("outcome") == "account":
                account.append(sighting)
            elif entry.get("outcome") == "throttled":
                throttled.append(sighting)
        status = item.get("status")
        if status in (SendStatus.RETRY, SendStatus.SENDING):
            pending["retry" if status == SendStatus.RETRY else "sending"] += 1
            lease = item.get("lease_until")
            if status == SendStatus.SENDING and isinstance(lease, Decimal) and float(lease) < now.timestamp():
                pending["lease_ran_out"] += 1
            at = item.get("updated_at")
            if at and (pending["oldest_at"] is None or at < pending["oldest_at"]):
                pending["oldest_at"] = at
    account.sort(key=lambda s: str(s["at"]), reverse=True)
    throttled.sort(key=lambda s: str(s["at"]), reverse=True)
    return {
        "since": since,
        "account_errors": {
            "calls": len(account),
            "requests": len({s["request_id"] for s in account}),
            "latest": account[:RECENT_SHOWN],
        },
        "throttled": {
            "calls": len(throttled),
            "requests": len({s["request_id"] for s in throttled}),
            "latest_at": throttled[0]["at"] if throttled else None,
            "latest_code": throttled[0]["code"] if throttled else None,
        },
        "pending": pending,
        "scan": scanned.to_json(),
    }


def worklists(table: StateTable, now: datetime) -> dict[str, Any]:
    since = iso(now - WINDOW)

    def counted(pk: str, low: str | None = None) -> dict[str, Any]:
        number, complete = ledger_scan.count(table, pk, low=low)
        return {"count": number, "complete": complete}

    return {
        "outcome_unknown": {
            "outstanding": counted(f"SEND#{SendStatus.OUTCOME_UNKNOWN.value}"),
            "last_24h": counted(f"SEND#{SendStatus.OUTCOME_UNKNOWN.value}", since),
        },
        "failed_24h": counted(f"SEND#{SendStatus.FAILED.value}", since),
        "rejected_24h": counted(f"SEND#{SendStatus.REJECTED.value}", since),
        "suppressed_24h": counted(f"SEND#{SendStatus.SUPPRESSED.value}", since),
        "conflicting_duplicates_24h": counted(CONFLICTS_PK, since),
        "quarantined": {"total": counted("QUARANTINE"), "last_24h": counted("QUARANTINE", since)},
        "unrecognised_24h": counted(UNRECOGNISED_PARTITION, since),
    }


def own_number_check(own_numbers: str | None) -> dict[str, Any]:
    """`check`: `on` (with how many numbers), `off` (OwnNumbers empty: every postback is applied),
    `invalid` (the consumer refuses to start with it) or `unknown` (no parameters to read it from)."""
    if own_numbers is None:
        return {"check": "unknown", "numbers": None}
    try:
        numbers = parse_own_numbers(own_numbers)
    except ValueError:
        return {"check": "invalid", "numbers": None}
    return {"check": "on" if numbers else "off", "numbers": len(numbers)}


def collect(resources: Resources, *, now: datetime, budget: int) -> dict[str, Any]:
    table = resources.table
    return {
        "at": iso(now),
        "where": resources.origin,
        "own_numbers": own_number_check(resources.own_numbers),
        "queues": queues(resources, now),
        "send_path": send_path(table, now, budget=budget),
        "worklists": worklists(table, now),
    }
