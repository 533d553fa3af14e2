"""The processor API without a database: naming convention, discovery, registration, item checks."""

from __future__ import annotations

import pytest

from musingly_pipeline.batches import BaseProcessor, BatchError, ProcessorRegistry, batch_type_for, content_key
from musingly_pipeline.batches.item_json import prepare_items, result_fields
from musingly_pipeline.batches.pipelined import returns_no_rows
from musingly_pipeline.batches.registry import default_registry
from musingly_pipeline_tests.batches import processors


@pytest.mark.parametrize("name, batch_type", [
    ("CustomerDataProcessor", "customer_data"),
    ("TransactionFeedProcessor", "transaction_feed"),
    ("SeedUnitProcessor", "seed_unit"),
    ("HTTPLogProcessor", "http_log"),
    ("V2EventsProcessor", "v2_events"),
])
def test_the_class_name_gives_the_batch_type(name, batch_type):
    assert batch_type_for(name) == batch_type


def test_discover_finds_every_processor_of_a_package():
    registry = ProcessorRegistry()
    found = registry.discover(processors.PACKAGE)
    assert sorted(found) == [
        "always_run", "catches_in_a_savepoint", "checked", "complete_hook_fails", "connection_midway", "counter",
        "customer_data", "every_other_fails", "gated_counter", "grouped_customer", "grouped_swallows_errors",
        "grouped_swallows_write_errors", "notify_fails", "nul_message", "returning", "running_number",
        "start_hook_fails", "swallows_errors", "swallows_write_errors", "toggle"]
    assert registry.get("customer_data") is processors.CustomerDataProcessor


def test_register_explicitly_with_or_without_a_name():
    registry = ProcessorRegistry()

    @registry.register
    class ProductCatalogProcessor(BaseProcessor):
        def process_item(self, item, ctx):
            return None

    class Anything(BaseProcessor):
        batch_type = "legacy_feed"

    registry.register(Anything)
    assert registry.batch_types == ["legacy_feed", "product_catalog"]
    with pytest.raises(BatchError) as duplicate:
        registry.register(processors.CounterProcessor, "product_catalog")
    assert duplicate.value.code == "BATCH_DUPLICATE_TYPE"
    with pytest.raises(BatchError) as invalid:
        registry.register(dict)
    assert invalid.value.code == "BATCH_PROCESSOR_INVALID"


def test_unknown_type_names_the_known_ones_and_the_class_to_write():
    registry = ProcessorRegistry()
    registry.discover(processors.PACKAGE)
    with pytest.raises(BatchError) as unknown:
        registry.get("invoice_lines")
    assert unknown.value.code == "BATCH_UNKNOWN_TYPE"
    assert "InvoiceLinesProcessor" in unknown.value.message and "customer_data" in unknown.value.message
    assert unknown.value.issue.category.value == "batches"


def test_default_registry_reads_extra_packages_from_the_environment():
    registry = default_registry(env={"MUSINGLY_PROCESSOR_PACKAGES": processors.PACKAGE})
    assert "counter" in registry
    with pytest.raises(BatchError) as missing:
        default_registry(env={"MUSINGLY_PROCESSOR_PACKAGES": "no_such_package_here"})
    assert missing.value.code == "BATCH_PROCESSOR_INVALID"


def test_content_key_ignores_key_order_and_sees_values():
    assert content_key({"a": 1, "b": [1, 2]}) == content_key({"b": [1, 2], "a": 1})
    assert content_key({"a": 1}) != content_key({"a": 2})


def test_prepare_items_keys_are_the_content_key_unless_the_processor_has_its_own():
    items = [{"b": [1, 2.5, None, True], "a": "é ✓ \\u0000 text"}, {"a": {"z": 1, "y": {"x": []}}}, {"n": 1}]
    keys = [key for _, key in prepare_items(processors.CounterProcessor(), items)]
    assert keys == [content_key(item) for item in items] and len(set(keys)) == 3

    class KeyedProcessor(BaseProcessor):
        def item_key(self, source_data):
            return f"n={source_data.get('n')}"

    assert [key for _, key in prepare_items(KeyedProcessor(), items)] == ["n=None", "n=None", "n=1"]


def test_prepare_items_refuses_what_jsonb_cannot_hold():
    processor = processors.CounterProcessor()
    assert len(prepare_items(processor, [{"n": 1}, {"text": "back\\u0000slash"}])) == 2
    for items, code in [([], "BATCH_EMPTY"), ([{"x": float("nan")}], "BATCH_ITEM_NOT_JSON"),
                        ([{"x": object()}], "BATCH_ITEM_NOT_JSON"), ([{"x": "a\x00"}], "BATCH_ITEM_NOT_JSON"),
                        ([1], "BATCH_ITEM_NOT_OBJECT"), ({"n": 1}, "BATCH_ITEM_NOT_OBJECT")]:
        with pytest.raises(BatchError) as refused:
            prepare_items(processor, items)
        assert refused.value.code == code


def test_result_fields_keep_target_and_refuse_non_dicts():
    fields = result_fields({"target_table": "t", "target_id": 7, "processed_data": {"x": 1}})
    assert fields["target_id"] == "7" and fields["result"]["processed_data"] == {"x": 1}
    assert result_fields(None) == {}
    with pytest.raises(TypeError):
        result_fields(["not", "a", "dict"])


@pytest.mark.parametrize("query, no_rows", [
    ("INSERT INTO t (k) VALUES (%s)", True),
    ("  update t SET v = 1", True),
    ("\n\tDELETE FROM t WHERE k = %s", True),
    ("MERGE INTO t USING s ON t.k = s.k WHEN MATCHED THEN DELETE", True),
    ("INSERT INTO t (k) VALUES (%s) RETURNING k", False),
    ("insert into t (k) values (%s) returning *", False),
    ("UPDATE t SET v = 'returning'", False),  # may say RETURNING: waited for, which is always safe
    ("SELECT 1", False),
    ("WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x", False),
    ("inserted_rows", False),
    (b"INSERT INTO t (k) VALUES (1)", False),
])
def test_only_writes_without_returning_are_sent_without_waiting(query, no_rows):
    assert returns_no_rows(query) is no_rows
