"""boto3 clients, created once per container. The endpoint comes from the environment
(AWS_ENDPOINT_URL, honoured by botocore), which is how the local stack points them at moto."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

# Bounded so that a slow AWS call surfaces as an error well inside the caller's own deadline.
FAST = Config(connect_timeout=2, read_timeout=3, retries={"mode": "standard", "max_attempts": 3})


def client(service: str, config: Config = FAST) -> Any:
    """A client for `service` with bounded timeouts and standard retries."""
    return boto3.client(service, config=config)
