"""The template's storage and queue settings that the issues and the docs promise, checked on the template
itself (cfn-lint and checkov check the syntax and the generic rules; these are mmsbridge's own)."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from local.template.load import load_template
from local.template.resolve import load_stack
from local.template.specs import LocalStack
from mmsbridge.core import envelope
from mmsbridge.ingest.admission import Refusal
from mmsbridge.postbacks.planner import Rejected, plan_batch

ROOT = Path(__file__).resolve().parents[2]
KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(ROOT / "template.yaml")


@pytest.fixture(scope="module")
def resources(template) -> dict[str, dict[str, Any]]:
    return template["Resources"]


def of_type(resources: dict[str, dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {name: resource for name, resource in resources.items() if resource["Type"] == kind}


@functools.cache
def deployed(**parameters: str) -> LocalStack:
    """The template resolved as a deployment with these parameters and every other at its default (shared:
    read it, never change it)."""
    return load_stack(ROOT / "template.yaml", None, overrides=parameters)


def sse(rule: dict[str, Any]) -> dict[str, Any]:
    return rule["ServerSideEncryptionByDefault"]


def test_the_archive_bucket_is_kept_private_versioned_and_ages_to_cold_storage(resources):
    bucket = resources["ArchiveBucket"]
    assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("Retain", "Retain")
    properties = bucket["Properties"]
    assert set(properties["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(properties["PublicAccessBlockConfiguration"]) == 4
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    lifecycle = deployed().resources["ArchiveBucket"].properties["LifecycleConfiguration"]
    # A postback of a few hundred bytes never moves: Glacier IR would bill it as 128 KB (docs/cost.md).
    assert lifecycle["TransitionDefaultMinimumObjectSize"] == "all_storage_classes_128K"
    (rule,) = lifecycle["Rules"]
    assert (rule["Status"], rule["Prefix"]) == ("Enabled", "raw/")
    assert rule["Transitions"] == [{"StorageClass": "GLACIER_IR", "TransitionInDays": "90"}]
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": "30"}
    assert "ExpirationInDays" not in rule  # by default the raw archive is never deleted, only moved


def test_the_archive_expires_only_when_asked_and_the_quarantine_worklist_never_does(template):
    assert template["Parameters"]["ArchiveExpirationDays"]["Default"] == 0
    kept = deployed(ArchiveExpirationDays="0").resources["ArchiveBucket"].properties
    assert not any("ExpirationInDays" in rule for rule in kept["LifecycleConfiguration"]["Rules"])
    cold, expiry = (
        deployed(ArchiveExpirationDays="400")
        .resources["ArchiveBucket"]
        .properties["LifecycleConfiguration"]["Rules"]
    )
    assert expiry == {
        "Id": "raw-expiration",
        "Status": "Enabled",
        "Prefix": "raw/",
        "ExpirationInDays": "400",
    }
    # The expired object becomes a noncurrent version, which the other rule on the same prefix removes.
    assert cold["Prefix"] == expiry["Prefix"]
    assert cold["NoncurrentVersionExpiration"] == {"NoncurrentDays": "30"}
    # A rule of its own: S3 refuses a rule whose expiration comes before its own transition.
    assert "Transitions" not in expiry
    # The state table's records expire by HistoryRetentionDays, but never a quarantine record.
    rejected = Rejected("r", "0" * 64, f"raw/{'0' * 64}.xml", "not_xml", "", datetime.now(UTC))
    ((record, _),) = plan_batch([], [rejected], retention_days=1).quarantine
    assert "expires_at" not in record


def test_the_archive_bucket_refuses_every_request_without_tls(resources):
    policy = resources["ArchiveBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "ArchiveBucket"}
    (deny,) = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert deny["Principal"] == "*"
    assert deny["Action"] == "s3:*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert {"Fn::GetAtt": ["ArchiveBucket", "Arn"]} in deny["Resource"]
    assert {"Fn::Sub": "${ArchiveBucket.Arn}/*"} in deny["Resource"]


def test_without_a_key_the_archive_queues_and_table_use_aws_managed_encryption(template):
    assert template["Parameters"]["KmsKeyArn"]["Default"] == ""
    stack = deployed()
    (rule,) = stack.resources["ArchiveBucket"].properties["BucketEncryption"][
        "ServerSideEncryptionConfiguration"
    ]
    assert sse(rule) == {"SSEAlgorithm": "AES256"}
    for queue in stack.queues().values():
        assert queue.attributes["SqsManagedSseEnabled"] == "true", queue.logical_id
        assert "KmsMasterKeyId" not in queue.attributes, queue.logical_id
    assert stack.resources["StateTable"].properties["SSESpecification"] == {"SSEEnabled": True}


def test_with_a_key_the_archive_queues_and_table_are_encrypted_with_it():
    stack = deployed(KmsKeyArn=KEY)
    (rule,) = stack.resources["ArchiveBucket"].properties["BucketEncryption"][
        "ServerSideEncryptionConfiguration"
    ]
    assert sse(rule) == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KEY}
    assert rule["BucketKeyEnabled"] is True
    queues = stack.queues()
    assert len(queues) == 5
    for queue in queues.values():
        assert queue.attributes["KmsMasterKeyId"] == KEY, queue.logical_id
        assert queue.attributes["SqsManagedSseEnabled"] == "false", queue.logical_id
    assert stack.resources["StateTable"].properties["SSESpecification"] == {
        "SSEEnabled": True,
        "SSEType": "KMS",
        "KMSMasterKeyId": KEY,
    }


def test_the_state_table_is_kept_and_protected_from_deletion(resources):
    table = resources["StateTable"]
    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("Retain", "Retain")
    assert table["Properties"]["DeletionProtectionEnabled"] is True
    assert table["Properties"]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_every_queue_has_one_policy_and_it_refuses_requests_without_tls(resources):
    queues = of_type(resources, "AWS::SQS::Queue")
    covered: dict[str, list[str]] = {}
    for name, policy in of_type(resources, "AWS::SQS::QueuePolicy").items():
        (queue,) = policy["Properties"]["Queues"]
        covered.setdefault(queue["Ref"], []).append(name)
        (deny,) = [
            s
            for s in policy["Properties"]["PolicyDocument"]["Statement"]
            if isinstance(s, dict) and s.get("Sid") == "DenyInsecureTransport"
        ]
        assert deny == {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "sqs:*",
            "Resource": {"Fn::GetAtt": [queue["Ref"], "Arn"]},
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    # One policy each: a queue has one policy attribute, and a second QueuePolicy would replace the first.
    assert covered == {name: [f"{name}Policy"] for name in queues}


def test_the_send_queue_takes_send_requests_only_from_the_named_roles_when_any_are_named(template):
    assert template["Parameters"]["SendQueueSenderArns"]["Default"] == ""
    statements = deployed().resources["SendQueuePolicy"].properties["PolicyDocument"]["Statement"]
    assert [s["Sid"] for s in statements] == ["DenyInsecureTransport"]  # IAM policies alone decide

    roles = ["arn:aws:iam::123456789012:role/orders", "arn:aws:iam::123456789012:role/operator"]
    stack = deployed(SendQueueSenderArns=",".join(roles))
    queue = stack.queues()["SendQueue"].arn
    statements = {
        s["Sid"]: s for s in stack.resources["SendQueuePolicy"].properties["PolicyDocument"]["Statement"]
    }
    assert set(statements) == {"DenyInsecureTransport", "OnlyNamedRolesSend", "NamedRolesSend"}
    # A Deny: an Allow in some other role's IAM policy cannot undo it.
    assert statements["OnlyNamedRolesSend"] == {
        "Sid": "OnlyNamedRolesSend",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "sqs:SendMessage",
        "Resource": queue,
        "Condition": {"ArnNotEquals": {"aws:PrincipalArn": roles}},
    }
    assert statements["NamedRolesSend"] == {
        "Sid": "NamedRolesSend",
        "Effect": "Allow",
        "Principal": {"AWS": roles},
        "Action": "sqs:SendMessage",
        "Resource": queue,
    }
    for name in ("PostbackQueuePolicy", "PostbackDLQPolicy", "SendDLQPolicy"):
        assert [s["Sid"] for s in stack.resources[name].properties["PolicyDocument"]["Statement"]] == [
            "DenyInsecureTransport"
        ]


def on_failure_destinations(resources: dict[str, dict[str, Any]]) -> set[str]:
    """The queues a stream event source mapping describes the batches it gave up on to."""
    return {
        event["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
        for function in of_type(resources, "AWS::Serverless::Function").values()
        for event in function["Properties"].get("Events", {}).values()
        if "DestinationConfig" in event["Properties"]
    }


def test_every_dead_letter_queue_has_a_depth_alarm(resources):
    queues = of_type(resources, "AWS::SQS::Queue")
    dlqs = {
        queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for queue in queues.values()
        if "RedrivePolicy" in queue["Properties"]
    } | on_failure_destinations(resources)
    assert dlqs == {"PostbackDLQ", "SendDLQ", "EventPublisherDLQ"}
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


def test_the_deploying_guide_documents_every_template_parameter_with_its_default(template):
    """docs/deploying.md's parameter table: one row per parameter, its default as the template has it
    (`empty` for none), and any range it states the template's."""
    guide = (ROOT / "docs" / "deploying.md").read_text()
    table = guide[guide.index("| Parameter | Default | Meaning |") :].split("\n\n")[0]
    rows = {
        line.split("|")[1].strip().strip("`"): (line.split("|")[2].strip(), line.split("|", 3)[3])
        for line in table.splitlines()[2:]
    }
    assert set(rows) == set(template["Parameters"])
    for name, parameter in template["Parameters"].items():
        shown, meaning = rows[name]
        default = str(parameter.get("Default", ""))
        if default == "":
            assert shown == "empty", name
        elif "," in default:  # a list: every entry is named in the guide
            assert all(entry.split("/")[0] in guide for entry in default.split(",")), name
        else:
            assert shown.strip("`") == default, name
        stated = re.search(r"\((\d+)-(\d+)\)", meaning)
        if stated:
            assert (parameter["MinValue"], parameter["MaxValue"]) == (int(stated[1]), int(stated[2])), name


# ---------------------------------------------------------------------------- bounded cost


def test_the_stage_is_throttled_by_parameters_about_ten_times_a_busy_providers_peak(template, resources):
    (setting,) = resources["PostbackApi"]["Properties"]["MethodSettings"]
    assert (setting["ResourcePath"], setting["HttpMethod"]) == ("/*", "*")  # every method of the stage
    assert setting["ThrottlingRateLimit"] == {"Ref": "ApiThrottleRateLimit"}
    assert setting["ThrottlingBurstLimit"] == {"Ref": "ApiThrottleBurstLimit"}
    parameters = template["Parameters"]
    # One postback at a time per account over keep-alive: a busy provider peaks near 10 a second.
    assert parameters["ApiThrottleRateLimit"]["Default"] == 100
    assert parameters["ApiThrottleBurstLimit"]["Default"] == 200
    (resolved,) = (
        deployed(ApiThrottleRateLimit="5", ApiThrottleBurstLimit="10")
        .resources["PostbackApi"]
        .properties["MethodSettings"]
    )
    assert (resolved["ThrottlingRateLimit"], resolved["ThrottlingBurstLimit"]) == ("5", "10")


def test_the_ingest_reserves_concurrency_only_when_asked(template):
    assert template["Parameters"]["IngestReservedConcurrency"]["Default"] == ""
    for off in ("", "0"):  # a reservation of 0 would stop the function
        ingest = deployed(IngestReservedConcurrency=off).resources["IngestFunction"].properties
        assert "ReservedConcurrentExecutions" not in ingest, off
    ingest = deployed(IngestReservedConcurrency="20").resources["IngestFunction"].properties
    assert ingest["ReservedConcurrentExecutions"] == "20"


def test_refused_postbacks_raise_an_alarm_on_the_metrics_the_ingest_emits(template, resources):
    alarm = resources["RefusedPostbacksAlarm"]["Properties"]
    namespace = template["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
    service = resources["IngestFunction"]["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
    stats = {query["Id"]: query for query in alarm["Metrics"] if "MetricStat" in query}
    names = {query["MetricStat"]["Metric"]["MetricName"] for query in stats.values()}
    assert names == {Refusal.TOKEN.metric_name, Refusal.ADDRESS.metric_name}
    for query in stats.values():
        assert query["ReturnData"] is False
        assert query["MetricStat"]["Metric"]["Namespace"] == namespace
        assert query["MetricStat"]["Metric"]["Dimensions"] == [{"Name": "service", "Value": service}]
        assert (query["MetricStat"]["Stat"], query["MetricStat"]["Period"]) == ("Sum", 300)
    (expression,) = [query for query in alarm["Metrics"] if "Expression" in query]
    assert expression["ReturnData"] is True
    # Both counted, each as 0 in a period it has no data point in.
    assert sorted(re.findall(r"FILL\((\w+), 0\)", expression["Expression"])) == sorted(stats)
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == resources["Ingest5xxAlarm"]["Properties"]["AlarmActions"]


def test_the_api_request_count_alarm_watches_the_stage_the_template_deploys(template):
    assert template["Parameters"]["ApiRequestAlarmThreshold"]["Default"] == 6000
    stack = deployed()
    api = stack.resources["PostbackApi"].properties
    alarm = stack.resources["ApiRequestsAlarm"].properties
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == ("AWS/ApiGateway", "Count", "Sum")
    assert alarm["Dimensions"] == [
        {"Name": "ApiName", "Value": api["Name"]},
        {"Name": "Stage", "Value": api["StageName"]},
    ]
    assert (alarm["Period"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
        300,
        "6000",
        "GreaterThanThreshold",
    )
    assert (
        deployed(ApiRequestAlarmThreshold="100").resources["ApiRequestsAlarm"].properties["Threshold"]
        == "100"
    )


# ------------------------------------------------------------------------- the account's API Gateway setting


def test_the_account_setting_is_made_only_when_asked_and_its_role_outlives_the_stack(template, resources):
    assert template["Parameters"]["ConfigureApiGatewayAccount"]["Default"] == "false"
    account = ("ApiGatewayCloudWatchRole", "ApiGatewayAccountSetting")
    default = deployed()
    assert not set(account) & set(default.resources)
    # The stage's access log stays on: it uses the role the account already has.
    assert default.resources["PostbackApi"].properties["AccessLogSetting"]["DestinationArn"]
    asked = deployed(ConfigureApiGatewayAccount="true")
    assert set(account) <= set(asked.resources)
    role = resources["ApiGatewayCloudWatchRole"]
    # Every REST API in the account and region logs through it: deleting the stack must not delete it.
    assert (role["DeletionPolicy"], role["UpdateReplacePolicy"]) == ("Retain", "Retain")
    # When the stack sets it, the stage waits for it.
    assert resources["PostbackApi"]["DependsOn"] == "ApiGatewayAccountReady"
    assert resources["ApiGatewayAccountReady"]["Metadata"]["AccountSetting"] == {
        "Fn::If": ["CreateApiGatewayAccount", {"Ref": "ApiGatewayAccountSetting"}, ""]
    }
