"""The stack's events as they are published (`events`): the local stack's watch queue."""

from __future__ import annotations

import argparse
import json
import sys

from ops import output, watch
from ops.commands.arguments import Commands
from ops.resources import ConfigError, Resources

FOLLOW_WAIT_S = 5  # each long poll of --follow: bounded, so Ctrl-C is answered within seconds


def register(commands: Commands) -> None:
    events = commands.add(
        "events",
        run_events,
        "the events the stack published (local stack: its watch queue), oldest first",
        "make run adds a rule on the stack's event bus sending every mmsbridge event to a local queue (the\n"
        "endpoints file's events_watch_queue_url); this prints what is on it, one line each: time,\n"
        "detail-type, the change, the main fields. Reading consumes: an event printed is removed from the\n"
        "queue. --type keeps only that detail-type (repeatable; the others stay on the queue). --follow\n"
        f"waits for more ({FOLLOW_WAIT_S} s long polls) until Ctrl-C; with --json it prints one event per\n"
        "line. A deployed stack has no watch queue: subscribe a rule on its bus (output EventBusName).",
    )
    events.add_argument("--follow", "-f", action="store_true", help="keep waiting for events until Ctrl-C")
    events.add_argument(
        "--type",
        dest="detail_types",
        action="append",
        default=[],
        metavar="DETAIL_TYPE",
        help='only events of this detail-type, e.g. "Message State Changed" (repeatable)',
    )


def run_events(args: argparse.Namespace, resources: Resources) -> int:
    if not resources.events_watch_queue_url:
        raise ConfigError(
            f"{resources.origin} names no events watch queue (events_watch_queue_url, written by make run); "
            "for a deployed stack, put a rule on its bus (output EventBusName) with a target of your own"
        )
    queue = watch.WatchQueue(
        resources.client("sqs"), resources.events_watch_queue_url, frozenset(args.detail_types)
    )
    try:
        if args.follow:
            return _follow(args, queue)
        found = list(queue.drain())
    finally:
        queue.release()
    if args.json:
        output.document({"queue_url": queue.url, "count": len(found), "events": found})
        return output.OK
    output.text("\n".join([*(watch.line(e) for e in found), f"{len(found)} event(s)"]))
    return output.OK


def _follow(args: argparse.Namespace, queue: watch.WatchQueue) -> int:
    output.error(f"following {queue.url} (Ctrl-C stops)")
    try:
        while True:
            for event in queue.receive(FOLLOW_WAIT_S):
                output.text(json.dumps(event, ensure_ascii=False) if args.json else watch.line(event))
                sys.stdout.flush()
    except KeyboardInterrupt:
        return output.OK
