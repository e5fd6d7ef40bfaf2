"""Reconciliation as the operator sees it: an OUTCOME_UNKNOWN request's likely message and why it is (or is
not) linked, a reconciled request's record, and `reconcile` on demand.

The rules are mmsbridge.sending.reconcile's (the planner) and the reads and the conditional link
mmsbridge.sending.reconcile_store's; the hourly stale function runs the same reconciliation.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mmsbridge.aws.state_table import StateTable
from mmsbridge.sending.ledger import LEDGER_SK, SendStatus
from mmsbridge.sending.reconcile_store import Reconciler, RunResult, unknown_requests
from ops import render, reports
from ops.times import iso_or_none

BY = "ops reconcile"


def now() -> datetime:
    """The time plans are made at (a function, so that tests can move it past a window's settling time)."""
    return datetime.now(UTC)


# -- documents ---------------------------------------------------------------------------------------------
def run(
    table: StateTable, *, dry_run: bool, since: datetime | None, until: datetime | None
) -> dict[str, Any]:
    result = Reconciler(table).run(now=now(), by=BY, since=since, until=until, dry_run=dry_run)
    return _run_document(result, since=since, until=until)


def _run_document(result: RunResult, *, since: datetime | None, until: datetime | None) -> dict[str, Any]:
    reviewed = [reports.plain(r.to_json()) for r in result.reviewed]
    return {
        "at": iso_or_none(result.at),
        "dry_run": result.dry_run,
        "since": iso_or_none(since),
        "until": iso_or_none(until),
        "count": len(reviewed),
        "linked": result.count("linked"),
        "would_link": result.count("would_link"),
        "not_linked": len(reviewed) - result.count("linked") - result.count("would_link"),
        "requests": reviewed,
    }


def for_request(table: StateTable, key: str) -> dict[str, Any] | None:
    """For `request`: an OUTCOME_UNKNOWN request's plan (its likely message), or a reconciled request's
    record; None for any other ledger."""
    ledger = table.get(key, LEDGER_SK)
    if ledger is None:
        return None
    if ledger.get("status") == SendStatus.OUTCOME_UNKNOWN:
        decided = Reconciler(table).plan(ledger, now=now())
        if decided is None:
            return {"reconciled": None, "plan": None, "reason": "the ledger lacks its to, from or times"}
        return {"reconciled": None, "plan": reports.plain(decided.to_json())}
    if isinstance(ledger.get("reconciled"), dict):
        return {"reconciled": reports.plain(ledger["reconciled"]), "plan": None}
    return None


def for_unknown(table: StateTable, listed: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """For `unknown`: each listed request's plan, by its ledger key."""
    reconciler = Reconciler(table)
    others = unknown_requests(reconciler.worklist())
    moment = now()
    plans: dict[str, dict[str, Any]] = {}
    for item in listed:
        ledger = table.get(item["key"], LEDGER_SK)
        if ledger is None or ledger.get("status") != SendStatus.OUTCOME_UNKNOWN:
            continue
        decided = reconciler.plan(ledger, now=moment, others=others)
        if decided is not None:
            plans[item["key"]] = reports.plain(decided.to_json())
    return plans


# -- text ------------------------------------------------------------------------------------------------
def plan_lines(plan: dict[str, Any]) -> list[str]:
    """An OUTCOME_UNKNOWN request's likely message, with the evidence."""
    verdict = plan["verdict"]
    likely = plan["likely_tracking_id"]
    if verdict == "link":
        head = f"likely message: {likely} (`reconcile` links it: its window has settled)"
    elif verdict == "likely":
        head = f"likely message: {likely} (linked once its window settles, at {plan['settles_at']})"
    elif verdict == "ambiguous":
        head = "likely message: not linked, ambiguous"
    else:
        head = "likely message: none found"
    lines = [
        head,
        render.fields(
            [
                ("why", plan["reason"]),
                ("attempt window", f"{plan['window_start']} .. {plan['window_end']}"),
            ]
        ),
    ]
    if plan["candidates"]:
        lines.append("  candidate messages (same TO and FROM, first report in the window):")
        rows = [
            [
                c["tracking_id"],
                c["to"],
                c["from"],
                c["first_report_at"],
                c["first_report_code"],
                f"{c['after_first_claim_s']:+.1f} s",
                f"{c['after_unknown_s']:+.1f} s",
                c["codes"],
                c["state"],
            ]
            for c in plan["candidates"]
        ]
        headers = [
            "TRACKINGID",
            "TO",
            "FROM",
            "FIRST REPORT",
            "CODE",
            "AFTER FIRST CLAIM",
            "AFTER UNKNOWN",
            "CODES",
            "STATE",
        ]
        lines.append(render.table(headers, rows, indent="    "))
    if plan["competitors"]:
        lines.append("  other requests to this number in the window:")
        rows = [
            [c["request_id"], c["status"], c["tracking_id"], f"{c['window_start']} .. {c['window_end']}"]
            for c in plan["competitors"]
        ]
        lines.append(render.table(["REQUEST ID", "STATUS", "TRACKINGID", "WINDOW"], rows, indent="    "))
    if plan["not_candidates"]:
        lines.append("  messages to this number looked at and not taken:")
        rows = [[m["tracking_id"], m["why"]] for m in plan["not_candidates"]]
        lines.append(render.table(["TRACKINGID", "WHY NOT"], rows, indent="    "))
    if likely:
        lines.append(
            "  The provider most likely sent it as this message: do not resend it (it would be a second "
            "message)."
        )
    return lines


def reconciled_lines(record: dict[str, Any]) -> list[str]:
    """A reconciled request: which message, how and when."""
    return [
        f"reconciled: linked to message {render.cell(record.get('tracking_id'))} (was "
        f"{record.get('previous_status')}; the provider's answer was lost)",
        render.fields(
            [
                ("at", record.get("at")),
                ("by", record.get("by")),
                ("how", record.get("how")),
                ("to / from", f"{render.cell(record.get('to'))} / {render.cell(record.get('from'))}"),
                (
                    "first report",
                    f"{render.cell(record.get('first_report_code'))} at "
                    f"{render.cell(record.get('first_report_at'))}",
                ),
                ("report codes", record.get("codes")),
                ("attempt window", f"{record.get('window_start')} .. {record.get('window_end')}"),
            ]
        ),
    ]


def unknown_lines(listed: list[dict[str, Any]], plans: dict[str, dict[str, Any]]) -> list[str]:
    """For `unknown`: each request's likely message in one row, and what to do."""
    rows = []
    for item in listed:
        plan = plans.get(item["key"])
        if plan is None:
            continue
        first = next((c for c in plan["candidates"] if c["tracking_id"] == plan["likely_tracking_id"]), None)
        rows.append(
            [
                item["request_id"],
                plan["verdict"],
                plan["likely_tracking_id"],
                first and f"{first['first_report_code']} at {first['first_report_at']}",
                plan["reason"],
            ]
        )
    lines = ["likely messages (same TO and FROM, first report in the attempt window):"]
    lines.append(render.table(["REQUEST ID", "VERDICT", "LIKELY MESSAGE", "FIRST REPORT", "WHY"], rows))
    lines.append(
        "A request with a likely message was most likely sent: do not resend it (`request REQUEST_ID` shows "
        "the evidence; `reconcile` links it once its window has settled, as the hourly stale check does). "
        "Check the others with the provider; `python -m ops resend REQUEST_ID --yes` re-drives one that "
        "was not sent."
    )
    return lines


def run_text(document: dict[str, Any]) -> str:
    verb = "would link" if document["dry_run"] else "linked"
    count = document["would_link"] if document["dry_run"] else document["linked"]
    lines = [
        f"reconcile: {document['count']} OUTCOME_UNKNOWN request(s) looked at: {count} {verb}, "
        f"{document['not_linked']} not linked"
        + (" (dry run: nothing changed)" if document["dry_run"] else "")
    ]
    rows = [
        [r["request_id"], r["outcome"], r.get("likely_tracking_id"), r["to"], r["from"], r["reason"]]
        for r in document["requests"]
    ]
    if rows:
        lines.append(render.table(["REQUEST ID", "OUTCOME", "MESSAGE", "TO", "FROM", "WHY"], rows))
    return "\n".join(lines)
