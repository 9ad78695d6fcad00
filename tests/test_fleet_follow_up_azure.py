"""The Azure function app routes a dispatcher's `finish_run` follow-up off the scan queue: the
digest of the run it names goes out once, a sink's failure raises (the host tries the message
again), and `audit` refuses a follow-up. The environment and servers are
tests/test_functions_azure.py's; the state store is a SQLite file."""

from __future__ import annotations

import json

import pytest
from test_functions_azure import (
    SLACK_HOOK,
    arm,
    call,
    environment,
    identity,
    post,
    queue_message,
    slack_texts,
)

from mutguard.functions.azure.function_app import ScanIncomplete

from servers.chat import ChatServer

__all__ = ["arm", "environment", "identity"]  # fixtures, defined with their own tests


def test_a_follow_up_message_sends_the_digest_once(stuck_run, arm, chat: ChatServer):
    for _ in range(2):  # the second: the same message again
        assert call("scan_target", message=queue_message(json.dumps(stuck_run))) is None
    assert len(chat.delivered(SLACK_HOOK)) == 1
    assert "1 of 2 parts did not finish: 2" in slack_texts(chat)
    assert arm.requests_seen() == 0  # nothing was scanned


def test_a_follow_up_the_sink_did_not_take_is_tried_again(stuck_run, chat: ChatServer):
    chat.fail("/", 404, body="no_service")
    with pytest.raises(ScanIncomplete) as raised:
        call("scan_target", message=queue_message(json.dumps(stuck_run)))
    assert str(raised.value).startswith("fleet digest to sink slack failed")
    assert call("scan_target", message=queue_message(json.dumps(stuck_run), 2)) is None
    assert "1 of 2 parts did not finish: 2" in slack_texts(chat)


def test_audit_refuses_a_follow_up(stuck_run, chat: ChatServer):
    response = call("audit", request=post(stuck_run), messages=None)
    assert response.status_code == 400
    assert json.loads(response.get_body())["error"]["field"] == "action"
    assert chat.requests() == []
