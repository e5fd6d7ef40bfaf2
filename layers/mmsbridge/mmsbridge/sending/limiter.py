"""The shared limiter: every sender invocation takes its provider call slots from one item in the state table.

It is GCRA (the generic cell rate algorithm): the item holds the *theoretical arrival time* (TAT), the
earliest moment the next call may start. Taking a slot is a compare-and-set: slot = max(TAT, now), and TAT
moves to slot + 1/rate. The caller waits until its slot, so calls from all containers leave at least
1/rate apart: any one-second window holds at most `rate` of them, however many invocations run. Idle time
does not accumulate into a burst (slots are never in the past). On E113 the whole sender slows down:
`penalise` pushes TAT forward for everyone.

A container that works faster than one call per interval takes up to `want` consecutive slots in one write
(the records its batch still has to send), so the limiter costs one conditional write per few calls. One
that needs longer between calls (a slow provider, a slow store) could not use consecutive slots, so it
takes one at a time. A reserved slot is used only within one interval of its time: a container that fell
behind gives the missed slots up and reserves anew rather than sending late into someone else's slot.

`next_slot` is pure; `SharedLimiter` is the DynamoDB adapter.
"""

from __future__ import annotations

import random
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
_TRIES: Final = 50
_WORK_SAMPLE_MAX_S: Final = 5.0  # longer gaps are idle time between batches, not work
_CONFLICT_PAUSE_S: Final = 0.005  # up to this, at random, after losing a race: the racers spread out


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
    """Stored as whole microseconds: exact in DynamoDB and in a float, so compare-and-set compares equals."""
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
        self._clock = clock
        self._sleep = sleep
        self._random = random.Random()  # noqa: S311 - spreading retries, not security  # nosec B311
        self._tat: float | None = None  # last value seen: usually right, so one write takes a slot
        self._reserved: deque[float] = deque()  # this container's slots, not yet used
        self.reservations = 0  # conditional writes that took slots (for benchmarks and tests)
        self.missed = 0  # reserved slots given up because this container was late for them
        self._work_s: float | None = None  # smoothed time this container spends between two calls
        self._returned_at: float | None = None

    @property
    def interval_s(self) -> float:
        return 1.0 / self.rate_per_s

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
        for _ in range(_TRIES):
            tat = self._tat
            if tat is not None and tat - now > HORIZON_S:
                tat = now
            slot = next_slot(tat, now, self.rate_per_s, count)
            if slot.start - now > max_wait_s:
                self._tat = None  # read afresh next time: others may have moved on
                return False
            if self._compare_and_set(self._tat, slot.new_tat):
                self._tat = slot.new_tat
                self.reservations += 1
                self._reserved.extend(slot.start + i * self.interval_s for i in range(count))
                return True
            self._sleep(self._random.random() * _CONFLICT_PAUSE_S)
            now = self._clock()
        return False  # heavy contention: hand the work back rather than spin

    def penalise(self, seconds: float) -> None:
        """Hold every invocation's next call back by `seconds` from now (after an E113). Slots this container
        already holds stay valid: they were the limiter's to give."""
        for _ in range(_TRIES):
            target = self._clock() + min(seconds, MAX_PENALTY_S)
            if self._tat is not None and self._tat >= target:
                return
            if self._compare_and_set(self._tat, target):
                self._tat = target
                return

    def _compare_and_set(self, expected: float | None, new: float) -> bool:
        """Set TAT to `new` if it is still `expected`; on a conflict, learn the current value."""
        if expected is None:
            condition = "attribute_not_exists(tat)"
            values = {":new": _micros(new)}
        else:
            condition = "tat = :expected"
            values = {":new": _micros(new), ":expected": _micros(expected)}
        try:
            self._client.update_item(
                TableName=self._table.name,
                Key=to_dynamo(self._key),
                UpdateExpression="SET tat = :new",
                ConditionExpression=condition,
                ExpressionAttributeValues=to_dynamo(values),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return True
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            current: dict[str, Any] = from_dynamo(error.response.get("Item") or {})
            self._tat = int(current["tat"]) / 1_000_000 if "tat" in current else None
            return False
