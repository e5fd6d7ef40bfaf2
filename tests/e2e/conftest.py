"""The local stack as a user runs it: `python -m local run` in its own process, talked to over HTTP."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from local.process import StackProcess
from local.runtime import patched_environ
from local.stack import aws_environment
from mmsbridge.aws.state_table import StateTable


def start_local_stack(workdir: Path, *extra_args: str, env: dict[str, str] | None = None) -> dict:
    """Start `python -m local run` on free ports; returns once its endpoints file is written."""
    stack = StackProcess(workdir, *extra_args, env=env)
    try:
        stack.start()
    except RuntimeError as failure:
        pytest.fail(str(failure))
    return {
        "stack": stack,
        "process": stack.process,
        "endpoints": stack.endpoints,
        "endpoints_file": stack.endpoints_file,
        "workdir": workdir,
    }


@pytest.fixture(scope="package")
def local_stack_process(tmp_path_factory):
    started = start_local_stack(tmp_path_factory.mktemp("local-stack"))
    yield started
    started["stack"].stop()


@pytest.fixture(scope="package")
def endpoints(local_stack_process):
    return local_stack_process["endpoints"]


@pytest.fixture(scope="package")
def local_aws(endpoints):
    with patched_environ(aws_environment(endpoints["aws_endpoint_url"], endpoints["region"])):
        return {name: boto3.client(name) for name in ("s3", "sqs", "dynamodb")}


def read_log(local_stack_process) -> str:
    return Path(local_stack_process["workdir"] / "stack.log").read_text()


@pytest.fixture(scope="module")
def table(endpoints, local_aws):
    """The running stack's state table (tests that start their own stack define their own)."""
    return StateTable(local_aws["dynamodb"], endpoints["tables"]["StateTable"])
