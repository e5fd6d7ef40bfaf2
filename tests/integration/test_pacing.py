"""The shared limiter on moto: slots taken by many containers at once never overlap, a penalty holds
everyone back, and a TAT far in the future (a clock gone wrong) does not stall the sender."""

from __future__ import annotations

import itertools
import threading
import time
import uuid

import pytest

from mmsbridge.pacing import HEADROOM, HORIZON_S, SharedLimiter
from mmsbridge.state_table import StateTable


@pytest.fixture(scope="module")
def table(aws_stack, aws_clients):
    (spec,) = aws_stack.tables().values()
    return StateTable(aws_clients["dynamodb"], spec.name)


def key() -> dict[str, str]:
    return {"pk": f"PACE#test-{uuid.uuid4().hex}", "sk": "PACE"}


class Recording(SharedLimiter):
    """Records each slot it was given (new TAT minus one interval): the schedule, not wall-clock timing."""

    def __init__(self, *args, slots: list[float], lock: threading.Lock, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.slots, self.lock = slots, lock

    def acquire(self, *, max_wait_s: float) -> float | None:
        waited = super().acquire(max_wait_s=max_wait_s)
        if waited is not None:
            with self.lock:
                self.slots.append(self._tat - 1 / self.rate_per_s)
        return waited


def test_slots_from_concurrent_containers_never_overlap(table):
    rate, shared, slots, lock = 50.0, key(), [], threading.Lock()
    taken = []

    def container() -> None:
        limiter = Recording(table, rate, key=shared, slots=slots, lock=lock)
        taken.extend(limiter.acquire(max_wait_s=10) is not None for _ in range(15))

    threads = [threading.Thread(target=container) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(taken)
    assert len(slots) == 60
    ordered = sorted(slots)
    interval = 1 / (rate * HEADROOM)
    gaps = [b - a for a, b in itertools.pairwise(ordered)]
    assert min(gaps) >= interval - 1e-6  # no one-second window can hold more than the rate


def test_a_slot_too_far_away_is_not_taken(table):
    shared = key()
    first = SharedLimiter(table, 1.0, key=shared)
    assert first.acquire(max_wait_s=5) is not None
    second = SharedLimiter(table, 1.0, key=shared)
    assert second.acquire(max_wait_s=0.1) is None  # the next slot is ~1 s away: hand the work back


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
