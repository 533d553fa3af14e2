"""Endpoint hooks in the domain: after_batch_complete runs once per completed run, whichever face
ran it (Python, the `musingly batch` commands in a subprocess, the Dagster job); a hook that raises
is logged on the batch and loses nothing; a run asked to stop leaves the rest pending."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import dagster as dg
import psycopg
import pytest

from musingly_pipeline.batches import BatchError
from musingly_pipeline.defs.batches import BatchManagerResource, ProcessConfig, process_batch
from musingly_pipeline.defs.resources import PostgresResource
from musingly_pipeline.batches import store
from musingly_pipeline_tests.batches.processors import PACKAGE, make_manager
from musingly_pipeline_tests.conftest import PROJECT_ROOT


@pytest.fixture
def manager(make_database):
    return make_manager(make_database(), chunk_size=10)


def notifications(manager, batch_id) -> list[tuple]:
    with psycopg.connect(manager.database_url) as conn:
        return conn.execute("SELECT user_id, status, done, total FROM notifications WHERE batch_id = %s",
                            (batch_id,)).fetchall()


def log_lines(manager, batch_id, text: str) -> list:
    return [line for line in manager.get_batch_logs(batch_id) if text in line.message]


def musingly(manager, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "MUSINGLY_DATABASE_URL": manager.database_url,
           "MUSINGLY_PROCESSOR_PACKAGES": PACKAGE}
    return subprocess.run([sys.executable, "-m", "musingly_pipeline.cli", *args], env=env, capture_output=True,
                          text=True, timeout=120)


def test_after_batch_complete_runs_once_per_completed_run_whichever_face_runs_it(manager):
    by_python = manager.create_batch("gated_counter", [{"n": n} for n in range(25)], created_by="alice")
    assert manager.process_batch(by_python).status == "completed"
    manager.process_batch(by_python)  # completed: returned as is, not a run
    assert notifications(manager, by_python) == [("alice", "completed", 25, 25)]
    assert len(log_lines(manager, by_python, "GatedCounterEndpoint.after_batch_complete ran")) == 1

    by_cli = manager.create_batch("gated_counter", [{"n": 100}, {"n": 101}])
    done = musingly(manager, "batch", "process", str(by_cli), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "completed"
    assert notifications(manager, by_cli) == [(None, "completed", 2, 2)]

    by_dagster = manager.create_batch("gated_counter", [{"n": 200}], created_by="carol")
    result = process_batch.execute_in_process(
        run_config=dg.RunConfig(ops={"process_items": ProcessConfig(batch_id=str(by_dagster))}),
        instance=dg.DagsterInstance.ephemeral(),
        resources={"batch_manager": BatchManagerResource(postgres=PostgresResource(url=manager.database_url),
                                                         processor_packages=[PACKAGE])})
    assert result.success and result.output_for_node("process_items")["status"] == "completed"
    assert notifications(manager, by_dagster) == [("carol", "completed", 1, 1)]

    # A run that ends with failed items is complete too; its reprocess batch (CLI) is notified on its own.
    failing = manager.create_batch("gated_counter", [{"n": 300}, {"no_n": True}], created_by="dave")
    assert manager.process_batch(failing).failed_items == 1
    assert notifications(manager, failing) == [("dave", "failed", 2, 2)]
    again = musingly(manager, "batch", "reprocess", str(failing), "--json")
    assert again.returncode == 1, again.stderr  # the item still has no n
    reprocessed = json.loads(again.stdout)
    assert notifications(manager, reprocessed["batch_id"]) == [("dave", "failed", 1, 1)]
    assert reprocessed["created_by"] == "dave"  # a reprocess batch keeps its original's creator
    assert notifications(manager, failing) == [("dave", "failed", 2, 2)]


def test_a_completion_hook_that_raises_is_logged_on_the_batch_and_loses_nothing(manager):
    batch_id = manager.create_batch("notify_fails", [{"n": n} for n in range(12)])
    summary = manager.process_batch(batch_id)

    assert (summary.status, summary.completed_items, summary.error_message) == ("completed", 12, None)
    with psycopg.connect(manager.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM counted WHERE batch_id = %s", (batch_id,)).fetchone()[0] == 12
    assert notifications(manager, batch_id) == []  # the hook's write rolled back with it
    [failure] = [line for line in manager.get_batch_logs(batch_id) if line.level == "error"]
    assert failure.details["code"] == "BATCH_ENDPOINT_FAILED"
    assert failure.message.startswith(
        "NotifyFailsEndpoint.after_batch_complete raised ConnectionError: the chat service is down")
    assert "ConnectionError" in failure.details["traceback"]
    assert log_lines(manager, batch_id, "about to fail")  # what the hook logged before raising is kept


def test_a_run_asked_to_stop_keeps_its_chunks_and_the_next_run_finishes(manager):
    batch_id = manager.create_batch("gated_counter", [{"n": n} for n in range(35)], created_by="erin")
    asked = iter([False, False, True])
    stopped = manager.process_batch(batch_id, stop=lambda: next(asked))

    assert (stopped.status, stopped.completed_items, stopped.pending_items) == ("pending", 20, 15)
    assert notifications(manager, batch_id) == []
    assert log_lines(manager, batch_id, "processing stopped on request with 15 item(s) still pending")

    finished = manager.process_batch(batch_id)
    assert (finished.status, finished.completed_items) == ("completed", 35)
    assert notifications(manager, batch_id) == [("erin", "completed", 35, 35)]
    with psycopg.connect(manager.database_url) as conn:
        assert conn.execute("SELECT count(DISTINCT n), count(*) FROM counted WHERE batch_id = %s",
                            (batch_id,)).fetchone() == (35, 35)


def test_is_batch_running_reads_the_lock_without_taking_it(manager):
    batch_id = manager.create_batch("gated_counter", [{"n": 1}])
    assert not manager.is_batch_running(batch_id)
    with manager.connect() as other:
        assert store.try_lock_batch(other, batch_id)
        assert manager.is_batch_running(batch_id)
        assert manager.is_batch_running(batch_id)  # asking twice does not take it
        store.unlock_batch(other, batch_id)
    assert not manager.is_batch_running(batch_id)
    assert manager.process_batch(batch_id).status == "completed"


def test_processor_hook_failures_and_the_completion_hook(manager):
    started = manager.create_batch("start_hook_fails", [{"n": 1}])
    with pytest.raises(BatchError):
        manager.process_batch(started)
    assert notifications(manager, started) == []  # its items are still pending: the run is not complete

    completed = manager.create_batch("complete_hook_fails", [{"n": 1}, {"n": 2}])
    with pytest.raises(BatchError) as raised:
        manager.process_batch(completed)
    assert raised.value.code == "BATCH_HOOK_FAILED"
    assert notifications(manager, completed) == [(None, "failed", 2, 2)]
