"""docs/cost.md and docs/scale.md's hot-partition table are what tools/cost_model.py makes of the measured
figures, and the arithmetic under them is DynamoDB's and the price list's."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bench.aws_meter import attribute_size, item_size, write_units

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import cost_model  # noqa: E402


def test_the_cost_and_scale_documents_are_what_the_measured_figures_give():
    assert cost_model.main(["--check"]) == 0


def test_item_sizes_follow_dynamodbs_rules():
    assert attribute_size({"S": "héllo"}) == 6  # UTF-8 bytes
    assert attribute_size({"N": "12345"}) == 4  # (5 digits + 1) / 2 + 1
    assert attribute_size({"N": "-0.5"}) == 2
    assert attribute_size({"BOOL": True}) == 1
    assert attribute_size({"L": [{"S": "ab"}, {"NULL": True}]}) == 3 + (2 + 1) + (1 + 1)
    assert attribute_size({"M": {"k": {"S": "v"}}}) == 3 + 1 + 1 + 1
    assert item_size({"pk": {"S": "MSG#1"}, "n": {"N": "7"}}) == 2 + 5 + 1 + 2


@pytest.mark.parametrize(("size", "units"), [(0, 1), (1, 1), (1024, 1), (1025, 2), (4096, 4)])
def test_a_write_costs_a_unit_per_started_kilobyte(size, units):
    assert write_units(size) == units


def test_a_message_is_priced_service_by_service():
    row = {
        "invocations": {"IngestFunction": 1.0},
        "handler_ms": {"IngestFunction": 9.2},  # billed as 10 ms
        "log_bytes": {},
        "calls": {
            "IngestFunction": {"s3 PutObject": 1.0, "sqs SendMessage": 1.0, "sqs ReceiveMessage (empty)": 9}
        },
        "wcu": {"ConsumerFunction": 4.0},
        "rcu": {"EventPublisherFunction": 1.0},
        "events": 1.0,
        "payload_bytes": {},
    }
    facts = {"memory_mb": dict.fromkeys(cost_model.FUNCTIONS, 1024), "access_log_bytes": 0}
    cost = cost_model.cost_per_million(row, facts, api_requests=1)
    prices = cost_model.PRICES
    assert cost["API Gateway (REST)"] == pytest.approx(prices["apigw_rest_per_million"])
    assert cost["S3 requests"] == pytest.approx(5.0)
    assert cost["SQS"] == pytest.approx(
        prices["sqs_request_per_million"]
    )  # the empty polls are not a message's
    assert cost["Lambda duration"] == pytest.approx(0.010 * 1 * prices["lambda_gb_second_arm64"] * 1e6)
    assert cost["DynamoDB writes"] == pytest.approx(4 * prices["dynamodb_wru_per_million"])
    assert cost["EventBridge"] == pytest.approx(prices["eventbridge_event_per_million"])


def test_a_pattern_whose_key_grows_with_the_traffic_has_no_ceiling_and_a_fixed_one_has():
    assert cost_model.fixed_partitions("PACE#provider") == 1
    assert cost_model.fixed_partitions("OPEN#<shard>") == cost_model.OPEN_SHARDS
    assert cost_model.fixed_partitions("INDAY#<date>#<shard>") == cost_model.INBOUND_SHARDS
    assert cost_model.fixed_partitions("MSG#<id>") is None
    assert cost_model.fixed_partitions("OUT#<number>") is None


def test_the_committed_figures_cover_every_postback_fixture():
    measured = json.loads((ROOT / "bench" / "results" / "results.json").read_text())["requests"]
    stems = {row["label"].rpartition("(")[2].rstrip(")") for row in measured["postbacks"]}
    fixtures = {path.stem for path in (ROOT / "tests" / "fixtures" / "provider" / "postbacks").glob("*.xml")}
    assert stems == fixtures


def test_the_scale_document_names_the_templates_defaults_and_the_shard_counts():
    import re

    from local.template.load import load_template
    from mmsbridge.core.table_model import INBOUND_SHARDS, OPEN_SHARDS

    text = (ROOT / "docs" / "scale.md").read_text()
    parameters = load_template(ROOT / "template.yaml")["Parameters"]
    named = re.findall(r"`(\w+)` \(default (\d+)", text)
    assert {"ApiThrottleRateLimit", "ConsumerMaxConcurrency", "SendMaxConcurrency"} <= {n for n, _ in named}
    for name, default in named:
        assert str(parameters[name]["Default"]) == default, name
    assert f"{OPEN_SHARDS} shards (`OPEN#<n>`)" in text
    assert f"spread over {INBOUND_SHARDS} shards" in text
