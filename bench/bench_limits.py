"""One hot item's writes on moto: the shared limiter's conditional writes and one partition, each against a
baseline measured in the same run on the same local moto.

- hot item: the limiter's own conditional writes (SharedLimiter.acquire, want=1) at a configured rate far
  above what moto can carry (100,000/s), so that no call waits for its slot and every acquire is one
  conditional UpdateItem on the one item PACE#.../PACE, from 1, 4 and 8 threads (each thread a container
  with its own limiter and client). Counted from the botocore calls: conditional writes that took slots,
  and refused writes (ConditionalCheckFailed: the item was not as the thread's cache said, idle or busy;
  the limiter then decides again from the value the refusal returned). Baseline: unconditional PutItem
  of distinct items of the same size from the same number of threads. Figures: writes/s, the refused
  share of attempts, ratio to baseline.
- paced: slots granted per second by limiters configured at 1,000/s (spaced at 97% of it) from 4 and 8
  threads, with want=1 and want=10 (up to ten consecutive slots in one write), and the conditional writes
  (and attempts, lost races included) per granted slot. On DynamoDB one item takes at most 1,000 write
  units a second, and a failed conditional write costs one too, so attempts/slot x calls/s is what a busy
  sender spends on the limiter item and must stay well under 1,000. Baseline: the configured rate x 0.97.
  A write that returns more than 25 ms after its slot loses the slot (the limiter's late floor) and
  reserves again: the JSON counts those ("missed") and the acquires that got no slot
  ("handed_back").
- partition: PutItem of ~1 KB items sharing one partition key (distinct sort keys) against the same items
  under distinct partition keys, 8 threads. moto has no partition throttling; the AWS limit is 1,000 WCU/s
  per partition: reported only, no target.

Each figure is taken over a window of --seconds after a short warm-up, every thread running throughout.
Every DynamoDB write on the local moto runs under one lock (local/moto_main.py restores single-item
atomicity that way), so one item and many items queue alike there, and this process's threads share
one interpreter: moto's figures are an upper bound of what the code can drive locally on this machine,
not AWS's limits (which the paced figures are to be read against). All figures are reported, no targets.
Run: .venv/bin/python -m bench.bench_limits [--seconds S] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from bench.common import local_aws
from mmsbridge.aws.state_table import StateTable
from mmsbridge.sending.limiter import HEADROOM, SharedLimiter

HOT_RATE = 100_000.0  # far above moto: every acquire is one conditional write, none waits
PACED_RATE = 1000.0
HOT_THREADS = (1, 4, 8)
PACED_THREADS = (4, 8)
WANTS = (1, 10)
PARTITION_THREADS = 8
ITEM_BYTES = 1024
WARMUP_S = 0.3
MAX_WAIT_S = 1.0
LOST_RACE = "ConditionalCheckFailedException"


class Tally:
    """Counts shared by the threads: botocore calls by (operation, outcome) and the benchmark's own units."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()

    def add(self, what: str, outcome: str = "ok", n: int = 1) -> None:
        with self._lock:
            self._counts[what, outcome] += n

    def snapshot(self) -> Counter[tuple[str, str]]:
        with self._lock:
            return Counter(self._counts)

    @contextmanager
    def counting_calls(self) -> Iterator[Tally]:
        """Every AWS call this process makes meanwhile is counted: "ok" or its error code."""
        original = BaseClient._make_api_call
        tally = self

        def counted(client: BaseClient, operation_name: str, api_params: dict) -> Any:
            try:
                answer = original(client, operation_name, api_params)
            except ClientError as error:
                tally.add(operation_name, error.response.get("Error", {}).get("Code", "error"))
                raise
            tally.add(operation_name)
            return answer

        BaseClient._make_api_call = counted
        try:
            yield self
        finally:
            BaseClient._make_api_call = original


def window(
    tally: Tally, steps: list[Callable[[], None]], seconds: float
) -> tuple[Counter[tuple[str, str]], float]:
    """Each step repeated on its own thread; what the tally counted over `seconds` after a warm-up."""
    stop = threading.Event()

    def loop(step: Callable[[], None]) -> None:
        while not stop.is_set():
            step()

    threads = [threading.Thread(target=loop, args=(step,), daemon=True) for step in steps]
    for thread in threads:
        thread.start()
    time.sleep(WARMUP_S)
    before, started = tally.snapshot(), time.perf_counter()
    time.sleep(seconds)
    after, elapsed = tally.snapshot(), time.perf_counter() - started
    stop.set()
    for thread in threads:
        thread.join()
    after.subtract(before)
    return after, elapsed


def limiter_steps(
    tally: Tally, clients: list[Any], table: str, rate: float, want: int
) -> list[Callable[[], None]]:
    """One limiter per thread (a container each), all on one fresh limiter item."""
    key = {"pk": f"PACE#bench-{uuid.uuid4().hex[:12]}", "sk": "PACE"}

    def step_of(client: Any) -> Callable[[], None]:
        limiter = SharedLimiter(StateTable(client, table), rate, key=key)

        def step() -> None:
            missed = limiter.missed
            waited = limiter.acquire(max_wait_s=MAX_WAIT_S, want=want)
            tally.add("slot", "granted" if waited is not None else "handed back")
            if limiter.missed > missed:
                tally.add("slot", "missed", limiter.missed - missed)

        return step

    return [step_of(client) for client in clients]


def put_steps(
    tally: Tally, clients: list[Any], table: str, key_of: Callable[[int, int], dict[str, str]], padding: int
) -> list[Callable[[], None]]:
    """PutItem, unconditional, of the item `key_of(thread, n)` for n = 0, 1, ..."""
    body = "x" * padding

    def step_of(thread: int, client: Any) -> Callable[[], None]:
        counter = iter(range(sys.maxsize))

        def step() -> None:
            item = {**key_of(thread, next(counter)), "tat": str(time.time_ns() // 1000)}
            item = {name: ({"N": v} if name == "tat" else {"S": v}) for name, v in item.items()}
            if body:
                item["body"] = {"S": body}
            client.put_item(TableName=table, Item=item)

        return step

    return [step_of(thread, client) for thread, client in enumerate(clients)]


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def hot_item(tally: Tally, clients: list[Any], table: str, threads: int, seconds: float) -> dict[str, Any]:
    run = uuid.uuid4().hex[:12]
    counts, elapsed = window(
        tally,
        put_steps(
            tally, clients[:threads], table, lambda t, n: {"pk": f"LIMITS#{run}#{t}#{n}", "sk": "PACE"}, 0
        ),
        seconds,
    )
    put_per_s = counts["PutItem", "ok"] / elapsed
    counts, elapsed = window(tally, limiter_steps(tally, clients[:threads], table, HOT_RATE, 1), seconds)
    writes, lost = counts["UpdateItem", "ok"], counts["UpdateItem", LOST_RACE]
    result = {
        "threads": threads,
        "writes_per_s": writes / elapsed,
        "lost_races_per_s": lost / elapsed,
        "attempts_per_s": (writes + lost) / elapsed,
        "lost_share": lost / (writes + lost) if writes + lost else 0.0,
        "slots_per_s": counts["slot", "granted"] / elapsed,
        "handed_back": counts["slot", "handed back"],
        "missed": counts["slot", "missed"],
        "put_per_s": put_per_s,
    }
    result["ratio"] = result["writes_per_s"] / put_per_s
    progress(
        f"hot item, threads {threads}: {result['writes_per_s']:.0f} conditional writes/s "
        f"({result['lost_share']:.0%} of attempts lost the race) | PutItem of distinct items "
        f"{put_per_s:.0f}/s | ratio {result['ratio']:.2f} | slots missed {result['missed']}, handed back "
        f"{result['handed_back']}"
    )
    return result


def paced(
    tally: Tally, clients: list[Any], table: str, threads: int, want: int, seconds: float
) -> dict[str, Any]:
    counts, elapsed = window(tally, limiter_steps(tally, clients[:threads], table, PACED_RATE, want), seconds)
    slots, writes, lost = (
        counts["slot", "granted"],
        counts["UpdateItem", "ok"],
        counts["UpdateItem", LOST_RACE],
    )
    result = {
        "threads": threads,
        "want": want,
        "rate": PACED_RATE,
        "spaced_rate": PACED_RATE * HEADROOM,
        "slots_per_s": slots / elapsed,
        "writes_per_s": writes / elapsed,
        "attempts_per_s": (writes + lost) / elapsed,
        "writes_per_slot": writes / slots if slots else None,
        "attempts_per_slot": (writes + lost) / slots if slots else None,
        "lost_share": lost / (writes + lost) if writes + lost else 0.0,
        "handed_back": counts["slot", "handed back"],
        "missed": counts["slot", "missed"],
    }
    progress(
        f"paced at {PACED_RATE:.0f}/s, threads {threads}, want={want}: {result['slots_per_s']:.0f} slots/s "
        f"| {result['writes_per_s']:.0f} writes/s, {result['attempts_per_s']:.0f} attempts/s on the item "
        f"| {result['writes_per_slot'] or 0:.3f} writes/slot, {result['attempts_per_slot'] or 0:.3f} "
        f"attempts/slot | slots missed {result['missed']}, handed back {result['handed_back']}"
    )
    return result


def partition(tally: Tally, clients: list[Any], table: str, seconds: float) -> dict[str, Any]:
    run = uuid.uuid4().hex[:12]
    padding = ITEM_BYTES - 64  # the keys and the number make up the rest of about 1 KB
    clients = clients[:PARTITION_THREADS]
    counts, elapsed = window(
        tally,
        put_steps(tally, clients, table, lambda t, n: {"pk": f"LIMITS#{run}#{t}#{n}", "sk": "ITEM"}, padding),
        seconds,
    )
    distinct = counts["PutItem", "ok"] / elapsed
    counts, elapsed = window(
        tally,
        put_steps(tally, clients, table, lambda t, n: {"pk": f"LIMITS#{run}#one", "sk": f"{t}#{n}"}, padding),
        seconds,
    )
    one = counts["PutItem", "ok"] / elapsed
    result = {
        "threads": len(clients),
        "item_bytes": ITEM_BYTES,
        "one_partition_per_s": one,
        "distinct_partitions_per_s": distinct,
        "ratio": one / distinct,
    }
    progress(
        f"partition, {len(clients)} threads, ~1 KB PutItem: one partition key {one:.0f}/s | distinct "
        f"partition keys {distinct:.0f}/s | ratio {result['ratio']:.2f} (moto has no partition throttling; "
        f"the AWS limit is 1,000 WCU/s per partition)"
    )
    return result


def measure(table: str, seconds: float) -> dict[str, Any]:
    tally = Tally()
    threads = max(*HOT_THREADS, *PACED_THREADS, PARTITION_THREADS)
    clients = [boto3.client("dynamodb") for _ in range(threads)]  # created here: sessions are not thread-safe
    with tally.counting_calls():
        return {
            "seconds": seconds,
            "hot_rate": HOT_RATE,
            "hot_item": [hot_item(tally, clients, table, n, seconds) for n in HOT_THREADS],
            "paced": [
                paced(tally, clients, table, n, want, seconds) for n in PACED_THREADS for want in WANTS
            ],
            "partition": partition(tally, clients, table, seconds),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each measured window")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    with local_aws() as (_, stack):
        result = measure(stack.tables()["StateTable"].name, args.seconds)
    if args.json:
        print(json.dumps(result))
        return 0
    for hot in result["hot_item"]:
        print(
            f"one item, threads {hot['threads']}: {hot['writes_per_s']:.0f} conditional writes/s, "
            f"{hot['lost_share']:.0%} lost races | distinct-item PutItem {hot['put_per_s']:.0f}/s | "
            f"ratio {hot['ratio']:.2f}"
        )
    for pace in result["paced"]:
        print(
            f"limiter at {pace['rate']:.0f}/s, threads {pace['threads']}, want={pace['want']}: "
            f"{pace['slots_per_s']:.0f} slots/s (spaced at {pace['spaced_rate']:.0f}/s) | "
            f"{pace['writes_per_slot'] or 0:.3f} writes/slot, "
            f"{pace['attempts_per_slot'] or 0:.3f} attempts/slot"
        )
    part = result["partition"]
    print(
        f"one partition key, {part['threads']} threads, ~1 KB: {part['one_partition_per_s']:.0f} PutItem/s | "
        f"distinct keys {part['distinct_partitions_per_s']:.0f}/s | ratio {part['ratio']:.2f} "
        "(moto has no partition throttling; the AWS limit is 1,000 WCU/s per partition)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
