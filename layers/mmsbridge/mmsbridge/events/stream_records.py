"""Lambda's DynamoDB stream records (images in DynamoDB JSON) as `StreamChange`s of plain items.

The stream must be NEW_AND_OLD_IMAGES: a ledger's settlement is told from its old status. Numbers come back
as Decimal, as boto3 reads them; the decisions convert what they publish.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from mmsbridge.events.changes import StreamChange

__all__ = ["stream_change", "stream_changes"]

_deserializer = TypeDeserializer()


def _plain(image: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if image is None:
        return None
    return {name: _deserializer.deserialize(value) for name, value in image.items()}


def stream_change(record: Mapping[str, Any]) -> StreamChange:
    """One Lambda stream record (`Records[i]`) as a StreamChange. Raises KeyError/TypeError when it is not
    a DynamoDB stream record with pk and sk."""
    body = record["dynamodb"]
    keys = _plain(body["Keys"]) or {}
    return StreamChange(
        record_id=str(body["SequenceNumber"]),
        event_name=str(record["eventName"]),
        pk=str(keys["pk"]),
        sk=str(keys["sk"]),
        new=_plain(body.get("NewImage")),
        old=_plain(body.get("OldImage")),
    )


def stream_changes(records: Iterable[Mapping[str, Any]]) -> list[StreamChange]:
    return [stream_change(record) for record in records]
