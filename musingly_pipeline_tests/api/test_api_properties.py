"""Property-based: schemathesis drives every operation of the API's own OpenAPI; no 500s, answers match it."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from musingly_pipeline.api import create_app
from musingly_pipeline.batches import BatchManager, ProcessorRegistry
from musingly_pipeline_tests.api.conftest import TOKEN, serve
from musingly_pipeline_tests.batches.processors import CounterProcessor, CustomerDataProcessor, make_manager


@pytest.fixture(scope="module")
def api_url(make_database):
    url = make_manager(make_database()).database_url
    registry = ProcessorRegistry()
    registry.register(CustomerDataProcessor)
    registry.register(CounterProcessor)
    # Small enough that the size limit is exercised by generated bodies too.
    for base in serve(create_app(BatchManager(url, registry), token=TOKEN, max_body_bytes=256 * 1024)):
        yield base


def test_no_server_errors_and_answers_match_the_schema(api_url):
    # schemathesis' pytest plugin (from_fixture) does not run on pytest 9, so each operation gets
    # its own bounded hypothesis run here.
    schema = schemathesis.openapi.from_url(f"{api_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 6

    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case):
            case.call_and_validate(base_url=api_url, headers={"Authorization": f"Bearer {TOKEN}"},
                                   checks=[not_a_server_error, status_code_conformance, response_schema_conformance])

        check()
