"""DynamoDB access to the state table: applying a batch's writes; the reads operators and the sender need."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from mmsbridge.core.table_model import OPEN_SHARDS, Plan

BATCH_LIMIT = 25  # BatchWriteItem's maximum
_UNPROCESSED_RETRIES = 4
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_dynamo(values: dict[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(value) for name, value in values.items()}


def from_dynamo(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


@dataclass
class ApplyResult:
    failed_records: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    calls: int = 0
    already_quarantined: int = 0


class StateTable:
    def __init__(
        self, dynamodb: Any, table_name: str, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._dynamodb = dynamodb
        self.name = table_name
        self._sleep = sleep

    @property
    def client(self) -> Any:
        return self._dynamodb

    # -- writing ------------------------------------------------------------------------------------
    def apply(self, plan: Plan) -> ApplyResult:
        """Write the plan: puts in BatchWriteItem calls of 25, unprocessed items retried with backoff. An item
        that still fails (or a call that raises) fails only the records that needed it; they come back
        through the queue, and writing their items again changes nothing."""
        result = ApplyResult()
        keys = list(plan.puts)
        for start in range(0, len(keys), BATCH_LIMIT):
            chunk = keys[start : start + BATCH_LIMIT]
            for key in self._put_batch([plan.puts[k] for k in chunk], chunk, result):
                result.failed_records |= plan.owners[key]
        for item, record_id in plan.quarantine:
            self._quarantine(item, record_id, result)
        return result

    def _put_batch(
        self, items: list[dict[str, Any]], keys: list[tuple[str, str]], result: ApplyResult
    ) -> list[tuple[str, str]]:
        """Returns the keys that were not written."""
        requests = [{"PutRequest": {"Item": to_dynamo(item)}} for item in items]
        for attempt in range(_UNPROCESSED_RETRIES + 1):
            try:
                result.calls += 1
                response = self._dynamodb.batch_write_item(RequestItems={self.name: requests})
            except ClientError as error:
                result.errors.append(f"BatchWriteItem: {error}")
                return keys
            requests = response.get("UnprocessedItems", {}).get(self.name, [])
            if not requests:
                return []
            if attempt < _UNPROCESSED_RETRIES:
                self._sleep(min(1.0, 0.05 * 2**attempt))
        unwritten = {
            (from_dynamo(r["PutRequest"]["Item"])["pk"], from_dynamo(r["PutRequest"]["Item"])["sk"])
            for r in requests
        }
        result.errors.append(f"BatchWriteItem: {len(unwritten)} items still unprocessed after retries")
        return [key for key in keys if key in unwritten]

    def _quarantine(self, item: dict[str, Any], record_id: str, result: ApplyResult) -> None:
        try:
            result.calls += 1
            self._dynamodb.put_item(
                TableName=self.name, Item=to_dynamo(item), ConditionExpression="attribute_not_exists(pk)"
            )
        except ClientError as error:
            if error.response["Error"].get("Code") == "ConditionalCheckFailedException":
                result.already_quarantined += 1  # seen before: its first sighting stands
                return
            result.failed_records.add(record_id)
            result.errors.append(f"quarantine: {error}")

    def put_all(self, items: list[dict[str, Any]]) -> list[str]:
        """Plain puts of independent items (BatchWriteItem, 25 at a time); the errors, if any item failed."""
        result = ApplyResult()
        for start in range(0, len(items), BATCH_LIMIT):
            chunk = items[start : start + BATCH_LIMIT]
            self._put_batch(chunk, [(item["pk"], item["sk"]) for item in chunk], result)
        return result.errors

    def first_seen(self, key: str, received_at: str, *, window_start: str, expires_at: int) -> str:
        """When the undated event `key` (a postback's semantic key) was first received: `received_at`, unless
        a copy received at or after `window_start` was recorded first, whose time is then returned. One
        conditional put; a record older than the window is replaced (the same content, sent again later, is
        a new event)."""
        item = {"pk": f"SEEN#{key}", "sk": "SEEN", "type": "first_seen", "first_seen": received_at}
        try:
            self._dynamodb.put_item(
                TableName=self.name,
                Item=to_dynamo({**item, "expires_at": expires_at}),
                ConditionExpression="attribute_not_exists(pk) OR #first < :start",
                ExpressionAttributeNames={"#first": "first_seen"},
                ExpressionAttributeValues=to_dynamo({":start": window_start}),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            failed_condition = error.response["Error"].get("Code") == "ConditionalCheckFailedException"
            if not failed_condition or "Item" not in error.response:  # ALL_OLD returns the earlier record
                raise
            return str(from_dynamo(error.response["Item"])["first_seen"])
        return received_at

    def put_new(self, item: dict[str, Any]) -> None:
        """Put an item unless one with its key exists (ConditionalCheckFailedException otherwise)."""
        self._dynamodb.put_item(
            TableName=self.name, Item=to_dynamo(item), ConditionExpression="attribute_not_exists(pk)"
        )

    # -- reading ------------------------------------------------------------------------------------
    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        item = self._dynamodb.get_item(
            TableName=self.name, Key=to_dynamo({"pk": pk, "sk": sk}), ConsistentRead=True
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
            "ExpressionAttributeValues": to_dynamo(values),
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
        """A message as one view: the state (its highest-ranked marker), `conflict` when two different final
        reports arrived, the facts its events carry (first in provider-time order), the sender's record,
        and the history in provider-time order. None when nothing is known about it."""
        items = list(self.query(f"MSG#{tracking_id}"))
        if not items:
            return None
        markers = sorted(
            (i for i in items if i["sk"].startswith("RANK#")), key=lambda i: (-i["rank"], i["code"])
        )
        history = [i for i in items if i["sk"].startswith("EVT#")]
        request = next((i for i in items if i["sk"] == "REQUEST"), None)
        view: dict[str, Any] = {
            "tracking_id": tracking_id,
            "state": None,
            "state_code": None,
            "history": history,
        }
        if markers:
            top = markers[0]
            view.update(
                state=top["state"],
                state_code=top["code"],
                state_at=top["at"],
                rank=int(top["rank"]),
                state_raw_key=top.get("raw_key"),
            )
        final_codes = sorted({m["code"] for m in markers if int(m["rank"]) >= 2})
        view["final_codes"] = final_codes
        view["conflict"] = len(final_codes) > 1
        sent = next((m for m in markers if m["state"] == "SENT"), None)
        if sent is not None and sent["at"] != "~":
            view["sent_at"] = sent["at"]
        view["failure_reason"] = next((m["failure_reason"] for m in markers if m.get("failure_reason")), None)
        view["via_link"] = any(m.get("via_link") for m in markers)
        view["status_details"] = _status_details(history, view["state_code"])
        for name, attribute in _FACTS.items():
            view[attribute] = next((e["fields"].get(name) for e in history if e["fields"].get(name)), None)
        if request is not None:
            view["request"] = request
        return view

    def history(self, pk: str) -> list[dict[str, Any]]:
        """Events in provider-time order (undated ones last), whatever order they arrived in."""
        return list(self.query(pk, sk_prefix="EVT#"))

    def current(self, pk: str, prefix: str) -> dict[str, Any] | None:
        """The newest (highest-sorting) item under a prefix: a template's or subscription's state."""
        return next(self.query(pk, sk_prefix=prefix, forward=False, limit=1), None)

    def template(self, mms_id: str) -> dict[str, Any] | None:
        return self.current(f"TPL#{mms_id}", "RANK#")

    def suppression(self, mobile: str) -> dict[str, Any] | None:
        return self.current(f"SUPPRESS#{mobile}", "AT#")

    def suppressed(self, mobile: str) -> bool:
        latest = self.suppression(mobile)
        return bool(latest and latest.get("suppressed"))

    def open_messages(self, older_than: str, *, close_final: bool = False) -> Iterator[dict[str, Any]]:
        """Messages with no final state whose SENT/SUBMITTED time is before `older_than` (ISO, UTC): one
        marker per message, its oldest (a message can have both a SUBMITTED and a SENT marker on the index).
        With `close_final`, markers of messages that have since reached a final state leave the index."""
        for shard in range(OPEN_SHARDS):
            final: dict[str, bool] = {}  # a message's markers share its shard, oldest first
            for marker in self.query(f"OPEN#{shard}", index="gsi1", sk_between=("0", older_than)):
                pk = marker["pk"]
                if pk not in final:
                    top = self.current(pk, "RANK#")
                    final[pk] = top is not None and int(top["rank"]) >= 2
                    if not final[pk]:
                        yield marker
                if final[pk] and close_final:
                    self._dynamodb.update_item(
                        TableName=self.name,
                        Key=to_dynamo({"pk": pk, "sk": marker["sk"]}),
                        UpdateExpression="REMOVE gsi1pk, gsi1sk",
                    )


def _status_details(history: list[dict[str, Any]], state_code: str | None) -> str | None:
    """STATUSDETAILS of the event that set the current state, else of the latest event that has one: the
    provider's own words on why a message failed or how it was sent."""
    carrying = [e for e in history if (e.get("fields") or {}).get("STATUSDETAILS")]
    setting = [e for e in carrying if e.get("code") == state_code] or carrying
    return setting[-1]["fields"]["STATUSDETAILS"] if setting else None


_FACTS = {
    "SENTAS": "sent_as",
    "SPID": "carrier",
    "HANDSET": "handset",
    "AGGREGATORID": "aggregator_id",
    "MMSID": "mms_id",
    "TO": "to",
    "FROM": "from",
}
