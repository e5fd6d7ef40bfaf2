"""The sender's records in the state table, pure: keys, statuses and items.

Keys (pk / sk):
  REQ#<request_id>     REQUEST              the request's ledger: status, reasons, attempts, the provider's
                                            answer; the idempotency record (one per request_id)
  REQ#<request_id>     CONFLICTS            bodies that came under the request_id with other content, never
                                            sent (conflicts.py)
  REJECTED#<sha256>    REQUEST              a refused body that carries no usable request_id (gsi2, when
                                            it carried a readable one that cannot be a key, such as 7 or
                                            300 characters: REJECTED_ID#<it>, `<received_at>#<sha256>`)
  MSG#<trackingid>     REQUEST              the outbound record: what was sent, so delivery reports join it
                                            (gsi2: OUT#<to>, `<accepted_at>#<trackingid>`, beside the
                                            message's delivery reports: outbound messages by number)
  MSG#<trackingid>     RANK#0#SUBMITTED     the SUBMITTED state marker (on the open index)
  PACE#provider        PACE                 the shared limiter's state (limiter.py)

Ledger statuses: SENDING (an attempt holds the request, until `lease_until`), RETRY (no attempt holds it;
the next delivery may call the provider), and the final ones: ACCEPTED, REJECTED, SUPPRESSED, FAILED and
OUTCOME_UNKNOWN. A final ledger is never sent again; the operator CLI can re-drive one deliberately. Final
statuses other than ACCEPTED are listed on gsi1 under SEND#<status>, newest last.

An OUTCOME_UNKNOWN ledger may later be settled ACCEPTED by reconciliation (reconcile.py): its `tracking_id`
and `accepted_at` (the message's first report) are set as an accepted send's are, a `reconciled` map says how
and when (`at`, `by`, `how`, the evidence), the attempt log gains a `reconciled` entry, it leaves the
OUTCOME_UNKNOWN worklist, and the outbound record and SUBMITTED marker are written as for any accepted send
(the outbound record with `reconciled_at` and `reconciled_by`).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from mmsbridge.core.states import MessageState
from mmsbridge.core.table_model import open_shard, outbound_index, rank_sk
from mmsbridge.core.times import iso
from mmsbridge.sending.provider_xml import ProviderResult
from mmsbridge.sending.request import REQUEST_ID_MAX, SendMMS, SendRequest, SendSavedMMS

__all__ = [
    "FINAL",
    "SendStatus",
    "accepted_fields",
    "ledger_key",
    "listing_key",
    "outbound_items",
    "rejected_item",
    "sha256_hex",
]

LEDGER_SK: Final = "REQUEST"
# A request_id too long or too odd to be a key is still recorded, under the body's hash.
_KEYABLE_ID_MAX: Final = 256
# A longer one that an operator could still type is listed on gsi2 (a key of at most 2048 bytes).
_INDEXABLE_ID_BYTES: Final = 1024


class SendStatus(StrEnum):
    SENDING = "SENDING"
    RETRY = "RETRY"
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    SUPPRESSED = "SUPPRESSED"
    FAILED = "FAILED"
    OUTCOME_UNKNOWN = "OUTCOME_UNKNOWN"


FINAL: Final = frozenset(
    {
        SendStatus.ACCEPTED,
        SendStatus.REJECTED,
        SendStatus.SUPPRESSED,
        SendStatus.FAILED,
        SendStatus.OUTCOME_UNKNOWN,
    }
)


def sha256_hex(body: str | bytes) -> str:
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    return hashlib.sha256(data).hexdigest()


def ledger_key(request_id: str) -> dict[str, str]:
    return {"pk": f"REQ#{request_id}", "sk": LEDGER_SK}


def listing_key(status: SendStatus, at: datetime, request_id: str) -> dict[str, str]:
    """gsi1 keys that list a final, not-accepted request under its status (operators' worklists)."""
    return {"gsi1pk": f"SEND#{status.value}", "gsi1sk": f"{iso(at)}#{request_id}"}


def rejected_item(
    body: str,
    request_id: object,
    reasons: list[tuple[str, str]],
    now: datetime,
    *,
    valid: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A refused request, keyed by its request_id when it has a usable one, else by the body's hash. `valid`:
    the addressing fields that passed validation (action, to, from), kept as a valid request's are."""
    digest = sha256_hex(body)
    usable = (
        isinstance(request_id, str) and 0 < len(request_id) <= _KEYABLE_ID_MAX and request_id.isprintable()
    )
    key = ledger_key(request_id) if usable else {"pk": f"REJECTED#{digest}", "sk": LEDGER_SK}  # type: ignore[arg-type]
    shown_id = request_id if usable else None
    carried = None if usable else _readable_id(request_id)
    found_by: dict[str, str] = {}
    if carried is not None:  # `ops request ID` finds it by the id it carried
        found_by = {"request_id_given": carried, **rejected_id_index(carried, now, digest)}
    return {
        **{name: value for name, value in (valid or {}).items() if name in ("action", "to", "from")},
        **found_by,
        **key,
        "type": "send_request",
        "request_id": shown_id,
        "status": SendStatus.REJECTED.value,
        "reasons": [{"field": field, "reason": reason} for field, reason in reasons],
        "request_id_valid": usable and len(str(request_id)) <= REQUEST_ID_MAX,
        "body": body,
        "payload_sha256": digest,
        "received_at": iso(now),
        "updated_at": iso(now),
        **listing_key(SendStatus.REJECTED, now, shown_id or digest),
    }


def rejected_id_index(request_id: str, now: datetime, digest: str) -> dict[str, str]:
    """gsi2 keys that list a refused body stored by its hash under the request_id it carried."""
    return {"gsi2pk": rejected_id_pk(request_id), "gsi2sk": f"{iso(now)}#{digest}"}


def rejected_id_pk(request_id: str) -> str:
    return f"REJECTED_ID#{request_id}"


def _readable_id(request_id: object) -> str | None:
    """A request_id an operator could type (a string or a whole number), short enough for an index key."""
    if isinstance(request_id, int) and not isinstance(request_id, bool):
        text = str(request_id)
    elif isinstance(request_id, str) and request_id.isprintable() and request_id.strip():
        text = request_id
    else:
        return None
    return text if len(text.encode("utf-8", "surrogatepass")) <= _INDEXABLE_ID_BYTES else None


def request_summary(request: SendRequest) -> dict[str, Any]:
    """The addressing of a request as recorded in its ledger and outbound record."""
    summary: dict[str, Any] = {
        "request_id": request.request_id,
        "action": request.action.value,
        "to": request.to,
        "from": request.from_,
    }
    if request.campaign_ref:
        summary["campaign_ref"] = request.campaign_ref
    if isinstance(request, SendSavedMMS):
        summary["mms_id"] = request.mms_id
    elif isinstance(request, SendMMS):
        summary["name"] = request.name
    return summary


def accepted_fields(result: ProviderResult, now: datetime) -> dict[str, Any]:
    """What the ledger keeps of the provider's Success answer."""
    return {
        "tracking_id": result.tracking_id,
        "provider_mms_id": result.mms_id,
        "provider_to": result.to,
        "provider_from": result.from_,
        "status_details": result.status_details,
        "accepted_at": iso(now),
    }


def outbound_items(ledger: dict[str, Any], *, retention_days: int = 0) -> list[dict[str, Any]]:
    """The outbound record and the SUBMITTED marker under the message's TRACKINGID, from an ACCEPTED ledger.

    Plain puts: both are pure functions of the ledger, so writing them again changes nothing. The marker
    ranks lowest, so a delivery report that arrived first keeps the message's state where it is.
    """
    tracking_id = ledger["tracking_id"]
    pk = f"MSG#{tracking_id}"
    accepted_at = ledger["accepted_at"]
    outbound = {
        "pk": pk,
        "sk": LEDGER_SK,
        "type": "outbound",
        "tracking_id": tracking_id,
        "mms_id": ledger.get("provider_mms_id") or ledger.get("mms_id"),
        "accepted_at": accepted_at,
        "status_details": ledger.get("status_details"),
        "provider_from": ledger.get("provider_from"),
        **{k: ledger[k] for k in ("request_id", "action", "to", "from", "campaign_ref") if k in ledger},
    }
    if ledger.get("to"):
        outbound.update(outbound_index(ledger["to"], accepted_at, tracking_id))
    state = MessageState.SUBMITTED
    marker = {
        "pk": pk,
        "sk": rank_sk(state.rank, state.value),
        "type": "message_state",
        "rank": state.rank,
        "state": state.value,
        "code": state.value,
        "at": accepted_at,
        "tracking_id": tracking_id,
        "failure_reason": None,
        "via_link": False,
        "raw_key": None,
        "gsi1pk": open_shard(tracking_id),
        "gsi1sk": f"{accepted_at}#{tracking_id}",
    }
    items = [outbound, marker]
    if retention_days > 0:
        expires = int(datetime.fromisoformat(accepted_at).timestamp()) + retention_days * 86400
        for item in items:
            item["expires_at"] = expires
    return [
        {k: v for k, v in item.items() if v is not None or k in ("failure_reason", "raw_key")}
        for item in items
    ]
