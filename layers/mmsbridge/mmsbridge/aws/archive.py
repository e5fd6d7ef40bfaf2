"""The raw-postback archive in S3: every accepted body, byte for byte, under a content-addressed key."""

from __future__ import annotations

import base64
from typing import Any


class Archive:
    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self.bucket = bucket

    def put(self, key: str, body: bytes, sha256_hex: str, metadata: dict[str, str]) -> None:
        """Store the bytes; S3 verifies them against the SHA-256 we computed on receipt."""
        self._s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=body,
            ContentType="application/octet-stream",
            ChecksumSHA256=base64.b64encode(bytes.fromhex(sha256_hex)).decode("ascii"),
            Metadata=metadata,
        )

    def get(self, key: str) -> bytes:
        return self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
