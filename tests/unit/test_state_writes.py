"""The consumer's write plan: which items expire under the retention setting and which are kept for good."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from mmsbridge.postbacks.planner import Received, plan_batch
from mmsbridge.postbacks.reader import parse_postback
from tests.conftest import SAMPLES as PROVIDER_FIXTURES

SAMPLES = PROVIDER_FIXTURES / "postbacks"
RECEIVED_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
INBOUND_STOP = b"""<?xml version="1.0" encoding="UTF-8"?>
<POSTBACK><ORIGIN>SMS_MO</ORIGIN><CODE>N211</CODE><TRANSACTIONID>T-STOP-1</TRANSACTIONID>
<FROM>15551230000</FROM><TO>12345</TO><TEXT>stop</TEXT><KEYWORD>STOP</KEYWORD>
<TIMESTAMP>2026-01-02T03:04:05-05:00</TIMESTAMP></POSTBACK>"""


def planned(body: bytes, retention_days: int) -> dict[tuple[str, str], dict]:
    sha = hashlib.sha256(body).hexdigest()
    received = Received(
        sha, parse_postback(body, received_at=RECEIVED_AT), f"raw/{sha}.xml", sha, RECEIVED_AT
    )
    return plan_batch([received], retention_days=retention_days).puts


@pytest.mark.parametrize(
    ("body", "kept_prefixes"),
    [
        ((SAMPLES / "sub_n302.xml").read_bytes(), ("SUPPRESS#", "SUB#")),
        ((SAMPLES / "sub_n301.xml").read_bytes(), ("SUPPRESS#", "SUB#")),
        ((SAMPLES / "email_sub_n303.xml").read_bytes(), ("EMAILSUB#",)),
        (INBOUND_STOP, ("SUPPRESS#",)),
    ],
    ids=["sub-opt-out", "sub-opt-in", "email-sub", "inbound-stop"],
)
def test_consent_state_never_expires_but_its_history_does(body, kept_prefixes):
    puts = planned(body, retention_days=400)
    standing = {
        key: item for key, item in puts.items() if key[0].startswith(kept_prefixes) and key[1][:4] != "EVT#"
    }
    others = {key: item for key, item in puts.items() if key not in standing}
    assert standing
    assert others
    assert all("expires_at" not in item for item in standing.values()), standing
    assert all("expires_at" in item for item in others.values()), others


def test_an_inbound_stop_writes_a_standing_opt_out():
    puts = planned(INBOUND_STOP, retention_days=400)
    (suppression,) = [item for (pk, _), item in puts.items() if pk.startswith("SUPPRESS#")]
    assert suppression["suppressed"] is True
    assert "expires_at" not in suppression
    (inbound,) = [item for (pk, _), item in puts.items() if pk.startswith("IN#")]
    assert inbound["expires_at"] == int(datetime(2026, 1, 2, 8, 4, 5, tzinfo=UTC).timestamp()) + 400 * 86400


def test_message_states_and_history_expire():
    puts = planned((SAMPLES / "mms_mt_n102.xml").read_bytes(), retention_days=30)
    assert puts
    assert all("expires_at" in item for item in puts.values())


def test_no_retention_means_nothing_expires():
    for body in ((SAMPLES / "mms_mt_n102.xml").read_bytes(), (SAMPLES / "sub_n302.xml").read_bytes()):
        assert all("expires_at" not in item for item in planned(body, retention_days=0).values())
