"""The text table of send requests (`requests`, `unknown`): one line each, at most MAX_WIDTH characters.

A refused body without a usable request_id is named by its SHA-256; in the table it is abbreviated to
`sha256:<first 16 hex digits>…` (and a request_id longer than a valid one's 64 characters likewise), and the
reason column is cut to fit the line. `--json` keeps every value whole (`request_id`, `payload_sha256`,
`detail`), and `request --sha256 HEX` takes the whole SHA-256.
"""

from __future__ import annotations

from typing import Any

from mmsbridge.sending.request import REQUEST_ID_MAX
from ops import render

MAX_WIDTH = 200
SHA256_SHOWN = 16  # hex digits of a SHA-256 shown in a table
HEADERS = ["AT", "REQUEST ID", "ACTION", "TO", "FROM", "CODE", "WHY"]


def id_cell(item: dict[str, Any]) -> str:
    """The request's name in a table: its request_id, or its body's SHA-256 when it had none, abbreviated."""
    if item.get("request_id") is not None:
        return render.shortened(render.cell(item["request_id"]), REQUEST_ID_MAX)
    digest = str(item.get("payload_sha256") or "")
    return f"sha256:{render.shortened(digest, SHA256_SHOWN + 1)}"


def abbreviated(items: list[dict[str, Any]]) -> bool:
    return any(id_cell(item) != _whole_id(item) for item in items)


def _whole_id(item: dict[str, Any]) -> str:
    if item.get("request_id") is not None:
        return render.cell(item["request_id"])
    return f"sha256:{item.get('payload_sha256') or ''}"


def table(items: list[dict[str, Any]]) -> list[str]:
    """The table's lines (none without items), and a note when ids were abbreviated."""
    if not items:
        return []
    rows = [[i["at"], id_cell(i), i["action"], i["to"], i["from"], i["code"], i["detail"]] for i in items]
    lines = [render.table(HEADERS, rows, width=MAX_WIDTH)]
    if abbreviated(items):
        lines.append(
            "  (ids abbreviated: `--json` gives each whole, as request_id or payload_sha256; "
            "`request --sha256 HEX` shows a refused body)"
        )
    return lines
