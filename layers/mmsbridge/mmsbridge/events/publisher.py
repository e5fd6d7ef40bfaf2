"""Publishing entries with EventBridge PutEvents: at most 10 entries and 256 KiB a call, and only the
entries that failed are sent again, after a capped, jittered backoff (core.backoff).

A failure that cannot pass on a retry is not retried: an entry EventBridge refuses (MalformedDetail,
InvalidArgument), one over the size limit, and a call refused as a whole (an unknown bus, a missing
permission, which fail every entry of the call: EventBridge may even have delivered earlier entries of it,
so they may arrive twice, under their ids). Throttling, internal errors and transport failures are retried.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from mmsbridge.core.backoff import backoff_seconds
from mmsbridge.events.changes import MAX_ENTRY_BYTES, entry_size

__all__ = ["ENTRIES_PER_CALL", "EventPublisher", "PublishResult"]

ENTRIES_PER_CALL: Final = 10
REQUEST_BYTES: Final = 256 * 1024
PERMANENT_ENTRY_ERRORS: Final = frozenset({"MalformedDetail", "InvalidArgument", "ValidationException"})
PERMANENT_CALL_ERRORS: Final = frozenset(
    {
        "ResourceNotFoundException",
        "AccessDeniedException",
        "ValidationException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
    }
)


@dataclass
class PublishResult:
    """`failed`: input position -> why it was not published. `calls`: PutEvents calls made."""

    failed: dict[int, str] = field(default_factory=dict)
    calls: int = 0
    retried: int = 0  # entries sent again after a retryable failure

    @property
    def ok(self) -> bool:
        return not self.failed


class EventPublisher:
    def __init__(
        self,
        client: Any,
        *,
        attempts: int = 5,
        base_s: float = 0.05,
        cap_s: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._client = client
        self._attempts = attempts
        self._base_s = base_s
        self._cap_s = cap_s
        self._sleep = sleep
        self._rng = rng

    def publish(self, entries: Sequence[Mapping[str, Any]]) -> PublishResult:
        """Send every entry (each carries its EventBusName); the result names the ones that never went."""
        result = PublishResult()
        errors: dict[int, str] = {}
        pending = []
        for position, entry in enumerate(entries):
            if entry_size(entry) > MAX_ENTRY_BYTES:
                result.failed[position] = f"entry of {entry_size(entry)} bytes is over EventBridge's limit"
            else:
                pending.append(position)
        for attempt in range(self._attempts):
            if attempt:
                self._sleep(backoff_seconds(attempt - 1, base=self._base_s, cap=self._cap_s, rng=self._rng))
                result.retried += len(pending)
            again: list[int] = []
            for chunk in _chunks(pending, entries):
                again.extend(self._call(chunk, entries, result, errors))
            pending = again
            if not pending:
                break
        for position in pending:
            result.failed[position] = errors[position]
        return result

    def _call(
        self,
        chunk: list[int],
        entries: Sequence[Mapping[str, Any]],
        result: PublishResult,
        errors: dict[int, str],
    ) -> list[int]:
        """One PutEvents call; returns the positions to send again. Permanent failures go in `result`."""
        result.calls += 1
        try:
            response = self._client.put_events(Entries=[dict(entries[p]) for p in chunk])
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "ClientError")
            reason = f"PutEvents: {code}: {error.response.get('Error', {}).get('Message', '')}"
            if code in PERMANENT_CALL_ERRORS:
                result.failed.update(dict.fromkeys(chunk, reason))
                return []
            errors.update(dict.fromkeys(chunk, reason))
            return chunk
        except BotoCoreError as error:
            errors.update(dict.fromkeys(chunk, f"PutEvents: {type(error).__name__}: {error}"))
            return chunk
        answers = response.get("Entries") or []
        again = []
        for offset, position in enumerate(chunk):
            answer = answers[offset] if offset < len(answers) else {"ErrorCode": "NoAnswer"}
            code = answer.get("ErrorCode")
            if not code and answer.get("EventId"):
                continue
            reason = f"{code or 'NoEventId'}: {answer.get('ErrorMessage') or ''}".rstrip(": ")
            if code in PERMANENT_ENTRY_ERRORS:
                result.failed[position] = reason
            else:
                errors[position] = reason
                again.append(position)
        return again


def _chunks(positions: Sequence[int], entries: Sequence[Mapping[str, Any]]) -> Iterator[list[int]]:
    """Consecutive runs of at most 10 entries and 256 KiB, in input order."""
    chunk: list[int] = []
    size = 0
    for position in positions:
        bytes_ = entry_size(entries[position])
        if chunk and (len(chunk) == ENTRIES_PER_CALL or size + bytes_ > REQUEST_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(position)
        size += bytes_
    if chunk:
        yield chunk
