"""The state-table reads a decision needs (`changes.partition_read`).

Strongly consistent: a stream record is written once its item is committed, so a consistent read made
after it sees every item that existed before it (an eventually consistent one could miss a marker that did,
and a lower one would then look like a change).
"""

from __future__ import annotations

from typing import Any

from mmsbridge.aws.state_table import StateTable, from_dynamo, to_dynamo
from mmsbridge.events.changes import PartitionRead

__all__ = ["PartitionReader"]


class PartitionReader:
    def __init__(self, table: StateTable) -> None:
        self._table = table

    def read(self, wanted: PartitionRead) -> list[dict[str, Any]]:
        """Every item under the partition and prefix (a message's partition holds a handful)."""
        expression = "pk = :pk"
        values: dict[str, Any] = {":pk": wanted.pk}
        if wanted.sk_prefix is not None:
            expression += " AND begins_with(sk, :prefix)"
            values[":prefix"] = wanted.sk_prefix
        params: dict[str, Any] = {
            "TableName": self._table.name,
            "KeyConditionExpression": expression,
            "ExpressionAttributeValues": to_dynamo(values),
            "ConsistentRead": True,
        }
        items: list[dict[str, Any]] = []
        while True:
            page = self._table.client.query(**params)
            items.extend(from_dynamo(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]
