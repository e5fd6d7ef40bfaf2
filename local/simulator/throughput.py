"""The account's call limits (docs/provider-protocol.md §4.1, §4.2).

Throughput: at most `limit` calls in any sliding window of `window_s`, counted across every client. A call
over the limit is rejected (E113), never queued, and does not use up the window. Counted over all actions
together (`per_action=False`, the default) or per action. Besides it, a minimum interval between calls
(E106) and a request quota (E120)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

__all__ = ["MinimumInterval", "RequestQuota", "SlidingWindowLimiter"]


class SlidingWindowLimiter:
    def __init__(
        self,
        limit: int | None,
        *,
        per_action: bool = False,
        window_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._window_s = window_s
        self._per_action = per_action
        self._admitted: dict[str, deque[float]] = {}
        self.limit = limit

    @property
    def limit(self) -> int | None:
        return self._limit

    @limit.setter
    def limit(self, value: int | None) -> None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError("the throughput limit must be a positive integer or None (no limit)")
        self._limit = value

    def admit(self, action: str) -> bool:
        """True (and counted) if a call of `action` fits in the window now; False means E113."""
        limit = self._limit
        if limit is None:
            return True
        now = self._clock()
        with self._lock:
            admitted = self._admitted.setdefault(action if self._per_action else "*", deque())
            while admitted and admitted[0] <= now - self._window_s:
                admitted.popleft()
            if len(admitted) >= limit:
                return False
            admitted.append(now)
            return True

    def reset(self) -> None:
        with self._lock:
            self._admitted.clear()


class MinimumInterval:
    """The account's minimum interval between calls (docs/provider-protocol.md §4.1, E106): a call that comes
    sooner than `interval_s` after the last admitted one is rejected and, like an E113, does not move the
    mark. Not thread-safe on its own: the simulator checks and records under one lock."""

    def __init__(self, interval_s: float | None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last: float | None = None
        self.interval_s = interval_s

    @property
    def interval_s(self) -> float | None:
        return self._interval_s

    @interval_s.setter
    def interval_s(self, value: float | None) -> None:
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 3600
        ):
            raise ValueError("the minimum interval must be seconds in (0, 3600] or None (none)")
        self._interval_s = value

    def ready(self) -> bool:
        interval = self._interval_s
        return interval is None or self._last is None or self._clock() - self._last >= interval

    def record(self) -> None:
        self._last = self._clock()

    def reset(self) -> None:
        self._last = None


class RequestQuota:
    """The account's API request quota (docs/provider-protocol.md §4.1, E120): `limit` admitted calls, then
    every call is rejected until the quota is set again or the simulator is reset. Not thread-safe on its
    own, like MinimumInterval."""

    def __init__(self, limit: int | None) -> None:
        self.used = 0
        self.limit = limit

    @property
    def limit(self) -> int | None:
        return self._limit

    @limit.setter
    def limit(self, value: int | None) -> None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValueError("the request quota must be a non-negative integer or None (no quota)")
        self._limit = value
        self.used = 0  # a quota set anew is a new quota period

    def available(self) -> bool:
        return self._limit is None or self.used < self._limit

    def record(self) -> None:
        self.used += 1

    def reset(self) -> None:
        self.used = 0
