"""DynamoDB access to the state table: applying a batch's writes; the reads operators and the sender need."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from mmsbridge.state_writes import OPEN_SHARDS, STATE_SK, Write

TRANSACTION_LIMIT = 100
_MAX_ROUNDS = 4  # each round drops or replaces at least one write whose condition failed
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _to_dynamo(values: dict[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(value) for name, value in values.items()}


def from_dynamo(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


@dataclass
class ApplyResult:
    failed_records: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    conditions_failed: int = 0  # late events and duplicates: expected, counted for metrics
    transactions: int = 0


class StateTable:
    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self._dynamodb = dynamodb
        self.name = table_name

    # -- writing ------------------------------------------------------------------------------------
    def apply(self, writes: list[Write]) -> ApplyResult:
        """Apply the writes, in transactions of up to 100 items. A write whose condition fails is replaced
        by its fallback (or dropped) and the rest is retried; any other failure fails the transaction's
        records, which come back through the queue (every write is idempotent)."""
        result = ApplyResult()
        for start in range(0, len(writes), TRANSACTION_LIMIT):
            self._apply_chunk(writes[start : start + TRANSACTION_LIMIT], result)
        return result

    def _apply_chunk(self, chunk: list[Write], result: ApplyResult) -> None:
        records = set().union(*(w.records for w in chunk)) if chunk else set()
        for _ in range(_MAX_ROUNDS):
            if not chunk:
                return
            try:
                result.transactions += 1
                self._dynamodb.transact_write_items(TransactItems=[self._transact_item(w) for w in chunk])
                return
            except ClientError as error:
                reasons = error.response.get("CancellationReasons") or []
                codes = [reason.get("Code", "None") for reason in reasons]
                if not codes or any(code not in ("None", "ConditionalCheckFailed") for code in codes):
                    result.failed_records |= records
                    result.errors.append(f"{error.response['Error'].get('Code')}: {codes or error}")
                    return
                survivors = []
                for write, code in zip(chunk, codes, strict=True):
                    if code != "ConditionalCheckFailed":
                        survivors.append(write)
                        continue
                    result.conditions_failed += 1
                    if write.fallback is not None:
                        survivors.append(write.fallback)
                chunk = survivors
        result.failed_records |= records
        result.errors.append("conditions kept failing after retries")

    def _transact_item(self, write: Write) -> dict[str, Any]:
        if write.item is not None:
            body: dict[str, Any] = {"TableName": self.name, "Item": _to_dynamo(write.item)}
            action = "Put"
        else:
            body = {"TableName": self.name, "Key": _to_dynamo(write.key), "UpdateExpression": write.update}
            action = "Update"
        if write.condition:
            body["ConditionExpression"] = write.condition
        if write.names:
            body["ExpressionAttributeNames"] = write.names
        if write.values:
            body["ExpressionAttributeValues"] = _to_dynamo(write.values)
        return {action: body}

    # -- reading ------------------------------------------------------------------------------------
    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        item = self._dynamodb.get_item(
            TableName=self.name, Key=_to_dynamo({"pk": pk, "sk": sk}), ConsistentRead=True
        ).get("Item")
        return from_dynamo(item) if item else None

    def query(
        self,
        pk: str,
        *,
        sk_prefix: str | None = None,
        index: str | None = None,
        sk_between: tuple[str, str] | None = None,
        forward: bool = True,
        limit: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        pk_name, sk_name = ("pk", "sk") if index is None else (f"{index}pk", f"{index}sk")
        expression = "#pk = :pk"
        names = {"#pk": pk_name}
        values: dict[str, Any] = {":pk": pk}
        if sk_prefix is not None:
            expression += " AND begins_with(#sk, :prefix)"
            names["#sk"], values[":prefix"] = sk_name, sk_prefix
        elif sk_between is not None:
            expression += " AND #sk BETWEEN :low AND :high"
            names["#sk"] = sk_name
            values[":low"], values[":high"] = sk_between
        params: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": expression,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": _to_dynamo(values),
            "ScanIndexForward": forward,
        }
        if index is not None:
            params["IndexName"] = index
        returned = 0
        while True:
            page = self._dynamodb.query(**params)
            for item in page.get("Items", []):
                yield from_dynamo(item)
                returned += 1
                if limit is not None and returned >= limit:
                    return
            if "LastEvaluatedKey" not in page:
                return
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def message(self, tracking_id: str) -> dict[str, Any] | None:
        """A message's current state, with `conflict` set when two different final reports arrived."""
        item = self.get(f"MSG#{tracking_id}", STATE_SK)
        if item is not None:
            item["conflict"] = len(item.get("terminal_codes") or ()) > 1
        return item

    def history(self, pk: str) -> list[dict[str, Any]]:
        """Events in provider-time order (undated ones last), whatever order they arrived in."""
        return list(self.query(pk, sk_prefix="EVT#"))

    def open_messages(self, older_than: str) -> Iterator[dict[str, Any]]:
        """Messages with no final state whose first sighting is before `older_than` (ISO, UTC)."""
        for shard in range(OPEN_SHARDS):
            yield from self.query(f"OPEN#{shard}", index="gsi1", sk_between=("0", older_than))

    def suppressed(self, mobile: str) -> bool:
        item = self.get(f"SUPPRESS#{mobile}", STATE_SK)
        return bool(item and item.get("suppressed"))
