"""The sender: one batch of send requests from SQS to the provider, each at most once, paced, E113 re-driven.

Per record: validate (a refused request is recorded with its reasons) -> claim the request in its ledger
(the idempotency record: duplicates and redeliveries stop here; a different body under a request_id that
has a ledger is a conflicting duplicate, recorded beside it and never sent) -> suppression list ->
optional media preflight -> a slot from the shared limiter -> one provider call -> the outcome recorded.
Every record ends as one `RecordResult`: DONE (acknowledge), RETRY (hand back to SQS with a visibility
timeout) or DEAD_LETTER (to the send DLQ with its reason). The handler turns those into SQS calls and a
partial batch response.

Error classes (docs/provider-protocol.md §4): THROTTLE (E113 and the like, or an HTTP 429 without an API
answer) stops the batch: this record and every unsent one come back after a jittered backoff, or after the
answer's Retry-After when it has one, and are never dead-lettered before `max_throttled_s`; AUTH_CONFIG
stops the batch too (alarm metric; the messages wait for the fix); TRANSIENT retries with backoff up to
`max_attempts` calls, except an outcome-unknown failure, which at most once is final (OUTCOME_UNKNOWN);
PERMANENT and UNKNOWN are FAILED.

`service_id` (the deployment's `PROVIDER_SERVICE_ID`) goes into every request as SERVICEID when set.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from mmsbridge.aws.state_table import StateTable
from mmsbridge.config import Env, SettingError
from mmsbridge.core.backoff import SQS_MAX_VISIBILITY_TIMEOUT, visibility_timeout_seconds
from mmsbridge.sending.conflicts import record_conflict, same_body
from mmsbridge.sending.ledger import SendStatus, accepted_fields, rejected_item
from mmsbridge.sending.ledger_store import Claim, ClaimKind, SendLedger
from mmsbridge.sending.limiter import SharedLimiter
from mmsbridge.sending.media_check import BUDGET_S as MEDIA_BUDGET_S
from mmsbridge.sending.provider_http import READ_TIMEOUT_S, ProviderClient, ProviderReply
from mmsbridge.sending.provider_xml import ErrorClass, ProviderResult, build_request_xml
from mmsbridge.sending.request import InvalidSendRequest, SendMMS, SendRequest, parse_send_request_json
from mmsbridge.sending.results import BatchReport, Disposition, Outcome, RecordResult

__all__ = ["Delivery", "Sender", "SenderSettings"]

_CALL_BUDGET_S: Final = READ_TIMEOUT_S + 5.0  # time a call may take, kept free before the deadline
_MAX_PACING_WAIT_S: Final = 10.0
_MIN_PREFLIGHT_S: Final = 0.25  # less left for the media preflight: the request is handed back unchecked
# After an E113 every invocation holds its next call back this many call intervals (a Retry-After wins):
# paced at the agreed rate, an E113 means a burst of network jitter or a lower real limit, not a flood.
E113_PAUSE_INTERVALS: Final = 2
# The template's ProviderServiceId pattern: printable ASCII without spaces.
SERVICE_ID_MAX: Final = 64
_SERVICE_ID: Final = re.compile(r"[\x21-\x7e]+")


class Delivery(StrEnum):
    AT_MOST_ONCE = "at-most-once"
    AT_LEAST_ONCE = "at-least-once"


@dataclass(frozen=True)
class Backoff:
    base_s: float
    cap_s: float
    floor_s: float = 1.0  # the least a record waits, whatever the jitter draws


@dataclass(frozen=True)
class SenderSettings:
    delivery: Delivery = Delivery.AT_MOST_ONCE
    max_attempts: int = 5
    max_throttled_s: float = 6 * 3600
    media_preflight: bool = False
    media_preflight_budget_s: float = MEDIA_BUDGET_S  # all media of one request: DNS, connect, TLS, answer
    default_country_code: str | None = None
    retention_days: int = 0
    service_id: str | None = None  # SERVICEID on every request; None leaves it out
    poison_errors: int = 5  # a message that met an unexpected error this many times: to the DLQ
    throttled: Backoff = Backoff(1.0, 300.0)
    transient: Backoff = Backoff(2.0, 300.0)
    account: Backoff = Backoff(30.0, 900.0, floor_s=30.0)  # an account problem is not fixed in seconds

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SenderSettings:
        read = Env(env)
        delivery = read.text("DELIVERY", Delivery.AT_MOST_ONCE.value)
        if delivery not in set(Delivery):
            raise SettingError(f"DELIVERY must be one of {', '.join(Delivery)}, got {delivery!r}")
        return cls(
            delivery=Delivery(delivery),
            max_attempts=read.integer("MAX_ATTEMPTS", 5),
            max_throttled_s=read.number("MAX_THROTTLED_MINUTES", 360) * 60,
            media_preflight=read.flag("MEDIA_PREFLIGHT"),
            default_country_code=read.optional("DEFAULT_COUNTRY_CODE"),
            retention_days=read.integer("HISTORY_RETENTION_DAYS", 0),
            service_id=_service_id(read.text("PROVIDER_SERVICE_ID", "")),
        )


def _service_id(value: str) -> str | None:
    """The configured SERVICEID, or None when empty. A value outside the template's pattern (whitespace,
    control characters, too long) stops the function at its cold start rather than failing every request."""
    if value == "":
        return None
    if len(value) > SERVICE_ID_MAX or not _SERVICE_ID.fullmatch(value):
        raise SettingError(
            f"PROVIDER_SERVICE_ID must be empty or 1-{SERVICE_ID_MAX} printable ASCII characters, no spaces"
        )
    return value


@dataclass
class _Record:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    first_sent_s: float

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> _Record:
        attributes = record.get("attributes") or {}
        return cls(
            message_id=record["messageId"],
            receipt_handle=record["receiptHandle"],
            body=record.get("body") or "",
            receive_count=int(attributes.get("ApproximateReceiveCount", "1")),
            first_sent_s=int(attributes.get("SentTimestamp", "0")) / 1000,
        )


_STOP_BACKOFF: Final = {"throttled": "throttled", "account": "account", "unreachable": "transient"}
_HELD_BACK: Final = frozenset({"throttled", "account"})  # not dead-lettered before max_throttled_s
# How long a send-queue message's error count is kept: the send queue's message retention (4 days).
_ERROR_COUNT_KEEP_S: Final = 4 * 86400


class Sender:
    def __init__(
        self,
        *,
        table: StateTable,
        ledger: SendLedger,
        limiter: SharedLimiter,
        client: ProviderClient,
        api_key: Callable[[], str],
        forget_api_key: Callable[[], None],
        settings: SenderSettings,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self._table = table
        self._ledger = ledger
        self.limiter = limiter
        self._client = client
        self._api_key = api_key
        self._forget_api_key = forget_api_key
        self.settings = settings
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography  # nosec B311
        self._left = 1
        self._throttled_for_s: float | None = None  # the Retry-After of the answer that stopped the batch

    # -- the batch ------------------------------------------------------------------------------------
    def send_batch(self, records: list[Mapping[str, Any]], *, deadline: float) -> BatchReport:
        """`deadline`: epoch seconds by which the invocation must be done (the Lambda timeout)."""
        report = BatchReport()
        parsed = [_Record.of(record) for record in records]
        self._throttled_for_s = None
        try:
            api_key = self._api_key()
        except Exception as error:
            report.stopped = "account"
            detail = f"the API key could not be read ({type(error).__name__})"
            report.results = [
                self._hand_back(r, Outcome.ACCOUNT_ERROR, "account", reason=detail) for r in parsed
            ]
            return report
        for position, record in enumerate(parsed):
            self._left = len(parsed) - position  # records this batch may still send: slots to reserve
            if report.stopped:
                # Unsent records wait as long as the throttled one: the provider (or its proxy) said when
                # calls may resume, and coming back sooner would only meet the limiter's penalty.
                hold = self._throttled_for_s if report.stopped == "throttled" else None
                report.results.append(
                    self._hand_back(
                        record, Outcome.DEFERRED, _STOP_BACKOFF[report.stopped], retry_after_s=hold
                    )
                )
                continue
            try:
                result, stop = self._one(record, api_key, deadline)
            except Exception as error:
                result, stop = self._failed(record, error), None
            report.results.append(result)
            report.stopped = stop
        return report

    def _failed(self, record: _Record, error: Exception) -> RecordResult:
        detail = f"{type(error).__name__}: {str(error)[:300]}"
        try:
            errors = self._ledger.count_error(
                record.message_id, datetime.fromtimestamp(self._clock(), UTC), keep_s=_ERROR_COUNT_KEEP_S
            )
        except (
            Exception
        ):  # the table may be what failed: hand back; the queue's maxReceiveCount is a backstop
            errors = 0
        if errors >= self.settings.poison_errors:
            return RecordResult(
                record.message_id,
                record.receipt_handle,
                Disposition.DEAD_LETTER,
                "error",
                reason=f"failed {errors} times; last error {detail}",
            )
        return self._hand_back(record, Outcome.ERROR, "transient", reason=detail)

    def _hand_back(
        self,
        record: _Record,
        outcome: Outcome,
        backoff: str,
        *,
        request_id: str | None = None,
        retry_after_s: float | None = None,
        reason: str | None = None,
        code: str | None = None,
    ) -> RecordResult:
        age = self._clock() - record.first_sent_s if record.first_sent_s else 0.0
        if backoff in _HELD_BACK and age > self.settings.max_throttled_s:
            minutes = round(self.settings.max_throttled_s / 60)
            why = "throttled by the provider" if backoff == "throttled" else "refused by the provider"
            return RecordResult(
                record.message_id,
                record.receipt_handle,
                Disposition.DEAD_LETTER,
                outcome,
                request_id=request_id,
                reason=f"{why} for more than {minutes} minutes" + (f" ({reason})" if reason else ""),
                code=code,
            )
        policy: Backoff = getattr(self.settings, backoff)
        if retry_after_s is not None:
            visibility = min(SQS_MAX_VISIBILITY_TIMEOUT, max(1, math.ceil(retry_after_s)))
        else:
            visibility = visibility_timeout_seconds(
                record.receive_count,
                base=policy.base_s,
                cap=policy.cap_s,
                rng=self._rng,
                minimum=max(1, math.ceil(policy.floor_s)),
            )
        return RecordResult(
            record.message_id,
            record.receipt_handle,
            Disposition.RETRY,
            outcome,
            request_id=request_id,
            visibility_s=visibility,
            reason=reason,
            code=code,
        )

    def _done(self, record: _Record, outcome: Outcome, request_id: str | None, **extra: Any) -> RecordResult:
        return RecordResult(
            record.message_id, record.receipt_handle, Disposition.DONE, outcome, request_id, **extra
        )

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    # -- one record -----------------------------------------------------------------------------------
    def _one(self, record: _Record, api_key: str, deadline: float) -> tuple[RecordResult, str | None]:
        try:
            request = parse_send_request_json(
                record.body, default_country_code=self.settings.default_country_code
            )
        except InvalidSendRequest as error:
            request_id = error.request_id or _raw_request_id(record.body)
            item = rejected_item(record.body, request_id, error.errors, self._now(), valid=error.valid)
            reason = "; ".join(f"{name}: {why}" for name, why in error.errors)
            if not self._ledger.record_rejected(item) and isinstance(item.get("request_id"), str):
                # Its request_id already has a ledger: a redelivery of the same body, or a conflict.
                ledger = self._ledger.get(item["request_id"])
                if ledger is not None and not same_body(ledger, record.body):
                    return self._conflict(record, item["request_id"], ledger, refused=reason), None
            return self._done(record, Outcome.REJECTED, request_id, reason=reason), None
        claim = self._ledger.claim(
            request,
            record.body,
            now=self._now(),
            lease_until=deadline + 5.0,
            resend_orphans=self.settings.delivery is Delivery.AT_LEAST_ONCE,
        )
        request_id = request.request_id
        if claim.kind is ClaimKind.CONFLICT:
            return self._conflict(record, request_id, claim.ledger), None
        if claim.kind is ClaimKind.DUPLICATE:
            if claim.ledger.get("status") == SendStatus.ACCEPTED.value and claim.ledger.get("tracking_id"):
                # Repairs an attempt that recorded ACCEPTED but stopped before the outbound record.
                self._ledger.write_outbound(claim.ledger, retention_days=self.settings.retention_days)
            return self._done(
                record, Outcome.DUPLICATE, request_id, reason=str(claim.ledger.get("status"))
            ), None
        if claim.kind is ClaimKind.ORPHANED:
            return self._done(record, Outcome.OUTCOME_UNKNOWN, request_id, reason="orphaned attempt"), None
        if claim.kind is ClaimKind.BUSY:
            lease_left = float(claim.ledger.get("lease_until", 0)) - self._clock()
            return self._hand_back(
                record,
                Outcome.BUSY,
                "transient",
                request_id=request_id,
                retry_after_s=max(1.0, lease_left + 1),
            ), None
        return self._attempt(record, request, claim, api_key, deadline)

    def _conflict(
        self, record: _Record, request_id: str, ledger: dict[str, Any], *, refused: str | None = None
    ) -> RecordResult:
        """A different body under a request_id that has a ledger: recorded beside it, never sent."""
        count = record_conflict(
            self._table, request_id, record.body, self._now(), message_id=record.message_id, refused=refused
        )
        reason = (
            f"request_id already used by a different body (its ledger is {ledger.get('status')}, "
            f"payload sha256 {ledger.get('payload_sha256')}); not sent, conflict {count} recorded"
        )
        return self._done(record, Outcome.CONFLICTING_DUPLICATE, request_id, reason=reason)

    def _attempt(
        self, record: _Record, request: SendRequest, claim: Claim, api_key: str, deadline: float
    ) -> tuple[RecordResult, str | None]:
        request_id = request.request_id
        called = False
        try:
            if self._table.suppressed(request.to):
                self._ledger.finish(
                    claim,
                    SendStatus.SUPPRESSED,
                    self._now(),
                    {"error_info": f"{request.to} is on the suppression list (opted out)"},
                    outcome="suppressed",
                    called=False,
                )
                return self._done(record, Outcome.SUPPRESSED, request_id), None
            if self.settings.media_preflight and isinstance(request, SendMMS):
                problem = self._preflight(request, deadline)
                if problem is not None:
                    return self._media_problem(record, claim, request_id, problem), None
            # Ready before the slot: the call leaves on time.
            document = build_request_xml(request, api_key, service_id=self.settings.service_id)
            max_wait = min(_MAX_PACING_WAIT_S, deadline - self._clock() - _CALL_BUDGET_S)
            waited = self.limiter.acquire(max_wait_s=max(0.0, max_wait), want=self._left)
            if waited is None:
                self._ledger.release(claim, self._now(), outcome="paced", called=False)
                return self._hand_back(record, Outcome.PACED, "throttled", request_id=request_id), "throttled"
            called = True
            reply = self._client.call(document, api_key=api_key)
        except Exception:
            if not called:  # the provider was not called: hand the request back rather than leave it SENDING
                with contextlib.suppress(Exception):  # else the lease protects it; the first error wins
                    self._ledger.release(claim, self._now(), outcome="error", called=False)
            raise
        return self._outcome(record, request, claim, reply)

    def _preflight(self, request: SendMMS, deadline: float) -> tuple[str, str, str] | None:
        """Each media URL checked as the provider will fetch it (media_check.py), all of them within
        one budget that ends before the time the call needs: a slow media host holds the batch up that long
        at most. Too little time left to check: "deferred", handed back without counting an attempt."""
        budget = min(self.settings.media_preflight_budget_s, deadline - self._clock() - _CALL_BUDGET_S)
        if budget < _MIN_PREFLIGHT_S:
            return "deferred", "slides", "no time left in this invocation for the media preflight"
        until = time.monotonic() + budget
        for number, slide in enumerate(request.slides, start=1):
            for slot in ("image_url", "audio_url", "video_url"):
                url = getattr(slide, slot, None)
                if url:
                    problem = self._client.preflight(url, until=until)
                    if problem is not None:
                        return problem[0], f"slides[{number - 1}].{slot}", problem[1]
        return None

    def _media_problem(
        self, record: _Record, claim: Claim, request_id: str, problem: tuple[str, str, str]
    ) -> RecordResult:
        kind, where, reason = problem
        now = self._now()
        if kind == "deferred":
            self._ledger.release(claim, now, outcome="media_preflight", detail=reason, called=False)
            return self._hand_back(
                record, Outcome.DEFERRED, "transient", request_id=request_id, reason=reason
            )
        failures = int(claim.ledger.get("transient_failures", 0)) + 1
        if kind == "permanent" or failures >= self.settings.max_attempts:
            self._ledger.finish(
                claim,
                SendStatus.REJECTED,
                now,
                {"reasons": [{"field": where, "reason": f"media preflight: {reason}"}]},
                outcome="media_preflight",
                called=False,
            )
            return self._done(record, Outcome.REJECTED, request_id, reason=f"{where}: {reason}")
        self._ledger.release(
            claim, now, outcome="media_preflight", detail=reason, called=False, counter="transient_failures"
        )
        return self._hand_back(
            record, Outcome.TRANSIENT_RETRY, "transient", request_id=request_id, reason=reason
        )

    def _outcome(
        self, record: _Record, request: SendRequest, claim: Claim, reply: ProviderReply
    ) -> tuple[RecordResult, str | None]:
        result = reply.result
        request_id = request.request_id
        now = self._now()
        if result.ok:
            ledger = self._ledger.finish(
                claim, SendStatus.ACCEPTED, now, accepted_fields(result, now), outcome="accepted", called=True
            )
            if ledger is not None:
                self._ledger.write_outbound(ledger, retention_days=self.settings.retention_days)
            return self._done(record, Outcome.ACCEPTED, request_id, tracking_id=result.tracking_id), None
        error_class = result.error_class
        code = result.error_code or (result.transport_error.value if result.transport_error else None)
        if error_class is ErrorClass.THROTTLE:
            self._throttled_for_s = reply.retry_after_s
            self.limiter.penalise(reply.retry_after_s or E113_PAUSE_INTERVALS * self.limiter.interval_s)
            self._ledger.release(claim, now, outcome="throttled", code=code, called=True, counter="throttled")
            return self._hand_back(
                record,
                Outcome.THROTTLED,
                "throttled",
                request_id=request_id,
                retry_after_s=reply.retry_after_s,
                code=code,
            ), "throttled"
        if error_class is ErrorClass.AUTH_CONFIG:
            self._forget_api_key()  # read it afresh next time: the fix may be a new key
            self._ledger.release(
                claim,
                now,
                outcome="account",
                code=code,
                detail=result.error_info,
                called=True,
                counter="account_errors",
            )
            return self._hand_back(
                record,
                Outcome.ACCOUNT_ERROR,
                "account",
                request_id=request_id,
                reason=result.error_info,
                code=code,
            ), "account"
        if error_class is ErrorClass.TRANSIENT:
            return self._transient(record, claim, request_id, result, code, now)
        self._ledger.finish(
            claim, SendStatus.FAILED, now, _failure(result), outcome="failed", called=True, code=code
        )
        outcome = Outcome.FAILED if error_class is ErrorClass.PERMANENT else Outcome.FAILED_UNKNOWN_CODE
        return self._done(record, outcome, request_id, code=code, reason=result.error_info), None

    def _transient(
        self,
        record: _Record,
        claim: Claim,
        request_id: str,
        result: ProviderResult,
        code: str | None,
        now: datetime,
    ) -> tuple[RecordResult, str | None]:
        stop = "unreachable" if result.transport_error is not None else None
        if result.outcome_unknown and self.settings.delivery is Delivery.AT_MOST_ONCE:
            fields = {**_failure(result), "outcome_unknown_reason": result.error_info}
            self._ledger.finish(
                claim,
                SendStatus.OUTCOME_UNKNOWN,
                now,
                fields,
                outcome="outcome_unknown",
                called=True,
                code=code,
            )
            return self._done(
                record, Outcome.OUTCOME_UNKNOWN, request_id, code=code, reason=result.error_info
            ), stop
        failures = int(claim.ledger.get("transient_failures", 0)) + 1
        if failures >= self.settings.max_attempts:
            fields = {**_failure(result), "transient_failures": failures}
            self._ledger.finish(
                claim, SendStatus.FAILED, now, fields, outcome="failed", called=True, code=code
            )
            reason = f"{failures} transient failures; last: {result.error_info}"
            return self._done(record, Outcome.FAILED, request_id, code=code, reason=reason), stop
        self._ledger.release(
            claim,
            now,
            outcome="transient",
            code=code,
            detail=result.error_info,
            called=True,
            counter="transient_failures",
        )
        return self._hand_back(
            record,
            Outcome.TRANSIENT_RETRY,
            "transient",
            request_id=request_id,
            reason=result.error_info,
            code=code,
        ), stop


def _raw_request_id(body: str) -> object:
    """The request_id of a refused body, as given, so the refusal is findable by it where it can be a key."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return payload.get("request_id") if isinstance(payload, dict) else None


def _failure(result: ProviderResult) -> dict[str, Any]:
    return {
        "error_code": result.error_code,
        "error_class": result.error_class.value if result.error_class else None,
        "error_info": result.error_info,
        "transport_error": result.transport_error.value if result.transport_error else None,
        "http_status": result.http_status,
        "provider_tracking_id": result.tracking_id,
    }
