"""The template's protections as the local stack applies them on moto: the state table's deletion protection,
and encryption at rest with and without a customer managed key (KmsKeyArn) for the archive (an object as the
ingest stores it), the queues and the table. The rest of what the template promises (queue policies, IAM, the
stage's throttle, alarms) is not evaluated by moto: tests/unit/test_template_resources.py and
test_template_security.py check it on the template."""

from __future__ import annotations

import hashlib
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

from local import stack as local_stack
from local.runtime import patched_environ
from mmsbridge.aws.archive import Archive


def archived(s3, bucket: str) -> dict:
    """An object put as the ingest puts one (no encryption header of its own), then its HEAD."""
    body = f"<POSTBACK>{uuid.uuid4().hex}</POSTBACK>".encode()
    sha256 = hashlib.sha256(body).hexdigest()
    Archive(s3, bucket).put(f"raw/{sha256}.xml", body, sha256, {})
    return s3.head_object(Bucket=bucket, Key=f"raw/{sha256}.xml")


def test_the_state_table_refuses_deletion(aws_stack, aws_clients):
    dynamodb = aws_clients["dynamodb"]
    name = aws_stack.tables()["StateTable"].name
    assert dynamodb.describe_table(TableName=name)["Table"]["DeletionProtectionEnabled"] is True
    with pytest.raises(ClientError, match="DeletionProtectionEnabled"):
        dynamodb.delete_table(TableName=name)
    assert dynamodb.describe_table(TableName=name)["Table"]["TableStatus"] == "ACTIVE"


def test_without_a_key_the_archive_queues_and_table_use_aws_managed_encryption(aws_stack, aws_clients):
    assert aws_stack.parameters["KmsKeyArn"] == ""
    bucket = aws_stack.buckets()["ArchiveBucket"].name
    head = archived(aws_clients["s3"], bucket)
    assert head["ServerSideEncryption"] == "AES256"
    assert "SSEKMSKeyId" not in head
    for queue in aws_stack.queues().values():
        attributes = aws_clients["sqs"].get_queue_attributes(QueueUrl=queue.url, AttributeNames=["All"])
        assert attributes["Attributes"]["SqsManagedSseEnabled"] == "true", queue.logical_id
        assert "KmsMasterKeyId" not in attributes["Attributes"], queue.logical_id
    table = aws_stack.tables()["StateTable"]
    assert table.create_table_kwargs["SSESpecification"] == {"Enabled": True}  # DynamoDB's AWS managed key


@pytest.fixture(scope="module")
def keyed_stack(moto_server):
    """A second stack on the session's moto with every new parameter set: a customer managed key made in
    moto, the send queue's senders, the account setting, a reservation and an archive expiration."""
    with patched_environ(local_stack.aws_environment(moto_server.endpoint_url, "us-east-1")):
        kms = boto3.client("kms")
    key = kms.create_key(Description="mmsbridge test key")["KeyMetadata"]["Arn"]
    stack = local_stack.load_local_stack(
        moto_server.endpoint_url,
        stack_name=f"keyed-{uuid.uuid4().hex[:8]}",
        overrides={
            "KmsKeyArn": key,
            "SendQueueSenderArns": "arn:aws:iam::123456789012:role/orders",
            "ConfigureApiGatewayAccount": "true",
            "IngestReservedConcurrency": "20",
            "ArchiveExpirationDays": "400",
        },
    )
    local_stack.provision(stack, moto_server.endpoint_url)
    return stack, key


def test_with_a_key_the_archive_queues_and_table_are_encrypted_with_it(keyed_stack, aws_clients):
    stack, key = keyed_stack
    head = archived(aws_clients["s3"], stack.buckets()["ArchiveBucket"].name)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == key
    for queue in stack.queues().values():
        attributes = aws_clients["sqs"].get_queue_attributes(QueueUrl=queue.url, AttributeNames=["All"])
        assert attributes["Attributes"]["KmsMasterKeyId"] == key, queue.logical_id
        assert attributes["Attributes"]["SqsManagedSseEnabled"] == "false", queue.logical_id
    table = aws_clients["dynamodb"].describe_table(TableName=stack.tables()["StateTable"].name)["Table"]
    assert table["SSEDescription"]["SSEType"] == "KMS"
    assert table["SSEDescription"]["KMSMasterKeyArn"] == key
    assert table["DeletionProtectionEnabled"] is True
