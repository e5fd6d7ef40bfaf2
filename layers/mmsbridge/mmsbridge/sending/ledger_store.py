"""DynamoDB access to the sender's ledger (ledger.py): conditional claims make it the idempotency record.

A delivery *claims* a request before it may call the provider: a conditional put that succeeds only when
no ledger exists, or when the last attempt released it (RETRY). Every write puts the whole item with its
`version` one higher, on the condition that the version is still the one read (optimistic concurrency:
one call per write, and two writers can never both win). The claim stamps a `lease_until`; an attempt's
later writes are conditional on its own version, so one that overran its lease cannot overwrite what
another delivery decided. A claim that finds a SENDING ledger whose
lease has run out has found an attempt that died after it may have called the provider: at most once, it
is recorded OUTCOME_UNKNOWN; at least once, it is claimed again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from mmsbridge.aws.state_table import StateTable, from_dynamo, to_dynamo
from mmsbridge.core.times import iso
from mmsbridge.sending.conflicts import same_body
from mmsbridge.sending.ledger import (
    FINAL,
    SendStatus,
    ledger_key,
    listing_key,
    outbound_items,
    request_summary,
    sha256_hex,
)
from mmsbridge.sending.request import SendRequest

__all__ = ["Claim", "ClaimKind", "SendLedger"]

_CLAIM_TRIES = 3
_LOG_MAX = 20  # attempt log entries kept per request (the counters keep the totals)


class ClaimKind(StrEnum):
    CLAIMED = "claimed"  # this delivery may call the provider
    DUPLICATE = "duplicate"  # the request already reached a final status
    BUSY = "busy"  # another delivery holds it now
    ORPHANED = "orphaned"  # a dead attempt's outcome is unknown; recorded OUTCOME_UNKNOWN now
    CONFLICT = "conflict"  # the request_id holds a different body: this one is never sent (conflicts.py)


@dataclass(frozen=True)
class Claim:
    kind: ClaimKind
    ledger: dict[str, Any]

    @property
    def stamp(self) -> str:
        return str(self.ledger.get("attempt_started", ""))


def _conditional_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class SendLedger:
    def __init__(self, table: StateTable) -> None:
        self._table = table
        self._dynamodb = table.client

    def get(self, request_id: str) -> dict[str, Any] | None:
        key = ledger_key(request_id)
        return self._table.get(key["pk"], key["sk"])

    def record_rejected(self, item: dict[str, Any]) -> bool:
        """A refused request. A refusal never replaces a ledger that already exists (it stays the record):
        False when one did."""
        try:
            self._table.put_new({**item, "version": 1})
        except ClientError as error:
            if not _conditional_failure(error):
                raise
            return False
        return True

    def count_error(self, message_id: str, now: datetime, *, keep_s: int) -> int:
        """Count one unexpected error of the send-queue message `message_id` (stable across its receives,
        unlike its receive count, which throttled and deferred hand-backs raise too); the count so far."""
        item = self._dynamodb.update_item(
            TableName=self._table.name,
            Key=to_dynamo({"pk": f"SENDERR#{message_id}", "sk": "ERRORS"}),
            UpdateExpression="ADD errors :one SET expires_at = :expires",
            ExpressionAttributeValues=to_dynamo({":one": 1, ":expires": int(now.timestamp()) + keep_s}),
            ReturnValues="UPDATED_NEW",
        )["Attributes"]
        return int(from_dynamo(item)["errors"])

    # -- claiming -----------------------------------------------------------------------------------
    def claim(
        self,
        request: SendRequest,
        body: str,
        *,
        now: datetime,
        lease_until: float,
        resend_orphans: bool,
    ) -> Claim:
        stamp = iso(now)
        fresh = {
            **ledger_key(request.request_id),
            "type": "send_request",
            **request_summary(request),
            "status": SendStatus.SENDING.value,
            "body": body,
            "payload_sha256": sha256_hex(body),
            "received_at": stamp,
            "claims": 1,
            "version": 0,
        }
        ledger: dict[str, Any] | None = None
        for _ in range(_CLAIM_TRIES):
            if ledger is None:
                base = fresh
            else:
                if not same_body(ledger, body):
                    return Claim(ClaimKind.CONFLICT, ledger)
                status = ledger.get("status")
                if status in FINAL:
                    return Claim(ClaimKind.DUPLICATE, ledger)
                expired = float(ledger.get("lease_until", 0)) < now.timestamp()
                if status == SendStatus.SENDING.value and not expired:
                    return Claim(ClaimKind.BUSY, ledger)
                if status == SendStatus.SENDING.value and not resend_orphans:
                    orphan = self._mark_orphan(ledger, now)
                    if orphan is not None:
                        return Claim(ClaimKind.ORPHANED, orphan)
                    ledger = self.get(request.request_id)
                    continue
                base = {**ledger, **request_summary(request), "claims": int(ledger.get("claims", 0)) + 1}
                for name in ("gsi1pk", "gsi1sk"):
                    base.pop(name, None)
            item = {
                **base,
                "status": SendStatus.SENDING.value,
                "lease_until": Decimal(str(round(lease_until, 3))),
                "attempt_started": stamp,
                "updated_at": stamp,
            }
            written, current = self._put(item, expected=ledger)
            if written is not None:
                return Claim(ClaimKind.CLAIMED, written)
            ledger = current
        return Claim(ClaimKind.BUSY, ledger or {})

    def _mark_orphan(self, ledger: dict[str, Any], now: datetime) -> dict[str, Any] | None:
        detail = (
            "an earlier attempt stopped after it may have called the provider "
            f"(started {ledger.get('attempt_started')}, no outcome recorded)"
        )
        return self._finish(
            ledger,
            SendStatus.OUTCOME_UNKNOWN,
            now,
            {"outcome_unknown_reason": detail},
            log={"at": iso(now), "outcome": "orphaned", "detail": detail},
        )

    # -- ending an attempt ----------------------------------------------------------------------------
    def release(
        self,
        claim: Claim,
        now: datetime,
        *,
        outcome: str,
        code: str | None = None,
        detail: str | None = None,
        called: bool,
        counter: str | None = None,
    ) -> None:
        """Hand the request back (RETRY): the attempt ended without an outcome the request must keep."""
        adds = {"calls": 1 if called else 0}
        if counter:
            adds[counter] = 1
        self._write(
            claim.ledger,
            SendStatus.RETRY,
            now,
            {"last_code": code, "last_detail": detail},
            adds=adds,
            log={"at": iso(now), "outcome": outcome, "code": code, "detail": detail},
        )

    def finish(
        self,
        claim: Claim,
        status: SendStatus,
        now: datetime,
        fields: dict[str, Any],
        *,
        outcome: str,
        called: bool,
        code: str | None = None,
    ) -> dict[str, Any] | None:
        """Record a final status (owned by this attempt). Returns the new ledger, None if the attempt no
        longer owned it."""
        return self._finish(
            claim.ledger,
            status,
            now,
            fields,
            log={"at": iso(now), "outcome": outcome, "code": code, "detail": fields.get("error_info")},
            adds={"calls": 1 if called else 0},
        )

    def _finish(
        self,
        ledger: dict[str, Any],
        status: SendStatus,
        now: datetime,
        fields: dict[str, Any],
        *,
        log: dict[str, Any],
        adds: dict[str, int] | None = None,
    ) -> dict[str, Any] | None:
        listing = listing_key(status, now, ledger["request_id"]) if status is not SendStatus.ACCEPTED else {}
        return self._write(ledger, status, now, {**fields, **listing}, adds=adds or {}, log=log)

    def _write(
        self,
        ledger: dict[str, Any],
        status: SendStatus,
        now: datetime,
        fields: dict[str, Any],
        *,
        adds: dict[str, int],
        log: dict[str, Any],
    ) -> dict[str, Any] | None:
        """The ledger as this attempt leaves it, written only if no one else wrote it since it was read."""
        entries = [*ledger.get("attempt_log", []), {k: v for k, v in log.items() if v is not None}]
        if len(entries) > _LOG_MAX:
            entries = [entries[0], *entries[-(_LOG_MAX - 1) :]]  # how it started, and the newest
        item = {
            **{name: value for name, value in ledger.items() if name != "lease_until"},
            **{name: value for name, value in fields.items() if value is not None},
            "status": status.value,
            "updated_at": iso(now),
            "attempt_log": entries,
        }
        for name, amount in adds.items():
            if amount:
                item[name] = int(item.get(name, 0)) + amount
        written, _ = self._put(item, expected=ledger)
        return written  # None: the lease ran out and another delivery decided; its record stands

    def _put(
        self, item: dict[str, Any], *, expected: dict[str, Any] | None
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """Put `item` (version + 1) if the stored ledger is still `expected` (None: if there is none).
        Returns (the item written, None) or (None, the ledger found instead)."""
        if expected is None:
            condition, values = "attribute_not_exists(pk)", None
        elif "version" in expected:
            condition, values = "version = :version", {":version": int(expected["version"])}
        else:  # written by a tool that does not version (still guarded by its status and time)
            condition = "attribute_not_exists(version) AND #status = :status AND updated_at = :updated"
            values = {":status": expected.get("status"), ":updated": expected.get("updated_at")}
        item = {**item, "version": int(expected.get("version", 0)) + 1 if expected else 1}
        params: dict[str, Any] = {
            "TableName": self._table.name,
            "Item": to_dynamo(item),
            "ConditionExpression": condition,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if values is not None:
            params["ExpressionAttributeValues"] = to_dynamo(values)
            if "#status" in condition:
                params["ExpressionAttributeNames"] = {"#status": "status"}
        try:
            self._dynamodb.put_item(**params)
        except ClientError as error:
            if not _conditional_failure(error):
                raise
            current = error.response.get("Item")
            return None, from_dynamo(current) if current else None
        return item, None

    # -- the outbound record --------------------------------------------------------------------------
    def write_outbound(self, ledger: dict[str, Any], *, retention_days: int) -> None:
        result = self._table.put_all(outbound_items(ledger, retention_days=retention_days))
        if result:
            raise RuntimeError(f"outbound record not written: {'; '.join(result)}")
