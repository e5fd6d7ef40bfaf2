"""Writes send-batch.json: the request examples next to this file as one SQS event for the sender
(`sam local invoke SenderFunction -e events/sender/send-batch.json`). Run it after changing an example."""

import hashlib
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The accepted examples, then the refused ones (each breaks one rule of the send-request contract).
EXAMPLES = (
    "sms.json",
    "saved-mms.json",
    "inline-mms.json",
    "invalid-number.json",
    "opted-out.json",
    "two-custom-texts.json",
    "no-fallback-text.json",
    "campaign-ref-line-break.json",
)


def batch() -> dict:
    records = []
    for number, name in enumerate(EXAMPLES, start=1):
        body = json.dumps(json.loads((HERE / name).read_text()), separators=(",", ":"))
        records.append(
            {
                "messageId": f"00000000-0000-0000-0000-{number:012d}",
                "receiptHandle": "MessageReceiptHandle",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1764079200000",
                    "SenderId": "123456789012",
                    "ApproximateFirstReceiveTimestamp": "1764079200001",
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:mmsbridge-SendQueue",
                "awsRegion": "us-east-1",
            }
        )
    return {"Records": records}


if __name__ == "__main__":
    (HERE / "send-batch.json").write_text(json.dumps(batch(), indent=2) + "\n")
