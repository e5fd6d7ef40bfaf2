"""The local stack as a user runs it: `python -m local run` in its own process, talked to over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from local.runtime import patched_environ
from local.stack import ROOT, aws_environment
from mmsbridge.state_table import StateTable


def start_local_stack(workdir: Path) -> dict:
    """Start `python -m local run` on free ports; returns once its endpoints file is written."""
    endpoints_file = workdir / "endpoints.json"
    log = (workdir / "stack.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "local",
            "run",
            "--port",
            "0",
            "--simulator-port",
            "0",
            "--endpoints-file",
            str(endpoints_file),
            "--log-dir",
            str(workdir / "logs"),
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + 60
    while not endpoints_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the local stack did not start:\n{(workdir / 'stack.log').read_text()[-4000:]}")
        time.sleep(0.1)
    endpoints = json.loads(endpoints_file.read_text())
    return {
        "process": process,
        "endpoints": endpoints,
        "endpoints_file": endpoints_file,
        "workdir": workdir,
        "log": log,
    }


@pytest.fixture(scope="session")
def local_stack_process(tmp_path_factory):
    started = start_local_stack(tmp_path_factory.mktemp("local-stack"))
    yield started
    process = started["process"]
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
    started["log"].close()


@pytest.fixture(scope="session")
def endpoints(local_stack_process):
    return local_stack_process["endpoints"]


@pytest.fixture(scope="session")
def local_aws(endpoints):
    with patched_environ(aws_environment(endpoints["aws_endpoint_url"], endpoints["region"])):
        return {name: boto3.client(name) for name in ("s3", "sqs", "dynamodb")}


def read_log(local_stack_process) -> str:
    return Path(local_stack_process["workdir"] / "stack.log").read_text()


@pytest.fixture(scope="module")
def table(endpoints, local_aws):
    """The running stack's state table (tests that start their own stack define their own)."""
    return StateTable(local_aws["dynamodb"], endpoints["tables"]["StateTable"])
