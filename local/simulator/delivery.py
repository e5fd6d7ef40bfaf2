"""The account's postback queue (docs/provider-protocol.md §5.2): one sender thread delivers notifications
one at a time, in
due-time order, over a keep-alive session. A delivery not answered HTTP 200 in time is retried every
`retry_interval_s`, at most `max_retries` times; then it is given up (and logged)."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

from local.simulator.audit import Audit
from local.simulator.postbacks import Postback, PostbackSettings

__all__ = ["PostbackQueue"]

_HEADERS = {"Content-Type": "text/xml", "User-Agent": "mmsbridge-provider-simulator"}
_IDLE_WAIT_S = 0.5  # the longest the worker sleeps before looking at the stop flag again


@dataclass
class _Delivery:
    id: int
    copy: int  # 1..duplicates: copies share a body but are delivered (and retried) separately
    url: str
    body: bytes
    postback: Postback
    generation: int
    attempt: int = 0


class PostbackQueue:
    """A bounded due-time queue and its single delivery thread."""

    def __init__(
        self,
        *,
        audit: Audit,
        settings: Callable[[], PostbackSettings],
        stopping: threading.Event,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._audit = audit
        self._clock = clock  # due times are on this clock; the worker looks at it at least every 0.5 s
        self._settings = settings
        self._stopping = stopping
        self._condition = threading.Condition()
        self._heap: list[tuple[float, int, _Delivery]] = []
        self._order = itertools.count()
        self._ids = itertools.count(1)
        self._generation = 0
        self._in_flight = 0
        self._thread: threading.Thread | None = None

    # -- owner side ---------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="simulator-postbacks", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ends the worker (the owner has set `stopping`); an attempt in flight ends within its timeout."""
        with self._condition:
            self._condition.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def put(self, postback: Postback, body: bytes, *, url: str, due: float, copies: int = 1) -> int | None:
        """Queue `copies` deliveries of `body` at time `due` on the queue's clock.

        Returns the delivery id, or None if the queue is full (the drop is logged)."""
        limit = self._settings().queue_limit
        with self._condition:
            delivery_id = next(self._ids)
            if len(self._heap) + copies > limit:
                dropped = True
            else:
                dropped = False
                for copy in range(1, copies + 1):
                    delivery = _Delivery(delivery_id, copy, url, body, postback, self._generation)
                    heapq.heappush(self._heap, (due, next(self._order), delivery))
                self._condition.notify_all()
        if dropped:
            self._audit.postback({**_describe(postback), "delivery_id": delivery_id, "outcome": "dropped"})
            return None
        return delivery_id

    def clear(self) -> None:
        """Forget every queued delivery; one in flight is not retried."""
        with self._condition:
            self._heap.clear()
            self._generation += 1
            self._condition.notify_all()

    def pending(self) -> int:
        with self._condition:
            return len(self._heap) + self._in_flight

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until nothing is queued or in flight; False if that did not happen within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        with self._condition:
            while self._heap or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopping.is_set():
                    return False
                self._condition.wait(min(remaining, _IDLE_WAIT_S))
            return True

    # -- worker side --------------------------------------------------------------------------------------
    def _run(self) -> None:
        with requests.Session() as session:
            while not self._stopping.is_set():
                delivery = self._next_due()
                if delivery is not None:
                    try:
                        self._attempt(session, delivery)
                    finally:
                        with self._condition:
                            self._in_flight -= 1
                            self._condition.notify_all()

    def _next_due(self) -> _Delivery | None:
        with self._condition:
            if not self._heap:
                self._condition.wait(_IDLE_WAIT_S)
                return None
            wait = self._heap[0][0] - self._clock()
            if wait > 0:
                self._condition.wait(min(wait, _IDLE_WAIT_S))
                return None
            self._in_flight += 1
            return heapq.heappop(self._heap)[2]

    def _attempt(self, session: requests.Session, delivery: _Delivery) -> None:
        settings = self._settings()
        delivery.attempt += 1
        status, error = _post(session, delivery, settings.timeout_s)
        if status == 200:
            outcome = "delivered"
        elif delivery.attempt <= settings.max_retries and not self._stopping.is_set():
            outcome = "retry" if self._requeue(delivery, settings.retry_interval_s) else "gave_up"
        else:
            outcome = "gave_up"
        self._audit.postback(
            {
                **_describe(delivery.postback),
                "delivery_id": delivery.id,
                "copy": delivery.copy,
                "attempt": delivery.attempt,
                "http_status": status,
                "error": error,
                "outcome": outcome,
            }
        )

    def _requeue(self, delivery: _Delivery, after_s: float) -> bool:
        with self._condition:
            if delivery.generation != self._generation:
                return False  # the queue was cleared meanwhile
            heapq.heappush(self._heap, (self._clock() + after_s, next(self._order), delivery))
            return True


def _post(session: requests.Session, delivery: _Delivery, timeout_s: float) -> tuple[int | None, str | None]:
    """(HTTP status, None) or (None, the exception's name) for one POST of the body."""
    try:
        response = session.post(
            delivery.url,
            data=delivery.body,
            headers=_HEADERS,
            timeout=(min(timeout_s, 5.0), timeout_s),
            allow_redirects=False,
        )
    except requests.RequestException as error:
        return None, type(error).__name__
    return response.status_code, None


def _describe(postback: Postback) -> dict[str, str | None]:
    return {
        "origin": postback.origin,
        "code": postback.code,
        "tracking_id": postback.get("TRACKINGID"),
        "mms_id": postback.get("MMSID"),
    }
