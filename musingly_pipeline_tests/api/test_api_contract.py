"""The API's contract (issue 15, item 10): documented codes for unreadable bodies, strict booleans,
a true Allow header, and every error code the API answers is in the OpenAPI document and docs/batches.md."""

from __future__ import annotations

import re

import pytest

from musingly_pipeline.api.body import MAX_DEPTH
from musingly_pipeline.api.errors import ERROR_CODES
from musingly_core.report import CODES
from musingly_pipeline_tests.conftest import PROJECT_ROOT


def nested_body(levels: int) -> bytes:
    """A create request whose body nests ``levels`` levels of objects and arrays in all."""
    inner = levels - 3  # the body, its items array and the item are three
    return ('{"batch_type": "counter", "items": [{"n": 1, "deep": ' + "[" * inner + "]" * inner + "}]}").encode()


@pytest.mark.parametrize("body, code", [
    (nested_body(3000), "REQUEST_TOO_DEEP"),
    (nested_body(MAX_DEPTH + 1), "REQUEST_TOO_DEEP"),
    (b'{"batch_type": "counter", "items": [{"n": 1, "name": "caf\xe9"}]}', "REQUEST_NOT_UTF8"),
    ('{"batch_type": "counter", "items": [{"n": 1}]}'.encode("utf-16"), "REQUEST_NOT_UTF8"),
])
def test_unreadable_bodies_get_a_documented_code_and_write_nothing(live, body, code):
    with live.client() as client:
        before = len(client.get("/api/batches", params={"limit": 500}).json())
        answer = client.post("/api/batches", content=body, headers={"content-type": "application/json"})
        assert (answer.status_code, answer.json()["code"]) == (400, code)
        assert answer.json()["message"]
        assert len(client.get("/api/batches", params={"limit": 500}).json()) == before


def test_a_body_at_the_depth_limit_is_taken(live):
    with live.client() as client:
        answer = client.post("/api/batches", content=nested_body(MAX_DEPTH),
                             headers={"content-type": "application/json"})
        assert answer.status_code == 201, answer.text


@pytest.mark.parametrize("path, body", [
    ("/reprocess", {"failed_items_only": 0}),
    ("/reprocess", {"failed_items_only": "false"}),
    ("", {"batch_type": "counter", "items": [{"n": 1}], "process": 1}),
    ("", {"batch_type": "counter", "items": [{"n": 1}], "process": "true"}),
])
def test_booleans_are_strict(live, path, body):
    with live.client() as client:
        target = live.manager.process_batch(live.manager.create_batch("toggle", [{"n": 1}]))  # fails: no switch
        url = f"/api/batches/{target.batch_id}{path}" if path else "/api/batches"
        before = len(client.get("/api/batches", params={"limit": 500}).json())
        answer = client.post(url, json=body)
        assert (answer.status_code, answer.json()["code"]) == (422, "REQUEST_INVALID")
        field = "failed_items_only" if path else "process"
        assert answer.json()["details"][0] == {"path": f"body.{field}", "message": "Input should be a valid boolean"}
        assert len(client.get("/api/batches", params={"limit": 500}).json()) == before


@pytest.mark.parametrize("path, allow", [
    ("/api/batches", "GET, OPTIONS, POST"),
    ("/api/batches/3f2c9a1e-0c4b-4d8e-9a57-1b2c3d4e5f60", "GET, OPTIONS"),
    ("/api/batches/3f2c9a1e-0c4b-4d8e-9a57-1b2c3d4e5f60/process", "OPTIONS, POST"),
    ("/health", "GET, OPTIONS"),
])
def test_options_and_405_name_every_method_of_the_path(live, path, allow):
    with live.client(token=None) as client:
        options = client.options(path)
        assert (options.status_code, options.headers["allow"], options.content) == (204, allow, b"")
        refused = client.request("PATCH", path)
        assert (refused.status_code, refused.headers["allow"], refused.json()["code"]) == \
            (405, allow, "METHOD_NOT_ALLOWED")


def test_every_error_code_is_in_the_openapi_document_the_registry_and_the_docs(live):
    with live.client() as client:
        documented = client.get("/openapi.json").json()["components"]["schemas"]["ErrorOut"]["properties"]["code"]
    assert documented["enum"] == ERROR_CODES
    assert {"REQUEST_NOT_UTF8", "REQUEST_TOO_DEEP", "METHOD_NOT_ALLOWED", "BATCH_REFUSED"} <= set(ERROR_CODES)
    assert set(ERROR_CODES) <= set(CODES)
    section = (PROJECT_ROOT / "docs" / "batches.md").read_text(encoding="utf-8")
    assert sorted(set(re.findall(r"`([A-Z][A-Z0-9_]+)`", section)) & set(ERROR_CODES)) == ERROR_CODES
