"""AWS faults: failures injected into boto3 clients, through botocore's own event hooks. The injected
failure goes through the client's real retry logic and error parsing, exactly like one coming off the wire.
(The provider simulator's injected answers are provider faults: local/simulator/provider_faults.py.)"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError


class StaticBody:
    """A response body botocore can read, for responses made up by a hook."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


@dataclass
class AwsFaultStats:
    calls: int = 0
    injected: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, injected: bool) -> None:
        with self._lock:
            self.calls += 1
            self.injected += injected


def _error_response(client: Any, request: Any, status: int, code: str) -> AWSResponse:
    protocol = client.meta.service_model.protocol
    if protocol == "json" or protocol == "smithy-rpc-v2-cbor":
        body = json.dumps({"__type": code, "message": "injected fault"}).encode()
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-query-error": f"{code};Receiver"}
    else:
        body = f"<Error><Code>{code}</Code><Message>injected fault</Message></Error>".encode()
        headers = {"Content-Type": "application/xml"}
    headers["x-amzn-RequestId"] = str(uuid.uuid4())
    return AWSResponse(request.url, status, headers, StaticBody(body))


@contextmanager
def inject(
    client: Any,
    operation: str = "*",
    *,
    delay_s: float = 0.0,
    rate: float = 0.0,
    status: int = 500,
    code: str = "InternalError",
    connection_error: bool = False,
    seed: int | None = None,
) -> Iterator[AwsFaultStats]:
    """While active, calls of `operation` ("PutObject", "*" for all) on `client` wait `delay_s` and then,
    with probability `rate`, fail: an HTTP `status` error with `code`, or a connection error."""
    rng = random.Random(seed)  # noqa: S311 - fault placement, not security  # nosec B311
    stats = AwsFaultStats()
    service = client.meta.service_model.service_id.hyphenize()
    event_name = f"before-send.{service}" + ("" if operation == "*" else f".{operation}")
    unique_id = f"mmsbridge-aws-fault-{uuid.uuid4()}"

    def hook(request: Any, **_: Any) -> AWSResponse | None:
        if delay_s:
            time.sleep(delay_s)
        fail = rate >= 1.0 or (rate > 0.0 and rng.random() < rate)
        stats.count(fail)
        if not fail:
            return None
        if connection_error:
            raise EndpointConnectionError(endpoint_url=request.url)
        return _error_response(client, request, status, code)

    client.meta.events.register(event_name, hook, unique_id=unique_id)
    try:
        yield stats
    finally:
        client.meta.events.unregister(event_name, unique_id=unique_id)
