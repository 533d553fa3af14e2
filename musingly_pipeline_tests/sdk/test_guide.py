"""The guide's Python code, run as written in a venv that has only musingly-core (no Dagster).

The blocks are in ``guide/`` (verbatim copies, each naming its section and lines); ``guide_runner.py``
runs them in that venv. Where the guide's own code is wrong, the test asserts what really happens:
its Bundle Structure and hotfix examples hold placeholders (``[...]``, ``# ... updated content``),
its spark example is cut off, its entity examples refer to sparks and a concept they never define,
its cycle search recurses (and overflows on a long chain) and checks spark links only.
What our validation says about the same files is compared with ``musingly validate --json``.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import musingly_core
from musingly_core.schema import SCHEMA_FILE, render_bundle_schema
from musingly_pipeline.errors import PIPELINE_CODES
from musingly_pipeline_tests.conftest import EXAMPLES, PROJECT_ROOT
from musingly_pipeline_tests.sdk.conftest import GUIDE, clean_env

EXAMPLE = EXAMPLES / "ml-curriculum.json"
BUNDLE_FILES = [*sorted(EXAMPLES.glob("*.json")), *sorted((EXAMPLES / "incremental").glob("*.json"))]


def cli_validate(*paths: Path | str) -> dict[str, dict]:
    """``musingly validate --json`` (the pipeline's command) per file."""
    result = subprocess.run([sys.executable, "-m", "musingly_pipeline.cli", "validate", "--json", *map(str, paths)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode in (0, 1), result.stdout + result.stderr
    return {f["file"]: f for f in json.loads(result.stdout)["files"]}


def codes(report: dict) -> list[tuple[str, str]]:
    return [(i["code"], i["path"]) for i in report["errors"]]


def test_the_venv_has_musingly_core_and_pydantic_but_no_dagster(run_guide):
    env = run_guide("environment")
    assert env["absent"] == {"dagster": True, "psycopg": True, "pandas": True, "fastapi": True,
                             "numpy": True, "musingly_pipeline": True}
    assert [r.split("<")[0].split(">")[0] for r in env["requires"]] == ["pydantic"]
    assert env["version"] == env["distribution_version"] == musingly_core.__version__
    pipeline = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"musingly-core=={musingly_core.__version__}" in pipeline
    assert env["supported"] == ["1.0.0"]
    # The JSON Schema ships in the package, and it is the one `musingly schema` writes.
    assert env["schema_file"] == SCHEMA_FILE.read_text(encoding="utf-8") == render_bundle_schema()
    # The SDK's codes work without the pipeline's: none of them is a seed, batch or signal code.
    assert not [c for c in env["codes"] if c.startswith(("SEED_", "BATCH_", "ITEM_", "SIGNAL_"))]
    assert {"BUNDLE_CYCLE", "BUNDLE_UNKNOWN_REFERENCE", "SCHEMA_WRONG_TYPE", "FILE_NOT_FOUND"} <= set(env["codes"])
    assert not set(env["codes"]) & {c for c in PIPELINE_CODES if not c.startswith("JSON_")}


def test_verifying_installation_prints_the_version(sdk_python, tmp_path):
    result = subprocess.run([str(sdk_python), str(GUIDE / "verifying_installation.py")], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120, env=clean_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"SDK Version: {musingly_core.__version__}\n"


def test_bundle_structure_fails_only_on_its_placeholders(run_guide):
    """``domains=[...]`` is a list holding Ellipsis; the metadata (an ISO string for the time) passes."""
    result = run_guide("bundle_structure")
    assert result["raised"] == "ValidationError"
    kinds = ["domains", "trails", "concepts", "sparks", "beacons", "concept_sparks", "spark_beacons",
             "spark_links", "concept_links"]
    assert result["errors"] == [{"type": "model_type", "loc": [kind, 0]} for kind in kinds]


def test_entity_examples_export_and_validate(run_guide, tmp_path):
    result = run_guide("entity_examples", tmp_path)
    assert result["sparks_as_written"].startswith("SyntaxError: unterminated triple-quoted string")
    assert result["spark"]["slug"] == "self-attention-explained"
    assert result["spark"]["content_md"].endswith("@ V\n```\n")
    # The guide's validation finds the undefined sparks but not the undefined concept.
    assert result["guide"] == {"valid": False, "errors": [
        "concept_sparks references unknown spark 'multi-head-attention'",
        "spark_links references unknown source 'linear-algebra-basics'",
        "spark_links references unknown target 'multi-head-attention'",
    ]}
    ours = result["ours"]
    assert codes(ours) == [
        ("BUNDLE_UNKNOWN_REFERENCE", "concept_sparks[1].spark_slug"),
        ("BUNDLE_UNKNOWN_REFERENCE", "spark_links[0].source_slug"),
        ("BUNDLE_UNKNOWN_REFERENCE", "spark_links[1].target_slug"),
        ("BUNDLE_UNKNOWN_REFERENCE", "concept_links[0].target_slug"),
    ]
    assert [(w["code"], w["path"]) for w in ours["warnings"]] == [("BUNDLE_EMPTY_CONCEPT", "concepts[1]")]
    assert cli_validate(result["file"])[result["file"]] == ours


def test_complete_example_and_preflight_run_as_scripts(run_guide, tmp_path):
    result = run_guide("complete_example", tmp_path)
    assert result["export_printed"] == "Bundle exported to import-bundle-v2.1.0.json\n"
    assert result["preflight_printed"] == "✓ Bundle is valid\n"
    path = result["file"]
    exported = json.loads(Path(path).read_text())
    assert exported["metadata"]["source_system"] == "ml-content-generator"
    assert isinstance(exported["metadata"]["generated_at"], str)
    assert result["ours"]["valid"] and result["ours"]["warnings"] == []
    assert cli_validate(path)[path] == result["ours"]


def test_incremental_hotfix_fails_on_its_placeholder(run_guide):
    """``SparkImport(slug=..., # ... updated content)``: title and content_md are required."""
    result = run_guide("incremental_update")
    assert result == {"raised": "ValidationError", "title": "SparkImport", "errors": [
        {"type": "missing", "loc": ["title"]}, {"type": "missing", "loc": ["content_md"]}]}
    # The example hotfix is the guide's bundle with the placeholder filled in; it validates.
    hotfix = EXAMPLES / "incremental" / "hotfix-v2.1.1.json"
    data = json.loads(hotfix.read_text())
    assert (data["version_label"], data["metadata"]["source_system"]) == ("v2.1.1-hotfix", "content-editor")
    assert run_guide("preflight", hotfix)[str(hotfix)]["ours"]["valid"]


def _broken_bundles(directory: Path) -> dict[str, Path]:
    base = json.loads(EXAMPLE.read_text())

    def variant(name: str, change) -> None:
        data = copy.deepcopy(base)
        change(data)
        (directory / f"{name}.json").write_text(json.dumps(data), encoding="utf-8")

    variant("is_published_yes", lambda d: d["domains"][0].update(is_published="yes"))
    variant("order_index_string", lambda d: d["concepts"][0].update(order_index="3"))
    variant("unknown_field", lambda d: d["domains"][0].update(colour="#6366F1"))
    variant("generated_at_number", lambda d: d["metadata"].update(generated_at=1768469400))
    variant("schema_version_2", lambda d: d.update(schema_version="2.0.0"))
    variant("duplicate_slug", lambda d: d["sparks"].append(dict(d["sparks"][0])))
    variant("typo_reference", lambda d: d["trails"][0].update(domain_slug="machine-learnin"))
    variant("spark_cycle", lambda d: d["spark_links"].append(
        {"source_slug": "multi-head-attention", "target_slug": "linear-algebra-basics"}))
    variant("concept_cycle", lambda d: d["concept_links"].append(
        {"source_slug": "transformer-encoder", "target_slug": "attention-mechanisms"}))

    def chain(d: dict, n: int = 1500) -> None:
        d["sparks"] = [{"title": f"Step {i}", "slug": f"step-{i}", "content_md": "x"} for i in range(n)]
        d["concept_sparks"] = [{"concept_slug": "attention-mechanisms", "spark_slug": f"step-{i}"}
                               for i in range(n)]
        d["concept_sparks"] += [{"concept_slug": c, "spark_slug": "step-0"}
                                for c in ("positional-encoding", "transformer-encoder")]
        d["spark_beacons"] = []
        d["spark_links"] = [{"source_slug": f"step-{i}", "target_slug": f"step-{i + 1}"} for i in range(n - 1)]

    variant("long_chain", chain)
    first = base["sparks"][0]["slug"]  # written twice: json.load keeps the second, "renamed"
    (directory / "repeated_key.json").write_text(
        json.dumps(base).replace(f'"slug": "{first}"', f'"slug": "{first}", "slug": "renamed"', 1), encoding="utf-8")
    (directory / "invalid_json.json").write_text(EXAMPLE.read_text()[:200], encoding="utf-8")
    (directory / "top_level_array.json").write_text("[]", encoding="utf-8")
    return {p.stem: p for p in directory.glob("*.json")}


# name -> (what the guide's validate_bundle answers, the codes and places of our errors)
BROKEN = {
    "is_published_yes": ({"valid": False, "errors": [
        "Schema error at domains.0.is_published: Input should be a valid boolean"]},
        [("SCHEMA_WRONG_TYPE", "domains[0].is_published")]),
    "order_index_string": ({"valid": False, "errors": [
        "Schema error at concepts.0.order_index: Input should be a valid integer"]},
        [("SCHEMA_WRONG_TYPE", "concepts[0].order_index")]),
    "unknown_field": ({"valid": False, "errors": [
        "Schema error at domains.0.colour: Extra inputs are not permitted"]},
        [("SCHEMA_UNKNOWN_FIELD", "domains[0].colour")]),
    "generated_at_number": ({"valid": False, "errors": [
        "Schema error at metadata.generated_at: Input should be a valid datetime"]},
        [("SCHEMA_WRONG_TYPE", "metadata.generated_at")]),
    "schema_version_2": ({"valid": False, "errors": [
        "Schema error at schema_version: Value error, schema_version '2.0.0' is not supported; "
        "this code supports 1.0.0"]},
        [("SCHEMA_VERSION_UNSUPPORTED", "schema_version")]),
    "duplicate_slug": ({"valid": False, "errors": ["Duplicate spark slug: 'linear-algebra-basics'"]},
                       [("BUNDLE_DUPLICATE_SLUG", "sparks[4].slug")]),
    "typo_reference": ({"valid": False, "errors": [
        "Trail 'transformer-mastery' references unknown domain 'machine-learnin'"]},
        [("BUNDLE_UNKNOWN_REFERENCE", "trails[0].domain_slug")]),
    "spark_cycle": ({"valid": False, "errors": [
        "Cycle detected in spark_links: linear-algebra-basics -> self-attention-explained -> "
        "multi-head-attention -> linear-algebra-basics"]},
        [("BUNDLE_CYCLE", "spark_links[2]")]),
    # The guide checks spark links for cycles, not concept links.
    "concept_cycle": ({"valid": True, "errors": []}, [("BUNDLE_CYCLE", "concept_links[1]")]),
    # Its recursive search overflows Python's stack on a chain of 1,500 sparks; ours is iterative.
    "long_chain": ({"raised": "RecursionError"}, []),
    # json.load keeps the last of two `slug`s, so the guide reports the first one's references as
    # unknown; ours names the repeated key (found without numpy in the SDK's venv).
    "repeated_key": ({"valid": False, "errors": [
        "concept_sparks references unknown spark 'linear-algebra-basics'",
        "spark_links references unknown source 'linear-algebra-basics'"]},
        [("JSON_DUPLICATE_KEY", "sparks[0].slug")]),
    "invalid_json": (None, [("JSON_INVALID", "")]),
    "top_level_array": ({"valid": False, "errors": [
        "Schema error at : Input should be a valid dictionary or instance of ImportBundle"]},
        [("BUNDLE_NOT_OBJECT", "")]),
}


def test_preflight_and_ours_on_examples_and_broken_bundles(run_guide, tmp_path):
    broken = _broken_bundles(tmp_path)
    assert set(broken) == set(BROKEN)
    files = [*map(str, BUNDLE_FILES), *map(str, broken.values())]
    results = run_guide("preflight", *files)
    cli = cli_validate(*files)
    for path in files:
        assert results[path]["ours"] == cli[path], path  # same issues, codes, places, messages
    for path in BUNDLE_FILES:
        assert results[str(path)]["guide"] == {"valid": True, "errors": []}
        assert results[str(path)]["ours"]["valid"]
    for name, (guide, ours) in BROKEN.items():
        result = results[str(broken[name])]
        if guide is None:
            assert not result["guide"]["valid"] and result["guide"]["errors"][0].startswith("Invalid JSON: ")
        else:
            assert result["guide"] == guide, name
        assert codes(result["ours"]) == ours, name
    typo = results[str(broken["typo_reference"])]["ours"]["errors"][0]["message"]
    assert "did you mean `machine-learning`?" in typo
    unsupported = results[str(broken["schema_version_2"])]["ours"]["errors"][0]["message"]
    assert "supports 1.0.0" in unsupported


def test_the_guides_rule_functions(run_guide, tmp_path):
    data = json.loads(EXAMPLE.read_text())
    data["sparks"].append(dict(data["sparks"][1]))
    data["spark_links"].append({"source_slug": "multi-head-attention", "target_slug": "self-attention-explained"})
    data["spark_beacons"].append({"spark_slug": "self-attention-explained", "beacon_slug": "attention"})
    path = tmp_path / "three-rules.json"
    path.write_text(json.dumps(data))
    assert run_guide("guide_rules", path) == {
        "validate_referential_integrity": ["spark_beacons references unknown beacon 'attention'"],
        "validate_dag_acyclic": ["Cycle detected in spark_links: self-attention-explained -> "
                                 "multi-head-attention -> self-attention-explained"],
        "validate_slug_uniqueness": ["Duplicate spark slug: 'self-attention-explained'"],
    }
    assert codes(musingly_core.validate(path).to_dict()) == [
        ("BUNDLE_DUPLICATE_SLUG", "sparks[4].slug"),
        ("BUNDLE_UNKNOWN_REFERENCE", "spark_beacons[2].beacon_slug"),
        ("BUNDLE_CYCLE", "spark_links[2]"),
    ]


def test_the_docs_example_for_generator_authors_runs(sdk_python, tmp_path):
    section = (PROJECT_ROOT / "docs" / "sdk.md").read_text(encoding="utf-8")
    code = section[section.index("```python\n") + len("```python\n"):section.index("\n```\n", section.index("```python"))]
    result = subprocess.run([str(sdk_python), "-c", code], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120, env=clean_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("True ['warning BUNDLE_ORPHAN_SPARK sparks[0]: spark `self-attention`")
    assert json.loads((tmp_path / "bundle.json").read_text())["sparks"][0]["slug"] == "self-attention"
