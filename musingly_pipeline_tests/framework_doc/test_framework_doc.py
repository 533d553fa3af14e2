"""The framework document's REST API examples, as written (see api_example.py and myapp/processors.py),
run against this project: the one-line API start in a real subprocess, the customer_data processor
and its endpoint with the quota refusal and the notification."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg

from musingly_pipeline_tests.conftest import PROJECT_ROOT
from musingly_pipeline_tests.defs.test_webserver import free_port

HERE = Path(__file__).resolve().parent
TOKEN = "framework-doc-token"


def test_the_documents_rest_api_example_works_as_written(make_database, tmp_path):
    url = make_database()
    with psycopg.connect(url) as conn:  # the document's processor writes a customers table it never shows
        conn.execute("CREATE TABLE customers (id uuid PRIMARY KEY, email text UNIQUE NOT NULL, name text)")
    port = free_port()
    env = {**os.environ, "EXAMPLE_DATABASE_URL": url, "EXAMPLE_PORT": str(port), "MUSINGLY_API_TOKEN": TOKEN,
           "PYTHONPATH": os.pathsep.join([str(HERE), str(PROJECT_ROOT)])}
    server = subprocess.Popen([sys.executable, str(HERE / "api_example.py")], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base, headers = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {TOKEN}"}
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stderr.read()[-3000:]
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the example API did not start"
                time.sleep(0.2)
        assert httpx.get(f"{base}/docs").status_code == 200

        def import_customers(items) -> dict:
            answer = httpx.post(f"{base}/api/batches", headers=headers, timeout=30,
                                json={"batch_type": "customer_data", "items": items, "process": True})
            assert answer.status_code == 202, answer.text
            deadline = time.monotonic() + 60
            while True:
                detail = httpx.get(f"{base}{answer.json()['url']}", headers=headers).json()
                if detail["summary"]["status"] in ("completed", "failed") and not detail["progress"]["running"]:
                    return detail
                assert time.monotonic() < deadline, detail
                time.sleep(0.05)

        first = import_customers([{"email": "john@example.com", "name": "John Doe"},
                                  {"email": "jane@example.com", "name": "Jane Smith"}])
        assert (first["summary"]["status"], first["summary"]["completed_items"]) == ("completed", 2)
        second = import_customers([{"email": "john@example.com", "name": "John Q. Doe"},
                                   {"email": "not-an-email", "name": "Nobody"}])
        assert (second["summary"]["completed_items"], second["summary"]["failed_items"]) == (1, 1)
        assert second["failed_items"][0]["error_code"] == "ITEM_INVALID"

        refused = httpx.post(f"{base}/api/batches", headers=headers,
                             json={"batch_type": "customer_data", "items": [{"email": "x@example.com", "name": "X"}]})
        assert (refused.status_code, refused.json()["code"]) == (422, "BATCH_REFUSED")
        assert refused.json()["message"] == "CustomerDataEndpoint.before_create_batch refused the batch: Quota exceeded"
    finally:
        server.terminate()
        out, err = server.communicate(timeout=30)

    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT email, name FROM customers ORDER BY email").fetchall() == [
            ("jane@example.com", "Jane Smith"), ("john@example.com", "John Q. Doe")]
        assert conn.execute("SELECT count(*) FROM import_batches").fetchone()[0] == 2
    assert [line for line in out.splitlines() if line.startswith("slack:")] == [
        f"slack: batch {first['summary']['batch_id']} completed: 2/2",
        f"slack: batch {second['summary']['batch_id']} failed: 1/2",
    ], err[-3000:]
