"""A meter on every AWS call this process makes through botocore, for the requests-per-message benchmark.

It wraps `BaseClient._make_api_call` (every boto3 client goes through it) and records, per calling function:
the call (service and operation), its outcome, and for the state table the DynamoDB capacity units it costs,
from the items' sizes as DynamoDB bills them (rules below); and the bytes each function writes to its log.

Which function made a call: the function being invoked on this thread (set by the wrapped
`LocalFunction.invoke`), else the feature package on the call stack (the ingest's archive thread), else
"platform" (the local event source mappings: Lambda's pollers on AWS) or "client" (the benchmark itself).

Capacity units (DynamoDB on demand, standard table class):
- a write costs ceil(size / 1 KB) write units, `size` the larger of the item before and after it; a put or
  update of an item that an index lists (both of the index's key attributes present) costs the same again
  in that index, and twice when the index key changes (the old entry's delete, the new one's put); a delete
  costs the old item's size in the table and in each index that listed it; a write refused by its condition
  costs the existing item's size (at least one unit) and nothing in the indexes; a transaction costs double;
- a read costs ceil(total size / 4 KB) read units, half for an eventually consistent one; the size is of
  the items returned (for a projected read, a lower bound of what DynamoDB bills).
Item sizes follow DynamoDB's rules: names and string values by their UTF-8 length, numbers about one byte
per two digits plus one, binary by length, one byte for a boolean or null, and three bytes plus one per
element for a list or map.
"""

from __future__ import annotations

import io
import json
import math
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from local.runtime import LocalFunction

WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
READS = {"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"}
FEATURES = {  # a call made off the invoking thread, attributed by the feature on its stack
    "mmsbridge.ingest": "IngestFunction",
    "mmsbridge.postbacks": "ConsumerFunction",
    "mmsbridge.sending": "SenderFunction",
    "mmsbridge.events": "EventPublisherFunction",
}
_local = threading.local()


def attribute_size(value: dict[str, Any]) -> int:
    """Bytes of one low-level attribute value, by DynamoDB's sizing rules."""
    ((kind, data),) = value.items()
    if kind == "S":
        return len(data.encode("utf-8"))
    if kind == "N":
        digits = data.lstrip("-").replace(".", "").lstrip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind == "B":
        return len(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(attribute_size(v) + 1 for v in data)
    if kind == "M":
        return 3 + sum(len(k.encode()) + attribute_size(v) + 1 for k, v in data.items())
    if kind == "SS":
        return sum(len(v.encode()) for v in data)
    if kind == "NS":
        return sum(attribute_size({"N": v}) for v in data)
    if kind == "BS":
        return sum(len(v) for v in data)
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: dict[str, Any] | None) -> int:
    if not item:
        return 0
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / 1024))


@dataclass
class TableShape:
    keys: tuple[str, ...]  # the table's key attributes
    indexes: dict[str, tuple[str, ...]]  # index name -> its key attributes (partition key first)


@dataclass
class Tally:
    """What the meter saw since its last reset."""

    calls: Counter = field(default_factory=Counter)  # (function, "service Operation") -> count
    errors: Counter = field(default_factory=Counter)  # (function, "service Operation", code) -> count
    wcu: Counter = field(default_factory=Counter)  # function -> write units
    rcu: Counter = field(default_factory=Counter)  # function -> read units
    partitions: Counter = field(default_factory=Counter)  # (index or "table", partition key value) -> units
    log_bytes: Counter = field(default_factory=Counter)  # function -> bytes written to its log
    invocations: Counter = field(default_factory=Counter)  # function -> invocations
    busy_s: Counter = field(default_factory=Counter)  # function -> seconds inside the handler
    payload_bytes: Counter = field(default_factory=Counter)  # "service Operation" -> request payload bytes
    events: int = 0  # entries put on an event bus


class AwsMeter:
    """Install with `installed()`; read and reset with `take()`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tally = Tally()
        self._shapes: dict[str, TableShape] = {}
        self._raw: Any = None
        self.metrics: set[str] = set()  # every custom metric the functions emitted (billed per month each)

    # ---- what the wrapped code calls ------------------------------------------------------------

    def take(self) -> Tally:
        with self._lock:
            tally, self._tally = self._tally, Tally()
        return tally

    @contextmanager
    def installed(self) -> Iterator[AwsMeter]:
        original_call = BaseClient._make_api_call
        original_invoke = LocalFunction.invoke
        original_stdout = sys.stdout
        meter = self

        def make_api_call(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
            if getattr(_local, "bypass", False):
                return original_call(client, operation, params)
            return meter._call(original_call, client, operation, params)

        def invoke(function: LocalFunction, event: Any) -> Any:
            previous = getattr(_local, "function", None)
            _local.function = function.logical_id
            started = time.perf_counter()
            try:
                return original_invoke(function, event)
            finally:
                elapsed = time.perf_counter() - started
                _local.function = previous
                with meter._lock:
                    meter._tally.invocations[function.logical_id] += 1
                    meter._tally.busy_s[function.logical_id] += elapsed

        BaseClient._make_api_call = make_api_call  # type: ignore[method-assign]
        LocalFunction.invoke = invoke  # type: ignore[method-assign]
        sys.stdout = _CountingStream(self)
        try:
            yield self
        finally:
            sys.stdout = original_stdout
            LocalFunction.invoke = original_invoke  # type: ignore[method-assign]
            BaseClient._make_api_call = original_call  # type: ignore[method-assign]

    def count_log(self, text: str) -> None:
        function = _caller(default="unattributed")
        with self._lock:
            self._tally.log_bytes[function] += len(text.encode("utf-8", "replace"))
        if text.startswith('{"_aws"'):  # an embedded-metric document: each name and dimension set is a metric
            document = json.loads(text)
            for directive in document["_aws"]["CloudWatchMetrics"]:
                for dimensions in directive["Dimensions"]:
                    labels = ",".join(f"{d}={document.get(d)}" for d in dimensions)
                    for metric in directive["Metrics"]:
                        self.metrics.add(f"{directive['Namespace']}/{metric['Name']} [{labels}]")

    # ---- one call ---------------------------------------------------------------------------------

    def _call(self, original: Callable[..., Any], client: BaseClient, operation: str, params: dict) -> Any:
        service = client.meta.service_model.service_name
        function = _caller(
            default="platform" if threading.current_thread().name.startswith(("sqs-", "stream")) else "client"
        )
        name = f"{service} {operation}"
        before = self._images(params, operation) if service == "dynamodb" and operation in WRITES else None
        payload = _payload_bytes(operation, params)  # before the call: botocore wraps an S3 body in a stream
        try:
            response = original(client, operation, params)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "?")
            with self._lock:
                self._tally.calls[(function, name)] += 1
                self._tally.errors[(function, name, code)] += 1
            if before is not None:  # a refused write still costs the existing item's size, in its partition
                factor = 2 if operation == "TransactWriteItems" else 1
                targets = self._targets(operation, params)
                touched = [
                    ("table", _partition(key, self._shape(table).keys), factor * write_units(item_size(old)))
                    for (table, key), old in zip(targets, before.values(), strict=True)
                ]
                self._charge_write(function, sum(units for _, _, units in touched), touched)
            raise
        if operation == "ReceiveMessage" and not response.get("Messages"):
            name += " (empty)"  # a poller waiting: Lambda's long polls cost a few a minute, not a message
        with self._lock:
            self._tally.calls[(function, name)] += 1
            if operation == "PutEvents":
                self._tally.events += len(params.get("Entries", []))
            self._tally.payload_bytes[name] += payload
        if before is not None:
            self._meter_write(function, operation, params, before)
        elif service == "dynamodb" and operation in READS:
            self._meter_read(function, operation, params, response)
        return response

    # ---- DynamoDB capacity --------------------------------------------------------------------------

    def _raw_client(self) -> Any:
        if self._raw is None:
            self._raw = boto3.client("dynamodb")
        return self._raw

    @contextmanager
    def _bypass(self) -> Iterator[Any]:
        previous = getattr(_local, "bypass", False)
        _local.bypass = True
        try:
            yield self._raw_client()
        finally:
            _local.bypass = previous

    def _shape(self, table: str) -> TableShape:
        if table not in self._shapes:
            with self._bypass() as raw:
                described = raw.describe_table(TableName=table)["Table"]
            keys = tuple(k["AttributeName"] for k in described["KeySchema"])
            indexes = {
                index["IndexName"]: tuple(k["AttributeName"] for k in index["KeySchema"])
                for index in described.get("GlobalSecondaryIndexes", [])
            }
            self._shapes[table] = TableShape(keys, indexes)
        return self._shapes[table]

    def _targets(self, operation: str, params: dict) -> list[tuple[str, dict[str, Any]]]:
        """(table, key) of every item the write touches."""
        if operation in ("PutItem", "UpdateItem", "DeleteItem"):
            table = params["TableName"]
            key = params.get("Key") or {k: params["Item"][k] for k in self._shape(table).keys}
            return [(table, key)]
        targets = []
        if operation == "BatchWriteItem":
            for table, requests in params["RequestItems"].items():
                for request in requests:
                    if "PutRequest" in request:
                        item = request["PutRequest"]["Item"]
                        targets.append((table, {k: item[k] for k in self._shape(table).keys}))
                    else:
                        targets.append((table, request["DeleteRequest"]["Key"]))
            return targets
        for entry in params["TransactItems"]:
            ((_, body),) = entry.items()
            table = body["TableName"]
            key = body.get("Key") or {k: body["Item"][k] for k in self._shape(table).keys}
            targets.append((table, key))
        return targets

    def _images(self, params: dict, operation: str) -> dict[tuple[str, str], dict[str, Any] | None]:
        images: dict[tuple[str, str], dict[str, Any] | None] = {}
        with self._bypass() as raw:
            for table, key in self._targets(operation, params):
                found = raw.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
                images[(table, _key_text(key))] = found
        return images

    def _meter_write(self, function: str, operation: str, params: dict, before: dict) -> None:
        targets = self._targets(operation, params)
        checks = set()
        if operation == "TransactWriteItems":
            checks = {
                (entry["ConditionCheck"]["TableName"], _key_text(entry["ConditionCheck"]["Key"]))
                for entry in params["TransactItems"]
                if "ConditionCheck" in entry
            }
        factor = 2 if operation == "TransactWriteItems" else 1
        total, touched = 0, []
        with self._bypass() as raw:
            for table, key in targets:
                old = before.get((table, _key_text(key)))
                if (table, _key_text(key)) in checks:
                    total += factor * write_units(item_size(old))
                    continue
                new = raw.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
                units = write_units(max(item_size(old), item_size(new)))
                total += factor * units
                touched.append(("table", _partition(key, self._shape(table).keys), factor * units))
                for index, index_keys in self._shape(table).indexes.items():
                    old_key = _index_key(old, index_keys)
                    new_key = _index_key(new, index_keys)
                    if old_key and old_key != new_key:
                        old_units = factor * write_units(item_size(old))
                        total += old_units
                        touched.append((index, old_key[0], old_units))
                    if new_key:
                        new_units = factor * write_units(item_size(new))
                        total += new_units
                        touched.append((index, new_key[0], new_units))
        self._charge_write(function, total, touched)

    def _charge_write(self, function: str, units: int, touched: list[tuple[str, str, int]]) -> None:
        with self._lock:
            self._tally.wcu[function] += units
            for index, partition, partition_units in touched:
                self._tally.partitions[(index, partition)] += partition_units

    def stored_bytes(self, table: str) -> int:
        """The table's billed storage: every item's size plus 100 bytes, again in each index listing it."""
        shape, total = self._shape(table), 0
        with self._bypass() as raw:
            for page in raw.get_paginator("scan").paginate(TableName=table):
                for item in page["Items"]:
                    copies = 1 + sum(1 for keys in shape.indexes.values() if _index_key(item, keys))
                    total += copies * (item_size(item) + 100)
        return total

    def _meter_read(self, function: str, operation: str, params: dict, response: dict) -> None:
        if operation == "GetItem":
            sizes, consistent = [item_size(response.get("Item"))], params.get("ConsistentRead", False)
        elif operation in ("Query", "Scan"):
            sizes, consistent = (
                [item_size(i) for i in response.get("Items", [])],
                params.get("ConsistentRead"),
            )
        elif operation == "BatchGetItem":
            sizes = [item_size(i) for items in response.get("Responses", {}).values() for i in items]
            consistent = any(r.get("ConsistentRead") for r in params["RequestItems"].values())
        else:  # TransactGetItems: consistent, and twice the units
            sizes = [item_size(r.get("Item")) for r in response.get("Responses", [])] * 2
            consistent = True
        if operation in ("GetItem", "BatchGetItem", "TransactGetItems"):
            units = sum(max(1, math.ceil(size / 4096)) for size in sizes) or 1  # each item rounds up
        else:
            units = max(1, math.ceil(sum(sizes) / 4096))  # a query rounds up its total once
        with self._lock:
            self._tally.rcu[function] += units if consistent else units / 2


class _CountingStream(io.TextIOBase):
    """stdout for the handlers' loggers and metrics: counts each function's bytes and drops them."""

    def __init__(self, meter: AwsMeter) -> None:
        self._meter = meter

    def write(self, text: str) -> int:
        self._meter.count_log(text)
        return len(text)

    def writable(self) -> bool:
        return True


def _caller(default: str) -> str:
    function = getattr(_local, "function", None)
    if function:
        return function
    frame = sys._getframe(2)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        for package, name in FEATURES.items():
            if module.startswith(package):
                return name
        frame = frame.f_back
    return default


def _payload_bytes(operation: str, params: dict) -> int:
    if operation == "PutObject":
        body = params.get("Body", b"")
        return len(body) if isinstance(body, bytes | str) else 0
    if operation == "SendMessage":
        return len(params.get("MessageBody", "").encode())
    if operation == "SendMessageBatch":
        return sum(len(e.get("MessageBody", "").encode()) for e in params.get("Entries", []))
    if operation == "PutEvents":
        return sum(len(e.get("Detail", "").encode()) for e in params.get("Entries", []))
    return 0


def _key_text(key: dict[str, Any]) -> str:
    return "|".join(f"{name}={next(iter(value.values()))}" for name, value in sorted(key.items()))


def _partition(key: dict[str, Any], keys: tuple[str, ...]) -> str:
    return str(next(iter(key[keys[0]].values())))


def _index_key(item: dict[str, Any] | None, keys: tuple[str, ...]) -> tuple[str, ...] | None:
    if not item or not all(k in item for k in keys):
        return None
    return tuple(str(next(iter(item[k].values()))) for k in keys)


def by_function(tally: Tally) -> dict[str, dict[str, int]]:
    """The calls, grouped {function: {"service Operation": count}}."""
    grouped: dict[str, dict[str, int]] = defaultdict(dict)
    for (function, name), count in sorted(tally.calls.items()):
        grouped[function][name] = count
    return dict(grouped)
