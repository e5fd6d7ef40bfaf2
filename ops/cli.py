"""`python -m ops`: look inside a running mmsbridge and replay archived postbacks.

This module assembles the parser from the command groups (ops/commands/, one module each) and runs one
command, turning AWS and configuration failures into a message and an exit code.

Exit codes: 0 ok; 1 not found, or a partial failure; 2 a usage or configuration error.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from mmsbridge.core.phone_numbers import InvalidNumber
from ops import output
from ops.commands import events, inbound, messages, outbound, quarantine, redrive, repair, requests, status
from ops.commands.arguments import Commands
from ops.resources import ConfigError, resolve

# The command groups, in the order `--help` lists their commands.
GROUPS = (messages, inbound, outbound, quarantine, repair, requests, redrive, status, events)

# AWS answers that mean "wrong place or no permission": configuration, not a result.
_CONFIG_ERROR_CODES = {
    "ResourceNotFoundException",
    "NoSuchBucket",
    "QueueDoesNotExist",
    "AWS.SimpleQueueService.NonExistentQueue",
    "AccessDenied",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
}

DESCRIPTION = """\
The operator CLI of mmsbridge: message states and histories, inbound messages, quarantined postbacks,
stale messages, suppressed numbers; and replaying archived postbacks through the postback queue.
The send path: a send request's timeline (request), the worklists of requests that ended unsent or with
an unknown outcome (requests, unknown), the send DLQ (send-dlq: list, re-drive), and a deliberate re-drive
of one request (resend). Outbound messages to a number (messages), and linking outcome-unknown requests to
the messages they became (reconcile). The stack on one screen: queues, account errors, throttling and
worklists (status); postback events kept but not attributed (unrecognised). The events the stack published,
as they arrive on the local stack's watch queue (events).

Where the resources are (one of):
  --endpoints-file PATH  the local stack's endpoints file (default: .local/endpoints.json in the project,
                         written by `make run` while it runs); moto's endpoint, dummy credentials
  --stack NAME           a deployed stack: its outputs StateTableName, ArchiveBucketName, PostbackQueueUrl,
                         PostbackDLQUrl, SendQueueUrl, SendDLQUrl; credentials, region (or --region) and
                         endpoint from the environment

Every command prints text for people, or one JSON document with --json (stable keys, ISO 8601 UTC times).
Times (--since, --until) are ISO 8601 (UTC unless an offset is given: 2026-11-25, 2026-11-25T10:00:00Z,
2026-11-25T05:00-05:00) or a duration ago (90m, 24h, 7d); --since is inclusive, --until exclusive.

Exit codes: 0 ok; 1 not found, or a partial failure; 2 a usage or configuration error."""


def main(argv: Sequence[str] | None = None, *, session: Any | None = None) -> int:
    """Run one command; returns the exit code. `session` (a boto3 Session) is for tests and embedding."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        args.check(args)
    except SystemExit as exit_:  # argparse: --help (0) or a usage error (2)
        return exit_.code if isinstance(exit_.code, int) else output.USAGE
    try:
        resources = resolve(
            endpoints_file=args.endpoints_file, stack=args.stack, region=args.region, session=session
        )
        return args.run(args, resources)
    except ConfigError as error:
        output.error(f"ops: {error}")
        return output.USAGE
    except InvalidNumber as error:
        output.error(f"ops: that number {error}")
        return output.USAGE
    except EndpointConnectionError as error:
        output.error(
            f"ops: cannot reach AWS: {error} (if this is the local stack, is `make run` still running?)"
        )
        return output.USAGE
    except ClientError as error:
        details = error.response.get("Error", {})
        output.error(f"ops: AWS refused: {details.get('Code')}: {details.get('Message')}")
        return output.USAGE if details.get("Code") in _CONFIG_ERROR_CODES else output.NOT_FOUND
    except BotoCoreError as error:
        output.error(f"ops: AWS: {error}")
        return output.USAGE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ops", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--endpoints-file", type=Path, metavar="PATH", help="the local stack's endpoints file")
    where.add_argument("--stack", metavar="NAME", help="a deployed stack's name")
    parser.add_argument("--region", metavar="R", help="the deployed stack's region (with --stack)")
    commands = Commands(parser)
    for group in GROUPS:
        group.register(commands)
    return parser
