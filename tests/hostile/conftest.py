"""The hostile-input suite's own local stack: the real one (`python -m local run`), whose postback token the
stack generated in its secret at start.

When a selected test needs it, it starts booting in its own process with the first test of this directory,
so it boots while the property tests (which come first) run; the fixture then waits for it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from local.runtime import patched_environ
from local.stack import ROOT, aws_environment
from mmsbridge.aws.state_table import StateTable

STARTUP_TIMEOUT_S = 90


@dataclass
class Launched:
    process: subprocess.Popen
    workdir: Path
    log: object

    @property
    def endpoints_file(self) -> Path:
        return self.workdir / "endpoints.json"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


def launch() -> Launched:
    workdir = Path(tempfile.mkdtemp(prefix="mmsbridge-hostile-"))
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
            str(workdir / "endpoints.json"),
            "--log-dir",
            str(workdir / "logs"),
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    return Launched(process, workdir, log)


_early: dict[str, Launched] = {}
_wanted: dict[str, bool] = {}


def pytest_collection_finish(session: pytest.Session) -> None:
    wanted = any("tokened_stack" in getattr(item, "fixturenames", ()) for item in session.items)
    _wanted["stack"] = wanted and not session.config.option.collectonly


def pytest_runtest_setup(item: pytest.Item) -> None:
    """The first test of this directory starts the stack booting, so that it does not idle beside others.
    Not on a pytest-xdist worker: the tests that use it may run on the other worker."""
    if _wanted.pop("stack", False) and "PYTEST_XDIST_WORKER" not in os.environ:
        _early["stack"] = launch()
        item.config.add_cleanup(lambda: _early and _early.pop("stack").stop())


@dataclass
class TokenedStack:
    endpoints: dict
    token: str
    workdir: Path
    s3: object
    sqs: object
    dynamodb: object
    table: StateTable

    @property
    def base_url(self) -> str:
        return self.endpoints["api_url"]

    def log(self) -> str:
        return (self.workdir / "stack.log").read_text(errors="replace")

    def banner(self) -> str:
        """The start banner's line that prints the postback URL: the one place the token is shown."""
        return f"postback URL:  {self.endpoints['postback_url']}"


@pytest.fixture(scope="module")
def tokened_stack():
    launched = _early.pop("stack", None) or launch()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not launched.endpoints_file.exists():
            if launched.process.poll() is not None or time.monotonic() > deadline:
                log = (launched.workdir / "stack.log").read_text()[-4000:]
                pytest.fail(f"the local stack did not start:\n{log}")
            time.sleep(0.1)
        endpoints = json.loads(launched.endpoints_file.read_text())
        token = endpoints["postback_url"].rsplit("/postback/", 1)[1]
        with patched_environ(aws_environment(endpoints["aws_endpoint_url"], endpoints["region"])):
            s3, sqs, dynamodb = (boto3.client(name) for name in ("s3", "sqs", "dynamodb"))
        yield TokenedStack(
            endpoints=endpoints,
            token=token,
            workdir=launched.workdir,
            s3=s3,
            sqs=sqs,
            dynamodb=dynamodb,
            table=StateTable(dynamodb, endpoints["tables"]["StateTable"]),
        )
    finally:
        launched.stop()
