"""The other side of the AWS sinks and stores: boto3 clients of moto_server used the way a
consumer or an operator would (create a queue, receive what arrived, read the SES outbox).

One boto3 session per test: every new session parses botocore's endpoint data again, which
costs about 0.1 s per client.
"""

import http.client
import json
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

import boto3

from .aws import AwsFakes


class AwsClients:
    def __init__(self, fakes: AwsFakes) -> None:
        self.fakes = fakes
        self.session = boto3.Session()

    @cached_property
    def sqs(self) -> Any:
        return self.session.client("sqs")

    @cached_property
    def sns(self) -> Any:
        return self.session.client("sns")

    @cached_property
    def ses(self) -> Any:
        return self.session.client("ses")

    @cached_property
    def secrets(self) -> Any:
        return self.session.client("secretsmanager")

    @cached_property
    def dynamodb(self) -> Any:
        return self.session.client("dynamodb")

    def create_queue(self, name: str, **attributes: str) -> str:
        url: str = self.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        return url

    def deleted_queue(self, name: str) -> str:
        """The URL of a queue that existed and was deleted: a sink whose queue is gone."""
        url = self.create_queue(name)
        self.sqs.delete_queue(QueueUrl=url)
        return url

    def receive_all(self, queue_url: str) -> list[dict[str, Any]]:
        """Every message in the queue, as a consumer receives it (and deletes it)."""
        received: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
            ).get("Messages", [])
            if not batch:
                return received
            received += batch
            for message in batch:
                self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    def subscribe(self, topic_arn: str, queue_url: str, **attributes: str) -> None:
        queue = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        self.sns.subscribe(
            TopicArn=topic_arn,
            Protocol="sqs",
            Endpoint=queue["Attributes"]["QueueArn"],
            Attributes=attributes,
        )

    def create_state_table(self, name: str) -> None:
        """The table mutguard's DynamoDB store expects: a String partition key `cluster_key`."""
        self.dynamodb.create_table(
            TableName=name,
            AttributeDefinitions=[{"AttributeName": "cluster_key", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "cluster_key", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )

    def ses_sent(self) -> list[dict[str, Any]]:
        """What moto's SES sent (RawMessage entries of GET /moto-api/data.json)."""
        address = urlsplit(self.fakes.moto.url)
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
        try:
            connection.request("GET", "/moto-api/data.json")
            data = json.loads(connection.getresponse().read())
        finally:
            connection.close()
        sent: list[dict[str, Any]] = data["ses"]["RawMessage"]
        return sent
