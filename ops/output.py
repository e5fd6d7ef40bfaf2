"""Writing a command's answer: text for people on stdout, one JSON document, problems on stderr; and its
exit code."""

from __future__ import annotations

import json
import sys
from typing import Any

from ops import reports

OK, NOT_FOUND, USAGE = 0, 1, 2  # ok; not found or a partial failure; a usage or configuration error


def text(value: str) -> None:
    sys.stdout.write(value + "\n")


def document(value: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(reports.plain(value), indent=2, ensure_ascii=False) + "\n")


def error(value: str) -> None:
    sys.stderr.write(f"{value}\n")
