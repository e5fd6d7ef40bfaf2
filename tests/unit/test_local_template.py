"""local.template: the SAM template read into a resolved, local-only description of the stack."""

from __future__ import annotations

import base64
import json
import re
import textwrap
from pathlib import Path

import pytest

from local.stack import initial_secret_value
from local.template import TemplateError
from local.template.intrinsics import contains_unresolved
from local.template.load import load_template, parse_parameter_overrides
from local.template.resolve import load_stack
from local.template.specs import ApiEvent, LayerSpec, OtherEvent, SecretSpec, SqsEvent

FIXTURES = Path(__file__).parent / "fixtures" / "templates"
APP = FIXTURES / "app.yaml"
ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def minimal(tmp_path: Path, parameters: str = "", resources: str = "", extra: str = "") -> Path:
    """A template with the given (already indented) Parameters and Resources bodies."""
    body = "Parameters:\n" + parameters if parameters else ""
    body += "Resources:\n" + (resources or "  Q:\n    Type: AWS::SQS::Queue\n")
    return write(tmp_path, "template.yaml", body + extra)


@pytest.fixture(scope="module")
def stack():
    return load_stack(APP, None, stack_name="app")


# ------------------------------------------------------------------------------------------ YAML


def test_short_form_tags_become_long_form():
    doc = load_template(APP)
    assert doc["AWSTemplateFormatVersion"] == "2010-09-09"  # not a date
    env = doc["Resources"]["WorkerFunction"]["Properties"]["Environment"]["Variables"]
    assert env["QUEUE_URL"] == {"Ref": "JobsQueue"}
    assert env["QUEUE_ARN"] == {"Fn::GetAtt": ["JobsQueue", "Arn"]}
    assert env["BUCKET_ARN"] == {"Fn::GetAtt": ["Archive", "Arn"]}
    assert env["CIDRS"] == {"Fn::Join": [",", {"Ref": "Cidrs"}]}
    assert env["ENCODED"] == {"Fn::Base64": "hi there"}
    assert env["FIRST_AZ"] == {"Fn::Select": [0, {"Fn::GetAZs": ""}]}
    assert env["GREETING"]["Fn::Sub"][1] == {"Who": {"Fn::Select": [1, {"Fn::Split": [",", "a,world,b"]}]}}
    assert env["MODE"] == {"Fn::If": ["IsDev", "development", "production"]}
    conditions = doc["Conditions"]
    assert conditions["IsDev"] == {"Fn::Not": [{"Condition": "IsProd"}]}
    assert conditions["ProdAndAudit"] == {"Fn::And": [{"Condition": "IsProd"}, {"Condition": "AuditOn"}]}
    assert "Fn::Or" in conditions["ProdOrAudit"]
    assert conditions["IsProd"] == {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}
    api_env = doc["Resources"]["ApiFunction"]["Properties"]["Environment"]["Variables"]
    assert api_env["SHARED_VALUE"] == {"Fn::ImportValue": "shared-stack-Value"}
    assert doc["Globals"]["Function"]["Environment"]["Variables"]["LOG_LEVEL"] == {
        "Fn::FindInMap": ["StageConfig", {"Ref": "Stage"}, "LogLevel"]
    }


def test_getatt_scalar_splits_at_the_first_dot(tmp_path):
    path = write(
        tmp_path, "t.yaml", "Resources:\n  A:\n    Type: X\n    Properties:\n      V: !GetAtt B.C.D\n"
    )
    assert load_template(path)["Resources"]["A"]["Properties"]["V"] == {"Fn::GetAtt": ["B", "C.D"]}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "Resources:\n  A:\n    Type: [unclosed\n",
            r"template\.yaml:4:1: invalid YAML: while parsing a flow sequence \(from line 3, column 11\)",
        ),
        (
            "Resources:\n  A:\n    Type: X\n    Properties: {V: !Bogus x}\n",
            r"template\.yaml:4:21: invalid YAML: unknown CloudFormation tag !Bogus",
        ),
        (
            "Resources:\n  A:\n    Type: X\n  A:\n    Type: Y\n",
            r"template\.yaml:4:3: invalid YAML: while constructing a mapping.*; found duplicate key 'A'",
        ),
        ("Resources:\n  A:\n    Type: X\n    Properties: {V: !GetAtt NoDot}\n", r"LogicalId\.Attribute"),
        ("- just\n- a list\n", r"must be a mapping"),
        ("Parameters: {}\n", r"non-empty 'Resources'"),
        ("Resources:\n  A:\n    Properties: {}\n", r"Resources\.A: .*string 'Type'"),
        ("Resources:\n  my-bucket:\n    Type: AWS::S3::Bucket\n", r"Resources\.my-bucket: .*alphanumeric"),
        ("Resources:\n  A:\n    Type: X\nOutputs:\n  O: {Description: no value}\n", r"Outputs\.O: .*'Value'"),
        ("Globals:\n  Functions: {}\nResources:\n  A:\n    Type: X\n", r"Globals\.Functions"),
    ],
)
def test_malformed_template_is_a_template_error(tmp_path, text, message):
    path = write(tmp_path, "template.yaml", text)
    with pytest.raises(TemplateError, match=message) as info:
        load_stack(path, None)
    if "YAML" in message or "tag" in message:
        assert str(path) in str(info.value)


def test_missing_template_file_is_a_template_error(tmp_path):
    with pytest.raises(TemplateError, match="cannot read template"):
        load_stack(tmp_path / "absent.yaml", None)


# ------------------------------------------------------------------------------------ parameters


def test_parameter_overrides_string_syntax_honours_quotes():
    parsed = parse_parameter_overrides(
        'Foo=1 Bar="a b" Cidrs=127.0.0.1/32,::1/128  Empty="" Single=\'x y\' Esc=a\\ b Path=C:\\dir Eq="k=v"'
    )
    assert parsed == {
        "Foo": "1",
        "Bar": "a b",
        "Cidrs": "127.0.0.1/32,::1/128",
        "Empty": "",
        "Single": "x y",
        "Esc": "a b",
        "Path": "C:\\dir",
        "Eq": "k=v",
    }


def test_parameter_overrides_list_and_long_forms():
    assert parse_parameter_overrides(["Foo=1", 'Bar="a b"', "A=1 B=2"]) == {
        "Foo": "1",
        "Bar": "a b",
        "A": "1",
        "B": "2",
    }
    assert parse_parameter_overrides(
        "ParameterKey=Key,ParameterValue=v1 ParameterKey=Cidrs,ParameterValue=1.1.1.1/32,2.2.2.2/32"
    ) == {"Key": "v1", "Cidrs": "1.1.1.1/32,2.2.2.2/32"}


@pytest.mark.parametrize(
    ("value", "message"), [("Foo=1 stray", "'stray' is not Key=Value"), ('A="open', "unterminated")]
)
def test_parameter_overrides_errors(value, message):
    with pytest.raises(TemplateError, match=message):
        parse_parameter_overrides(value)


def test_parameter_precedence_default_then_samconfig_then_overrides(tmp_path):
    samconfig = write(
        tmp_path,
        "samconfig.toml",
        """
        version = 0.1
        [local.global.parameters]
        stack_name = "from-global"
        parameter_overrides = "Greeting=ignored-because-deploy-wins"
        [local.deploy.parameters]
        stack_name = "from-samconfig"
        parameter_overrides = 'Stage=prod Greeting="good day" Cidrs=127.0.0.1/32,::1/128 BatchSize=7'
        """,
    )
    stack = load_stack(APP, samconfig, overrides={"BatchSize": "9"})
    assert stack.stack_name == "from-samconfig"
    assert stack.parameters["Stage"] == "prod"  # samconfig over default
    assert stack.parameters["Greeting"] == "good day"  # quoted, deploy section over global
    assert stack.parameters["BatchSize"] == "9"  # overrides over samconfig; Numbers stay strings
    assert stack.parameters["Token"] == ""  # default
    assert stack.parameters["Cidrs"] == ["127.0.0.1/32", "::1/128"]
    # the values reach the resources: IsProd is now true
    assert "ProdOnlyFunction" in stack.resources
    assert stack.resources["ProdOnlyFunction"].physical_name == "from-samconfig-ProdOnlyFunction"
    assert load_stack(APP, samconfig, stack_name="explicit").stack_name == "explicit"


def test_samconfig_list_syntax(tmp_path):
    samconfig = write(
        tmp_path,
        "samconfig.toml",
        """
        version = 0.1
        [local.deploy.parameters]
        parameter_overrides = ["Stage=prod", 'Greeting="hi there"']
        """,
    )
    stack = load_stack(APP, samconfig)
    assert stack.stack_name == "sam-app"  # no stack_name anywhere
    assert stack.parameters["Stage"] == "prod"
    assert stack.parameters["Greeting"] == "hi there"


def test_comma_delimited_list_is_a_trimmed_list_and_number_a_string(stack):
    assert stack.parameters["Cidrs"] == ["10.0.0.0/8", "192.168.0.0/16"]
    assert stack.parameters["BatchSize"] == "5"
    assert stack.functions()["WorkerFunction"].environment["CIDRS"] == "10.0.0.0/8,192.168.0.0/16"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"Stage": "qa"},
            r"Parameters\.Stage \(value from overrides\): 'qa' is not one of the AllowedValues",
        ),
        ({"Token": "NO"}, r"does not match AllowedPattern.*empty or 4-8 lower-case letters"),
        ({"BatchSize": "11"}, r"above MaxValue 10"),
        ({"BatchSize": "0"}, r"below MinValue 1"),
        ({"BatchSize": "many"}, r"'many' is not a number"),
        ({"Nope": "1"}, r"overrides: unknown parameter\(s\) Nope"),
    ],
)
def test_invalid_parameter_values_are_template_errors(overrides, message):
    with pytest.raises(TemplateError, match=message):
        load_stack(APP, None, overrides=overrides)


def test_samconfig_errors(tmp_path):
    unknown = write(tmp_path, "a.toml", '[local.deploy.parameters]\nparameter_overrides = "Typo=1"\n')
    with pytest.raises(TemplateError, match=r"a\.toml \[local\] parameter_overrides: unknown parameter"):
        load_stack(APP, unknown)
    no_env = write(tmp_path, "b.toml", '[default.deploy.parameters]\nstack_name = "x"\n')
    with pytest.raises(TemplateError, match=r"no \[local\] environment \(found: default\)"):
        load_stack(APP, no_env)
    bad_stack = write(tmp_path, "c.toml", '[local.deploy.parameters]\nstack_name = "9lives"\n')
    with pytest.raises(TemplateError, match="stack name '9lives' is invalid"):
        load_stack(APP, bad_stack)
    with pytest.raises(TemplateError, match="invalid TOML"):
        load_stack(APP, write(tmp_path, "d.toml", "[local\n"))


def test_parameter_without_value_is_an_error(tmp_path):
    path = minimal(tmp_path, parameters="  Needed:\n    Type: String\n")
    with pytest.raises(TemplateError, match=r"Parameters\.Needed: no value"):
        load_stack(path, None)
    assert load_stack(path, None, overrides={"Needed": "x"}).parameters == {"Needed": "x"}


# ------------------------------------------------------------------------------------ conditions


def test_conditions_remove_resources_and_outputs(stack):
    assert "ProdOnlyFunction" not in stack.resources
    assert "AuditBucket" not in stack.resources
    assert stack.inactive_resources["ProdOnlyFunction"].condition_met is False
    assert stack.inactive_resources["AuditBucket"].condition == "AuditOn"
    assert all(r.condition_met for r in stack.resources.values())
    assert "ProdOnlyFunction" not in stack.functions()
    assert set(stack.buckets()) == {"Archive", "NamedBucket"}
    assert "ProdFunctionArn" not in stack.outputs


def test_if_with_novalue_removes_keys_and_list_items(stack):
    worker = stack.functions()["WorkerFunction"]
    assert "AUDIT_BUCKET" not in worker.environment
    assert worker.environment["MODE"] == "development"
    alarm = stack.resources["Alarm"].properties
    assert "AlarmActions" not in alarm  # ProdOrAudit is false
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": "app-JobsDLQ"}]
    assert "DelaySeconds" not in stack.queues()["OrderedQueue"].attributes


def test_conditions_with_and_or_not(tmp_path):
    stack = load_stack(APP, None, stack_name="app", overrides={"Stage": "prod", "EnableAudit": "true"})
    alarm = stack.resources["Alarm"].properties
    assert alarm["AlarmActions"] == ["arn:aws:sns:us-east-1:123456789012:ops"]
    assert alarm["Dimensions"][1] == {"Name": "Extra", "Value": "x"}
    assert stack.functions()["WorkerFunction"].environment["MODE"] == "production"
    assert stack.functions()["WorkerFunction"].environment["AUDIT_BUCKET"] == "app-auditbucket"
    assert stack.queues()["OrderedQueue"].attributes["DelaySeconds"] == "5"
    assert (
        stack.outputs["ProdFunctionArn"]
        == f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:app-ProdOnlyFunction"
    )
    # the third operand of ProdOrAudit alone also turns it on
    only_cidr = load_stack(APP, None, overrides={"Cidrs": "1.1.1.1/32"})
    assert "AlarmActions" in only_cidr.resources["Alarm"].properties


def test_unknown_condition_is_an_error(tmp_path):
    path = minimal(tmp_path, resources="  Q:\n    Type: AWS::SQS::Queue\n    Condition: Missing\n")
    with pytest.raises(TemplateError, match=r"Resources\.Q\.Condition: unknown condition 'Missing'"):
        load_stack(path, None)


def test_ref_to_a_resource_whose_condition_is_false_is_unresolved(tmp_path):
    path = minimal(
        tmp_path,
        resources="""\
  Q:
    Type: AWS::SQS::Queue
    Condition: Never
  B:
    Type: AWS::S3::Bucket
    Properties:
      Tags: [{Key: q, Value: !Ref Q}]
""",
        extra="Conditions:\n  Never: !Equals [a, b]\n",
    )
    stack = load_stack(path, None)
    assert stack.resources["B"].properties["Tags"][0]["Value"] == "<unresolved:Ref:Q>"
    assert [u.location for u in stack.unresolved] == ["Resources.B.Properties.Tags[0].Value"]


# ---------------------------------------------------------------------------------------- globals


def test_globals_merge_like_sam(stack):
    worker = stack.functions()["WorkerFunction"]
    api_fn = stack.functions()["ApiFunction"]
    # scalars: the function wins, globals fill the rest
    assert (worker.timeout, worker.memory_size, worker.runtime) == (30, 256, "python3.13")
    assert (api_fn.timeout, api_fn.architectures) == (10, ["x86_64"])
    # Environment.Variables merge key-wise, the function's value winning
    assert worker.environment["SHARED"] == "from-function"
    assert api_fn.environment["SHARED"] == "from-globals"
    assert worker.environment["LOG_LEVEL"] == api_fn.environment["LOG_LEVEL"] == "DEBUG"
    # lists append: the global layer first
    assert worker.properties["Layers"][0].endswith(":layer:app-SharedLayer:1")
    assert len(worker.properties["Layers"]) == 3
    # Globals.Api reaches the Api resource (its own list appended)
    assert stack.resources["Api"].properties["BinaryMediaTypes"] == [
        "image~1png",
        "*~1*",
        "application~1octet-stream",
    ]


# --------------------------------------------------------------------------------- physical names


def test_physical_names(stack):
    assert stack.buckets()["Archive"].name == "app-archive"
    assert stack.buckets()["NamedBucket"].name == "app-named-dev"  # BucketName, resolved
    assert stack.queues()["JobsQueue"].name == "app-JobsQueue"
    assert stack.queues()["OrderedQueue"].name == "app-OrderedQueue.fifo"
    assert stack.tables()["Items"].name == "app-Items"
    assert stack.tables()["Counters"].name == "app-counters"
    assert stack.functions()["WorkerFunction"].name == "app-WorkerFunction"
    assert stack.resources["Alarm"].physical_name == "app-Alarm"


def test_long_names_are_trimmed_to_service_rules(tmp_path):
    lid = "ABucketWithAVeryLongLogicalIdThatKeepsGoingAndGoingAndGoingOnAndOn"
    path = minimal(
        tmp_path,
        resources=f"""\
  {lid}:
    Type: AWS::S3::Bucket
  {lid}2:
    Type: AWS::S3::Bucket
  {lid}Queue:
    Type: AWS::SQS::Queue
    Properties: {{FifoQueue: true}}
  {lid}Fn:
    Type: AWS::Serverless::Function
    Properties: {{CodeUri: src, Handler: app.h, Runtime: python3.13}}
""",
    )
    stack = load_stack(path, None, stack_name="My-Stack")
    names = [b.name for b in stack.buckets().values()]
    for name in names:
        assert 3 <= len(name) <= 63
        assert re.fullmatch(r"[a-z0-9][a-z0-9-]*[a-z0-9]", name)
        assert name.startswith("my-stack-abucketwith")
    assert names[0] != names[1]  # trimming keeps distinct names distinct
    assert load_stack(path, None, stack_name="My-Stack").buckets()[lid].name == names[0]  # deterministic
    queue = stack.queues()[f"{lid}Queue"].name
    assert len(queue) <= 80
    assert queue.endswith(".fifo")
    assert len(stack.functions()[f"{lid}Fn"].name) <= 64


# ---------------------------------------------------------------------------------- intrinsics


def test_refs_getatts_and_pseudo_parameters(stack):
    env = stack.functions()["WorkerFunction"].environment
    prefix = f"arn:aws:{{}}:us-east-1:{ACCOUNT}:"
    assert env["QUEUE_URL"] == f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/app-JobsQueue"
    assert env["QUEUE_ARN"] == prefix.format("sqs") + "app-JobsQueue"
    assert env["BUCKET"] == "app-archive"
    assert env["BUCKET_ARN"] == "arn:aws:s3:::app-archive"
    assert env["BUCKET_DOMAIN"] == "app-archive.s3.us-east-1.amazonaws.com"
    assert env["TABLE"] == "app-Items"
    assert env["STREAM_ARN"].startswith(prefix.format("dynamodb") + "table/app-Items/stream/")
    assert env["SESSIONS"] == "app-Sessions"
    assert env["SELF_ARN"] == prefix.format("lambda") + "function:app-WorkerFunction"
    assert env["SELF_ARN"] == stack.resources["WorkerFunction"].arn


def test_sub_join_select_split_findinmap_base64_getazs(stack):
    env = stack.functions()["WorkerFunction"].environment
    assert env["GREETING"] == f"hello, world in us-east-1/{ACCOUNT} on aws (${{Literal}})"
    assert env["QUEUE_NAME_SUB"] == "app-JobsQueue@app.amazonaws.com"
    assert base64.b64decode(env["ENCODED"]) == b"hi there"
    assert env["FIRST_AZ"] == "us-east-1a"
    assert env["LOG_LEVEL"] == "DEBUG"  # FindInMap with a Ref key
    assert stack.queues()["JobsQueue"].attributes["MessageRetentionPeriod"] == "7"
    alarm = stack.resources["Alarm"].properties
    assert alarm["Threshold"] == 1  # FindInMap DefaultValue
    assert alarm["AlarmName"] == f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/app-Items-alarm"
    assert alarm["Misc"]["Length"] == 3
    assert json.loads(alarm["Misc"]["Json"]) == {"a": 1}


def test_region_and_account_flow_into_arns_and_urls():
    stack = load_stack(APP, None, stack_name="app", region="eu-west-1", account_id="000000000000")
    env = stack.functions()["WorkerFunction"].environment
    assert env["QUEUE_ARN"] == "arn:aws:sqs:eu-west-1:000000000000:app-JobsQueue"
    assert env["QUEUE_URL"] == "https://sqs.eu-west-1.amazonaws.com/000000000000/app-JobsQueue"
    assert env["FIRST_AZ"] == "eu-west-1a"
    china = load_stack(APP, None, stack_name="app", region="cn-north-1")
    assert china.functions()["WorkerFunction"].environment["BUCKET_ARN"] == "arn:aws-cn:s3:::app-archive"


def test_queue_url_format_string_and_callable():
    stack = load_stack(
        APP, None, stack_name="app", queue_url_format="http://127.0.0.1:5000/{account_id}/{name}"
    )
    assert stack.queues()["JobsQueue"].url == f"http://127.0.0.1:5000/{ACCOUNT}/app-JobsQueue"
    assert stack.functions()["WorkerFunction"].environment["QUEUE_URL"] == stack.queues()["JobsQueue"].url
    assert stack.outputs["QueueUrl"] == stack.queues()["JobsQueue"].url
    by_callable = load_stack(APP, None, stack_name="app", queue_url_format=lambda name: f"mem://{name}")
    assert by_callable.resources["JobsDLQ"].ref == "mem://app-JobsDLQ"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "!Select [3, [a, b]]",
            r"Resources\.B\.Properties\.Tags\[0\]\.Value: Fn::Select index 3 is out of range",
        ),
        ("!FindInMap [M, k, nope]", r"Fn::FindInMap: no Mappings\.M\.k\.nope"),
        ("!Join [',']", r"Fn::Join takes a list of 2 arguments"),
        ("!If [Undefined, a, b]", r"unknown condition 'Undefined'"),
    ],
)
def test_bad_intrinsics_are_template_errors(tmp_path, value, message):
    path = minimal(
        tmp_path,
        resources=(
            f"  B:\n    Type: AWS::S3::Bucket\n    Properties:\n      Tags: [{{Key: k, Value: {value}}}]\n"
        ),
        extra="Mappings:\n  M:\n    k: {a: 1}\n",
    )
    with pytest.raises(TemplateError, match=message):
        load_stack(path, None)


# ------------------------------------------------------------------------------------ unresolved


def test_unresolvable_references_become_recorded_placeholders(stack):
    env = stack.functions()["ApiFunction"].environment
    assert env["API_ROOT"] == "<unresolved:Fn::GetAtt:Api.RootResourceId>"
    assert env["IMPLICIT_API"] == "<unresolved:Ref:ServerlessRestApi>"
    assert env["SHARED_VALUE"] == "<unresolved:Fn::ImportValue:shared-stack-Value>"
    assert stack.outputs["ApiUrl"].startswith("https://<unresolved:Ref:ServerlessRestApi>.execute-api.")
    assert stack.resources["Alarm"].properties["Misc"]["Cidr"] == "<unresolved:Fn::Cidr>"
    recorded = {(u.location, u.expression) for u in stack.unresolved}
    assert recorded == {
        ("Resources.ApiFunction.Properties.Environment.Variables.API_ROOT", "Fn::GetAtt:Api.RootResourceId"),
        ("Resources.ApiFunction.Properties.Environment.Variables.IMPLICIT_API", "Ref:ServerlessRestApi"),
        (
            "Resources.ApiFunction.Properties.Environment.Variables.SHARED_VALUE",
            "Fn::ImportValue:shared-stack-Value",
        ),
        ("Resources.Alarm.Properties.Misc.Cidr", "Fn::Cidr"),
        ("Outputs.ApiUrl.Value", "Ref:ServerlessRestApi"),
    }
    assert all(u.reason and u.placeholder.startswith("<unresolved:") for u in stack.unresolved)
    assert contains_unresolved(stack.functions()["ApiFunction"].environment)
    assert not contains_unresolved(stack.functions()["WorkerFunction"].environment)


# ---------------------------------------------------------------------------------------- views


def test_queue_specs_with_redrive_policy_and_dlq_first(stack):
    queues = stack.queues()
    assert list(queues).index("JobsDLQ") < list(queues).index("JobsQueue")  # declared after, created first
    jobs = queues["JobsQueue"]
    assert jobs.attributes == {
        "VisibilityTimeout": "60",
        "MessageRetentionPeriod": "7",
        "SqsManagedSseEnabled": "true",
        "RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:app-JobsDLQ", "maxReceiveCount": 3}
        ),
        "RedriveAllowPolicy": '{"redrivePermission": "denyAll"}',
    }
    assert json.loads(jobs.attributes["RedrivePolicy"])["maxReceiveCount"] == 3  # an int, not "3"
    assert queues["OrderedQueue"].attributes == {"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    assert queues["JobsDLQ"].attributes == {"MessageRetentionPeriod": "1209600"}
    assert jobs.arn == f"arn:aws:sqs:us-east-1:{ACCOUNT}:app-JobsQueue"


SECRETS = """\
  Generated:
    Type: AWS::SecretsManager::Secret
    Condition: CreateKey
    Properties:
      Description: an API key
      GenerateSecretString:
        PasswordLength: 24
        ExcludePunctuation: true
  Given:
    Type: AWS::SecretsManager::Secret
    Properties:
      Name: !Sub "${AWS::StackName}/given"
      SecretString: !Sub "value-in-${AWS::Region}"
  Unused:
    Type: AWS::SecretsManager::Secret
    Condition: Never
    Properties:
      SecretString: unused
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Handler: app.handler
      Environment:
        Variables:
          KEY_SECRET: !If [CreateKey, !Ref Generated, !Ref KeySecretName]
          GIVEN: !Ref Given
          GIVEN_ARN: !GetAtt Given.Arn
"""


def test_secret_specs_and_ref_gives_the_name(tmp_path):
    path = minimal(
        tmp_path,
        parameters="  KeySecretName:\n    Type: String\n    Default: ''\n",
        resources=SECRETS,
        extra="Conditions:\n  CreateKey: !Equals [!Ref KeySecretName, '']\n  Never: !Equals [a, b]\n",
    )
    stack = load_stack(path, None, stack_name="app")
    secrets = stack.secrets()
    assert list(secrets) == ["Generated", "Given"]  # the inactive one is not created
    generated, given = secrets["Generated"], secrets["Given"]
    assert (generated.name, generated.secret_string, generated.description) == (
        "app-Generated",
        None,
        "an API key",
    )
    assert generated.generate == {"PasswordLength": 24, "ExcludePunctuation": True}
    assert (given.name, given.secret_string, given.generate) == ("app/given", "value-in-us-east-1", None)
    env = stack.functions()["Fn"].environment
    # Locally !Ref is the name: moto's (and AWS's) ARN ends in a random suffix; GetSecretValue takes either.
    assert env["KEY_SECRET"] == "app-Generated"
    assert env["GIVEN"] == "app/given"
    assert env["GIVEN_ARN"] == f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:app/given"
    assert stack.find_logical_id("app/given") == "Given"

    named = load_stack(path, None, stack_name="app", overrides={"KeySecretName": "existing/key"})
    assert list(named.secrets()) == ["Given"]
    assert named.functions()["Fn"].environment["KEY_SECRET"] == "existing/key"


def test_a_secrets_local_value_is_its_secret_string_or_generated_like_cloudformation():
    assert initial_secret_value(SecretSpec("S", "s", secret_string="given")) == "given"
    generated = initial_secret_value(SecretSpec("S", "s", generate={"PasswordLength": 24}))
    assert len(generated) == 24
    assert generated.isalnum()
    assert len(initial_secret_value(SecretSpec("S", "s", generate={}))) == 32
    in_json = initial_secret_value(
        SecretSpec("S", "s", generate={"SecretStringTemplate": '{"user": "u"}', "GenerateStringKey": "pw"})
    )
    assert json.loads(in_json)["user"] == "u"
    assert len(json.loads(in_json)["pw"]) == 32


def test_a_secret_with_both_a_value_and_a_generator_is_an_error(tmp_path):
    resources = "  S:\n    Type: AWS::SecretsManager::Secret\n    Properties:\n"
    resources += "      SecretString: x\n      GenerateSecretString: {}\n"
    stack = load_stack(minimal(tmp_path, resources=resources), None)
    with pytest.raises(TemplateError, match=r"Resources\.S\.Properties: SecretString and Generate"):
        stack.secrets()


def test_bucket_specs(stack):
    archive = stack.buckets()["Archive"]
    assert archive.versioning is True
    assert archive.properties["VersioningConfiguration"] == {"Status": "Enabled"}
    assert stack.buckets()["NamedBucket"].versioning is False
    assert archive.encryption is None  # no BucketEncryption: the service's default


def test_bucket_encryption_in_put_bucket_encryptions_shape_whichever_branch_a_condition_takes(tmp_path):
    path = minimal(
        tmp_path,
        parameters="  KeyArn:\n    Type: String\n    Default: ''\n",
        resources="""\
  B:
    Type: AWS::S3::Bucket
    Properties:
      BucketEncryption: !If
        - HasKey
        - ServerSideEncryptionConfiguration:
            - ServerSideEncryptionByDefault: {SSEAlgorithm: aws:kms, KMSMasterKeyID: !Ref KeyArn}
              BucketKeyEnabled: true
        - ServerSideEncryptionConfiguration:
            - ServerSideEncryptionByDefault: {SSEAlgorithm: AES256}
""",
        extra="Conditions:\n  HasKey: !Not [!Equals [!Ref KeyArn, '']]\n",
    )
    plain = load_stack(path, None, stack_name="app").buckets()["B"]
    assert plain.encryption == {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}
    key = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k"
    keyed = load_stack(path, None, stack_name="app", overrides={"KeyArn": key}).buckets()["B"]
    assert keyed.encryption == {
        "Rules": [
            {
                "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key},
                "BucketKeyEnabled": True,
            }
        ]
    }


def test_table_specs(stack):
    items = stack.tables()["Items"]
    assert items.create_table_kwargs == {
        "TableName": "app-Items",
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "status", "AttributeType": "S"},
        ],
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
        "GlobalSecondaryIndexes": [
            {
                "IndexName": "by-status",
                "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        "SSESpecification": {"Enabled": True},
        "DeletionProtectionEnabled": True,
    }
    assert (items.ttl_attribute, items.pitr) == ("expires_at", True)
    counters = stack.tables()["Counters"]
    assert counters.create_table_kwargs["BillingMode"] == "PROVISIONED"
    assert counters.create_table_kwargs["ProvisionedThroughput"] == {
        "ReadCapacityUnits": 2,
        "WriteCapacityUnits": 3,
    }
    assert (counters.ttl_attribute, counters.pitr) == (None, False)
    sessions = stack.tables()["Sessions"].create_table_kwargs
    assert sessions["KeySchema"] == [{"AttributeName": "session_id", "KeyType": "HASH"}]
    assert sessions["AttributeDefinitions"] == [{"AttributeName": "session_id", "AttributeType": "S"}]
    assert sessions["BillingMode"] == "PAY_PER_REQUEST"


def test_function_spec(stack):
    worker = stack.functions()["WorkerFunction"]
    assert worker.code_uri == FIXTURES / "functions" / "worker"
    assert worker.handler == "app.lambda_handler"
    assert worker.architectures == ["arm64"]
    assert worker.environment["FLAG"] == "true"
    assert worker.environment["NUMBER"] == "42"
    assert worker.environment["BATCH"] == "5"
    assert all(isinstance(v, str) for v in worker.environment.values())
    # local layers by logical id (globals first); the published ARN is not a local layer
    assert worker.layers == [
        LayerSpec("SharedLayer", FIXTURES / "layers" / "shared"),
        LayerSpec("ExtraLayer", FIXTURES / "layers" / "extra"),
    ]
    jobs, ordered, external, nightly = worker.events
    assert jobs == SqsEvent(
        name="Jobs",
        queue_logical_id="JobsQueue",
        queue_name="app-JobsQueue",
        batch_size=5,
        maximum_batching_window_s=2,
        function_response_types=["ReportBatchItemFailures"],
        maximum_concurrency=4,
        enabled=True,
        filter_criteria={"Filters": [{"Pattern": '{"body": {"kind": ["job"]}}'}]},
    )
    assert (ordered.queue_logical_id, ordered.queue_name, ordered.enabled) == (
        "OrderedQueue",
        "app-OrderedQueue.fifo",
        False,
    )
    assert (ordered.batch_size, ordered.maximum_batching_window_s, ordered.maximum_concurrency) == (
        10,
        0,
        None,
    )
    assert (external.queue_logical_id, external.queue_name) == (None, "someone-elses-queue")
    assert nightly == OtherEvent("Nightly", "Schedule", {"Schedule": "rate(1 day)"})

    api_fn = stack.functions()["ApiFunction"]
    assert api_fn.events == [
        ApiEvent("GetItem", "/items/{id}", "GET", "Api"),
        ApiEvent("Legacy", "/legacy", "ANY", "ServerlessRestApi"),
    ]
    assert (api_fn.memory_size, api_fn.runtime, api_fn.handler) == (256, "python3.13", "handler.main")


def test_rest_apis(stack):
    apis = stack.rest_apis()
    assert apis["Api"].stage_name == "dev"
    assert apis["Api"].binary_media_types == ["image/png", "*/*", "application/octet-stream"]
    assert apis["Api"].implicit is False
    implicit = apis["ServerlessRestApi"]  # ApiFunction's Legacy event has no RestApiId
    assert (implicit.implicit, implicit.stage_name, implicit.binary_media_types) == (
        True,
        "Prod",
        ["image/png"],
    )


def test_outputs(stack):
    assert stack.outputs["QueueUrl"] == f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/app-JobsQueue"
    assert stack.outputs["TableStream"] == stack.functions()["WorkerFunction"].environment["STREAM_ARN"]


def test_find_logical_id(stack):
    assert stack.find_logical_id(f"arn:aws:sqs:us-east-1:{ACCOUNT}:app-JobsDLQ") == "JobsDLQ"
    assert stack.find_logical_id("app-archive", ["AWS::S3::Bucket"]) == "Archive"
    assert stack.find_logical_id("app-archive", ["AWS::SQS::Queue"]) is None


# ------------------------------------------------------------------------------ the real template


@pytest.mark.skipif(
    not (ROOT / "template.yaml").exists() or not (ROOT / "samconfig.toml").exists(),
    reason="the project's template.yaml / samconfig.toml are absent",
)
def test_project_template_resolves():
    stack = load_stack(ROOT / "template.yaml", ROOT / "samconfig.toml", config_env="local")
    functions, queues, buckets = stack.functions(), stack.queues(), stack.buckets()
    assert functions
    assert queues
    assert buckets
    for fn in functions.values():
        assert not contains_unresolved(fn.environment), fn.environment
        assert fn.code_uri is not None
        assert fn.code_uri.is_dir()
        assert all(layer.content_uri.is_dir() for layer in fn.layers)
    for queue in queues.values():
        assert not contains_unresolved([queue.name, queue.url, queue.attributes])
    for bucket in buckets.values():
        assert not contains_unresolved(bucket.name)
        assert re.fullmatch(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", bucket.name)
    for table in stack.tables().values():
        assert not contains_unresolved(table.create_table_kwargs)


@pytest.mark.skipif(
    not (ROOT / "template.yaml").exists() or not (ROOT / "samconfig.toml").exists(),
    reason="the project's template.yaml / samconfig.toml are absent",
)
def test_project_template_sender_reads_its_api_key_from_the_stacks_secret():
    stack = load_stack(ROOT / "template.yaml", ROOT / "samconfig.toml", config_env="local")
    secret = stack.secrets()["ProviderApiKeySecret"]
    assert secret.generate is not None
    assert stack.functions()["SenderFunction"].environment["PROVIDER_API_KEY_SECRET"] == secret.name
