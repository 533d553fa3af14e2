"""Endpoint classes are found and registered like processors (no database needed)."""

from __future__ import annotations

import pytest

from musingly_pipeline.api import APIManager, ApiConfigError
from musingly_pipeline.batches import (
    BaseEndpoint, BatchError, BatchManager, BatchRefused, ProcessorRegistry, batch_type_for)
from musingly_pipeline_tests.batches.processors import (
    CounterProcessor, GatedCounterEndpoint, NotifyFailsEndpoint, make_registry)


def test_endpoints_are_named_and_discovered_like_processors():
    assert batch_type_for("CustomerDataEndpoint", "Endpoint") == "customer_data"
    registry = make_registry()
    endpoint = registry.endpoint("gated_counter")
    assert isinstance(endpoint, GatedCounterEndpoint)
    assert registry.endpoint("gated_counter") is endpoint  # one instance per registry
    assert isinstance(registry.endpoint("notify_fails"), NotifyFailsEndpoint)
    assert registry.endpoint("counter") is None
    assert "gated_counter" in registry.batch_types and "gated_counter_endpoint" not in registry.batch_types
    registry.check_endpoints()


def test_registering_endpoints_explicitly():
    registry = ProcessorRegistry()
    registry.register(CounterProcessor)

    @registry.register
    class CounterEndpoint(BaseEndpoint):
        pass

    assert isinstance(registry.endpoint("counter"), CounterEndpoint)

    class OtherCounterEndpoint(BaseEndpoint):
        batch_type = "counter"

    with pytest.raises(BatchError) as duplicate:
        registry.register(OtherCounterEndpoint)
    assert duplicate.value.code == "BATCH_DUPLICATE_TYPE"
    with pytest.raises(BatchError) as invalid:
        registry.register(object)
    assert invalid.value.code == "BATCH_PROCESSOR_INVALID"


def test_an_endpoint_without_a_processor_is_refused_when_the_api_starts():
    registry = ProcessorRegistry()
    registry.register(CounterProcessor)

    class CountrEndpoint(BaseEndpoint):  # misspelt: its hooks would never run
        pass

    registry.register(CountrEndpoint)
    with pytest.raises(BatchError) as refused:
        APIManager(BatchManager("postgresql://unused@127.0.0.1:1/none", registry), token="t")
    assert refused.value.code == "BATCH_PROCESSOR_INVALID"
    assert "serves batch type 'countr', which no processor handles (known: counter)" in refused.value.message


def test_a_refusal_picks_only_documented_statuses():
    assert BatchRefused("quota", status=429).status == 429
    assert BatchRefused("no").status == 422
    with pytest.raises(ValueError):
        BatchRefused("teapot", status=418)


def test_a_dagster_url_that_is_not_a_url_is_refused_at_start():
    with pytest.raises(ApiConfigError, match="MUSINGLY_DAGSTER_URL must be the Dagster webserver's URL"):
        APIManager(BatchManager("postgresql://unused@127.0.0.1:1/none", make_registry()), token="t",
                   dagster_url="localhost:3000")
