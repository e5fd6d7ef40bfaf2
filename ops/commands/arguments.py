"""What every command's parser shares: how a group adds a command, and the common options and types."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime

from ops import ledger_scan
from ops.resources import Resources
from ops.times import parse_moment

DEFAULT_LIMIT = 50

Run = Callable[[argparse.Namespace, Resources], int]


class Commands:
    """The subcommands of the top-level parser; each group module's `register(commands)` adds its own."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        # --json is accepted after the command too.
        self._common = argparse.ArgumentParser(add_help=False)
        self._common.add_argument(
            "--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON document"
        )
        self._subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(self, name: str, run: Run, summary: str, details: str) -> argparse.ArgumentParser:
        """A command running `run(args, resources)`; its help is the summary, then the details.

        The parser's `check` default (set_defaults) is called with the parsed arguments before anything is
        read: the place for a usage error argparse cannot express."""
        sub = self._subparsers.add_parser(
            name,
            parents=[self._common],
            help=summary,
            description=f"{summary}\n\n{details}".strip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(run=run, check=lambda args: None)
        return sub


def time_range(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", type=moment, metavar="ISO", help="at or after this time")
    parser.add_argument("--until", type=moment, metavar="ISO", help="before this time")


def limit(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--limit",
        type=positive_int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"at most N (default {DEFAULT_LIMIT})",
    )


def scan_limit(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scan-limit",
        type=positive_int,
        default=ledger_scan.DEFAULT_BUDGET,
        metavar="N",
        help="where no index answers (RETRY, SENDING, recent attempt logs): read at most N items of the "
        f"table (default {ledger_scan.DEFAULT_BUDGET})",
    )


def moment(text: str) -> datetime:
    try:
        return parse_moment(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number above 0, not {text!r}")
    return value
