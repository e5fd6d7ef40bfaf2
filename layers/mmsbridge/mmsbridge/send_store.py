"""DynamoDB access to the sender's ledger (send_ledger.py): conditional claims make it the idempotency record.

A delivery *claims* a request before it may call the provider: a conditional update that succeeds only when
no ledger exists, or when the last attempt released it (RETRY). The claim stamps `attempt_started` and a
`lease_until`; every later write of that attempt is conditional on the same stamp, so an attempt that
overran its lease cannot overwrite what another delivery decided. A claim that finds a SENDING ledger whose
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

from mmsbridge.send_ledger import (
    FINAL,
    SendStatus,
    ledger_key,
    listing_key,
    outbound_items,
    request_summary,
    sha256_hex,
)
from mmsbridge.send_request import SendRequest
from mmsbridge.state_table import StateTable, from_dynamo, to_dynamo
from mmsbridge.state_writes import iso

__all__ = ["Claim", "ClaimKind", "SendLedger"]

_CLAIM_TRIES = 3
_LOG_MAX = 20  # attempt log entries kept per request (the counters keep the totals)


class ClaimKind(StrEnum):
    CLAIMED = "claimed"  # this delivery may call the provider
    DUPLICATE = "duplicate"  # the request already reached a final status
    BUSY = "busy"  # another delivery holds it now
    ORPHANED = "orphaned"  # a dead attempt's outcome is unknown; recorded OUTCOME_UNKNOWN now


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

    def record_rejected(self, item: dict[str, Any]) -> None:
        """A refused request. A refusal never replaces a ledger that already exists (it stays the record)."""
        try:
            self._table.put_new(item)
        except ClientError as error:
            if not _conditional_failure(error):
                raise

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
        condition = "attribute_not_exists(pk) OR #status = :retry"
        if resend_orphans:
            condition += " OR (#status = :sending AND lease_until < :now)"
        values = {
            ":sending": SendStatus.SENDING.value,
            ":retry": SendStatus.RETRY.value,
            ":lease": Decimal(str(round(lease_until, 3))),
            ":stamp": stamp,
            ":body": body,
            ":sha": sha256_hex(body),
            ":zero": 0,
            ":one": 1,
            ":type": "send_request",
            **{f":{name}": value for name, value in request_summary(request).items()},
        }
        if resend_orphans:
            values[":now"] = Decimal(str(now.timestamp()))
        summary_sets = ", ".join(f"#{name} = :{name}" for name in request_summary(request))
        names = {"#status": "status", **{f"#{name}": name for name in request_summary(request)}}
        for _ in range(_CLAIM_TRIES):
            try:
                response = self._dynamodb.update_item(
                    TableName=self._table.name,
                    Key=to_dynamo(ledger_key(request.request_id)),
                    UpdateExpression=(
                        f"SET #status = :sending, lease_until = :lease, attempt_started = :stamp, "
                        f"updated_at = :stamp, #type = :type, {summary_sets}, "
                        "body = if_not_exists(body, :body), "
                        "payload_sha256 = if_not_exists(payload_sha256, :sha), "
                        "received_at = if_not_exists(received_at, :stamp), "
                        "claims = if_not_exists(claims, :zero) + :one "
                        "REMOVE gsi1pk, gsi1sk"
                    ),
                    ConditionExpression=condition,
                    ExpressionAttributeNames={**names, "#type": "type"},
                    ExpressionAttributeValues=to_dynamo(values),
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return Claim(ClaimKind.CLAIMED, from_dynamo(response["Attributes"]))
            except ClientError as error:
                if not _conditional_failure(error):
                    raise
                current = error.response.get("Item")
                ledger = from_dynamo(current) if current else self.get(request.request_id)
            if ledger is None:
                continue  # removed in between (TTL): claim again
            status = ledger.get("status")
            if status in FINAL:
                return Claim(ClaimKind.DUPLICATE, ledger)
            if status == SendStatus.SENDING.value:
                if float(ledger.get("lease_until", 0)) >= now.timestamp():
                    return Claim(ClaimKind.BUSY, ledger)
                orphan = self._mark_orphan(ledger, now)
                if orphan is not None:
                    return Claim(ClaimKind.ORPHANED, orphan)
        return Claim(ClaimKind.BUSY, ledger or {})

    def _mark_orphan(self, ledger: dict[str, Any], now: datetime) -> dict[str, Any] | None:
        detail = (
            "an earlier attempt stopped after it may have called the provider "
            f"(started {ledger.get('attempt_started')}, no outcome recorded)"
        )
        return self._finish(
            ledger["request_id"],
            str(ledger.get("attempt_started", "")),
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
        self._update(
            claim.ledger["request_id"],
            claim.stamp,
            SendStatus.RETRY,
            now,
            {"last_code": code, "last_detail": detail},
            adds=adds,
            log={"at": iso(now), "outcome": outcome, "code": code, "detail": detail},
            remove=("lease_until",),
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
            claim.ledger["request_id"],
            claim.stamp,
            status,
            now,
            fields,
            log={"at": iso(now), "outcome": outcome, "code": code, "detail": fields.get("error_info")},
            adds={"calls": 1 if called else 0},
        )

    def _finish(
        self,
        request_id: str,
        stamp: str,
        status: SendStatus,
        now: datetime,
        fields: dict[str, Any],
        *,
        log: dict[str, Any],
        adds: dict[str, int] | None = None,
    ) -> dict[str, Any] | None:
        listing = listing_key(status, now, request_id) if status is not SendStatus.ACCEPTED else {}
        return self._update(
            request_id,
            stamp,
            status,
            now,
            {**fields, **listing},
            adds=adds or {},
            log=log,
            remove=("lease_until",),
        )

    def _update(
        self,
        request_id: str,
        stamp: str,
        status: SendStatus,
        now: datetime,
        fields: dict[str, Any],
        *,
        adds: dict[str, int],
        log: dict[str, Any],
        remove: tuple[str, ...] = (),
    ) -> dict[str, Any] | None:
        fields = {name: value for name, value in fields.items() if value is not None}
        names = {"#status": "status", **{f"#f{i}": name for i, name in enumerate(fields)}}
        values: dict[str, Any] = {
            ":status": status.value,
            ":now": iso(now),
            ":stamp": stamp,
            ":sending": SendStatus.SENDING.value,
            ":log": [{k: v for k, v in log.items() if v is not None}],
            ":empty": [],
            **{f":f{i}": value for i, value in enumerate(fields.values())},
        }
        sets = [
            "#status = :status",
            "updated_at = :now",
            "attempt_log = list_append(if_not_exists(attempt_log, :empty), :log)",
        ]
        sets += [f"#f{i} = :f{i}" for i in range(len(fields))]
        expression = "SET " + ", ".join(sets)
        counted = {name: amount for name, amount in adds.items() if amount}
        if counted:
            expression += " ADD " + ", ".join(f"{name} :add_{name}" for name in counted)
            values.update({f":add_{name}": amount for name, amount in counted.items()})
        if remove:
            expression += " REMOVE " + ", ".join(remove)
        try:
            response = self._dynamodb.update_item(
                TableName=self._table.name,
                Key=to_dynamo(ledger_key(request_id)),
                UpdateExpression=expression,
                ConditionExpression="#status = :sending AND attempt_started = :stamp",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_dynamo(values),
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if _conditional_failure(error):
                return None  # the lease ran out and another delivery decided; its record stands
            raise
        ledger = from_dynamo(response["Attributes"])
        if len(ledger.get("attempt_log", [])) > _LOG_MAX:
            self._trim_log(request_id, len(ledger["attempt_log"]) - _LOG_MAX)
        return ledger

    def _trim_log(self, request_id: str, excess: int) -> None:
        # Keep the first entry (how it started) and the newest ones.
        self._dynamodb.update_item(
            TableName=self._table.name,
            Key=to_dynamo(ledger_key(request_id)),
            UpdateExpression="REMOVE " + ", ".join(f"attempt_log[{i}]" for i in range(1, 1 + excess)),
        )

    # -- the outbound record --------------------------------------------------------------------------
    def write_outbound(self, ledger: dict[str, Any], *, retention_days: int) -> None:
        result = self._table.put_all(outbound_items(ledger, retention_days=retention_days))
        if result:
            raise RuntimeError(f"outbound record not written: {'; '.join(result)}")
