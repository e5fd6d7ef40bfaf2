"""The shared limiter: every sender invocation takes its provider call slots from one item in the state table.

It is GCRA (the generic cell rate algorithm): the item holds the *theoretical arrival time* (TAT), the
earliest moment the next call may start. Taking slots moves TAT on by their span (count / rate) from
max(TAT, now); the caller waits until its slot, so calls from all containers leave at least 1/rate apart:
any one-second window holds at most `rate` of them, however many invocations run. Idle time does not
accumulate into a burst (slots are never in the past). On E113 the whole sender slows down: `penalise`
pushes TAT forward for everyone.

Each reservation is one conditional write that cannot lose to another container's: while the limiter is
busy (TAT at or after now) it is an atomic add, `SET tat = tat + span` (every container gets its own
consecutive span, in the order DynamoDB applies the writes), conditional on the first slot being within
the caller's wait; when it is idle (TAT before now, absent, or beyond the horizon) it is
`SET tat = now + span`, conditional on the item still being idle, and a container that loses that one race
(or whose cached TAT was stale) adds instead. A refused conditional write costs a write unit as much as a
granted one, and the item takes at most 1,000 a second (docs/scale.md): so no write is made to be lost.

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
            if next_slot(tat, now, self.rate_per_s, count).start - now > max_wait_s:
                self._tat = None  # read afresh next time: others may have moved on
                return False
            start = self._take(count, now, max_wait_s)
            if start is not None:
                self.reservations += 1
                self._reserved.extend(start + i * self.interval_s for i in range(count))
                return True
            self._sleep(self._random.random() * _CONFLICT_PAUSE_S)
            now = self._clock()
        return False  # the item kept changing under us: hand the work back rather than spin

    def _take(self, count: int, now: float, max_wait_s: float) -> float | None:
        """One write for `count` consecutive slots: the first slot's start; or None, nothing written, when the
        item was not as the cache said (its value is learnt: the caller looks again) or its next slot is
        more than `max_wait_s` away."""
        span = _micros(count / self.rate_per_s)
        bounds = {
            ":now": _micros(now),
            ":latest": _micros(now + min(max_wait_s, HORIZON_S)),  # the add never reserves beyond it
            ":horizon": _micros(now + HORIZON_S),
        }
        busy = self._tat is not None and now <= self._tat <= now + HORIZON_S
        for path in ("add", "set") if busy else ("set", "add"):
            if path == "add":
                written = self._update(
                    "SET tat = tat + :span",
                    "tat >= :now AND tat <= :latest",
                    {":span": span, ":now": bounds[":now"], ":latest": bounds[":latest"]},
                    returns_new=True,
                )
            else:
                written = self._update(
                    "SET tat = :new",
                    "attribute_not_exists(tat) OR tat < :now OR tat > :horizon",
                    {":new": bounds[":now"] + span, ":now": bounds[":now"], ":horizon": bounds[":horizon"]},
                )
            if written is not None:
                self._tat = (written if path == "add" else bounds[":now"] + span) / 1_000_000
                return self._tat - span / 1_000_000
        return None

    def penalise(self, seconds: float) -> None:
        """Hold every invocation's next call back by `seconds` from now (after an E113). Slots this container
        already holds stay valid: they were the limiter's to give. One write: TAT moves to the target unless
        it is already later."""
        target = _micros(self._clock() + min(seconds, MAX_PENALTY_S))
        if self._tat is not None and _micros(self._tat) >= target:
            return
        if self._update(
            "SET tat = :target", "attribute_not_exists(tat) OR tat < :target", {":target": target}
        ):
            self._tat = target / 1_000_000

    def _update(
        self, update: str, condition: str, values: dict[str, int], *, returns_new: bool = False
    ) -> int | None:
        """The write if its condition holds: TAT afterwards in microseconds (or 1 when it is not asked for);
        None when the condition failed, having learnt the item's current TAT."""
        try:
            answer = self._client.update_item(
                TableName=self._table.name,
                Key=to_dynamo(self._key),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=to_dynamo(values),
                ReturnValues="UPDATED_NEW" if returns_new else "NONE",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            current: dict[str, Any] = from_dynamo(error.response.get("Item") or {})
            self._tat = int(current["tat"]) / 1_000_000 if "tat" in current else None
            return None
        if returns_new:
            return int(from_dynamo(answer["Attributes"])["tat"])
        return 1
