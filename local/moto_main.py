"""`python -m local.moto_main`: moto's server, with DynamoDB's per-item atomicity.

moto's threaded server runs a conditional write's check and its write without a lock, so two concurrent
conditional writes to one item can both succeed, which DynamoDB never allows (each single-item write is
atomic, and a condition is evaluated atomically with it). The sender's idempotency and its shared limiter
rely on that guarantee, so every DynamoDB write here runs under one lock: the check and the write become
one step again, as in AWS.

It also answers over HTTP/1.1 keep-alive (werkzeug's development server defaults to HTTP/1.0, one TCP
connection per call), so clients reuse connections as they do with AWS. Everything else is moto as it comes.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from moto.dynamodb.models import DynamoDBBackend
from moto.server import main
from werkzeug.serving import WSGIRequestHandler

_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")
_LOCK = threading.RLock()


def _atomic(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return method(*args, **kwargs)

    return locked


def make_writes_atomic() -> None:
    for name in _WRITES:
        setattr(DynamoDBBackend, name, _atomic(getattr(DynamoDBBackend, name)))


if __name__ == "__main__":
    make_writes_atomic()
    WSGIRequestHandler.protocol_version = "HTTP/1.1"
    main()
