"""The GCP function routes a dispatcher's `finish_run` follow-up off the topic: the digest of
the run it names goes out once; over HTTP (`audit`) a follow-up is refused. The environment
and servers are tests/test_functions_gcp.py's; the state store is a SQLite file."""

from __future__ import annotations

import json

from test_functions_gcp import (
    SLACK_HOOK,
    deliver,
    environment,
    gke,
    logged,
    pubsub,
    serve,
    slack_texts,
)

from servers.chat import ChatServer

__all__ = ["environment", "gke", "pubsub", "serve"]  # fixtures, defined with their own tests


def test_a_follow_up_message_sends_the_digest_once(serve, stuck_run, chat: ChatServer, capsys):
    client = serve("on_message")
    assert deliver(client, json.dumps(stuck_run).encode()).status_code == 200
    assert deliver(client, json.dumps(stuck_run).encode()).status_code == 200  # redelivered
    assert len(chat.delivered(SLACK_HOOK)) == 1
    assert "1 of 2 parts did not finish: 2" in slack_texts(chat)
    assert [e["message"] for e in logged(capsys)] == ["fleet digest follow-up done"] * 2


def test_a_follow_up_the_sink_did_not_take_is_delivered_again(serve, stuck_run, chat, capsys):
    chat.fail("/", 404, body="no_service")
    response = deliver(serve("on_message"), json.dumps(stuck_run).encode())
    assert response.status_code == 500
    (entry,) = logged(capsys)
    assert entry["severity"] == "ERROR"
    assert entry["message"].startswith("fleet digest follow-up incomplete, to be delivered again")


def test_audit_refuses_a_follow_up(serve, stuck_run, chat):
    response = serve("audit").post("/", json=stuck_run)
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "action"
    assert chat.requests() == []
