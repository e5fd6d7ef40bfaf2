"""The account's throughput limit (docs/provider-protocol.md §4.2): at most `limit` calls in any sliding
window of `window_s`,
counted across every client. A call over the limit is rejected (E113), never queued, and does not use up
the window. Counted over all actions together (`per_action=False`, the default) or per action."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

__all__ = ["SlidingWindowLimiter"]


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
