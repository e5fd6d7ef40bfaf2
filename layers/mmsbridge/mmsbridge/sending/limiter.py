"""The shared limiter: every sender invocation takes its provider call slots from one item in the state table.

It is GCRA (the generic cell rate algorithm): the item holds the *theoretical arrival time* (TAT), the
earliest moment the next call may start, in whole microseconds. Taking `count` slots moves TAT on by their
span (count x the interval, 1/rate rounded up to a microsecond) from max(TAT, now); the caller waits until
its slot, so calls from all containers leave at least 1/rate apart: any one-second window holds at most
`rate` of them, however many invocations run. Idle time does not accumulate into a burst (slots are never
in the past). On E113 the whole sender slows down: `penalise` pushes TAT forward for everyone.

A reservation is one conditional UpdateItem, of one of two kinds, chosen from the TAT this container last
saw:
- busy (TAT at or after now): `SET tat = tat + span`, conditional on `now <= tat <= latest` (latest: now +
  the caller's wait), returning the new TAT; the slots are the span before it. An add does not depend on
  what the container last saw, so another container's reservation cannot make it fail: concurrent
  containers each get their own consecutive span, in the order DynamoDB applies them. Its condition bounds
  the first slot by the caller's wait, so it never takes slots nobody will wait for (they would be capacity
  lost); when the TAT this container last saw is already beyond that, nothing is written and the caller
  hands its work back (TAT never moves back but for the horizon's reset, so the item's is no nearer).
- idle (TAT before now, absent, or beyond the horizon, a clock gone wrong): `SET tat = now + span`,
  conditional on the item still being so; the slots start now.
A write is refused only when the item was not as last seen (ReturnValuesOnConditionCheckFailure gives its
TAT, and the container decides again from it, with the same `now`). TAT only moves on, so an item seen busy
stays busy for that `now`: a reservation takes at most two refused writes, and usually none (a container's
first, one late for its last slot, one that races another to wake an idle limiter, an item now beyond the
wait). That matters: a refused conditional write costs a write unit as much as a granted one, and the item
takes at most 1,000 a second (docs/scale.md). `penalise` is one write too: `SET tat = target` unless TAT is
already later.

A container that works faster than one call per interval takes up to `want` consecutive slots in one write
(the records its batch still has to send), so the limiter costs one write per few calls. One that needs
longer between calls (a slow provider, a slow store) could not use consecutive slots, so it takes one at a
time. A reserved slot is used only up to a quarter interval (at least 25 ms) after its time: a container
that fell behind gives the missed slots up and reserves anew rather than sending late into someone else's
slot (after three such misses it sends on the late one).

`next_slot` states the rule in pure form; `SharedLimiter` carries it out on the DynamoDB item.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from botocore.exceptions import ClientError

from mmsbridge.aws.state_table import StateTable, from_dynamo, to_dynamo

__all__ = ["HEADROOM", "SharedLimiter", "Slot", "next_slot"]

KEY: Final = {"pk": "PACE#provider", "sk": "PACE"}
# A TAT further ahead than this is not a queue of waiting calls but a clock gone wrong (or a stale
# penalty): it is reset to now instead of stalling every sender.
HORIZON_S: Final = 300.0
MAX_PENALTY_S: Final = 60.0
# Calls are spaced for this share of the agreed rate: network jitter must not push two calls into one
# provider window and turn pacing into E113s.
HEADROOM: Final = 0.97
# A slot is used only this share of an interval after its time: a call that leaves later lands closer to
# the next caller's, and two close calls can tip the provider's one-second window (E113).
LATE_FRACTION: Final = 0.25
# At high rates a quarter interval is shorter than the reservation's own DynamoDB write, so a slot taken
# "now" would already be late when the write returns. Calls up to d late put at most (1 + d) x 0.97 x L
# slots' calls in any one second: under L while d < 30 ms.
_LATE_FLOOR_S: Final = 0.025
_LATE_TRIES: Final = 3
_TRIES: Final = 8  # a reservation needs at most three writes unless clocks disagree by minutes
_WORK_SAMPLE_MAX_S: Final = 5.0  # longer gaps are idle time between batches, not work


@dataclass(frozen=True)
class Slot:
    start: float  # epoch seconds; the call may leave at this moment
    new_tat: float


def next_slot(tat: float | None, now: float, rate_per_s: float, count: int = 1) -> Slot:
    """The first of `count` consecutive slots, 1/rate apart, when the limiter's TAT is `tat` (None: never
    used) at `now`; `new_tat` is where the next caller's slots begin."""
    if rate_per_s <= 0:
        raise ValueError("rate_per_s must be > 0")
    if count < 1:
        raise ValueError("count must be >= 1")
    start = now if tat is None else max(tat, now)
    return Slot(start=start, new_tat=start + count / rate_per_s)


def _micros(value: float) -> int:
    """TAT is stored as whole microseconds: exact in DynamoDB and in a float."""
    return round(value * 1_000_000)


class SharedLimiter:
    def __init__(
        self,
        table: StateTable,
        rate_per_s: float,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        key: dict[str, str] | None = None,
    ) -> None:
        self._key = key or KEY
        self._table = table
        self._client = table.client
        self.rate_per_s = rate_per_s * HEADROOM
        if self.rate_per_s <= 0:
            raise ValueError("rate_per_s must be > 0")
        # Whole microseconds, rounded up: slots a whole number of them apart are never closer than 1/rate.
        self._interval_us = math.ceil(1_000_000 / self.rate_per_s)
        self._clock = clock
        self._sleep = sleep
        # TAT as last seen: never ahead of the item's (TAT only moves on, but for the horizon's reset), and
        # usually right about whether the limiter is busy, so one write takes the slots.
        self._tat: float | None = None
        self._reserved: deque[float] = deque()  # this container's slots, not yet used
        self.reservations = 0  # writes that took slots (for benchmarks and tests)
        self.missed = 0  # reserved slots given up because this container was late for them
        self._work_s: float | None = None  # smoothed time this container spends between two calls
        self._returned_at: float | None = None

    @property
    def interval_s(self) -> float:
        return self._interval_us / 1_000_000

    def acquire(self, *, max_wait_s: float, want: int = 1) -> float | None:
        """Wait for this container's next slot, reserving up to `want` more first if it has none left.
        Returns the seconds waited, or None (nothing taken) when the next free slot is more than
        `max_wait_s` away: the caller should hand its work back instead of waiting."""
        began = self._clock()
        if self._returned_at is not None and began - self._returned_at < _WORK_SAMPLE_MAX_S:
            sample = began - self._returned_at
            self._work_s = sample if self._work_s is None else 0.8 * self._work_s + 0.2 * sample
        tolerance = max(LATE_FRACTION * self.interval_s, _LATE_FLOOR_S)
        for attempt in range(_LATE_TRIES + 1):
            now = self._clock()
            while self._reserved and self._reserved[0] + tolerance < now:
                self._reserved.popleft()  # missed: using it now would crowd someone else's slot
                self.missed += 1
            left = max_wait_s - (now - began)
            if not self._reserved:
                # Consecutive slots only for a container with time to spare between calls (half an interval).
                keeps_pace = self._work_s is not None and self._work_s < 0.5 * self.interval_s
                if not self._reserve(max(1, want) if keeps_pace else 1, now, max(0.0, left)):
                    return None
            elif self._reserved[0] - now > left:
                return None
            slot = self._reserved.popleft()
            wait = max(0.0, slot - self._clock())
            if wait:
                self._sleep(wait)
            woke = self._clock()
            # Woke too late for the slot (a busy machine): take the next one, a few times at most.
            if woke - slot <= tolerance or attempt == _LATE_TRIES:
                break
            self.missed += 1
        self._returned_at = woke
        return woke - began

    def _reserve(self, count: int, now: float, max_wait_s: float) -> bool:
        """Reserve `count` consecutive slots, the first at most `max_wait_s` after `now`: one write when the
        cache is right about the item being busy or idle. Every try uses the same `now`, so a refusal can
        only be the item changing state under us once each way: at most two refused writes, then a slot or
        a slot too far away."""
        span = count * self._interval_us
        now_us = _micros(now)
        latest = _micros(now + min(max_wait_s, HORIZON_S))  # the first slot the caller would wait for
        horizon = _micros(now + HORIZON_S)
        for _ in range(_TRIES):
            tat = None if self._tat is None else _micros(self._tat)
            if tat is not None and now_us <= tat <= horizon:  # busy: the next slot is the item's
                if tat > latest:
                    return False  # nothing written: the item's TAT never moves back, so it is no nearer
                new = self._update(
                    "SET tat = tat + :span",
                    "tat >= :now AND tat <= :latest",
                    {":span": span, ":now": now_us, ":latest": latest},
                )
            else:  # idle, never used or beyond the horizon: the next slot is now
                new = self._update(
                    "SET tat = :new",
                    "attribute_not_exists(tat) OR tat < :now OR tat > :horizon",
                    {":new": now_us + span, ":now": now_us, ":horizon": horizon},
                )
            if new is not None:
                self._tat = new / 1_000_000
                self.reservations += 1
                first = new - span
                self._reserved.extend((first + i * self._interval_us) / 1_000_000 for i in range(count))
                return True
        return False  # the item kept changing under us (clocks far apart): hand the work back

    def penalise(self, seconds: float) -> None:
        """Hold every invocation's next call back by `seconds` from now (after an E113). Slots this container
        already holds stay valid: they were the limiter's to give. One write: TAT moves to the target unless
        it is already later."""
        target = _micros(self._clock() + min(seconds, MAX_PENALTY_S))
        if self._tat is not None and _micros(self._tat) >= target:
            return
        new = self._update(
            "SET tat = :target", "attribute_not_exists(tat) OR tat < :target", {":target": target}
        )
        if new is not None:
            self._tat = new / 1_000_000

    def _update(self, update: str, condition: str, values: dict[str, int]) -> int | None:
        """The write if its condition holds: TAT afterwards, in microseconds. None when the condition failed,
        having learnt the item's current TAT."""
        try:
            answer = self._client.update_item(
                TableName=self._table.name,
                Key=to_dynamo(self._key),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=to_dynamo(values),
                ReturnValues="UPDATED_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            current: dict[str, Any] = from_dynamo(error.response.get("Item") or {})
            self._tat = int(current["tat"]) / 1_000_000 if "tat" in current else None
            return None
        return int(from_dynamo(answer["Attributes"])["tat"])
