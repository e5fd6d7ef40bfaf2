"""Sender goodput against the provider simulator's throughput limit L, with more concurrency than L allows.

The template's sender runs as the local stack runs it: the SQS event source mapping from template.yaml with
`MaximumConcurrency` C (C pollers, C containers of the real handler), on moto, calling the simulator, whose
limit answers E113 to any call over L in a sliding second. N requests are queued, then the mapping starts;
the run ends when every request's ledger is final.

Figures, from the simulator's audit log (what the provider saw) and the ledgers:
- goodput: accepted sends per second between the first and the last accepted one, as a fraction of L;
- the share of provider calls answered E113;
- lost: requests not accepted (must be 0); sent twice: accepted sends whose content was seen before (0).

Baseline, same run, same N, L and C: the same sender with the shared limiter switched off (every call
may go at once), so that E113 and its redrive are the only control loop ("hammer and back off").

Goodput is measured over the middle 80% of the accepted sends (steady state) and over the whole run.
Defaults: N 400, L 10/s, C 8. Everything here (moto, eight containers, the pollers, the simulator) shares
one machine; on two cores moto carries about 12-15 sends a second (each is five DynamoDB calls and its
share of SQS), which the baseline shows at L = 20: no E113 at all, yet well under L. L = 10 keeps the
local AWS below its own ceiling, so the figure measures the sender, not moto.

    .venv/bin/python -m bench.bench_sender [N] [L] [C] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import boto3

from local import stack as local_stack
from local.moto import MotoServer, free_port
from local.runtime import patched_environ
from local.simulator import DEFAULT_API_PATH
from local.simulator.__main__ import API_KEY_VARIABLE
from local.sqs_mapping import mappings_from_stack
from mmsbridge.aws.state_table import StateTable
from mmsbridge.sending.ledger_store import SendLedger
from mmsbridge.sending.limiter import SharedLimiter


@contextmanager
def limiter_off() -> Iterator[None]:
    """Every container's shared limiter lets each call go at once (the layer is one module in-process)."""
    acquire, penalise = SharedLimiter.acquire, SharedLimiter.penalise
    SharedLimiter.acquire = lambda self, **kwargs: 0.0  # type: ignore[method-assign]
    SharedLimiter.penalise = lambda self, seconds: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        SharedLimiter.acquire, SharedLimiter.penalise = acquire, penalise


@dataclass
class Run:
    label: str
    requests: int
    accepted: int
    goodput: float
    steady: float
    calls: int
    e113: int
    duplicates: int
    lost: int
    seconds: float

    def line(self, limit: int) -> str:
        share = self.e113 / self.calls if self.calls else 0.0
        return (
            f"{self.label:<34} goodput {self.steady:6.2f}/s = {self.steady / limit:5.3f} x L "
            f"(whole run {self.goodput / limit:5.3f} x L)   "
            f"E113 {self.e113:5d}/{self.calls:<5d} = {share:6.1%}   "
            f"lost {self.lost}   sent twice {self.duplicates}   ({self.seconds:.0f} s)"
        )


class Simulator:
    """The provider simulator in its own process (as the provider is), driven through its control API."""

    def __init__(self, port: int) -> None:
        self.base_url = f"http://127.0.0.1:{port}"
        self.api_url = f"{self.base_url}{DEFAULT_API_PATH}"

    def _call(self, route: str, payload: dict | None = None) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(
            f"{self.base_url}/_sim/{route}", data=data, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())

    def reset(self) -> None:
        self._call("reset", {})

    def stats(self) -> dict:
        return self._call("stats")

    def log(self) -> list[dict]:
        entries, since = [], 0
        while True:
            page = self._call(f"log?since={since}")
            if not page["entries"]:
                return entries
            entries += page["entries"]
            since = page["entries"][-1]["seq"]


@contextmanager
def simulator_process(api_key: str, limit: int) -> Iterator[Simulator]:
    port = free_port()
    command = [sys.executable, "-m", "local.simulator", "--port", str(port), "--throughput", str(limit)]
    process = subprocess.Popen(
        command,
        env={**os.environ, API_KEY_VARIABLE: api_key},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    simulator = Simulator(port)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                simulator.stats()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the simulator did not start") from None
                time.sleep(0.1)
        yield simulator
    finally:
        process.terminate()
        process.wait(timeout=10)


def _moment(entry: dict) -> float:
    return datetime.fromisoformat(entry["time"]).timestamp()


def run_once(
    label: str, *, moto: MotoServer, simulator: Simulator, n: int, limit: int, concurrency: int
) -> Run:
    overrides = {
        "SendThroughputPerSecond": str(limit),
        "SendMaxConcurrency": str(concurrency),
        "ProviderApiUrl": simulator.api_url,
    }
    stack = local_stack.load_local_stack(moto.endpoint_url, overrides=overrides)
    environment = local_stack.aws_environment(moto.endpoint_url, stack.region)
    with patched_environ(environment):
        sqs = boto3.client("sqs")
        dynamodb = boto3.client("dynamodb")
    functions = local_stack.load_functions(stack, moto.endpoint_url)
    (mapping,) = [m for m in mappings_from_stack(stack, functions) if m.name.startswith("SenderFunction")]
    table = StateTable(dynamodb, stack.tables()["StateTable"].name)
    ledger = SendLedger(table)

    tag = uuid.uuid4().hex[:8]
    ids = [f"bench-{tag}-{i:05d}" for i in range(n)]
    queue_url = stack.queues()["SendQueue"].url
    for start in range(0, n, 10):
        entries = [
            {
                "Id": str(i),
                "MessageBody": json.dumps(
                    {
                        "request_id": rid,
                        "action": "sendSMS",
                        "to": "17743199144",
                        "from": "47215",
                        "text": f"bench {rid}",
                    }
                ),
            }
            for i, rid in enumerate(ids[start : start + 10])
        ]
        sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
    simulator.reset()
    began = time.monotonic()
    with patched_environ(environment):
        mapping.start()
    # Progress from what the provider saw (reading every ledger each second would load moto itself).
    deadline = began + max(120.0, 6 * n / limit)
    try:
        while time.monotonic() < deadline:
            time.sleep(1.0)
            if simulator.stats()["accepted_sends"] >= n:
                break
        while time.monotonic() < deadline and not mapping.wait_idle(timeout=1):
            pass
    finally:
        mapping.stop()
    seconds = time.monotonic() - began
    limiters = [module.SENDING.sender.limiter for module in functions["SenderFunction"].modules]
    reservations = sum(limiter.reservations for limiter in limiters)
    missed = sum(limiter.missed for limiter in limiters)
    print(
        f"  {label}: {len(limiters)} containers, {reservations} slot reservations, {missed} slots missed",
        file=sys.stderr,
    )
    accepted_ids = sum(1 for rid in ids if (ledger.get(rid) or {}).get("status") == "ACCEPTED")
    log = simulator.log()
    successes = sorted(_moment(e) for e in log if e.get("type") == "api" and e.get("accepted"))
    span = successes[-1] - successes[0] if len(successes) > 1 else 0.0
    # Steady state: the middle 80% of the accepted sends, without the start (containers warming up,
    # batches being gathered) and the tail (fewer busy containers as the queue empties).
    low, high = round(len(successes) * 0.1), round(len(successes) * 0.9) - 1
    steady_span = successes[high] - successes[low] if high > low else 0.0
    stats = simulator.stats()
    return Run(
        label=label,
        requests=n,
        accepted=accepted_ids,
        goodput=(len(successes) - 1) / span if span else 0.0,
        steady=(high - low) / steady_span if steady_span else 0.0,
        calls=stats["calls"],
        e113=stats["e113"],
        duplicates=stats["duplicates"],
        lost=n - accepted_ids,
        seconds=seconds,
    )


FINAL = {"ACCEPTED", "REJECTED", "SUPPRESSED", "FAILED", "OUTCOME_UNKNOWN"}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("n", nargs="?", type=int, default=400, help="requests (default 400)")
    parser.add_argument("limit", nargs="?", type=int, default=10, help="the simulator's L per second (10)")
    parser.add_argument("concurrency", nargs="?", type=int, default=8, help="MaximumConcurrency C (8)")
    parser.add_argument("--json", action="store_true", help="print one JSON object (progress on stderr)")
    args = parser.parse_args(argv)
    n, limit, concurrency = args.n, args.limit, args.concurrency
    out = sys.stderr if args.json else sys.stdout
    print(
        f"sender: {n} sendSMS requests, simulator limit L = {limit}/s, MaximumConcurrency {concurrency}",
        file=out,
    )
    # The handlers' log lines (one JSON line per request) would bury the figures.
    with MotoServer() as moto, open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        base = local_stack.load_local_stack(moto.endpoint_url)
        local_stack.provision(base, moto.endpoint_url)
        key = local_stack.read_secret(local_stack.api_key_secret_name(base), moto.endpoint_url, base.region)
        with simulator_process(key, limit) as simulator:
            paced = run_once(
                "mmsbridge (shared limiter at L)",
                moto=moto,
                simulator=simulator,
                n=n,
                limit=limit,
                concurrency=concurrency,
            )
            print(paced.line(limit), file=out, flush=True)
            with limiter_off():
                hammer = run_once(
                    "baseline (E113 redrive only)",
                    moto=moto,
                    simulator=simulator,
                    n=n,
                    limit=limit,
                    concurrency=concurrency,
                )
            print(hammer.line(limit), file=out, flush=True)
    share = paced.e113 / paced.calls if paced.calls else 1.0
    ok = paced.steady >= 0.95 * limit and share <= 0.05 and paced.lost == 0 and paced.duplicates == 0
    if args.json:
        print(json.dumps({"limit": limit, "paced": asdict(paced), "baseline": asdict(hammer), "ok": ok}))
        return 0
    verdict = "met" if ok else "NOT met"
    print(f"target: goodput >= 0.95 x L, E113 <= 5% of calls, 0 lost, 0 sent twice: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
