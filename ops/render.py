"""Text for people: aligned columns; stored values (they come from the provider) made harmless to print.

Plain columns rather than a rich Table: the output is piped and grepped as often as read, so it has no box
characters, colour or wrapping at the terminal's width, its last column is not padded, and a line is cut at
an exact number of characters (request_table.MAX_WIDTH)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

# C0 and C1 control characters other than tab and newline, and a carriage return not ending a line: a
# hostile body or SMS text must not drive the operator's terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]|\r(?!\n)")
_LINE_BREAKS = re.compile(r"[\t\r\n]")


def _escape(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def body_text(data: bytes) -> str:
    """Raw bytes as text: invalid UTF-8 as U+FFFD, control characters as `\\xNN`, lines kept."""
    return _CONTROL.sub(_escape, data.decode("utf-8", errors="replace"))


def cell(value: Any) -> str:
    """One value on one line; `-` for nothing."""
    if value is None or value == "" or value == []:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(cell(v) for v in value)
    text = _CONTROL.sub(_escape, str(value))
    return _LINE_BREAKS.sub(lambda m: {"\t": "\\t", "\r": "\\r", "\n": "\\n"}[m.group()], text)


def table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], indent: str = "  ", *, width: int | None = None
) -> str:
    """Aligned columns; with `width`, the last column is cut (ending in `…`) so no line is longer."""
    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]
    lines = []
    for row in [list(headers), *cells]:
        padded = [text.ljust(widths[i]) for i, text in enumerate(row[:-1])] + [row[-1]]
        line = (indent + "  ".join(padded)).rstrip()
        if width is not None and len(line) > width:
            line = line[: width - 1] + "…"
        lines.append(line)
    return "\n".join(lines)


def shortened(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, the last one `…` when anything was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fields(pairs: Sequence[tuple[str, Any]], indent: str = "  ") -> str:
    width = max(len(label) for label, _ in pairs)
    return "\n".join(f"{indent}{label.ljust(width)}  {cell(value)}" for label, value in pairs)
