"""An accepted postback costs the ingest's log no line of its own at the default level (INFO): the stage's
access log already has one per request, and the function writes only its Accepted metric (docs/cost.md,
log volume). The line is written at DEBUG, for whoever turns that on."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

from local import stack as local_stack

ROOT = Path(__file__).resolve().parents[2]


def postback_event(token: str, body: bytes) -> dict:
    event = json.loads((ROOT / "events" / "ingest" / "postback-admitted.json").read_text())
    event.update(
        resource="/postback/{token}",
        path=f"/postback/{token}",
        pathParameters={"token": token},
        body=base64.b64encode(body).decode(),
        isBase64Encoded=True,
    )
    event["requestContext"].update(resourcePath="/postback/{token}", requestId=str(uuid.uuid4()))
    event["requestContext"]["identity"]["sourceIp"] = "127.0.0.1"
    return event


def test_at_info_an_accepted_postback_writes_its_metric_and_no_line(moto_server, aws_stack, capsys):
    token = local_stack.postback_token(aws_stack, moto_server.endpoint_url)
    assert token
    ingest = local_stack.function_for(
        aws_stack,
        "IngestFunction",
        moto_server.endpoint_url,
        environment={"POWERTOOLS_LOG_LEVEL": "INFO"},
        name_suffix="LogVolume",
        max_containers=1,
    )
    body = f"<POSTBACK><ORIGIN>SMS_MT</ORIGIN><TRACKINGID>{uuid.uuid4().hex}</TRACKINGID></POSTBACK>".encode()
    capsys.readouterr()
    assert ingest.invoke(postback_event(token, body))["statusCode"] == 200

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    metrics = [line for line in lines if "_aws" in line]
    logged = [line.get("message") for line in lines if "_aws" not in line]
    assert [m.get("Accepted") for m in metrics] == [[1.0]]
    assert logged == []
