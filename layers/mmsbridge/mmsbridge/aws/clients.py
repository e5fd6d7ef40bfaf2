"""boto3 clients, created once per container. The endpoint comes from the environment
(AWS_ENDPOINT_URL, honoured by botocore), which is how the local stack points them at moto."""

from __future__ import annotations

import os
import threading
from typing import Any

import boto3
from botocore.config import Config

# Bounded so that a slow AWS call surfaces as an error inside the caller's own deadline: at most three
# attempts of at most 1 s to connect and 2 s to answer (the ingest must answer the provider within 10 s).
FAST = Config(connect_timeout=1, read_timeout=2, retries={"mode": "standard", "total_max_attempts": 3})
# boto3's default session is not safe for creating clients from several threads at once.
_CREATING = threading.Lock()


def client(service: str, config: Config = FAST, **options: Any) -> Any:
    """A client for `service` with bounded timeouts and standard retries (`options`: boto3.client's)."""
    with _CREATING:
        return boto3.client(service, config=config, **options)


class LazyClient:
    """A client created on first use: for a path most invocations never take (it keeps cold starts short)."""

    def __init__(self, service: str, config: Config = FAST) -> None:
        self._service = service
        self._config = config
        self._client: Any = None
        # Where and as whom, read now: the client made on first use is the one the container's init would
        # have made, whatever the process environment is by then (the local runtime sets a function's
        # environment only while it imports the handler).
        environ = os.environ.get
        endpoint = environ(f"AWS_ENDPOINT_URL_{service.upper()}") or environ("AWS_ENDPOINT_URL")
        self._options = {
            name: value
            for name, value in (
                ("endpoint_url", endpoint),
                ("region_name", environ("AWS_REGION") or environ("AWS_DEFAULT_REGION")),
                ("aws_access_key_id", environ("AWS_ACCESS_KEY_ID")),
                ("aws_secret_access_key", environ("AWS_SECRET_ACCESS_KEY")),
                ("aws_session_token", environ("AWS_SESSION_TOKEN")),
            )
            if value
        }

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            self._client = client(self._service, self._config, **self._options)
        return getattr(self._client, name)
