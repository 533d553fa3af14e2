"""JSON for the batch tables: items and metadata checked and written as jsonb accepts them, what a
processor returns kept as an item's result, and text a PostgreSQL text column can hold."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from musingly_pipeline.batches.errors import BatchError
from musingly_pipeline.batches.processor import BaseProcessor, hash_text

# A JSON text with an escaped NUL (\u0000 not preceded by an escaping backslash): jsonb refuses it.
JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
# canonical_json without its fallback for values JSON cannot hold (those are refused instead).
STORABLE_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_DUMPS = json.JSONEncoder(ensure_ascii=False, default=str)


def dumps(value: Any) -> str:
    """JSON text for a jsonb column; values JSON cannot hold (UUID, datetime) become strings."""
    return _DUMPS.encode(value)


def storable_text(text: str) -> str:
    """``text`` as a PostgreSQL text column holds it: NUL and lone surrogates written as escapes."""
    text = text.replace("\x00", "\\x00")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def prepare_items(processor: BaseProcessor, items: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    """``(json_text, item_key)`` per item; refuse anything that is not a JSON object."""
    if isinstance(items, (str, bytes, dict)):
        raise BatchError("BATCH_ITEM_NOT_OBJECT", "items must be a list of JSON objects, not a single value", "items")
    rows = []
    # The stored text is canonical JSON, so the default key (content_key) is its hash: one encoding per item.
    default_key = type(processor).item_key is BaseProcessor.item_key
    for index, data in enumerate(items):
        if not isinstance(data, dict):
            raise BatchError("BATCH_ITEM_NOT_OBJECT",
                             f"item {index} is a {type(data).__name__}; every item must be a JSON object",
                             f"items[{index}]")
        text = storable_json(data, f"item {index}", f"items[{index}]")
        rows.append((text, hash_text(text) if default_key else processor.item_key(data)))
    if not rows:
        raise BatchError("BATCH_EMPTY", "a batch needs at least one item; nothing was created", "items")
    return rows


def check_metadata(metadata: dict[str, Any] | None) -> None:
    """Refuse batch metadata that is not a JSON object PostgreSQL can store."""
    if metadata is None:
        return
    if not isinstance(metadata, dict):
        raise BatchError("BATCH_ITEM_NOT_JSON", "metadata must be a JSON object", "metadata")
    storable_json(metadata, "metadata", "metadata")


def storable_json(value: Any, what: str, path: str) -> str:
    """Canonical JSON text of ``value`` (as content_key writes it) that a jsonb column accepts,
    or BATCH_ITEM_NOT_JSON saying why not."""
    try:
        text = STORABLE_JSON.encode(value)
        text.encode("utf-8")
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError (a lone surrogate) is a ValueError
        raise BatchError("BATCH_ITEM_NOT_JSON", f"{what} cannot be stored as JSON: {exc}", path) from exc
    except RecursionError as exc:
        raise BatchError("BATCH_ITEM_NOT_JSON", f"{what} is nested too deeply to be stored as JSON", path) from exc
    if "\\u0000" in text and JSON_NUL.search(text):
        raise BatchError("BATCH_ITEM_NOT_JSON", f"{what} contains a NUL character, which PostgreSQL cannot store",
                         path)
    return text


def result_fields(result: Any) -> dict[str, Any]:
    """What ``process_item`` returned, as the item's target_table, target_id and result."""
    if result is None:
        return {}
    if not isinstance(result, dict):
        raise TypeError(f"process_item must return a dict or None, not {type(result).__name__}")
    target_id = result.get("target_id")
    target_table = result.get("target_table")
    return {
        "target_table": None if target_table is None else str(target_table),
        "target_id": None if target_id is None else str(target_id),
        "result": json.loads(dumps(result)),
    }
