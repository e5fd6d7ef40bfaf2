"""The inbound shards: an inbound message's receiving-number (gsi1) and day (gsi3) index entries are spread
over INBOUND_SHARDS partitions by a stable hash of its pk (docs/state-table.md, The inbound shards)."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import UTC, datetime, timedelta

from mmsbridge.core.table_model import (
    INBOUND_SHARDS,
    UNDATED,
    inbound_day,
    inbound_day_partitions,
    inbound_shard,
    inbound_to,
    inbound_to_partitions,
)
from mmsbridge.postbacks.planner import Received, plan_batch
from mmsbridge.postbacks.reader import parse_postback

RECEIVED_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def inbound_sms(transaction_id: str, *, to: str = "63184", sender: str = "15551230000") -> bytes:
    return (
        f"<POSTBACK><ORIGIN>SMS_MO</ORIGIN><CODE>N211</CODE><TRANSACTIONID>{transaction_id}</TRANSACTIONID>"
        f"<FROM>{sender}</FROM><TO>{to}</TO><TEXT>VOTE 3</TEXT>"
        "<TIMESTAMP>2026-01-02T03:04:05-05:00</TIMESTAMP></POSTBACK>"
    ).encode()


def planned_inbound(body: bytes, received_at: datetime = RECEIVED_AT) -> dict:
    sha = hashlib.sha256(body).hexdigest()
    received = Received(
        sha, parse_postback(body, received_at=received_at), f"raw/{sha}.xml", sha, received_at
    )
    (item,) = [item for (pk, _), item in plan_batch([received]).puts.items() if pk.startswith("IN#")]
    return item


# -- the shard function ----------------------------------------------------------------------------------
def test_the_shard_is_stable_across_processes_and_releases():
    # Pinned: tables hold entries under these shards; a different function would leave them where readers
    # no longer look (and Python's salted hash() would move them on every cold start).
    assert inbound_shard("IN#SMS_MO#tx-1") == 5
    assert inbound_shard("IN#SMS_MO#T-STOP-1") == 2
    assert inbound_shard("IN#SMS_MO#tx-1") == inbound_shard("IN#SMS_MO#tx-1")


def test_every_shard_is_in_range_and_a_thousand_ids_spread_over_all_of_them():
    shards = Counter(inbound_shard(f"IN#SMS_MO#tx-{n}") for n in range(1000))
    assert set(shards) == set(range(INBOUND_SHARDS))
    fair = 1000 / INBOUND_SHARDS
    assert max(shards.values()) <= 2 * fair, shards


def test_the_key_shapes():
    assert inbound_day("2025-05-01T12:00:00.000000Z", 3) == "INDAY#2025-05-01#3"
    assert inbound_day(UNDATED, 3) == "INDAY#~#3"  # undated messages: a day of their own, sharded too
    assert inbound_to("63184", 5) == "TO#63184#5"


def test_readers_look_in_every_shard_and_in_the_unsharded_partition_older_tables_hold():
    day = inbound_day_partitions("2025-05-01T12:00:00.000000Z")
    assert day == (*(f"INDAY#2025-05-01#{n}" for n in range(INBOUND_SHARDS)), "INDAY#2025-05-01")
    to = inbound_to_partitions("63184")
    assert to == (*(f"TO#63184#{n}" for n in range(INBOUND_SHARDS)), "TO#63184")


# -- the planner writes them -----------------------------------------------------------------------------
def test_an_inbound_message_is_listed_by_number_and_day_on_its_shard_and_by_sender_on_one_partition():
    item = planned_inbound(inbound_sms("tx-1"))
    assert item["pk"] == "IN#SMS_MO#tx-1"
    shard = inbound_shard(item["pk"])
    assert (item["gsi1pk"], item["gsi1sk"]) == (f"TO#63184#{shard}", "2026-01-02T08:04:05.000000Z#tx-1")
    assert (item["gsi3pk"], item["gsi3sk"]) == (
        f"INDAY#2026-01-02#{shard}",
        "2026-01-02T08:04:05.000000Z#tx-1",
    )
    assert item["gsi2pk"] == "FROM#15551230000"  # unsharded


def test_a_redelivered_postback_overwrites_its_own_index_entries():
    first = planned_inbound(inbound_sms("tx-1"))
    again = planned_inbound(inbound_sms("tx-1"), RECEIVED_AT + timedelta(hours=5))
    keys = ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk")
    assert {k: again[k] for k in keys} == {k: first[k] for k in keys}


def test_a_surge_to_one_shortcode_lands_on_every_shard():
    items = [planned_inbound(inbound_sms(f"tx-vote-{n}", sender=f"1555123{n:04d}")) for n in range(200)]
    to_shards = Counter(item["gsi1pk"] for item in items)
    day_shards = Counter(item["gsi3pk"] for item in items)
    assert set(to_shards) == {f"TO#63184#{n}" for n in range(INBOUND_SHARDS)}
    assert set(day_shards) == {f"INDAY#2026-01-02#{n}" for n in range(INBOUND_SHARDS)}
    assert max(to_shards.values()) <= 2 * 200 / INBOUND_SHARDS, to_shards
