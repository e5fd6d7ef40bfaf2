"""The limits benchmark's counting and its report rows: every AWS call counted by outcome (a lost race apart
from a write), and its figures reported with their same-run baselines, no targets."""

from __future__ import annotations

import boto3
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from bench import report
from bench.bench_limits import LOST_RACE, Tally


def test_calls_are_counted_by_operation_and_outcome_and_the_client_is_restored():
    client = boto3.client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    original = BaseClient._make_api_call
    tally = Tally()
    key = {"pk": {"S": "PACE#x"}, "sk": {"S": "PACE"}}
    with Stubber(client) as stub, tally.counting_calls():
        stub.add_response("put_item", {})
        stub.add_response("update_item", {})
        stub.add_client_error("update_item", service_error_code=LOST_RACE, http_status_code=400)
        client.put_item(TableName="t", Item=key)
        client.update_item(TableName="t", Key=key, UpdateExpression="SET tat = :n")
        with pytest.raises(ClientError):
            client.update_item(TableName="t", Key=key, UpdateExpression="SET tat = :n")
        tally.add("slot", "granted", 2)
    assert BaseClient._make_api_call is original
    assert tally.snapshot() == {
        ("PutItem", "ok"): 1,
        ("UpdateItem", "ok"): 1,
        ("UpdateItem", LOST_RACE): 1,
        ("slot", "granted"): 2,
    }


def test_limits_rows_report_each_figure_against_its_baseline_without_a_target():
    data = {
        "hot_item": [
            {"threads": 1, "writes_per_s": 160.0, "lost_share": 0.0, "put_per_s": 200.0},
            {"threads": 8, "writes_per_s": 30.0, "lost_share": 0.86, "put_per_s": 300.0},
        ],
        "paced": [
            {
                "threads": 4,
                "want": 10,
                "rate": 1000.0,
                "spaced_rate": 970.0,
                "slots_per_s": 485.0,
                "writes_per_slot": 0.12,
                "attempts_per_slot": 0.42,
            },
            {
                "threads": 8,
                "want": 1,
                "rate": 1000.0,
                "spaced_rate": 970.0,
                "slots_per_s": 0.0,
                "writes_per_slot": None,
                "attempts_per_slot": None,
            },
        ],
        "partition": {"threads": 8, "one_partition_per_s": 250.0, "distinct_partitions_per_s": 250.0},
    }
    rows = report.limits_rows(data)
    assert [(r.target, r.met) for r in rows] == [("reported", None)] * 5
    assert [r.ratio for r in rows] == [pytest.approx(0.8), pytest.approx(0.1), pytest.approx(0.5), 0, 1]
    assert "86% of attempts lost the race" in rows[1].figure
    assert "0.12 conditional writes per slot (0.42 with lost races)" in rows[2].figure
    assert "no slot granted" in rows[3].figure
    assert "moto has no partition throttling; the AWS limit is 1,000 WCU/s per partition" in rows[4].figure
    assert "| limits |" in report.table(rows)
