"""The state table's single-table model: the keys every feature writes under, and a batch's write plan.

Keys (pk / sk):
  MSG#<trackingid>     RANK#<rank>#<code>             state marker (SENT/SUBMITTED ones on the open index)
  MSG#<trackingid>     EVT#<utc>#<code>#<key>         one history item per distinct event
  MSG#<trackingid>     REQUEST                        the sender's record of the request (sending/ledger.py)
  TPL#<mmsid>          RANK#<rank>#<code> / EVT#...   template encoding state and history
  IN#<origin>#<id>     MSG                            inbound SMS/MMS (gsi1: TO#<to>#<shard>,
                                                      gsi2: FROM#<from>, gsi3: INDAY#<utc date>#<shard>)
  SUB#<mobile>         CAMPAIGN#<id>#AT#<time>#<code> subscription changes; the latest is the state
  SUB#<mobile>         EVT#...                        subscription history
  EMAILSUB#<email>     CAMPAIGN#<id>#AT#<time>#<code> / EVT#...
  SUPPRESS#<mobile>    AT#<time>#<code>               opt-out (N302, inbound STOP) or opt-in (N301)
  PASS#<id>            EVT#...                        wallet-pass events
  OTHER#<origin>#<id>  EVT#...                        unrecognised ORIGIN/CODE, kept with all fields
                                                      (gsi1: UNRECOGNISED, `<event time>#<pk>`)
  QUARANTINE#<sha256>  Q                              a body that cannot be applied (gsi1: QUARANTINE)
  SEEN#<semantic key>  SEEN                           an undated postback's first sighting
The open index (gsi1, OPEN#<shard>, sorted by time) lists SENT/SUBMITTED markers; the hourly stale check
drops markers whose message has reached a final state, so the index holds only messages still open.
Outbound messages by number (gsi2, OUT#<TO>, sorted `<provider time>#<trackingid>`): every MMS_MT/SMS_MT
delivery report's history item, and the sender's outbound record (sending/ledger.py), so a message is found by
the number it went to even when no request is linked to it (reconciliation). The same index holds
inbound messages under FROM#<number>: the prefixes keep them apart.
Inbound messages by receiving number (gsi1, TO#<number>#<shard>) and by UTC day (gsi3,
INDAY#<utc date>#<shard>), both sorted `<time>#<id>`, are each spread over INBOUND_SHARDS partitions (its
comment says why and how many); readers query every shard, and the unsharded TO#<number> / INDAY#<utc date>
that tables written before the sharding hold, and merge. By sender (gsi2, FROM#<number>) stays one partition:
one phone does not send hundreds of messages a second.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

OPEN_SHARDS = 8
# Every inbound message of the account is listed under its UTC day (gsi3) and under the number it was sent
# to (gsi1; a shortcode running a TV vote takes thousands a second). One index partition takes at most
# 1,000 write units a second, an inbound item (ALL projection, 1-2 KB) costs 1-2, and a throttled index
# throttles the base-table write, the consumer's whole batch; the sort keys are time-ordered, so DynamoDB's
# split for heat cannot spread them. So each is spread over INBOUND_SHARDS partitions: 8 x 1,000 = 8,000
# write units a second per day and per number: 4,000-8,000 inbound messages a second. Readers pay for it:
# a listing queries every shard (plus the unsharded partition older tables hold), 9 Queries per day or
# number; 16 shards would double that for headroom the rest of the path (the consumer's concurrency, the
# table's own limits) does not reach.
INBOUND_SHARDS = 8
UNDATED = "~"  # sorts after every ISO timestamp: undated events come last in a history
UNRECOGNISED_PREFIX = "OTHER#"
UNRECOGNISED_PARTITION = "UNRECOGNISED"


@dataclass
class Plan:
    """A batch's items, each with the records that need it written before they are acknowledged."""

    puts: dict[tuple[str, str], dict[str, Any]]
    owners: dict[tuple[str, str], set[str]]
    quarantine: list[tuple[dict[str, Any], str]]  # first-seen records: put only if absent


def _shard(key: str, shards: int) -> int:
    """A stable shard for `key`: the same in every process and release (not Python's salted hash())."""
    return hashlib.sha256(key.encode()).digest()[0] % shards


def open_shard(tracking_id: str) -> str:
    return f"OPEN#{_shard(tracking_id, OPEN_SHARDS)}"


def rank_sk(rank: int, code: str) -> str:
    return f"RANK#{rank}#{code}"


def outbound_index(to: str, moment: str, tracking_id: str) -> dict[str, str]:
    """gsi2 keys that list an outbound message's item under the number it went to (`moment`: iso() or
    UNDATED, which sorts after every time)."""
    return {"gsi2pk": f"OUT#{to}", "gsi2sk": f"{moment}#{tracking_id}"}


def inbound_shard(pk: str) -> int:
    """The shard of an inbound message's index entries, from its item's pk (`IN#<origin>#<id>`): a
    redelivered postback writes the same item, so it lands on the same shard and overwrites its own
    entries."""
    return _shard(pk, INBOUND_SHARDS)


def _unsharded_day(moment: str) -> str:
    return f"INDAY#{moment[:10] if moment != UNDATED else UNDATED}"


def inbound_day(moment: str, shard: int) -> str:
    """The gsi3 partition of one shard of the inbound messages of one UTC day (`moment` an iso() time, or
    UNDATED)."""
    return f"{_unsharded_day(moment)}#{shard}"


def inbound_to(number: str, shard: int) -> str:
    """The gsi1 partition of one shard of the inbound messages to one number."""
    return f"TO#{number}#{shard}"


def inbound_day_partitions(moment: str) -> tuple[str, ...]:
    """Every gsi3 partition a UTC day's inbound messages are under: each shard's, then the unsharded
    `INDAY#<date>` that tables written before the sharding hold."""
    return (*(inbound_day(moment, shard) for shard in range(INBOUND_SHARDS)), _unsharded_day(moment))


def inbound_to_partitions(number: str) -> tuple[str, ...]:
    """Every gsi1 partition the inbound messages to a number are under: each shard's, then the unsharded
    `TO#<number>` that tables written before the sharding hold."""
    return (*(inbound_to(number, shard) for shard in range(INBOUND_SHARDS)), f"TO#{number}")
