"""Refused send requests as the operator looks for them.

A refused body is recorded under `REQ#<request_id>` when its request_id can be a key (a string of 1-256
printable characters), else under `REJECTED#<sha256>` of the body. One that carried a request_id an operator
can still type (a number such as 7, or a string too long to be a key) is also listed on gsi2 under
`REJECTED_ID#<that id>`, so `request ID` finds it. A refusal keeps the addressing fields that passed
validation (action, to, from); refusals recorded before it did are read again here to show them.
"""

from __future__ import annotations

from typing import Any

from mmsbridge.aws.state_table import StateTable
from mmsbridge.sending.ledger import SendStatus, rejected_id_pk
from mmsbridge.sending.request import InvalidSendRequest, parse_send_request_json
from ops import render

ADDRESSING = ("action", "to", "from")
MATCHES_SHOWN = 10


def by_carried_id(table: StateTable, request_id: str) -> list[dict[str, Any]]:
    """Refused bodies stored by their hash that carried this request_id, newest first."""
    return list(table.query(rejected_id_pk(request_id), index="gsi2", forward=False, limit=MATCHES_SHOWN + 1))


def find_carried(table: StateTable, request_id: str) -> dict[str, Any] | None:
    """The newest refused body stored by its hash that carried `request_id`, as `request` shows a ledger,
    with `found_by` and the SHA-256 of any other refused bodies that carried it; None if there is none."""
    from ops import sends  # sends reads this module's helpers for every ledger

    matches = by_carried_id(table, request_id)
    if not matches:
        return None
    document = sends.request(table, sha256=matches[0]["payload_sha256"])
    if document is not None:
        document["found_by"] = "request_id_given"
        document["also_carried_by"] = [m.get("payload_sha256") for m in matches[1:MATCHES_SHOWN]]
    return document


def carried_lines(document: dict[str, Any]) -> list[str]:
    """What `request ID` says when it found a refused body by the request_id the body carried."""
    if document.get("found_by") != "request_id_given":
        return []
    lines = [
        f"  found by the request_id it carried, {render.cell(document['request_id_given'])}: not one that "
        f"can be a key, so it is stored by its SHA-256 (`request --sha256 {document['payload_sha256']}`)"
    ]
    others = document.get("also_carried_by") or []
    if others:
        lines.append("  other refused bodies carried it too (newest first; `request --sha256 HEX`):")
        lines += [f"    {digest}" for digest in others]
    return lines


def addressing(item: dict[str, Any]) -> dict[str, Any]:
    """action, to and from of a ledger; for a refusal, those that passed validation (read again from its
    stored body when the refusal predates keeping them)."""
    found = {name: item.get(name) for name in ADDRESSING}
    if (
        item.get("status") != SendStatus.REJECTED
        or any(found.values())
        or not isinstance(item.get("body"), str)
    ):
        return found
    try:
        parse_send_request_json(item["body"])
    except InvalidSendRequest as error:
        return {name: error.valid.get(name) for name in ADDRESSING}
    return found  # valid today (the rules changed, or a media preflight refused it): nothing to add


def not_found_hint(request_id: str) -> str:
    """Where to look for a request_id the ledger does not hold."""
    return (
        "not taken from the send queue yet (`status` shows its depth and oldest message), dead-lettered "
        f"before the sender could read it (`send-dlq --list --request-id {request_id}`), or refused with a "
        "request_id that could be neither a key nor read back (`requests --status REJECTED` lists refused "
        "bodies by SHA-256; `request --sha256 HEX` shows one)"
    )
