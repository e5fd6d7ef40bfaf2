"""Fixtures the operator CLI's tests share: the template's resource names on the session's moto, the
endpoints file `make run` would write for them, and the CLI run in-process against it."""

from __future__ import annotations

import json

import pytest

from mmsbridge.aws.state_table import StateTable
from ops.cli import main


@pytest.fixture(scope="module")
def names(aws_stack):
    queues = aws_stack.queues()
    return {
        "table": aws_stack.tables()["StateTable"].name,
        "bucket": aws_stack.buckets()["ArchiveBucket"].name,
        "queue": queues["PostbackQueue"].url,
        "dlq": queues["PostbackDLQ"].url,
        "send_queue": queues["SendQueue"].url,
        "send_dlq": queues["SendDLQ"].url,
    }


@pytest.fixture(scope="module")
def table(aws_clients, names):
    return StateTable(aws_clients["dynamodb"], names["table"])


@pytest.fixture
def endpoints_file(tmp_path, moto_server, aws_stack, names):
    """What `make run` writes (RunningStack.endpoints), pointing at the session's moto."""
    path = tmp_path / "endpoints.json"
    path.write_text(
        json.dumps(
            {
                "aws_endpoint_url": moto_server.endpoint_url,
                "region": aws_stack.region,
                "stack_name": aws_stack.stack_name,
                "buckets": {"ArchiveBucket": names["bucket"]},
                "queues": {
                    "PostbackQueue": names["queue"],
                    "PostbackDLQ": names["dlq"],
                    "SendQueue": names["send_queue"],
                    "SendDLQ": names["send_dlq"],
                },
                "tables": {"StateTable": names["table"]},
            }
        )
    )
    return path


@pytest.fixture
def cli(endpoints_file, capsys):
    """Runs `python -m ops --endpoints-file <file> ARGS` in-process: (exit code, stdout, stderr)."""

    def run(*argv, session=None):
        code = main(["--endpoints-file", str(endpoints_file), *argv], session=session)
        out, err = capsys.readouterr()
        return code, out, err

    return run
