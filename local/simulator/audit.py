"""What the simulator saw and did: one entry per API call and per postback delivery attempt, and counters.

Entries never hold the API key: the caller hands in request fields that are already redacted, and every
string is scrubbed of the account's key once more before it is stored.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from datetime import UTC, datetime
from typing import Any, Final

from mmsbridge.sending.provider_xml import REDACTED

__all__ = ["Audit"]

NO_ACTION: Final = "(none)"
PACING_CODES: Final = ("E113", "E106", "E120")  # counted on their own: throughput, interval, quota
MAX_DUPLICATES_LISTED: Final = 1000


def _scrub(value: Any, secret: str) -> Any:
    """`value` with every occurrence of `secret` in its strings replaced, recursively."""
    if isinstance(value, str):
        return value.replace(secret, REDACTED) if secret and secret in value else value
    if isinstance(value, dict):
        return {key: _scrub(item, secret) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item, secret) for item in value]
    return value


class Audit:
    """A bounded, thread-safe log with running statistics. Sequence numbers are never reused."""

    def __init__(self, *, secret: str, limit: int = 100_000) -> None:
        self._secret = secret
        self._lock = threading.Lock()
        self._entries: deque[dict[str, Any]] = deque(maxlen=limit)
        self._seq = 0
        self._clear()

    def _clear(self) -> None:
        self._entries.clear()
        self._calls: dict[str, Counter[str]] = {}
        self._accepted: Counter[str] = Counter()
        self._counts: Counter[str] = Counter()
        self._sends_seen: dict[tuple[str, str], int] = {}
        self._duplicates: list[dict[str, Any]] = []

    def reset(self) -> None:
        with self._lock:
            self._clear()

    def _append(self, entry: dict[str, Any]) -> dict[str, Any]:
        self._seq += 1
        stored = {"seq": self._seq, "time": datetime.now(UTC).isoformat(timespec="milliseconds"), **entry}
        stored = _scrub(stored, self._secret)
        self._entries.append(stored)
        return stored

    def api_call(self, entry: dict[str, Any], *, send_key: tuple[str, str] | None = None) -> dict[str, Any]:
        """Record one API call. `send_key` is (TO, content digest) for an accepted send."""
        with self._lock:
            stored = self._append({"type": "api", **entry})
            action = entry.get("action") or NO_ACTION
            self._calls.setdefault(action, Counter())[entry["answer"]] += 1
            self._counts["calls"] += 1
            self._counts["faults"] += entry.get("fault") is not None
            for code in PACING_CODES:
                self._counts[code.lower()] += entry["answer"] == code
            if send_key is not None:
                self._record_send(action, send_key, stored["seq"])
            return stored

    def _record_send(self, action: str, send_key: tuple[str, str], seq: int) -> None:
        self._accepted[action] += 1
        first = self._sends_seen.setdefault(send_key, seq)
        if first != seq:
            self._counts["duplicates"] += 1
            if len(self._duplicates) < MAX_DUPLICATES_LISTED:
                self._duplicates.append({"seq": seq, "first_seq": first, "to": send_key[0]})

    def postback(self, entry: dict[str, Any]) -> None:
        """Record one postback event: an attempt (`outcome` delivered / retry / gave_up) or a drop."""
        with self._lock:
            self._append({"type": "postback", **entry})
            outcome = entry["outcome"]
            self._counts[f"postbacks_{outcome}"] += 1
            if outcome != "dropped":
                self._counts["postback_attempts"] += 1

    def entries(self, since: int = 0) -> list[dict[str, Any]]:
        """Entries with a sequence number greater than `since`, oldest first."""
        with self._lock:
            return [dict(entry) for entry in self._entries if entry["seq"] > since]

    def stats(self) -> dict[str, Any]:
        with self._lock:
            counts = self._counts
            return {
                "calls": counts["calls"],
                "calls_by_action": {action: dict(answers) for action, answers in self._calls.items()},
                "accepted_sends": sum(self._accepted.values()),
                "accepted_by_action": dict(self._accepted),
                "e113": counts["e113"],
                "e106": counts["e106"],
                "e120": counts["e120"],
                "faults": counts["faults"],
                "duplicates": counts["duplicates"],
                "duplicate_sends": list(self._duplicates),
                "postbacks": {
                    "attempts": counts["postback_attempts"],
                    "delivered": counts["postbacks_delivered"],
                    "retried": counts["postbacks_retry"],
                    "gave_up": counts["postbacks_gave_up"],
                    "dropped": counts["postbacks_dropped"],
                },
                "last_seq": self._seq,
            }
