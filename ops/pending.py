"""`requests --status RETRY` and `--status SENDING`: requests waiting for their next delivery, or held by an
attempt now. These statuses are not on an index (ledger_scan.py says why): they are found by a bounded
Scan of the table with a filter, newest first among those the Scan saw.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from mmsbridge.aws.state_table import StateTable
from mmsbridge.core.times import iso
from mmsbridge.sending.ledger import SendStatus
from ops import ledger_scan, reports, sends

PENDING = (SendStatus.RETRY, SendStatus.SENDING)


def requests(
    table: StateTable,
    status: SendStatus,
    *,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    budget: int = ledger_scan.DEFAULT_BUDGET,
    now: datetime | None = None,
) -> tuple[list[dict[str, Any]], ledger_scan.Scanned]:
    """Ledgers with this (non-final) status, by the time they got it (`updated_at`), newest first."""
    condition = "#status = :status"
    values: dict[str, Any] = {":status": status.value}
    if since is not None:
        condition += " AND updated_at >= :since"
        values[":since"] = iso(since)
    if until is not None:
        condition += " AND updated_at < :until"
        values[":until"] = iso(until)
    scanned = ledger_scan.scan_ledgers(table, condition, values, names={"#status": "status"}, budget=budget)
    newest = sorted(scanned.items, key=lambda i: (str(i.get("updated_at") or ""), i["pk"]), reverse=True)
    moment = now or datetime.now(UTC)
    return [listed(item, moment) for item in newest[:limit]], scanned


def listed(item: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A waiting or in-flight ledger as a worklist row: the keys of `requests` rows, and its lease and
    counters."""
    log = item.get("attempt_log") or []
    last = log[-1] if log else {}
    lease = item.get("lease_until")
    lease_until = (
        iso(datetime.fromtimestamp(float(lease), UTC)) if isinstance(lease, Decimal | int | float) else None
    )
    ran_out = item.get("status") == SendStatus.SENDING and isinstance(lease, Decimal | int | float)
    ran_out = ran_out and float(lease) < now.timestamp()  # type: ignore[arg-type]
    if item.get("status") == SendStatus.SENDING:
        detail = f"attempt started {item.get('attempt_started')}, lease until {lease_until}"
        if ran_out:
            detail += " (ran out: the attempt may have stopped; the next delivery of the request decides)"
    else:
        why = item.get("last_detail") or ""
        detail = f"last attempt {last.get('outcome') or '?'}" + (f": {why}" if why else "")
    return {
        "at": item.get("updated_at"),
        "request_id": item.get("request_id"),
        "key": item["pk"],
        "payload_sha256": item.get("payload_sha256"),
        "status": item.get("status"),
        **{name: reports.plain(item.get(name)) for name in ("action", "to", "from")},
        "code": item.get("last_code"),
        "error_class": None,
        "detail": detail,
        "last_outcome": last.get("outcome"),
        "attempt_started": item.get("attempt_started"),
        "lease_until": lease_until,
        "lease_ran_out": bool(ran_out),
        "counts": {name: int(item.get(name) or 0) for name in sends.COUNTERS},
    }
