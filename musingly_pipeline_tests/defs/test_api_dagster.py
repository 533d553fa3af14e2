"""With MUSINGLY_DAGSTER_URL set, the API hands batches to Dagster: a real dagster-webserver and
dagster-daemon (this project's dagster.yaml: PostgreSQL storage, queued runs) run process_batch."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
from dagster_graphql import DagsterGraphQLClient

from musingly_pipeline.api import APIManager
from musingly_pipeline.storage.database import sqlalchemy_url
from musingly_pipeline_tests.api.conftest import TOKEN, serve, wait_until_done
from musingly_pipeline_tests.batches.processors import PACKAGE, make_manager
from musingly_pipeline_tests.conftest import PROJECT_ROOT
from musingly_pipeline_tests.defs.test_webserver import free_port, graphql


def start(command: str, *args: str, cwd: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen([str(Path(sys.executable).with_name(command)), *args], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
    process.stderr.close()


def test_the_api_launches_process_batch_runs_on_a_real_dagster_deployment(tmp_path, make_database):
    manager = make_manager(make_database())
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "MUSINGLY_DAGSTER_STORAGE_URL": sqlalchemy_url(make_database()),
           "MUSINGLY_DATABASE_URL": manager.database_url, "MUSINGLY_PROCESSOR_PACKAGES": PACKAGE,
           "PYTHONPATH": str(PROJECT_ROOT)}
    port = free_port()
    webserver = start("dagster-webserver", "-m", "musingly_pipeline.definitions", "-h", "127.0.0.1", "-p", str(port),
                      cwd=tmp_path, env=env)
    daemon = start("dagster-daemon", "run", "-m", "musingly_pipeline.definitions", cwd=tmp_path, env=env)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert webserver.poll() is None, webserver.stderr.read().decode()[-3000:]
            assert daemon.poll() is None, daemon.stderr.read().decode()[-3000:]
            try:
                graphql(port, "{ version }")
                break
            except OSError:
                assert time.monotonic() < deadline, "dagster-webserver did not answer within 120 s"
                time.sleep(0.5)

        api = APIManager(manager, token=TOKEN, dagster_url=f"http://127.0.0.1:{port}")
        for url in serve(api.app):
            answer = httpx.post(f"{url}/api/batches", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60,
                                json={"batch_type": "gated_counter", "items": [{"n": n} for n in range(40)],
                                      "process": True})
            assert answer.status_code == 202, answer.text
            body = answer.json()
            assert body["runner"] == "dagster" and body["dagster_run_id"]
            summary = wait_until_done(manager, body["batch_id"], timeout=300)
        assert (summary.status, summary.completed_items) == ("completed", 40)
        client, deadline = DagsterGraphQLClient("127.0.0.1", port_number=port), time.monotonic() + 120
        while (status := client.get_run_status(body["dagster_run_id"]).value) not in ("SUCCESS", "FAILURE"):
            assert time.monotonic() < deadline, f"the run is still {status}"
            time.sleep(0.5)
        assert status == "SUCCESS"
        with psycopg.connect(manager.database_url) as conn:
            assert conn.execute("SELECT user_id, status, done FROM notifications WHERE batch_id = %s",
                                (body["batch_id"],)).fetchall() == [("api", "completed", 40)]
        queued = [line for line in manager.get_batch_logs(body["batch_id"]) if line.message.startswith("queued")]
        assert [line.details["dagster_run_id"] for line in queued] == [body["dagster_run_id"]]
    finally:
        stop(daemon)
        stop(webserver)


def test_a_dagster_that_does_not_answer_is_503_and_the_batch_is_not_kept(make_database):
    manager = make_manager(make_database())
    api = APIManager(manager, token=TOKEN, dagster_url=f"http://127.0.0.1:{free_port()}")
    for url in serve(api.app):
        answer = httpx.post(f"{url}/api/batches", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60,
                            json={"batch_type": "counter", "items": [{"n": 1}], "process": True})
    assert answer.status_code == 503 and answer.json()["code"] == "PROCESSING_UNAVAILABLE"
    assert "did not take a process_batch run" in answer.json()["message"]
    assert manager.list_batches() == []
