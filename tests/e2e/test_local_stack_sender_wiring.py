"""The send path's wiring on the running local stack: the provider simulator it starts, the API key secret
it shares with the sender, the sender calling the simulator, and the simulator's postbacks reaching the
local ingest."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from typing import Any

import boto3
import pytest

from local.runtime import patched_environ
from local.stack import aws_environment
from tests.waiting import eventually

pytestmark = pytest.mark.e2e


def http(url: str, body: bytes | None = None, content_type: str = "application/json") -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def control(endpoints: dict, route: str, payload: dict | None = None) -> Any:
    body = json.dumps(payload).encode() if payload is not None else None
    status, answer = http(endpoints["simulator"]["control_url"] + route, body)
    assert status == 200, answer
    return json.loads(answer)


def simulator_log(endpoints: dict) -> list[dict]:
    return control(endpoints, "log")["entries"]


@pytest.fixture(scope="module")
def secretsmanager(endpoints):
    with patched_environ(aws_environment(endpoints["aws_endpoint_url"], endpoints["region"])):
        return boto3.client("secretsmanager")


def test_the_endpoints_file_names_the_simulator_and_the_send_queues(endpoints):
    simulator = endpoints["simulator"]
    assert simulator["api_url"].startswith("http://127.0.0.1:")
    assert simulator["api_url"].endswith("/API/wxml/1.3/")
    assert simulator["control_url"] == simulator["api_url"].removesuffix("API/wxml/1.3/") + "_sim/"
    assert simulator["api_key_secret"] == "mmsbridge-local-ProviderApiKeySecret"
    assert endpoints["send_queue_url"] == endpoints["queues"]["SendQueue"]
    assert endpoints["send_dlq_url"] == endpoints["queues"]["SendDLQ"]
    health = control(endpoints, "health")
    assert health["ok"] is True
    config = control(endpoints, "config")
    # The provider is given the URL with the token, as docs/deploying.md says to give it in AWS.
    assert config["postback_url"] == endpoints["postback_url"]
    assert config["postback_url"].rsplit("/", 2)[1:] == ["postback", endpoints["postback_url"][-48:]]
    assert config["throughput_per_s"] == 20  # samconfig [local] SendThroughputPerSecond


def test_the_simulator_accepts_the_key_in_the_secret_and_no_other(endpoints, secretsmanager):
    key = secretsmanager.get_secret_value(SecretId=endpoints["simulator"]["api_key_secret"])["SecretString"]
    assert len(key) == 32  # the template's GenerateSecretString PasswordLength
    assert key.isalnum()

    def error_code(api_key: str) -> str:
        # No TO: with the right key this fails on the request, after the key was checked.
        request = f"<REQUEST><ACTION>sendSMS</ACTION><APIKEY>{api_key}</APIKEY></REQUEST>"
        status, answer = http(endpoints["simulator"]["api_url"], request.encode(), "text/xml")
        assert status == 200
        return answer.decode().split("<ERRORCODE>")[1].split("</ERRORCODE>")[0]

    assert error_code("not-" + key) == "E104"
    assert error_code(key) not in ("E102", "E104")


def test_the_sender_calls_the_simulator_and_its_delivery_reports_become_state(endpoints, local_aws, table):
    # Accepted by the simulator: the sender has the simulator's URL (PROVIDER_API_URL) and the secret's key.
    text = f"wiring {uuid.uuid4().hex[:12]}"
    request = {
        "request_id": f"e2e-{uuid.uuid4()}",
        "action": "sendSMS",
        "to": "+1 312 555 0102",
        "from": "12345",
        "text": text,
    }
    local_aws["sqs"].send_message(QueueUrl=endpoints["send_queue_url"], MessageBody=json.dumps(request))

    def accepted_call() -> dict | None:
        calls = [e for e in simulator_log(endpoints) if e.get("action") == "sendSMS" and e.get("fields")]
        return next((c for c in calls if text in json.dumps(c["fields"])), None)

    call = eventually(accepted_call)
    assert call, f"the sender did not call the simulator within 20 s: {simulator_log(endpoints)[-5:]}"
    assert call["accepted"], call
    tracking_id = call["tracking_id"]
    # The sender's own record alone is not enough: the simulator's postbacks must add the history.
    message = eventually(lambda: (m := table.message(tracking_id)) and m["history"] and m)
    assert message, "the simulator's delivery reports did not reach the state table within 20 s"
    assert message["history"][0]["code"].startswith("N")


def test_an_inbound_sms_from_the_simulator_reaches_the_state_table(endpoints, table):
    mobile = "1555" + str(uuid.uuid4().int)[:7]
    injected = control(endpoints, "inbound", {"kind": "sms_mo", "from": mobile, "to": "12345", "text": "hi"})
    assert injected["delivery_id"] is not None  # queued for the postback URL the stack gave it

    def stored() -> list[dict]:
        return list(table.query(f"FROM#{mobile}", index="gsi2"))

    items = eventually(stored)
    assert items, "the inbound SMS did not reach the state table within 20 s"
    assert items[0]["pk"].startswith("IN#SMS_MO#")
    assert items[0]["text"] == "hi"
