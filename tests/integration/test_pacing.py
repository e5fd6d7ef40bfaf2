"""The shared limiter on moto: slots taken by many containers at once never overlap, a penalty holds
everyone back, and a TAT far in the future (a clock gone wrong) does not stall the sender."""

from __future__ import annotations

import itertools
import threading
import time
import uuid

import pytest

from mmsbridge.aws.state_table import StateTable
from mmsbridge.sending.limiter import HEADROOM, HORIZON_S, SharedLimiter


@pytest.fixture(scope="module")
def table(aws_stack, aws_clients):
    (spec,) = aws_stack.tables().values()
    return StateTable(aws_clients["dynamodb"], spec.name)


def key() -> dict[str, str]:
    return {"pk": f"PACE#test-{uuid.uuid4().hex}", "sk": "PACE"}


class Recording(SharedLimiter):
    """Records every slot it reserved: the schedule the limiter handed out, not wall-clock timing."""

    def __init__(self, *args, slots: list[float], lock: threading.Lock, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.slots, self.lock = slots, lock

    def _reserve(self, count: int, now: float, max_wait_s: float) -> bool:
        held = len(self._reserved)
        taken = super()._reserve(count, now, max_wait_s)
        with self.lock:
            self.slots.extend(list(self._reserved)[held:])
        return taken


def test_slots_from_concurrent_containers_never_overlap(table):
    rate, shared, slots, lock = 50.0, key(), [], threading.Lock()
    taken = []

    def container() -> None:
        limiter = Recording(table, rate, key=shared, slots=slots, lock=lock)
        taken.extend(limiter.acquire(max_wait_s=10, want=15 - i) is not None for i in range(15))

    threads = [threading.Thread(target=container) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(taken)
    assert len(slots) >= 60  # every call had a slot (a late container may have given some up)
    ordered = sorted(slots)
    interval = 1 / (rate * HEADROOM)
    gaps = [b - a for a, b in itertools.pairwise(ordered)]
    assert min(gaps) >= interval - 1e-6  # no one-second window can hold more than the rate


def test_a_slot_too_far_away_is_not_taken(table):
    shared = key()
    # One call a minute: the next slot is a minute away, however long the two calls below take.
    first = SharedLimiter(table, 1 / 60, key=shared)
    assert first.acquire(max_wait_s=5) is not None
    second = SharedLimiter(table, 1 / 60, key=shared)
    assert second.acquire(max_wait_s=10) is None  # hand the work back rather than wait that long


def test_a_penalty_holds_every_container_back(table):
    shared = key()
    SharedLimiter(table, 100.0, key=shared).penalise(30)
    other = SharedLimiter(table, 100.0, key=shared)
    assert other.acquire(max_wait_s=5) is None


def test_a_tat_beyond_the_horizon_is_reset(table):
    shared = key()
    skewed = SharedLimiter(table, 100.0, key=shared, clock=lambda: time.time() + HORIZON_S * 3)
    assert skewed.acquire(max_wait_s=1) is not None
    honest = SharedLimiter(table, 100.0, key=shared)
    waited = honest.acquire(max_wait_s=1)
    assert waited is not None
    assert waited < 1


class FakeTime:
    """A clock that only moves when the limiter sleeps (plus `overshoot`) or the test says so."""

    def __init__(self, overshoot: float = 0.0) -> None:
        self.now = time.time()
        self.overshoot = overshoot

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds + self.overshoot


def test_a_container_with_time_to_spare_reserves_its_batch_in_one_write(table):
    fake = FakeTime()
    limiter = SharedLimiter(table, 10.0, key=key(), clock=fake.clock, sleep=fake.sleep)
    for left in range(5, 0, -1):
        assert limiter.acquire(max_wait_s=5, want=left) is not None
    # The first call has no measure of the container's pace yet; then it takes the four it still needs.
    assert (limiter.reservations, limiter.missed) == (2, 0)


def test_a_slow_container_takes_one_slot_at_a_time(table):
    fake = FakeTime()
    limiter = SharedLimiter(table, 10.0, key=key(), clock=fake.clock, sleep=fake.sleep)
    for left in range(5, 0, -1):
        assert limiter.acquire(max_wait_s=5, want=left) is not None
        fake.now += 0.3  # each call takes longer than an interval
    assert (limiter.reservations, limiter.missed) == (5, 0)


def test_a_late_wake_gives_the_slot_up_a_few_times_then_goes(table):
    fake = FakeTime(overshoot=0.05)  # every sleep ends 50 ms late: more than a quarter interval
    shared = key()
    SharedLimiter(table, 10.0, key=shared).acquire(max_wait_s=5)  # someone else holds the next slot
    limiter = SharedLimiter(table, 10.0, key=shared, clock=fake.clock, sleep=fake.sleep)
    assert limiter.acquire(max_wait_s=5) is not None
    assert limiter.missed == 3
