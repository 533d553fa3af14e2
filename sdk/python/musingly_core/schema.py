"""The bundle's JSON Schema (the guide's ``import-schemas.json``), for generators in any language."""

from __future__ import annotations

import json
from pathlib import Path

from musingly_core.models import ImportBundle

# The committed copy; a test fails when it is out of date. Regenerate with `musingly schema --out ...`.
SCHEMA_FILE = Path(__file__).with_name("import-schemas.json")


def bundle_json_schema() -> dict:
    """The JSON Schema of ``ImportBundle`` as it validates input."""
    schema = ImportBundle.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def render_bundle_schema() -> str:
    """The schema as deterministic text: sorted keys, two-space indent, final newline."""
    return json.dumps(bundle_json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_bundle_schema(path: Path) -> None:
    """Write the schema to ``path`` atomically (a temporary file, then a rename)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render_bundle_schema(), encoding="utf-8")
    tmp.replace(path)
