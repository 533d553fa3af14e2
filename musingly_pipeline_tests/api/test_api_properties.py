"""The API as its OpenAPI document describes it: schemathesis (the `schemathesis run` command) with
every check and every phase finds nothing, and the document's request examples work as shown.

The server is the one `musingly api` starts: the project's processors (seed_unit), no extras."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from musingly_pipeline.api import APIManager
from musingly_pipeline.batches import BatchManager, default_registry
from musingly_pipeline_tests.api.conftest import TOKEN, serve, wait_until_done


@pytest.fixture(scope="module")
def shipped(make_database):
    manager = BatchManager(make_database(), default_registry(env={}))
    for url in serve(APIManager(manager, token=TOKEN).app):
        yield url, manager


def test_schemathesis_with_every_check_and_phase_finds_nothing(shipped, tmp_path):
    url, _ = shipped
    schemathesis = Path(sys.executable).with_name("schemathesis")
    done = subprocess.run(
        [str(schemathesis), "run", f"{url}/openapi.json", "--checks", "all",
         "--phases", "examples,coverage,fuzzing,stateful", "--header", f"Authorization: Bearer {TOKEN}",
         "--max-examples", "30", "--seed", "20", "--workers", "1", "--no-color"],
        cwd=tmp_path, capture_output=True, text=True, timeout=900)
    report = done.stdout[-6000:] + done.stderr[-2000:]
    assert done.returncode == 0, report
    assert "No issues found" in done.stdout and "WARNINGS" not in done.stdout, report


def test_the_documents_request_examples_work_against_the_shipped_processor(shipped):
    url, manager = shipped
    headers = {"Authorization": f"Bearer {TOKEN}"}
    document = httpx.get(f"{url}/openapi.json").json()
    examples = document["paths"]["/api/batches"]["post"]["requestBody"]["content"]["application/json"]["examples"]
    assert set(examples) == {"seed_unit", "seed_unit_process"}
    for name, example in examples.items():
        answer = httpx.post(f"{url}/api/batches", json=example["value"], headers=headers, timeout=30)
        assert answer.status_code == (202 if example["value"]["process"] else 201), answer.text
        batch_id = answer.json()["batch_id"]
        if answer.status_code == 201:
            assert httpx.post(f"{url}/api/batches/{batch_id}/process", headers=headers).status_code == 202
        summary = wait_until_done(manager, batch_id)
        assert summary.status == "completed" and summary.completed_items + summary.skipped_items == 1, name
    with manager.connect() as conn:
        assert conn.execute("SELECT title FROM units WHERE id = 'example-unit'").fetchone() == {"title": "Example unit"}
    reprocess = document["paths"]["/api/batches/{batch_id}/reprocess"]["post"]["requestBody"]["content"]
    reprocess_examples = reprocess["application/json"]["examples"].values()
    assert {e["value"]["failed_items_only"] for e in reprocess_examples} == {True, False}
