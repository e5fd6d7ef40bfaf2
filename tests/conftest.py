"""Shared fixtures: one moto server for the session, the template's resources created in it."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from pathlib import Path

import boto3
import pytest

from local import stack as local_stack
from local.moto import MotoServer
from local.runtime import patched_environ
from mmsbridge.core import envelope

ROOT = Path(__file__).resolve().parent.parent
# The provider documents the tests read: the project's own fixtures, indexed in their README.md.
SAMPLES = ROOT / "tests" / "fixtures" / "provider"


def ingest_record(body: bytes, received_at: datetime) -> dict:
    """The postback-queue record the ingest would have produced for `body` received at `received_at`."""
    sha = hashlib.sha256(body).hexdigest()
    message = envelope.encode(
        key=f"raw/{sha}.xml",
        sha256=sha,
        body=body,
        received_at=received_at,
        source_ip="34.198.230.58",
        request_id="req-1",
    )
    return {"messageId": str(uuid.uuid4()), "body": message}


@pytest.fixture(scope="session")
def moto_server():
    with MotoServer() as server:
        yield server


@pytest.fixture(scope="session")
def aws_stack(moto_server):
    """The template's local stack, resolved against the session's moto, with its resources created."""
    moto_server.reset()
    stack = local_stack.load_local_stack(moto_server.endpoint_url)
    local_stack.provision(stack, moto_server.endpoint_url)
    return stack


@pytest.fixture(scope="session")
def aws_clients(moto_server, aws_stack):
    with patched_environ(local_stack.aws_environment(moto_server.endpoint_url, aws_stack.region)):
        return {name: boto3.client(name) for name in ("s3", "sqs", "dynamodb")}
