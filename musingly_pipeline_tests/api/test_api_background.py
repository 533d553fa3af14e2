"""Processing off the request and the endpoint hooks, over HTTP on a real uvicorn server.

``gated_counter`` items with ``"gate": true`` wait while the test holds the advisory lock
GATE_KEY, so a batch can be held mid-run for as long as a test needs, without timing anything.
"""

from __future__ import annotations

import time
import uuid

import psycopg
import pytest

from musingly_pipeline.api import APIManager
from musingly_pipeline_tests.api.conftest import TOKEN, LiveServer, serve
from musingly_pipeline_tests.batches.processors import GATE_KEY, make_manager

BOB = "bob-token-19c2"


@pytest.fixture(scope="module")
def live(make_database):
    manager = make_manager(make_database())
    for url in serve(APIManager(manager, token={TOKEN: "alice", BOB: "bob"}, workers=2).app):
        yield LiveServer(url, manager)


class Gate:
    """Holds GATE_KEY on its own connection until opened."""

    def __init__(self, url: str):
        self.conn = psycopg.connect(url, autocommit=True)
        self.conn.execute("SELECT pg_advisory_lock(%s)", (GATE_KEY,))

    def reached(self) -> bool:
        """True once an item waits at the gate (a session waits for the lock this one holds)."""
        return self.conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND classid = 0 AND objid = %s AND objsubid = 1", (GATE_KEY,)).fetchone()[0] > 0

    def open(self) -> None:
        self.conn.execute("SELECT pg_advisory_unlock(%s)", (GATE_KEY,))
        self.conn.close()


def scalar(live, query: str, *params):
    with psycopg.connect(live.manager.database_url) as conn:
        return conn.execute(query, params).fetchone()[0]


def test_ten_thousand_items_answer_202_at_once_and_complete_in_the_background(live):
    items = [{"n": n, "gate": n == 5000} for n in range(10_000)]
    gate = Gate(live.manager.database_url)
    try:
        with live.client() as client:
            answer = client.post("/api/batches", json={"batch_type": "gated_counter", "items": items, "process": True})
            assert answer.status_code == 202, answer.text
            body = answer.json()
            batch_id = body["batch_id"]
            assert answer.headers["location"] == body["url"] == f"/api/batches/{batch_id}"
            assert body["runner"] == "worker_pool" and body["dagster_run_id"] is None
            assert body["summary"]["status"] in ("pending", "processing")
            assert body["summary"]["completed_items"] < 10_000

            # Chunks of 500 commit one by one; item 5000 (the first of the 11th chunk) waits at the gate.
            seen, deadline = [], time.monotonic() + 300
            while True:
                assert time.monotonic() < deadline, f"the batch never reached the gate: {seen[-5:]}"
                progress = client.get(body["url"]).json()["progress"]
                seen.append(progress["done_items"])
                if progress["done_items"] == 5000 and progress["running"]:
                    break
                assert progress["done_items"] < 5000, progress
                time.sleep(0.02)
            assert progress == {"done_items": 5000, "total_items": 10_000, "percent": 50.0, "running": True}
            assert seen == sorted(seen)
            busy = client.post(f"/api/batches/{batch_id}/process")
            assert (busy.status_code, busy.json()["code"]) == (409, "BATCH_BUSY")
    finally:
        gate.open()

    summary = live.wait(batch_id)
    assert (summary.status, summary.completed_items, summary.created_by) == ("completed", 10_000, "alice")
    assert scalar(live, "SELECT count(DISTINCT n) FROM counted WHERE batch_id = %s", batch_id) == 10_000
    assert scalar(live, "SELECT count(*) FROM counted WHERE batch_id = %s", batch_id) == 10_000
    with psycopg.connect(live.manager.database_url) as conn:
        assert conn.execute("SELECT user_id, status, done, total FROM notifications WHERE batch_id = %s",
                            (batch_id,)).fetchall() == [("alice", "completed", 10_000, 10_000)]
    with live.client() as client:
        detail = client.get(f"/api/batches/{batch_id}").json()
        assert detail["progress"] == {"done_items": 10_000, "total_items": 10_000, "percent": 100.0, "running": False}
        again = client.post(f"/api/batches/{batch_id}/process")
        assert (again.status_code, again.json()["status"]) == (200, "completed")  # nothing to do: no second run
    messages = [line.message for line in live.manager.get_batch_logs(batch_id)]
    assert messages[0] == "created through the REST API by alice"
    assert messages[1] == "quota checked"
    assert messages[2] == "queued for processing in the API's worker pool by alice"
    assert messages.count("GatedCounterEndpoint.after_batch_complete ran") == 1


def test_a_quota_refusal_is_a_clear_error_and_creates_nothing(live):
    with psycopg.connect(live.manager.database_url) as conn:
        conn.execute("INSERT INTO api_quotas VALUES ('bob', 1)")
    with live.client(token=BOB) as bob:
        first = bob.post("/api/batches", json={"batch_type": "gated_counter", "items": [{"n": 1}]})
        assert first.status_code == 201 and first.json()["created_by"] == "bob"
        assert first.headers["location"] == f"/api/batches/{first.json()['batch_id']}"
        refused = bob.post("/api/batches", json={"batch_type": "gated_counter", "items": [{"n": 2}], "process": True})
        assert refused.status_code == 429
        assert refused.json()["code"] == "BATCH_REFUSED"
        assert refused.json()["message"] == ("GatedCounterEndpoint.before_create_batch refused the batch: "
                                             "quota exceeded: bob may create 1 batches")
    assert scalar(live, "SELECT count(*) FROM import_batches WHERE created_by = 'bob'") == 1
    with live.client() as alice:  # the quota is bob's, not alice's
        assert alice.post("/api/batches", json={"batch_type": "gated_counter", "items": [{"n": 3}]}).status_code == 201


@pytest.mark.parametrize("mode, status, code, message", [
    ("refuse", 422, "BATCH_REFUSED",
     "CheckedEndpoint.before_create_batch refused the batch: items of this kind are not taken on Sundays"),
    ("crash", 500, "BATCH_ENDPOINT_FAILED",
     "CheckedEndpoint.before_create_batch raised KeyError: 'customer_tier'; nothing was created; "
     "this is a fault of the endpoint, not of the request"),
    ("wrong", 500, "BATCH_ENDPOINT_FAILED",
     "CheckedEndpoint.before_create_batch returned a str, not the request data (a dict) or None; nothing was created"),
    ("retype", 500, "BATCH_ENDPOINT_FAILED",
     "CheckedEndpoint.before_create_batch changed batch_type to 'counter'; an endpoint serves its own batch type "
     "only; nothing was created"),
])
def test_a_refusing_or_broken_before_create_batch_creates_nothing(live, mode, status, code, message):
    with live.client() as client:
        answer = client.post("/api/batches", json={"batch_type": "checked", "items": [{"n": 1}],
                                                   "metadata": {"mode": mode}})
        assert (answer.status_code, answer.json()["code"], answer.json()["message"]) == (status, code, message)
    assert scalar(live, "SELECT count(*) FROM import_batches WHERE batch_type = 'checked' "
                        "AND metadata->>'mode' = %s", mode) == 0
    assert scalar(live, "SELECT count(*) FROM hook_marks WHERE hook = 'before_create_batch'") == 0


def test_before_create_batch_may_change_the_request_and_logs_on_the_batch(live):
    with live.client() as client:
        stamped = client.post("/api/batches", json={"batch_type": "checked", "items": [{"n": 1}],
                                                    "metadata": {"source": "crm"}, "process": True})
        assert stamped.status_code == 202
        batch_id = stamped.json()["batch_id"]
        assert stamped.json()["summary"]["metadata"] == {"source": "crm", "checked_by": "alice"}
        quiet = client.post("/api/batches", json={"batch_type": "checked", "items": [{"n": 2}],
                                                  "metadata": {"mode": "quiet"}})
        assert quiet.status_code == 201 and quiet.json()["metadata"] == {"mode": "quiet"}
    assert live.wait(batch_id).status == "completed"
    [line] = [line for line in live.manager.get_batch_logs(batch_id) if line.message == "stamped"]
    assert line.details == {"by": "alice"}


def test_a_completion_hook_that_raises_keeps_the_batch_and_says_so_in_its_log(live):
    with live.client() as client:
        answer = client.post("/api/batches", json={"batch_type": "notify_fails", "items": [{"n": 7}, {"n": 8}],
                                                   "process": True})
        assert answer.status_code == 202
        batch_id = answer.json()["batch_id"]
    summary = live.wait(batch_id)
    assert (summary.status, summary.completed_items) == ("completed", 2)
    assert scalar(live, "SELECT count(*) FROM notifications WHERE batch_id = %s", batch_id) == 0
    errors = [line for line in live.manager.get_batch_logs(batch_id) if line.level == "error"]
    assert [line.details["code"] for line in errors] == ["BATCH_ENDPOINT_FAILED"]


def test_reprocess_answers_202_with_the_new_batch_and_process_of_unknown_batches_is_404(live):
    with live.client() as client:
        failing = client.post("/api/batches", json={"batch_type": "gated_counter", "items": [{"n": 40}, {"m": 1}],
                                                    "process": True}).json()
        assert live.wait(failing["batch_id"]).failed_items == 1
        again = client.post(f"/api/batches/{failing['batch_id']}/reprocess")
        assert again.status_code == 202 and again.json()["batch_id"] != failing["batch_id"]
        new = live.wait(again.json()["batch_id"])
        assert (str(new.parent_batch_id), new.total_items, new.created_by) == (failing["batch_id"], 1, "alice")
        missing = client.post(f"/api/batches/{uuid.uuid4()}/process")
        assert (missing.status_code, missing.json()["code"]) == (404, "BATCH_NOT_FOUND")
