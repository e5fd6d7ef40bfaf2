"""Shared fixtures: one moto server for the session, the template's resources created in it."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from local import stack as local_stack
from local.moto import MotoServer
from local.runtime import patched_environ

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT.parent / "shared" / "provider" / "samples"


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
