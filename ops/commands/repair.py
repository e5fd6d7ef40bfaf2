"""Applying a parser fix to past data: re-sending archived postbacks (`replay`), then removing the state
markers no stored event stands behind any more (`prune-markers`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ops import markers, output, render
from ops.commands.arguments import Commands, moment
from ops.replay import ARCHIVE_PREFIX, Replayer, ReplayResult, read_keys_file
from ops.resources import ConfigError, Resources


def register(commands: Commands) -> None:
    replay = commands.add(
        "replay",
        run_replay,
        "re-send archived postbacks from S3 through the postback queue (a parser fix applies to past data)",
        f"Each object's exact bytes go on the postback queue as the ingest sent them (same key, SHA-256 of\n"
        f"the bytes, the original received-at and source-ip metadata, request id prefixed `replay:`), in\n"
        f"batches of 10; entries SQS reports failed are retried, and any still failing are reported\n"
        f"(exit 1).\n"
        f"\n"
        f"--since/--until select by the objects' received-at metadata (LastModified when it is missing).\n"
        f"Listing reads the whole {ARCHIVE_PREFIX} prefix (one LIST request per 1000 objects), then one\n"
        f"HEAD request per object modified since --since (minus an hour's margin for clock skew).\n"
        f"--key and --keys-file replay exactly the keys named (a keys file: one per line, # comments,\n"
        f"- for stdin; the output of --dry-run reads back).\n"
        f"\n"
        f"Replaying is safe, and safe to repeat: the consumer's writes are idempotent (each item it writes\n"
        f"is keyed by the postback itself, so writing it again changes nothing, and a message's state is\n"
        f"its highest-ranked report whatever the order), so a postback applied twice changes nothing.\n"
        f"Progress goes to stderr. Exit 1 when any object was skipped or failed.",
    )
    selection = replay.add_mutually_exclusive_group(required=True)
    selection.add_argument("--since", type=moment, metavar="ISO", help="received at or after this time")
    selection.add_argument(
        "--key",
        action="append",
        dest="keys",
        metavar="KEY",
        help="an S3 key, or a bare SHA-256 for raw/<sha256>.xml (repeatable)",
    )
    selection.add_argument(
        "--keys-file", metavar="FILE", help="a file of S3 keys, one per line (- for stdin)"
    )
    replay.add_argument(
        "--until", type=moment, metavar="ISO", help="received before this time (with --since)"
    )
    replay.add_argument("--dry-run", action="store_true", help="list what would be sent; send nothing")
    replay.set_defaults(check=lambda args: _check_replay(replay, args))

    prune_markers = commands.add(
        "prune-markers",
        run_prune_markers,
        "remove message state markers that no stored event stands behind (after a replay re-read them)",
        "A message's state is its highest-ranked marker, and markers are only ever added. When the parser\n"
        "reads a code differently (an N102 whose STATUS is `Message Sent/Expired` is UNDELIVERED, not\n"
        "DELIVERED), `replay` rewrites the event with today's state and adds the right marker, but the old\n"
        "one still ranks higher. This deletes every state marker whose code and state no event of its\n"
        "message carries (the sender's SUBMITTED marker is never touched), and prints each message's state\n"
        "afterwards.\n"
        "\n"
        "Repair, in order: replay the postbacks (e.g. `replay --since ...`), wait until the postback queue\n"
        "is empty, then `prune-markers`. Without --tracking-id it scans the table once for messages with a\n"
        "postback's marker. Safe to repeat.",
    )
    prune_markers.add_argument(
        "--tracking-id", action="append", dest="tracking_ids", metavar="TRACKINGID", help="only this message"
    )
    prune_markers.add_argument("--dry-run", action="store_true", help="list what would be removed")


def _check_replay(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.until is not None and args.since is None:
        parser.error("--until goes with --since")
    if args.since is not None and args.until is not None and args.until <= args.since:
        parser.error("--until must be after --since")


def run_replay(args: argparse.Namespace, resources: Resources) -> int:
    replayer = Replayer(
        s3=resources.client("s3"),
        sqs=resources.client("sqs"),
        bucket=resources.bucket,
        queue_url="" if args.dry_run else resources.queue_url,
    )
    if args.since is not None:
        result = replayer.by_time(args.since, args.until, dry_run=args.dry_run)
    else:
        keys = args.keys or []
        if args.keys_file:
            keys = read_keys_file(_read_lines(args.keys_file))
        result = replayer.by_keys(keys, dry_run=args.dry_run)
    if args.json:
        output.document(result.to_json())
    else:
        output.text(_replay_text(result))
    return result.exit_code


def _read_lines(path: str) -> list[str]:
    if path == "-":
        return sys.stdin.read().splitlines()
    try:
        return Path(path).read_text().splitlines()
    except OSError as error:
        raise ConfigError(f"keys file {path}: {error.strerror or error}") from None


def _replay_text(result: ReplayResult) -> str:
    where = f" (listed {result.listed} under {ARCHIVE_PREFIX})" if result.listed is not None else ""
    lines = []
    if result.dry_run:
        skipped = {s["key"] for s in result.skipped}
        lines += [render.cell(key) for key in result.keys if key not in skipped]
        lines.append(
            f"# dry run: found {len(result.keys)}{where}, would send {len(result.keys) - len(skipped)}, "
            f"skipped {len(skipped)}; nothing sent"
        )
        lines += [f"# skipped {render.cell(s['key'])}: {render.cell(s['reason'])}" for s in result.skipped]
        return "\n".join(lines)
    lines.append(
        f"replay: found {len(result.keys)}{where}, sent {result.sent}, failed {len(result.failures)}, "
        f"skipped {len(result.skipped)}"
    )
    lines += [
        f"  failed   {render.cell(f['key'])}: {render.cell(f['code'])}: {render.cell(f['message'])}"
        for f in result.failures
    ]
    lines += [f"  skipped  {render.cell(s['key'])}: {render.cell(s['reason'])}" for s in result.skipped]
    return "\n".join(lines)


def run_prune_markers(args: argparse.Namespace, resources: Resources) -> int:
    result = markers.prune(resources.table, args.tracking_ids, dry_run=args.dry_run)
    if args.json:
        output.document(result.to_json())
        return output.OK
    verb = "would remove" if result.dry_run else "removed"
    lines = [f"prune-markers: {len(result.removed)} marker(s) {verb}, {result.messages} message(s) examined"]
    rows = [[r["tracking_id"], r["marker"], r["marker_state"], r["state_after"]] for r in result.removed]
    if rows:
        lines.append(render.table(["TRACKINGID", "MARKER", "MARKER STATE", "STATE AFTER"], rows))
    output.text("\n".join(lines))
    return output.OK
