"""The batch REST API over HTTP on a real uvicorn server and a real database."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import psycopg
import pytest

from musingly_pipeline.api import APIManager, ApiConfigError
from musingly_pipeline_tests.conftest import PROJECT_ROOT


def test_health_needs_no_token_and_everything_else_does(live):
    with live.client(token=None) as anonymous:
        assert anonymous.get("/health").json() == {"status": "ok", "database": True}
        refused = anonymous.get("/api/batches")
        assert refused.status_code == 401 and refused.json()["code"] == "UNAUTHORIZED"
        assert refused.headers["www-authenticate"] == "Bearer"
        assert anonymous.get("/docs").status_code == 200
        assert "/api/batches/{batch_id}/reprocess" in anonymous.get("/openapi.json").json()["paths"]
    with live.client(token="wrong") as wrong:
        assert wrong.post("/api/batches", json={}).status_code == 401


def test_create_process_show_and_reprocess_over_http(live):
    with psycopg.connect(live.manager.database_url) as conn:
        conn.execute("DELETE FROM toggle_switch")
        conn.execute("INSERT INTO toggle_switch VALUES ('off')")
    with live.client() as client:
        created = client.post("/api/batches", json={"batch_type": "toggle", "items": [{"n": 1}, {"n": 2}]})
        assert created.status_code == 201 and created.json()["status"] == "pending"
        batch_id = created.json()["batch_id"]

        accepted = client.post(f"/api/batches/{batch_id}/process")
        assert accepted.status_code == 202 and accepted.headers["location"] == f"/api/batches/{batch_id}"
        processed = live.wait(batch_id)
        assert (processed.status, processed.failed_items) == ("failed", 2)
        detail = client.get(f"/api/batches/{batch_id}").json()
        assert detail["failed_items"][0]["error_code"] == "ITEM_FAILED"
        assert detail["failed_items"][0]["source_data"] == {"n": 1}

        with psycopg.connect(live.manager.database_url) as conn:
            conn.execute("UPDATE toggle_switch SET value = 'on'")
        again = client.post(f"/api/batches/{batch_id}/reprocess", json={"failed_items_only": True})
        assert again.status_code == 202
        new_id = again.json()["batch_id"]
        assert again.headers["location"] == again.json()["url"] == f"/api/batches/{new_id}"
        assert (str(live.wait(new_id).parent_batch_id), live.wait(new_id).completed_items) == (batch_id, 2)

        listed = client.get("/api/batches", params={"parent_batch_id": batch_id}).json()
        assert [b["batch_id"] for b in listed] == [new_id]
        failed = client.get("/api/batches", params={"status": "failed", "batch_type": "toggle"}).json()
        assert batch_id in [b["batch_id"] for b in failed]

        at_once = client.post("/api/batches", json={"batch_type": "counter", "items": [{"n": 5}], "process": True})
        assert at_once.status_code == 202
        assert live.wait(at_once.json()["batch_id"]).status == "completed"


@pytest.mark.parametrize("body, status, code", [
    ({"batch_type": "nope", "items": [{"a": 1}]}, 422, "BATCH_UNKNOWN_TYPE"),
    ({"batch_type": "counter", "items": []}, 422, "REQUEST_INVALID"),
    ({"batch_type": "counter", "items": [1]}, 422, "REQUEST_INVALID"),
    ({"batch_type": "counter", "items": [{"a": 1}], "extra": 1}, 422, "REQUEST_INVALID"),
    ({"batch_type": "counter", "items": [{"a": "nul\u0000"}]}, 422, "BATCH_ITEM_NOT_JSON"),
    ({"batch_type": "counter", "items": [{"a": "x" * 70_000}]}, 413, "REQUEST_TOO_LARGE"),
])
def test_refused_bodies_are_json_errors_and_write_nothing(live, body, status, code):
    with live.client() as client:
        before = len(client.get("/api/batches", params={"limit": 500}).json())
        response = client.post("/api/batches", json=body)
        assert (response.status_code, response.json()["code"]) == (status, code)
        assert response.json()["message"]
        assert len(client.get("/api/batches", params={"limit": 500}).json()) == before


def test_unknown_ids_and_conflicts(live):
    with live.client() as client:
        missing = client.get(f"/api/batches/{uuid.uuid4()}")
        assert (missing.status_code, missing.json()["code"]) == (404, "BATCH_NOT_FOUND")
        assert client.get("/api/batches/not-a-uuid").json()["code"] == "REQUEST_INVALID"
        assert client.get("/no/such/route").json()["code"] == "NOT_FOUND"
        done = client.post("/api/batches", json={"batch_type": "counter", "items": [{"n": 77}], "process": True})
        live.wait(done.json()["batch_id"])
        nothing = client.post(f"/api/batches/{done.json()['batch_id']}/reprocess")
        assert (nothing.status_code, nothing.json()["code"]) == (409, "BATCH_NOTHING_TO_REPROCESS")
        not_json = client.post("/api/batches", content=b"{not json", headers={"content-type": "application/json"})
        assert not_json.status_code == 422 and not_json.json()["code"] == "REQUEST_INVALID"


def test_the_api_needs_a_token_unless_insecure_local(monkeypatch):
    monkeypatch.delenv("MUSINGLY_API_TOKEN", raising=False)
    with pytest.raises(ApiConfigError, match="MUSINGLY_API_TOKEN"):
        APIManager()
    with pytest.raises(ApiConfigError, match="MUSINGLY_API_TOKEN"):
        APIManager(token="  ")
    local = APIManager(insecure_local=True)
    with pytest.raises(ApiConfigError, match="loopback"):
        local.run(host="0.0.0.0", port=1)
    monkeypatch.setenv("MUSINGLY_API_TOKEN", "from-the-environment")
    assert APIManager().authenticated


def test_musingly_api_refuses_to_start_without_a_token():
    env = {k: v for k, v in os.environ.items() if k != "MUSINGLY_API_TOKEN"}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    done = subprocess.run([sys.executable, "-m", "musingly_pipeline.cli", "api", "--port", "1"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "MUSINGLY_API_TOKEN" in done.stderr and "Traceback" not in done.stderr
    done = subprocess.run([sys.executable, "-m", "musingly_pipeline.cli", "api", "--insecure-local",
                           "--host", "0.0.0.0"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "loopback" in done.stderr
