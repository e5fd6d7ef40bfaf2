"""The template's security review, kept true: what each function's role may do (docs/security.md),
no log that could carry the postback URL's token, and a reason with every scanner finding accepted."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from local.template.load import load_template
from local.template.resolve import load_stack

ROOT = Path(__file__).resolve().parents[2]
KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


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
    """Every (action, resource) an Allow statement of the role's inline policies (or of an AWS::IAM::Policy)
    grants."""
    documents = [policy["PolicyDocument"] for policy in role["Properties"].get("Policies", [])]
    if "PolicyDocument" in role["Properties"]:
        documents.append(role["Properties"]["PolicyDocument"])
    found = set()
    for document in documents:
        for statement in document["Statement"]:
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
        ("secretsmanager:GetSecretValue", "PostbackTokenSecret"),
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
    "EventPublisherFunction": {
        *((action, "EventPublisherLogGroup.Arn") for action in LOGS),
        *(
            (f"dynamodb:{action}", "StateTable.StreamArn")
            for action in ("DescribeStream", "GetRecords", "GetShardIterator")
        ),
        ("dynamodb:ListStreams", "${StateTable.Arn}/stream/*"),
        ("dynamodb:Query", TABLE),
        (
            "events:PutEvents",
            "If(EventBus.Arn | arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}"
            ":event-bus/${EventBusName})",
        ),
        ("sqs:SendMessage", "EventPublisherDLQ.Arn"),
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
        if resource["Type"] == "AWS::IAM::Policy" or (
            resource["Type"] == "AWS::IAM::Role" and "Policies" in resource["Properties"]
        ):
            for action, target in grants(resource):
                assert "*" not in action, (name, action)
                assert target != '"*"', (name, action)


# The services whose data a function reads or writes: a customer managed key (KmsKeyArn) encrypts them all.
KEYED_SERVICES = {"s3", "sqs", "dynamodb"}


def test_each_function_may_use_the_key_only_when_one_is_set_and_only_through_its_own_services(resources):
    """kms:Decrypt and GenerateDataKey on KmsKeyArn, through S3, SQS or DynamoDB (kms:ViaService), for the
    services each function's review lists and no other, in a policy that exists only with a key."""
    policies = {name: r for name, r in resources.items() if r["Type"] == "AWS::IAM::Policy"}
    attached = {}
    for name, policy in policies.items():
        assert policy["Condition"] == "HasKmsKey", name
        (role,) = policy["Properties"]["Roles"]
        attached[role["Ref"]] = policy
    roles = {resources[function]["Properties"]["Role"]["Fn::GetAtt"][0]: function for function in REVIEWED}
    assert set(attached) == set(roles)
    for role, function in roles.items():
        assert grants(attached[role]) == {("kms:Decrypt", "KmsKeyArn"), ("kms:GenerateDataKey", "KmsKeyArn")}
        (statement,) = attached[role]["Properties"]["PolicyDocument"]["Statement"]
        via = {named(service) for service in statement["Condition"]["StringEquals"]["kms:ViaService"]}
        used = {action.split(":")[0] for action, _ in REVIEWED[function]} & KEYED_SERVICES
        assert via == {f"{service}.${{AWS::Region}}.amazonaws.com" for service in used}, function
    # Deployed: none without a key, one per function with one.
    policy = "AWS::IAM::Policy"
    assert not [r for r in load_stack(ROOT / "template.yaml", None).resources.values() if r.type == policy]
    keyed = load_stack(ROOT / "template.yaml", None, overrides={"KmsKeyArn": KEY})
    assert {r.properties["Roles"][0] for r in keyed.resources.values() if r.type == policy} == {
        keyed.resources[role].physical_name for role in roles
    }


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


def test_the_only_route_carries_the_token(resources):
    events = {
        name: event["Properties"]
        for name, event in resources["IngestFunction"]["Properties"]["Events"].items()
        if event["Type"] == "Api"
    }
    assert [(e["Path"], e["Method"]) for e in events.values()] == [("/postback/{token}", "POST")]


def test_the_token_is_a_secret_the_stack_generates_url_safe(resources):
    secret = resources["PostbackTokenSecret"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    assert "Condition" not in secret  # always there: the ingest refuses every postback without it
    properties = secret["Properties"]
    assert "SecretString" not in properties  # nothing in the template; generated in the account
    generate = properties["GenerateSecretString"]
    assert json.loads(generate["SecretStringTemplate"]) == {}
    assert generate["GenerateStringKey"] == "current"  # {"current": ...}, as the ingest reads it
    assert generate["PasswordLength"] >= 40
    # Letters and digits only: it goes into a URL path as it is.
    assert generate["ExcludePunctuation"] is True
    assert generate.get("IncludeSpace", False) is False
    assert not generate.get("ExcludeCharacters")  # nothing else to exclude: punctuation is out


def test_the_ingest_reads_the_token_from_its_secret_never_from_its_environment(resources):
    environment = resources["IngestFunction"]["Properties"]["Environment"]["Variables"]
    assert environment["POSTBACK_TOKEN_SECRET"] == {"Ref": "PostbackTokenSecret"}
    assert "POSTBACK_TOKEN" not in environment
    template = load_template(ROOT / "template.yaml")
    assert not [name for name in template["Parameters"] if "token" in name.lower()]
    # No function's environment names the token's value in any way.
    for name, resource in resources.items():
        if resource["Type"] == "AWS::Serverless::Function":
            variables = json.dumps(resource["Properties"].get("Environment", {}))
            assert "SecretString" not in variables, name
            assert "resolve:secretsmanager" not in variables, name


def test_only_the_ingest_may_read_the_token(resources):
    readers = {
        (name, action)
        for name, resource in resources.items()
        if resource["Type"] == "AWS::IAM::Role" and "Policies" in resource["Properties"]
        for action, target in grants(resource)
        if "PostbackTokenSecret" in target
    }
    assert readers == {("IngestFunctionRole", "secretsmanager:GetSecretValue")}
    ingest_secrets = {
        target
        for action, target in grants(resources["IngestFunctionRole"])
        if action.startswith("secretsmanager:")
    }
    assert ingest_secrets == {"PostbackTokenSecret"}  # not the provider's API key


def test_no_output_holds_the_token(resources):
    template = load_template(ROOT / "template.yaml")
    outputs = template["Outputs"]
    text = json.dumps(outputs)
    assert "resolve:secretsmanager" not in text  # a dynamic reference would resolve the value
    assert "SecretString" not in text.replace("--query SecretString", "")  # no GetAtt of the value
    url = outputs["PostbackUrl"]["Value"]["Fn::Sub"]
    assert url.endswith(".execute-api.${AWS::Region}.${AWS::URLSuffix}/v1/postback/{token}")
    assert outputs["PostbackTokenSecretArn"]["Value"] == {"Ref": "PostbackTokenSecret"}
    command = outputs["PostbackUrlCommand"]["Value"]["Fn::Sub"]
    assert command.startswith("aws secretsmanager get-secret-value ")
    assert "--secret-id ${PostbackTokenSecret} " in command
    assert url.removesuffix("{token}") in command
    assert command.endswith("+ .current'")


# ---------------------------------------------------------------------------- scanner findings accepted


def test_every_checkov_finding_skipped_says_why(resources):
    skipped = 0
    for name, resource in resources.items():
        for skip in ((resource.get("Metadata") or {}).get("checkov") or {}).get("skip", []):
            assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), (name, skip)
            assert len(skip.get("comment", "")) > 40, (name, skip["id"])
            skipped += 1
    assert skipped
