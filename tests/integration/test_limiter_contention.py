"""The shared limiter under contention, on moto: while the limiter is busy a reservation is one write that no
other container's write can refuse (an atomic add), a refused write is the exception (a container's first
look, an idle moment), and the slots handed out across containers stay at least one interval apart however
their writes interleave. Each refused conditional write costs a write unit on the one limiter item."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from mmsbridge.aws.state_table import StateTable, from_dynamo, to_dynamo
from mmsbridge.sending.limiter import SharedLimiter
from tests.integration.test_pacing import Recording, key


@pytest.fixture(scope="module")
def table(aws_stack, aws_clients):
    (spec,) = aws_stack.tables().values()
    return StateTable(aws_clients["dynamodb"], spec.name)


class Writes:
    """One container's DynamoDB client, counting its UpdateItem calls: granted and refused. `before` runs
    ahead of each, so that a rival can write between this container's look at the item and its write."""

    def __init__(self, client, before=None) -> None:
        self._client, self._before = client, before
        self.granted = self.refused = 0

    def update_item(self, **kwargs):
        if self._before is not None:
            self._before()
        try:
            answer = self._client.update_item(**kwargs)
        except self._client.exceptions.ConditionalCheckFailedException:
            self.refused += 1
            raise
        self.granted += 1
        return answer

    def __getattr__(self, name):
        return getattr(self._client, name)


def micros(slots: list[float]) -> list[int]:
    """The slots as the item's whole microseconds (exact: an epoch in seconds is not)."""
    return sorted(round(slot * 1_000_000) for slot in slots)


def spaced(slots: list[float], limiter: SharedLimiter) -> bool:
    """No two slots closer than one interval: no one-second window holds more than the rate."""
    interval_us = round(limiter.interval_s * 1_000_000)
    return all(b - a >= interval_us for a, b in itertools.pairwise(micros(slots)))


def test_busy_containers_take_each_slot_with_one_write_and_none_is_refused_after_their_first(table):
    """Six containers, one slot a write each: the limiter stays busy (each holds the next slot of six), so
    every reservation is an atomic add. The only refused writes are each container's first look (it has
    not seen the item: it guesses idle) and one for each slot a container was late for (its own last slot
    then says idle); a compare-and-set, refused whenever another container wrote since its last look, loses
    more writes than it makes here and hands slots back."""
    rate, shared, slots, lock, containers = 40.0, key(), [], threading.Lock(), 6
    limiters: list[tuple[SharedLimiter, Writes]] = []
    taken: list[bool] = []

    def container() -> None:
        writes = Writes(table.client)
        limiter = Recording(StateTable(writes, table.name), rate, key=shared, slots=slots, lock=lock)
        with lock:
            limiters.append((limiter, writes))
        for _ in range(10):
            waited = limiter.acquire(max_wait_s=30, want=1)
            with lock:
                taken.append(waited is not None)

    threads = [threading.Thread(target=container) for _ in range(containers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(taken) == 60
    assert all(taken)
    reservations = sum(limiter.reservations for limiter, _ in limiters)
    missed = sum(limiter.missed for limiter, _ in limiters)
    granted = sum(writes.granted for _, writes in limiters)
    refused = sum(writes.refused for _, writes in limiters)
    assert granted == reservations == 60 + missed  # one write a slot, and one more only for a missed slot
    # Allowed 3 more: a thread held up for more than an interval between two calls (a loaded machine) comes
    # back with its last slot saying idle, as after a missed one.
    assert refused <= containers - 1 + missed + 3, f"{refused} refused for {reservations} reservations"
    assert len(slots) == reservations
    assert spaced(slots, limiters[0][0])


def test_a_rival_writing_between_every_look_and_write_cannot_make_a_reservation_fail(table):
    """The worst interleaving for a compare-and-set: before each of this container's writes, another one
    takes a slot, so what this container last saw is always stale. An add does not depend on it: after the
    first look (refused once, which teaches it the item is busy) each of its reservations is one write."""
    rate, shared = 20.0, key()
    slots: list[float] = []  # both containers': the schedule the limiter handed out
    # Time stands still and neither waits for its slots: the item stays busy, no slot is ever late.
    lock, frozen = threading.Lock(), time.time()
    stopped = {"clock": lambda: frozen, "sleep": lambda _: None}
    rival_writes = Writes(table.client)
    rival = Recording(
        StateTable(rival_writes, table.name), rate, key=shared, slots=slots, lock=lock, **stopped
    )

    def rival_takes_a_slot() -> None:
        assert rival.acquire(max_wait_s=60) is not None

    writes = Writes(table.client, before=rival_takes_a_slot)
    limiter = Recording(StateTable(writes, table.name), rate, key=shared, slots=slots, lock=lock, **stopped)
    for _ in range(10):
        assert limiter.acquire(max_wait_s=60) is not None
    assert (limiter.reservations, writes.granted, writes.refused) == (10, 10, 1)
    assert (rival.reservations, rival_writes.granted, rival_writes.refused) == (11, 11, 0)
    assert len(slots) == 21
    assert spaced(slots, limiter)


def test_a_stale_cache_near_an_item_now_far_costs_one_refused_write_and_takes_nothing(table):
    """The add is bounded by the caller's wait: when the item has moved beyond it since this container last
    looked (here another container's penalty), the write is refused and nothing is taken, no slot that
    nobody would wait for; while what it saw is still beyond its wait, it hands back without writing."""
    shared = key()
    writes = Writes(table.client)
    limiter = SharedLimiter(StateTable(writes, table.name), 10.0, key=shared)
    assert limiter.acquire(max_wait_s=5) is not None  # sees the item near: its next slot a tenth away
    SharedLimiter(table, 10.0, key=shared).penalise(30)
    held = table.client.get_item(TableName=table.name, Key=to_dynamo(shared), ConsistentRead=True)["Item"]
    granted, refused = writes.granted, writes.refused  # one write, or two if it woke late for its slot

    assert limiter.acquire(max_wait_s=5) is None
    assert (writes.granted, writes.refused) == (granted, refused + 1)
    assert limiter.acquire(max_wait_s=5) is None
    assert (writes.granted, writes.refused) == (granted, refused + 1)  # it knows: no write at all
    item = table.client.get_item(TableName=table.name, Key=to_dynamo(shared), ConsistentRead=True)["Item"]
    assert from_dynamo(item)["tat"] == from_dynamo(held)["tat"]  # nothing reserved beyond the wait
    assert int(from_dynamo(item)["tat"]) / 1_000_000 - time.time() > 25
