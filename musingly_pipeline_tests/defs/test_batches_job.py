"""The reprocess_failed_items job on a real Dagster instance and a real database."""

from __future__ import annotations

import dagster as dg
import psycopg
import pytest

from musingly_pipeline.defs.batches import (
    BatchManagerResource, ProcessConfig, ReprocessConfig, jobs, process_batch, reprocess_failed_items)
from musingly_pipeline.defs.resources import PostgresResource
from musingly_pipeline_tests.batches.processors import PACKAGE, make_manager


@pytest.fixture
def manager(make_database):
    return make_manager(make_database())


def run(manager, batch_id, **config):
    return reprocess_failed_items.execute_in_process(
        run_config=dg.RunConfig(ops={"reprocess_batch": ReprocessConfig(batch_id=str(batch_id), **config)}),
        instance=dg.DagsterInstance.ephemeral(),
        resources={"batch_manager": BatchManagerResource(postgres=PostgresResource(url=manager.database_url),
                                                         processor_packages=[PACKAGE])},
        raise_on_error=False,
    )


def test_the_job_reprocesses_failures_and_records_the_summary(manager):
    with psycopg.connect(manager.database_url) as conn:
        conn.execute("INSERT INTO toggle_switch VALUES ('on')")
    original = manager.process_batch(manager.create_batch(
        "customer_data", [{"email": "a@x.org", "name": "A"}, {"email": "b@x.org", "name": None}]))
    assert original.failed_items == 1

    result = run(manager, original.batch_id)
    assert result.success
    summary = result.output_for_node("reprocess_batch")
    assert summary["parent_batch_id"] == str(original.batch_id) and summary["failed_items"] == 1
    [output] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    metadata = output.step_output_data.metadata
    assert metadata["reprocess_of"].value == str(original.batch_id)
    assert metadata["failed_items"].value == 1 and metadata["success_rate"].value == 0.0
    assert "NotNullViolation" in metadata["failed_items_detail"].value


def test_a_refused_reprocess_fails_the_run_with_the_code(manager):
    done = manager.process_batch(manager.create_batch("counter", [{"n": 1}]))
    result = run(manager, done.batch_id)
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "BATCH_NOTHING_TO_REPROCESS" in failure.step_failure_data.error.message
    assert failure.step_failure_data.user_failure_data.metadata["code"].value == "BATCH_NOTHING_TO_REPROCESS"


def test_process_batch_processes_pending_items_and_records_the_summary(manager):
    batch_id = manager.create_batch("counter", [{"n": 1}, {"n": 2}, {"no_n": 3}])
    result = process_batch.execute_in_process(
        run_config=dg.RunConfig(ops={"process_items": ProcessConfig(batch_id=str(batch_id))}),
        instance=dg.DagsterInstance.ephemeral(),
        resources={"batch_manager": BatchManagerResource(postgres=PostgresResource(url=manager.database_url),
                                                         processor_packages=[PACKAGE])})
    assert result.success
    assert result.output_for_node("process_items")["failed_items"] == 1
    [output] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    metadata = output.step_output_data.metadata
    assert (metadata["batch_id"].value, metadata["completed_items"].value) == (str(batch_id), 2)
    assert "KeyError" in metadata["failed_items_detail"].value


def test_the_module_exports_the_jobs():
    assert jobs == [process_batch, reprocess_failed_items]
    definitions = dg.Definitions(jobs=jobs,
                                 resources={"batch_manager": BatchManagerResource(postgres=PostgresResource())})
    assert definitions.get_job_def("reprocess_failed_items") and definitions.get_job_def("process_batch")
