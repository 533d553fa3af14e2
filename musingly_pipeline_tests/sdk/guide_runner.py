"""Runs the guide's code blocks (``guide/*.py``) where a generator would: a venv with only musingly-core.

``test_guide.py`` runs ``python guide_runner.py SCENARIO [ARG...]`` with that venv's interpreter; each
scenario prints one JSON document of what happened. Nothing here imports musingly_pipeline, pytest
or anything else the venv does not have. Glue code around the blocks is this file's; the blocks
themselves run as the guide wrote them.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import io
import json
import os
import runpy
import sys
from pathlib import Path

from pydantic import ValidationError

import musingly_core
from musingly_core.schema import SCHEMA_FILE

GUIDE = Path(__file__).with_name("guide")
# The end of the cut-off spark example (guide/entity_sparks.py): close the lesson's code fence, its
# string, the SparkImport call and the list. Nothing else is added; the remaining fields default.
SPARK_COMPLETION = '```\n""",\n    ),\n]\n'


def block_path(name: str) -> Path:
    return GUIDE / f"{name}.py"


def bundle_structure_imports() -> dict:
    """The namespace made by the imports of the Bundle Structure block, which later blocks rely on."""
    text = block_path("bundle_structure").read_text(encoding="utf-8")
    namespace: dict = {}
    exec(compile(text[: text.index("# Create the import bundle")], "bundle_structure.py", "exec"), namespace)
    return namespace


def run_block(name: str, namespace: dict | None = None, main: bool = False) -> tuple[dict, str]:
    """Run a block as a script (``__main__`` when ``main``); its globals and what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = runpy.run_path(str(block_path(name)), init_globals=namespace,
                                run_name="__main__" if main else f"guide_{name}")
    return result, out.getvalue()


def schema_errors(exc: ValidationError) -> list[dict]:
    return [{"type": e["type"], "loc": list(e["loc"])} for e in exc.errors(include_url=False)]


def guide_validate(validate_bundle, path: str) -> dict:
    """The guide's ``validate_bundle`` on ``path``: its answer, or the exception it let escape."""
    try:
        valid, errors = validate_bundle(path)
    except Exception as exc:  # the guide's code is under test here, not ours
        return {"raised": type(exc).__name__}
    return {"valid": valid, "errors": errors}


def environment() -> dict:
    """What the venv holds: no Dagster, no database driver, no numpy, no pipeline; musingly-core's metadata."""
    absent = {name: importlib.util.find_spec(name) is None
              for name in ("dagster", "psycopg", "pandas", "fastapi", "numpy", "musingly_pipeline")}
    distribution = importlib.metadata.distribution("musingly-core")
    return {
        "absent": absent,
        "version": musingly_core.__version__,
        "distribution_version": distribution.version,
        "requires": distribution.requires,
        "supported": list(musingly_core.SUPPORTED_SCHEMA_VERSIONS),
        "schema_file": SCHEMA_FILE.read_text(encoding="utf-8"),
        "codes": sorted(musingly_core.report.CODES),
    }


def bundle_structure() -> dict:
    try:
        run_block("bundle_structure")
    except ValidationError as exc:
        return {"raised": "ValidationError", "errors": schema_errors(exc)}
    return {"raised": None}


def entity_examples(directory: str) -> dict:
    """Every entity example, put into one bundle, exported and validated by the guide and by us."""
    namespace = bundle_structure_imports()
    for name in ("entity_domains", "entity_trails", "entity_concepts", "entity_beacons",
                 "entity_junctions", "entity_dag_edges"):
        namespace, _ = run_block(name, namespace)
    text = block_path("entity_sparks").read_text(encoding="utf-8")
    try:
        compile(text, "entity_sparks.py", "exec")
        sparks_as_written = "compiles"
    except SyntaxError as exc:
        sparks_as_written = f"SyntaxError: {exc.msg}"
    exec(compile(text + SPARK_COMPLETION, "entity_sparks.py", "exec"), namespace)

    ns = namespace
    bundle = ns["ImportBundle"](
        schema_version="1.0.0", version_label="v2.1.0", name="Entity examples",
        metadata=ns["ImportMetadata"](generated_at=ns["datetime"].now(ns["timezone"].utc).isoformat(),
                                      source_system="content-generator"),
        **{kind: ns[kind] for kind in ("domains", "trails", "concepts", "sparks", "beacons",
                                       "concept_sparks", "spark_beacons", "spark_links", "concept_links")},
    )
    complete, _ = run_block("complete_example")
    path = os.path.join(directory, "entity-examples.json")
    with contextlib.redirect_stdout(io.StringIO()):
        complete["export_bundle"](bundle, path)
    preflight, _ = run_block("pre_flight_validation")
    return {
        "sparks_as_written": sparks_as_written,
        "spark": bundle.sparks[0].model_dump(),
        "file": path,
        "guide": guide_validate(preflight["validate_bundle"], path),
        "ours": musingly_core.validate(path).to_dict(),
    }


def complete_example(directory: str) -> dict:
    """The Complete Example and the Pre-Flight Validation run as scripts, as the guide runs them."""
    os.chdir(directory)
    _, exported = run_block("complete_example", main=True)
    _, checked = run_block("pre_flight_validation", main=True)
    path = os.path.join(directory, "import-bundle-v2.1.0.json")
    return {"export_printed": exported, "preflight_printed": checked, "file": path,
            "ours": musingly_core.validate(path).to_dict()}


def preflight(*paths: str) -> dict:
    """The guide's validate_bundle and musingly_core.validate, file by file."""
    functions, _ = run_block("pre_flight_validation")
    return {path: {"guide": guide_validate(functions["validate_bundle"], path),
                   "ours": musingly_core.validate(path).to_dict()} for path in paths}


def guide_rules(path: str) -> dict:
    """The guide's three rule functions on a bundle parsed with ``ImportBundle.model_validate(json.load(f))``."""
    functions, _ = run_block("pre_flight_validation")
    with open(path) as f:
        bundle = functions["ImportBundle"].model_validate(json.load(f))
    return {name: functions[name](bundle) for name in
            ("validate_referential_integrity", "validate_dag_acyclic", "validate_slug_uniqueness")}


def incremental_update() -> dict:
    try:
        namespace, _ = run_block("incremental_updates", bundle_structure_imports())
    except ValidationError as exc:
        return {"raised": "ValidationError", "title": exc.title, "errors": schema_errors(exc)}
    return {"raised": None, "bundle": namespace["bundle"].model_dump()}


if __name__ == "__main__":
    scenario, *args = sys.argv[1:]
    print(json.dumps(globals()[scenario](*args)))
