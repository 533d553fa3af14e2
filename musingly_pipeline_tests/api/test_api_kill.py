"""`musingly api` killed with SIGKILL mid-batch (a real subprocess): the batch is resumed by a new API
process, nothing is counted twice and the completion hook runs once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import psycopg

from musingly_pipeline_tests.api.conftest import TOKEN, wait_until_done
from musingly_pipeline_tests.api.test_api_background import Gate
from musingly_pipeline_tests.batches.processors import PACKAGE, make_manager
from musingly_pipeline_tests.conftest import PROJECT_ROOT
from musingly_pipeline_tests.defs.test_webserver import free_port


def start_api(url: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "MUSINGLY_DATABASE_URL": url,
           "MUSINGLY_PROCESSOR_PACKAGES": PACKAGE, "MUSINGLY_API_TOKEN": TOKEN}
    env.pop("MUSINGLY_DAGSTER_URL", None)
    process = subprocess.Popen([sys.executable, "-m", "musingly_pipeline.cli", "api", "--port", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, process.stderr.read().decode()[-3000:]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "musingly api did not start"
        time.sleep(0.2)


def test_an_api_killed_mid_batch_is_resumed_by_the_next_one(make_database):
    url = make_database()
    manager = make_manager(url)
    port = free_port()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    gate = Gate(url)
    api = start_api(url, port)
    try:
        items = [{"n": n, "gate": n == 1200} for n in range(3000)]
        answer = httpx.post(f"http://127.0.0.1:{port}/api/batches", headers=headers, timeout=30,
                            json={"batch_type": "gated_counter", "items": items, "process": True})
        assert answer.status_code == 202, answer.text
        batch_id = answer.json()["batch_id"]
        # Chunks 0-499 and 500-999 committed; 1000-1499 claimed and in flight, waiting at item 1200.
        deadline = time.monotonic() + 120
        while not gate.reached():
            assert time.monotonic() < deadline, manager.get_batch_summary(batch_id)
            time.sleep(0.05)
        api.send_signal(signal.SIGKILL)
        api.wait(timeout=10)
    finally:
        if api.poll() is None:
            api.kill()
        api.stderr.close()
        gate.open()

    # The server ends the dead process's session: its chunk rolls back and the batch's lock is freed.
    deadline = time.monotonic() + 60
    while manager.is_batch_running(batch_id):
        assert time.monotonic() < deadline, "the killed run still holds the batch"
        time.sleep(0.05)
    left = manager.get_batch_summary(batch_id)
    assert (left.status, left.completed_items, left.processing_items, left.pending_items) == \
        ("processing", 1000, 500, 1500)

    api = start_api(url, port)
    try:
        resumed = httpx.post(f"http://127.0.0.1:{port}/api/batches/{batch_id}/process", headers=headers, timeout=30)
        assert resumed.status_code == 202, resumed.text
        summary = wait_until_done(manager, batch_id)
    finally:
        api.terminate()
        api.wait(timeout=30)
        api.stderr.close()

    assert (summary.status, summary.completed_items) == ("completed", 3000)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT n) FROM counted WHERE batch_id = %s",
                            (batch_id,)).fetchone() == (3000, 3000)
        assert conn.execute("SELECT user_id, status, done FROM notifications WHERE batch_id = %s",
                            (batch_id,)).fetchall() == [("api", "completed", 3000)]
    messages = [line.message for line in manager.get_batch_logs(batch_id)]
    assert any(m.startswith("resuming an interrupted run: 500 item(s) left in flight") for m in messages)
    assert messages.count("GatedCounterEndpoint.after_batch_complete ran") == 1
