"""The parts of the OpenAPI document that depend on the server: its batch types and their examples,
the JSON values it can store, and the links from a created batch to what can be done with it."""

from __future__ import annotations

from typing import Any

from musingly_pipeline.batches import ProcessorRegistry

# A JSON value PostgreSQL can store: anything but a NUL character in a key or a string.
NO_NUL = "^[^\\u0000]*$"
JSON_VALUE_SCHEMA = {
    "description": "Any JSON value without a NUL character (PostgreSQL cannot store one).",
    "anyOf": [
        {"type": "null"},
        {"type": "boolean"},
        {"type": "number"},
        {"type": "string", "pattern": NO_NUL},
        {"type": "array", "items": {"$ref": "#/components/schemas/JsonValue"}},
        {"type": "object", "propertyNames": {"pattern": NO_NUL},
         "additionalProperties": {"$ref": "#/components/schemas/JsonValue"}},
    ],
}
BATCH_ID = {"batch_id": "$response.body#/batch_id"}
LINKS = {
    "GetBatch": {"operationId": "getBatch", "parameters": BATCH_ID,
                 "description": "The batch's summary and progress."},
    "ProcessBatch": {"operationId": "processBatch", "parameters": BATCH_ID,
                     "description": "Process the batch's pending items in the background."},
    "ReprocessBatch": {"operationId": "reprocessBatch", "parameters": BATCH_ID,
                       "description": "Reprocess its failed items in a new batch."},
}
LOCATION = {"Location": {"description": "The batch's URL (GET it for its progress).",
                         "schema": {"type": "string"}}}
# Every operation that answers with a batch: (path, method, statuses).
BATCH_ANSWERS = [("/api/batches", "post", ("201", "202")), ("/api/batches/{batch_id}/process", "post", ("200", "202")),
                 ("/api/batches/{batch_id}/reprocess", "post", ("202",))]


def request_examples(registry: ProcessorRegistry) -> dict[str, dict[str, Any]]:
    """Named request examples of POST /api/batches: per batch type whose processor has ``example_items``,
    one that only creates the batch and one that also processes it."""
    examples: dict[str, dict[str, Any]] = {}
    for batch_type in registry.batch_types:
        items = registry.get(batch_type).example_items
        if not items:
            continue
        examples[batch_type] = {"summary": f"create a {batch_type} batch (201)",
                                "value": {"batch_type": batch_type, "items": items, "process": False}}
        examples[f"{batch_type}_process"] = {
            "summary": f"create a {batch_type} batch and process it in the background (202)",
            "value": {"batch_type": batch_type, "items": items, "process": True}}
    return examples


def complete(schema: dict[str, Any], registry: ProcessorRegistry) -> dict[str, Any]:
    """Add to FastAPI's document what depends on this server (in place; returns ``schema``)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["JsonValue"] = JSON_VALUE_SCHEMA
    if registry.batch_types:
        components["CreateBatchRequest"]["properties"]["batch_type"]["enum"] = registry.batch_types
    for path, method, statuses in BATCH_ANSWERS:
        responses = schema["paths"][path][method]["responses"]
        for status in statuses:
            responses[status]["links"] = LINKS
            if status != "200":
                responses[status]["headers"] = LOCATION
    return schema
