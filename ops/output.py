"""Writing a command's answer: text for people on stdout, one JSON document, problems on stderr."""

from __future__ import annotations

import json
import sys
from typing import Any

from ops import reports


def text(value: str) -> None:
    sys.stdout.write(value + "\n")


def document(value: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(reports.plain(value), indent=2, ensure_ascii=False) + "\n")


def error(value: str) -> None:
    sys.stderr.write(f"{value}\n")
