"""The template's storage and queue settings that the issues and the README promise, checked on the template
itself (cfn-lint and checkov check the syntax and the generic rules; these are mmsbridge's own)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from local.template import load_template
from mmsbridge import envelope

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(ROOT / "template.yaml")


@pytest.fixture(scope="module")
def resources(template) -> dict[str, dict[str, Any]]:
    return template["Resources"]


def of_type(resources: dict[str, dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {name: resource for name, resource in resources.items() if resource["Type"] == kind}


def test_the_archive_bucket_is_private_encrypted_versioned_and_ages_to_cold_storage(resources):
    bucket = resources["ArchiveBucket"]["Properties"]
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled"
    assert rule["Transitions"][0]["TransitionInDays"] == {"Ref": "ArchiveColdStorageDays"}
    assert "ExpirationInDays" not in rule  # the raw archive is never deleted, only moved


def test_the_archive_bucket_refuses_every_request_without_tls(resources):
    policy = resources["ArchiveBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "ArchiveBucket"}
    (deny,) = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert deny["Principal"] == "*"
    assert deny["Action"] == "s3:*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert {"Fn::GetAtt": ["ArchiveBucket", "Arn"]} in deny["Resource"]
    assert {"Fn::Sub": "${ArchiveBucket.Arn}/*"} in deny["Resource"]


def test_every_queue_is_encrypted_and_every_dead_letter_queue_has_a_depth_alarm(resources):
    queues = of_type(resources, "AWS::SQS::Queue")
    assert all(queue["Properties"].get("SqsManagedSseEnabled") is True for queue in queues.values())
    dlqs = {
        queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for queue in queues.values()
        if "RedrivePolicy" in queue["Properties"]
    }
    assert dlqs == {"PostbackDLQ", "SendDLQ"}
    watched = {
        dimension["Value"]["Fn::GetAtt"][0]
        for alarm in of_type(resources, "AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
        and alarm["Properties"]["Threshold"] == 1
        for dimension in alarm["Properties"]["Dimensions"]
    }
    assert dlqs <= watched


def test_each_mapped_queue_hides_a_message_at_least_six_times_its_functions_timeout(template, resources):
    default_timeout = template["Globals"]["Function"]["Timeout"]
    checked = 0
    for function in of_type(resources, "AWS::Serverless::Function").values():
        timeout = function["Properties"].get("Timeout", default_timeout)
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] != "SQS":
                continue
            queue = resources[event["Properties"]["Queue"]["Fn::GetAtt"][0]]["Properties"]
            window = event["Properties"].get("MaximumBatchingWindowInSeconds", 0)
            assert queue["VisibilityTimeout"] >= 6 * timeout + window
            checked += 1
    assert checked == 2


def test_the_largest_inline_envelope_fits_the_postback_queue():
    body = b"x" * envelope.INLINE_BODY_LIMIT
    message = envelope.encode(
        key=f"raw/{'0' * 64}.xml",
        sha256="0" * 64,
        body=body,
        received_at=datetime.now(UTC),
        source_ip="ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",
        request_id="r" * 128,
    )
    resources = load_template(ROOT / "template.yaml")["Resources"]
    assert len(message.encode()) <= resources["PostbackQueue"]["Properties"]["MaximumMessageSize"]
    bigger = envelope.encode(
        key="k", sha256="0" * 64, body=body + b"x", received_at=datetime.now(UTC), source_ip="", request_id=""
    )
    assert "body_b64" not in bigger  # above the limit the body travels by key only


def test_the_outputs_name_the_endpoints_a_deployment_needs(template):
    assert {"PostbackUrl", "ArchiveBucketName", "PostbackQueueUrl", "StateTableName", "SendQueueUrl"} <= set(
        template["Outputs"]
    )
    assert {"PostbackTokenSecretArn", "PostbackUrlCommand"} <= set(template["Outputs"])


def test_the_readme_documents_every_template_parameter_with_its_default(template):
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| Parameter | Default | Meaning |") :].split("\n\n")[0]
    rows = {
        line.split("|")[1].strip().strip("`"): line.split("|")[2].strip() for line in table.splitlines()[2:]
    }
    assert set(rows) == set(template["Parameters"])
    for name, parameter in template["Parameters"].items():
        default = str(parameter.get("Default", ""))
        if default and default.isdigit():
            assert rows[name] == default, name
