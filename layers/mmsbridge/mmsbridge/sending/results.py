"""What the sender decided for each record of a batch: its outcome, and what happens to its SQS message."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final


class Disposition(StrEnum):
    """What happens to a record's SQS message: deleted, handed back with a visibility timeout, or moved to
    the DLQ with its reason."""

    DONE = "done"
    RETRY = "retry"
    DEAD_LETTER = "dead_letter"


class Outcome(StrEnum):
    """Why a record ended as it did: the `outcome` field of its log line and, counted, the metric METRICS
    names."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    SUPPRESSED = "suppressed"
    FAILED = "failed"
    FAILED_UNKNOWN_CODE = "failed_unknown_code"
    OUTCOME_UNKNOWN = "outcome_unknown"
    DUPLICATE = "duplicate"
    CONFLICTING_DUPLICATE = "conflicting_duplicate"
    THROTTLED = "throttled"
    DEFERRED = "deferred"
    TRANSIENT_RETRY = "transient_retry"
    ERROR = "error"
    PACED = "paced"
    BUSY = "busy"
    ACCOUNT_ERROR = "account_error"


# Each outcome's metric: how many records of a batch ended so (a batch with none adds nothing).
METRICS: Final[Mapping[Outcome, str]] = {
    Outcome.ACCEPTED: "Accepted",
    Outcome.REJECTED: "Rejected",
    Outcome.SUPPRESSED: "Suppressed",
    Outcome.FAILED: "SendFailed",
    Outcome.FAILED_UNKNOWN_CODE: "UnknownErrorCode",
    Outcome.OUTCOME_UNKNOWN: "OutcomeUnknown",
    Outcome.DUPLICATE: "DuplicateRequests",
    Outcome.CONFLICTING_DUPLICATE: "ConflictingDuplicates",
    Outcome.THROTTLED: "Throttled",
    Outcome.DEFERRED: "Deferred",
    Outcome.TRANSIENT_RETRY: "TransientRetries",
    Outcome.ERROR: "RecordErrors",
    Outcome.PACED: "PacedBack",
    Outcome.BUSY: "HeldByAnotherAttempt",
    Outcome.ACCOUNT_ERROR: "AccountErrors",
}

# Outcomes an operator should look at: logged as errors.
NEEDS_ATTENTION = frozenset(
    {
        Outcome.OUTCOME_UNKNOWN,
        Outcome.ACCOUNT_ERROR,
        Outcome.ERROR,
        Outcome.FAILED_UNKNOWN_CODE,
        Outcome.CONFLICTING_DUPLICATE,
    }
)


@dataclass(frozen=True)
class RecordResult:
    message_id: str
    receipt_handle: str
    disposition: Disposition
    outcome: Outcome
    request_id: str | None = None
    visibility_s: int | None = None
    reason: str | None = None  # why it was dead-lettered or not sent
    tracking_id: str | None = None
    code: str | None = None


@dataclass
class BatchReport:
    results: list[RecordResult] = field(default_factory=list)
    stopped: str | None = None  # throttled, account or unreachable: why the batch stopped calling

    def count(self, outcome: Outcome) -> int:
        return sum(1 for result in self.results if result.outcome == outcome)
