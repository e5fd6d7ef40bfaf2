"""The postback queue's message format."""

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmsbridge.core import envelope

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def encode(body):
    return envelope.encode(
        key="raw/k.xml", sha256="ab" * 32, body=body, received_at=NOW, source_ip="127.0.0.1", request_id="r1"
    )


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4096))
def test_round_trip_is_byte_exact(body):
    decoded = envelope.decode(encode(body))
    assert decoded.body == body
    assert decoded.size == len(body)
    assert decoded.key == "raw/k.xml"
    assert decoded.received_at == NOW.isoformat()


def test_message_is_ascii_json():
    message = encode("<TEXT>✓ \x00 \ud7ff</TEXT>".encode("utf-8", "surrogatepass"))
    assert message.isascii()
    assert json.loads(message)["v"] == 1


def test_large_body_travels_by_reference_and_fits_the_queue_limit():
    at_limit = encode(b"x" * envelope.INLINE_BODY_LIMIT)
    assert len(at_limit.encode()) <= 262_144
    assert envelope.decode(at_limit).inline
    over = envelope.decode(encode(b"x" * (envelope.INLINE_BODY_LIMIT + 1)))
    assert not over.inline
    assert over.body is None
    assert over.size == envelope.INLINE_BODY_LIMIT + 1


@pytest.mark.parametrize(
    "message",
    [
        "",
        "null",
        "[]",
        '{"v": 2}',
        '{"v": 1}',
        '{"v":1,"key":"k","sha256":"s","size":"x","received_at":"t"}',
        '{"v":1,"key":"k","sha256":"s","size":1,"received_at":"t","body_b64":"***"}',
        "\x00",
    ],
)
def test_malformed_messages_raise_envelope_error(message):
    with pytest.raises(envelope.EnvelopeError):
        envelope.decode(message)
