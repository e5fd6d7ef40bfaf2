"""Replay archived postbacks: each object's exact bytes go back through the postback queue, as the ingest sent
them, so the consumer applies today's parser to past data. Safe to repeat: the consumer's writes are
idempotent (every item is keyed by the postback itself; a message's state is its highest-ranked report),
so a postback applied twice changes nothing.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from mmsbridge.core import envelope
from mmsbridge.core.backoff import backoff_seconds
from mmsbridge.core.times import iso
from ops.progress import Progress
from ops.times import parse_stored

ARCHIVE_PREFIX = "raw/"  # the template's ARCHIVE_PREFIX
REQUEST_ID_PREFIX = "replay:"
BATCH_ENTRIES = 10  # SendMessageBatch: at most 10 entries ...
BATCH_BYTES = 256 * 1024  # ... and 256 KiB of message bodies in all (one inline envelope can be ~254 KiB)
SEND_ATTEMPTS = 4  # the first try and three retries of the entries SQS reports failed
RETRY_BASE_S = 0.2
RETRY_CAP_S = 5.0
READ_CHUNK = 100  # objects read concurrently, then sent, before the next chunk is read
WORKERS = 16
# The ingest archives a body right after receiving it, so an object last modified before `since` minus
# this margin (clock skew) cannot have been received after `since`: it is not worth a HEAD request.
LAST_MODIFIED_MARGIN = timedelta(hours=1)
_BARE_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_NAMED_BY_HASH = re.compile(r"(?:^|/)([0-9a-f]{64})\.xml$")

sleep: Callable[[float], None] = time.sleep  # tests may replace it


@dataclass
class ReplayResult:
    mode: str  # "time-range" or "keys"
    dry_run: bool
    since: datetime | None = None
    until: datetime | None = None
    listed: int | None = None  # objects under the prefix (time range only)
    keys: list[str] = field(default_factory=list)  # found: selected for replay, in sending order
    sent: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)  # key, code, message
    skipped: list[dict[str, str]] = field(default_factory=list)  # key, reason

    @property
    def exit_code(self) -> int:
        return 1 if self.failures or self.skipped else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "dry_run": self.dry_run,
            "since": iso(self.since) if self.since else None,
            "until": iso(self.until) if self.until else None,
            "listed": self.listed,
            "found": len(self.keys),
            "sent": self.sent,
            "failed": len(self.failures),
            "skipped": len(self.skipped),
            "failures": self.failures,
            "skipped_objects": self.skipped,
            "keys": self.keys,
        }


@dataclass(frozen=True)
class _Read:
    key: str
    body: bytes | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    last_modified: datetime | None = None
    missing: bool = False
    error: str | None = None  # "Code: message"


class Replayer:
    def __init__(
        self,
        *,
        s3: Any,
        sqs: Any,
        bucket: str,
        queue_url: str,
        progress_stream: TextIO | None = None,
        prefix: str = ARCHIVE_PREFIX,
    ) -> None:
        self.s3 = s3
        self.sqs = sqs
        self.bucket = bucket
        self.queue_url = queue_url
        self.progress_stream = progress_stream
        self.prefix = prefix

    # -- selecting ----------------------------------------------------------------------------------------
    def by_time(self, since: datetime, until: datetime | None, *, dry_run: bool) -> ReplayResult:
        """Every object under the prefix whose `received-at` (else LastModified) is in [since, until)."""
        result = ReplayResult(mode="time-range", dry_run=dry_run, since=since, until=until)
        result.listed = 0
        candidates = []
        for listing in self._list():
            result.listed += 1
            if listing["LastModified"] >= since - LAST_MODIFIED_MARGIN:
                candidates.append({"Key": listing["Key"], "LastModified": listing["LastModified"]})
        chosen: list[tuple[datetime, str]] = []
        with (
            ThreadPoolExecutor(WORKERS) as pool,
            Progress("scanning", len(candidates), stream=self.progress_stream) as progress,
        ):
            for listing, head in zip(candidates, pool.map(self._head, candidates), strict=True):
                progress.advance()
                if head.missing:  # deleted since the listing
                    continue
                if head.error:
                    result.skipped.append({"key": head.key, "reason": f"metadata unreadable: {head.error}"})
                    continue
                moment = parse_stored(head.metadata.get("received-at")) or listing["LastModified"]
                if moment >= since and (until is None or moment < until):
                    chosen.append((moment, head.key))
        result.keys = [key for _, key in sorted(chosen)]
        if not dry_run:
            self._replay(result)
        return result

    def by_keys(self, keys: Iterable[str], *, dry_run: bool) -> ReplayResult:
        """Exactly these keys (duplicates once), in the order given."""
        result = ReplayResult(mode="keys", dry_run=dry_run)
        result.keys = list(dict.fromkeys(archive_key(k.strip(), self.prefix) for k in keys if k.strip()))
        if dry_run:
            with ThreadPoolExecutor(WORKERS) as pool:
                heads = list(pool.map(self._head, [{"Key": key} for key in result.keys]))
            for head in heads:
                if head.missing:
                    result.skipped.append({"key": head.key, "reason": "not found"})
                elif head.error:
                    result.skipped.append({"key": head.key, "reason": f"metadata unreadable: {head.error}"})
        else:
            self._replay(result)
        return result

    def _list(self) -> Iterator[dict[str, Any]]:
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            yield from page.get("Contents", [])

    def _head(self, listing: dict[str, Any]) -> _Read:
        key = listing["Key"]
        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _code(error) in ("404", "NoSuchKey", "NotFound"):
                return _Read(key, missing=True)
            return _Read(key, error=_describe(error))
        except BotoCoreError as error:
            return _Read(key, error=_describe(error))
        return _Read(key, metadata=head.get("Metadata") or {}, last_modified=head.get("LastModified"))

    # -- sending ------------------------------------------------------------------------------------------
    def _get(self, key: str) -> _Read:
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=key)
            body = response["Body"].read()
        except ClientError as error:
            if _code(error) in ("404", "NoSuchKey", "NotFound"):
                return _Read(key, missing=True)
            return _Read(key, error=_describe(error))
        except BotoCoreError as error:
            return _Read(key, error=_describe(error))
        return _Read(
            key,
            body=body,
            metadata=response.get("Metadata") or {},
            last_modified=response.get("LastModified"),
        )

    def _replay(self, result: ReplayResult) -> None:
        stopped: str | None = None
        with (
            ThreadPoolExecutor(WORKERS) as pool,
            Progress("replaying", len(result.keys), stream=self.progress_stream) as progress,
        ):
            for start in range(0, len(result.keys), READ_CHUNK):
                chunk = result.keys[start : start + READ_CHUNK]
                if stopped:
                    result.failures += [
                        _failure(key, "NotSent", f"replay stopped: {stopped}") for key in chunk
                    ]
                    progress.advance(len(chunk))
                    continue
                messages: list[tuple[str, str]] = []
                for read in pool.map(self._get, chunk):
                    message = self._message(read, result)
                    if message is None:
                        progress.advance()
                    else:
                        messages.append((read.key, message))
                for batch in batches(messages):
                    if stopped:
                        result.failures += [
                            _failure(key, "NotSent", f"replay stopped: {stopped}") for key, _ in batch
                        ]
                    else:
                        sent, failures, stopped = self._send(batch)
                        result.sent += sent
                        result.failures += failures
                    progress.advance(len(batch))

    def _message(self, read: _Read, result: ReplayResult) -> str | None:
        """The queue message for one object, as the ingest built it; None when it is skipped or failed."""
        if read.missing:
            result.skipped.append({"key": read.key, "reason": "not found"})
            return None
        if read.error or read.body is None:
            code, _, message = (read.error or "ReadFailed: no body").partition(": ")
            result.failures.append(_failure(read.key, code, f"reading the object: {message}"))
            return None
        digest = hashlib.sha256(read.body).hexdigest()
        named = _NAMED_BY_HASH.search(read.key)
        expected = read.metadata.get("sha256") or (named[1] if named else None)
        if expected and expected != digest:
            result.skipped.append(
                {"key": read.key, "reason": f"the bytes' SHA-256 {digest} is not the one taken on receipt"}
            )
            return None
        received_at = (
            parse_stored(read.metadata.get("received-at")) or read.last_modified or datetime.now(UTC)
        )
        return envelope.encode(
            key=read.key,
            sha256=digest,
            body=read.body,
            received_at=received_at,
            source_ip=read.metadata.get("source-ip", ""),
            request_id=REQUEST_ID_PREFIX + read.metadata.get("request-id", ""),
        )

    def _send(self, batch: Sequence[tuple[str, str]]) -> tuple[int, list[dict[str, str]], str | None]:
        """Send one batch, retrying the entries SQS reports failed (unless the fault is the sender's).

        Returns (sent, failures, error): error is set when the whole call kept failing, which stops the replay
        (a missing queue or missing permission would fail every batch the same way)."""
        pending = {str(i): entry for i, entry in enumerate(batch)}
        failures: dict[str, dict[str, str]] = {}
        sent = 0
        whole_call_error: str | None = None
        for attempt in range(SEND_ATTEMPTS):
            if attempt:
                sleep(backoff_seconds(attempt - 1, base=RETRY_BASE_S, cap=RETRY_CAP_S))
            entries = [{"Id": i, "MessageBody": message} for i, (_, message) in pending.items()]
            try:
                response = self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except (ClientError, BotoCoreError) as error:
                whole_call_error = _describe(error)
                code, _, message = whole_call_error.partition(": ")
                failures.update({i: _failure(key, code, message) for i, (key, _) in pending.items()})
                continue
            whole_call_error = None
            succeeded = {entry["Id"] for entry in response.get("Successful", [])}
            sent += len(succeeded & pending.keys())
            retry: dict[str, tuple[str, str]] = {}
            reported = {entry["Id"]: entry for entry in response.get("Failed", [])}
            for i, (key, message) in pending.items():
                if i in succeeded:
                    failures.pop(i, None)
                    continue
                entry = reported.get(i, {"Code": "NoResult", "Message": "neither sent nor failed"})
                failures[i] = _failure(key, entry.get("Code", ""), entry.get("Message", ""))
                if not entry.get("SenderFault"):  # a sender fault fails the same way every time
                    retry[i] = (key, message)
            pending = retry
            if not pending:
                break
        return sent, list(failures.values()), whole_call_error


def batches(messages: Sequence[tuple[str, str]]) -> Iterator[list[tuple[str, str]]]:
    """SendMessageBatch-sized groups: at most 10 entries and 256 KiB of bodies each."""
    batch: list[tuple[str, str]] = []
    size = 0
    for key, message in messages:
        length = len(message.encode())
        if batch and (len(batch) == BATCH_ENTRIES or size + length > BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append((key, message))
        size += length
    if batch:
        yield batch


def archive_key(key: str, prefix: str = ARCHIVE_PREFIX) -> str:
    """A key as given, or the archive key of a bare SHA-256 (what `quarantine` and `message` print):
    `<64 hex>` -> `raw/<64 hex>.xml`, the key the ingest stores a body under."""
    return f"{prefix}{key.lower()}.xml" if _BARE_SHA256.fullmatch(key) else key


def read_keys_file(lines: Iterable[str]) -> list[str]:
    """One key per line; blank lines and `#` comments are ignored (a dry run's output reads back)."""
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _failure(key: str, code: str, message: str) -> dict[str, str]:
    return {"key": key, "code": code, "message": message}


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _describe(error: Exception) -> str:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code', 'ClientError')}: {details.get('Message', '')}"
    return f"{type(error).__name__}: {error}"
