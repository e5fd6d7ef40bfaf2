"""`python -m local.demo` (`make demo`): the send loop end to end, on a local stack of its own.

It starts the whole local stack on free ports (so it runs beside `make run`), opts 13125550199 out through
the provider simulator, puts the five example requests of events/sender on the send queue (request ids
suffixed with this run's id), waits until each has a final status and each accepted one a final delivery
state, prints every request's timeline followed by the events the stack published about it (read from the
local stack's events watch queue, matched by request id and tracking id) and a summary, and stops the
stack. Exit 0 when the loop settled and its events arrived, 1 when not within --timeout (saying what is
missing).

The handlers' logs and metric lines, the gateway's access lines and moto's log go to --log-dir, not the
console. --full also prints each request as the operator CLI shows it (`python -m ops request ID`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import boto3

from local import stack as local_stack
from local.runtime import patched_environ
from mmsbridge.aws.state_table import StateTable
from mmsbridge.core.states import MessageState
from mmsbridge.sending.ledger import FINAL, SendStatus
from ops import cli as ops_cli
from ops import render, sends, watch

EXAMPLES_DIR = local_stack.ROOT / "events" / "sender"
EXAMPLES = ("sms", "saved-mms", "inline-mms", "invalid-number", "opted-out")
OPTED_OUT = "13125550199"  # opted-out.json's number
OPT_OUT_CAMPAIGN = "1001"
DEFAULT_LOG_DIR = local_stack.ROOT / ".local" / "demo"
DEFAULT_TIMEOUT_S = 60.0
POLL_S = 0.25
EVENTS_GRACE_S = 10.0  # the events may trail the settled state: at least this long to wait for them
# Delivery reports within a second of the send; a postback the ingest did not take is retried within a
# second (the account's default is five minutes, longer than the demo waits).
POSTBACKS = {"first_delay_s": 0.2, "outcome_delay_s": 0.5, "retry_interval_s": 1.0, "timeout_s": 5.0}


def example_requests(run_id: str) -> list[dict[str, Any]]:
    """The example send requests, each request_id suffixed with `-<run_id>` so that every run is new."""
    requests = []
    for name in EXAMPLES:
        body = json.loads((EXAMPLES_DIR / f"{name}.json").read_text())
        body["request_id"] = f"{body['request_id']}-{run_id}"
        requests.append(body)
    return requests


def settled(document: dict[str, Any] | None) -> bool:
    """A final ledger status and, once accepted, a final delivery state."""
    if document is None or document["status"] not in FINAL:
        return False
    if document["status"] != SendStatus.ACCEPTED:
        return True
    state = (document.get("message") or {}).get("state")
    return state in MessageState.__members__ and MessageState(state).terminal


def outcome(document: dict[str, Any] | None) -> str:
    """Where a request ended (or is): its message's state once accepted, else its ledger status."""
    if document is None:
        return "not taken from the send queue yet"
    if document["status"] == SendStatus.ACCEPTED:
        message = document.get("message") or {}
        return str(message.get("state") or "ACCEPTED (no delivery report yet)")
    return str(document["status"])


def missing(documents: dict[str, dict[str, Any] | None]) -> list[str]:
    """One line per request that has not settled: what it is still waiting for."""
    lines = []
    for request_id, document in documents.items():
        if settled(document):
            continue
        if document is None:
            why = "no ledger: the sender has not taken it from the send queue"
        elif document["status"] not in FINAL:
            why = f"{document['status']}: {document['meaning']}"
        else:
            why = f"ACCEPTED, message state {outcome(document)}: waiting for its final delivery report"
        lines.append(f"  {render.cell(request_id)}: {why}")
    return lines


def _clock(stamp: Any, raw: Any = None) -> str:
    """`2026-11-25T20:25:38.092323Z` as `20:25:38.092` (UTC); to the second when `raw`, the provider's own
    TIMESTAMP, has no fraction (its `.000` would claim a precision it does not have)."""
    text = render.cell(stamp)
    if len(text) < 23 or text[10] != "T":
        return text
    whole_seconds = isinstance(raw, str) and "." not in raw
    return text[11:19] if whole_seconds else text[11:23]


def timeline(document: dict[str, Any], step_width: int = 10) -> list[str]:
    """A request's steps as its ledger and its message's history record them: a title, then one line each."""
    summary = {name: document[name] for name in ("action", "to", "from")}
    if summary["action"] is None and isinstance(document.get("body"), str):
        summary = sends.body_summary(document["body"])  # a refused request keeps only its body
    request = " ".join(
        (
            render.cell(summary["action"]),
            "to",
            render.cell(summary["to"]),
            "from",
            render.cell(summary["from"]),
        )
    )
    steps: list[tuple[str, str, Any]] = [(_clock(document["received_at"]), "received", request)]
    for attempt in document["attempts"]:
        detail = " ".join(str(value) for value in (attempt["code"], attempt["detail"]) if value)
        if attempt["outcome"] == "accepted":
            detail = f"tracking id {document['provider']['tracking_id']}"
        steps.append((_clock(attempt["at"]), str(attempt["outcome"]).upper(), detail))
    if document["status"] == SendStatus.REJECTED:
        steps.append((_clock(document["updated_at"]), SendStatus.REJECTED.value, sends.why(document)))
    for event in (document.get("message") or {}).get("history", []):
        detail = " ".join(filter(None, (event["code"], event["failure_reason"])))
        steps.append((_clock(event["timestamp"], event["timestamp_raw"]), event["state"] or "-", detail))
    lines = [f"{render.cell(document['request_id'])}: {outcome(document)}"]
    lines += [
        f"  {at:<12}  {step:<{step_width}}  {render.cell(detail)}".rstrip() for at, step, detail in steps
    ]
    return lines


def expected_events(document: dict[str, Any] | None) -> set[tuple[str, str]]:
    """The events a settled request's story must include: its settlement, and once accepted its message's
    final state (detail-type, status or new state)."""
    if document is None:
        return set()
    wanted = {("Send Request Settled", str(document["status"]))}
    if document["status"] == SendStatus.ACCEPTED:
        wanted.add(("Message State Changed", outcome(document)))
    return wanted


def events_of(
    document: dict[str, Any] | None, request_id: str, events: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The events about one request: those naming its request id, or its message's tracking id."""
    ids = {request_id}
    tracking_id = ((document or {}).get("provider") or {}).get("tracking_id")
    if tracking_id:
        ids.add(str(tracking_id))
    return [event for event in events if watch.keys_of(event) & ids]


def story(event: dict[str, Any]) -> tuple[str, str]:
    detail = event.get("detail") or {}
    return str(event.get("detail-type")), str(detail.get("new_state") or detail.get("status"))


def wait_for(check: Callable[[], Any], deadline: float) -> Any:
    """`check()` until it is true or the deadline (time.monotonic()) passes; its last answer."""
    while True:
        result = check()
        if result or time.monotonic() >= deadline:
            return result
        time.sleep(POLL_S)


class Demo:
    def __init__(self, out: TextIO, *, timeout_s: float, log_dir: Path, full: bool) -> None:
        self.out = out
        self.timeout_s = timeout_s
        self.log_dir = log_dir
        self.full = full
        self.run_id = secrets.token_hex(3)

    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def run(self) -> int:
        self.say(
            "mmsbridge demo: the send loop on a local stack (moto, the real handlers, the provider simulator)"
        )
        started = time.monotonic()
        running = local_stack.start(
            port=0,
            moto_port=0,
            simulator_port=0,
            endpoints_file=self.log_dir / "endpoints.json",
            log_dir=self.log_dir,
        )
        try:
            self.say(f"stack up in {time.monotonic() - started:.1f} s; logs in {self._shown(self.log_dir)}")
            return self.exercise(running)
        finally:
            running.stop()

    def exercise(self, running: local_stack.RunningStack) -> int:
        simulator = running.simulator
        assert simulator is not None, "the local stack starts the provider simulator"
        simulator.configure_postbacks(**POSTBACKS)
        with patched_environ(local_stack.aws_environment(running.endpoint_url, running.stack.region)):
            table = StateTable(boto3.client("dynamodb"), running.stack.tables()["StateTable"].name)
            sqs = boto3.client("sqs")
        deadline = time.monotonic() + self.timeout_s

        began = time.monotonic()
        simulator.inject_subscription(mobile=OPTED_OUT, campaign_id=OPT_OUT_CAMPAIGN, subscribed=False)
        if not wait_for(lambda: table.suppressed(OPTED_OUT), deadline):
            self.say(f"not settled: the opt-out of {OPTED_OUT} (SUB N302) never reached the suppression list")
            return 1
        took = time.monotonic() - began
        self.say(
            f"opted out {OPTED_OUT} (SUB N302 from the simulator): on the suppression list in {took:.1f} s"
        )

        requests = example_requests(self.run_id)
        began = time.monotonic()
        queue_url = running.endpoints()["send_queue_url"]
        for body in requests:
            sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(body))
        self.say(
            f"{len(requests)} send requests on the send queue (request ids end in -{self.run_id}); times UTC"
        )
        ids = [body["request_id"] for body in requests]

        def documents() -> dict[str, dict[str, Any] | None]:
            return {request_id: sends.request(table, request_id) for request_id in ids}

        def all_settled() -> dict[str, dict[str, Any] | None] | None:
            current = documents()
            return current if all(map(settled, current.values())) else None

        found = wait_for(all_settled, deadline) or documents()
        took = time.monotonic() - began
        events = self.published_events(running, found, deadline)
        self.say()
        for request_id in ids:
            document = found[request_id]
            self.say("\n".join(timeline(document)) if document else f"{request_id}: {outcome(None)}")
            if running.events_watch is not None:
                self.say(f"{request_id} events:")
                for event in events_of(document, request_id, events):
                    self.say(f"  {watch.line(event)}")
        if self.full:
            self.full_timelines(running, ids)
        self.say()
        if not all(map(settled, found.values())):
            self.say(f"not settled within {self.timeout_s:g} s:")
            self.say("\n".join(missing(found)))
            self.say(f"logs: {self._shown(self.log_dir)}")
            return 1
        unpublished = self.unpublished(found, events) if running.events_watch is not None else []
        if unpublished:
            self.say(f"events not published within {self.timeout_s:g} s:")
            self.say("\n".join(unpublished))
            self.say(f"logs: {self._shown(self.log_dir)}")
            return 1
        counts = Counter(outcome(document).lower() for document in found.values())
        stats = simulator.stats()
        self.say(
            f"{len(ids)} requests settled in {took:.1f} s: "
            + ", ".join(f"{n} {what}" for what, n in counts.most_common())
            + f"; the provider accepted {stats['accepted_sends']} sends ({stats['duplicates']} duplicates) "
            f"and sent {stats['postbacks']['delivered']} postbacks"
        )
        return 0

    def published_events(
        self, running: local_stack.RunningStack, found: dict[str, dict[str, Any] | None], deadline: float
    ) -> list[dict[str, Any]]:
        """Every event on the watch queue, read until each request's expected events are in (or the deadline;
        the publisher reads the stream with a batching window, so events trail the state by a second)."""
        if running.events_watch is None:
            return []
        with patched_environ(local_stack.aws_environment(running.endpoint_url, running.stack.region)):
            queue = watch.WatchQueue(boto3.client("sqs"), running.events_watch.queue_url)
        events: list[dict[str, Any]] = []

        def complete() -> bool:
            events.extend(queue.receive(wait_s=1))
            return not self.unpublished(found, events)

        wait_for(complete, max(deadline, time.monotonic() + EVENTS_GRACE_S))
        return events

    @staticmethod
    def unpublished(found: dict[str, dict[str, Any] | None], events: list[dict[str, Any]]) -> list[str]:
        lines = []
        for request_id, document in found.items():
            told = {story(event) for event in events_of(document, request_id, events)}
            for kind, what in sorted(expected_events(document) - told):
                lines.append(f"  {render.cell(request_id)}: no {kind} event ({what})")
        return lines

    def full_timelines(self, running: local_stack.RunningStack, ids: list[str]) -> None:
        """Each request as `python -m ops request ID` shows it, against this stack's endpoints file."""
        assert running.endpoints_file is not None
        for request_id in ids:
            self.say()
            self.say(f"$ python -m ops request {request_id}")
            with contextlib.redirect_stdout(self.out), contextlib.redirect_stderr(self.out):
                ops_cli.main(["--endpoints-file", str(running.endpoints_file), "request", request_id])

    @staticmethod
    def _shown(path: Path) -> str:
        with contextlib.suppress(ValueError):
            return str(path.relative_to(Path.cwd()))
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help=f"seconds the loop may take once the stack is up (default {DEFAULT_TIMEOUT_S:g})",
    )
    parser.add_argument(
        "--log-dir",
        type=Path,
        default=DEFAULT_LOG_DIR,
        help="where the handlers' and moto's logs go (default .local/demo)",
    )
    parser.add_argument("--full", action="store_true", help="also print each request as `python -m ops` does")
    args = parser.parse_args(argv)
    args.log_dir.mkdir(parents=True, exist_ok=True)
    (args.log_dir / "moto.log").unlink(missing_ok=True)  # moto appends: one run per file
    demo = Demo(sys.stdout, timeout_s=args.timeout, log_dir=args.log_dir.resolve(), full=args.full)
    # The handlers log and print metrics to stdout, the gateway its access lines to stderr: into the log.
    with (
        (args.log_dir / "stack.log").open("w") as log,
        contextlib.redirect_stdout(log),
        contextlib.redirect_stderr(log),
    ):
        try:
            return demo.run()
        except KeyboardInterrupt:
            demo.say("interrupted; the stack is stopped")
            return 130


if __name__ == "__main__":
    sys.exit(main())
