"""The template's security review, kept true: what each function's role may do (README, Security review),
no log that could carry the postback URL's token, and a reason with every scanner finding accepted."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from local.template import load_template

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def resources() -> dict[str, dict[str, Any]]:
    return load_template(ROOT / "template.yaml")["Resources"]


def named(value: Any) -> str:
    """A policy resource as the review names it: `Queue.Arn`, `${Bucket.Arn}/raw/*`, `If(...)`."""
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return ".".join(value["Fn::GetAtt"])
    if isinstance(value, dict) and "Fn::Sub" in value:
        return value["Fn::Sub"]
    if isinstance(value, dict) and "Ref" in value:
        return value["Ref"]
    if isinstance(value, dict) and "Fn::If" in value:
        _, then, otherwise = value["Fn::If"]
        return f"If({named(then)} | {named(otherwise)})"
    return json.dumps(value)


def grants(role: dict[str, Any]) -> set[tuple[str, str]]:
    """Every (action, resource) an Allow statement of the role's inline policies grants."""
    found = set()
    for policy in role["Properties"].get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            targets = (
                statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            )
            found |= {(action, named(target)) for action in actions for target in targets}
    return found


LOGS = {"logs:CreateLogStream", "logs:PutLogEvents"}
TABLE = "StateTable.Arn"
REVIEWED = {
    "IngestFunction": {
        *((action, "IngestLogGroup.Arn") for action in LOGS),
        ("s3:PutObject", "${ArchiveBucket.Arn}/raw/*"),
        ("sqs:SendMessage", "PostbackQueue.Arn"),
    },
    "ConsumerFunction": {
        *((action, "ConsumerLogGroup.Arn") for action in LOGS),
        ("sqs:ReceiveMessage", "PostbackQueue.Arn"),
        ("sqs:DeleteMessage", "PostbackQueue.Arn"),
        ("sqs:GetQueueAttributes", "PostbackQueue.Arn"),
        ("dynamodb:BatchWriteItem", TABLE),
        ("dynamodb:PutItem", TABLE),
        ("s3:GetObject", "${ArchiveBucket.Arn}/raw/*"),
    },
    "StaleMessagesFunction": {
        *((action, "StaleMessagesLogGroup.Arn") for action in LOGS),
        ("dynamodb:Query", TABLE),
        ("dynamodb:Query", "${StateTable.Arn}/index/gsi1"),
        ("dynamodb:Query", "${StateTable.Arn}/index/gsi2"),
        ("dynamodb:UpdateItem", TABLE),
        ("dynamodb:PutItem", TABLE),
    },
    "SenderFunction": {
        *((action, "SenderLogGroup.Arn") for action in LOGS),
        ("sqs:ReceiveMessage", "SendQueue.Arn"),
        ("sqs:DeleteMessage", "SendQueue.Arn"),
        ("sqs:GetQueueAttributes", "SendQueue.Arn"),
        ("sqs:ChangeMessageVisibility", "SendQueue.Arn"),
        ("sqs:SendMessage", "SendDLQ.Arn"),
        *(
            (f"dynamodb:{action}", TABLE)
            for action in ("GetItem", "PutItem", "UpdateItem", "BatchWriteItem", "Query")
        ),
        (
            "secretsmanager:GetSecretValue",
            "If(ProviderApiKeySecret | arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}"
            ":secret:${ProviderApiKeySecretName}-??????)",
        ),
    },
}


def functions(resources: dict[str, dict[str, Any]]) -> list[str]:
    return sorted(name for name, r in resources.items() if r["Type"] == "AWS::Serverless::Function")


def test_every_function_was_reviewed(resources):
    assert functions(resources) == sorted(REVIEWED)


@pytest.mark.parametrize("function", sorted(REVIEWED))
def test_each_function_may_do_what_the_review_lists_and_no_more(resources, function):
    properties = resources[function]["Properties"]
    # A role of its own, written out: SAM's generated role would add managed policies on "*".
    assert "Policies" not in properties
    role_name = properties["Role"]["Fn::GetAtt"][0]
    role = resources[role_name]
    assert "ManagedPolicyArns" not in role["Properties"]
    assert "PermissionsBoundary" not in role["Properties"]
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == {
        "Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }
    assert grants(role) == REVIEWED[function]


def test_no_grant_is_a_wildcard(resources):
    for name, resource in resources.items():
        if resource["Type"] == "AWS::IAM::Role" and "Policies" in resource["Properties"]:
            for action, target in grants(resource):
                assert "*" not in action, (name, action)
                assert target != '"*"', (name, action)


def test_the_only_managed_policy_is_api_gateways_account_logging_role(resources):
    managed = {
        name: r["Properties"]["ManagedPolicyArns"]
        for name, r in resources.items()
        if r["Type"] == "AWS::IAM::Role" and "ManagedPolicyArns" in r["Properties"]
    }
    policy = "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
    assert managed == {"ApiGatewayCloudWatchRole": [{"Fn::Sub": policy}]}


# ---------------------------------------------------------------------------- the postback URL's token

# $context variables that cannot carry the request's path (and so the token in it). $context.path does,
# and so do $context.error.message and messageString: a resource policy denial names the resource ARN,
# which ends with the request's path.
PATH_FREE = {
    "requestId",
    "extendedRequestId",
    "identity.sourceIp",
    "httpMethod",
    "resourcePath",
    "resourceId",
    "stage",
    "status",
    "responseLength",
    "responseLatency",
    "integrationLatency",
    "integrationStatus",
    "error.responseType",
    "requestTime",
    "requestTimeEpoch",
    "protocol",
}


def test_the_access_log_never_records_the_request_path(resources):
    access_log = resources["PostbackApi"]["Properties"]["AccessLogSetting"]["Format"]
    variables = set(re.findall(r"\$context\.([A-Za-z0-9_.]+)", access_log))
    assert variables
    assert variables <= PATH_FREE, variables - PATH_FREE
    assert "$input" not in access_log
    assert json.loads(access_log)["resource"] == "$context.resourcePath"


def test_the_api_writes_no_execution_log_with_the_request(resources):
    # Execution logs (INFO) list the method request's path parameters, and data tracing the whole request.
    settings = resources["PostbackApi"]["Properties"]["MethodSettings"]
    assert settings
    for setting in settings:
        assert setting["LoggingLevel"] == "OFF"
        assert setting["DataTraceEnabled"] is False


def test_the_token_is_only_a_path_parameter(resources):
    paths = {
        event["Properties"]["Path"]
        for event in resources["IngestFunction"]["Properties"]["Events"].values()
        if event["Type"] == "Api"
    }
    assert paths == {"/postback", "/postback/{token}"}


def test_the_token_parameter_is_not_echoed(resources):
    template = load_template(ROOT / "template.yaml")
    assert template["Parameters"]["PostbackToken"]["NoEcho"] is True
    outputs = json.dumps(template.get("Outputs", {}))
    assert '{"Ref": "PostbackToken"}' not in outputs
    assert "${PostbackToken}" not in outputs


# ---------------------------------------------------------------------------- scanner findings accepted


def test_every_checkov_finding_skipped_says_why(resources):
    skipped = 0
    for name, resource in resources.items():
        for skip in ((resource.get("Metadata") or {}).get("checkov") or {}).get("skip", []):
            assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), (name, skip)
            assert len(skip.get("comment", "")) > 40, (name, skip["id"])
            skipped += 1
    assert skipped
