"""The state table's single-table model: the keys every feature writes under, and a batch's write plan.

Keys (pk / sk):
  MSG#<trackingid>     RANK#<rank>#<code>             state marker (SENT/SUBMITTED ones on the open index)
  MSG#<trackingid>     EVT#<utc>#<code>#<key>         one history item per distinct event
  MSG#<trackingid>     REQUEST                        the sender's record of the request (sending/ledger.py)
  TPL#<mmsid>          RANK#<rank>#<code> / EVT#...   template encoding state and history
  IN#<origin>#<id>     MSG                            inbound SMS/MMS (gsi1: TO#<to>, gsi2: FROM#<from>)
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
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

OPEN_SHARDS = 8
UNDATED = "~"  # sorts after every ISO timestamp: undated events come last in a history
UNRECOGNISED_PREFIX = "OTHER#"
UNRECOGNISED_PARTITION = "UNRECOGNISED"


@dataclass
class Plan:
    """A batch's items, each with the records that need it written before they are acknowledged."""

    puts: dict[tuple[str, str], dict[str, Any]]
    owners: dict[tuple[str, str], set[str]]
    quarantine: list[tuple[dict[str, Any], str]]  # first-seen records: put only if absent


def open_shard(tracking_id: str) -> str:
    return f"OPEN#{hashlib.sha256(tracking_id.encode()).digest()[0] % OPEN_SHARDS}"


def rank_sk(rank: int, code: str) -> str:
    return f"RANK#{rank}#{code}"


def outbound_index(to: str, moment: str, tracking_id: str) -> dict[str, str]:
    """gsi2 keys that list an outbound message's item under the number it went to (`moment`: iso() or
    UNDATED, which sorts after every time)."""
    return {"gsi2pk": f"OUT#{to}", "gsi2sk": f"{moment}#{tracking_id}"}


def inbound_day(moment: str) -> str:
    """The gsi3 partition of inbound messages of one UTC day (`moment` an iso() time, or UNDATED)."""
    return f"INDAY#{moment[:10] if moment != UNDATED else UNDATED}"
