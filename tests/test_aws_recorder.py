"""The AwsRecorder's EKS access entries answer a retried create as EKS does.

The Terraform tests create access entries through it; the AWS SDKs fill CreateAccessEntry's
clientRequestToken (an idempotency token in the EKS API model) and send the same token again
when they retry, so a retry after a lost answer must get the entry back, while a second create
with another token is refused with ResourceInUseException.
"""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config

from servers.aws import DEFAULT_REGION, DUMMY_KEY
from servers.aws_recorder import AwsRecorder
from servers.moto import MotoServer

PRINCIPAL = "arn:aws:iam::123456789012:role/MutguardReadOnly"


@pytest.fixture
def eks(moto_server: MotoServer):
    with AwsRecorder(moto_server.url) as recorder:
        yield boto3.client(
            "eks",
            endpoint_url=recorder.url,
            region_name=DEFAULT_REGION,
            aws_access_key_id=DUMMY_KEY,
            aws_secret_access_key=DUMMY_KEY,
            config=Config(retries={"max_attempts": 1}),
        )


def test_a_create_sent_again_with_its_token_gets_the_same_entry(eks):
    first = eks.create_access_entry(
        clusterName="payments", principalArn=PRINCIPAL, clientRequestToken="token-1"
    )
    again = eks.create_access_entry(
        clusterName="payments", principalArn=PRINCIPAL, clientRequestToken="token-1"
    )
    assert again["accessEntry"]["accessEntryArn"] == first["accessEntry"]["accessEntryArn"]
    assert eks.list_access_entries(clusterName="payments")["accessEntries"] == [PRINCIPAL]


def test_a_second_create_with_another_token_is_refused(eks):
    eks.create_access_entry(clusterName="payments", principalArn=PRINCIPAL)
    with pytest.raises(eks.exceptions.ResourceInUseException):
        eks.create_access_entry(clusterName="payments", principalArn=PRINCIPAL)
