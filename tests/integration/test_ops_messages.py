"""`ops messages --to NUMBER`: outbound messages to a number by time (gsi2 `OUT#<TO>`), from the delivery
reports the real consumer wrote and the sender's outbound records, newest first by each message's first
report, with its state, FROM and linked request."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta

from mmsbridge.core.times import iso
from mmsbridge.sending.ledger import accepted_fields, outbound_items
from mmsbridge.sending.provider_xml import ProviderResult
from tests.integration.test_ops_cli import apply, sample

BASE = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)


def us_number() -> str:
    return f"1774{random.choice('23456789')}{random.randrange(10**6):06d}"


def reports(
    table, tracking_id: str, to: str, at: datetime, *, sender: str = "47215", outcome_after_s: int = 20
):
    """N201 at `at` and N202 `outcome_after_s` later, as the consumer applies them."""
    stamp = lambda moment: moment.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00")  # noqa: E731
    apply(
        table,
        sample("sms_mt_n201.xml", TRACKINGID=tracking_id, TO=to, FROM=sender, TIMESTAMP=stamp(at)),
        sample(
            "sms_mt_n202.xml",
            TRACKINGID=tracking_id,
            TO=to,
            FROM=sender,
            TIMESTAMP=stamp(at + timedelta(seconds=outcome_after_s)),
        ),
    )


def test_messages_to_a_number_newest_first_with_state_sender_and_request(cli, table):
    to = us_number()
    ids = [f"T-msg-{n}-{uuid.uuid4().hex[:8]}" for n in range(4)]
    reports(table, ids[0], to, BASE)
    reports(table, ids[1], to, BASE + timedelta(hours=1), sender="47216")
    reports(table, ids[2], to, BASE + timedelta(hours=2))
    reports(table, ids[3], us_number(), BASE + timedelta(hours=2))  # another number: not listed
    # The sender's outbound record for the first; one accepted with no report yet.
    ledger = {
        "request_id": "order-1",
        "action": "sendSMS",
        "to": to,
        "from": "47215",
        **accepted_fields(ProviderResult(ok=True, tracking_id=ids[0]), BASE - timedelta(seconds=1)),
    }
    table.put_all(outbound_items(ledger))
    quiet = f"T-msg-quiet-{uuid.uuid4().hex[:8]}"
    table.put_all(
        outbound_items(
            {
                **ledger,
                "request_id": "order-2",
                **accepted_fields(ProviderResult(ok=True, tracking_id=quiet), BASE + timedelta(hours=3)),
            }
        )
    )

    code, out, _ = cli("--json", "messages", "--to", f"+1 ({to[1:4]}) {to[4:7]}-{to[7:]}")
    assert code == 0
    document = json.loads(out)
    assert document["to"] == to
    assert [m["tracking_id"] for m in document["messages"]] == [quiet, ids[2], ids[1], ids[0]]
    by_id = {m["tracking_id"]: m for m in document["messages"]}
    first = by_id[ids[0]]
    assert (first["first_report_at"], first["first_report_code"]) == (iso(BASE), "N201")
    assert (first["state"], first["state_code"], first["from"]) == ("DELIVERED", "N202", "47215")
    assert (first["linked"], first["request_id"], first["codes"]) == (True, "order-1", ["N201", "N202"])
    assert (by_id[ids[1]]["from"], by_id[ids[1]]["linked"], by_id[ids[1]]["request_id"]) == (
        "47216",
        False,
        None,
    )
    assert (by_id[quiet]["first_report_at"], by_id[quiet]["state"]) == (None, "SUBMITTED")

    code, out, _ = cli("--json", "messages", "--to", to, "--limit", "2")
    assert [m["tracking_id"] for m in json.loads(out)["messages"]] == [quiet, ids[2]]

    # By each message's first time: the first message's N202 is inside this window, its N201 is not.
    since, until = BASE + timedelta(seconds=10), BASE + timedelta(hours=2, seconds=1)
    code, out, _ = cli("--json", "messages", "--to", to, "--since", iso(since), "--until", iso(until))
    assert [m["tracking_id"] for m in json.loads(out)["messages"]] == [ids[2], ids[1]]

    code, text, _ = cli("messages", "--to", to)
    assert code == 0
    assert f"outbound messages to {to}: 4" in text
    assert "(none)" in text  # the message no request is linked to
    assert "order-1" in text


def test_a_number_the_sender_would_refuse_is_a_usage_error(cli):
    code, out, err = cli("messages", "--to", "555-0100")
    assert code == 2
    assert out == ""
    assert "that number" in err
