"""The consumer's work on one SQS batch: decode, parse, plan the writes, apply them in one pass.

A record that can never succeed (not an envelope, not a postback, a postback that speaks for a number that
is not ours: own_numbers.py) is quarantined and acknowledged, so it does not cycle to the DLQ; a record
whose bytes cannot be read now, or whose writes failed, is reported failed and comes back. Everything
else is acknowledged only once its writes are in the table.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from mmsbridge.aws.state_table import StateTable
from mmsbridge.core import envelope
from mmsbridge.core.times import iso
from mmsbridge.postbacks.own_numbers import NOT_OUR_NUMBER, foreign_number
from mmsbridge.postbacks.planner import Received, Rejected, plan_batch
from mmsbridge.postbacks.reader import Postback, PostbackError, parse_postback

# The provider retries a failed postback about every 5 minutes, 6 attempts at most (docs/provider-protocol.md
# §5.2): copies of
# an undated postback received within an hour of the first are that postback again, later ones a new event.
RETRY_WINDOW = timedelta(hours=1)


@dataclass
class BatchOutcome:
    failed: set[str] = field(default_factory=set)
    applied: int = 0
    quarantined: list[Rejected] = field(default_factory=list)
    calls: int = 0
    errors: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)  # E999 and the like: an operator should look


def _received_at(value: str, fallback: datetime) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return fallback
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _first_seen(
    table: StateTable, postback: Postback, received_at: datetime, outcome: BatchOutcome
) -> datetime:
    """The time an undated postback (E101, N003, EMAIL_SUB: the provider sends none) is applied at: the
    receipt of its first copy within the provider's retry window, so every retry and redelivery of it
    writes the same items, and a retry that arrives after a later change does not overtake it."""
    outcome.calls += 1
    first = table.first_seen(
        postback.semantic_key,
        iso(received_at),
        window_start=iso(received_at - RETRY_WINDOW),
        expires_at=int((received_at + 2 * RETRY_WINDOW).timestamp()),
    )
    return datetime.fromisoformat(first.replace("Z", "+00:00"))


def consume(
    records: Sequence[Mapping[str, Any]],
    *,
    table: StateTable,
    fetch: Callable[[str], bytes],
    retention_days: int = 0,
    own_numbers: frozenset[str] = frozenset(),
    now: datetime | None = None,
) -> BatchOutcome:
    """Apply one batch of postback-queue records; returns which record ids failed.

    `own_numbers`: the account's shortcodes and longcodes (digits); a postback whose own-side number is not
    among them is quarantined as `not-our-number`. Empty: the check is off."""
    now = now or datetime.now(UTC)
    outcome = BatchOutcome()
    received: list[Received] = []
    rejected: list[Rejected] = []
    for record in records:
        record_id = str(record["messageId"])
        message = str(record.get("body") or "")
        try:
            queued = envelope.decode(message)
        except envelope.EnvelopeError as error:
            digest = hashlib.sha256(message.encode("utf-8", "surrogatepass")).hexdigest()
            rejected.append(Rejected(record_id, digest, None, "not-an-envelope", str(error), now))
            continue
        received_at = _received_at(queued.received_at, now)
        body = queued.body
        if body is None:
            try:
                body = fetch(queued.key)
            except Exception as error:  # the object should be there (archived before enqueueing): retry
                outcome.failed.add(record_id)
                outcome.errors.append(f"{record_id}: reading {queued.key}: {type(error).__name__}: {error}")
                continue
        if hashlib.sha256(body).hexdigest() != queued.sha256:
            rejected.append(
                Rejected(
                    record_id,
                    queued.sha256,
                    queued.key,
                    "hash-mismatch",
                    "the bytes do not match the SHA-256 taken on receipt",
                    received_at,
                )
            )
            continue
        try:
            postback = parse_postback(body, received_at=received_at)
        except PostbackError as error:
            detail = f"{error} ({', '.join(error.detail)})" if error.detail else str(error)
            rejected.append(Rejected(record_id, queued.sha256, queued.key, error.reason, detail, received_at))
            continue
        # Before anything is written for it, the first sighting of an undated postback included.
        foreign = foreign_number(postback, own_numbers)
        if foreign is not None:
            rejected.append(
                Rejected(record_id, queued.sha256, queued.key, NOT_OUR_NUMBER, foreign, received_at)
            )
            continue
        if postback.timestamp_derived:
            try:
                received_at = _first_seen(table, postback, received_at, outcome)
            except Exception as error:  # the first sighting cannot be settled now: the record comes back
                outcome.failed.add(record_id)
                outcome.errors.append(f"{record_id}: first seen: {type(error).__name__}: {error}")
                continue
            postback = replace(postback, timestamp_utc=received_at)
        if postback.alert:
            outcome.alerts.append(f"{postback.origin} {postback.code} {postback.correlation_id}")
        received.append(Received(record_id, postback, queued.key, queued.sha256, received_at))

    result = table.apply(plan_batch(received, rejected, retention_days=retention_days))
    outcome.failed |= result.failed_records
    outcome.errors += result.errors
    outcome.calls += result.calls
    outcome.applied = sum(1 for r in received if r.record_id not in outcome.failed)
    outcome.quarantined = [r for r in rejected if r.record_id not in outcome.failed]
    return outcome
