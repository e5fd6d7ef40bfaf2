"""The figures docs/cost.md and docs/scale.md are built on (bench/results/results.json, made by `make bench`)
are what the code does now: two postback kinds measured again on the local stack give the same DynamoDB
write units, the same requests in the ingest, the same events and the same partitions per message. A change
that adds a write or a call fails here until `make bench` and tools/cost_model.py are run again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import bench_requests

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
KINDS = ("sms_mt_n202", "sms_mo_n211")


def by_kind(result: dict) -> dict[str, dict]:
    return {row["label"].rpartition("(")[2].rstrip(")"): row for row in result["postbacks"]}


def essentials(row: dict) -> dict:
    """What does not depend on timing: units and calls of each message, not of each batch."""
    return {
        "wcu": row["wcu"],
        "ingest calls": row["calls"].get("IngestFunction"),
        "events": row["events"],
        "partitions": sorted((hot["index"], hot["partition"], hot["wcu_per_message"]) for hot in row["hot"]),
        "stored_bytes": row["stored_bytes"],
    }


def test_two_postback_kinds_cost_what_the_committed_figures_say():
    committed = json.loads((ROOT / "bench" / "results" / "results.json").read_text())["requests"]
    measured = bench_requests.run(committed["per_kind"], only=set(KINDS))
    for kind in KINDS:
        assert essentials(by_kind(measured)[kind]) == essentials(by_kind(committed)[kind]), kind
