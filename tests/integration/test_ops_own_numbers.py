"""`ops status` says whether the consumer's own-number check is on: the local stack's endpoints file
(`parameters.OwnNumbers`, as `make run` writes it) and a deployed stack's parameters (moto's CloudFormation),
with a warning when OwnNumbers is empty."""

from __future__ import annotations

import json
import uuid

import boto3
import pytest

from local import stack as local_stack
from ops.cli import main
from ops.status import own_number_check


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("47215,12345", {"check": "on", "numbers": 2}),
        ("", {"check": "off", "numbers": 0}),
        (None, {"check": "unknown", "numbers": None}),
        ("47215,12", {"check": "invalid", "numbers": None}),
    ],
)
def test_the_check_as_the_consumer_would_read_its_list(value, expected):
    assert own_number_check(value) == expected


def run_status(endpoints_file, capsys, *args) -> tuple[int, str]:
    code = main(["--endpoints-file", str(endpoints_file), *args, "status"])
    return code, capsys.readouterr().out


def with_parameters(endpoints_file, parameters: dict | None):
    document = json.loads(endpoints_file.read_text())
    if parameters is not None:
        document["parameters"] = parameters
    endpoints_file.write_text(json.dumps(document))
    return endpoints_file


def test_an_empty_own_number_list_is_a_warning_on_the_status_screen(endpoints_file, capsys):
    path = with_parameters(endpoints_file, {"OwnNumbers": "", "DefaultCountryCode": ""})
    code, out = run_status(path, capsys)
    assert code == 0
    second = out.splitlines()[1]
    assert second.startswith("WARNING own-number check: OFF")
    assert "applied whatever number" in second
    code, out = run_status(path, capsys, "--json")
    assert json.loads(out)["own_numbers"] == {"check": "off", "numbers": 0}


def test_a_listed_stack_shows_the_check_on(endpoints_file, capsys):
    path = with_parameters(endpoints_file, {"OwnNumbers": "47215,12345,13125550100"})
    code, out = run_status(path, capsys)
    assert code == 0
    assert out.splitlines()[1] == (
        "own-number check: on, 3 number(s) in OwnNumbers; postbacks for others are quarantined"
    )
    assert "WARNING" not in out.split("\n", 2)[1]


def test_an_endpoints_file_without_parameters_cannot_say(endpoints_file, capsys):
    code, out = run_status(with_parameters(endpoints_file, None), capsys)
    assert code == 0
    assert out.splitlines()[1] == "own-number check: unknown (the endpoints file lists no parameters)"


@pytest.mark.parametrize(
    ("parameters", "check"),
    [
        ({"OwnNumbers": "47215"}, "on"),
        ({"OwnNumbers": ""}, "off"),
        ({}, "off"),  # deployed from a template without OwnNumbers: its consumer checks nothing
    ],
)
def test_a_deployed_stack_is_read_from_its_parameters(
    monkeypatch, moto_server, aws_stack, names, capsys, parameters, check
):
    for variable, value in local_stack.aws_environment(moto_server.endpoint_url, aws_stack.region).items():
        monkeypatch.setenv(variable, value)
    stack_name = f"ops-own-{uuid.uuid4().hex[:8]}"
    template = {
        "Parameters": {name: {"Type": "String"} for name in parameters},
        "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {
            "StateTableName": {"Value": names["table"]},
            "PostbackQueueUrl": {"Value": names["queue"]},
        },
    }
    boto3.client("cloudformation").create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
    )
    code = main(["--stack", stack_name, "--region", aws_stack.region, "--json", "status"])
    out, _ = capsys.readouterr()
    assert code == 0
    assert json.loads(out)["own_numbers"]["check"] == check
