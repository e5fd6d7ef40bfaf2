"""SQS access: the postback queue (and, later, the send queue)."""

from __future__ import annotations

from typing import Any


class Queue:
    def __init__(self, sqs: Any, url: str) -> None:
        self._sqs = sqs
        self.url = url

    def send(self, body: str) -> str:
        """Enqueue one message; returns its message id."""
        return self._sqs.send_message(QueueUrl=self.url, MessageBody=body)["MessageId"]
