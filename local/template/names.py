"""What each resource is called locally: its physical name (the template's, else one made from the stack
name and the logical id, as CloudFormation does but without the random suffix) and its ARN."""

import hashlib
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class NameRule:
    """A type's name: the property that gives it, its length limit and the characters it allows."""

    prop: str | None
    max_len: int
    invalid: str  # regex of characters to replace with "-"
    lower: bool = False


DEFAULT_RULE = NameRule(None, 255, r"[^A-Za-z0-9_.-]")
NAME_RULES = {
    "AWS::S3::Bucket": NameRule("BucketName", 63, r"[^a-z0-9-]", lower=True),
    "AWS::SQS::Queue": NameRule("QueueName", 80, r"[^A-Za-z0-9_-]"),
    "AWS::DynamoDB::Table": NameRule("TableName", 255, r"[^A-Za-z0-9_.-]"),
    "AWS::Serverless::SimpleTable": NameRule("TableName", 255, r"[^A-Za-z0-9_.-]"),
    "AWS::Serverless::Function": NameRule("FunctionName", 64, r"[^A-Za-z0-9_-]"),
    "AWS::Lambda::Function": NameRule("FunctionName", 64, r"[^A-Za-z0-9_-]"),
    "AWS::Serverless::LayerVersion": NameRule("LayerName", 140, r"[^A-Za-z0-9_-]"),
    "AWS::Lambda::LayerVersion": NameRule("LayerName", 140, r"[^A-Za-z0-9_-]"),
    "AWS::SNS::Topic": NameRule("TopicName", 256, r"[^A-Za-z0-9_-]"),
    "AWS::Serverless::Api": NameRule("Name", 255, r"[^A-Za-z0-9_.-]"),
    "AWS::ApiGateway::RestApi": NameRule("Name", 255, r"[^A-Za-z0-9_.-]"),
    "AWS::IAM::Role": NameRule("RoleName", 64, r"[^A-Za-z0-9_+=,.@-]"),
    "AWS::Logs::LogGroup": NameRule("LogGroupName", 512, r"[^A-Za-z0-9_./#-]"),
    "AWS::SSM::Parameter": NameRule("Name", 1011, r"[^A-Za-z0-9_./-]"),
    "AWS::SecretsManager::Secret": NameRule("Name", 512, r"[^A-Za-z0-9_/+=.@-]"),
    "AWS::Events::Rule": NameRule("Name", 64, r"[^A-Za-z0-9_.-]"),
    "AWS::Events::EventBus": NameRule("Name", 256, r"[^A-Za-z0-9_./-]"),
    "AWS::Serverless::StateMachine": NameRule("Name", 80, r"[^A-Za-z0-9_-]"),
    "AWS::StepFunctions::StateMachine": NameRule("StateMachineName", 80, r"[^A-Za-z0-9_-]"),
    "AWS::Kinesis::Stream": NameRule("Name", 128, r"[^A-Za-z0-9_.-]"),
}


def _fit(name: str, max_len: int, suffix: str = "") -> str:
    """Trim to ``max_len`` (suffix included) deterministically: prefix + "-" + 8 hex of its hash."""
    if len(name) + len(suffix) <= max_len:
        return name + suffix
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    keep = max_len - len(suffix) - len(digest) - 1
    return name[:keep].rstrip("-_.") + "-" + digest + suffix


def generated_name(rtype: str, stack: str, logical_id: str, suffix: str = "") -> str:
    """``<stack>-<LogicalId>`` within the type's rule, for a resource whose template gives no name."""
    rule = NAME_RULES.get(rtype, DEFAULT_RULE)
    name = f"{stack}-{logical_id}"
    if rule.lower:
        name = name.lower()
    name = re.sub(rule.invalid, "-", name)
    if rtype == "AWS::S3::Bucket":
        name = name.strip("-")
        name = name if len(name) >= 3 else (name + "-bucket").strip("-")
    return _fit(name, rule.max_len, suffix)


# The ARN of each type that has a known one; `path` is the name without a leading slash.
_ARNS = {
    "AWS::S3::Bucket": "arn:{partition}:s3:::{name}",
    "AWS::SQS::Queue": "arn:{partition}:sqs:{region}:{account}:{name}",
    "AWS::DynamoDB::Table": "arn:{partition}:dynamodb:{region}:{account}:table/{name}",
    "AWS::Serverless::SimpleTable": "arn:{partition}:dynamodb:{region}:{account}:table/{name}",
    "AWS::Serverless::Function": "arn:{partition}:lambda:{region}:{account}:function:{name}",
    "AWS::Lambda::Function": "arn:{partition}:lambda:{region}:{account}:function:{name}",
    "AWS::Serverless::LayerVersion": "arn:{partition}:lambda:{region}:{account}:layer:{name}:1",
    "AWS::Lambda::LayerVersion": "arn:{partition}:lambda:{region}:{account}:layer:{name}:1",
    "AWS::SNS::Topic": "arn:{partition}:sns:{region}:{account}:{name}",
    "AWS::IAM::Role": "arn:{partition}:iam::{account}:role/{name}",
    "AWS::IAM::ManagedPolicy": "arn:{partition}:iam::{account}:policy/{name}",
    "AWS::Logs::LogGroup": "arn:{partition}:logs:{region}:{account}:log-group:{name}:*",
    "AWS::Serverless::StateMachine": "arn:{partition}:states:{region}:{account}:stateMachine:{name}",
    "AWS::StepFunctions::StateMachine": "arn:{partition}:states:{region}:{account}:stateMachine:{name}",
    "AWS::SecretsManager::Secret": "arn:{partition}:secretsmanager:{region}:{account}:secret:{name}",
    "AWS::Events::Rule": "arn:{partition}:events:{region}:{account}:rule/{name}",
    "AWS::Events::EventBus": "arn:{partition}:events:{region}:{account}:event-bus/{name}",
    "AWS::Kinesis::Stream": "arn:{partition}:kinesis:{region}:{account}:stream/{name}",
    "AWS::SSM::Parameter": "arn:{partition}:ssm:{region}:{account}:parameter/{path}",
}


def arn_for(
    rtype: str, name: str, *, partition: str, region: str, account_id: str, generic: bool = False
) -> str | None:
    """The resource's ARN for known types; with ``generic``, an ARN-like string for any AWS type."""
    pattern = _ARNS.get(rtype)
    parts = rtype.split("::")
    if pattern is None and generic and len(parts) == 3 and parts[0] == "AWS" and parts[1] != "Serverless":
        pattern = f"arn:{{partition}}:{parts[1].lower()}:{{region}}:{{account}}:{parts[2].lower()}/{{name}}"
    if pattern is None:
        return None
    return pattern.format(
        partition=partition, region=region, account=account_id, name=name, path=name.lstrip("/")
    )


def partition_of(region: str) -> tuple[str, str]:
    """The region's partition and URL suffix."""
    if region.startswith("cn-"):
        return "aws-cn", "amazonaws.com.cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov", "amazonaws.com"
    return "aws", "amazonaws.com"
