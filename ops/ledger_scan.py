"""Bounded reads for questions no index answers: a Scan that stops after a budget of items, and counts of
an index partition that stop after a number of pages.

The send ledger lists only final, not-accepted requests on an index (gsi1 SEND#<status>): an index entry
for SENDING and RETRY would cost every send attempt an index write (the claim, and again when the status
moves on), to serve a question an operator asks now and then. So requests waiting or in flight, and the
attempt logs of recent ones (account errors, throttled calls), are found by a Scan of the table with a
filter: DynamoDB reads (and bills) every item it evaluates, filter or not, so the Scan stops after
`budget` items and says whether it saw the whole table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mmsbridge.aws.state_table import StateTable, from_dynamo, to_dynamo
from mmsbridge.sending.ledger import LEDGER_SK

DEFAULT_BUDGET = 50_000  # items evaluated (a few seconds, about 10-20k read units for 1-2 KB items)
_PAGE = 1_000
COUNT_PAGES = 20  # a COUNT Query reads up to 1 MB a page: far more than any worklist of interest


@dataclass
class Scanned:
    items: list[dict[str, Any]] = field(default_factory=list)
    scanned: int = 0  # items DynamoDB evaluated
    complete: bool = False  # the whole table was read
    budget: int = DEFAULT_BUDGET

    def to_json(self) -> dict[str, Any]:
        return {"scanned": self.scanned, "complete": self.complete, "budget": self.budget}

    def note(self) -> str:
        if self.complete:
            return f"scanned the whole table ({self.scanned} items)"
        return (
            f"scanned {self.scanned} items, the budget (--scan-limit), not the whole table: there may be more"
        )


def scan_ledgers(
    table: StateTable,
    condition: str,
    values: dict[str, Any],
    *,
    names: dict[str, str] | None = None,
    budget: int = DEFAULT_BUDGET,
) -> Scanned:
    """Send-request ledgers (`REQ#...` / `REQUEST`) that match `condition` (a filter expression over
    `values` and `names`), reading at most `budget` items."""
    result = Scanned(budget=budget)
    params: dict[str, Any] = {
        "TableName": table.name,
        "FilterExpression": f"sk = :ledger_sk AND begins_with(pk, :ledger_pk) AND ({condition})",
        "ExpressionAttributeValues": to_dynamo({**values, ":ledger_sk": LEDGER_SK, ":ledger_pk": "REQ#"}),
    }
    if names:
        params["ExpressionAttributeNames"] = names
    while result.scanned < budget:
        page = table.client.scan(**params, Limit=min(_PAGE, budget - result.scanned))
        result.scanned += int(page.get("ScannedCount", 0))
        result.items += [from_dynamo(item) for item in page.get("Items", [])]
        if "LastEvaluatedKey" not in page:
            result.complete = True
            break
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return result


def count(
    table: StateTable, pk: str, *, index: str = "gsi1", low: str | None = None, pages: int = COUNT_PAGES
) -> tuple[int, bool]:
    """How many items an index partition holds (with a `<time>#...` sort key at or after `low`, undated ones
    aside): (count, complete)."""
    expression = "#pk = :pk"
    names = {"#pk": f"{index}pk"}
    values: dict[str, Any] = {":pk": pk}
    if low is not None:
        expression += " AND #sk BETWEEN :low AND :high"
        names["#sk"] = f"{index}sk"
        values[":low"], values[":high"] = low, "~"  # `~#...` (UNDATED) sorts after "~"
    params: dict[str, Any] = {
        "TableName": table.name,
        "IndexName": index,
        "KeyConditionExpression": expression,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": to_dynamo(values),
        "Select": "COUNT",
    }
    total = 0
    for _ in range(pages):
        page = table.client.query(**params)
        total += int(page.get("Count", 0))
        if "LastEvaluatedKey" not in page:
            return total, True
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return total, False
