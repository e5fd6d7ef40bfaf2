"""`python -m ops ... --since/--until`: an ISO 8601 time (UTC unless it names an offset) or a duration ago
(`90m`, `24h`, `7d`), as docs/operations.md and `--help` document them, read by ops.times and by every command
that takes them."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ops.cli import build_parser
from ops.times import parse_moment

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "ago"),
    [
        ("90m", timedelta(minutes=90)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        ("30s", timedelta(seconds=30)),
        ("1.5h", timedelta(minutes=90)),
        ("0m", timedelta(0)),
        (" 24h ", timedelta(hours=24)),
    ],
)
def test_a_duration_is_that_long_before_now(text, ago):
    assert parse_moment(text, now=NOW) == NOW - ago


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2026-11-25", datetime(2026, 11, 25, tzinfo=UTC)),
        ("2026-11-25T10:00", datetime(2026, 11, 25, 10, tzinfo=UTC)),
        ("2026-11-25T10:00:00Z", datetime(2026, 11, 25, 10, tzinfo=UTC)),
        ("2026-11-25T10:00:00+00:00", datetime(2026, 11, 25, 10, tzinfo=UTC)),
        ("2026-11-25T05:00-05:00", datetime(2026, 11, 25, 10, tzinfo=UTC)),
        ("2026-11-25T10:00:00-05:00", datetime(2026, 11, 25, 15, tzinfo=UTC)),
        ("2026-11-25T12:30:00.250+02:00", datetime(2026, 11, 25, 10, 30, 0, 250000, tzinfo=UTC)),
        ("2026-11-25 10:00:00", datetime(2026, 11, 25, 10, tzinfo=UTC)),
    ],
)
def test_an_iso_time_is_utc_unless_it_names_an_offset(text, moment):
    parsed = parse_moment(text, now=NOW)
    assert parsed == moment
    assert parsed.utcoffset() == timedelta(0)  # always given back in UTC


@pytest.mark.parametrize("text", ["90", "m", "-5m", "5w", "1h30m", "24 h", "last tuesday", "", "2026-13-01"])
def test_anything_else_is_refused_with_an_example(text):
    with pytest.raises(ValueError, match=r"e\.g\. 2026-11-25T10:00:00Z, 7d"):
        parse_moment(text, now=NOW)


def test_the_documented_examples_are_the_ones_tested_here():
    guide = (ROOT / "docs" / "operations.md").read_text()
    assert "a duration ago (`90m`, `24h`, `7d`)" in guide
    cli_help = build_parser().format_help()  # python -m ops --help
    assert "(90m, 24h, 7d)" in cli_help
    for example in ("2026-11-25", "2026-11-25T10:00:00Z", "2026-11-25T05:00-05:00"):
        assert example in cli_help


# The arguments each command that takes --since/--until needs besides them.
REQUIRED = {"messages": ["--to", "17743199144"], "requests": ["--status", "FAILED"]}


def commands_with_a_time_range() -> list[str]:
    (subcommands,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(
        name
        for name, parser in subcommands.choices.items()
        if {"--since", "--until"} <= {o for action in parser._actions for o in action.option_strings}
    )


def test_the_commands_with_a_time_range_are_the_documented_ones():
    assert commands_with_a_time_range() == [
        "inbound",
        "messages",
        "quarantine",
        "reconcile",
        "replay",
        "requests",
        "unknown",
        "unrecognised",
    ]


@pytest.mark.parametrize("command", commands_with_a_time_range())
@pytest.mark.parametrize(("since", "until"), [("7d", "90m"), ("24h", "0m"), ("90m", "30s")])
def test_every_command_reads_durations_as_times_ago(command, since, until):
    before = datetime.now(UTC)
    args = build_parser().parse_args(
        [command, *REQUIRED.get(command, []), "--since", since, "--until", until]
    )
    after = datetime.now(UTC)
    for value, text in ((args.since, since), (args.until, until)):
        ago = parse_moment(text, now=NOW)  # NOW minus the duration
        assert before - (NOW - ago) <= value <= after - (NOW - ago)
        assert value.tzinfo is not None


@pytest.mark.parametrize("command", commands_with_a_time_range())
def test_every_command_reads_iso_times(command):
    args = build_parser().parse_args(
        [command, *REQUIRED.get(command, []), "--since", "2026-11-25", "--until", "2026-11-25T05:00-05:00"]
    )
    assert (args.since, args.until) == (
        datetime(2026, 11, 25, tzinfo=UTC),
        datetime(2026, 11, 25, 10, tzinfo=UTC),
    )


def test_a_time_the_cli_cannot_read_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["quarantine", "--since", "yesterday"])
    assert exited.value.code == 2
    assert "not an ISO 8601 time nor a duration like 24h: 'yesterday'" in capsys.readouterr().err
