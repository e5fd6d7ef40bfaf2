"""Durable before ack: a postback is acknowledged only once its bytes are in the archive and on the queue."""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass

from mmsbridge.aws.archive import Archive
from mmsbridge.core import envelope
from mmsbridge.ingest.admission import ReceivedPostback
from mmsbridge.ingest.postback_queue import Queue


@dataclass(frozen=True, slots=True)
class StoreResult:
    key: str
    archived: bool
    enqueued: bool
    errors: tuple[str, ...]

    @property
    def durable(self) -> bool:
        return self.archived and self.enqueued


def store_postback(
    postback: ReceivedPostback, *, archive: Archive, queue: Queue, prefix: str, executor: Executor
) -> StoreResult:
    """Write the archive object and the queue message; both must succeed.

    The two writes overlap when the body travels inline. A body too large to travel inline is referenced
    by key only, so it is archived first: a queue message never points at an object that is not there.
    """
    key = postback.archive_key(prefix)
    message = envelope.encode(
        key=key,
        sha256=postback.sha256,
        body=postback.body,
        received_at=postback.received_at,
        source_ip=postback.source_ip,
        request_id=postback.request_id,
    )
    errors: list[str] = []

    def archive_it() -> bool:
        try:
            archive.put(key, postback.body, postback.sha256, postback.archive_metadata())
        except Exception as error:  # any failure means "not durable": answer 503, the provider retries
            errors.append(f"archive: {type(error).__name__}: {error}")
            return False
        return True

    def enqueue_it() -> bool:
        try:
            queue.send(message)
        except Exception as error:
            errors.append(f"queue: {type(error).__name__}: {error}")
            return False
        return True

    if len(postback.body) <= envelope.INLINE_BODY_LIMIT:
        archiving = executor.submit(archive_it)
        enqueued = enqueue_it()
        archived = archiving.result()
    else:
        archived = archive_it()
        enqueued = archived and enqueue_it()
    return StoreResult(key=key, archived=archived, enqueued=enqueued, errors=tuple(errors))
