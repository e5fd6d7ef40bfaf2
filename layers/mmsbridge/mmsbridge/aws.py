"""boto3 clients, created once per container. The endpoint comes from the environment
(AWS_ENDPOINT_URL, honoured by botocore), which is how the local stack points them at moto."""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

# Bounded so that a slow AWS call surfaces as an error inside the caller's own deadline: at most three
# attempts of at most 1 s to connect and 2 s to answer (the ingest must answer the provider within 10 s).
FAST = Config(connect_timeout=1, read_timeout=2, retries={"mode": "standard", "total_max_attempts": 3})
# boto3's default session is not safe for creating clients from several threads at once.
_CREATING = threading.Lock()


def client(service: str, config: Config = FAST) -> Any:
    """A client for `service` with bounded timeouts and standard retries."""
    with _CREATING:
        return boto3.client(service, config=config)


class LazyClient:
    """A client created on first use: for a path most invocations never take (it keeps cold starts short)."""

    def __init__(self, service: str, config: Config = FAST) -> None:
        self._service = service
        self._config = config
        self._client: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            self._client = client(self._service, self._config)
        return getattr(self._client, name)
